//! Everything that speaks Label Studio: request types, the label config, result JSON, and
//! downloading task media from Label Studio or elsewhere.

pub mod label_config;
pub mod media;
pub mod protocol;
pub mod results;
