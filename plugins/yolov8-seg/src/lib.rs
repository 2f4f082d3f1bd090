//! Adapter plugin for Ultralytics YOLOv8 instance segmentation models exported to ONNX.
//!
//! Detection is exactly `yolov8-detect`'s (the shared `yolov8-common` crate). For every
//! instance it returns three regions with the same class and score: the mask in
//! original-image pixels (run-length encoded), its outline as Ultralytics' `masks.xy` draws
//! it (traced at the model's input size, then mapped back), and the box. Instances whose
//! mask is empty are dropped, as Ultralytics drops them.

mod mask;

use plugin_api::prelude::*;
use yolov8_common::{Family, Letterbox, box_region, detect, model::output, prepare_letterboxed};

pub use mask::{InputMask, Protos, input_mask, outline, to_original};

/// YOLOv8 segmentation heads carry this many mask coefficients per anchor.
pub const MASK_COEFFICIENTS: usize = 32;

const FAMILY: Family = Family {
    task: "segment",
    looks_like: looks_like_seg_heads,
    heads: "YOLOv8 segmentation heads ([1, 4 + classes + 32, anchors] and [1, 32, h, w] prototypes)",
};

#[derive(Debug, Default)]
pub struct YoloV8Seg;

impl Adapter for YoloV8Seg {
    fn describe(&self) -> AdapterInfo {
        AdapterInfo::new("yolov8-seg", env!("CARGO_PKG_VERSION"), &["segment"])
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
