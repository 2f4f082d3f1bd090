//! Adapter plugin for Ultralytics YOLOv8 instance segmentation models exported to ONNX.
//!
//! Detection is exactly `yolov8-detect`'s (the shared `yolov8-common` crate). Every
//! instance carries its box, its mask in original-image pixels (run-length encoded) and its
//! outline as Ultralytics' `masks.xy` draws it (traced at the model's input size, then
//! mapped back). Instances whose mask is empty are dropped, as Ultralytics drops them.

mod mask;

use std::marker::PhantomData;

use plugin_api::{prelude::*, sdk, sdk::Family};
use yolov8_common::{
    FrameDecoder, Letterbox, Opened, YoloPlugin, box_instance, detect, letterbox_input, model::output,
};

pub use mask::{InputMask, MIN_PIECE_SHARE, Protos, input_mask, outlines, to_original};

/// YOLOv8 segmentation heads carry this many mask coefficients per anchor.
pub const MASK_COEFFICIENTS: usize = 32;

const FAMILY: Family = Family {
    task: "segment",
    input: letterbox_input,
    looks_like: looks_like_seg_heads,
    heads: "YOLO segmentation heads ([1, 4 + classes + 32, anchors], or [1, candidates, 38] end-to-end, and [1, 32, h, w] prototypes)",
};

pub fn plugin() -> YoloPlugin<SegDecoder> {
    YoloPlugin {
        name: "yolov8-seg",
        version: env!("CARGO_PKG_VERSION"),
        family: FAMILY,
        decoder: PhantomData,
    }
}

/// Segmentation: boxes after NMS, each with its mask and outline.
#[derive(Debug, Default)]
pub struct SegDecoder;

impl FrameDecoder for SegDecoder {
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
        let (head, kept) = detect(&opened.head_spec(MASK_COEFFICIENTS), outputs, params)?;
        let protos = sdk::output(outputs, "output1", 1)
            .ok_or_else(|| PluginError::unsupported("the model has no mask prototype output (output1)"))?;
        let protos = Protos::new(protos)?;
        if protos.channels != MASK_COEFFICIENTS {
            return Err(PluginError::unsupported(format!(
                "the prototypes have {} channels; YOLOv8 uses {MASK_COEFFICIENTS}",
                protos.channels
            )));
        }
        let (in_w, in_h) = (letterbox.dst_w as usize, letterbox.dst_h as usize);
        let mut instances = Vec::with_capacity(kept.len());
        let mut coeffs = [0f32; MASK_COEFFICIENTS];
        for d in &kept {
            for (k, c) in coeffs.iter_mut().enumerate() {
                *c = head.extra(k, d.anchor);
            }
            let mask = input_mask(&protos, &coeffs, d, in_w, in_h);
            if mask.is_empty() {
                continue;
            }
            let mut instance = box_instance(letterbox, d).with_mask(to_original(&mask, letterbox));
            instance.polygons.extend(outlines(&mask, letterbox));
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
        (Some([_, rows, anchors]), Some([_, channels, _, _]))
            if *channels == MASK_COEFFICIENTS as i64
                && (*rows > 4 + MASK_COEFFICIENTS as i64 || *anchors == 6 + MASK_COEFFICIENTS as i64)
    )
}

plugin_api::export_plugin!(plugin);
