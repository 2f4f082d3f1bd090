//! Adapter plugin for Ultralytics YOLOv8 detection models exported to ONNX.
//!
//! It reproduces Ultralytics 8.4's `predict()`: letterbox with OpenCV's bilinear resize and
//! grey padding, the `[1, 4 + classes, anchors]` head, per-class NMS, and boxes mapped back
//! to original-image pixels with per-axis gains.

use plugin_api::prelude::*;
use yolov8_common::{
    Letterbox, box_region, detect,
    model::{image_input, output, task},
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

    fn explain(&self, model: &ModelInfo) -> String {
        if let Err(e) = image_input(model) {
            return e.message.to_string();
        }
        match task(model) {
            Some("detect") => String::new(),
            Some(other) => format!("the model's task is `{other}`; this adapter serves `detect`"),
            None if looks_like_detect_head(model) => String::new(),
            None => "the model has no `task` metadata, and its outputs do not look like a YOLOv8 detection head [1, 4 + classes, anchors]".to_string(),
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
        let (_, kept) = detect(model, outputs, params, 0)?;
        Ok(kept.iter().map(|d| box_region(&letterbox, d)).collect())
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
