//! Adapter plugin for Ultralytics YOLOv8 instance segmentation models exported to ONNX.
//!
//! Detection is exactly `yolov8-detect`'s (the shared `yolov8-common` crate). Every
//! instance carries its box, its mask in original-image pixels (run-length encoded) and its
//! outline as Ultralytics' `masks.xy` draws it (traced at the model's input size, then
//! mapped back). Instances whose mask is empty are dropped, as Ultralytics drops them.

mod mask;

use plugin_api::{prelude::*, sdk, sdk::Family};
use yolov8_common::{Letterbox, Opened, box_instance, detect, frame_outputs, letterbox_input, model::output};

pub use mask::{InputMask, Protos, input_mask, outline, to_original};

/// YOLOv8 segmentation heads carry this many mask coefficients per anchor.
pub const MASK_COEFFICIENTS: usize = 32;

const FAMILY: Family = Family {
    task: "segment",
    input: letterbox_input,
    looks_like: looks_like_seg_heads,
    heads: "YOLOv8 segmentation heads ([1, 4 + classes + 32, anchors] and [1, 32, h, w] prototypes)",
};

#[derive(Debug, Default)]
pub struct YoloV8SegPlugin;

impl Plugin for YoloV8SegPlugin {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("yolov8-seg", env!("CARGO_PKG_VERSION"), &["segment"]).with_capabilities(&[capability::BATCH])
    }

    fn inspect(&self, model: &ModelInfo) -> Fit {
        FAMILY.fit(model)
    }

    fn open(&self, model: &ModelInfo, _options: &Options) -> Result<Box<dyn Adapter>, PluginError> {
        Ok(Box::new(YoloV8Seg(Opened::new(model)?)))
    }
}

/// One model's adapter: its input size and class count, read once.
#[derive(Debug)]
pub struct YoloV8Seg(pub Opened);

impl Adapter for YoloV8Seg {
    fn prepare(&self, input: &Input<'_>) -> Result<Prepared, PluginError> {
        self.0.prepare(input)
    }

    fn finish(&self, input: &Input<'_>, outputs: &[TensorRef<'_>], context: Context) -> Result<Step, PluginError> {
        let plans: Vec<Letterbox> = context.into_inner()?;
        let mut frames = Vec::with_capacity(plans.len());
        for (i, letterbox) in plans.iter().enumerate() {
            let mut shapes = Vec::new();
            let outputs = frame_outputs(outputs, i, &mut shapes)?;
            frames.push(FrameOutput::instances(self.instances(
                &outputs,
                letterbox,
                &input.params,
            )?));
        }
        Ok(Step::Done(Output::new(frames)))
    }
}

impl YoloV8Seg {
    /// The instances of one frame.
    fn instances(
        &self,
        outputs: &[TensorRef<'_>],
        letterbox: &Letterbox,
        params: &Params,
    ) -> Result<Vec<Instance>, PluginError> {
        let (head, kept) = detect(self.0.classes, outputs, params, MASK_COEFFICIENTS)?;
        let protos = sdk::output(outputs, "output1", 1)
            .ok_or_else(|| PluginError::unsupported("the model has no mask prototype output (output1)"))?;
        let protos = Protos::new(protos)?;
        if protos.channels != MASK_COEFFICIENTS {
            return Err(PluginError::unsupported(format!(
                "the prototypes have {} channels; YOLOv8 uses {MASK_COEFFICIENTS}",
                protos.channels
            )));
        }
        let first_coefficient = head.rows - MASK_COEFFICIENTS;
        let (in_w, in_h) = (letterbox.dst_w as usize, letterbox.dst_h as usize);
        let mut instances = Vec::with_capacity(kept.len());
        let mut coeffs = [0f32; MASK_COEFFICIENTS];
        for d in &kept {
            for (k, c) in coeffs.iter_mut().enumerate() {
                *c = head.at(first_coefficient + k, d.anchor);
            }
            let mask = input_mask(&protos, &coeffs, d, in_w, in_h);
            if mask.is_empty() {
                continue;
            }
            let mut instance = box_instance(letterbox, d).with_mask(to_original(&mask, letterbox));
            if let Some(points) = outline(&mask, letterbox) {
                instance.polygons.push(points);
            }
            instances.push(instance);
        }
        Ok(instances)
    }
}

/// A head `[batch, 4 + classes + 32, anchors]` and prototypes `[batch, 32, h, w]`.
fn looks_like_seg_heads(model: &ModelInfo) -> bool {
    if model.outputs.len() != 2 {
        return false;
    }
    let head = output(model, "output0", 0).map(|o| o.shape.as_slice());
    let protos = output(model, "output1", 1).map(|o| o.shape.as_slice());
    matches!(
        (head, protos),
        (Some([_, rows, _]), Some([_, channels, _, _]))
            if *channels == MASK_COEFFICIENTS as i64 && *rows > 4 + MASK_COEFFICIENTS as i64
    )
}

plugin_api::export_plugin!(YoloV8SegPlugin::default);
