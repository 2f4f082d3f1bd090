//! One loaded model: its sessions, the adapter opened for it, and what identifies it.

use std::sync::Arc;

use plugin_api::{FrameOutput, ModelInfo, Options, Params};

use super::{
    batcher::Batcher,
    run::{Engine, RunError, RunTimes},
};
use crate::{imaging::RgbImage, plugins::Plugin, runtime::Provider, runtime::SessionPool};

pub struct LoadedModel {
    /// The file name without `.onnx`; `3.onnx` is the model of project 3.
    pub name: String,
    /// Changes exactly when the file's content or the adapter changes, so that Label Studio
    /// asks for new predictions then, and only then.
    pub version: String,
    /// The plugin's adapter for this model (dropped with the model) and its sessions.
    pub engine: Engine,
    /// Present when tasks are batched for this model.
    pub batcher: Option<Batcher>,
    pub info: ModelInfo,
    /// Where the sessions really run (the CPU after a CUDA fallback).
    pub provider: Provider,
    /// Class names by class id: from the sidecar, else the `names` metadata, else ML_LABELS.
    pub class_names: Vec<String>,
    /// What the adapter says the model gives beyond classes (`operation::DESCRIBE`).
    pub described: Described,
    /// SHA-256 of the model file and its sidecar: a reload of the same content is skipped.
    pub content_hash: String,
    /// This model's own prediction defaults, from its sidecar.
    pub overrides: Overrides,
    /// Label Studio projects this model serves, from its sidecar.
    pub projects: Vec<String>,
}

/// What an adapter says about its model beyond class names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Described {
    /// Keypoints per instance, for a pose model.
    pub keypoints: Option<usize>,
    /// Keypoint names by class id, then keypoint index (empty where the model has none).
    pub keypoint_names: Vec<Vec<String>>,
}

impl Described {
    /// Reads the answer to `operation::DESCRIBE`; keys it does not know are ignored.
    pub fn from_options(options: &Options) -> Self {
        let mut described = Described {
            keypoints: options.parse("keypoints"),
            keypoint_names: Vec::new(),
        };
        for (key, name) in options.iter() {
            let Some(rest) = key.strip_prefix("keypoint.") else {
                continue;
            };
            let Some((class, index)) = rest.split_once('.') else {
                continue;
            };
            let (Ok(class), Ok(index)) = (class.parse::<usize>(), index.parse::<usize>()) else {
                continue;
            };
            // Bounded by the keypoint count, so a faulty adapter cannot make the host allocate much.
            if class >= 10_000 || index >= described.keypoints.unwrap_or(0) {
                continue;
            }
            if described.keypoint_names.len() <= class {
                described.keypoint_names.resize(class + 1, Vec::new());
            }
            let names = &mut described.keypoint_names[class];
            if names.len() <= index {
                names.resize(index + 1, String::new());
            }
            names[index] = name.to_string();
        }
        described
    }
}

/// Prediction defaults a sidecar can set for one model.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Overrides {
    pub conf: Option<f32>,
    pub iou: Option<f32>,
    pub max_det: Option<u32>,
}

impl LoadedModel {
    pub fn plugin(&self) -> &Arc<Plugin> {
        self.engine.adapter.plugin()
    }

    pub fn pool(&self) -> &SessionPool {
        &self.engine.pool
    }

    /// Runs the model on one image: in the next batch when batching is on.
    pub async fn predict(&self, image: Arc<RgbImage>, params: Params) -> Result<(FrameOutput, RunTimes), RunError> {
        match &self.batcher {
            Some(batcher) => batcher.run(image, params).await,
            None => {
                let (frames, times) = self.engine.run(vec![image], params, Options::new()).await?;
                Ok((frames.into_iter().next().unwrap_or_default(), times))
            }
        }
    }

    /// The server-wide defaults with this model's own settings applied.
    pub fn params(&self, defaults: Params) -> Params {
        Params {
            conf: self.overrides.conf.unwrap_or(defaults.conf),
            iou: self.overrides.iou.unwrap_or(defaults.iou),
            max_det: self.overrides.max_det.unwrap_or(defaults.max_det),
        }
    }

    pub fn input_shape(&self) -> Vec<i64> {
        self.info.inputs.first().map(|i| i.shape.to_vec()).unwrap_or_default()
    }
}

/// `<name>-<first 8 hex of sha256>-<adapter>-<adapter version>`.
pub fn model_version(name: &str, content_hash: &str, plugin: &Plugin) -> String {
    let short = &content_hash[..content_hash.len().min(8)];
    format!("{name}-{short}-{}-{}", plugin.name(), plugin.version())
}
