//! One loaded model: its sessions, the adapter opened for it, and what identifies it.

use std::sync::Arc;

use plugin_api::{ModelInfo, Params};

use crate::{
    config::Provider,
    plugins::{Adapter, Plugin},
    runtime::SessionPool,
};

pub struct LoadedModel {
    /// The file name without `.onnx`; `3.onnx` is the model of project 3.
    pub name: String,
    /// Changes exactly when the file's content or the adapter changes, so that Label Studio
    /// asks for new predictions then, and only then.
    pub version: String,
    /// The plugin's adapter for this model; dropped with the model.
    pub adapter: Adapter,
    pub info: ModelInfo,
    pub pool: Arc<SessionPool>,
    /// Where the sessions really run (the CPU after a CUDA fallback).
    pub provider: Provider,
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
    pub fn plugin(&self) -> &Arc<Plugin> {
        self.adapter.plugin()
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

/// Inferences one prediction may chain (a two-stage model runs two).
pub const MAX_INFERENCES: usize = 4;

/// What comes after `finish`.
pub enum Next {
    Done(plugin_api::Output),
    Run(plugin_api::Prepared),
}

impl LoadedModel {
    /// Checks that the inference an adapter asks for is one this model can run: the host
    /// runs the model's one ONNX file.
    pub fn runnable(&self, prepared: &plugin_api::Prepared) -> Result<(), plugin_api::PluginError> {
        if prepared.graph.is_empty() {
            Ok(())
        } else {
            Err(plugin_api::PluginError::unsupported(format!(
                "the adapter asks for graph `{}`, but this model is one ONNX file",
                prepared.graph
            )))
        }
    }

    /// The answer, or the next inference of a two-stage adapter; `done` inferences ran so far.
    pub fn next(&self, step: plugin_api::Step, done: usize) -> Result<Next, plugin_api::PluginError> {
        match step {
            plugin_api::Step::Done(output) => Ok(Next::Done(output)),
            plugin_api::Step::Run(_) if !self.plugin().has(plugin_api::capability::TWO_STAGE) => {
                Err(plugin_api::PluginError::internal(
                    "the adapter asked for another inference without declaring `two-stage`",
                ))
            }
            plugin_api::Step::Run(_) if done >= MAX_INFERENCES => Err(plugin_api::PluginError::internal(format!(
                "the adapter asked for more than {MAX_INFERENCES} inferences for one prediction"
            ))),
            plugin_api::Step::Run(prepared) => {
                self.runnable(&prepared)?;
                Ok(Next::Run(prepared))
            }
        }
    }
}
