//! The serving core of ls-ml-backend: one prediction request from its plan to typed results,
//! the models folder and its hot reload, the plugins, ONNX Runtime, images and video. It
//! knows no HTTP (that is the server crate) and no model family (those are the plugins).
//!
//! - `pipeline`: one prediction request: admission, the plan, the per-task stages, checking
//!   what an adapter sent;
//! - `models`: the models folder, loading, adapter choice, the table of models and routing;
//! - `plugins`: loading plugin libraries (ABI 2, and 1.x through a shim) and calling them;
//! - `runtime`: ONNX Runtime and each model's sessions;
//! - `video`: ffprobe, frames from ffmpeg, the timeline;
//! - `watcher`: hot reload of the models and plugins folders;
//! - `imaging`, `stages`, `metrics`, `worker`: leaves.

pub mod imaging;
pub mod metrics;
pub mod models;
pub mod pipeline;
pub mod plugins;
pub mod runtime;
pub mod stages;
pub mod video;
pub mod watcher;
pub mod worker;
