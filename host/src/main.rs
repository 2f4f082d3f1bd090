//! `ls-ml-backend`: a Label Studio ML backend serving ONNX models through adapter plugins.

use std::{
    net::SocketAddr,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::Parser;
use log::{error, info, warn};

use ls_ml_backend::{
    config::Config,
    http,
    http::AppState,
    labelstudio::{auth::KeyKind, media::MediaClient},
    metrics::Metrics,
    plugins,
    predictor::Predictor,
    registry::Registry,
    runtime::Runtime,
    watcher,
};

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
    let config = Config::parse();
    init_logging();
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
        return runtime.block_on(health_check(config.port));
    }
    let outcome = runtime.block_on(run(config));
    // Loads or inferences still running on the blocking pool do not hold the exit up.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match outcome {
        Ok(code) => code,
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let runtime = Arc::new(Runtime::init(&config)?);

    let plugins_dir = config.plugins_dir();
    if let Err(e) = plugins::library_files(&plugins_dir) {
        anyhow::bail!("{e}; set ML_PLUGINS_DIR to the folder of the adapter plugins");
    }

    if !config.models_dir.is_dir() {
        std::fs::create_dir_all(&config.models_dir).with_context(|| {
            format!(
                "the models folder {} does not exist and cannot be created",
                config.models_dir.display()
            )
        })?;
        info!("created the models folder {}", config.models_dir.display());
    }
    let registry = Arc::new(Registry::new(
        config.models_dir.clone(),
        Arc::clone(&runtime),
        plugins_dir.clone(),
        config.default_model.clone(),
        config.labels.clone(),
    ));
    if registry.load_new_plugins() == 0 {
        warn!(
            "no adapter plugins in {}: build them (cargo build --workspace) or set ML_PLUGINS_DIR; plugins put \
             there later are picked up while the server runs",
            plugins_dir.display()
        );
    }
    let metrics = Arc::new(Metrics::default());
    let media = MediaClient::new(&config).map_err(anyhow::Error::msg)?;
    match (&config.label_studio_url, media.key_kind()) {
        (None, _) => info!(
            "LABEL_STUDIO_URL is not set: Label Studio paths (/data/upload/...) are fetched from the address \
             Label Studio sends in /setup"
        ),
        (Some(url), None) => info!(
            "Label Studio at {url}; no LABEL_STUDIO_API_KEY, so its files are fetched with the project creator's \
             legacy token from /setup, if legacy tokens are enabled"
        ),
        (Some(url), Some(kind)) => info!(
            "Label Studio at {url}, with a {} in LABEL_STUDIO_API_KEY",
            match kind {
                KeyKind::Legacy => "legacy token",
                KeyKind::Personal => "personal access token",
            }
        ),
    }
    if config.basic_auth_user.is_some() != config.basic_auth_pass.is_some() {
        anyhow::bail!("set both BASIC_AUTH_USER and BASIC_AUTH_PASS, or neither");
    }
    let basic_auth = http::basic_auth::Expected::new(config.basic_auth());
    if basic_auth.is_on() {
        info!("HTTP Basic auth is required on every endpoint except /health and /webhook");
    }
    let predictor = Predictor {
        registry: Arc::clone(&registry),
        media,
        metrics: Arc::clone(&metrics),
        defaults: plugin_api::Params {
            conf: config.conf,
            iou: config.iou,
            max_det: config.max_det,
        },
        task_concurrency: config.tasks_in_flight(),
        in_flight: Arc::new(tokio::sync::Semaphore::new(config.tasks_in_flight())),
        polygon_tolerance: config.polygon_tolerance,
        max_image_pixels: config.max_image_pixels,
        queue: Arc::new(tokio::sync::Semaphore::new(config.queue_tasks.max(1))),
        queue_capacity: config.queue_tasks.max(1),
    };
    let state = Arc::new(AppState {
        predictor,
        basic_auth,
        max_body_bytes: config.max_body_mb.max(1) * 1024 * 1024,
        registry: Arc::clone(&registry),
        metrics,
        runtime,
        started,
    });

    let addr = SocketAddr::new(config.addr, config.port);
    let listener = http::listener::bind(addr).with_context(|| {
        format!(
            "cannot listen on {addr}: is another program using port {}? Set ML_BACKEND_PORT",
            config.port
        )
    })?;
    info!("listening on http://{}", listener.local_addr()?);

    // Models load in the background so /health answers at once; /models shows progress.
    let names = registry.scan();
    {
        let registry = Arc::clone(&registry);
        tokio::spawn(async move { registry.reload_all(names).await });
    }
    watcher::spawn(
        Arc::clone(&registry),
        config.watch,
        Duration::from_millis(config.watch_interval_ms),
    )
    .context("cannot watch the models folder")?;

    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = warp::serve(http::routes(state))
        .incoming(listener)
        .graceful(async move {
            shutdown_signal().await;
            let _ = stopping.send(());
        })
        .run();
    let grace = Duration::from_secs(config.shutdown_timeout_secs);
    tokio::select! {
        () = server => {
            info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        () = async move {
            if stopped.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            error!(
                "requests were still running {} s after the signal (ML_SHUTDOWN_TIMEOUT); stopping without them",
                grace.as_secs()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Asks a local server for /health: exit 0 if it answers 200 within two seconds.
async fn health_check(port: u16) -> ExitCode {
    let url = format!("http://127.0.0.1:{port}/health");
    let answer = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map(|client| client.get(&url).send());
    match answer {
        Ok(request) => match request.await {
            Ok(r) if r.status().is_success() => ExitCode::SUCCESS,
            Ok(r) => {
                error!("{url} answered {}", r.status());
                ExitCode::FAILURE
            }
            Err(e) => {
                error!("{url} did not answer: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            error!("cannot build an HTTP client: {e}");
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

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    info!("shutting down: finishing requests in flight");
}
