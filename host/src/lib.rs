//! `ls-ml-backend`: a Label Studio ML backend serving ONNX models through adapter plugins.
//!
//! The binary (`main.rs`) only sets up the process and calls [`server::run`]. The modules:
//!
//! - `http`: the thin warp routes, and the one place errors get their HTTP status;
//! - `labelstudio`: getting task media from Label Studio and elsewhere (the protocol itself,
//!   label configs and result JSON are the `labelstudio-protocol` crate);
//! - `pipeline`: one prediction request: admission, the per-task stages, checking what an
//!   adapter sent;
//! - `models`: the models folder, loading, adapter choice, the table of models and routing;
//! - `plugins`: loading plugin libraries (ABI 2, and 1.x through a shim) and calling them;
//! - `runtime`: ONNX Runtime and each model's sessions.

pub mod cli;
mod config;
mod http;
mod imaging;
mod jobs;
mod labelstudio;
mod metrics;
mod models;
mod pipeline;
mod plugins;
mod runtime;
pub mod server;
mod stages;
mod video;
mod watcher;
mod worker;

pub use config::{Command, Config};

/// What the integration tests and the benchmark use from inside the server, and nothing else:
/// the listener (for their own loopback servers), the image decoder and the runtime, each
/// compared against an outside reference. The Label Studio protocol is its own crate.
pub mod testing {
    pub use crate::{
        http::listener::bind,
        imaging::decode,
        runtime::{OwnedTensor, Provider, Runtime},
    };
}
