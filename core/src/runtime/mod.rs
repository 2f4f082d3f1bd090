//! The one ONNX Runtime environment of the process, and the sessions built on it.

mod library;
mod model_info;
mod pool;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, atomic::AtomicUsize},
};

use log::{info, warn};
use ort::{
    environment::Environment,
    ep,
    session::{Session, builder::GraphOptimizationLevel},
};
use plugin_api::ModelInfo;

pub use pool::{OwnedTensor, SessionPool};

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0}")]
    Library(String),
    #[error("could not start ONNX Runtime: {0}")]
    Environment(String),
    #[error("could not load {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("the model is shutting down")]
    Closed,
}

/// A model's sessions, what ONNX Runtime says about it, and where it really runs.
pub struct LoadedSessions {
    pub pool: SessionPool,
    pub info: ModelInfo,
    /// The provider the sessions were built with, after any fallback.
    pub provider: Provider,
}

/// ONNX Runtime allows one environment per process, ever (a second one is refused even after
/// the first is dropped). The server makes one Runtime; a process that makes more (the
/// Where inference runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    #[default]
    Cpu,
    Cuda,
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
        })
    }
}

/// What the runtime is started with (from ML_PROVIDER, ML_SESSIONS, ML_INTRA_THREADS,
/// ML_SOLO_THREADS and ORT_DYLIB_PATH).
#[derive(Debug, Clone, Default)]
pub struct RuntimeSettings {
    pub provider: Provider,
    pub library: Option<PathBuf>,
    pub sessions: Option<usize>,
    pub intra_threads: Option<usize>,
    pub solo_threads: Option<usize>,
}

/// in-process tests, the benchmark) shares the first environment, which is kept for good.
static ENVIRONMENT: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

fn environment(library: &Path) -> Result<Environment, RuntimeError> {
    let mut shared = ENVIRONMENT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((loaded, env)) = shared.as_ref() {
        if loaded != library {
            return Err(RuntimeError::Library(format!(
                "ONNX Runtime is already loaded from {} in this process; it cannot also load {}",
                loaded.display(),
                library.display()
            )));
        }
        return Ok(env.clone());
    }
    let env = ort::init_from(library)
        .map_err(|e| RuntimeError::Library(format!("could not load ONNX Runtime from {}: {e}", library.display())))?
        .with_name("ls-ml-backend")
        .with_telemetry(false)
        .build()
        .map_err(|e| RuntimeError::Environment(e.to_string()))?;
    *shared = Some((library.to_path_buf(), env.clone()));
    Ok(env)
}

pub struct Runtime {
    env: Environment,
    provider: Provider,
    sessions: usize,
    intra_threads: usize,
    /// Threads of each model's solo session (see `pool`); 0: no solo session.
    solo_threads: usize,
    /// Inferences running now, over all models.
    running: Arc<AtomicUsize>,
    library: PathBuf,
}

impl Runtime {
    pub fn init(config: &RuntimeSettings) -> Result<Self, RuntimeError> {
        let library = library::locate(config.library.as_deref()).map_err(RuntimeError::Library)?;
        let env = environment(&library)?;
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let sessions = config.sessions.unwrap_or(if cores >= 2 { 2 } else { 1 }).max(1);
        let intra_threads = config.intra_threads.unwrap_or((cores / sessions).max(1)).max(1);
        // A GPU runs one inference on its own; the CPU threads are for CPU inference only.
        let solo_threads = match (config.solo_threads, config.provider) {
            (Some(n), _) => n,
            (None, Provider::Cpu) => cores,
            (None, Provider::Cuda) => 0,
        };
        let solo_threads = if solo_threads > intra_threads { solo_threads } else { 0 };
        let solo = if solo_threads > 0 {
            format!(", and one solo session x {solo_threads} threads for an inference that runs alone")
        } else {
            String::new()
        };
        info!(
            "ONNX Runtime loaded from {}; provider {}, {sessions} session(s) per model x {intra_threads} thread(s){solo}",
            library.display(),
            config.provider
        );
        Ok(Self {
            env,
            provider: config.provider,
            sessions,
            intra_threads,
            solo_threads,
            running: Arc::new(AtomicUsize::new(0)),
            library,
        })
    }

    pub fn library(&self) -> &Path {
        &self.library
    }

    pub fn requested_provider(&self) -> Provider {
        self.provider
    }

    pub fn sessions_per_model(&self) -> usize {
        self.sessions
    }

    pub fn intra_threads(&self) -> usize {
        self.intra_threads
    }

    /// The process's one ONNX Runtime environment (benchmarks build plain sessions on it).
    pub fn environment(&self) -> &Environment {
        &self.env
    }

    pub fn solo_threads(&self) -> usize {
        self.solo_threads
    }

    /// Builds this model's sessions from the file's bytes (`path` names it in messages).
    /// Blocking: call it from a blocking thread.
    pub fn load(&self, path: &Path, bytes: &[u8]) -> Result<LoadedSessions, RuntimeError> {
        self.load_with(path, bytes, self.sessions, self.intra_threads, self.solo_threads)
    }

    /// The same with another layout: `sessions` x `intra_threads`, plus a solo session with
    /// `solo_threads` if that is more than `intra_threads` (benchmarks).
    pub fn load_with(
        &self,
        path: &Path,
        bytes: &[u8],
        sessions: usize,
        intra_threads: usize,
        solo_threads: usize,
    ) -> Result<LoadedSessions, RuntimeError> {
        let load_err = |message: String| RuntimeError::Load {
            path: path.to_path_buf(),
            message,
        };
        let count = sessions.max(1);
        // On the CPU all sessions of a model share one copy of its weights: the model is
        // optimized once into ONNX Runtime's own format, and each session reads its weights
        // from that buffer in place. Without this every session holds its own copy.
        let (shared, not_shared) = if self.provider == Provider::Cpu {
            match self.optimize(bytes) {
                // The sessions point into this allocation: it must be final before they are
                // built (turning a Box into an Arc later would copy it and free the original).
                Ok(optimized) => (Some(Arc::<[u8]>::from(optimized)), None),
                Err(e) => (None, Some(e)),
            }
        } else {
            (None, None)
        };
        let build = |threads: usize| match &shared {
            // Safety: each session's thread holds a clone of `shared` until its session is gone.
            Some(optimized) => unsafe { self.build_shared_session(optimized, threads) },
            None => self.build_session(path, bytes, threads),
        };
        let mut sessions = Vec::with_capacity(count);
        let mut provider = self.provider;
        for _ in 0..count {
            let (session, used) = build(intra_threads.max(1)).map_err(load_err)?;
            provider = used;
            sessions.push(session);
        }
        // Said only for a model that loads anyway; a broken file gets its own error above.
        if let Some(e) = not_shared {
            warn!(
                "{}: could not optimize the model once for all its sessions ({e}); each session keeps its own \
                 copy of the weights",
                path.display()
            );
        }
        let solo = if solo_threads > intra_threads.max(1) && provider == Provider::Cpu {
            Some(build(solo_threads).map_err(load_err)?.0)
        } else {
            None
        };
        let info = model_info::model_info(&sessions[0]).map_err(|e| load_err(e.to_string()))?;
        let name = path
            .file_stem()
            .map_or_else(|| "model".to_string(), |s| s.to_string_lossy().into_owned());
        Ok(LoadedSessions {
            pool: SessionPool::new(&name, sessions, solo, Arc::clone(&self.running), shared)
                .map_err(|e| load_err(e.to_string()))?,
            info,
            provider,
        })
    }

    /// The model after ONNX Runtime's graph optimizations for this CPU, in ORT format.
    fn optimize(&self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temporary folder: {e}"))?;
        let target = dir.path().join("optimized.ort");
        let session = self
            .builder(1)?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| e.to_string())?
            .with_optimized_model_path(&target)
            .map_err(|e| e.to_string())?
            .with_config_entry("session.save_model_format", "ORT")
            .map_err(|e| e.to_string())?
            // ONNX Runtime warns that the result fits this machine only: it never leaves it.
            .with_log_level(ort::logging::LogLevel::Error)
            .map_err(|e| e.to_string())?
            .commit_from_memory(bytes)
            .map_err(|e| e.to_string())?;
        drop(session);
        std::fs::read(&target).map_err(|e| format!("reading the optimized model: {e}"))
    }

    /// A CPU session whose weights stay in `optimized` (from `optimize`).
    ///
    /// # Safety
    /// `optimized` must outlive the session and never change.
    unsafe fn build_shared_session(
        &self,
        optimized: &[u8],
        intra_threads: usize,
    ) -> Result<(Session, Provider), String> {
        let session = self
            .builder(intra_threads)?
            // Already optimized, for this machine.
            .with_optimization_level(GraphOptimizationLevel::Disable)
            .map_err(|e| e.to_string())?
            .with_config_entry("session.use_ort_model_bytes_directly", "1")
            .map_err(|e| e.to_string())?
            .with_config_entry("session.use_ort_model_bytes_for_initializers", "1")
            .map_err(|e| e.to_string())?
            .commit_from_memory(optimized)
            .map_err(|e| e.to_string())?;
        Ok((session, Provider::Cpu))
    }

    fn builder(&self, intra_threads: usize) -> Result<ort::session::builder::SessionBuilder, String> {
        let builder = Session::builder(&self.env)
            .map_err(|e| e.to_string())?
            .with_intra_threads(intra_threads)
            .map_err(|e| e.to_string())?
            .with_inter_threads(1)
            .map_err(|e| e.to_string())?
            // Threads spin while an inference runs (waking them costs more than the work
            // between two operators) but stop when it ends, so they never slow the next
            // inference on another session.
            .with_config_entry("session.force_spinning_stop", "1")
            .map_err(|e| e.to_string())?;
        if self.provider == Provider::Cpu {
            // A planned block per run for all intermediate tensors costs about 6 MiB per session
            // on yolov8n-320 and saves a lone inference only 0.1-0.2 ms (docs/bench/layouts.txt).
            return builder.with_memory_pattern(false).map_err(|e| e.to_string());
        }
        Ok(builder)
    }

    fn build_session(&self, path: &Path, bytes: &[u8], intra_threads: usize) -> Result<(Session, Provider), String> {
        let mut builder = self.builder(intra_threads)?;
        let mut used = Provider::Cpu;
        if self.provider == Provider::Cuda {
            match builder.with_execution_providers([ep::CUDA::default().build().error_on_failure()]) {
                Ok(b) => {
                    builder = b;
                    used = Provider::Cuda;
                }
                Err(e) => {
                    warn!(
                        "CUDA is not available for {} ({e}); running it on the CPU",
                        path.display()
                    );
                    builder = e.recover();
                }
            }
        }
        let session = builder.commit_from_memory(bytes).map_err(|e| e.to_string())?;
        Ok((session, used))
    }
}
