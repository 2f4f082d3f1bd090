//! Getting task media from Label Studio, its storages or elsewhere, with Label Studio's
//! tokens. The protocol itself is the `labelstudio-protocol` crate.

pub mod api;
pub mod auth;
pub mod media;
mod media_cache;
pub mod media_policy;

pub use media::MediaSettings;
