//! Every setting, from the command line or the environment (and `.env`, read at start-up).

use std::{net::IpAddr, path::PathBuf};

use clap::Parser;

pub use labelstudio_protocol::Secret;
pub use ls_core::{runtime::Provider, watcher::WatchMode};

/// The official YOLO backend's names for our settings (its README and compose file use them),
/// read when ours is unset, so that a compose file written for it keeps working.
pub const OFFICIAL_NAMES: [(&str, &str); 5] = [
    ("MODEL_SCORE_THRESHOLD", "ML_CONF"),
    ("LABEL_STUDIO_HOST", "LABEL_STUDIO_URL"),
    ("MODEL_ROOT", "ML_MODELS_DIR"),
    ("ALLOW_CUSTOM_MODEL_PATH", "ML_ALLOW_MODEL_PATH"),
    ("LOG_LEVEL", "RUST_LOG"),
];

/// What [`environment`] did, for the log once it runs.
#[derive(Debug, Default, PartialEq)]
pub struct EnvironmentNotes {
    /// Settings given as blank, read as unset.
    pub blank: Vec<String>,
    /// `(official name, ours)` pairs that were used.
    pub aliased: Vec<(&'static str, &'static str)>,
}

/// The settings' environment as a user of the official backend expects it: a blank variable
/// is unset (compose files leave unused ones blank, and `ML_DEFAULT_MODEL=` must not name a
/// model ""), and the official names stand in for ours where ours is unset. It changes the
/// environment, so it runs first in `main`, before any thread starts.
pub fn environment() -> EnvironmentNotes {
    use clap::CommandFactory;
    let mut notes = EnvironmentNotes::default();
    let ours: Vec<String> = Config::command()
        .get_arguments()
        .filter_map(|a| a.get_env())
        .filter_map(|name| name.to_str().map(str::to_string))
        .chain(
            OFFICIAL_NAMES
                .iter()
                .flat_map(|(theirs, ours)| [theirs.to_string(), ours.to_string()]),
        )
        .collect();
    let blank = |name: &str| std::env::var_os(name).is_some_and(|v| v.to_string_lossy().trim().is_empty());
    for name in &ours {
        if blank(name) {
            // SAFETY: main calls this before it starts any thread; nothing reads the
            // environment concurrently.
            unsafe { std::env::remove_var(name) };
            notes.blank.push(name.clone());
        }
    }
    for (theirs, ours) in OFFICIAL_NAMES {
        if std::env::var_os(ours).is_some() {
            continue;
        }
        let Some(value) = std::env::var_os(theirs) else {
            continue;
        };
        // The official LOG_LEVEL is Python's level name; RUST_LOG takes it in lower case.
        let value = if theirs == "LOG_LEVEL" {
            value
                .to_string_lossy()
                .trim()
                .to_lowercase()
                .replace("warning", "warn")
                .replace("critical", "error")
                .into()
        } else {
            value
        };
        // SAFETY: as above.
        unsafe { std::env::set_var(ours, value) };
        notes.aliased.push((theirs, ours));
    }
    notes
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "ls-ml-backend",
    version,
    about = "A Label Studio ML backend that serves the ONNX models in a folder through adapter plugins.",
    after_help = "Every option can also be set by the environment variable shown, or in a .env file \
                  in the working directory. RUST_LOG sets the log filter (default: info)."
)]
pub struct Config {
    /// Address to listen on. The default, loopback, is reachable from this machine only; set
    /// `0.0.0.0` for Label Studio elsewhere (with BASIC_AUTH_USER / BASIC_AUTH_PASS to allow
    /// changes and trainings).
    #[arg(long, env = "ML_BACKEND_ADDR", default_value = "127.0.0.1")]
    pub addr: IpAddr,

    /// Port to listen on.
    #[arg(long, env = "ML_BACKEND_PORT", default_value_t = 9090)]
    pub port: u16,

    /// Folder of .onnx models. `<project id>.onnx` serves that Label Studio project.
    #[arg(long, env = "ML_MODELS_DIR", default_value = "./models")]
    pub models_dir: PathBuf,

    /// How changes in the models folder are noticed: `notify` (file system events, at once),
    /// `poll` (compare the folder every ML_WATCH_INTERVAL_MS; for network file systems and
    /// Docker Desktop bind mounts, where events never arrive), or `off`.
    #[arg(long, env = "ML_WATCH", value_enum, default_value_t = WatchMode::Notify)]
    pub watch: WatchMode,

    /// Milliseconds between two looks at the models folder with ML_WATCH=poll. A file is
    /// loaded once it is unchanged over one interval.
    #[arg(long, env = "ML_WATCH_INTERVAL_MS", default_value_t = 1000)]
    pub watch_interval_ms: u64,

    /// Folder of adapter plugins (lib*.so). Default: the folder of this executable, so a
    /// plain `cargo build` finds the plugins it built.
    #[arg(long, env = "ML_PLUGINS_DIR")]
    pub plugins_dir: Option<PathBuf>,

    /// Where inference runs. With `cuda`, a model that CUDA cannot take falls back to the CPU
    /// with a warning; /models shows where each model really runs.
    #[arg(long, env = "ML_PROVIDER", value_enum, default_value_t = Provider::Cpu)]
    pub provider: Provider,

    /// Whether a control tag's `model_path` may pick its model (a file name in the models
    /// folder, never a path). Off: every tag gets the project's model.
    #[arg(long, env = "ML_ALLOW_MODEL_PATH", default_value_t = true, action = clap::ArgAction::Set,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_model_path: bool,

    /// Model (file name in the models folder, with or without .onnx) for projects that have
    /// no model of their own.
    #[arg(long, env = "ML_DEFAULT_MODEL")]
    pub default_model: Option<String>,

    /// Comma-separated class names, for models whose metadata carries none.
    #[arg(long, env = "ML_LABELS", value_delimiter = ',')]
    pub labels: Vec<String>,

    /// Default minimum score of a prediction. A control tag's `model_score_threshold` overrides it.
    #[arg(long, env = "ML_CONF", default_value_t = 0.25)]
    pub conf: f32,

    /// IoU threshold of non-maximum suppression.
    #[arg(long, env = "ML_IOU", default_value_t = 0.7)]
    pub iou: f32,

    /// At most this many regions per image.
    #[arg(long, env = "ML_MAX_DET", default_value_t = 300)]
    pub max_det: u32,

    /// How far, in pixels, a PolygonLabels outline may stray from the mask's outline when
    /// it is simplified (Douglas–Peucker); a small piece gets at most 1 % of its size (the
    /// square root of its area) instead. 0 keeps every boundary pixel.
    #[arg(long, env = "ML_POLYGON_TOLERANCE", default_value_t = 1.0)]
    pub polygon_tolerance: f64,

    /// ONNX Runtime sessions per model; each serves one inference at a time. Default: 2 on
    /// machines with 2 or more cores, else 1.
    #[arg(long, env = "ML_SESSIONS")]
    pub sessions: Option<usize>,

    /// Threads each session uses inside one inference. Default: cores / sessions.
    #[arg(long, env = "ML_INTRA_THREADS")]
    pub intra_threads: Option<usize>,

    /// Threads of one extra "solo" session per model, which runs an inference when no other
    /// inference is running: a lone request then gets all cores, while a busy server keeps
    /// the sessions above. 0 turns it off (saves one session's memory per model). Default:
    /// all cores on CPU, off on CUDA.
    #[arg(long, env = "ML_SOLO_THREADS")]
    pub solo_threads: Option<usize>,

    /// Tasks worked on at the same time (download, decode, inference), over all requests:
    /// each holds an image in memory. The rest wait their turn. Default: 2 per core, which
    /// keeps every session busy while the next images decode.
    #[arg(long, env = "ML_TASK_CONCURRENCY")]
    pub task_concurrency: Option<usize>,

    /// Most tasks one inference may carry: tasks (of one request or of several) that reach a
    /// model within ML_BATCH_WAIT_MS run as one batch, for models with a dynamic batch axis
    /// whose plugin declares `batch`. 1 turns batching off, the default: on CPU cores it
    /// brought no gain (docs/bench); on a GPU it has not been measured here yet.
    #[arg(long, env = "ML_MAX_BATCH", default_value_t = 1)]
    pub max_batch: usize,

    /// Confidence threshold for interactive labeling with a model that knows no prompts (a
    /// YOLO segmentation or detection model): it runs this low, since the annotator has just
    /// said an object is there, and the prompt picks the instance it points at.
    #[arg(long, env = "ML_INTERACTIVE_CONF", default_value_t = 0.05)]
    pub interactive_conf: f32,

    /// Memory, in MB, each segment-anything model may keep image embeddings in, so that every
    /// click after the first on an image runs only the prompt decoder. The least recently
    /// used image goes first; 0 keeps none (each click encodes the image again).
    #[arg(long, env = "ML_EMBEDDING_CACHE_MB", default_value_t = 256)]
    pub embedding_cache_mb: u64,

    /// Milliseconds a task waits for others to fill its batch (with ML_MAX_BATCH above 1).
    #[arg(long, env = "ML_BATCH_WAIT_MS", default_value_t = 2)]
    pub batch_wait_ms: u64,

    /// Largest image download, in bytes.
    #[arg(long, env = "ML_MAX_IMAGE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_image_bytes: u64,

    /// Largest image, in pixels (width x height), checked before decoding: a small file can
    /// hold a huge image (a decompression bomb). Decoding takes 3 bytes per pixel.
    #[arg(long, env = "ML_MAX_IMAGE_PIXELS", default_value_t = 64_000_000)]
    pub max_image_pixels: u64,

    /// Largest image (width x height) of a smart-tool prompt (SAM, YOLO-seg clicks): its
    /// masks are made at the image's own size, so one click costs several times the image.
    #[arg(long, env = "ML_MAX_PROMPT_PIXELS", default_value_t = 25_000_000)]
    pub max_prompt_pixels: u64,

    /// Largest video download, in MiB. Videos are streamed to a temporary file (local files
    /// are read in place), never held in memory whole.
    #[arg(long, env = "ML_MAX_VIDEO_MB", default_value_t = 1024)]
    pub max_video_mb: u64,

    /// Videos with more frames than this are refused (their task gets an error), before
    /// any frame is decoded.
    #[arg(long, env = "ML_VIDEO_MAX_FRAMES", default_value_t = 9_000)]
    pub video_max_frames: u64,

    /// Videos longer than this many seconds are refused, before any frame is decoded.
    #[arg(long, env = "ML_VIDEO_MAX_SECONDS", default_value_t = 900.0)]
    pub video_max_seconds: f64,

    /// Track every Nth frame of a video (a VideoRectangle's `model_frame_step` overrides
    /// it). Label Studio interpolates the boxes in between, as between keyframes.
    #[arg(long, env = "ML_VIDEO_FRAME_STEP", default_value_t = 1)]
    pub video_frame_step: u32,

    /// Seconds that ffmpeg or ffprobe may go without delivering anything before it is
    /// killed and its task fails.
    #[arg(long, env = "ML_VIDEO_STALL_SECS", default_value_t = 30)]
    pub video_stall_secs: u64,

    /// The ffmpeg program, which decodes videos (a name on PATH or a path).
    #[arg(long, env = "ML_FFMPEG", default_value = "ffmpeg")]
    pub ffmpeg: PathBuf,

    /// The ffprobe program, which reads a video's size, frame rate and rotation.
    #[arg(long, env = "ML_FFPROBE", default_value = "ffprobe")]
    pub ffprobe: PathBuf,

    /// Largest model upload through the management API (`PUT /models/NAME`), in MiB.
    #[arg(long, env = "ML_MAX_MODEL_MB", default_value_t = 512)]
    pub max_model_mb: u64,

    /// Largest /predict (or other) request body, in MiB.
    #[arg(long, env = "ML_MAX_BODY_MB", default_value_t = 64)]
    pub max_body_mb: u64,

    /// Tasks admitted at once, over all /predict requests (running or waiting). A request
    /// that does not fit is answered 503 with Retry-After, instead of piling up in memory;
    /// a single request with more tasks than this is refused with 413.
    #[arg(long, env = "ML_QUEUE_TASKS", default_value_t = 20_000)]
    pub queue_tasks: usize,

    /// Seconds that requests in flight get to finish after SIGTERM or Ctrl-C.
    #[arg(long, env = "ML_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,

    /// If set, image URLs may only point at these hosts (comma-separated; Label Studio's own
    /// address is always allowed). Example: `images.example.com,cdn.example.com`.
    #[arg(long, env = "ML_MEDIA_ALLOWED_HOSTS", value_delimiter = ',')]
    pub media_allowed_hosts: Vec<String>,

    /// Refuse image URLs whose host resolves to a loopback, private or link-local address
    /// (Label Studio's own address excepted), so that task data cannot make the backend probe
    /// its network.
    #[arg(long, env = "ML_MEDIA_BLOCK_PRIVATE", default_value_t = false)]
    pub media_block_private: bool,

    /// Seconds to wait for an image download to connect, and then to finish.
    #[arg(long, env = "ML_FETCH_TIMEOUT", default_value_t = 30)]
    pub fetch_timeout_secs: u64,

    /// Base URL of Label Studio, used to download task images such as /data/upload/...
    #[arg(long, env = "LABEL_STUDIO_URL")]
    pub label_studio_url: Option<String>,

    /// Label Studio API key: a personal access token (Account & Settings > Personal Access
    /// Token) or a legacy token. Sent only to Label Studio, never logged. Default: the legacy
    /// token Label Studio sends in /setup.
    #[arg(long, env = "LABEL_STUDIO_API_KEY", hide_env_values = true)]
    pub label_studio_api_key: Option<Secret>,

    /// Same as LABEL_STUDIO_API_KEY (the name some older backends use).
    #[arg(long, env = "LABEL_STUDIO_TOKEN", hide_env_values = true, hide = true)]
    pub label_studio_token: Option<Secret>,

    /// Folder that Label Studio's Local Files storage serves (its LOCAL_FILES_DOCUMENT_ROOT),
    /// when it is mounted here too: `/data/local-files/?d=...` images are then read from disk
    /// instead of downloaded. Paths that leave this folder are refused.
    #[arg(long, env = "LOCAL_FILES_DOCUMENT_ROOT")]
    pub local_files_document_root: Option<PathBuf>,

    /// Memory for recently downloaded images, in MiB, so that predicting the same tasks again
    /// does not download them again. 0 turns the cache off.
    #[arg(long, env = "ML_MEDIA_CACHE_MB", default_value_t = 64)]
    pub media_cache_mb: u64,

    /// User name that clients must send with HTTP Basic auth (set BASIC_AUTH_PASS too).
    /// /health and /webhook stay open: Label Studio's own webhook sends no credentials.
    #[arg(long, env = "BASIC_AUTH_USER")]
    pub basic_auth_user: Option<String>,

    /// Password for BASIC_AUTH_USER.
    #[arg(long, env = "BASIC_AUTH_PASS", hide_env_values = true)]
    pub basic_auth_pass: Option<Secret>,

    /// Host names, besides localhost, 127.0.0.1 and [::1], that a server on a loopback
    /// address answers to (comma-separated). Any other `Host` is refused, so that a web page
    /// that rebinds its own name to 127.0.0.1 gets nothing.
    #[arg(long, env = "ML_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,

    /// A secret that lets webhook events count toward automatic training without Basic auth:
    /// give Label Studio the webhook URL `http://this-backend/webhook?secret=<it>`.
    #[arg(long, env = "ML_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<Secret>,

    /// Seconds a client has to send a request's headers, and that an idle connection stays
    /// open; slower ones are closed.
    #[arg(long, env = "ML_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout_secs: u64,

    /// Connections open at once; past it new ones wait until one closes.
    #[arg(long, env = "ML_MAX_CONNECTIONS", default_value_t = 512)]
    pub max_connections: usize,

    /// Connections open at once from one address; past it new ones are closed at once.
    #[arg(long, env = "ML_MAX_CONNECTIONS_PER_CLIENT", default_value_t = 128)]
    pub max_connections_per_client: usize,

    /// Failed Basic auth attempts from one address per minute; past it the address gets 429
    /// until the minute is over.
    #[arg(long, env = "ML_AUTH_FAILURES_PER_MINUTE", default_value_t = 20)]
    pub auth_failures_per_minute: u32,

    /// Folder for the server's own state: job records and their working files (datasets,
    /// trainer runs). Default: `.state` inside the models folder (hidden, so never a model).
    #[arg(long, env = "ML_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// Jobs (training, project prediction) that may wait in the queue; more are refused
    /// until one has started.
    #[arg(long, env = "ML_JOBS_QUEUE", default_value_t = 16)]
    pub jobs_queue: usize,

    /// Finished jobs kept (with their records and logs); older ones are forgotten.
    #[arg(long, env = "ML_JOBS_KEEP", default_value_t = 200)]
    pub jobs_keep: usize,

    /// The python of the trainer's venv (Ultralytics), which scripts/setup-trainer.sh installs.
    #[arg(long, env = "ML_TRAINER_PYTHON", default_value = ".venv-trainer/bin/python")]
    pub trainer_python: PathBuf,

    /// Where training runs: `cpu`, `cuda` or `cuda:0` (a GPU needs the trainer venv's
    /// CUDA build of torch, which is the one PyPI gives).
    #[arg(long, env = "ML_TRAIN_DEVICE", default_value = "cpu")]
    pub train_device: String,

    /// CPU threads the trainer may use, so that training never takes every core from
    /// serving. Default: half the cores (at least 1).
    #[arg(long, env = "ML_TRAIN_THREADS")]
    pub train_threads: Option<u32>,

    /// Training epochs (a model's `[train]` table or the job can say otherwise).
    #[arg(long, env = "ML_TRAIN_EPOCHS", default_value_t = 50)]
    pub train_epochs: u32,

    /// Training image size, a multiple of 32.
    #[arg(long, env = "ML_TRAIN_IMGSZ", default_value_t = 640)]
    pub train_imgsz: u32,

    /// Training batch size.
    #[arg(long, env = "ML_TRAIN_BATCH", default_value_t = 16)]
    pub train_batch: u32,

    /// Epochs without improvement after which training stops early.
    #[arg(long, env = "ML_TRAIN_PATIENCE", default_value_t = 20)]
    pub train_patience: u32,

    /// An Ultralytics checkpoint (e.g. yolo11n.pt, which you download yourself) that training
    /// starts from when the project's model has no checkpoint of its own yet.
    #[arg(long, env = "ML_TRAIN_BASE")]
    pub train_base: Option<PathBuf>,

    /// The architecture trained from random weights when there is no checkpoint at all
    /// (`yolo11n` trains `yolo11n.yaml`, `yolo11n-seg.yaml`, ...).
    #[arg(long, env = "ML_TRAIN_ARCH", default_value = "yolo11n")]
    pub train_arch: String,

    /// Earlier versions of each trained model kept for `POST /models/NAME/rollback`.
    #[arg(long, env = "ML_MODEL_HISTORY", default_value_t = 3)]
    pub model_history: usize,

    /// Start a training job for a project after this many annotations were created or
    /// updated in it (counted from Label Studio's webhook). 0 turns it off.
    #[arg(long, env = "ML_TRAIN_EVERY_N_ANNOTATIONS", default_value_t = 0)]
    pub train_every_n_annotations: u64,

    /// Do not serve: ask the server on ML_BACKEND_PORT (this machine) for /health and exit 0
    /// if it answers, 1 if not. For container health checks, where no curl is installed.
    #[arg(long)]
    pub health_check: bool,

    /// Path of the ONNX Runtime library (libonnxruntime.so). Default: the one that
    /// scripts/setup-onnxruntime.sh puts in vendor/onnxruntime/.
    #[arg(long, env = "ORT_DYLIB_PATH")]
    pub ort_dylib_path: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do instead of serving.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Predict every task of a Label Studio project with the running server (a job, with a
    /// progress bar), storing the predictions in Label Studio. Tasks that already hold a
    /// prediction of the current model version are skipped.
    PredictProject {
        /// The Label Studio project id.
        #[arg(long)]
        project: u64,
        /// Predict again the tasks that already hold a prediction of the current version.
        #[arg(long)]
        force: bool,
        /// The running server (default: this machine, ML_BACKEND_PORT).
        #[arg(long, env = "ML_BACKEND_URL")]
        server: Option<String>,
    },
}

impl Config {
    /// ML_TASK_CONCURRENCY, or its default: 2 per core.
    pub fn tasks_in_flight(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.task_concurrency.unwrap_or(2 * cores).max(1)
    }

    /// The programs and limits of video tasks.
    pub fn video_settings(&self) -> ls_core::video::VideoSettings {
        ls_core::video::VideoSettings {
            ffmpeg: self.ffmpeg.clone(),
            ffprobe: self.ffprobe.clone(),
            max_bytes: self.max_video_mb.saturating_mul(1024 * 1024),
            max_frames: self.video_max_frames,
            max_seconds: self.video_max_seconds,
            max_frame_pixels: self.max_image_pixels,
            frame_step: self.video_frame_step.max(1),
            stall: std::time::Duration::from_secs(self.video_stall_secs.max(1)),
        }
    }

    /// The runtime's settings.
    pub fn runtime_settings(&self) -> ls_core::runtime::RuntimeSettings {
        ls_core::runtime::RuntimeSettings {
            provider: self.provider,
            library: self.ort_dylib_path.clone(),
            sessions: self.sessions,
            intra_threads: self.intra_threads,
            solo_threads: self.solo_threads,
        }
    }

    /// How media is fetched, and from which Label Studio.
    pub fn media_settings(&self) -> ls_labelstudio::MediaSettings {
        ls_labelstudio::MediaSettings {
            label_studio_url: self.label_studio_url.clone(),
            api_key: self.api_key().cloned(),
            local_files_document_root: self.local_files_document_root.clone(),
            allowed_hosts: self.media_allowed_hosts.clone(),
            block_private: self.media_block_private,
            fetch_timeout_secs: self.fetch_timeout_secs,
            max_image_bytes: self.max_image_bytes,
            cache_mb: self.media_cache_mb,
        }
    }

    /// The Label Studio key, from either of its two names.
    pub fn api_key(&self) -> Option<&Secret> {
        self.label_studio_api_key.as_ref().or(self.label_studio_token.as_ref())
    }

    /// The Basic auth credentials: both halves, or neither. One half alone, or an empty one,
    /// is an error, not auth switched off.
    pub fn basic_auth(&self) -> Result<Option<(String, Secret)>, &'static str> {
        match (&self.basic_auth_user, &self.basic_auth_pass) {
            (None, None) => Ok(None),
            (Some(user), Some(pass)) if !user.trim().is_empty() && !pass.expose().is_empty() => {
                Ok(Some((user.clone(), pass.clone())))
            }
            (Some(user), _) if user.trim().is_empty() => Err("BASIC_AUTH_USER is empty"),
            (Some(_), Some(_)) => Err("BASIC_AUTH_PASS is empty"),
            (Some(_), None) => Err("BASIC_AUTH_USER is set without BASIC_AUTH_PASS"),
            (None, Some(_)) => Err("BASIC_AUTH_PASS is set without BASIC_AUTH_USER"),
        }
    }

    /// ML_STATE_DIR, or `.state` in the models folder.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(|| self.models_dir.join(".state"))
    }

    pub fn train_settings(&self) -> ls_training::TrainSettings {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        ls_training::TrainSettings {
            // The trainer runs in its job's folder: a relative path means one from here. Not
            // canonicalized: a venv's python is a symlink that must stay inside the venv.
            python: std::path::absolute(&self.trainer_python).unwrap_or_else(|_| self.trainer_python.clone()),
            device: self.train_device.clone(),
            threads: self.train_threads.unwrap_or((cores / 2).max(1)).max(1),
            epochs: self.train_epochs.max(1),
            imgsz: self.train_imgsz.max(32),
            batch: self.train_batch.max(1),
            patience: self.train_patience.max(1),
            base: self
                .train_base
                .as_ref()
                .map(|b| std::path::absolute(b).unwrap_or_else(|_| b.clone())),
            arch: self.train_arch.clone(),
            history: self.model_history.max(1),
        }
    }

    pub fn plugins_dir(&self) -> PathBuf {
        self.plugins_dir.clone().unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("."))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let config = Config::parse_from(["ls-ml-backend", "--label-studio-api-key", "s3cr3t-token"]);
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cr3t-token"), "{printed}");
        assert_eq!(config.api_key().map(Secret::expose), Some("s3cr3t-token"));
    }

    #[test]
    fn defaults() {
        let config = Config::parse_from(["ls-ml-backend"]);
        assert_eq!(config.port, 9090);
        assert_eq!(config.provider, Provider::Cpu);
        assert_eq!(config.models_dir, PathBuf::from("./models"));
    }

    #[test]
    fn half_or_empty_basic_auth_is_an_error() {
        let parse = |args: &[&str]| Config::parse_from([&["ls-ml-backend"], args].concat()).basic_auth();
        assert!(parse(&[]).expect("none").is_none());
        assert!(
            parse(&["--basic-auth-user", "ann", "--basic-auth-pass", "pw"])
                .expect("both")
                .is_some()
        );
        for half in [
            &["--basic-auth-user", "", "--basic-auth-pass", "pw"][..],
            &["--basic-auth-user", "ann", "--basic-auth-pass", ""],
            &["--basic-auth-user", "ann"],
            &["--basic-auth-pass", "pw"],
        ] {
            assert!(parse(half).is_err(), "{half:?}");
        }
    }

    /// Every setting is in the configuration reference and in `.env.example`, so neither falls
    /// behind.
    #[test]
    fn every_setting_is_documented() {
        use clap::CommandFactory;
        let reference = include_str!("../../docs/configuration.md");
        let example = include_str!("../../.env.example");
        let mut missing = Vec::new();
        let command = Config::command();
        let args = command
            .get_arguments()
            .chain(command.get_subcommands().flat_map(|c| c.get_arguments()));
        for arg in args {
            let Some(env) = arg.get_env().and_then(|e| e.to_str()) else {
                continue;
            };
            if !reference.contains(&format!("`{env}`")) {
                missing.push(format!("{env} (docs/configuration.md)"));
            }
            if !example
                .lines()
                .any(|l| l.trim_start_matches(['#', ' ']).starts_with(&format!("{env}=")))
            {
                missing.push(format!("{env} (.env.example)"));
            }
        }
        for (theirs, ours) in OFFICIAL_NAMES {
            if !reference.contains(&format!("| `{theirs}` | `{ours}`")) {
                missing.push(format!("{theirs} as {ours} (docs/configuration.md)"));
            }
        }
        assert!(missing.is_empty(), "undocumented settings: {missing:?}");
    }

    #[test]
    fn labels_are_comma_separated() {
        let config = Config::parse_from(["ls-ml-backend", "--labels", "cat,dog"]);
        assert_eq!(config.labels, vec!["cat", "dog"]);
    }
}
