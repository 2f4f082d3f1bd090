//! Helpers for writing adapters. Nothing here crosses the plugin boundary: each plugin links
//! its own copy, and a later plugin-api may change these without breaking built plugins.

pub mod image;
pub mod matching;
pub mod model;
pub mod names;
pub mod resize;

pub use image::{Placement, rgb_to_chw};
pub use matching::{EXPLICIT_MATCH, Family, SHAPE_MATCH};
pub use model::{ImageInput, class_count, image_input, output, output_info, parse_imgsz, task};
pub use names::{parse_keypoint_names, parse_names};
pub use resize::resize_bilinear;
