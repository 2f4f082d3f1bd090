use serde_json::json;
use warp::reply::Response;

use super::{State, reply};

/// Every model version this backend serves now.
pub fn versions(state: State) -> Response {
    let versions: Vec<String> = state
        .registry
        .statuses()
        .into_iter()
        .filter_map(|m| m.model_version)
        .collect();
    reply::json(&json!({ "versions": versions }))
}

pub fn models(state: State) -> Response {
    reply::json(
        &json!({ "models_dir": state.registry.dir().display().to_string(), "models": state.registry.statuses() }),
    )
}

/// Rescans the models folder now and applies what changed; answers with the models after.
pub async fn reload(state: State) -> Response {
    state.registry.rescan().await;
    models(state)
}

pub fn plugins(state: State) -> Response {
    let plugins: Vec<_> = state
        .registry
        .plugins()
        .iter()
        .map(|p| {
            json!({
                "name": p.name(),
                "version": p.version(),
                "api_version": p.api_version(),
                "tasks": p.tasks(),
                "capabilities": p.capabilities(),
                "file": ls_core::models::files::shown(&p.file),
            })
        })
        .collect();
    reply::json(&json!({ "plugins": plugins }))
}
