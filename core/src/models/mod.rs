//! Models: the folder's naming rules, loading a model file, choosing its adapter, the table
//! of slots with their load states, and routing a request to a model.

mod batcher;
pub mod files;
mod loader;
mod manage;
mod model;
mod registry;
mod routing;
mod run;
mod selection;
mod sidecar;
mod status;
pub mod store;
mod table;

pub use batcher::BatchSettings;
pub use files::{Fingerprint, model_of};
pub use manage::{ManageError, checked_name};
pub use model::{Described, LoadedModel, Overrides};
pub use registry::Registry;
pub use routing::RouteError;
pub use run::{RunError, RunTimes};
pub use sidecar::{Sidecar, SidecarError, TrainTable, train_problems};
pub use status::ModelStatus;
pub use store::{LocalModels, ModelStore, StoreError};
pub use table::LoadState;
