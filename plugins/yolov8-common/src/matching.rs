//! How a YOLOv8 adapter decides whether a model is its own, and says why not, plus the
//! letterbox `prepare` the detection and segmentation adapters share.

use plugin_api::{Context, ImageRef, ModelInfo, PluginError, Prepared};

use crate::{
    Letterbox,
    model::{image_input, task},
};

/// Score for a model whose `task` metadata names the adapter's task.
pub const EXPLICIT_MATCH: u32 = 100;
/// Score for a model without a `task` whose outputs look like the adapter's heads.
pub const SHAPE_MATCH: u32 = 10;

/// One model family: its Ultralytics task name, a guess from the outputs for models
/// without metadata, and how to describe those outputs to a person.
pub struct Family {
    pub task: &'static str,
    pub looks_like: fn(&ModelInfo) -> bool,
    pub heads: &'static str,
}

impl Family {
    /// The `accepts` score: explicit task, else a shape guess, else 0.
    pub fn accepts(&self, model: &ModelInfo) -> u32 {
        if image_input(model).is_err() {
            return 0;
        }
        match task(model) {
            Some(t) if t == self.task => EXPLICIT_MATCH,
            Some(_) => 0,
            None if (self.looks_like)(model) => SHAPE_MATCH,
            None => 0,
        }
    }

    /// Why `accepts` says 0, or nothing when it does not.
    pub fn explain(&self, model: &ModelInfo) -> String {
        if let Err(e) = image_input(model) {
            return e.message.to_string();
        }
        match task(model) {
            Some(t) if t == self.task => String::new(),
            Some(other) => format!("the model's task is `{other}`; this adapter serves `{}`", self.task),
            None if (self.looks_like)(model) => String::new(),
            None => format!(
                "the model has no `task` metadata, and its outputs do not look like {}",
                self.heads
            ),
        }
    }
}

/// Letterboxes the image into the model's input; the plan travels to `finish`.
pub fn prepare_letterboxed(model: &ModelInfo, image: ImageRef<'_>) -> Result<Prepared, PluginError> {
    let input = image_input(model)?;
    let letterbox = Letterbox::plan(image.width, image.height, input.width, input.height)?;
    let tensor = letterbox.tensor(&input.name, image)?;
    Ok(Prepared::new(vec![tensor], Context::new(letterbox)))
}
