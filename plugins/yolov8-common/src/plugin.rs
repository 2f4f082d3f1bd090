//! The plugin and adapter the YOLOv8 detection and segmentation plugins share: they differ
//! only in their family (how they recognise a model) and in what they make of one
//! frame's outputs.

use std::marker::PhantomData;

use plugin_api::{
    Adapter, Context, Fit, FrameOutput, Input, Instance, ModelInfo, Options, Output, Params, Plugin, PluginError,
    PluginInfo, Prepared, Step, TensorRef, capability, operation, sdk::Family,
};

use crate::{Letterbox, Opened, frame_outputs};

/// What a plugin makes of one frame's outputs, in original-image pixels.
pub trait FrameDecoder: Sized + Send + Sync + 'static {
    /// Reads what the decoder needs from the model, once.
    fn open(model: &ModelInfo) -> Result<Self, PluginError>;

    /// The answer to `operation::DESCRIBE` (what the model gives beyond class names).
    fn describe(&self) -> Options {
        Options::new()
    }

    fn instances(
        &self,
        opened: &Opened,
        outputs: &[TensorRef<'_>],
        letterbox: &Letterbox,
        params: &Params,
    ) -> Result<Vec<Instance>, PluginError>;
}

/// A YOLOv8 plugin: its name and version, the family it serves, and how it decodes a frame.
pub struct YoloPlugin<H> {
    pub name: &'static str,
    pub version: &'static str,
    pub family: Family,
    pub decoder: PhantomData<fn() -> H>,
}

impl<H: FrameDecoder> Plugin for YoloPlugin<H> {
    fn describe(&self) -> PluginInfo {
        PluginInfo::new(self.name, self.version, &[self.family.task]).with_capabilities(&[capability::BATCH])
    }

    fn inspect(&self, model: &ModelInfo) -> Fit {
        self.family.fit(model)
    }

    fn open(&self, model: &ModelInfo, _options: &Options) -> Result<Box<dyn Adapter>, PluginError> {
        Ok(Box::new(LetterboxAdapter {
            opened: Opened::new(model)?,
            decoder: H::open(model)?,
        }))
    }
}

/// One model's adapter: its input size and class count (read once), and how it decodes a frame.
pub struct LetterboxAdapter<H> {
    pub opened: Opened,
    pub decoder: H,
}

impl<H: FrameDecoder> Adapter for LetterboxAdapter<H> {
    fn prepare(&self, input: &Input<'_>) -> Result<Prepared, PluginError> {
        self.opened.prepare(input)
    }

    fn finish(&self, input: &Input<'_>, outputs: &[TensorRef<'_>], context: Context) -> Result<Step, PluginError> {
        let plans: Vec<Letterbox> = context.into_inner()?;
        let mut frames = Vec::with_capacity(plans.len());
        for (i, letterbox) in plans.iter().enumerate() {
            let mut shapes = Vec::new();
            let outputs = frame_outputs(outputs, i, &mut shapes)?;
            frames.push(FrameOutput::instances(self.decoder.instances(
                &self.opened,
                &outputs,
                letterbox,
                &input.params,
            )?));
        }
        Ok(Step::Done(Output::new(frames)))
    }

    fn call(&self, op: &str, _args: &Options) -> Result<Options, PluginError> {
        match op {
            operation::DESCRIBE => Ok(self.decoder.describe()),
            _ => Err(PluginError::unsupported(format!(
                "this adapter has no operation `{op}`"
            ))),
        }
    }
}
