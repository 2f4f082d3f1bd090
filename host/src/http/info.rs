use serde_json::json;
use warp::reply::Response;

use super::{State, reply};

/// Every model version this backend serves now.
#[utoipa::path(get, path = "/versions", tag = "label-studio", description = "The model versions served now.", responses((status = 200, description = "`{\"versions\": [...]}`", content_type = "application/json")))]
pub fn versions(state: State) -> Response {
    let versions: Vec<String> = state
        .registry
        .statuses()
        .into_iter()
        .filter_map(|m| m.model_version)
        .collect();
    reply::json(&json!({ "versions": versions }))
}

#[utoipa::path(get, path = "/models", tag = "models", description = "Every model: its file, the state of its latest load, and what the serving version is.", responses((status = 200, description = "The models", content_type = "application/json")))]
pub fn models(state: State) -> Response {
    reply::json(
        &json!({ "models_dir": state.registry.dir().display().to_string(), "models": state.registry.statuses() }),
    )
}

/// Rescans the models folder now and applies what changed; answers with the models after.
#[utoipa::path(post, path = "/models/reload", tag = "models", description = "Rescans the models folder now and applies what changed; answers like `GET /models`.", responses((status = 200, description = "The models", content_type = "application/json")))]
pub async fn reload(state: State) -> Response {
    state.registry.rescan().await;
    models(state)
}

#[utoipa::path(get, path = "/plugins", tag = "server", description = "Each loaded plugin: name, version, plugin-api version, tasks, capabilities, file.", responses((status = 200, description = "The plugins", content_type = "application/json")))]
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
