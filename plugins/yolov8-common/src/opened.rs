//! The YOLOv8 detection and segmentation adapters: what they share from opening a model to
//! the letterboxed input of a batch of frames.

use plugin_api::{Context, ElementType, Input, ModelInfo, PluginError, Prepared, Tensor, TensorRef, sdk};

use crate::{Letterbox, model::image_input};

/// What an open YOLOv8 adapter keeps for its model.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    pub input: sdk::ImageInput,
    /// The class count from the `names` metadata, parsed once.
    pub classes: Option<usize>,
    /// The `end2end` metadata: whether the head is NMS-free (YOLO26, YOLOv10).
    pub end2end: Option<bool>,
}

impl Opened {
    /// Reads the model once. A sidecar may force the adapter on a model that `inspect`
    /// refused, so only what `prepare` cannot do without is checked here.
    pub fn new(model: &ModelInfo) -> Result<Self, PluginError> {
        Ok(Self {
            input: image_input(model)?,
            classes: sdk::class_count(model),
            end2end: model
                .metadata("end2end")
                .and_then(|v| match v.trim().to_ascii_lowercase().as_str() {
                    "true" => Some(true),
                    "false" => Some(false),
                    _ => None,
                }),
        })
    }

    /// What the adapter expects of the head, with `extra` values after the class scores.
    pub fn head_spec(&self, extra: usize) -> crate::HeadSpec {
        crate::HeadSpec {
            classes: self.classes,
            extra,
            end2end: self.end2end,
        }
    }

    /// Letterboxes every frame into one `[frames, 3, h, w]` tensor; the plans travel to
    /// `finish`, one per frame.
    pub fn prepare(&self, input: &Input<'_>) -> Result<Prepared, PluginError> {
        let frames = input.frames();
        if frames.is_empty() {
            return Err(PluginError::invalid_input("no frames to prepare"));
        }
        let (w, h) = (self.input.width, self.input.height);
        let shape = [frames.len() as i64, 3, h as i64, w as i64];
        let mut tensor = Tensor::zeros(&self.input.name, ElementType::F32, &shape)?;
        let item = 3 * w as usize * h as usize;
        let mut plans = Vec::with_capacity(frames.len());
        for (frame, planes) in frames.iter().zip(tensor.values_mut::<f32>()?.chunks_exact_mut(item)) {
            let letterbox = Letterbox::plan(frame.image.width, frame.image.height, w, h)?;
            letterbox.write(frame.image, planes)?;
            plans.push(letterbox);
        }
        Ok(Prepared::new(vec![tensor], Context::new(plans)))
    }
}

/// The input `frames` accept: an image input the letterbox can fill.
pub fn letterbox_input(model: &ModelInfo) -> Result<(), PluginError> {
    image_input(model).map(drop)
}

/// The outputs of frame `index` of a batch, each with a batch axis of 1; `shapes` keeps
/// their shapes.
pub fn frame_outputs<'s>(
    outputs: &[TensorRef<'s>],
    index: usize,
    shapes: &'s mut Vec<Vec<i64>>,
) -> Result<Vec<TensorRef<'s>>, PluginError> {
    shapes.resize(outputs.len(), Vec::new());
    outputs
        .iter()
        .zip(shapes.iter_mut())
        .map(|(output, shape)| output.batch_item(index, shape))
        .collect()
}
