use crate::{Context, Fit, Input, ModelInfo, Options, PluginError, PluginInfo, Prepared, Step, TensorRef};

/// The plugin: what a plugin author implements once per library. [`crate::export_plugin!`]
/// turns it into the library's root module, with every call guarded against panics.
pub trait Plugin: Send + Sync + 'static {
    /// Name, version, tasks and capabilities.
    fn describe(&self) -> PluginInfo;

    /// How well this plugin fits a model: `Fit::score(n)` with a high `n` for an explicit
    /// signal (metadata naming your task) and a low one for a guess from output shapes, so
    /// that a more specific plugin can win; `Fit::no(reason)` when it cannot serve it.
    fn inspect(&self, model: &ModelInfo) -> Fit;

    /// Opens an adapter for one model. `options` are the model's own settings (its sidecar's
    /// `[options]` table). The adapter lives as long as the model is loaded and may keep
    /// state: parsed class names, caches, trackers.
    fn open(&self, model: &ModelInfo, options: &Options) -> Result<Box<dyn Adapter>, PluginError>;
}

/// One model's adapter. The host calls it from several threads at once, for different
/// predictions: state that changes must be behind a lock (or atomics).
pub trait Adapter: Send + Sync + 'static {
    /// Turns the frames (and prompts) into the model's input tensors, plus whatever
    /// `finish` will need.
    fn prepare(&self, input: &Input<'_>) -> Result<Prepared, PluginError>;

    /// Turns the model's outputs into instances and classes in original-image pixels, one
    /// `FrameOutput` per frame; or, for a two-stage model, asks for another inference.
    fn finish(&self, input: &Input<'_>, outputs: &[TensorRef<'_>], context: Context) -> Result<Step, PluginError>;

    /// A named operation beyond prepare and finish (clearing a cache, ending a video's
    /// tracks, ...). The default answers that the adapter does not know it.
    fn call(&self, operation: &str, args: &Options) -> Result<Options, PluginError> {
        let _ = args;
        Err(PluginError::unsupported(format!(
            "this adapter has no operation `{operation}`"
        )))
    }
}
