//! Everything that speaks Label Studio: request types, the label config, result JSON, and
//! getting task media from Label Studio, its storages or elsewhere.

pub mod auth;
pub mod brush;
pub mod label_config;
pub mod media;
mod media_cache;
pub mod media_policy;
pub mod protocol;
pub mod results;
