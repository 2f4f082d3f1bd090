//! The registry: the one place loaded models live. Routing reads from it, the watcher and
//! `POST /models/reload` write to it.
//!
//! A model is swapped in only after it loaded completely: sessions built from the bytes that
//! were hashed, adapter chosen and opened, one warm-up inference run. Until then, and if the
//! new file fails, the previous version under that name keeps serving. Requests hold the
//! `Arc` of the model they started with, so a swap or a delete never pulls a model from
//! under them. Every folder scan and file read runs on a blocking thread.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{
        Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use log::{error, info, warn};

use super::store::{LocalModels, ModelStore};
use super::{
    BatchSettings, Fingerprint, LoadedModel, ModelStatus, RouteError, files,
    loader::Loader,
    routing, status,
    table::{Load, Slot, Table},
};
use crate::{
    plugins::{Catalog, Plugin},
    runtime::Runtime,
    worker::off_executor,
};

pub struct Registry {
    dir: PathBuf,
    pub(super) runtime: Arc<Runtime>,
    pub(super) plugins: Catalog,
    default_model: Option<String>,
    pub(super) fallback_labels: Vec<String>,
    pub(super) batching: BatchSettings,
    table: RwLock<Table>,
    generation: AtomicU64,
    /// Uploads are checked and installed one at a time.
    pub(super) installing: tokio::sync::Mutex<()>,
    /// Settings every adapter is opened with, under its sidecar's `[options]`.
    pub(super) adapter_defaults: plugin_api::Options,
    /// Counts finished loads, so that a caller can wait for one instead of polling.
    pub(super) loads_finished: tokio::sync::watch::Sender<u64>,
    /// Earlier versions and checkpoints.
    store: Arc<dyn ModelStore>,
    /// Whether a tag's `model_path` picks its model (ML_ALLOW_MODEL_PATH).
    model_paths: bool,
}

/// Runs blocking work off the async executor; a failed worker is logged, and the caller
/// goes on as if nothing was found.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    off_executor(work)
        .await
        .inspect_err(|e| error!("the model registry: {e}"))
        .ok()
}

impl Registry {
    pub fn new(
        dir: PathBuf,
        runtime: Arc<Runtime>,
        plugins_dir: PathBuf,
        default_model: Option<String>,
        fallback_labels: Vec<String>,
        batching: BatchSettings,
    ) -> Self {
        let default_model = default_model.map(|m| m.trim_end_matches(".onnx").to_string());
        Self {
            store: Arc::new(LocalModels::new(&dir)),
            model_paths: true,
            dir,
            runtime,
            plugins: Catalog::new(plugins_dir),
            default_model,
            fallback_labels,
            batching,
            table: RwLock::new(Table::new()),
            generation: AtomicU64::new(0),
            installing: tokio::sync::Mutex::new(()),
            adapter_defaults: plugin_api::Options::new(),
            loads_finished: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Settings every adapter is opened with (`embedding_cache_mb`, ...); a model's sidecar
    /// `[options]` override them.
    pub fn with_adapter_defaults(mut self, defaults: plugin_api::Options) -> Self {
        self.adapter_defaults = defaults;
        self
    }

    /// With `false`, tags' `model_path`s are ignored and every tag gets the project's model.
    pub fn with_model_paths(mut self, allowed: bool) -> Self {
        self.model_paths = allowed;
        self
    }

    pub fn model_paths_allowed(&self) -> bool {
        self.model_paths
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where earlier versions and checkpoints are kept.
    pub fn store(&self) -> Arc<dyn ModelStore> {
        Arc::clone(&self.store)
    }

    pub fn plugins(&self) -> Vec<Arc<Plugin>> {
        self.plugins.all()
    }

    pub fn plugins_dir(&self) -> &Path {
        self.plugins.dir()
    }

    /// Loads the plugin libraries not tried before; returns how many were added.
    pub async fn load_new_plugins(self: &Arc<Self>) -> usize {
        let registry = Arc::clone(self);
        blocking(move || registry.plugins.load_new()).await.unwrap_or(0)
    }

    /// Picks up new plugins, then retries the models that no plugin could serve before.
    pub async fn refresh_plugins(self: &Arc<Self>) {
        let added = self.load_new_plugins().await;
        if added == 0 {
            return;
        }
        let waiting: Vec<String> = self
            .read()
            .iter()
            .filter(|(_, s)| s.serving.is_none() && matches!(s.load, Load::Failed(_)))
            .map(|(name, _)| name.clone())
            .collect();
        if !waiting.is_empty() {
            info!("{added} new plugin(s): retrying {}", waiting.join(", "));
            self.reload_all(waiting).await;
        }
    }

    /// The model file of a name: `<dir>/<name>.onnx`.
    pub fn file_of(&self, name: &str) -> PathBuf {
        files::model_file(&self.dir, name)
    }

    /// Lists the models folder and marks every model in it as loading, so that /health and
    /// /models show them from the first request on. Returns their names.
    pub async fn scan(self: &Arc<Self>) -> Vec<String> {
        let dir = self.dir.clone();
        let found = blocking(move || files::list(&dir)).await.unwrap_or_default();
        if found.is_empty() {
            warn!(
                "no models in {}: copy a YOLOv8 .onnx file there (name it <project id>.onnx to serve one Label Studio \
                 project); it is picked up while the server runs",
                self.dir.display()
            );
        }
        let mut table = self.write();
        found
            .into_iter()
            .map(|file| {
                let name = files::name_of(&file);
                table.entry(name.clone()).or_insert_with(|| Slot::new(file));
                name
            })
            .collect()
    }

    /// Models whose files are new or changed since they were last loaded, and models whose
    /// file is gone. Models loading now count as neither.
    pub async fn changes(self: &Arc<Self>) -> (Vec<String>, Vec<String>) {
        let registry = Arc::clone(self);
        blocking(move || registry.changes_now()).await.unwrap_or_default()
    }

    /// Blocking.
    fn changes_now(&self) -> (Vec<String>, Vec<String>) {
        let present: BTreeMap<String, (PathBuf, Option<Fingerprint>)> = files::list(&self.dir)
            .into_iter()
            .map(|file| {
                let fingerprint = Fingerprint::of(&file);
                (files::name_of(&file), (file, fingerprint))
            })
            .collect();
        let table = self.read();
        let changed = present
            .iter()
            .filter(|(name, (_, fingerprint))| match table.get(*name) {
                None => true,
                Some(slot) => !matches!(slot.load, Load::Loading) && slot.fingerprint != *fingerprint,
            })
            .map(|(name, _)| name.clone())
            .collect();
        let gone = table
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
        let (mut changed, gone) = self.changes().await;
        changed.extend(gone);
        self.reload_all(changed).await;
    }

    /// Brings one model in line with its file: loads it when it is new or changed, unloads it
    /// when the file is gone. A failed load leaves the serving version in place.
    pub async fn reload(self: &Arc<Self>, name: &str) {
        let key = self.file_of(name);
        let found = blocking(move || files::resolve(&key).main().map(Path::to_path_buf))
            .await
            .flatten();
        let Some(file) = found else {
            let file = self.file_of(name);
            if let Some(slot) = self.write().remove(name) {
                info!(
                    "model {name} removed: {} is gone{}",
                    file.display(),
                    if slot.serving.is_some() {
                        "; requests in flight finish with it"
                    } else {
                        ""
                    }
                );
            }
            return;
        };
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        {
            let mut table = self.write();
            let slot = table.entry(name.to_string()).or_insert_with(|| Slot::new(file.clone()));
            slot.file = file.clone();
            slot.load = Load::Loading;
            slot.generation = generation;
        }
        let registry = Arc::clone(self);
        let name = name.to_string();
        blocking(move || registry.load_and_store(&name, &file, generation)).await;
    }

    /// Builds models the way this registry does: its runtime, plugins, labels and settings.
    pub(super) fn loader(&self) -> Loader<'_> {
        Loader {
            runtime: &self.runtime,
            plugins: self.plugins.all(),
            fallback_labels: &self.fallback_labels,
            batching: self.batching,
            adapter_defaults: &self.adapter_defaults,
        }
    }

    /// Blocking.
    fn load_and_store(&self, name: &str, file: &Path, generation: u64) {
        let started = Instant::now();
        let fingerprint = Fingerprint::of(file);
        let serving = self.read().get(name).and_then(|s| s.serving.clone());
        let result = self.loader().load(file, name, serving.as_deref());
        let mut table = self.write();
        let Some(slot) = table.get_mut(name).filter(|s| s.generation == generation) else {
            // A newer load of this name started meanwhile (or the file was deleted); it decides.
            return;
        };
        slot.fingerprint = fingerprint;
        match result {
            Ok(Some(model)) => {
                info!(
                    "model {name} ready in {:.0} ms: adapter {}, provider {}, version {}, classes {:?}{}",
                    started.elapsed().as_secs_f64() * 1e3,
                    model.plugin().name(),
                    model.provider,
                    model.version,
                    model.class_names,
                    match &serving {
                        Some(old) => format!(" (replaces {})", old.version),
                        None => String::new(),
                    }
                );
                slot.serving = Some(Arc::new(model));
                slot.load = Load::Ready;
            }
            Ok(None) => slot.load = Load::Ready,
            Err(message) => {
                match &serving {
                    Some(old) => error!(
                        "model {} failed to load: {message}; the previous version {} keeps serving",
                        file.display(),
                        old.version
                    ),
                    None => error!("model {} failed to load: {message}", file.display()),
                }
                slot.load = Load::Failed(message);
            }
        }
        drop(table);
        self.loads_finished.send_modify(|n| *n += 1);
    }

    /// The model for a project: `<project id>.onnx`, else a model whose .toml lists the
    /// project, else ML_DEFAULT_MODEL, else the only model.
    pub fn route(&self, project: Option<&str>) -> Result<Arc<LoadedModel>, RouteError> {
        routing::route(
            &self.read(),
            &self.dir.display().to_string(),
            self.default_model.as_deref(),
            project,
        )
    }

    /// The model a control tag's `model_path` names.
    pub fn by_path(&self, path: &str) -> Result<Arc<LoadedModel>, RouteError> {
        routing::by_path(&self.read(), &self.dir.display().to_string(), path)
    }

    pub fn statuses(&self) -> Vec<ModelStatus> {
        status::statuses(&self.read())
    }

    /// One model's status, if the table has it.
    pub fn status_of(&self, name: &str) -> Option<ModelStatus> {
        self.statuses().into_iter().find(|s| s.name == name)
    }

    fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(PoisonError::into_inner)
    }
}
