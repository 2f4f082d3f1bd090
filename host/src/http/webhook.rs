use bytes::Bytes;
use serde_json::{Value, json};
use warp::reply::Response;

use super::reply;

/// Accepts every event with 200, quickly: Label Studio delivers webhooks synchronously
/// with a one-second timeout. Training is not supported, so events are only logged.
pub fn handle(body: Bytes) -> Response {
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let action = event.get("action").and_then(Value::as_str).unwrap_or("(no action)");
    let project = event
        .get("project")
        .and_then(|p| p.get("id").or(Some(p)))
        .map(|p| p.to_string())
        .unwrap_or_else(|| "-".into());
    log::info!("webhook {action} for project {project}");
    reply::json(&json!({}))
}
