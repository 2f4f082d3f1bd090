//! The server's start-up: ONNX Runtime, the plugins, the models folder, the listener and
//! the watcher, wired together; then serving until a shutdown signal.

use std::{
    net::SocketAddr,
    path::Path,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use log::{error, info, warn};

use crate::{
    config::Config,
    http::{self, AppState},
};
use ls_core::{
    metrics::Metrics,
    models::{BatchSettings, Registry},
    pipeline::{Admission, Predictor},
    plugins,
    runtime::{Runtime, RuntimeError},
    watcher,
    worker::{WorkerFailed, off_executor as blocking},
};
use ls_labelstudio::{api::LabelStudioApi, auth::KeyKind, media::MediaClient};
use ls_training as jobs;

/// Why the server could not start, in words for whoever started it.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("{0}; set ML_PLUGINS_DIR to the folder of the adapter plugins")]
    Plugins(String),
    #[error("the models folder {dir} does not exist and cannot be created: {source}")]
    ModelsDir { dir: String, source: std::io::Error },
    #[error("{0}")]
    Media(ls_labelstudio::media::ClientError),
    #[error("{0}: set both BASIC_AUTH_USER and BASIC_AUTH_PASS (neither empty), or neither")]
    BasicAuth(&'static str),
    #[error("cannot listen on {addr}: {source}; is another program using the port? Set ML_BACKEND_PORT")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("cannot watch the models folder: {0}")]
    Watch(notify::Error),
    #[error("start-up: {0}")]
    Worker(#[from] WorkerFailed),
    #[error("jobs: {0}; set ML_STATE_DIR to a folder the server can write")]
    Jobs(jobs::StartError),
}

/// Creates the models folder if it is missing; whether it did. Blocking.
fn create_models_dir(dir: &Path) -> Result<bool, StartError> {
    if dir.is_dir() {
        return Ok(false);
    }
    std::fs::create_dir_all(dir).map_err(|source| StartError::ModelsDir {
        dir: dir.display().to_string(),
        source,
    })?;
    Ok(true)
}

/// Starts everything and serves until a shutdown signal.
/// Starts the server and serves until a stop signal: the runtime and plugins, the models
/// folder, Label Studio's client, the predictor and the jobs, then the listener, the
/// models' loads and the watcher.
pub async fn run(config: Config) -> Result<ExitCode, StartError> {
    let started = Instant::now();
    let settings = config.runtime_settings();
    let runtime = Arc::new(blocking(move || Runtime::init(&settings)).await??);
    let registry = open_registry(&config, Arc::clone(&runtime)).await?;
    let metrics = Arc::new(Metrics::default());
    let media = media_client(&config).await?;
    let (basic_auth, trust) = access(&config)?;
    let api = Arc::new(LabelStudioApi::new(Arc::clone(&media)).map_err(StartError::Media)?);
    let predictor = Arc::new(predictor(&config, &registry, media, &metrics));
    let context = jobs::Context {
        predictor: Arc::clone(&predictor),
        registry: Arc::clone(&registry),
        api,
        train: config.train_settings(),
        state_dir: config.state_dir(),
    };
    let (queue, keep) = (config.jobs_queue, config.jobs_keep);
    let jobs = blocking(move || jobs::Jobs::start(context, queue, keep))
        .await?
        .map_err(StartError::Jobs)?;
    let state = Arc::new(AppState {
        predictor,
        basic_auth,
        auth_throttle: Arc::new(http::basic_auth::Throttle::new(config.auth_failures_per_minute)),
        max_body_bytes: config.max_body_mb.max(1) * 1024 * 1024,
        max_model_bytes: config.max_model_mb.max(1) * 1024 * 1024,
        trust,
        webhook_secret: config.webhook_secret.clone(),
        registry: Arc::clone(&registry),
        metrics,
        runtime,
        started,
        jobs: Arc::clone(&jobs),
        annotations: http::AnnotationCounter::new(config.train_every_n_annotations),
    });

    let addr = SocketAddr::new(config.addr, config.port);
    let listener = http::listener::bind(addr).map_err(|source| StartError::Listen { addr, source })?;
    info!(
        "listening on http://{}",
        listener
            .local_addr()
            .map_err(|source| StartError::Listen { addr, source })?
    );
    start_loading(&config, &registry).await?;
    let outcome = serve(&config, listener, state).await;
    // A trainer is a process of its own: it must not outlive the server.
    jobs.shutdown();
    Ok(outcome)
}

/// The plugins folder checked, the models folder made if missing, and the registry over
/// them with the plugins loaded (the models load later, in the background).
async fn open_registry(config: &Config, runtime: Arc<Runtime>) -> Result<Arc<Registry>, StartError> {
    let plugins_dir = config.plugins_dir();
    let dir = plugins_dir.clone();
    blocking(move || plugins::library_files(&dir))
        .await?
        .map_err(|e| StartError::Plugins(e.to_string()))?;
    let models_dir = config.models_dir.clone();
    if blocking(move || create_models_dir(&models_dir)).await?? {
        info!("created the models folder {}", config.models_dir.display());
    }
    let registry = Arc::new(
        Registry::new(
            config.models_dir.clone(),
            runtime,
            plugins_dir.clone(),
            config.default_model.clone(),
            config.labels.clone(),
            BatchSettings {
                max_batch: config.max_batch.max(1),
                wait: Duration::from_millis(config.batch_wait_ms),
            },
        )
        .with_adapter_defaults(plugin_api::Options::new().with("embedding_cache_mb", config.embedding_cache_mb))
        .with_model_paths(config.allow_model_path),
    );
    if registry.load_new_plugins().await == 0 {
        warn!(
            "no adapter plugins in {}: build them (cargo build --workspace) or set ML_PLUGINS_DIR; plugins put \
             there later are picked up while the server runs",
            plugins_dir.display()
        );
    }
    Ok(registry)
}

/// The client for task media and Label Studio's API, and what it says about how it reaches
/// Label Studio.
async fn media_client(config: &Config) -> Result<Arc<MediaClient>, StartError> {
    // It checks LOCAL_FILES_DOCUMENT_ROOT on the file system.
    let media_config = config.media_settings();
    let media = Arc::new(
        blocking(move || MediaClient::new(&media_config))
            .await?
            .map_err(StartError::Media)?,
    );
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
    Ok(media)
}

/// Basic auth, and the trust rule for changes and costly actions.
fn access(config: &Config) -> Result<(http::basic_auth::Expected, http::Trust), StartError> {
    let basic_auth = http::basic_auth::Expected::new(config.basic_auth().map_err(StartError::BasicAuth)?);
    if basic_auth.is_on() {
        info!("HTTP Basic auth is required on every endpoint except /health and /webhook");
    }
    let trust = http::Trust::new(
        basic_auth.is_on(),
        config.addr.is_loopback(),
        &config.allowed_hosts,
        config.basic_auth_user.clone().filter(|_| basic_auth.is_on()),
    );
    if !basic_auth.is_on() && !config.addr.is_loopback() {
        warn!(
            "listening on {} without Basic auth: anyone who reaches the port may predict, but changes and trainings \
             are refused until BASIC_AUTH_USER and BASIC_AUTH_PASS are set",
            config.addr
        );
    }
    Ok((basic_auth, trust))
}

fn predictor(config: &Config, registry: &Arc<Registry>, media: Arc<MediaClient>, metrics: &Arc<Metrics>) -> Predictor {
    Predictor {
        registry: Arc::clone(registry),
        media,
        metrics: Arc::clone(metrics),
        defaults: plugin_api::Params {
            conf: config.conf,
            iou: config.iou,
            max_det: config.max_det,
        },
        task_concurrency: config.tasks_in_flight(),
        in_flight: Arc::new(tokio::sync::Semaphore::new(config.tasks_in_flight())),
        polygon_tolerance: config.polygon_tolerance,
        interactive_conf: config.interactive_conf,
        max_image_pixels: config.max_image_pixels,
        max_prompt_pixels: config.max_prompt_pixels,
        admission: Admission::new(config.queue_tasks),
        video: config.video_settings(),
    }
}

/// Models load in the background so /health answers at once (/models shows progress); the
/// watcher follows the folder from then on.
async fn start_loading(config: &Config, registry: &Arc<Registry>) -> Result<(), StartError> {
    let names = registry.scan().await;
    {
        let registry = Arc::clone(registry);
        tokio::spawn(async move { registry.reload_all(names).await });
    }
    watcher::spawn(
        Arc::clone(registry),
        config.watch,
        Duration::from_millis(config.watch_interval_ms),
    )
    .map_err(StartError::Watch)
}

/// Serves until a stop signal, then lets requests in flight finish for up to
/// ML_SHUTDOWN_TIMEOUT.
async fn serve(config: &Config, listener: tokio::net::TcpListener, state: http::State) -> ExitCode {
    let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = http::listener::Limits {
        header_timeout: Duration::from_secs(config.header_timeout_secs.max(1)),
        max_connections: config.max_connections,
        per_client: config.max_connections_per_client,
    };
    let server = http::listener::serve(listener, warp::service(http::routes(state)), limits, async move {
        shutdown_signal().await;
        let _ = stopping.send(());
    });
    let grace = Duration::from_secs(config.shutdown_timeout_secs);
    tokio::select! {
        () = server => {
            info!("stopped");
            ExitCode::SUCCESS
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
            ExitCode::FAILURE
        }
    }
}

/// Asks a local server for /health: exit 0 if it answers 200 within two seconds.
pub async fn health_check(port: u16) -> ExitCode {
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
