//! The registry: the one place loaded models live. Routing reads from it.

mod model;
mod names;

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Instant,
};

use log::{error, info, warn};
use plugin_api::{ImageRef, Params, TensorRef};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use model::LoadedModel;
pub use names::parse_names;

use crate::{plugins::Plugin, runtime::Runtime};

/// What /models shows for one model file.
#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    pub name: String,
    pub file: String,
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_shape: Option<Vec<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_names: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<usize>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RouteError {
    #[error("no model is loaded yet: put an .onnx file in {dir}")]
    NoModels { dir: String },
    #[error("model `{name}` is still loading")]
    Loading { name: String },
    #[error("model `{name}` failed to load: {error}")]
    Failed { name: String, error: String },
    #[error(
        "no model for project {project}: name a model {project}.onnx, set ML_DEFAULT_MODEL, or keep a single model in \
         {dir} (found: {found})"
    )]
    Ambiguous {
        project: String,
        dir: String,
        found: String,
    },
    #[error("ML_DEFAULT_MODEL is `{name}`, but {dir} has no such model (found: {found})")]
    MissingDefault { name: String, dir: String, found: String },
    #[error("model_path=\"{path}\" is refused: {reason}")]
    BadModelPath { path: String, reason: &'static str },
    #[error("model_path=\"{path}\" names no model in {dir} (found: {found})")]
    UnknownModel { path: String, dir: String, found: String },
}

impl RouteError {
    /// Whether the request itself is at fault (its config names a bad model) rather than
    /// the backend's state.
    pub fn is_bad_request(&self) -> bool {
        matches!(self, RouteError::BadModelPath { .. })
    }
}

enum Slot {
    Loading,
    Ready(Arc<LoadedModel>),
    Failed(String),
}

struct Entry {
    file: PathBuf,
    slot: Slot,
}

pub struct Registry {
    dir: PathBuf,
    runtime: Arc<Runtime>,
    plugins: Vec<Arc<Plugin>>,
    default_model: Option<String>,
    fallback_labels: Vec<String>,
    entries: RwLock<BTreeMap<String, Entry>>,
}

/// Size of the grey image run through a new model before it serves: it proves that the
/// adapter, the session and the outputs fit together.
const WARMUP_SIZE: u32 = 64;

impl Registry {
    pub fn new(
        dir: PathBuf,
        runtime: Arc<Runtime>,
        plugins: Vec<Arc<Plugin>>,
        default_model: Option<String>,
        fallback_labels: Vec<String>,
    ) -> Self {
        let default_model = default_model.map(|m| m.trim_end_matches(".onnx").to_string());
        Self {
            dir,
            runtime,
            plugins,
            default_model,
            fallback_labels,
            entries: RwLock::new(BTreeMap::new()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn plugins(&self) -> &[Arc<Plugin>] {
        &self.plugins
    }

    /// The model files in the folder: `*.onnx`, without hidden or temporary names.
    pub fn model_files(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_model_file(p))
            .collect();
        files.sort();
        files
    }

    /// Loads every model in the folder, in parallel, on blocking threads.
    /// Lists the models folder and marks every model in it as loading, so that /health and
    /// /models show them from the first request on.
    pub fn scan(&self) -> Vec<PathBuf> {
        let files = self.model_files();
        if files.is_empty() {
            warn!(
                "no models in {}: copy a YOLOv8 .onnx file there (name it <project id>.onnx to serve one Label Studio \
                 project) and restart",
                self.dir.display()
            );
            return files;
        }
        {
            let mut entries = self.write();
            for file in &files {
                entries.insert(
                    model_name(file),
                    Entry {
                        file: file.clone(),
                        slot: Slot::Loading,
                    },
                );
            }
        }
        files
    }

    /// Loads these model files in parallel, each on a blocking thread.
    pub async fn load_files(self: &Arc<Self>, files: Vec<PathBuf>) {
        let tasks: Vec<_> = files
            .into_iter()
            .map(|file| {
                let registry = Arc::clone(self);
                tokio::task::spawn_blocking(move || registry.load_and_store(&file))
            })
            .collect();
        for task in tasks {
            if let Err(e) = task.await {
                error!("a model loading thread failed: {e}");
            }
        }
    }

    fn load_and_store(&self, file: &Path) {
        let name = model_name(file);
        let started = Instant::now();
        let slot = match self.load(file, &name) {
            Ok(model) => {
                info!(
                    "model {name} ready in {:.0} ms: adapter {}, provider {}, version {}, classes {:?}",
                    started.elapsed().as_secs_f64() * 1e3,
                    model.adapter.name(),
                    model.provider,
                    model.version,
                    model.class_names
                );
                Slot::Ready(Arc::new(model))
            }
            Err(message) => {
                error!("model {} failed to load: {message}", file.display());
                Slot::Failed(message)
            }
        };
        self.write().insert(
            name,
            Entry {
                file: file.to_path_buf(),
                slot,
            },
        );
    }

    /// Builds a model from a file: sessions, adapter choice, class names, warm-up. Blocking.
    fn load(&self, file: &Path, name: &str) -> Result<LoadedModel, String> {
        let bytes = fs::read(file).map_err(|e| format!("cannot read the file: {e}"))?;
        let hash = hex::encode(Sha256::digest(&bytes));
        drop(bytes);
        let sessions = self.runtime.load(file).map_err(|e| e.to_string())?;
        let adapter = self.pick_adapter(&sessions.info)?;
        let class_names = sessions
            .info
            .metadata("names")
            .and_then(parse_names)
            .or_else(|| (!self.fallback_labels.is_empty()).then(|| self.fallback_labels.clone()))
            .ok_or_else(|| "the model has no `names` metadata: set ML_LABELS to its class names".to_string())?;
        let model = LoadedModel {
            name: name.to_string(),
            version: model::model_version(name, &hash, &adapter),
            adapter,
            info: sessions.info,
            pool: Arc::new(sessions.pool),
            provider: sessions.provider,
            class_names,
        };
        warm_up(&model)?;
        Ok(model)
    }

    fn pick_adapter(&self, info: &plugin_api::ModelInfo) -> Result<Arc<Plugin>, String> {
        let mut best: Option<(u32, &Arc<Plugin>)> = None;
        for plugin in &self.plugins {
            match plugin.accepts(info) {
                Ok(score) if score > 0 && best.is_none_or(|(b, _)| score > b) => best = Some((score, plugin)),
                Ok(_) => {}
                Err(e) => warn!("plugin {} failed to inspect a model: {e}", plugin.name()),
            }
        }
        best.map(|(_, p)| Arc::clone(p)).ok_or_else(|| {
            let task = info.metadata("task").unwrap_or("none");
            let names: Vec<&str> = self.plugins.iter().map(|p| p.name()).collect();
            format!(
                "no adapter plugin accepts this model (task metadata: {task}; inputs {:?}; outputs {:?}); loaded plugins: {}",
                info.inputs.iter().map(|t| t.shape.to_vec()).collect::<Vec<_>>(),
                info.outputs.iter().map(|t| t.shape.to_vec()).collect::<Vec<_>>(),
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            )
        })
    }

    /// The model for a project: `<project id>.onnx`, else ML_DEFAULT_MODEL, else the only model.
    pub fn route(&self, project: Option<&str>) -> Result<Arc<LoadedModel>, RouteError> {
        route_in(
            &self.read(),
            &self.dir.display().to_string(),
            self.default_model.as_deref(),
            project,
        )
    }

    /// The model a control tag's `model_path` names: a file name in the models folder, with
    /// or without `.onnx`. Paths are refused, so a label config can never reach outside it.
    pub fn by_path(&self, path: &str) -> Result<Arc<LoadedModel>, RouteError> {
        let name = model_name_from_path(path)?;
        let entries = self.read();
        let Some(entry) = entries.get(name) else {
            return Err(RouteError::UnknownModel {
                path: path.to_string(),
                dir: self.dir.display().to_string(),
                found: entries.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        };
        match &entry.slot {
            Slot::Ready(m) => Ok(Arc::clone(m)),
            Slot::Loading => Err(RouteError::Loading { name: name.to_string() }),
            Slot::Failed(e) => Err(RouteError::Failed {
                name: name.to_string(),
                error: e.clone(),
            }),
        }
    }

    pub fn statuses(&self) -> Vec<ModelStatus> {
        self.read()
            .iter()
            .map(|(name, entry)| {
                let mut status = ModelStatus {
                    name: name.clone(),
                    file: entry.file.display().to_string(),
                    state: "loading",
                    error: None,
                    adapter: None,
                    provider: None,
                    model_version: None,
                    input_shape: None,
                    class_names: None,
                    sessions: None,
                };
                match &entry.slot {
                    Slot::Loading => {}
                    Slot::Failed(e) => {
                        status.state = "failed";
                        status.error = Some(e.clone());
                    }
                    Slot::Ready(m) => {
                        status.state = "ready";
                        status.adapter = Some(format!("{} {}", m.adapter.name(), m.adapter.version()));
                        status.provider = Some(m.provider.clone());
                        status.model_version = Some(m.version.clone());
                        status.input_shape = Some(m.input_shape());
                        status.class_names = Some(m.class_names.clone());
                        status.sessions = Some(m.pool.size());
                    }
                }
                status
            })
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Entry>> {
        self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Entry>> {
        self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn route_in(
    entries: &BTreeMap<String, Entry>,
    dir: &str,
    default_model: Option<&str>,
    project: Option<&str>,
) -> Result<Arc<LoadedModel>, RouteError> {
    let dir = dir.to_string();
    let found = || entries.keys().cloned().collect::<Vec<_>>().join(", ");
    let pick = |name: &str, entry: &Entry| match &entry.slot {
        Slot::Ready(m) => Ok(Arc::clone(m)),
        Slot::Loading => Err(RouteError::Loading { name: name.to_string() }),
        Slot::Failed(e) => Err(RouteError::Failed {
            name: name.to_string(),
            error: e.clone(),
        }),
    };
    if let Some(project) = project
        && let Some(entry) = entries.get(project)
    {
        return pick(project, entry);
    }
    if let Some(default) = default_model {
        return match entries.get(default) {
            Some(entry) => pick(default, entry),
            None => Err(RouteError::MissingDefault {
                name: default.to_string(),
                dir,
                found: found(),
            }),
        };
    }
    match entries.len() {
        0 => Err(RouteError::NoModels { dir }),
        1 => {
            let (name, entry) = entries.iter().next().ok_or(RouteError::NoModels { dir: dir.clone() })?;
            pick(name, entry)
        }
        _ => Err(RouteError::Ambiguous {
            project: project.unwrap_or("(none)").to_string(),
            dir,
            found: found(),
        }),
    }
}

/// Runs a grey image through prepare, the session and finish.
fn warm_up(model: &LoadedModel) -> Result<(), String> {
    let pixels = vec![114u8; (WARMUP_SIZE * WARMUP_SIZE * 3) as usize];
    let params = Params::default();
    let prepared = model
        .adapter
        .prepare(&model.info, ImageRef::new(WARMUP_SIZE, WARMUP_SIZE, &pixels), &params)
        .map_err(|e| format!("warm-up: {e}"))?;
    let outputs = model
        .pool
        .run_blocking(&prepared.inputs)
        .map_err(|e| format!("warm-up: {e}"))?;
    let views: Vec<TensorRef<'_>> = outputs
        .iter()
        .map(|o| TensorRef::new(&o.name, &o.shape, &o.data))
        .collect();
    model
        .adapter
        .finish(&model.info, &views, prepared.context, &params)
        .map_err(|e| format!("warm-up: the adapter cannot read the model's outputs: {e}"))?;
    Ok(())
}

fn model_name(file: &Path) -> String {
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The model name in a `model_path`: a plain file name, never a path.
fn model_name_from_path(path: &str) -> Result<&str, RouteError> {
    let refuse = |reason| RouteError::BadModelPath {
        path: path.to_string(),
        reason,
    };
    let trimmed = path.trim();
    if trimmed.contains(['/', '\\', '\0']) || trimmed.contains("..") {
        return Err(refuse("it must be a file name in ML_MODELS_DIR, not a path"));
    }
    if trimmed.starts_with('.') {
        return Err(refuse("hidden files are not models"));
    }
    let name = trimmed.strip_suffix(".onnx").unwrap_or(trimmed);
    if name.is_empty() {
        return Err(refuse("it is empty"));
    }
    Ok(name)
}

/// `.onnx` files, without hidden names (editors' and rsync's temporary files).
pub fn is_model_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    !name.starts_with('.') && name.ends_with(".onnx") && name.len() > ".onnx".len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_paths_are_file_names_only() {
        assert_eq!(model_name_from_path("det.onnx").ok(), Some("det"));
        assert_eq!(model_name_from_path(" det ").ok(), Some("det"));
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
            assert!(
                matches!(model_name_from_path(bad), Err(RouteError::BadModelPath { .. })),
                "{bad:?}"
            );
        }
    }

    /// Routing over placeholder entries: a loading or failed slot names the model it picked.
    fn entries(names: &[&str]) -> BTreeMap<String, Entry> {
        names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    Entry {
                        file: PathBuf::from(format!("{n}.onnx")),
                        slot: Slot::Failed(format!("picked {n}")),
                    },
                )
            })
            .collect()
    }

    fn picked(result: Result<Arc<LoadedModel>, RouteError>) -> String {
        match result {
            Err(RouteError::Failed { name, .. }) => name,
            Err(other) => format!("error: {other}"),
            Ok(_) => unreachable!("placeholder entries are never ready"),
        }
    }

    #[test]
    fn project_model_first() {
        let e = entries(&["3", "4", "shared"]);
        assert_eq!(picked(route_in(&e, "m", Some("shared"), Some("3"))), "3");
        assert_eq!(picked(route_in(&e, "m", Some("shared"), Some("9"))), "shared");
    }

    #[test]
    fn the_only_model_serves_everyone() {
        let e = entries(&["any-name"]);
        assert_eq!(picked(route_in(&e, "m", None, Some("9"))), "any-name");
        assert_eq!(picked(route_in(&e, "m", None, None)), "any-name");
    }

    #[test]
    fn several_models_without_a_default_is_a_clear_error() {
        let e = entries(&["a", "b"]);
        let err = route_in(&e, "./models", None, Some("9"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("9.onnx") && err.contains("ML_DEFAULT_MODEL") && err.contains("a, b"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_default_or_no_models_is_named() {
        assert!(matches!(
            route_in(&entries(&["a"]), "m", Some("zz"), None),
            Err(RouteError::MissingDefault { .. })
        ));
        assert!(matches!(
            route_in(&entries(&[]), "m", None, Some("1")),
            Err(RouteError::NoModels { .. })
        ));
    }

    #[test]
    fn a_loading_model_says_so() {
        let mut e = entries(&["1"]);
        e.insert(
            "1".into(),
            Entry {
                file: PathBuf::from("1.onnx"),
                slot: Slot::Loading,
            },
        );
        assert!(matches!(
            route_in(&e, "m", None, Some("1")),
            Err(RouteError::Loading { .. })
        ));
    }

    #[test]
    fn model_files_are_onnx_without_hidden_names() {
        assert!(is_model_file(Path::new("models/3.onnx")));
        assert!(!is_model_file(Path::new("models/.3.onnx")));
        assert!(!is_model_file(Path::new("models/3.onnx.part")));
        assert!(!is_model_file(Path::new("models/3.toml")));
        assert!(!is_model_file(Path::new("models/.onnx")));
    }
}
