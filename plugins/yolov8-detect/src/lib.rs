//! Adapter plugin for Ultralytics YOLOv8 detection models exported to ONNX.
//!
//! It reproduces Ultralytics 8.4's `predict()`: letterbox with OpenCV's bilinear resize and
//! grey padding, the `[batch, 4 + classes, anchors]` head of YOLOv8 and YOLO11 with per-class
//! NMS, or the NMS-free `[batch, candidates, 6]` head of YOLO26 and YOLOv10, and boxes mapped
//! back to original-image pixels with per-axis gains.

use std::marker::PhantomData;

use plugin_api::{prelude::*, sdk::Family};
use yolov8_common::{
    FrameDecoder, Letterbox, Opened, YoloPlugin, box_instance, detect, letterbox_input, model::output,
};

const FAMILY: Family = Family {
    task: "detect",
    input: letterbox_input,
    looks_like: looks_like_detect_head,
    heads: "a YOLO detection head ([1, 4 + classes, anchors], or [1, candidates, 6] end-to-end)",
};

/// Detection: boxes after NMS.
#[derive(Debug, Default)]
pub struct DetectDecoder;

impl FrameDecoder for DetectDecoder {
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
        let (_, kept) = detect(&opened.head_spec(0), outputs, params)?;
        Ok(kept.iter().map(|d| box_instance(letterbox, d)).collect())
    }
}

pub fn plugin() -> YoloPlugin<DetectDecoder> {
    YoloPlugin {
        name: "yolov8-detect",
        version: env!("CARGO_PKG_VERSION"),
        family: FAMILY,
        decoder: PhantomData,
    }
}

/// One output `[batch, 4 + classes, anchors]` with more anchors than rows, or an
/// end-to-end `[batch, candidates, 6]`.
fn looks_like_detect_head(model: &ModelInfo) -> bool {
    if model.outputs.len() != 1 {
        return false;
    }
    match output(model, "output0", 0).map(|o| o.shape.as_slice()) {
        Some([_, rows, anchors]) => (*rows > 4 && (*anchors < 0 || anchors > rows)) || (*anchors == 6 && *rows > 6),
        _ => false,
    }
}

plugin_api::export_plugin!(plugin);
