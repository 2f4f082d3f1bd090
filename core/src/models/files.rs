//! The models folder's naming rules, in one place: `<name>.onnx` is a model, `<name>.toml`
//! its sidecar; hidden and temporary files are neither. A model of two graphs (an image
//! encoder and a prompt decoder, as segment-anything exports them) is the pair
//! `<name>.encoder.onnx` + `<name>.decoder.onnx`, with the sidecar `<name>.toml`. The
//! registry and the watcher both go by these.

use std::{
    fs,
    path::{Path, PathBuf},
    time::SystemTime,
};

const MODEL_SUFFIX: &str = ".onnx";
const SIDECAR_SUFFIX: &str = ".toml";

/// The graphs of a two-file model, in the order they run; each is `<name>.<graph>.onnx`.
pub const GRAPHS: [&str; 2] = ["encoder", "decoder"];

/// The model file of a name: `<dir>/<name>.onnx`. For a two-file model this path does not
/// exist; it still names the model, and [`resolve`] finds its files.
pub fn model_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{MODEL_SUFFIX}"))
}

/// The file of one graph of a two-file model: `<dir>/<name>.<graph>.onnx`.
pub fn graph_file(dir: &Path, name: &str, graph: &str) -> PathBuf {
    dir.join(format!("{name}.{graph}{MODEL_SUFFIX}"))
}

/// The sidecar path of a model file: `models/3.onnx` -> `models/3.toml`, and
/// `models/sam.decoder.onnx` -> `models/sam.toml`.
pub fn sidecar_of(model: &Path) -> PathBuf {
    match (model.parent(), model_of(model)) {
        (Some(dir), Some(name)) if is_model_file(model) => dir.join(format!("{name}{SIDECAR_SUFFIX}")),
        _ => model.with_extension("toml"),
    }
}

/// What a model is on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelFiles {
    /// `<name>.onnx`.
    Single(PathBuf),
    /// `<name>.encoder.onnx` and `<name>.decoder.onnx`, as (graph, path) in the order they
    /// run; either may be missing, which the loader reports.
    Graphs(Vec<(&'static str, PathBuf)>),
    /// Nothing of the name is there.
    Missing,
}

impl ModelFiles {
    /// The file the model is listed as: the single file, else the decoder (the graph that
    /// answers), else whichever graph is there.
    pub fn main(&self) -> Option<&Path> {
        match self {
            ModelFiles::Single(path) => Some(path),
            ModelFiles::Graphs(graphs) => graphs.iter().rev().map(|(_, p)| p.as_path()).find(|p| p.is_file()),
            ModelFiles::Missing => None,
        }
    }
}

/// The files of the model that `file` (any of its files, or `<dir>/<name>.onnx`) belongs to.
/// A single `<name>.onnx` wins over graph files of the same name. Blocking.
pub fn resolve(file: &Path) -> ModelFiles {
    let (Some(dir), Some(name)) = (file.parent(), model_of(file)) else {
        return ModelFiles::Missing;
    };
    let single = model_file(dir, &name);
    if single.is_file() {
        return ModelFiles::Single(single);
    }
    let graphs: Vec<(&'static str, PathBuf)> = GRAPHS.iter().map(|g| (*g, graph_file(dir, &name, g))).collect();
    if graphs.iter().any(|(_, p)| p.is_file()) {
        ModelFiles::Graphs(graphs)
    } else {
        ModelFiles::Missing
    }
}

/// The model name and graph of a graph file: `sam.decoder.onnx` -> (`sam`, `decoder`).
fn graph_of(file_name: &str) -> Option<(&str, &'static str)> {
    let stem = file_name.strip_suffix(MODEL_SUFFIX)?;
    GRAPHS.iter().find_map(|graph| {
        let name = stem.strip_suffix(graph)?.strip_suffix('.')?;
        (!name.is_empty()).then_some((name, *graph))
    })
}

/// `.onnx` files, without hidden names (editors' and rsync's temporary files).
pub fn is_model_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    !name.starts_with('.') && name.ends_with(MODEL_SUFFIX) && name.len() > MODEL_SUFFIX.len()
}

/// The model name of a model file: its name without `.onnx` (and without the graph of a
/// two-file model's file).
pub fn name_of(file: &Path) -> String {
    model_of(file).unwrap_or_else(|| {
        file.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    })
}

/// The model a path in the folder belongs to: `3.onnx` and its sidecar `3.toml` both give
/// `3`, `sam.encoder.onnx` and `sam.decoder.onnx` give `sam`. Hidden and temporary files
/// (`.3.onnx`, `3.onnx.part`, `3.onnx.tmp`) give nothing.
pub fn model_of(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if is_model_file(path) {
        if let Some((model, _)) = graph_of(name) {
            return Some(model.to_string());
        }
        return name.strip_suffix(MODEL_SUFFIX).map(str::to_string);
    }
    let stem = name.strip_suffix(SIDECAR_SUFFIX)?;
    (!stem.is_empty() && !stem.starts_with('.')).then(|| stem.to_string())
}

/// The model name in a label config's `model_path`: a plain file name, never a path. The
/// error is the reason, for the person who wrote the config.
/// Writes `path` whole or not at all: into a hidden temporary file beside it (which the
/// watcher and the scans ignore), then renamed into place. Blocking.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut part = tempfile::NamedTempFile::new_in(path.parent().unwrap_or(Path::new(".")))?;
    part.write_all(bytes)?;
    part.persist(path).map(drop).map_err(|e| e.error)
}

/// Copies `from` to `to` whole or not at all, the same way. Blocking.
pub fn copy_atomically(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut part = tempfile::NamedTempFile::new_in(to.parent().unwrap_or(Path::new(".")))?;
    std::io::copy(&mut fs::File::open(from)?, &mut part)?;
    part.persist(to).map(drop).map_err(|e| e.error)
}

/// A file as answers show it: its name, without the folder.
pub fn shown(path: &Path) -> String {
    path.file_name()
        .map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

pub fn name_in_model_path(path: &str) -> Result<&str, &'static str> {
    let trimmed = path.trim();
    if trimmed.contains(['/', '\\', '\0']) || trimmed.contains("..") {
        return Err("it must be a file name in ML_MODELS_DIR, not a path");
    }
    if trimmed.starts_with('.') {
        return Err("hidden files are not models");
    }
    // The official YOLO backend names its weights `yolov8n.pt`; the ONNX export of the same
    // weights has the same stem.
    let name = trimmed
        .strip_suffix(MODEL_SUFFIX)
        .or_else(|| trimmed.strip_suffix(".pt"))
        .unwrap_or(trimmed);
    if name.is_empty() {
        return Err("it is empty");
    }
    Ok(name)
}

/// The models in a folder, one file each (see [`ModelFiles::main`]), sorted by name. Blocking.
pub fn list(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_model_file(p))
        .filter_map(|p| model_of(&p))
        .collect();
    names.sort();
    names.dedup();
    names
        .iter()
        .filter_map(|name| resolve(&model_file(dir, name)).main().map(Path::to_path_buf))
        .collect()
}

/// Size and modification time of one file.
pub type Stamp = (u64, Option<SystemTime>);

/// A file's size and time, if it exists. Blocking.
pub fn stamp(path: &Path) -> Option<Stamp> {
    fs::metadata(path).ok().map(|m| (m.len(), m.modified().ok()))
}

/// Size and modification time of a model's files and its sidecar: what tells a changed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    model: Vec<Option<Stamp>>,
    sidecar: Option<Stamp>,
}

impl Fingerprint {
    /// Of the model `file` belongs to; None when none of its files is there. Blocking.
    pub fn of(file: &Path) -> Option<Fingerprint> {
        let model = match resolve(file) {
            ModelFiles::Single(path) => vec![Some(stamp(&path)?)],
            ModelFiles::Graphs(graphs) => graphs.iter().map(|(_, p)| stamp(p)).collect(),
            ModelFiles::Missing => return None,
        };
        Some(Fingerprint {
            model,
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
        assert_eq!(
            name_in_model_path("yolov8n.pt").ok(),
            Some("yolov8n"),
            "the official backend's names"
        );
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
        assert_eq!(
            sidecar_of(Path::new("models/sam.decoder.onnx")),
            PathBuf::from("models/sam.toml")
        );
        assert_eq!(model_file(Path::new("m"), "3"), PathBuf::from("m/3.onnx"));
    }

    #[test]
    fn graph_files_belong_to_one_model() {
        assert_eq!(model_of(Path::new("/m/sam.encoder.onnx")).as_deref(), Some("sam"));
        assert_eq!(model_of(Path::new("/m/sam.decoder.onnx")).as_deref(), Some("sam"));
        assert_eq!(model_of(Path::new("/m/v1.2.decoder.onnx")).as_deref(), Some("v1.2"));
        // Not a graph: a model whose name merely ends like one.
        assert_eq!(model_of(Path::new("/m/myencoder.onnx")).as_deref(), Some("myencoder"));
        assert_eq!(model_of(Path::new("/m/.decoder.onnx")), None);
        assert_eq!(model_of(Path::new("/m/.sam.decoder.onnx")), None);
    }

    #[test]
    fn a_folder_lists_a_pair_once_and_a_single_file_wins() {
        let dir = tempfile::tempdir().expect("temp dir");
        for file in [
            "sam.encoder.onnx",
            "sam.decoder.onnx",
            "sam.toml",
            "det.onnx",
            "half.encoder.onnx",
        ] {
            fs::write(dir.path().join(file), b"x").expect("write");
        }
        let listed: Vec<String> = list(dir.path())
            .iter()
            .map(|p| p.file_name().unwrap_or_default().to_string_lossy().into_owned())
            .collect();
        assert_eq!(listed, ["det.onnx", "half.encoder.onnx", "sam.decoder.onnx"]);
        let sam = resolve(&model_file(dir.path(), "sam"));
        assert!(matches!(&sam, ModelFiles::Graphs(g) if g.len() == 2));
        let before = Fingerprint::of(&model_file(dir.path(), "sam"));
        fs::write(dir.path().join("sam.encoder.onnx"), b"longer").expect("write");
        assert_ne!(
            Fingerprint::of(&model_file(dir.path(), "sam")),
            before,
            "the encoder is part of the model"
        );
        fs::write(dir.path().join("sam.onnx"), b"x").expect("write");
        assert_eq!(
            resolve(&model_file(dir.path(), "sam")),
            ModelFiles::Single(dir.path().join("sam.onnx"))
        );
        assert_eq!(resolve(&model_file(dir.path(), "none")), ModelFiles::Missing);
    }
}
