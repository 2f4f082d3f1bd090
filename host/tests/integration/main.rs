//! The host's integration tests, in one binary so that the host links once: the real
//! `ls-ml-backend` binary, the plugins cargo built and the real ONNX Runtime, driven over HTTP.
//!
//! Two tiers:
//! - `cargo test` runs every test that needs nothing outside the workspace but ONNX Runtime's
//!   library (`scripts/setup-onnxruntime.sh`).
//! - Tests that need an outside program (Label Studio, Chromium, ffmpeg, the trainer's
//!   Ultralytics) are `#[ignore]`d with the reason, which `cargo test` prints. `scripts/test.sh`
//!   installs those programs and runs every test with `--include-ignored`: CI skips nothing.

mod common;

mod architecture;
mod batching;
mod cls_parity;
mod family_parity;
mod fuzz;
mod hot_reload;
mod interactive;
mod label_studio_e2e;
mod label_studio_protocol;
mod manage;
mod parity;
mod plugin_abi;
mod plugin_faults;
mod polygon_fidelity;
mod reliability;
mod runtime_layout;
mod sam_parity;
mod security;
mod seg_parity;
mod server;
mod soak;
mod typed_tensors;
mod ui_browser;
mod video;
