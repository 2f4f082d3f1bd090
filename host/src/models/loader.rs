//! Building a model from its file: sessions, adapter choice, class names, warm-up.
//!
//! A model is swapped in only after all of this succeeded, so a bad file never replaces a
//! good model.

use std::{fs, path::Path, sync::Arc};

use log::warn;
use plugin_api::{Options, Params, capability};
use sha2::{Digest, Sha256};

use super::{
    Described, LoadedModel, Overrides,
    batcher::{BatchSettings, Batcher},
    files,
    model::model_version,
    run::Engine,
    selection,
    sidecar::Sidecar,
};
use crate::{imaging::RgbImage, plugins::Plugin, runtime::Runtime};

/// Size of the grey image run through a new model before it serves: it proves that the
/// adapter, the session and the outputs fit together.
const WARMUP_SIZE: u32 = 64;

pub(super) struct Loader<'a> {
    pub runtime: &'a Runtime,
    pub plugins: Vec<Arc<Plugin>>,
    pub fallback_labels: &'a [String],
    pub batching: BatchSettings,
}

impl Loader<'_> {
    /// Builds a model from a file. `None` when the file and its sidecar hold what the serving
    /// model was built from. Blocking.
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
        // The sessions are built from these very bytes, so the version always describes
        // the model that runs, even if the file changes again meanwhile.
        let bytes = fs::read(file).map_err(|e| format!("cannot read the file: {e}"))?;
        let sidecar_path = sidecar_path.to_path_buf();
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
        let plugin = match &sidecar.adapter {
            Some(wanted) => selection::named(&self.plugins, wanted)?,
            None => selection::best(&self.plugins, &sessions.info)?,
        };
        let class_names = sidecar
            .labels
            .clone()
            .or_else(|| sessions.info.metadata("names").and_then(plugin_api::sdk::parse_names))
            .or_else(|| (!self.fallback_labels.is_empty()).then(|| self.fallback_labels.to_vec()))
            .ok_or_else(|| {
                "the model has no `names` metadata: set `labels` in its .toml, or ML_LABELS, to its class names"
                    .to_string()
            })?;
        let adapter = plugin
            .open(&sessions.info, &sidecar.adapter_options())
            .map_err(|e| format!("{} cannot open the model: {e}", plugin.name()))?;
        let described = adapter
            .call(plugin_api::operation::DESCRIBE, &plugin_api::Options::new())
            .map(|answer| Described::from_options(&answer))
            .unwrap_or_default();
        let engine = Engine {
            adapter: Arc::new(adapter),
            pool: Arc::new(sessions.pool),
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

/// Runs `frames` grey images through prepare, the session and finish, on the calling
/// (blocking) thread.
fn warm_up(engine: &Engine, frames: usize) -> Result<(), String> {
    let grey = Arc::new(RgbImage {
        width: WARMUP_SIZE,
        height: WARMUP_SIZE,
        pixels: vec![114u8; (WARMUP_SIZE * WARMUP_SIZE * 3) as usize],
    });
    let images = vec![grey; frames];
    tokio::runtime::Handle::current()
        .block_on(engine.run(images, Params::default(), Options::new()))
        .map(drop)
        .map_err(|e| format!("warm-up: {e}"))
}
