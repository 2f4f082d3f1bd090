//! The table of model slots: one per model name, with the version that serves and the state
//! of the latest load.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use serde::Serialize;

use super::{Fingerprint, LoadedModel, RouteError};

/// The state of a slot's latest load, as `/models`, `/health` and `/metrics` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadState {
    Loading,
    Ready,
    Failed,
}

impl LoadState {
    pub fn as_str(self) -> &'static str {
        match self {
            LoadState::Loading => "loading",
            LoadState::Ready => "ready",
            LoadState::Failed => "failed",
        }
    }
}

/// The latest load of a slot, with the error of a failed one.
#[derive(Debug, Clone)]
pub(super) enum Load {
    Loading,
    Ready,
    Failed(String),
}

impl Load {
    pub(super) fn state(&self) -> LoadState {
        match self {
            Load::Loading => LoadState::Loading,
            Load::Ready => LoadState::Ready,
            Load::Failed(_) => LoadState::Failed,
        }
    }
}

pub(super) struct Slot {
    pub(super) file: PathBuf,
    /// The version that answers requests; kept while a newer file loads or after it fails.
    pub(super) serving: Option<Arc<LoadedModel>>,
    pub(super) load: Load,
    /// The file as it was read by the latest finished load.
    pub(super) fingerprint: Option<Fingerprint>,
    /// The latest load started; an older load that finishes later is discarded.
    pub(super) generation: u64,
}

impl Slot {
    pub(super) fn new(file: PathBuf) -> Self {
        Self {
            file,
            serving: None,
            load: Load::Loading,
            fingerprint: None,
            generation: 0,
        }
    }

    /// The model that serves, or why none does.
    pub(super) fn pick(&self, name: &str) -> Result<Arc<LoadedModel>, RouteError> {
        if let Some(model) = &self.serving {
            return Ok(Arc::clone(model));
        }
        match &self.load {
            Load::Failed(e) => Err(RouteError::Failed {
                name: name.to_string(),
                error: e.clone(),
            }),
            Load::Loading | Load::Ready => Err(RouteError::Loading { name: name.to_string() }),
        }
    }
}

pub(super) type Table = BTreeMap<String, Slot>;
