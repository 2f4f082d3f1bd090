//! The management API: upload, download and delete models, read and write their settings,
//! try a model on an image. Thin routes over `models` and `pipeline`.
//!
//! Who may change models is `trust`'s rule, applied by the routes.

use bytes::Buf;
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use warp::reply::Response;

use super::openapi::ErrorBody;
use super::{State, error::HttpError, reply};
use ls_core::models::{ManageError, checked_name};

use warp::Reply as _;

/// `PUT /models/NAME`: the body is the `.onnx` file.
#[utoipa::path(put, path = "/models/{name}", tag = "models", description = "Installs the body as `NAME.onnx` once it has loaded in a staging slot; a file that does not load replaces nothing.", params(("name" = String, Path, description = "The model's name: its file name without `.onnx`")), request_body(description = "The ONNX file", content_type = "application/octet-stream"), responses((status = 200, description = "The new model's status", content_type = "application/json"), (status = 400, description = "The request is malformed or refers to what does not exist", body = ErrorBody), (status = 401, description = "Basic auth is on and the credentials are wrong", body = ErrorBody), (status = 403, description = "Refused by the trust rule (see docs/security.md)", body = ErrorBody), (status = 413, description = "Larger than ML_MAX_MODEL_MB", body = ErrorBody), (status = 422, description = "The file does not load", body = ErrorBody)))]
pub async fn upload(
    name: String,
    length: Option<u64>,
    mut body: impl Stream<Item = Result<impl Buf, warp::Error>> + Unpin,
    state: State,
) -> Result<Response, HttpError> {
    let limit = state.max_model_bytes;
    let too_large = ManageError::TooLarge {
        limit_mb: limit / (1024 * 1024),
    };
    let name = match checked_name(&name) {
        Ok(name) => name,
        Err(e) => {
            drain(&mut body).await;
            return Err(e.into());
        }
    };
    if length.is_some_and(|n| n > limit) {
        drain(&mut body).await;
        return Err(too_large.into());
    }
    let staged = state.registry.staging_file(&name);
    match receive(&staged, &mut body, limit).await {
        Ok(true) => {}
        Ok(false) => {
            let _ = tokio::fs::remove_file(&staged).await;
            drain(&mut body).await;
            return Err(too_large.into());
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&staged).await;
            return Err(ManageError::Io(format!("the upload broke off: {e}")).into());
        }
    }
    let status = state.registry.install(&name, staged, &state.trust.who()).await?;
    Ok(reply::json(&status))
}

/// Most bytes of a refused upload read (and dropped) before answering: a client that is
/// still sending would otherwise see its connection closed instead of the answer.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

async fn drain(body: &mut (impl Stream<Item = Result<impl Buf, warp::Error>> + Unpin)) {
    let mut read = 0u64;
    while read < DRAIN_LIMIT {
        match body.next().await {
            Some(Ok(chunk)) => read += chunk.remaining() as u64,
            _ => break,
        }
    }
}

/// Writes the body to `path`; false when it grew past `limit`.
async fn receive(
    path: &std::path::Path,
    body: &mut (impl Stream<Item = Result<impl Buf, warp::Error>> + Unpin),
    limit: u64,
) -> Result<bool, String> {
    let mut file = tokio::fs::File::create(path).await.map_err(|e| e.to_string())?;
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|e| e.to_string())?;
        written += chunk.remaining() as u64;
        if written > limit {
            return Ok(false);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            file.write_all(part).await.map_err(|e| e.to_string())?;
            let n = part.len();
            chunk.advance(n);
        }
    }
    file.flush().await.map_err(|e| e.to_string())?;
    Ok(true)
}

/// `GET /models/NAME/file`: the `.onnx` file.
#[utoipa::path(get, path = "/models/{name}/file", tag = "models", description = "The model's file.", params(("name" = String, Path, description = "The model's name: its file name without `.onnx`")), responses((status = 200, description = "The ONNX file", content_type = "application/octet-stream"), (status = 404, description = "No such model", body = ErrorBody)))]
pub async fn download(name: String, state: State) -> Result<Response, HttpError> {
    let name = checked_name(&name)?;
    let file = state.registry.model_file(&name).await?;
    // Streamed in pieces, a few downloads at a time: a large model is never held in memory
    // whole, however many clients ask for it.
    let permit = DOWNLOADS
        .acquire()
        .await
        .map_err(|_| ManageError::Io("the server is stopping".into()))?;
    let opened = tokio::fs::File::open(&file)
        .await
        .map_err(|e| ManageError::Io(format!("cannot read {}: {e}", ls_core::models::files::shown(&file))))?;
    let length = opened.metadata().await.ok().map(|m| m.len());
    // The permit goes with the stream: it is given back when the download ends or breaks off.
    let chunks = tokio_util::io::ReaderStream::with_capacity(opened, 256 * 1024).map(move |chunk| {
        let _downloading = &permit;
        chunk
    });
    let mut response = warp::reply::stream(chunks).into_response();
    let headers = response.headers_mut();
    headers.insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(length) = length {
        headers.insert(
            warp::http::header::CONTENT_LENGTH,
            warp::http::HeaderValue::from(length),
        );
    }
    if let Ok(value) = warp::http::HeaderValue::from_str(&format!("attachment; filename=\"{name}.onnx\"")) {
        headers.insert(warp::http::header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// Model downloads streaming at once; more wait their turn.
static DOWNLOADS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// `DELETE /models/NAME`.
#[utoipa::path(delete, path = "/models/{name}", tag = "models", description = "Deletes the model's files and its settings; requests in flight finish with it.", params(("name" = String, Path, description = "The model's name: its file name without `.onnx`")), responses((status = 200, description = "Deleted", content_type = "application/json"), (status = 404, description = "No such model", body = ErrorBody), (status = 403, description = "Refused by the trust rule (see docs/security.md)", body = ErrorBody)))]
pub async fn delete(name: String, state: State) -> Result<Response, HttpError> {
    let name = checked_name(&name)?;
    state.registry.delete(&name, &state.trust.who()).await?;
    Ok(reply::json(&json!({ "deleted": name })))
}

/// `GET /models/NAME/config`: the model's settings (its `NAME.toml`), as JSON.
#[utoipa::path(get, path = "/models/{name}/config", tag = "models", description = "The model's settings (its sidecar) as JSON.", params(("name" = String, Path, description = "The model's name: its file name without `.onnx`")), responses((status = 200, description = "The settings", content_type = "application/json"), (status = 404, description = "No such model", body = ErrorBody)))]
pub async fn settings(name: String, state: State) -> Result<Response, HttpError> {
    let name = checked_name(&name)?;
    Ok(reply::json(&state.registry.settings(&name).await?))
}

/// `PUT /models/NAME/config`: new settings, checked one by one; the model reloads.
#[utoipa::path(put, path = "/models/{name}/config", tag = "models", description = "Replaces the model's settings, checked setting by setting; the model reloads with them.", params(("name" = String, Path, description = "The model's name: its file name without `.onnx`")), request_body(description = "The settings, as `GET` gives them", content_type = "application/json"), responses((status = 200, description = "The model's status", content_type = "application/json"), (status = 400, description = "`bad_settings`, with an `errors` object per setting", body = ErrorBody), (status = 403, description = "Refused by the trust rule (see docs/security.md)", body = ErrorBody)))]
pub async fn set_settings(name: String, body: bytes::Bytes, state: State) -> Result<Response, HttpError> {
    let json: Value = reply::parse_body(&body)?;
    let name = checked_name(&name)?;
    let status = state.registry.set_settings(&name, &json, &state.trust.who()).await?;
    Ok(reply::json(&status))
}

/// A number from the query, if given; one that does not parse is an error, not a default.
fn number<T: std::str::FromStr>(
    query: &std::collections::HashMap<String, String>,
    key: &str,
) -> Result<Option<T>, HttpError> {
    query
        .get(key)
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| HttpError::BadRequest(format!("`{key}` must be a number, not `{v}`")))
        })
        .transpose()
}

/// `POST /models/NAME/try`: an image as the body (thresholds in the query: `?conf=0.1`, a
/// prompt as `?points=x,y,1;x,y,0&box=x1,y1,x2,y2`), or JSON with `url`, thresholds, a label
/// config, `points` and `box`.
#[utoipa::path(post, path = "/models/{name}/try", tag = "models", description = "Runs the model on an image: instances in pixels, and Label Studio results for a `label_config`; with a prompt, the one object it points at.", params(("name" = String, Path, description = "The model's name: its file name without `.onnx`")), params(("conf" = Option<f32>, Query, description = "Score threshold"), ("iou" = Option<f32>, Query, description = "NMS IoU"), ("max_det" = Option<u32>, Query, description = "Most instances"), ("points" = Option<String>, Query, description = "`x,y,1;x,y,0`: positive and negative clicks"), ("box" = Option<String>, Query, description = "`x1,y1,x2,y2`")), request_body(description = "An image, or JSON with `url`, thresholds, `label_config`, `points` and `box`", content_type = "image/*"), responses((status = 200, description = "What the model found", content_type = "application/json"), (status = 400, description = "The request is malformed or refers to what does not exist", body = ErrorBody), (status = 401, description = "Basic auth is on and the credentials are wrong", body = ErrorBody), (status = 403, description = "Refused by the trust rule (see docs/security.md)", body = ErrorBody)))]
pub async fn try_model(
    name: String,
    query: std::collections::HashMap<String, String>,
    content_type: Option<String>,
    body: bytes::Bytes,
    state: State,
) -> Result<Response, HttpError> {
    let name = checked_name(&name)?;
    let is_json = content_type.is_some_and(|t| t.trim().starts_with("application/json"));
    let request = if is_json {
        reply::parse_body::<ls_core::pipeline::TryRequest>(&body)?
    } else {
        let conf = number(&query, "conf")?;
        let iou = number(&query, "iou")?;
        let max_det = number(&query, "max_det")?;
        let request = ls_core::pipeline::TryRequest::image(body, conf, iou, max_det).with_prompt_text(
            query.get("points").map(String::as_str),
            query.get("box").map(String::as_str),
        );
        request.map_err(|e| HttpError::BadRequest(e.to_string()))?
    };
    Ok(reply::json(&state.predictor.try_model(&name, request).await?))
}
