use bytes::Bytes;
use serde_json::json;
use warp::reply::Response;

use labelstudio_protocol::{
    label_config::LabelConfig,
    protocol::{SetupRequest, project_id},
};

use super::openapi::ErrorBody;
use super::{State, error::HttpError, reply};
use ls_core::pipeline::{ApiError, Plan};

/// Answers with the version of the model(s) that would fill the project's label config.
/// Loads nothing: Label Studio calls this before every prediction batch and gives it three
/// seconds.
#[utoipa::path(post, path = "/setup", tag = "label-studio", description = "Label Studio's Validate and Save: the model version(s) that fill the project's label config. Loads nothing.", request_body(description = "Label Studio's setup request: `project`, `schema` (the label config), `hostname`, `access_token`", content_type = "application/json"), responses((status = 200, description = "`{\"model_version\": ...}`", content_type = "application/json"), (status = 400, description = "The request is malformed or refers to what does not exist", body = ErrorBody), (status = 401, description = "Basic auth is on and the credentials are wrong", body = ErrorBody)))]
pub fn handle(headers: warp::http::HeaderMap, body: Bytes, state: State) -> Result<Response, HttpError> {
    let request: SetupRequest = reply::parse_body(&body)?;
    // Anyone who may call /setup learns the model version, but only a trusted caller (see
    // `trust`) tells us where Label Studio is: the key goes there.
    let trusted = state.trust.check(&headers).is_ok();
    state
        .predictor
        .media
        .note_setup(request.hostname.as_deref(), request.access_token.as_ref(), trusted);
    let project = project_id(request.project.as_ref());
    let shown = project.as_deref().unwrap_or("(none)");
    // A schema that does not parse is the user's to fix in Label Studio; the project's model
    // is still the answer, as for a config without control tags.
    let config = match request.schema.as_deref().map(LabelConfig::parse) {
        Some(Ok(config)) => Some(config),
        Some(Err(e)) => {
            log::warn!("setup for project {shown}: {e}");
            None
        }
        None => None,
    };
    match Plan::build(&state.registry, project.as_deref(), config.as_ref()) {
        Ok(plan) => Ok(reply::json(&json!({ "model_version": plan.version }))),
        Err(e) => {
            log::warn!("setup for project {shown}: {e}");
            Err(ApiError::Route(e).into())
        }
    }
}
