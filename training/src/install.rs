//! Installing a trained model under its name, keeping the versions it replaces for rollback.
//!
//! Beside the models, in hidden folders the watcher never looks at:
//! - `models/.train/NAME.pt`: the checkpoint that produced the serving `NAME.onnx`, which the
//!   next training of NAME starts from;
//! - `models/.history/NAME/<n>/`: earlier versions (`NAME.onnx`, `NAME.toml`, `NAME.pt`),
//!   the last ML_MODEL_HISTORY of them.
//!
//! The serving file is never moved away: a version is copied into the history, and the new
//! file replaces it in one rename (through the registry's install, which loads it first).

use std::{
    fs,
    path::{Path, PathBuf},
    sync::Arc,
};

use ls_core::{
    models::{ManageError, ModelStatus, Registry, files},
    worker::off_executor as blocking,
};

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("model `{0}` has no earlier version to roll back to")]
    Nothing(String),
    #[error(transparent)]
    Manage(#[from] ManageError),
    #[error("{0}")]
    Io(String),
}

impl From<ls_core::worker::WorkerFailed> for HistoryError {
    fn from(e: ls_core::worker::WorkerFailed) -> Self {
        HistoryError::Io(e.to_string())
    }
}

pub fn checkpoint_of(models: &Path, name: &str) -> PathBuf {
    models.join(".train").join(format!("{name}.pt"))
}

fn history_of(models: &Path, name: &str) -> PathBuf {
    models.join(".history").join(name)
}

/// The numbered versions kept for `name`, oldest first.
fn versions(models: &Path, name: &str) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = fs::read_dir(history_of(models, name))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
        .collect();
    found.sort();
    found
}

fn io(what: &str, path: &Path, e: std::io::Error) -> HistoryError {
    HistoryError::Io(format!("cannot {what} {}: {e}", path.display()))
}

/// Copies the serving version of `name` (file, sidecar, checkpoint) into the history and
/// keeps the last `keep`. `None` when there is nothing to keep. Blocking.
fn keep_current(models: &Path, name: &str, keep: usize) -> Result<Option<PathBuf>, HistoryError> {
    let model = files::model_file(models, name);
    if !model.is_file() {
        return Ok(None);
    }
    let next = versions(models, name).last().map_or(1, |(n, _)| n + 1);
    let entry = history_of(models, name).join(next.to_string());
    fs::create_dir_all(&entry).map_err(|e| io("create", &entry, e))?;
    let sidecar = files::sidecar_of(&model);
    let checkpoint = checkpoint_of(models, name);
    for (from, file) in [
        (&model, format!("{name}.onnx")),
        (&sidecar, format!("{name}.toml")),
        (&checkpoint, format!("{name}.pt")),
    ] {
        if from.is_file() {
            fs::copy(from, entry.join(&file)).map_err(|e| io("keep a copy of", from, e))?;
        }
    }
    let all = versions(models, name);
    for (_, old) in all.iter().take(all.len().saturating_sub(keep.max(1))) {
        let _ = fs::remove_dir_all(old);
    }
    Ok(Some(entry))
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
    let models = registry.dir().to_path_buf();
    let staged = registry.staging_file(name);
    let (m, n, staged_c) = (models.clone(), name.to_string(), staged.clone());
    let kept = blocking(move || -> Result<Option<PathBuf>, HistoryError> {
        let kept = keep_current(&m, &n, keep)?;
        fs::copy(&trained.onnx, &staged_c).map_err(|e| io("stage", &trained.onnx, e))?;
        let sidecar = files::sidecar_of(&files::model_file(&m, &n));
        files::write_atomically(&sidecar, trained.sidecar.as_bytes()).map_err(|e| io("write", &sidecar, e))?;
        let checkpoint = checkpoint_of(&m, &n);
        if let Some(dir) = checkpoint.parent() {
            fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
        }
        files::copy_atomically(&trained.checkpoint, &checkpoint)
            .map_err(|e| io("keep the checkpoint", &checkpoint, e))?;
        Ok(kept)
    })
    .await??;
    match registry.install(name, staged, who).await {
        Ok(status) => Ok(status),
        Err(e) => {
            let (m, n) = (models, name.to_string());
            // The sidecar and checkpoint go back to the version that keeps serving.
            let _ = blocking(move || restore_extras(&m, &n, kept.as_deref())).await;
            Err(e.into())
        }
    }
}

/// Puts back the sidecar and checkpoint of a kept version (or removes them if it had none).
fn restore_extras(models: &Path, name: &str, entry: Option<&Path>) {
    let sidecar = files::sidecar_of(&files::model_file(models, name));
    let checkpoint = checkpoint_of(models, name);
    for (target, file) in [(&sidecar, format!("{name}.toml")), (&checkpoint, format!("{name}.pt"))] {
        match entry.map(|e| e.join(&file)).filter(|p| p.is_file()) {
            Some(kept) => {
                let _ = fs::copy(kept, target);
            }
            None => {
                let _ = fs::remove_file(target);
            }
        }
    }
}

/// Puts the latest kept version of `name` back in place (file, sidecar, checkpoint), and
/// removes it from the history: rolling back again goes one version further.
pub async fn rollback(registry: &Arc<Registry>, name: &str, who: &str) -> Result<ModelStatus, HistoryError> {
    let models = registry.dir().to_path_buf();
    let staged = registry.staging_file(name);
    let (m, n, staged_c) = (models.clone(), name.to_string(), staged.clone());
    let entry = blocking(move || -> Result<PathBuf, HistoryError> {
        let (_, entry) = versions(&m, &n).pop().ok_or_else(|| HistoryError::Nothing(n.clone()))?;
        let file = entry.join(format!("{n}.onnx"));
        fs::copy(&file, &staged_c).map_err(|e| io("stage", &file, e))?;
        restore_extras(&m, &n, Some(&entry));
        Ok(entry)
    })
    .await??;
    let status = registry.install(name, staged, who).await?;
    let _ = blocking(move || fs::remove_dir_all(entry)).await;
    log::info!(
        "model {name} rolled back by {who}; version now {}",
        status.model_version.as_deref().unwrap_or("(not serving)")
    );
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_last_n_copies() {
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path();
        assert!(keep_current(models, "3", 2).unwrap().is_none(), "nothing to keep yet");
        for i in 0..4 {
            fs::write(models.join("3.onnx"), format!("model {i}")).unwrap();
            fs::write(models.join("3.toml"), format!("conf = 0.{i}")).unwrap();
            keep_current(models, "3", 2).unwrap();
        }
        let kept = versions(models, "3");
        assert_eq!(kept.iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec![3, 4]);
        assert_eq!(fs::read_to_string(kept[1].1.join("3.onnx")).unwrap(), "model 3");
        assert_eq!(fs::read_to_string(kept[0].1.join("3.toml")).unwrap(), "conf = 0.2");
        // The serving file stays where it is.
        assert_eq!(fs::read_to_string(models.join("3.onnx")).unwrap(), "model 3");
    }
}
