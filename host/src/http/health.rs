use serde_json::json;
use warp::reply::Response;

use super::{State, reply};
use ls_core::models::LoadState;

/// Cheap and always fast: Label Studio gives it one second.
#[utoipa::path(get, path = "/health", tag = "label-studio", description = "Whether the server is up, with model counts; always fast. `GET /` answers the same (a browser is sent to `/ui`).", responses((status = 200, description = "Up", content_type = "application/json")))]
pub fn handle(state: State) -> Response {
    let statuses = state.registry.statuses();
    let count = |s: LoadState| statuses.iter().filter(|m| m.state == s).count();
    reply::json(&json!({
        "status": "UP",
        "model_class": "ls-ml-backend",
        "version": env!("CARGO_PKG_VERSION"),
        "models": {
            "ready": count(LoadState::Ready),
            "loading": count(LoadState::Loading),
            "failed": count(LoadState::Failed),
        },
        "runtime": {
            "provider": state.runtime.requested_provider().to_string(),
            "onnxruntime": state.runtime.library().display().to_string(),
            "sessions_per_model": state.runtime.sessions_per_model(),
            "intra_threads": state.runtime.intra_threads(),
            "solo_threads": state.runtime.solo_threads(),
        },
        "uptime_seconds": state.started.elapsed().as_secs(),
    }))
}
