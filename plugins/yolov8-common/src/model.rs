//! What the YOLOv8 adapters read from a model, on top of the SDK's helpers.

use plugin_api::{ModelInfo, PluginError, sdk};

pub use plugin_api::sdk::{ImageInput, output_info as output};

/// Ultralytics' default export size, for a dynamic model without `imgsz` metadata.
pub const DEFAULT_SIZE: u32 = 640;

/// The `[batch, 3, h, w]` input with the size to letterbox to.
pub fn image_input(model: &ModelInfo) -> Result<ImageInput, PluginError> {
    sdk::image_input(model, DEFAULT_SIZE)
}
