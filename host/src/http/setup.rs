use bytes::Bytes;
use serde_json::json;
use warp::{http::StatusCode, reply::Response};

use super::{State, reply};
use crate::labelstudio::protocol::{SetupRequest, project_id};

/// Answers with the version of the model routing picks for the project. Loads nothing:
/// Label Studio calls this before every prediction batch and gives it three seconds.
pub fn handle(body: Bytes, state: State) -> Response {
    let request: SetupRequest = match reply::parse_body(&body) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    let project = project_id(request.project.as_ref());
    match state.registry.route(project.as_deref()) {
        Ok(model) => reply::json(&json!({ "model_version": model.version })),
        Err(e) => {
            log::warn!("setup for project {}: {e}", project.as_deref().unwrap_or("(none)"));
            reply::error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    }
}
