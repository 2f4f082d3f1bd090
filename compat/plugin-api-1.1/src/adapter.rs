use crate::{AdapterInfo, Context, ImageRef, ModelInfo, Params, PluginError, Prepared, Region, TensorRef};

/// The trait a plugin author implements. [`crate::export_adapter!`] turns an implementation
/// into the plugin's exported root module, with every call guarded against panics.
pub trait Adapter: Send + Sync + 'static {
    /// Name, version and tasks of this adapter.
    fn describe(&self) -> AdapterInfo;

    /// How well this adapter fits a model: 0 means "cannot serve it"; higher wins. Use a high
    /// score for an explicit signal (metadata naming your task) and a low one for a guess
    /// from output shapes, so that a more specific adapter can win.
    fn accepts(&self, model: &ModelInfo) -> u32;

    /// Turns an image into the model's input tensors, plus whatever `finish` will need.
    fn prepare(&self, model: &ModelInfo, image: ImageRef<'_>, params: &Params) -> Result<Prepared, PluginError>;

    /// Why `accepts` says 0 for this model, in a sentence for the person who dropped it in
    /// (e.g. "the output has 3 dimensions; this adapter needs 2"). Empty means no comment.
    /// Since plugin-api 1.1.
    fn explain(&self, model: &ModelInfo) -> String {
        let _ = model;
        String::new()
    }

    /// Turns the model's outputs into regions in original-image pixels.
    fn finish(
        &self,
        model: &ModelInfo,
        outputs: &[TensorRef<'_>],
        context: Context,
        params: &Params,
    ) -> Result<Vec<Region>, PluginError>;
}
