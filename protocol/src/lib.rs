//! Label Studio's side of ls-ml-backend, with no I/O: what Label Studio sends (requests and
//! the project's label config), and the prediction JSON it gets back, built from the
//! instances and classes an adapter found. Fetching media and talking to Label Studio's API
//! live in the host.

pub mod annotation;
pub mod brush;
pub mod interactive;
pub mod label_config;
pub mod protocol;
pub mod region;
pub mod results;
mod secret;
pub mod video;

pub use secret::Secret;
