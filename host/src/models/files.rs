//! The models folder's naming rules, in one place: `<name>.onnx` is a model, `<name>.toml`
//! its sidecar; hidden and temporary files are neither. The registry and the watcher both
//! go by these.

use std::{
    fs,
    path::{Path, PathBuf},
    time::SystemTime,
};

const MODEL_SUFFIX: &str = ".onnx";
const SIDECAR_SUFFIX: &str = ".toml";

/// The model file of a name: `<dir>/<name>.onnx`.
pub fn model_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{MODEL_SUFFIX}"))
}

/// The sidecar path of a model file: `models/3.onnx` -> `models/3.toml`.
pub fn sidecar_of(model: &Path) -> PathBuf {
    model.with_extension("toml")
}

/// `.onnx` files, without hidden names (editors' and rsync's temporary files).
pub fn is_model_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    !name.starts_with('.') && name.ends_with(MODEL_SUFFIX) && name.len() > MODEL_SUFFIX.len()
}

/// The model name of a model file: its name without `.onnx`.
pub fn name_of(file: &Path) -> String {
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The model a path in the folder belongs to: `3.onnx` and its sidecar `3.toml` both give
/// `3`. Hidden and temporary files (`.3.onnx`, `3.onnx.part`, `3.onnx.tmp`) give nothing.
pub fn model_of(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if is_model_file(path) {
        return name.strip_suffix(MODEL_SUFFIX).map(str::to_string);
    }
    let stem = name.strip_suffix(SIDECAR_SUFFIX)?;
    (!stem.is_empty() && !stem.starts_with('.')).then(|| stem.to_string())
}

/// The model name in a label config's `model_path`: a plain file name, never a path. The
/// error is the reason, for the person who wrote the config.
pub fn name_in_model_path(path: &str) -> Result<&str, &'static str> {
    let trimmed = path.trim();
    if trimmed.contains(['/', '\\', '\0']) || trimmed.contains("..") {
        return Err("it must be a file name in ML_MODELS_DIR, not a path");
    }
    if trimmed.starts_with('.') {
        return Err("hidden files are not models");
    }
    let name = trimmed.strip_suffix(MODEL_SUFFIX).unwrap_or(trimmed);
    if name.is_empty() {
        return Err("it is empty");
    }
    Ok(name)
}

/// The model files in a folder, sorted. Blocking.
pub fn list(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_model_file(p))
        .collect();
    files.sort();
    files
}

/// Size and modification time of one file.
pub type Stamp = (u64, Option<SystemTime>);

/// A file's size and time, if it exists. Blocking.
pub fn stamp(path: &Path) -> Option<Stamp> {
    fs::metadata(path).ok().map(|m| (m.len(), m.modified().ok()))
}

/// Size and modification time of a model file and its sidecar: what tells a changed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    model: Stamp,
    sidecar: Option<Stamp>,
}

impl Fingerprint {
    /// Blocking.
    pub fn of(file: &Path) -> Option<Fingerprint> {
        Some(Fingerprint {
            model: stamp(file)?,
            sidecar: stamp(&sidecar_of(file)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_paths_are_file_names_only() {
        assert_eq!(name_in_model_path("det.onnx").ok(), Some("det"));
        assert_eq!(name_in_model_path(" det ").ok(), Some("det"));
        for bad in [
            "../det.onnx",
            "/etc/passwd",
            "sub/det.onnx",
            "..",
            "a\\b.onnx",
            ".hidden.onnx",
            ".onnx",
            "",
        ] {
            assert!(name_in_model_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn model_files_are_onnx_without_hidden_names() {
        assert!(is_model_file(Path::new("models/3.onnx")));
        assert!(!is_model_file(Path::new("models/.3.onnx")));
        assert!(!is_model_file(Path::new("models/3.onnx.part")));
        assert!(!is_model_file(Path::new("models/3.toml")));
        assert!(!is_model_file(Path::new("models/.onnx")));
    }

    #[test]
    fn files_map_to_their_model() {
        assert_eq!(model_of(Path::new("/m/3.onnx")).as_deref(), Some("3"));
        assert_eq!(model_of(Path::new("/m/3.toml")).as_deref(), Some("3"));
        for ignored in [
            "/m/.3.onnx",
            "/m/3.onnx.part",
            "/m/3.onnx.tmp",
            "/m/.3.toml",
            "/m/notes.txt",
            "/m/.toml",
        ] {
            assert_eq!(model_of(Path::new(ignored)), None, "{ignored}");
        }
    }

    #[test]
    fn the_sidecar_sits_beside_the_model() {
        assert_eq!(sidecar_of(Path::new("models/3.onnx")), PathBuf::from("models/3.toml"));
        assert_eq!(model_file(Path::new("m"), "3"), PathBuf::from("m/3.onnx"));
    }
}
