//! The registry: the one place loaded models live. Routing reads from it, the watcher and
//! POST /models/reload write to it.
//!
//! A model is swapped in only after it loaded completely: sessions built from the bytes that
//! were hashed, adapter chosen, one warm-up inference run. Until then, and if the new file
//! fails, the previous version under that name keeps serving. Requests hold the `Arc` of the
//! model they started with, so a swap or a delete never pulls a model from under them.

mod model;
mod names;
pub mod sidecar;

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Instant, SystemTime},
};

use log::{error, info, warn};
use plugin_api::{ImageRef, Params, TensorRef};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use model::{LoadedModel, Overrides};
pub use names::parse_names;
use sidecar::Sidecar;

use crate::{plugins::Plugin, runtime::Runtime};

/// What /models shows for one model file.
#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    pub name: String,
    pub file: String,
    /// The latest load of this file: `loading`, `ready` or `failed`.
    pub state: &'static str,
    /// Whether a version of this model serves predictions now (after a failed reload, the
    /// previous one does).
    pub serving: bool,
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("no model is loaded yet: put an .onnx file in {dir}")]
    NoModels { dir: String },
    #[error("model `{name}` is still loading")]
    Loading { name: String },
    #[error("model `{name}` failed to load: {error}")]
    Failed { name: String, error: String },
    #[error(
        "no model for project {project}: name a model {project}.onnx, list the project in a model's .toml, set \
         ML_DEFAULT_MODEL, or keep a single model in {dir} (found: {found})"
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

/// Size and modification time of a model file and its sidecar: what tells a changed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    model: (u64, Option<SystemTime>),
    sidecar: Option<(u64, Option<SystemTime>)>,
}

impl Fingerprint {
    /// A single file's size and time (its `sidecar` part stays empty).
    pub fn of_file(file: &Path) -> Option<Fingerprint> {
        let m = fs::metadata(file).ok()?;
        Some(Fingerprint {
            model: (m.len(), m.modified().ok()),
            sidecar: None,
        })
    }

    pub fn of(file: &Path) -> Option<Fingerprint> {
        let stamp = |p: &Path| fs::metadata(p).ok().map(|m| (m.len(), m.modified().ok()));
        Some(Fingerprint {
            model: stamp(file)?,
            sidecar: stamp(&sidecar::path_for(file)),
        })
    }
}

#[derive(Debug, Clone)]
enum State {
    Loading,
    Ready,
    Failed(String),
}

struct Entry {
    file: PathBuf,
    /// The version that answers requests; kept while a newer file loads or after it fails.
    serving: Option<Arc<LoadedModel>>,
    state: State,
    /// The file as it was read by the latest finished load.
    fingerprint: Option<Fingerprint>,
    /// The latest load started; an older load that finishes later is discarded.
    generation: u64,
}

impl Entry {
    fn new(file: PathBuf) -> Self {
        Self {
            file,
            serving: None,
            state: State::Loading,
            fingerprint: None,
            generation: 0,
        }
    }

    fn pick(&self, name: &str) -> Result<Arc<LoadedModel>, RouteError> {
        if let Some(model) = &self.serving {
            return Ok(Arc::clone(model));
        }
        match &self.state {
            State::Failed(e) => Err(RouteError::Failed {
                name: name.to_string(),
                error: e.clone(),
            }),
            State::Loading | State::Ready => Err(RouteError::Loading { name: name.to_string() }),
        }
    }
}

pub struct Registry {
    dir: PathBuf,
    runtime: Arc<Runtime>,
    /// Grows when plugins are dropped into the plugins folder; never shrinks.
    plugins: RwLock<Vec<Arc<Plugin>>>,
    plugins_dir: PathBuf,
    /// Library files already tried, with their size and time, so each version is tried once.
    plugin_files: std::sync::Mutex<BTreeMap<PathBuf, Option<Fingerprint>>>,
    default_model: Option<String>,
    fallback_labels: Vec<String>,
    entries: RwLock<BTreeMap<String, Entry>>,
    generation: AtomicU64,
}

/// Size of the grey image run through a new model before it serves: it proves that the
/// adapter, the session and the outputs fit together.
const WARMUP_SIZE: u32 = 64;

impl Registry {
    pub fn new(
        dir: PathBuf,
        runtime: Arc<Runtime>,
        plugins_dir: PathBuf,
        default_model: Option<String>,
        fallback_labels: Vec<String>,
    ) -> Self {
        let default_model = default_model.map(|m| m.trim_end_matches(".onnx").to_string());
        Self {
            dir,
            runtime,
            plugins: RwLock::new(Vec::new()),
            plugins_dir,
            plugin_files: std::sync::Mutex::new(BTreeMap::new()),
            default_model,
            fallback_labels,
            entries: RwLock::new(BTreeMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn plugins(&self) -> Vec<Arc<Plugin>> {
        self.plugins
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn plugins_dir(&self) -> &Path {
        &self.plugins_dir
    }

    /// Loads plugin libraries in the plugins folder not tried before (or changed since).
    /// Returns how many new plugins were added. Blocking.
    pub fn load_new_plugins(&self) -> usize {
        let files = match crate::plugins::library_files(&self.plugins_dir) {
            Ok(files) => files,
            Err(e) => {
                warn!("{e}");
                return 0;
            }
        };
        let mut added = 0;
        for file in files {
            let fingerprint = Fingerprint::of_file(&file);
            {
                let mut tried = self
                    .plugin_files
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if tried.get(&file) == Some(&fingerprint) {
                    continue;
                }
                tried.insert(file.clone(), fingerprint);
            }
            let current = self.plugins();
            if let Some(plugin) = crate::plugins::load_file(&file, current.iter().map(|p| p.as_ref())) {
                self.plugins
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(Arc::new(plugin));
                added += 1;
            }
        }
        added
    }

    /// Picks up new plugins, then retries the models that no plugin could serve before.
    pub async fn refresh_plugins(self: &Arc<Self>) {
        let registry = Arc::clone(self);
        let added = tokio::task::spawn_blocking(move || registry.load_new_plugins())
            .await
            .unwrap_or(0);
        if added == 0 {
            return;
        }
        let waiting: Vec<String> = self
            .read()
            .iter()
            .filter(|(_, e)| e.serving.is_none() && matches!(e.state, State::Failed(_)))
            .map(|(name, _)| name.clone())
            .collect();
        if !waiting.is_empty() {
            info!("{added} new plugin(s): retrying {}", waiting.join(", "));
            self.reload_all(waiting).await;
        }
    }

    /// The model file of a name: `<dir>/<name>.onnx`.
    pub fn file_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.onnx"))
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

    /// Lists the models folder and marks every model in it as loading, so that /health and
    /// /models show them from the first request on. Returns their names.
    pub fn scan(&self) -> Vec<String> {
        let files = self.model_files();
        if files.is_empty() {
            warn!(
                "no models in {}: copy a YOLOv8 .onnx file there (name it <project id>.onnx to serve one Label Studio \
                 project); it is picked up while the server runs",
                self.dir.display()
            );
        }
        let mut entries = self.write();
        files
            .into_iter()
            .map(|file| {
                let name = model_name(&file);
                entries.entry(name.clone()).or_insert_with(|| Entry::new(file));
                name
            })
            .collect()
    }

    /// Models whose files are new or changed since they were last loaded, and models whose
    /// file is gone. Models loading now count as neither.
    pub fn changes(&self) -> (Vec<String>, Vec<String>) {
        let present: BTreeMap<String, PathBuf> = self
            .model_files()
            .into_iter()
            .map(|file| (model_name(&file), file))
            .collect();
        let entries = self.read();
        let changed = present
            .iter()
            .filter(|(name, file)| match entries.get(*name) {
                None => true,
                Some(entry) => !matches!(entry.state, State::Loading) && entry.fingerprint != Fingerprint::of(file),
            })
            .map(|(name, _)| name.clone())
            .collect();
        let gone = entries
            .keys()
            .filter(|name| !present.contains_key(*name))
            .cloned()
            .collect();
        (changed, gone)
    }

    /// Loads (or reloads, or unloads) these models in parallel, each on a blocking thread.
    pub async fn reload_all(self: &Arc<Self>, names: Vec<String>) {
        let tasks: Vec<_> = names
            .into_iter()
            .map(|name| {
                let registry = Arc::clone(self);
                tokio::spawn(async move { registry.reload(&name).await })
            })
            .collect();
        for task in tasks {
            if let Err(e) = task.await {
                error!("a model loading task failed: {e}");
            }
        }
    }

    /// Rescans the folder now and applies what changed.
    pub async fn rescan(self: &Arc<Self>) {
        self.refresh_plugins().await;
        let (mut changed, gone) = self.changes();
        changed.extend(gone);
        self.reload_all(changed).await;
    }

    /// Brings one model in line with its file: loads it when it is new or changed, unloads it
    /// when the file is gone. A failed load leaves the serving version in place.
    pub async fn reload(self: &Arc<Self>, name: &str) {
        let file = self.file_of(name);
        if !file.is_file() {
            if let Some(entry) = self.write().remove(name) {
                info!(
                    "model {name} removed: {} is gone{}",
                    file.display(),
                    if entry.serving.is_some() {
                        "; requests in flight finish with it"
                    } else {
                        ""
                    }
                );
            }
            return;
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        {
            let mut entries = self.write();
            let entry = entries
                .entry(name.to_string())
                .or_insert_with(|| Entry::new(file.clone()));
            entry.state = State::Loading;
            entry.generation = generation;
        }
        let registry = Arc::clone(self);
        let name = name.to_string();
        if let Err(e) = tokio::task::spawn_blocking(move || registry.load_and_store(&name, &file, generation)).await {
            error!("a model loading thread failed: {e}");
        }
    }

    fn load_and_store(&self, name: &str, file: &Path, generation: u64) {
        let started = Instant::now();
        let fingerprint = Fingerprint::of(file);
        let serving = self.read().get(name).and_then(|e| e.serving.clone());
        let result = self.load(file, name, serving.as_deref());
        let mut entries = self.write();
        let Some(entry) = entries.get_mut(name).filter(|e| e.generation == generation) else {
            // A newer load of this name started meanwhile (or the file was deleted); it decides.
            return;
        };
        entry.fingerprint = fingerprint;
        match result {
            Ok(Some(model)) => {
                info!(
                    "model {name} ready in {:.0} ms: adapter {}, provider {}, version {}, classes {:?}{}",
                    started.elapsed().as_secs_f64() * 1e3,
                    model.adapter.name(),
                    model.provider,
                    model.version,
                    model.class_names,
                    match &serving {
                        Some(old) => format!(" (replaces {})", old.version),
                        None => String::new(),
                    }
                );
                entry.serving = Some(Arc::new(model));
                entry.state = State::Ready;
            }
            Ok(None) => entry.state = State::Ready,
            Err(message) => {
                match &serving {
                    Some(old) => error!(
                        "model {} failed to load: {message}; the previous version {} keeps serving",
                        file.display(),
                        old.version
                    ),
                    None => error!("model {} failed to load: {message}", file.display()),
                }
                entry.state = State::Failed(message);
            }
        }
    }

    /// Builds a model from a file: sessions, adapter choice, class names, warm-up. Blocking.
    /// `None` when the file and its sidecar hold what the serving model was built from.
    fn load(&self, file: &Path, name: &str, serving: Option<&LoadedModel>) -> Result<Option<LoadedModel>, String> {
        // The sessions are built from these very bytes, so the version always describes
        // the model that runs, even if the file changes again meanwhile.
        let bytes = fs::read(file).map_err(|e| format!("cannot read the file: {e}"))?;
        let sidecar_path = sidecar::path_for(file);
        let sidecar_text = match fs::read_to_string(&sidecar_path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot read {}: {e}", sidecar_path.display())),
        };
        let mut hasher = Sha256::new();
        hasher.update(&bytes);
        if let Some(text) = &sidecar_text {
            hasher.update(text.as_bytes());
        }
        let hash = hex::encode(hasher.finalize());
        if serving.is_some_and(|m| m.content_hash == hash) {
            return Ok(None);
        }
        let sidecar = match &sidecar_text {
            Some(text) => Sidecar::parse(&sidecar_path, text)?,
            None => Sidecar::default(),
        };
        let sessions = self.runtime.load(file, &bytes).map_err(|e| e.to_string())?;
        drop(bytes);
        let adapter = match &sidecar.adapter {
            Some(wanted) => self.plugin_named(wanted)?,
            None => self.pick_adapter(&sessions.info)?,
        };
        let class_names = sidecar
            .labels
            .clone()
            .or_else(|| sessions.info.metadata("names").and_then(parse_names))
            .or_else(|| (!self.fallback_labels.is_empty()).then(|| self.fallback_labels.clone()))
            .ok_or_else(|| {
                "the model has no `names` metadata: set `labels` in its .toml, or ML_LABELS, to its class names"
                    .to_string()
            })?;
        let model = LoadedModel {
            name: name.to_string(),
            version: model::model_version(name, &hash, &adapter),
            content_hash: hash,
            adapter,
            info: sessions.info,
            pool: Arc::new(sessions.pool),
            provider: sessions.provider,
            class_names,
            overrides: Overrides {
                conf: sidecar.conf,
                iou: sidecar.iou,
                max_det: sidecar.max_det,
            },
            projects: sidecar.projects,
        };
        warm_up(&model)?;
        Ok(Some(model))
    }

    fn plugin_named(&self, wanted: &str) -> Result<Arc<Plugin>, String> {
        let plugins = self.plugins();
        plugins.iter().find(|p| p.name() == wanted).cloned().ok_or_else(|| {
            let names: Vec<&str> = plugins.iter().map(|p| p.name()).collect();
            format!(
                "the .toml asks for adapter `{wanted}`, which is not loaded (loaded plugins: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )
        })
    }

    fn pick_adapter(&self, info: &plugin_api::ModelInfo) -> Result<Arc<Plugin>, String> {
        let plugins = self.plugins();
        let mut best: Option<(u32, &Arc<Plugin>)> = None;
        let mut reasons = Vec::new();
        for plugin in &plugins {
            match plugin.accepts(info) {
                Ok(score) if score > 0 && best.is_none_or(|(b, _)| score > b) => best = Some((score, plugin)),
                Ok(_) => {}
                Err(e) if e.kind == plugin_api::ErrorKind::Unsupported => {
                    reasons.push(format!("{}: {}", plugin.name(), e.message))
                }
                Err(e) => warn!("plugin {} failed to inspect a model: {e}", plugin.name()),
            }
        }
        best.map(|(_, p)| Arc::clone(p)).ok_or_else(|| {
            let task = info.metadata("task").unwrap_or("none");
            let names: Vec<&str> = plugins.iter().map(|p| p.name()).collect();
            format!(
                "no adapter plugin accepts this model (task metadata: {task}; inputs {:?}; outputs {:?}); loaded plugins: {}{}",
                info.inputs.iter().map(|t| t.shape.to_vec()).collect::<Vec<_>>(),
                info.outputs.iter().map(|t| t.shape.to_vec()).collect::<Vec<_>>(),
                if names.is_empty() { "none".to_string() } else { names.join(", ") },
                if reasons.is_empty() { String::new() } else { format!("; {}", reasons.join("; ")) }
            )
        })
    }

    /// The model for a project: `<project id>.onnx`, else a model whose .toml lists the
    /// project, else ML_DEFAULT_MODEL, else the only model.
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
        match entries.get(name) {
            Some(entry) => entry.pick(name),
            None => Err(RouteError::UnknownModel {
                path: path.to_string(),
                dir: self.dir.display().to_string(),
                found: entries.keys().cloned().collect::<Vec<_>>().join(", "),
            }),
        }
    }

    pub fn statuses(&self) -> Vec<ModelStatus> {
        self.read()
            .iter()
            .map(|(name, entry)| {
                let (state, error) = match &entry.state {
                    State::Loading => ("loading", None),
                    State::Ready => ("ready", None),
                    State::Failed(e) => ("failed", Some(e.clone())),
                };
                let m = entry.serving.as_ref();
                ModelStatus {
                    name: name.clone(),
                    file: entry.file.display().to_string(),
                    state,
                    serving: m.is_some(),
                    error,
                    adapter: m.map(|m| format!("{} {}", m.adapter.name(), m.adapter.version())),
                    provider: m.map(|m| m.provider.clone()),
                    model_version: m.map(|m| m.version.clone()),
                    input_shape: m.map(|m| m.input_shape()),
                    class_names: m.map(|m| m.class_names.clone()),
                    sessions: m.map(|m| m.pool.size()),
                    projects: m.map(|m| m.projects.clone()).unwrap_or_default(),
                }
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
    if let Some(project) = project {
        if let Some(entry) = entries.get(project) {
            return entry.pick(project);
        }
        if let Some(model) = entries
            .values()
            .filter_map(|e| e.serving.as_ref())
            .find(|m| m.projects.iter().any(|p| p == project))
        {
            return Ok(Arc::clone(model));
        }
    }
    if let Some(default) = default_model {
        return match entries.get(default) {
            Some(entry) => entry.pick(default),
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
            entry.pick(name)
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
                        state: State::Failed(format!("picked {n}")),
                        ..Entry::new(PathBuf::from(format!("{n}.onnx")))
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
        e.insert("1".into(), Entry::new(PathBuf::from("1.onnx")));
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
