//! Adapter plugin for Ultralytics YOLOv8 image classification models exported to ONNX,
//! built against `plugin-api` (and its SDK) alone.
//!
//! Preprocessing is Ultralytics 8.4's `classify_transforms` as `predict()` applies it to a
//! PIL image: resize the shortest edge to the model's size with Pillow's bilinear filter
//! (antialiased), centre crop, scale to 0..1. The model's output is already a softmax; the
//! five best classes come back, best first, for a `<Choices>` tag.

use plugin_api::{
    prelude::*,
    sdk::{self, Family, Placement, rgb_to_chw},
};

pub use plugin_api::sdk::resize_bilinear;

const TOP: usize = 5;
/// Ultralytics' classification export size, for a dynamic model without `imgsz`.
const DEFAULT_SIZE: u32 = 224;

const FAMILY: Family = Family {
    task: "classify",
    input: |model| sdk::image_input(model, DEFAULT_SIZE).map(drop),
    looks_like: looks_like_classifier,
    heads: "a classifier output [1, classes]",
};

/// One `[1, classes]` output.
fn looks_like_classifier(model: &ModelInfo) -> bool {
    model.outputs.len() == 1 && matches!(model.outputs[0].shape.as_slice(), [_, n] if *n > 1)
}

/// torchvision's `Resize(size)` for an int: the shortest edge becomes `size`, the other
/// keeps the aspect ratio, truncated.
fn shortest_edge(w: usize, h: usize, size: usize) -> (usize, usize) {
    if w <= h {
        (size, ((size as f64 * h as f64 / w as f64) as usize).max(1))
    } else {
        (((size as f64 * w as f64 / h as f64) as usize).max(1), size)
    }
}

/// torchvision's `CenterCrop` offset: Python's `round((in - out) / 2)`, ties to even.
fn crop_offset(len: usize, crop: usize) -> usize {
    (len.saturating_sub(crop) as f64 / 2.0).round_ties_even() as usize
}

#[derive(Debug, Default)]
pub struct YoloV8ClsPlugin;

impl Plugin for YoloV8ClsPlugin {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new("yolov8-cls", env!("CARGO_PKG_VERSION"), &["classify"]).with_capabilities(&[capability::BATCH])
    }

    fn inspect(&self, model: &ModelInfo) -> Fit {
        FAMILY.fit(model)
    }

    fn open(&self, model: &ModelInfo, _options: &Options) -> Result<Box<dyn Adapter>, PluginError> {
        Ok(Box::new(YoloV8Cls {
            input: sdk::image_input(model, DEFAULT_SIZE)?,
        }))
    }
}

/// One model's adapter: its input, read once.
#[derive(Debug)]
pub struct YoloV8Cls {
    input: sdk::ImageInput,
}

impl YoloV8Cls {
    /// One image into one `3 x h x w` item of the input tensor.
    fn write(&self, image: ImageRef<'_>, planes: &mut [f32]) -> Result<(), PluginError> {
        let (in_w, in_h) = (self.input.width as usize, self.input.height as usize);
        let (w, h) = (image.width as usize, image.height as usize);
        let pixels = image.rgb()?;
        // A square model resizes the shortest edge; another shape resizes to it exactly.
        let (rw, rh) = if in_w == in_h {
            shortest_edge(w, h, in_w)
        } else {
            (in_w, in_h)
        };
        let resized = resize_bilinear(pixels, w, h, rw, rh);
        let at = Placement {
            src_x: crop_offset(rw, in_w),
            src_y: crop_offset(rh, in_h),
            ..Placement::whole(in_w.min(rw), in_h.min(rh))
        };
        rgb_to_chw(ImageRef::new(rw as u32, rh as u32, &resized), planes, in_w, in_h, at)
    }
}

impl Adapter for YoloV8Cls {
    fn prepare(&self, input: &Input<'_>) -> Result<Prepared, PluginError> {
        let frames = input.frames();
        let (w, h) = (self.input.width as i64, self.input.height as i64);
        let mut tensor = Tensor::zeros(&self.input.name, ElementType::F32, &[frames.len() as i64, 3, h, w])?;
        let item = (3 * w * h) as usize;
        for (frame, planes) in frames.iter().zip(tensor.values_mut::<f32>()?.chunks_exact_mut(item)) {
            self.write(frame.image, planes)?;
        }
        Ok(Prepared::new(vec![tensor], Context::empty()))
    }

    fn finish(&self, input: &Input<'_>, outputs: &[TensorRef<'_>], _context: Context) -> Result<Step, PluginError> {
        let probs = sdk::output(outputs, "output0", 0)
            .ok_or_else(|| PluginError::invalid_input("the model returned no outputs"))?
            .f32s()?;
        let frames = input.frames().len().max(1);
        if probs.is_empty() || probs.len() % frames != 0 {
            return Err(PluginError::invalid_input(format!(
                "{} scores do not split into {frames} frames",
                probs.len()
            )));
        }
        let answers = probs.chunks_exact(probs.len() / frames).map(|probs| {
            let mut order: Vec<usize> = (0..probs.len()).filter(|&i| probs[i].is_finite()).collect();
            order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
            FrameOutput::classes(
                order
                    .into_iter()
                    .take(TOP)
                    .map(|class| ClassScore {
                        class_id: class as u32,
                        score: probs[class],
                    })
                    .collect(),
            )
        });
        Ok(Step::Done(Output::new(answers.collect())))
    }
}

plugin_api::export_plugin!(YoloV8ClsPlugin::default);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_edge_and_centre_crop_follow_torchvision() {
        assert_eq!(shortest_edge(640, 480, 96), (128, 96));
        assert_eq!(shortest_edge(360, 640, 96), (96, 170));
        assert_eq!(crop_offset(128, 96), 16);
        assert_eq!(crop_offset(97, 96), 0, "0.5 rounds to even");
        assert_eq!(crop_offset(99, 96), 2, "1.5 rounds to even");
    }
}
