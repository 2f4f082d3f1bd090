//! Adapter plugin for Ultralytics oriented-box models (`yolov8-obb`, YOLO11 and YOLO26 obb)
//! exported to ONNX.
//!
//! The head is `[batch, 4 + classes + 1, anchors]` (`cx, cy, w, h`, class scores, angle in
//! radians), or NMS-free `[batch, candidates, 7]` (`cx, cy, w, h, score, class, angle`) for
//! YOLO26. The exported graph already turns the angle logit into radians (YOLOv8's head with
//! a sigmoid, YOLO26's raw), so both read the same. As Ultralytics' `predict()`: the best
//! class per anchor above `conf`, rotated NMS with probabilistic IoU, the centre and size
//! mapped back with the letterbox's pad and gains (no clipping), and the box given to the
//! host as Label Studio draws rectangles: a corner, the two side lengths and a clockwise
//! rotation about that corner.

mod rotated;

use std::marker::PhantomData;

use plugin_api::{prelude::*, sdk::Family};
use yolov8_common::{FrameDecoder, Layout, Letterbox, Opened, YoloPlugin, head, letterbox_input, model::output};

pub use rotated::{RotatedBox, nms_rotated, probiou};

const FAMILY: Family = Family {
    task: "obb",
    input: letterbox_input,
    looks_like: looks_like_obb_head,
    heads: "an oriented-box head ([1, candidates, 7] end-to-end; the YOLOv8 layout needs `task: obb` metadata)",
};

pub fn plugin() -> YoloPlugin<ObbDecoder> {
    YoloPlugin {
        name: "yolov8-obb",
        version: env!("CARGO_PKG_VERSION"),
        family: FAMILY,
        decoder: PhantomData,
    }
}

/// Oriented boxes after rotated NMS.
#[derive(Debug, Default)]
pub struct ObbDecoder;

impl FrameDecoder for ObbDecoder {
    fn open(_model: &ModelInfo) -> Result<Self, PluginError> {
        Ok(Self)
    }

    fn instances(
        &self,
        opened: &Opened,
        outputs: &[TensorRef<'_>],
        letterbox: &Letterbox,
        params: &Params,
    ) -> Result<Vec<Instance>, PluginError> {
        let head = head(&opened.head_spec(1), outputs)?;
        let max_det = params.max_det as usize;
        let boxes: Vec<RotatedBox> = head
            .candidates(params.conf, max_det, false)?
            .into_iter()
            .map(|d| {
                let [cx, cy, w, h] = head.raw_box(d.anchor);
                RotatedBox {
                    cx,
                    cy,
                    w,
                    h,
                    angle: head.extra(0, d.anchor),
                    score: d.score,
                    class_id: d.class_id,
                }
            })
            .collect();
        let kept = match head.layout {
            Layout::Anchors => nms_rotated(boxes, params.iou, max_det),
            Layout::EndToEnd => boxes,
        };
        Ok(kept.iter().map(|b| instance(letterbox, b)).collect())
    }
}

/// The box in original-image pixels as Label Studio draws a rotated rectangle: from the corner
/// `centre - u - v` (u along the width, v along the height, both halves), `width` along the
/// angle and `height` across it, rotated clockwise (y points down) about that corner.
pub fn instance(letterbox: &Letterbox, b: &RotatedBox) -> Instance {
    let cx = (b.cx as f64 - letterbox.pad_left as f64) / letterbox.gain_x;
    let cy = (b.cy as f64 - letterbox.pad_top as f64) / letterbox.gain_y;
    let w = b.w as f64 / letterbox.gain_x;
    let h = b.h as f64 / letterbox.gain_y;
    Instance::new(b.class_id as u32, b.score).with_box(label_studio_box(cx, cy, w, h, b.angle as f64))
}

/// `cx, cy, w, h, angle` (radians, as Ultralytics' `xywhr`) as a corner, sides and rotation
/// in degrees in [0, 360).
pub fn label_studio_box(cx: f64, cy: f64, w: f64, h: f64, angle: f64) -> BoxGeometry {
    let (sin, cos) = angle.sin_cos();
    let (ux, uy) = (w / 2.0 * cos, w / 2.0 * sin);
    let (vx, vy) = (-h / 2.0 * sin, h / 2.0 * cos);
    BoxGeometry {
        x: (cx - ux - vx) as f32,
        y: (cy - uy - vy) as f32,
        width: w as f32,
        height: h as f32,
        rotation: angle.to_degrees().rem_euclid(360.0) as f32,
    }
}

/// Without metadata, only the end-to-end shape `[batch, candidates, 7]` tells an oriented-box
/// head apart (the YOLOv8 layout looks like a detection head with one more class).
fn looks_like_obb_head(model: &ModelInfo) -> bool {
    model.outputs.len() == 1
        && matches!(output(model, "output0", 0).map(|o| o.shape.as_slice()), Some([_, rows, 7]) if *rows > 7)
}

plugin_api::export_plugin!(plugin);

#[cfg(test)]
mod tests {
    use super::*;

    fn ultralytics_corners(cx: f64, cy: f64, w: f64, h: f64, a: f64) -> Vec<(f64, f64)> {
        let (s, c) = a.sin_cos();
        let v1 = (w / 2.0 * c, w / 2.0 * s);
        let v2 = (-h / 2.0 * s, h / 2.0 * c);
        vec![
            (cx + v1.0 + v2.0, cy + v1.1 + v2.1),
            (cx + v1.0 - v2.0, cy + v1.1 - v2.1),
            (cx - v1.0 - v2.0, cy - v1.1 - v2.1),
            (cx - v1.0 + v2.0, cy - v1.1 + v2.1),
        ]
    }

    #[test]
    fn label_studio_draws_the_same_corners() {
        for &(cx, cy, w, h, a) in &[
            (100.0, 50.0, 40.0, 10.0, 0.0),
            (100.0, 50.0, 40.0, 10.0, 0.3),
            (20.0, 80.0, 12.0, 30.0, -0.7),
            (300.0, 200.0, 50.0, 50.0, 2.5),
            (10.0, 10.0, 5.0, 9.0, std::f64::consts::FRAC_PI_2),
        ] {
            let b = label_studio_box(cx, cy, w, h, a);
            assert!((0.0..360.0).contains(&b.rotation), "{b:?}");
            // Label Studio's drawing of the box (BoxGeometry::corners) must give Ultralytics' corners.
            let ours = b.corners().map(|(x, y)| (x as f64, y as f64));
            let theirs = ultralytics_corners(cx, cy, w, h, a);
            for p in ours {
                let nearest = theirs
                    .iter()
                    .map(|q| ((p.0 - q.0).powi(2) + (p.1 - q.1).powi(2)).sqrt())
                    .fold(f64::INFINITY, f64::min);
                assert!(nearest < 1e-3, "corner {p:?} of {b:?} is not one of {theirs:?}");
            }
        }
    }

    #[test]
    fn an_unrotated_box_is_its_axis_aligned_rectangle() {
        let b = label_studio_box(100.0, 50.0, 40.0, 10.0, 0.0);
        assert_eq!((b.x, b.y, b.width, b.height, b.rotation), (80.0, 45.0, 40.0, 10.0, 0.0));
    }

    #[test]
    fn boxes_map_back_through_the_letterbox() {
        // 640x480 into 320x320: gain 0.5, 40 px of padding above and below.
        let letterbox = Letterbox::plan(640, 480, 320, 320).expect("plan");
        let b = RotatedBox {
            cx: 160.0,
            cy: 160.0,
            w: 20.0,
            h: 10.0,
            angle: 0.0,
            score: 0.9,
            class_id: 1,
        };
        let geometry = instance(&letterbox, &b).bbox.into_option().expect("box");
        assert_eq!(
            (geometry.x, geometry.y, geometry.width, geometry.height),
            (300.0, 230.0, 40.0, 20.0)
        );
    }
}
