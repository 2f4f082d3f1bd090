//! Blocking work (the file system, decoding, plugin calls, loading models) runs on tokio's
//! blocking pool, never on the async executor; this is the one way the host sends it there.

#[derive(Debug, thiserror::Error)]
#[error("a worker thread failed: {0}")]
pub struct WorkerFailed(pub String);

/// Runs `work` on the blocking pool and waits for it without blocking the executor.
pub async fn off_executor<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, WorkerFailed> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| WorkerFailed(e.to_string()))
}
