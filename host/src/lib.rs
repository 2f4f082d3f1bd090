//! `ls-ml-backend`, the server: start-up, the command line, the configuration and the HTTP
//! routes. The binary (`main.rs`) only sets up the process and calls [`server::run`].
//!
//! - `http`: the thin warp routes, the trust rule, the connection loop, and the one place
//!   errors get their HTTP status;
//! - `config`: the one `clap` struct; it hands each crate its own settings;
//! - `server`, `cli`: start-up and the command line.
//!
//! The work is done by the crates below it: `ls-core` (pipeline, models, plugins, runtime,
//! video), `ls-training` (jobs), `ls-labelstudio` (media and Label Studio's API) and
//! `labelstudio-protocol` (Label Studio's JSON).

pub mod cli;
pub mod config;
mod http;
pub mod server;

pub use config::{Command, Config};

/// What the integration tests and the benchmark use from inside the server, and nothing else:
/// the listener (for their own loopback servers), the image decoder and the runtime, each
/// compared against an outside reference. The Label Studio protocol is its own crate.
pub mod testing {
    pub use crate::http::listener::bind;
    pub use ls_core::{
        imaging::decode,
        runtime::{OwnedTensor, Provider, Runtime},
    };
}
