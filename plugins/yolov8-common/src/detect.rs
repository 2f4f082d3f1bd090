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
    /// The candidate it came from (an anchor, or a row of an end-to-end head), to find its
    /// mask coefficients, keypoints or angle.
    pub anchor: usize,
}

/// How a head lays out its candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// YOLOv8 and YOLO11 (and the one-to-many export of YOLO26): `[1, 4 + classes + extra,
    /// anchors]`, a box `cx, cy, w, h` and a score per class for every anchor, before NMS.
    Anchors,
    /// The NMS-free heads of YOLO26 and YOLOv10: `[1, candidates, 6 + extra]`, best first,
    /// each `x1, y1, x2, y2, score, class` (`cx, cy, w, h` for oriented boxes), then extras.
    EndToEnd,
}

/// What the adapter expects of a head: its class count (from `names`), how many values
/// follow the class scores (32 mask coefficients, K x D keypoint values, 1 angle), and
/// whether the model says it is end-to-end (the `end2end` metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadSpec {
    pub classes: Option<usize>,
    pub extra: usize,
    pub end2end: Option<bool>,
}

impl HeadSpec {
    /// The layout of a `[1, a, b]` output. Where both layouts fit the shape, the `end2end`
    /// metadata decides, and without it the anchor layout (YOLOv8's) wins.
    pub fn layout(&self, a: usize, b: usize) -> Option<Layout> {
        let anchors = match self.classes {
            Some(classes) => a == 4 + classes + self.extra,
            None => a > 4 + self.extra,
        };
        let end_to_end = b == 6 + self.extra;
        match (anchors, end_to_end) {
            (true, true) if self.end2end == Some(true) => Some(Layout::EndToEnd),
            (true, _) if self.end2end != Some(true) || !end_to_end => Some(Layout::Anchors),
            (_, true) => Some(Layout::EndToEnd),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        let extra = if self.extra > 0 {
            format!(" + {}", self.extra)
        } else {
            String::new()
        };
        let rows = self
            .classes
            .map(|c| format!(", {} rows for the model's {c} classes", 4 + c + self.extra))
            .unwrap_or_default();
        format!(
            "[1, 4 + classes{extra}, anchors] (YOLOv8, YOLO11{rows}) or [1, candidates, {}] (end-to-end: YOLO26, YOLOv10)",
            6 + self.extra
        )
    }
}

/// A head output of one frame, viewed without copying.
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    data: &'a [f32],
    pub layout: Layout,
    /// Candidates: anchors, or rows of an end-to-end head.
    pub candidates: usize,
    /// Values per candidate.
    pub width: usize,
    /// Class scores per anchor (anchor layout); 0 when the names are unknown and the head is end-to-end.
    pub classes: usize,
}

impl<'a> Head<'a> {
    pub fn new(output: &TensorRef<'a>, spec: &HeadSpec) -> Result<Self, PluginError> {
        let shape = output.shape();
        let (a, b) = match shape {
            [1, a, b] | [a, b] if *a > 0 && *b >= 0 => (*a as usize, *b as usize),
            _ => {
                return Err(PluginError::unsupported(format!(
                    "output `{}` has shape {shape:?}; this adapter reads a head {} for one image",
                    output.name(),
                    spec.describe()
                )));
            }
        };
        let layout = spec.layout(a, b).ok_or_else(|| {
            PluginError::unsupported(format!(
                "output `{}` has shape {shape:?}{}; this adapter reads a head {}",
                output.name(),
                spec.classes
                    .map(|c| format!(" and the model names {c} classes"))
                    .unwrap_or_default(),
                spec.describe()
            ))
        })?;
        let data = output.f32s()?;
        if data.len() != a * b {
            return Err(PluginError::invalid_input(format!(
                "output `{}` holds {} values, but its shape {shape:?} needs {}",
                output.name(),
                data.len(),
                a * b
            )));
        }
        Ok(match layout {
            Layout::Anchors => Self {
                data,
                layout,
                candidates: b,
                width: a,
                classes: a - 4 - spec.extra,
            },
            Layout::EndToEnd => Self {
                data,
                layout,
                candidates: a,
                width: b,
                classes: spec.classes.unwrap_or(0),
            },
        })
    }

    /// Value `channel` of one candidate: 0-3 the box, then (anchor layout) one score per
    /// class or (end-to-end) the score and the class, then the extras.
    pub fn at(&self, channel: usize, candidate: usize) -> f32 {
        match self.layout {
            Layout::Anchors => self.data[channel * self.candidates + candidate],
            Layout::EndToEnd => self.data[candidate * self.width + channel],
        }
    }

    /// Extra value `k` (a mask coefficient, keypoint value or angle) of one candidate.
    pub fn extra(&self, k: usize, candidate: usize) -> f32 {
        match self.layout {
            Layout::Anchors => self.at(4 + self.classes + k, candidate),
            Layout::EndToEnd => self.at(6 + k, candidate),
        }
    }

    /// The four box values of one candidate as the head writes them.
    pub fn raw_box(&self, candidate: usize) -> [f32; 4] {
        [0, 1, 2, 3].map(|c| self.at(c, candidate))
    }

    /// Candidates whose score is strictly above `conf`, as corner boxes in input pixels.
    /// Anchor layout: the best class of each anchor, boxes from `cx, cy, w, h`, before NMS.
    /// End-to-end: the rows in their order (best first), at most `max_det`, as Ultralytics
    /// keeps them without NMS; `corners` says whether its boxes are `x1, y1, x2, y2` (else
    /// `cx, cy, w, h`, as in oriented-box heads).
    pub fn candidates(&self, conf: f32, max_det: usize, corners: bool) -> Result<Vec<Detection>, PluginError> {
        // Strictly greater, and a NaN score never passes.
        let passes = |s: f32| s.partial_cmp(&conf) == Some(std::cmp::Ordering::Greater);
        let mut out = Vec::new();
        match self.layout {
            Layout::Anchors => {
                if self.classes == 0 {
                    return Err(PluginError::unsupported("the head has no class score rows"));
                }
                for anchor in 0..self.candidates {
                    let (mut best, mut class_id) = (f32::NEG_INFINITY, 0);
                    for c in 0..self.classes {
                        let s = self.at(4 + c, anchor);
                        if s > best {
                            best = s;
                            class_id = c;
                        }
                    }
                    if passes(best) {
                        out.push(center_box(self.raw_box(anchor), best, class_id, anchor));
                    }
                }
            }
            Layout::EndToEnd => {
                for row in 0..self.candidates {
                    if out.len() == max_det {
                        break;
                    }
                    let score = self.at(4, row);
                    let class = self.at(5, row);
                    if !(passes(score) && class >= 0.0 && class.is_finite()) {
                        continue;
                    }
                    let class_id = class.round() as usize;
                    if self.classes > 0 && class_id >= self.classes {
                        return Err(PluginError::invalid_input(format!(
                            "the head gives class {class_id}, but the model names {} classes",
                            self.classes
                        )));
                    }
                    let b = self.raw_box(row);
                    out.push(if corners {
                        Detection {
                            x1: b[0],
                            y1: b[1],
                            x2: b[2],
                            y2: b[3],
                            score,
                            class_id,
                            anchor: row,
                        }
                    } else {
                        center_box(b, score, class_id, row)
                    });
                }
            }
        }
        Ok(out)
    }
}

fn center_box([cx, cy, w, h]: [f32; 4], score: f32, class_id: usize, anchor: usize) -> Detection {
    let (hw, hh) = (w / 2.0, h / 2.0);
    Detection {
        x1: cx - hw,
        y1: cy - hh,
        x2: cx + hw,
        y2: cy + hh,
        score,
        class_id,
        anchor,
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

/// Finds the head (`output0`, else the first output) of one frame and returns it with the
/// detections that survive the threshold and, for the anchor layout, per-class NMS.
pub fn detect<'a>(
    spec: &HeadSpec,
    outputs: &[TensorRef<'a>],
    params: &Params,
) -> Result<(Head<'a>, Vec<Detection>), PluginError> {
    let head = head(spec, outputs)?;
    let max_det = params.max_det as usize;
    let candidates = head.candidates(params.conf, max_det, true)?;
    let kept = match head.layout {
        Layout::Anchors => nms(candidates, params.iou, max_det),
        Layout::EndToEnd => candidates,
    };
    Ok((head, kept))
}

/// The head of one frame: `output0`, else the first output.
pub fn head<'a>(spec: &HeadSpec, outputs: &[TensorRef<'a>]) -> Result<Head<'a>, PluginError> {
    let output = sdk::output(outputs, "output0", 0)
        .ok_or_else(|| PluginError::invalid_input("the model returned no outputs"))?;
    Head::new(output, spec)
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

    const SPEC: HeadSpec = HeadSpec {
        classes: Some(2),
        extra: 0,
        end2end: None,
    };

    #[test]
    fn candidates_need_a_score_strictly_above_conf() {
        // 2 anchors, 2 classes: rows cx, cy, w, h, class0, class1.
        let data: [f32; 12] = [10.0, 30.0, 20.0, 40.0, 4.0, 8.0, 2.0, 6.0, 0.25, 0.1, 0.2, 0.6];
        let shape = [1i64, 6, 2];
        let head = Head::new(&TensorRef::new("output0", &shape, &data), &SPEC).expect("head");
        assert_eq!(head.layout, Layout::Anchors);
        let c = head.candidates(0.25, 300, true).expect("candidates");
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].class_id, 1);
        assert_eq!((c[0].x1, c[0].y1, c[0].x2, c[0].y2), (26.0, 37.0, 34.0, 43.0));
    }

    #[test]
    fn a_wrong_head_shape_is_an_error() {
        let data = [0.0f32; 6];
        let shape = [2i64, 3];
        assert!(Head::new(&TensorRef::new("output0", &shape, &data), &SPEC).is_err());
        let shape = [1i64, 1, 2, 3];
        assert!(Head::new(&TensorRef::new("output0", &shape, &data), &SPEC).is_err());
    }

    /// An end-to-end head: rows x1, y1, x2, y2, score, class, kept in order above `conf`
    /// (strictly), at most `max_det`, without NMS even where boxes overlap.
    #[test]
    fn end_to_end_rows_are_kept_in_order_without_nms() {
        let data: [f32; 24] = [
            0.0, 0.0, 10.0, 10.0, 0.9, 1.0, //
            0.0, 0.0, 10.0, 10.0, 0.8, 1.0, //
            5.0, 5.0, 20.0, 20.0, 0.25, 0.0, //
            1.0, 2.0, 3.0, 4.0, 0.3, 0.0,
        ];
        let shape = [1i64, 4, 6];
        let head = Head::new(&TensorRef::new("output0", &shape, &data), &SPEC).expect("head");
        assert_eq!(head.layout, Layout::EndToEnd);
        let kept = head.candidates(0.25, 300, true).expect("candidates");
        let scores: Vec<f32> = kept.iter().map(|d| d.score).collect();
        assert_eq!(
            scores,
            vec![0.9, 0.8, 0.3],
            "overlapping rows both stay; 0.25 is not above 0.25"
        );
        assert_eq!(
            (kept[2].x1, kept[2].y2, kept[2].class_id, kept[2].anchor),
            (1.0, 4.0, 0, 3)
        );
        assert_eq!(head.candidates(0.25, 2, true).expect("candidates").len(), 2, "max_det");
        let bad: [f32; 6] = [0.0, 0.0, 1.0, 1.0, 0.9, 7.0];
        let shape = [1i64, 1, 6];
        let head = Head::new(&TensorRef::new("output0", &shape, &bad), &SPEC).expect("head");
        assert!(head.candidates(0.25, 300, true).is_err(), "class 7 of 2");
    }

    #[test]
    fn the_layout_follows_the_shape_and_the_end2end_metadata() {
        let spec = |classes, extra, end2end| HeadSpec {
            classes,
            extra,
            end2end,
        };
        assert_eq!(spec(Some(3), 0, None).layout(7, 2100), Some(Layout::Anchors));
        assert_eq!(spec(Some(3), 0, None).layout(300, 6), Some(Layout::EndToEnd));
        assert_eq!(spec(Some(3), 32, Some(true)).layout(300, 38), Some(Layout::EndToEnd));
        assert_eq!(
            spec(Some(3), 12, None).layout(300, 6),
            None,
            "a pose head needs its keypoints"
        );
        // [1, 6, 6] fits both with 2 classes: the metadata decides, and YOLOv8 without it.
        assert_eq!(spec(Some(2), 0, Some(true)).layout(6, 6), Some(Layout::EndToEnd));
        assert_eq!(spec(Some(2), 0, None).layout(6, 6), Some(Layout::Anchors));
        assert_eq!(
            spec(None, 0, None).layout(300, 6),
            Some(Layout::Anchors),
            "300 rows could be 296 classes"
        );
        assert_eq!(spec(None, 0, Some(true)).layout(300, 6), Some(Layout::EndToEnd));
    }
}
