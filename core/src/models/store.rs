//! What is kept beside the serving model files, behind [`ModelStore`]: earlier versions (for
//! rollback) and the training checkpoint of each model. [`LocalModels`] keeps them in hidden
//! folders of the models folder, which the watcher never looks at:
//! - `models/.train/NAME.pt`: the checkpoint that produced the serving `NAME.onnx`, which the
//!   next training of NAME starts from;
//! - `models/.history/NAME/<n>/`: earlier versions (`NAME.onnx`, `NAME.toml`, `NAME.pt`).
//!
//! A store shared by several replicas implements the same trait. The serving file itself is
//! swapped by [`Registry::install`](super::Registry::install): loaded first, then one rename.

use std::{
    fs,
    path::{Path, PathBuf},
};

use super::files;

#[derive(Debug, thiserror::Error)]
#[error("cannot {what} {}: {source}", files::shown(path))]
pub struct StoreError {
    what: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError { what, path, source }
}

/// An earlier version of a model, numbered from 1 in the order they were kept.
pub type Version = u64;

/// Earlier versions and checkpoints. Every method blocks.
pub trait ModelStore: Send + Sync + 'static {
    /// The checkpoint that produced the serving version of `name`, if it has one.
    fn checkpoint(&self, name: &str) -> Option<PathBuf>;
    /// Keeps the serving version of `name` (file, sidecar, checkpoint) as the newest earlier
    /// version, and only the last `keep` of them. `None` when nothing serves as `name`.
    fn keep_serving(&self, name: &str, keep: usize) -> Result<Option<Version>, StoreError>;
    /// The earlier versions of `name`, oldest first.
    fn versions(&self, name: &str) -> Result<Vec<Version>, StoreError>;
    /// Writes the sidecar and the checkpoint the next serving version of `name` comes with.
    fn set_extras(&self, name: &str, sidecar: &str, checkpoint: &Path) -> Result<(), StoreError>;
    /// Puts back the sidecar and checkpoint of `version`, or removes them where it had none
    /// (or `version` is `None`).
    fn restore_extras(&self, name: &str, version: Option<Version>) -> Result<(), StoreError>;
    /// Copies the model file of `version` to `to`, to be installed from there.
    fn stage(&self, name: &str, version: Version, to: &Path) -> Result<(), StoreError>;
    /// Forgets an earlier version.
    fn forget(&self, name: &str, version: Version) -> Result<(), StoreError>;
}

/// The models folder's hidden `.history` and `.train` folders.
pub struct LocalModels {
    dir: PathBuf,
}

impl LocalModels {
    pub fn new(models_dir: &Path) -> Self {
        Self {
            dir: models_dir.to_path_buf(),
        }
    }

    fn checkpoint_file(&self, name: &str) -> PathBuf {
        self.dir.join(".train").join(format!("{name}.pt"))
    }

    fn history_of(&self, name: &str) -> PathBuf {
        self.dir.join(".history").join(name)
    }

    fn entry(&self, name: &str, version: Version) -> PathBuf {
        self.history_of(name).join(version.to_string())
    }
}

impl ModelStore for LocalModels {
    fn checkpoint(&self, name: &str) -> Option<PathBuf> {
        Some(self.checkpoint_file(name)).filter(|p| p.is_file())
    }

    fn keep_serving(&self, name: &str, keep: usize) -> Result<Option<Version>, StoreError> {
        let model = files::model_file(&self.dir, name);
        if !model.is_file() {
            return Ok(None);
        }
        let next = self.versions(name)?.last().map_or(1, |n| n + 1);
        let entry = self.entry(name, next);
        fs::create_dir_all(&entry).map_err(io("create", &entry))?;
        let sidecar = files::sidecar_of(&model);
        let checkpoint = self.checkpoint_file(name);
        for (from, file) in [
            (&model, format!("{name}.onnx")),
            (&sidecar, format!("{name}.toml")),
            (&checkpoint, format!("{name}.pt")),
        ] {
            if from.is_file() {
                fs::copy(from, entry.join(&file)).map_err(io("keep a copy of", from))?;
            }
        }
        let all = self.versions(name)?;
        for old in all.iter().take(all.len().saturating_sub(keep.max(1))) {
            self.forget(name, *old)?;
        }
        Ok(Some(next))
    }

    fn versions(&self, name: &str) -> Result<Vec<Version>, StoreError> {
        let history = self.history_of(name);
        let entries = match fs::read_dir(&history) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("read", &history)(e)),
        };
        let mut found: Vec<Version> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        found.sort();
        Ok(found)
    }

    fn set_extras(&self, name: &str, sidecar: &str, checkpoint: &Path) -> Result<(), StoreError> {
        let sidecar_file = files::sidecar_of(&files::model_file(&self.dir, name));
        files::write_atomically(&sidecar_file, sidecar.as_bytes()).map_err(io("write", &sidecar_file))?;
        let kept = self.checkpoint_file(name);
        if let Some(dir) = kept.parent() {
            fs::create_dir_all(dir).map_err(io("create", dir))?;
        }
        files::copy_atomically(checkpoint, &kept).map_err(io("keep the checkpoint", &kept))
    }

    fn restore_extras(&self, name: &str, version: Option<Version>) -> Result<(), StoreError> {
        let sidecar = files::sidecar_of(&files::model_file(&self.dir, name));
        let checkpoint = self.checkpoint_file(name);
        let entry = version.map(|v| self.entry(name, v));
        for (target, file) in [(&sidecar, format!("{name}.toml")), (&checkpoint, format!("{name}.pt"))] {
            match entry.as_ref().map(|e| e.join(&file)).filter(|p| p.is_file()) {
                Some(kept) => files::copy_atomically(&kept, target).map_err(io("put back", target))?,
                None => match fs::remove_file(target) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("remove", target)(e)),
                    _ => {}
                },
            }
        }
        Ok(())
    }

    fn stage(&self, name: &str, version: Version, to: &Path) -> Result<(), StoreError> {
        let file = self.entry(name, version).join(format!("{name}.onnx"));
        fs::copy(&file, to).map(drop).map_err(io("stage", &file))
    }

    fn forget(&self, name: &str, version: Version) -> Result<(), StoreError> {
        let entry = self.entry(name, version);
        fs::remove_dir_all(&entry).map_err(io("remove", &entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_last_n_copies() {
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path();
        let store = LocalModels::new(models);
        assert!(store.keep_serving("3", 2).unwrap().is_none(), "nothing to keep yet");
        for i in 0..4 {
            fs::write(models.join("3.onnx"), format!("model {i}")).unwrap();
            fs::write(models.join("3.toml"), format!("conf = 0.{i}")).unwrap();
            store.keep_serving("3", 2).unwrap();
        }
        assert_eq!(store.versions("3").unwrap(), vec![3, 4]);
        let staged = models.join("staged");
        store.stage("3", 4, &staged).unwrap();
        assert_eq!(fs::read_to_string(&staged).unwrap(), "model 3");
        // The serving file stays where it is.
        assert_eq!(fs::read_to_string(models.join("3.onnx")).unwrap(), "model 3");
        store.restore_extras("3", Some(3)).unwrap();
        assert_eq!(fs::read_to_string(models.join("3.toml")).unwrap(), "conf = 0.2");
        store.restore_extras("3", None).unwrap();
        assert!(!models.join("3.toml").exists(), "no version: no sidecar");
        store.forget("3", 3).unwrap();
        assert_eq!(store.versions("3").unwrap(), vec![4]);
    }

    #[test]
    fn extras_come_with_the_next_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalModels::new(dir.path());
        assert_eq!(store.checkpoint("3"), None);
        let trained = dir.path().join("best.pt");
        fs::write(&trained, b"weights").unwrap();
        store.set_extras("3", "conf = 0.5\n", &trained).unwrap();
        let kept = store.checkpoint("3").expect("a checkpoint");
        assert_eq!(fs::read(kept).unwrap(), b"weights");
        assert_eq!(fs::read_to_string(dir.path().join("3.toml")).unwrap(), "conf = 0.5\n");
    }
}
