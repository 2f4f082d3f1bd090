//! What `GET /models` shows for each model.

use serde::Serialize;

use super::table::{Load, LoadState, Table};
use crate::runtime::Provider;

#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    pub name: String,
    pub file: String,
    /// The latest load of this file.
    pub state: LoadState,
    /// Whether a version of this model serves predictions now (after a failed reload, the
    /// previous one does).
    pub serving: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_shape: Option<Vec<i64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_names: Option<Vec<String>>,
    /// Keypoints per object, for a pose model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keypoints: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<usize>,
    /// Whether tasks are batched for this model (ML_MAX_BATCH).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<String>,
    /// The graphs of a two-file model (encoder, decoder) and how often each has run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub graphs: Vec<GraphStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GraphStatus {
    pub name: String,
    pub inferences: u64,
}

pub(super) fn statuses(table: &Table) -> Vec<ModelStatus> {
    table
        .iter()
        .map(|(name, slot)| {
            let m = slot.serving.as_ref();
            ModelStatus {
                name: name.clone(),
                // The file's name only: answers never show where the server keeps its files.
                file: super::files::shown(&slot.file),
                state: slot.load.state(),
                serving: m.is_some(),
                error: match &slot.load {
                    Load::Failed(e) => Some(e.clone()),
                    Load::Loading | Load::Ready => None,
                },
                adapter: m.map(|m| format!("{} {}", m.plugin().name(), m.plugin().version())),
                provider: m.map(|m| m.provider),
                model_version: m.map(|m| m.version.clone()),
                input_shape: m.map(|m| m.input_shape()),
                class_names: m.map(|m| m.class_names.clone()),
                keypoints: m.and_then(|m| m.described.keypoints),
                sessions: m.map(|m| m.pool().size()),
                batch: m.map(|m| m.batcher.is_some()),
                projects: m.map(|m| m.projects.clone()).unwrap_or_default(),
                graphs: m
                    .map(|m| {
                        m.engine
                            .graphs
                            .iter()
                            .map(|(name, pool)| GraphStatus {
                                name: name.clone(),
                                inferences: pool.inferences(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect()
}
