//! `ls-ml-backend`: a Label Studio ML backend serving ONNX models through adapter plugins.
//!
//! The binary (`main.rs`) wires these modules together; they are a library so that the
//! integration tests can check pieces (such as the brush RLE) against outside references.

pub mod config;
pub mod http;
pub mod imaging;
pub mod labelstudio;
pub mod metrics;
pub mod plan;
pub mod plugins;
pub mod predictor;
pub mod registry;
pub mod runtime;
pub mod watcher;
