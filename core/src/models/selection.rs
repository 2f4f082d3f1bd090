//! Which plugin serves a model: the one its sidecar names, else the best `inspect` score.

use std::sync::Arc;

use log::warn;
use plugin_api::ModelInfo;

use crate::plugins::Plugin;

fn names(plugins: &[Arc<Plugin>]) -> String {
    let names: Vec<&str> = plugins.iter().map(|p| p.name()).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// The plugin a sidecar's `adapter = "..."` asks for.
pub fn named(plugins: &[Arc<Plugin>], wanted: &str) -> Result<Arc<Plugin>, String> {
    plugins.iter().find(|p| p.name() == wanted).cloned().ok_or_else(|| {
        format!(
            "the .toml asks for adapter `{wanted}`, which is not loaded (loaded plugins: {})",
            names(plugins)
        )
    })
}

/// The plugin with the highest score for the model; the error gathers every plugin's reason.
pub fn best(plugins: &[Arc<Plugin>], info: &ModelInfo) -> Result<Arc<Plugin>, String> {
    let mut best: Option<(u32, &Arc<Plugin>)> = None;
    let mut reasons = Vec::new();
    for plugin in plugins {
        match plugin.inspect(info) {
            Ok(fit) if fit.score > 0 => {
                if best.is_none_or(|(b, _)| fit.score > b) {
                    best = Some((fit.score, plugin));
                }
            }
            Ok(fit) if !fit.reason.trim().is_empty() => reasons.push(format!("{}: {}", plugin.name(), fit.reason)),
            Ok(_) => {}
            Err(e) => warn!("plugin {} failed to inspect a model: {e}", plugin.name()),
        }
    }
    best.map(|(_, p)| Arc::clone(p)).ok_or_else(|| {
        let task = info.metadata("task").unwrap_or("none");
        format!(
            "no adapter plugin accepts this model (task metadata: {task}; inputs {:?}; outputs {:?}); loaded plugins: {}{}",
            info.inputs.iter().map(|t| t.shape.to_vec()).collect::<Vec<_>>(),
            info.outputs.iter().map(|t| t.shape.to_vec()).collect::<Vec<_>>(),
            names(plugins),
            if reasons.is_empty() { String::new() } else { format!("; {}", reasons.join("; ")) }
        )
    })
}
