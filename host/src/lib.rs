//! `ls-ml-backend`: a Label Studio ML backend serving ONNX models through adapter plugins.
//!
//! The binary (`main.rs`) only sets up the process and calls [`server::run`]. The modules:
//!
//! - `http`: the thin warp routes, and the one place errors get their HTTP status;
//! - `labelstudio`: what Label Studio sends and gets (the protocol, label configs, media,
//!   result JSON);
//! - `pipeline`: one prediction request: admission, the per-task stages, checking what an
//!   adapter sent;
//! - `models`: the models folder, loading, adapter choice, the table of models and routing;
//! - `plugins`: loading plugin libraries (ABI 2, and 1.x through a shim) and calling them;
//! - `runtime`: ONNX Runtime and each model's sessions.

mod config;
mod http;
mod imaging;
mod labelstudio;
mod metrics;
mod models;
mod pipeline;
mod plugins;
mod runtime;
pub mod server;
mod watcher;

pub use config::Config;

/// What the integration tests and the benchmark check from outside the server, and nothing
/// else: each is a piece with an outside reference to compare against.
pub mod testing {
    pub use crate::{
        config::Provider,
        http::listener::bind,
        imaging::decode,
        labelstudio::{brush, label_config::LabelConfig, protocol::PredictRequest, results},
        runtime::{OwnedTensor, Runtime},
    };
}
