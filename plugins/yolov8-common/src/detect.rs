//! Decoding of the YOLOv8 detection head and Ultralytics' non-maximum suppression.

use plugin_api::{BoxGeometry, Instance, Params, PluginError, TensorRef, sdk};

use crate::Letterbox;

/// Ultralytics offsets boxes by class times this before one NMS pass, so that boxes of
/// different classes never overlap: per-class NMS in a single sort.
const CLASS_OFFSET: f32 = 7680.0;
/// Ultralytics keeps at most this many candidates (best first) before NMS.
const MAX_NMS: usize = 30000;

/// One detection in the model's input pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    pub score: f32,
    pub class_id: usize,
    /// Index of the anchor it came from, to find its mask coefficients.
    pub anchor: usize,
}

/// The head output `[1, 4 + classes + extra, anchors]`, viewed without copying.
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    data: &'a [f32],
    pub rows: usize,
    pub anchors: usize,
}

impl<'a> Head<'a> {
    pub fn new(output: &TensorRef<'a>) -> Result<Self, PluginError> {
        let shape = output.shape();
        let (rows, anchors) = match shape {
            [1, rows, anchors] | [rows, anchors] if *rows > 0 && *anchors >= 0 => (*rows as usize, *anchors as usize),
            _ => {
                return Err(PluginError::unsupported(format!(
                    "output `{}` has shape {shape:?}; a YOLOv8 head is [1, 4 + classes, anchors] for one image",
                    output.name()
                )));
            }
        };
        let data = output.f32s()?;
        if data.len() != rows * anchors {
            return Err(PluginError::invalid_input(format!(
                "output `{}` holds {} values, but its shape {shape:?} needs {}",
                output.name(),
                data.len(),
                rows * anchors
            )));
        }
        Ok(Self { data, rows, anchors })
    }

    /// The value in row `row` (0-3 box, then class scores, then extras) for one anchor.
    pub fn at(&self, row: usize, anchor: usize) -> f32 {
        self.data[row * self.anchors + anchor]
    }

    /// Candidates whose best class score is strictly above `conf`, with that class, as
    /// corner boxes in input pixels.
    pub fn candidates(&self, classes: usize, conf: f32) -> Result<Vec<Detection>, PluginError> {
        if classes == 0 || 4 + classes > self.rows {
            return Err(PluginError::unsupported(format!(
                "the head has {} rows, too few for 4 box rows and {classes} classes",
                self.rows
            )));
        }
        let mut out = Vec::new();
        for anchor in 0..self.anchors {
            let (mut best, mut class_id) = (f32::NEG_INFINITY, 0);
            for c in 0..classes {
                let s = self.at(4 + c, anchor);
                if s > best {
                    best = s;
                    class_id = c;
                }
            }
            // Strictly greater, and a NaN score never passes.
            if best.partial_cmp(&conf) != Some(std::cmp::Ordering::Greater) {
                continue;
            }
            let (cx, cy, w, h) = (
                self.at(0, anchor),
                self.at(1, anchor),
                self.at(2, anchor),
                self.at(3, anchor),
            );
            let (hw, hh) = (w / 2.0, h / 2.0);
            out.push(Detection {
                x1: cx - hw,
                y1: cy - hh,
                x2: cx + hw,
                y2: cy + hh,
                score: best,
                class_id,
                anchor,
            });
        }
        Ok(out)
    }
}

/// Per-class greedy NMS as torchvision computes it (f32, suppress when IoU > `iou`), keeping
/// at most `max_det`, best score first.
pub fn nms(mut candidates: Vec<Detection>, iou: f32, max_det: usize) -> Vec<Detection> {
    // Stable, so equal scores keep anchor order.
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    candidates.truncate(MAX_NMS);
    let boxes: Vec<[f32; 5]> = candidates
        .iter()
        .map(|d| {
            let off = d.class_id as f32 * CLASS_OFFSET;
            let (x1, y1, x2, y2) = (d.x1 + off, d.y1 + off, d.x2 + off, d.y2 + off);
            [x1, y1, x2, y2, (x2 - x1) * (y2 - y1)]
        })
        .collect();
    let mut suppressed = vec![false; candidates.len()];
    let mut keep = Vec::new();
    for i in 0..candidates.len() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        if keep.len() == max_det {
            break;
        }
        let a = boxes[i];
        for j in i + 1..candidates.len() {
            if suppressed[j] {
                continue;
            }
            let b = boxes[j];
            let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
            let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
            let inter = w * h;
            if inter / (a[4] + b[4] - inter) > iou {
                suppressed[j] = true;
            }
        }
    }
    let mut slots: Vec<Option<Detection>> = candidates.into_iter().map(Some).collect();
    keep.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// Finds the head (`output0`, else the first output) of one frame, checks that it has 4 box
/// rows, one row per class and `extra` more rows (32 mask coefficients in a segmentation
/// head), and returns it with the detections that survive the threshold and NMS. `classes`
/// is the model's class count from its `names`, when it has them.
pub fn detect<'a>(
    classes: Option<usize>,
    outputs: &[TensorRef<'a>],
    params: &Params,
    extra: usize,
) -> Result<(Head<'a>, Vec<Detection>), PluginError> {
    let output = sdk::output(outputs, "output0", 0)
        .ok_or_else(|| PluginError::invalid_input("the model returned no outputs"))?;
    let head = Head::new(output)?;
    let classes = classes.unwrap_or(head.rows.saturating_sub(4 + extra));
    if 4 + classes + extra != head.rows {
        return Err(PluginError::unsupported(format!(
            "the head has {} rows but the model names {classes} classes; this head needs 4 + classes{}",
            head.rows,
            if extra > 0 {
                format!(" + {extra}")
            } else {
                String::new()
            }
        )));
    }
    let kept = nms(
        head.candidates(classes, params.conf)?,
        params.iou,
        params.max_det as usize,
    );
    Ok((head, kept))
}

/// A detection as an instance with its box in original-image pixels.
pub fn box_instance(letterbox: &Letterbox, d: &Detection) -> Instance {
    let (x1, y1) = (letterbox.unmap_x(d.x1), letterbox.unmap_y(d.y1));
    let (x2, y2) = (letterbox.unmap_x(d.x2), letterbox.unmap_y(d.y2));
    Instance::new(d.class_id as u32, d.score).with_box(BoxGeometry::from_corners(x1, y1, x2, y2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x1: f32, y1: f32, x2: f32, y2: f32, score: f32, class_id: usize) -> Detection {
        Detection {
            x1,
            y1,
            x2,
            y2,
            score,
            class_id,
            anchor: 0,
        }
    }

    #[test]
    fn overlapping_boxes_of_one_class_keep_the_best() {
        let kept = nms(
            vec![
                det(0.0, 0.0, 10.0, 10.0, 0.8, 0),
                det(1.0, 0.0, 11.0, 10.0, 0.9, 0),
                det(50.0, 50.0, 60.0, 60.0, 0.5, 0),
            ],
            0.7,
            300,
        );
        let scores: Vec<f32> = kept.iter().map(|d| d.score).collect();
        assert_eq!(scores, vec![0.9, 0.5]);
    }

    #[test]
    fn overlapping_boxes_of_different_classes_both_stay() {
        let kept = nms(
            vec![det(0.0, 0.0, 10.0, 10.0, 0.8, 0), det(0.0, 0.0, 10.0, 10.0, 0.9, 1)],
            0.7,
            300,
        );
        assert_eq!(kept.len(), 2);
    }

    #[test]
    fn iou_exactly_at_the_threshold_is_kept() {
        // Same height, x overlap 5 of a union 15: IoU 1/3; with threshold 1/3 both stay.
        let kept = nms(
            vec![det(0.0, 0.0, 10.0, 10.0, 0.9, 0), det(5.0, 0.0, 15.0, 10.0, 0.8, 0)],
            1.0 / 3.0,
            300,
        );
        assert_eq!(kept.len(), 2);
        let kept = nms(
            vec![det(0.0, 0.0, 10.0, 10.0, 0.9, 0), det(5.0, 0.0, 15.0, 10.0, 0.8, 0)],
            0.3,
            300,
        );
        assert_eq!(kept.len(), 1);
    }

    #[test]
    fn max_det_caps_the_result() {
        let many: Vec<Detection> = (0..10)
            .map(|i| det(i as f32 * 20.0, 0.0, i as f32 * 20.0 + 10.0, 10.0, 0.5, 0))
            .collect();
        assert_eq!(nms(many, 0.7, 3).len(), 3);
    }

    #[test]
    fn candidates_need_a_score_strictly_above_conf() {
        // 2 anchors, 2 classes: rows cx, cy, w, h, class0, class1.
        let data: [f32; 12] = [10.0, 30.0, 20.0, 40.0, 4.0, 8.0, 2.0, 6.0, 0.25, 0.1, 0.2, 0.6];
        let shape = [1i64, 6, 2];
        let head = Head::new(&TensorRef::new("output0", &shape, &data)).expect("head");
        let c = head.candidates(2, 0.25).expect("candidates");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].class_id, 1);
        assert_eq!((c[0].x1, c[0].y1, c[0].x2, c[0].y2), (26.0, 37.0, 34.0, 43.0));
    }

    #[test]
    fn a_wrong_head_shape_is_an_error() {
        let data = [0.0f32; 6];
        let shape = [2i64, 3];
        assert!(
            Head::new(&TensorRef::new("output0", &shape, &data))
                .expect("head")
                .candidates(3, 0.1)
                .is_err()
        );
        let shape = [1i64, 1, 2, 3];
        assert!(Head::new(&TensorRef::new("output0", &shape, &data)).is_err());
    }
}
