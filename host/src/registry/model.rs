//! One loaded model: its sessions, the adapter that serves it, and what identifies it.

use std::sync::Arc;

use plugin_api::{ModelInfo, Params};

use crate::{plugins::Plugin, runtime::SessionPool};

pub struct LoadedModel {
    /// The file name without `.onnx`; `3.onnx` is the model of project 3.
    pub name: String,
    /// Changes exactly when the file's content or the adapter changes, so that Label Studio
    /// asks for new predictions then, and only then.
    pub version: String,
    pub adapter: Arc<Plugin>,
    pub info: ModelInfo,
    pub pool: Arc<SessionPool>,
    /// Where the sessions really run (`cpu` after a CUDA fallback).
    pub provider: String,
    /// Class names by class id: from the sidecar, else the `names` metadata, else ML_LABELS.
    pub class_names: Vec<String>,
    /// SHA-256 of the model file and its sidecar: a reload of the same content is skipped.
    pub content_hash: String,
    /// This model's own prediction defaults, from its sidecar.
    pub overrides: Overrides,
    /// Label Studio projects this model serves, from its sidecar.
    pub projects: Vec<String>,
}

/// Prediction defaults a sidecar can set for one model.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Overrides {
    pub conf: Option<f32>,
    pub iou: Option<f32>,
    pub max_det: Option<u32>,
}

impl LoadedModel {
    pub fn class_name(&self, class_id: u32) -> Option<&str> {
        self.class_names.get(class_id as usize).map(String::as_str)
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
pub fn model_version(name: &str, content_hash: &str, adapter: &Plugin) -> String {
    let short = &content_hash[..content_hash.len().min(8)];
    format!("{name}-{short}-{}-{}", adapter.name(), adapter.version())
}
