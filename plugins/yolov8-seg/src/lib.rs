//! Adapter plugin for Ultralytics YOLOv8 instance segmentation models exported to ONNX.
//!
//! Detection is exactly `yolov8-detect`'s (the shared `yolov8-common` crate). For every
//! instance it returns three regions with the same class and score: the mask in
//! original-image pixels (run-length encoded), its outline as Ultralytics' `masks.xy` draws
//! it (traced at the model's input size, then mapped back), and the box. Instances whose
//! mask is empty are dropped, as Ultralytics drops them.

mod mask;

use plugin_api::prelude::*;
use yolov8_common::{
    Letterbox, box_region, detect,
    model::{image_input, output, task},
};

pub use mask::{InputMask, Protos, input_mask, outline, to_original};

/// YOLOv8 segmentation heads carry this many mask coefficients per anchor.
pub const MASK_COEFFICIENTS: usize = 32;

const EXPLICIT_MATCH: u32 = 100;
const SHAPE_MATCH: u32 = 10;

#[derive(Debug, Default)]
pub struct YoloV8Seg;

impl Adapter for YoloV8Seg {
    fn describe(&self) -> AdapterInfo {
        AdapterInfo::new("yolov8-seg", env!("CARGO_PKG_VERSION"), &["segment"])
    }

    fn accepts(&self, model: &ModelInfo) -> u32 {
        if image_input(model).is_err() {
            return 0;
        }
        match task(model) {
            Some("segment") => EXPLICIT_MATCH,
            Some(_) => 0,
            None if looks_like_seg_heads(model) => SHAPE_MATCH,
            None => 0,
        }
    }

    fn explain(&self, model: &ModelInfo) -> String {
        if let Err(e) = image_input(model) {
            return e.message.to_string();
        }
        match task(model) {
            Some("segment") => String::new(),
            Some(other) => format!("the model's task is `{other}`; this adapter serves `segment`"),
            None if looks_like_seg_heads(model) => String::new(),
            None => "the model has no `task` metadata, and its outputs do not look like YOLOv8 segmentation heads ([1, 4 + classes + 32, anchors] and [1, 32, h, w] prototypes)".to_string(),
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
        let (head, kept) = detect(model, outputs, params, MASK_COEFFICIENTS)?;
        let protos = outputs
            .iter()
            .find(|t| t.name() == "output1")
            .or_else(|| outputs.get(1))
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
        let mut regions = Vec::with_capacity(kept.len() * 2);
        let mut coeffs = [0f32; MASK_COEFFICIENTS];
        for d in &kept {
            for (k, c) in coeffs.iter_mut().enumerate() {
                *c = head.at(first_coefficient + k, d.anchor);
            }
            let mask = input_mask(&protos, &coeffs, d, in_w, in_h);
            if mask.is_empty() {
                continue;
            }
            let boxed = box_region(&letterbox, d);
            regions.push(Region {
                geometry: Geometry::Mask(to_original(&mask, &letterbox)),
                ..boxed.clone()
            });
            if let Some(points) = outline(&mask, &letterbox) {
                regions.push(Region {
                    geometry: Geometry::Polygon(points),
                    ..boxed.clone()
                });
            }
            regions.push(boxed);
        }
        Ok(regions)
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

plugin_api::export_adapter!(YoloV8Seg::default);
