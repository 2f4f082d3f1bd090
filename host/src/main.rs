//! `ls-ml-backend`: a Label Studio ML backend serving ONNX models through adapter plugins.

use std::{process::ExitCode, time::Duration};

use clap::Parser;
use log::{error, info, warn};

use ls_ml_backend::{Command, Config, cli, server};

/// glibc gives every thread that allocates its own malloc arena (up to 8 per core), and
/// ONNX Runtime's and the decoders' buffers then fragment across all of them. Measured under
/// the bench's load: 2 arenas cut the peak resident memory by about a quarter, 1 arena by
/// another 30-40 MiB (188-206 -> 158-164 MiB) at the same throughput; the few allocations per
/// task never contend for its lock.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator tuning; it is called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    // A missing .env is normal; a broken one is worth saying before anything else runs.
    let dotenv = dotenvy::dotenv();
    let environment = ls_ml_backend::config::environment();
    let config = Config::parse();
    init_logging();
    for (theirs, ours) in &environment.aliased {
        info!("{theirs} (the official YOLO backend's name) is read as {ours}");
    }
    if !environment.blank.is_empty() {
        info!("blank, so unset: {}", environment.blank.join(", "));
    }
    if let Err(e) = &dotenv
        && !e.not_found()
    {
        warn!("ignoring .env: {e}");
    }
    // Blocking threads decode, prepare, infer and finish; more of them than a few per core
    // only adds memory (each thread gets its own allocator arena) and contention.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads((cores * 4).max(8))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if config.health_check {
        return runtime.block_on(server::health_check(config.port));
    }
    if let Some(Command::PredictProject { project, force, server }) = &config.command {
        return runtime.block_on(cli::predict_project(&config, *project, *force, server.as_deref()));
    }
    let outcome = runtime.block_on(server::run(config));
    // Loads or inferences still running on the blocking pool do not hold the exit up.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match outcome {
        Ok(code) => code,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// RUST_LOG as given (default `info`), with ONNX Runtime's chatty info lines held to
/// warnings unless RUST_LOG names `ort` itself.
fn init_logging() {
    let mut filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| "info".into());
    if !filter.split(',').any(|d| d.trim().starts_with("ort")) {
        filter.push_str(",ort=warn");
    }
    env_logger::Builder::new().parse_filters(&filter).init();
}
