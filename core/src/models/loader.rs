//! Building a model from its file: sessions, adapter choice, class names, warm-up.
//!
//! A model is swapped in only after all of this succeeded, so a bad file never replaces a
//! good model.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::Arc,
};

use log::warn;
use plugin_api::{ModelInfo, Options, Params, Prompt, capability};
use sha2::{Digest, Sha256};

use super::{
    Described, LoadedModel, Overrides,
    batcher::{BatchSettings, Batcher},
    files::{self, ModelFiles},
    model::model_version,
    run::Engine,
    selection,
    sidecar::Sidecar,
};
use crate::{
    imaging::RgbImage,
    plugins::Plugin,
    runtime::Provider,
    runtime::{LoadedSessions, Runtime, SessionPool},
};

/// Size of the grey image run through a new model before it serves: it proves that the
/// adapter, the session and the outputs fit together.
const WARMUP_SIZE: u32 = 64;

pub(super) struct Loader<'a> {
    pub runtime: &'a Runtime,
    pub plugins: Vec<Arc<Plugin>>,
    pub fallback_labels: &'a [String],
    pub batching: BatchSettings,
    /// Adapter settings the sidecar's `[options]` override.
    pub adapter_defaults: &'a Options,
}

impl Loader<'_> {
    /// Builds a model from its file (or files). `None` when the files and the sidecar hold
    /// what the serving model was built from. Blocking.
    pub fn load(&self, file: &Path, name: &str, serving: Option<&LoadedModel>) -> Result<Option<LoadedModel>, String> {
        self.load_with_sidecar(file, &files::sidecar_of(file), name, serving)
    }

    /// The same with the sidecar at `sidecar_path` (an upload is checked in a staging file
    /// with the sidecar of the name it will have).
    pub fn load_with_sidecar(
        &self,
        file: &Path,
        sidecar_path: &Path,
        name: &str,
        serving: Option<&LoadedModel>,
    ) -> Result<Option<LoadedModel>, String> {
        // A staged upload has a hidden name of its own: it is one file, whatever it is called.
        let graphs: Vec<(&'static str, PathBuf)> = match files::resolve(file) {
            ModelFiles::Graphs(graphs) if files::model_of(file).is_some() => graphs,
            _ => vec![("", file.to_path_buf())],
        };
        // The sessions are built from these very bytes, so the version always describes
        // the model that runs, even if a file changes again meanwhile.
        let mut contents = Vec::with_capacity(graphs.len());
        for (graph, path) in &graphs {
            match fs::read(path) {
                Ok(bytes) => contents.push((*graph, path.clone(), bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !graph.is_empty() => {
                    return Err(format!(
                        "{} is missing: a two-file model needs both {}",
                        path.display(),
                        graphs
                            .iter()
                            .map(|(_, p)| p.file_name().unwrap_or_default().to_string_lossy().into_owned())
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ));
                }
                Err(e) => return Err(format!("cannot read {}: {e}", files::shown(path))),
            }
        }
        let sidecar_path = sidecar_path.to_path_buf();
        let sidecar_text = match fs::read_to_string(&sidecar_path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot read {}: {e}", files::shown(&sidecar_path))),
        };
        let mut hasher = Sha256::new();
        for (graph, _, bytes) in &contents {
            // Framed, so that moving bytes from one graph to the other changes the hash.
            hasher.update(graph.as_bytes());
            hasher.update((bytes.len() as u64).to_le_bytes());
            if graph.is_empty() {
                hasher.update(bytes);
            } else {
                hasher.update(Sha256::digest(bytes));
            }
        }
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
        let mut loaded = Vec::with_capacity(contents.len());
        for (graph, path, bytes) in contents {
            let sessions = self.runtime.load(&path, &bytes).map_err(|e| e.to_string())?;
            loaded.push((graph, sessions));
        }
        let sessions = Graphs::merge(loaded)?;
        let plugin = match &sidecar.adapter {
            Some(wanted) => selection::named(&self.plugins, wanted)?,
            None => selection::best(&self.plugins, &sessions.info)?,
        };
        let class_agnostic = plugin.has(capability::INTERACTIVE_ONLY);
        let class_names = sidecar
            .labels
            .clone()
            .or_else(|| sessions.info.metadata("names").and_then(plugin_api::sdk::parse_names))
            // A class-agnostic segmenter answers with the annotator's label.
            .or_else(|| class_agnostic.then(|| vec!["object".to_string()]))
            .or_else(|| (!self.fallback_labels.is_empty()).then(|| self.fallback_labels.to_vec()))
            .ok_or_else(|| {
                "the model has no `names` metadata: set `labels` in its .toml, or ML_LABELS, to its class names"
                    .to_string()
            })?;
        let adapter = plugin
            .open(&sessions.info, &self.options_with(&sidecar))
            .map_err(|e| format!("{} cannot open the model: {e}", plugin.name()))?;
        let described = adapter
            .call(plugin_api::operation::DESCRIBE, &plugin_api::Options::new())
            .map(|answer| Described::from_options(&answer))
            .unwrap_or_default();
        let engine = Engine {
            adapter: Arc::new(adapter),
            pool: sessions.main,
            graphs: Arc::new(sessions.named),
        };
        warm_up(&engine, 1)?;
        let dynamic_batch = sessions
            .info
            .inputs
            .first()
            .is_some_and(|i| i.shape.first().is_some_and(|d| *d < 0));
        let batcher = (self.batching.max_batch > 1 && plugin.has(capability::BATCH) && dynamic_batch)
            .then(|| match warm_up(&engine, 2) {
                Ok(()) => Some(Batcher::start(engine.clone(), self.batching)),
                Err(e) => {
                    warn!("{name}: tasks are not batched: a batch of two failed ({e})");
                    None
                }
            })
            .flatten();
        let model = LoadedModel {
            name: name.to_string(),
            version: model_version(name, &hash, &plugin),
            content_hash: hash,
            engine,
            batcher,
            info: sessions.info,
            provider: sessions.provider,
            class_names,
            described,
            overrides: Overrides {
                conf: sidecar.conf.map(|v| v as f32),
                iou: sidecar.iou.map(|v| v as f32),
                max_det: sidecar.max_det,
            },
            projects: sidecar.projects,
        };
        Ok(Some(model))
    }
}

impl Loader<'_> {
    fn options_with(&self, sidecar: &Sidecar) -> Options {
        let mut options = self.adapter_defaults.clone();
        for (key, value) in sidecar.adapter_options().iter() {
            options.set(key, value);
        }
        options
    }
}

/// Runs `frames` grey images through prepare, the session and finish, on the calling
/// (blocking) thread. A model that answers only prompts gets a click in the middle, so
/// that each of its graphs runs.
fn warm_up(engine: &Engine, frames: usize) -> Result<(), String> {
    let grey = Arc::new(RgbImage {
        width: WARMUP_SIZE,
        height: WARMUP_SIZE,
        pixels: vec![114u8; (WARMUP_SIZE * WARMUP_SIZE * 3) as usize],
    });
    let images = vec![grey; frames];
    let plugin = engine.adapter.plugin();
    let prompts = if plugin.has(capability::INTERACTIVE_ONLY) && plugin.has(capability::PROMPT_POINT) {
        let middle = WARMUP_SIZE as f32 / 2.0;
        vec![Prompt::point(middle, middle, true)]
    } else {
        Vec::new()
    };
    tokio::runtime::Handle::current()
        .block_on(engine.run_prompted(images, prompts, Params::default(), Options::new()))
        .map(drop)
        .map_err(|e| format!("warm-up: {e}"))
}

/// The sessions of a model's graphs, and what the adapter is told about them.
struct Graphs {
    main: Arc<SessionPool>,
    named: Vec<(String, Arc<SessionPool>)>,
    info: ModelInfo,
    provider: Provider,
}

impl Graphs {
    /// One file: its sessions and info as they are. Several graphs: the decoder (the last)
    /// answers, and the adapter sees every graph's inputs and outputs in one `ModelInfo`,
    /// with metadata saying which belong to which graph (`graphs`, `graph.<name>.inputs`,
    /// `graph.<name>.outputs`, comma-separated) and each graph's own metadata, the later
    /// graph's first.
    fn merge(loaded: Vec<(&'static str, LoadedSessions)>) -> Result<Graphs, String> {
        if let [("", _)] = loaded.as_slice() {
            let Some((_, one)) = loaded.into_iter().next() else {
                return Err("no graph".to_string());
            };
            return Ok(Graphs {
                main: Arc::new(one.pool),
                named: Vec::new(),
                info: one.info,
                provider: one.provider,
            });
        }
        let mut info = ModelInfo::default();
        let names: Vec<&str> = loaded.iter().map(|(g, _)| *g).collect();
        let mut metadata = vec![("graphs".to_string(), names.join(","))];
        let mut provider = Provider::Cpu;
        for (graph, sessions) in &loaded {
            let list = |tensors: &[plugin_api::TensorInfo]| {
                tensors.iter().map(|t| t.name.to_string()).collect::<Vec<_>>().join(",")
            };
            metadata.push((format!("graph.{graph}.inputs"), list(&sessions.info.inputs)));
            metadata.push((format!("graph.{graph}.outputs"), list(&sessions.info.outputs)));
            info.inputs.extend(sessions.info.inputs.iter().cloned());
            info.outputs.extend(sessions.info.outputs.iter().cloned());
            provider = sessions.provider;
        }
        for (_, sessions) in loaded.iter().rev() {
            for entry in sessions.info.metadata.iter() {
                if !metadata.iter().any(|(k, _)| k == entry.key.as_str()) {
                    metadata.push((entry.key.to_string(), entry.value.to_string()));
                }
            }
        }
        info.metadata = metadata
            .into_iter()
            .map(|(key, value)| plugin_api::MetadataEntry {
                key: key.into(),
                value: value.into(),
            })
            .collect();
        let named: Vec<(String, Arc<SessionPool>)> = loaded
            .into_iter()
            .map(|(graph, sessions)| (graph.to_string(), Arc::new(sessions.pool)))
            .collect();
        let main = named
            .last()
            .map(|(_, pool)| Arc::clone(pool))
            .ok_or_else(|| "no graph".to_string())?;
        Ok(Graphs {
            main,
            named,
            info,
            provider,
        })
    }
}
