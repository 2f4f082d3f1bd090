//! Adapter plugin for Ultralytics YOLOv8 detection models exported to ONNX.
//!
//! It reproduces Ultralytics 8.4's `predict()`: letterbox with OpenCV's bilinear resize and
//! grey padding, the `[1, 4 + classes, anchors]` head, per-class NMS, and boxes mapped back
//! to original-image pixels with per-axis gains.

use plugin_api::prelude::*;
use yolov8_common::{Family, Letterbox, box_region, detect, model::output, prepare_letterboxed};

const FAMILY: Family = Family {
    task: "detect",
    looks_like: looks_like_detect_head,
    heads: "a YOLOv8 detection head [1, 4 + classes, anchors]",
};

#[derive(Debug, Default)]
pub struct YoloV8Detect;

impl Adapter for YoloV8Detect {
    fn describe(&self) -> AdapterInfo {
        AdapterInfo::new("yolov8-detect", env!("CARGO_PKG_VERSION"), &["detect"])
    }

    fn accepts(&self, model: &ModelInfo) -> u32 {
        FAMILY.accepts(model)
    }

    fn explain(&self, model: &ModelInfo) -> String {
        FAMILY.explain(model)
    }

    fn prepare(&self, model: &ModelInfo, image: ImageRef<'_>, _params: &Params) -> Result<Prepared, PluginError> {
        prepare_letterboxed(model, image)
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
