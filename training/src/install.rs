//! Installing a trained model under its name, keeping the versions it replaces for rollback
//! in the registry's [`ModelStore`](ls_core::models::ModelStore).
//!
//! The serving file is never moved away: a version is copied into the history, and the new
//! file replaces it in one rename (through the registry's install, which loads it first).

use std::{path::PathBuf, sync::Arc};

use ls_core::{
    models::{ManageError, ModelStatus, Registry, StoreError},
    worker::off_executor as blocking,
};

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("model `{0}` has no earlier version to roll back to")]
    Nothing(String),
    #[error(transparent)]
    Manage(#[from] ManageError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Worker(#[from] ls_core::worker::WorkerFailed),
}

/// What a training job installs.
pub struct Trained {
    pub onnx: PathBuf,
    pub checkpoint: PathBuf,
    /// The new sidecar's text.
    pub sidecar: String,
}

/// Installs a trained model as `name`: the serving version goes into the history, the new
/// sidecar and checkpoint take their places, and the registry installs the file (loading
/// it first; if it does not load, the previous sidecar is put back).
pub async fn install_trained(
    registry: &Arc<Registry>,
    name: &str,
    trained: Trained,
    keep: usize,
    who: &str,
) -> Result<ModelStatus, HistoryError> {
    let store = registry.store();
    let staged = registry.staging_file(name);
    let (s, n, staged_c) = (Arc::clone(&store), name.to_string(), staged.clone());
    let kept = blocking(move || -> Result<_, HistoryError> {
        let kept = s.keep_serving(&n, keep)?;
        std::fs::copy(&trained.onnx, &staged_c).map_err(|source| {
            ManageError::Io(format!(
                "cannot stage {}: {source}",
                ls_core::models::files::shown(&trained.onnx)
            ))
        })?;
        s.set_extras(&n, &trained.sidecar, &trained.checkpoint)?;
        Ok(kept)
    })
    .await??;
    match registry.install(name, staged, who).await {
        Ok(status) => Ok(status),
        Err(e) => {
            let n = name.to_string();
            // The sidecar and checkpoint go back to the version that keeps serving.
            let restored = blocking(move || store.restore_extras(&n, kept)).await;
            if let Ok(Err(restore)) = restored {
                log::error!("model {name}: {restore}");
            }
            Err(e.into())
        }
    }
}

/// Puts the latest kept version of `name` back in place (file, sidecar, checkpoint), and
/// removes it from the history: rolling back again goes one version further.
pub async fn rollback(registry: &Arc<Registry>, name: &str, who: &str) -> Result<ModelStatus, HistoryError> {
    let store = registry.store();
    let staged = registry.staging_file(name);
    let (s, n, staged_c) = (Arc::clone(&store), name.to_string(), staged.clone());
    let version = blocking(move || -> Result<_, HistoryError> {
        let version = *s.versions(&n)?.last().ok_or_else(|| HistoryError::Nothing(n.clone()))?;
        s.stage(&n, version, &staged_c)?;
        s.restore_extras(&n, Some(version))?;
        Ok(version)
    })
    .await??;
    let status = registry.install(name, staged, who).await?;
    let n = name.to_string();
    if let Ok(Err(e)) = blocking(move || store.forget(&n, version)).await {
        log::warn!("model {name}: {e}");
    }
    log::info!(
        "model {name} rolled back by {who}; version now {}",
        status.model_version.as_deref().unwrap_or("(not serving)")
    );
    Ok(status)
}
