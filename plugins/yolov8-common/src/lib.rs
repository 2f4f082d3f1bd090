//! Code shared by the YOLOv8 adapter plugins: Ultralytics' letterbox (with an OpenCV-exact
//! bilinear resize), decoding of the detection head, and its NMS. Each plugin links its own
//! copy; nothing here crosses the plugin boundary except `plugin-api` types.

pub mod detect;
pub mod letterbox;
pub mod model;
pub mod opened;
pub mod plugin;
pub mod resize;

pub use detect::{Detection, Head, HeadSpec, Layout, box_instance, detect, head, nms};
pub use letterbox::Letterbox;
pub use opened::{Opened, frame_outputs, letterbox_input};
pub use plugin::{FrameDecoder, LetterboxAdapter, YoloPlugin};
