//! The one ONNX Runtime environment of the process, and the sessions built on it.

mod library;
mod model_info;
mod pool;

use std::path::{Path, PathBuf};

use log::{info, warn};
use ort::{environment::Environment, ep, session::Session};
use plugin_api::ModelInfo;

pub use pool::{OwnedTensor, SessionPool};

use crate::config::{Config, Provider};

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
    /// `cpu` or `cuda`: the provider the sessions were built with, after any fallback.
    pub provider: String,
}

pub struct Runtime {
    env: Environment,
    provider: Provider,
    sessions: usize,
    intra_threads: usize,
    library: PathBuf,
}

impl Runtime {
    pub fn init(config: &Config) -> Result<Self, RuntimeError> {
        let library = library::locate(config.ort_dylib_path.as_deref()).map_err(RuntimeError::Library)?;
        let env = ort::init_from(&library)
            .map_err(|e| RuntimeError::Library(format!("could not load ONNX Runtime from {}: {e}", library.display())))?
            .with_name("ls-ml-backend")
            .with_telemetry(false)
            .build()
            .map_err(|e| RuntimeError::Environment(e.to_string()))?;
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let sessions = config.sessions.unwrap_or(if cores >= 2 { 2 } else { 1 }).max(1);
        let intra_threads = config.intra_threads.unwrap_or((cores / sessions).max(1)).max(1);
        info!(
            "ONNX Runtime loaded from {}; provider {}, {sessions} session(s) per model x {intra_threads} thread(s)",
            library.display(),
            config.provider
        );
        Ok(Self {
            env,
            provider: config.provider,
            sessions,
            intra_threads,
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

    /// Builds this model's sessions from the file's bytes (`path` names it in messages).
    /// Blocking: call it from a blocking thread.
    pub fn load(&self, path: &Path, bytes: &[u8]) -> Result<LoadedSessions, RuntimeError> {
        self.load_with(path, bytes, self.sessions, self.intra_threads)
    }

    /// The same with another number of sessions and threads per session (benchmarks).
    pub fn load_with(
        &self,
        path: &Path,
        bytes: &[u8],
        sessions: usize,
        intra_threads: usize,
    ) -> Result<LoadedSessions, RuntimeError> {
        let load_err = |message: String| RuntimeError::Load {
            path: path.to_path_buf(),
            message,
        };
        let count = sessions.max(1);
        let mut sessions = Vec::with_capacity(count);
        let mut provider = self.provider.to_string();
        for _ in 0..count {
            let (session, used) = self
                .build_session(path, bytes, intra_threads.max(1))
                .map_err(load_err)?;
            provider = used;
            sessions.push(session);
        }
        let info = model_info::model_info(&sessions[0]).map_err(|e| load_err(e.to_string()))?;
        Ok(LoadedSessions {
            pool: SessionPool::new(sessions),
            info,
            provider,
        })
    }

    fn build_session(&self, path: &Path, bytes: &[u8], intra_threads: usize) -> Result<(Session, String), String> {
        let mut builder = Session::builder(&self.env)
            .map_err(|e| e.to_string())?
            .with_intra_threads(intra_threads)
            .map_err(|e| e.to_string())?
            .with_inter_threads(1)
            .map_err(|e| e.to_string())?;
        let mut used = "cpu".to_string();
        if self.provider == Provider::Cuda {
            match builder.with_execution_providers([ep::CUDA::default().build().error_on_failure()]) {
                Ok(b) => {
                    builder = b;
                    used = "cuda".to_string();
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
