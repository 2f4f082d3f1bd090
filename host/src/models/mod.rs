//! Models: the folder's naming rules, loading a model file, choosing its adapter, the table
//! of slots with their load states, and routing a request to a model.

mod files;
mod loader;
mod model;
mod registry;
mod routing;
mod selection;
mod sidecar;
mod status;
mod table;

pub use files::{Fingerprint, model_of};
pub use model::{LoadedModel, Next, Overrides};
pub use registry::Registry;
pub use routing::RouteError;
pub use status::ModelStatus;
pub use table::LoadState;
