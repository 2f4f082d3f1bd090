//! Managing the models folder through the API: installing an uploaded model after it proved
//! it loads, downloading and deleting a model, reading and writing its sidecar. Every change
//! lands in the folder the way a person's `mv` would, and the registry reloads the name, so
//! hot reload's guarantees hold: a bad file or setting never replaces a good model.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{LoadState, ModelStatus, Registry, files, sidecar::Sidecar};
use crate::worker::{WorkerFailed, off_executor as blocking};

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("the model name `{name}` is refused: {reason}")]
    BadName { name: String, reason: &'static str },
    #[error("there is no model `{0}`")]
    NotFound(String),
    #[error("the model was not installed: {0}; whatever served under this name keeps serving")]
    Refused(String),
    #[error("the upload is larger than ML_MAX_MODEL_MB ({limit_mb} MiB)")]
    TooLarge { limit_mb: u64 },
    #[error("the settings were not saved: {}", describe(.0))]
    Settings(BTreeMap<String, String>),
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Worker(#[from] WorkerFailed),
}

fn describe(errors: &BTreeMap<String, String>) -> String {
    errors.values().cloned().collect::<Vec<_>>().join("; ")
}

impl ManageError {
    /// Problems by setting, for a settings error.
    pub fn fields(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            ManageError::Settings(errors) => Some(errors),
            _ => None,
        }
    }
}

/// A model name as the API takes it: the rules of `model_path` (a file name, no path), and
/// without `.onnx`.
pub fn checked_name(raw: &str) -> Result<String, ManageError> {
    // A URL path segment as the client wrote it: `..%2Fx` is `../x`.
    let name = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    let refuse = |reason| ManageError::BadName {
        name: name.to_string(),
        reason,
    };
    let plain = files::name_in_model_path(&name).map_err(refuse)?;
    if plain != name.trim() || plain.contains(char::is_whitespace) {
        return Err(refuse("give the name without `.onnx` or spaces"));
    }
    // Names show up in file names, logs and the web page: plain ASCII only, no control or
    // bidi characters, and short enough for any file system with its suffixes.
    if plain.len() > 128 || !plain.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(refuse(
            "a model name is 1 to 128 of the characters A-Z, a-z, 0-9, `.`, `_` and `-`",
        ));
    }
    // `sam.encoder` is half of the model `sam`, not a model of its own.
    if let Some(graph) = files::GRAPHS.iter().find(|g| plain.ends_with(&format!(".{g}"))) {
        return Err(refuse(match *graph {
            "encoder" => "`NAME.encoder` is the encoder of the model pair NAME: upload or change NAME itself",
            _ => "`NAME.decoder` is the decoder of the model pair NAME: upload or change NAME itself",
        }));
    }
    Ok(plain.to_string())
}

static UPLOADS: AtomicU64 = AtomicU64::new(0);

/// SHA-256 of a file, in hex (for the log line of a change), read in pieces so that a large
/// model is not held in memory a second time. Blocking.
fn content_hash(path: &Path) -> String {
    let hash = || -> std::io::Result<String> {
        let mut file = std::fs::File::open(path)?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)?;
        Ok(hex::encode(hasher.finalize()))
    };
    hash().unwrap_or_else(|_| "-".to_string())
}

impl Registry {
    /// Where an upload for `name` is written first: a hidden `.part` file in the models
    /// folder, which the watcher and the scans ignore, on the same file system as its final
    /// place so that installing it is one rename.
    pub fn staging_file(&self, name: &str) -> PathBuf {
        let n = UPLOADS.fetch_add(1, Ordering::Relaxed);
        self.dir()
            .join(format!(".{name}.upload-{}-{n}.part", std::process::id()))
    }

    /// Installs the uploaded file `staged` as model `name` once it has loaded completely in a
    /// staging slot that serves nothing (with the sidecar the name has); then the registry
    /// loads it as it would any new file. One install at a time, so concurrent uploads to a
    /// name end with one of them, whole.
    pub async fn install(self: &Arc<Self>, name: &str, staged: PathBuf, who: &str) -> Result<ModelStatus, ManageError> {
        let _one_at_a_time = self.installing.lock().await;
        let registry = Arc::clone(self);
        let (target, name_owned) = (self.file_of(name), name.to_string());
        let checked = blocking(move || {
            let loader = registry.loader();
            let outcome = loader
                .load_with_sidecar(&staged, &files::sidecar_of(&target), &name_owned, None)
                .map(drop)
                .and_then(|()| {
                    let hash = content_hash(&staged);
                    std::fs::rename(&staged, &target)
                        .map(|()| hash)
                        .map_err(|e| format!("cannot move it into place: {e}"))
                });
            if outcome.is_err() {
                let _ = std::fs::remove_file(&staged);
            }
            outcome
        })
        .await?;
        let hash = checked.map_err(ManageError::Refused)?;
        log::info!("model {name} installed by {who} through the API (sha256 {hash})");
        self.reload(name).await;
        self.settled(name).await
    }

    /// Loads a model file in a slot that serves nothing (with the sidecar at `sidecar`), to
    /// prove it loads and to score it before it is installed.
    pub async fn load_unserved(
        self: &Arc<Self>,
        file: PathBuf,
        sidecar: PathBuf,
        name: &str,
    ) -> Result<Arc<super::LoadedModel>, ManageError> {
        let registry = Arc::clone(self);
        let name = name.to_string();
        blocking(move || {
            let loader = registry.loader();
            loader
                .load_with_sidecar(&file, &sidecar, &name, None)
                .and_then(|m| m.ok_or_else(|| "nothing was loaded".to_string()))
                .map(Arc::new)
                .map_err(ManageError::Refused)
        })
        .await?
    }

    /// The sidecar of model `name`, if it has one that parses.
    pub async fn sidecar(&self, name: &str) -> Result<Option<Sidecar>, ManageError> {
        let path = files::sidecar_of(&self.file_of(name));
        blocking(move || match std::fs::read_to_string(&path) {
            Ok(text) => Sidecar::parse(&path, &text).map(Some).map_err(ManageError::Io),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ManageError::Io(format!("cannot read {}: {e}", files::shown(&path)))),
        })
        .await?
    }

    /// The model's status once its latest load has finished: the watcher may have started
    /// another load of the same file meanwhile.
    async fn settled(&self, name: &str) -> Result<ModelStatus, ManageError> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
        let mut finished = self.loads_finished.subscribe();
        loop {
            // Subscribed before reading: a load that ends in between still wakes us.
            finished.mark_unchanged();
            let status = self
                .status_of(name)
                .ok_or_else(|| ManageError::NotFound(name.to_string()))?;
            if status.state != LoadState::Loading {
                return Ok(status);
            }
            if !matches!(tokio::time::timeout_at(deadline, finished.changed()).await, Ok(Ok(()))) {
                return Ok(status);
            }
        }
    }

    /// The model file's path (a two-file model's decoder), if the model exists.
    pub async fn model_file(&self, name: &str) -> Result<PathBuf, ManageError> {
        let file = self.file_of(name);
        blocking(move || files::resolve(&file).main().map(Path::to_path_buf))
            .await?
            .ok_or_else(|| ManageError::NotFound(name.to_string()))
    }

    /// Deletes the model's files and its sidecar; requests in flight finish with the model.
    pub async fn delete(self: &Arc<Self>, name: &str, who: &str) -> Result<(), ManageError> {
        let file = self.model_file(name).await?;
        let hash = blocking(move || {
            let hash = content_hash(&file);
            let all = match files::resolve(&file) {
                files::ModelFiles::Graphs(graphs) => graphs.into_iter().map(|(_, p)| p).collect(),
                _ => vec![file.clone()],
            };
            for path in all.iter().filter(|p| p.is_file()) {
                std::fs::remove_file(path)
                    .map_err(|e| ManageError::Io(format!("cannot delete {}: {e}", files::shown(path))))?;
            }
            match std::fs::remove_file(files::sidecar_of(&file)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ManageError::Io(format!(
                    "the model is deleted, but its settings file is not: {e}"
                ))),
                _ => Ok(hash),
            }
        })
        .await??;
        log::info!("model {name} deleted by {who} through the API (sha256 {hash})");
        self.reload(name).await;
        Ok(())
    }

    /// The model's settings (its sidecar; empty without one), as JSON.
    pub async fn settings(&self, name: &str) -> Result<Value, ManageError> {
        let file = self.model_file(name).await?;
        blocking(move || {
            let path = files::sidecar_of(&file);
            match std::fs::read_to_string(&path) {
                Ok(text) => Sidecar::parse(&path, &text)
                    .map(|s| s.to_json())
                    .map_err(ManageError::Io),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Sidecar::default().to_json()),
                Err(e) => Err(ManageError::Io(format!("cannot read {}: {e}", files::shown(&path)))),
            }
        })
        .await?
    }

    /// Replaces the model's settings after checking each of them; the model reloads with
    /// them, and keeps serving its previous version if they do not load.
    pub async fn set_settings(
        self: &Arc<Self>,
        name: &str,
        json: &Value,
        who: &str,
    ) -> Result<ModelStatus, ManageError> {
        let sidecar = Sidecar::from_json(json).map_err(ManageError::Settings)?;
        let text = sidecar.to_toml().map_err(|e| ManageError::Io(e.to_string()))?;
        let file = self.model_file(name).await?;
        let staged = self.staging_file(name).with_extension("toml.part");
        blocking(move || {
            let path = files::sidecar_of(&file);
            std::fs::write(&staged, text)
                .and_then(|()| std::fs::rename(&staged, &path))
                .map_err(|e| {
                    let _ = std::fs::remove_file(&staged);
                    ManageError::Io(format!("cannot write {}: {e}", files::shown(&path)))
                })
        })
        .await??;
        self.reload(name).await;
        let status = self.settled(name).await?;
        // The version carries the hash of the model file and its settings.
        log::info!(
            "model {name}: settings changed by {who} through the API: {json}; version now {}",
            status.model_version.as_deref().unwrap_or("(not serving)")
        );
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_model_path_rules() {
        assert_eq!(checked_name("det").ok().as_deref(), Some("det"));
        assert_eq!(checked_name("yolo_v8-n.2").ok().as_deref(), Some("yolo_v8-n.2"));
        let long = "x".repeat(129);
        for bad in [
            "../det",
            "a/b",
            ".hidden",
            "",
            "det.onnx",
            "a b",
            "..%2Fdet",
            "a%20b",
            "a%07b",
            "evil\u{202e}gnp",
            "d\u{e9}t",
            &long,
            "sam.encoder",
            "sam.decoder",
        ] {
            assert!(checked_name(bad).is_err(), "{bad:?}");
        }
        assert!(checked_name(&"x".repeat(128)).is_ok());
    }
}
