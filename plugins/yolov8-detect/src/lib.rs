//! Adapter plugin for Ultralytics YOLOv8 detection models exported to ONNX.
//!
//! It reproduces Ultralytics 8.4's `predict()`: letterbox with OpenCV's bilinear resize and
//! grey padding, the `[batch, 4 + classes, anchors]` head, per-class NMS, and boxes mapped
//! back to original-image pixels with per-axis gains.

use plugin_api::{prelude::*, sdk::Family};
use yolov8_common::{Letterbox, Opened, box_instance, detect, frame_outputs, letterbox_input, model::output};

const FAMILY: Family = Family {
    task: "detect",
    input: letterbox_input,
    looks_like: looks_like_detect_head,
    heads: "a YOLOv8 detection head [1, 4 + classes, anchors]",
};

#[derive(Debug, Default)]
pub struct YoloV8DetectPlugin;

impl Plugin for YoloV8DetectPlugin {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("yolov8-detect", env!("CARGO_PKG_VERSION"), &["detect"]).with_capabilities(&[capability::BATCH])
    }

    fn inspect(&self, model: &ModelInfo) -> Fit {
        FAMILY.fit(model)
    }

    fn open(&self, model: &ModelInfo, _options: &Options) -> Result<Box<dyn Adapter>, PluginError> {
        Ok(Box::new(YoloV8Detect(Opened::new(model)?)))
    }
}

/// One model's adapter: its input size and class count, read once.
#[derive(Debug)]
pub struct YoloV8Detect(pub Opened);

impl Adapter for YoloV8Detect {
    fn prepare(&self, input: &Input<'_>) -> Result<Prepared, PluginError> {
        self.0.prepare(input)
    }

    fn finish(&self, input: &Input<'_>, outputs: &[TensorRef<'_>], context: Context) -> Result<Step, PluginError> {
        let plans: Vec<Letterbox> = context.into_inner()?;
        let mut frames = Vec::with_capacity(plans.len());
        for (i, letterbox) in plans.iter().enumerate() {
            let mut shapes = Vec::new();
            let outputs = frame_outputs(outputs, i, &mut shapes)?;
            let (_, kept) = detect(self.0.classes, &outputs, &input.params, 0)?;
            frames.push(FrameOutput::instances(
                kept.iter().map(|d| box_instance(letterbox, d)).collect(),
            ));
        }
        Ok(Step::Done(Output::new(frames)))
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

plugin_api::export_plugin!(YoloV8DetectPlugin::default);
