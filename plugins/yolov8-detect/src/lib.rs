//! Adapter plugin for Ultralytics YOLOv8 detection models exported to ONNX.
//!
//! It reproduces Ultralytics 8.4's `predict()`: letterbox with OpenCV's bilinear resize and
//! grey padding, the `[1, 4 + classes, anchors]` head, per-class NMS, and boxes mapped back
//! to original-image pixels with per-axis gains.

use plugin_api::prelude::*;
use yolov8_common::{
    Letterbox,
    detect::Head,
    model::{class_count_from_names, image_input, output, task},
    nms,
};

/// Score for a model whose metadata says `task=detect`.
const EXPLICIT_MATCH: u32 = 100;
/// Score for a model without a task whose single output looks like a detection head.
const SHAPE_MATCH: u32 = 10;

#[derive(Debug, Default)]
pub struct YoloV8Detect;

impl Adapter for YoloV8Detect {
    fn describe(&self) -> AdapterInfo {
        AdapterInfo::new("yolov8-detect", env!("CARGO_PKG_VERSION"), &["detect"])
    }

    fn accepts(&self, model: &ModelInfo) -> u32 {
        if image_input(model).is_err() {
            return 0;
        }
        match task(model) {
            Some("detect") => EXPLICIT_MATCH,
            Some(_) => 0,
            None if looks_like_detect_head(model) => SHAPE_MATCH,
            None => 0,
        }
    }

    fn prepare(&self, model: &ModelInfo, image: ImageRef<'_>, _params: &Params) -> Result<Prepared, PluginError> {
        let input = image_input(model)?;
        let letterbox = Letterbox::plan(image.width, image.height, input.width, input.height)?;
        let tensor = letterbox.tensor(&input.name, image)?;
        Ok(Prepared::new(vec![tensor], Context::new(letterbox)))
    }

    fn finish(
        &self,
        model: &ModelInfo,
        outputs: &[TensorRef<'_>],
        context: Context,
        params: &Params,
    ) -> Result<Vec<Region>, PluginError> {
        let letterbox: Letterbox = context.into_inner()?;
        let head_output = outputs
            .iter()
            .find(|t| t.name() == "output0")
            .or_else(|| outputs.first())
            .ok_or_else(|| PluginError::invalid_input("the model returned no outputs"))?;
        let head = Head::new(head_output)?;
        let classes = class_count_from_names(model).unwrap_or(head.rows.saturating_sub(4));
        if 4 + classes != head.rows {
            return Err(PluginError::unsupported(format!(
                "the head has {} rows but the model names {classes} classes; a detection head has 4 + classes",
                head.rows
            )));
        }
        let kept = nms(
            head.candidates(classes, params.conf)?,
            params.iou,
            params.max_det as usize,
        );
        Ok(kept
            .into_iter()
            .map(|d| {
                let (x1, y1) = (letterbox.unmap_x(d.x1), letterbox.unmap_y(d.y1));
                let (x2, y2) = (letterbox.unmap_x(d.x2), letterbox.unmap_y(d.y2));
                Region {
                    class_id: d.class_id as u32,
                    score: d.score,
                    geometry: Geometry::Box(BoxGeometry {
                        x: x1,
                        y: y1,
                        width: x2 - x1,
                        height: y2 - y1,
                        rotation: 0.0,
                    }),
                }
            })
            .collect())
    }
}

/// One output `[batch, 4 + classes, anchors]` with more anchors than rows.
fn looks_like_detect_head(model: &ModelInfo) -> bool {
    if model.outputs.len() != 1 {
        return false;
    }
    match output(model, "output0", 0).map(|o| o.shape.as_slice()) {
        Some([_, rows, anchors]) => *rows > 4 && (*anchors < 0 || anchors > rows),
        _ => false,
    }
}

plugin_api::export_adapter!(YoloV8Detect::default);
