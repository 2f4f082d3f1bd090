//! The jobs API (`/jobs`), Label Studio's training triggers (`/train`, and `START_TRAINING`
//! on `/webhook`), and model rollback. Thin routes over `jobs`.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use warp::{http::StatusCode, reply::Response};

use super::openapi::ErrorBody;
use super::{State, error::HttpError, reply};
use ls_core::models::checked_name;
use ls_training::{self as jobs, JobKind, JobOptions};

#[derive(Debug, Deserialize)]
struct JobRequest {
    kind: JobKind,
    project: Value,
    #[serde(flatten)]
    options: Value,
}

/// A Label Studio project id, as a number or as Label Studio's `"3.1712345"` text.
fn project_of(value: &Value) -> Option<u64> {
    labelstudio_protocol::protocol::project_id(Some(value)).and_then(|id| id.parse().ok())
}

fn created(job: &jobs::Job) -> Response {
    warp::reply::with_status(warp::reply::json(&job), StatusCode::CREATED).into_response()
}

use warp::Reply as _;

/// `POST /jobs`: `{"kind": "train" | "predict", "project": 3, ...options}`.
#[utoipa::path(post, path = "/jobs", tag = "jobs", description = "Starts a training or a project prediction job.", request_body(description = "`{\"kind\": \"train\"|\"predict\", \"project\": ID, \"options\": {...}}`", content_type = "application/json"), responses((status = 201, description = "The job", content_type = "application/json"), (status = 400, description = "The request is malformed or refers to what does not exist", body = ErrorBody), (status = 401, description = "Basic auth is on and the credentials are wrong", body = ErrorBody), (status = 403, description = "Refused by the trust rule (see docs/security.md)", body = ErrorBody), (status = 409, description = "The project already has a training job", body = ErrorBody), (status = 429, description = "The job queue is full", body = ErrorBody)))]
pub fn submit(body: Bytes, state: State) -> Result<Response, HttpError> {
    let request: JobRequest = serde_json::from_slice(&body).map_err(|e| {
        HttpError::BadRequest(format!(
            "a job is {{\"kind\": \"train\" or \"predict\", \"project\": <Label Studio project id>, ...options}}: {e}"
        ))
    })?;
    let project = project_of(&request.project).ok_or_else(|| {
        HttpError::BadRequest(format!(
            "`project` must be a Label Studio project id, not {}",
            request.project
        ))
    })?;
    let options: JobOptions = serde_json::from_value(request.options).map_err(|e| {
        HttpError::BadRequest(format!(
            "{e}; a job's options are epochs, imgsz, batch, patience, force and from_scratch"
        ))
    })?;
    let problems = ls_core::models::train_problems(options.epochs, options.imgsz, options.batch, options.patience);
    if !problems.is_empty() {
        let problems: Vec<String> = problems.iter().map(|p| format!("`{p}")).collect();
        return Err(HttpError::BadRequest(problems.join("; ")));
    }
    let job = state
        .jobs
        .submit(request.kind, project, options, &format!("api ({})", state.trust.who()))?;
    Ok(created(&job))
}

/// `GET /jobs`: every job, newest first, without their logs.
#[utoipa::path(get, path = "/jobs", tag = "jobs", description = "Every job kept, without their logs.", responses((status = 200, description = "`{\"jobs\": [...]}`", content_type = "application/json")))]
pub fn list(state: State) -> Response {
    let jobs: Vec<Value> = state.jobs.list().iter().map(jobs::Job::summary).collect();
    reply::json(&json!({ "jobs": jobs }))
}

fn id_of(raw: &str) -> Result<u64, HttpError> {
    raw.parse()
        .map_err(|_| HttpError::NotFound(format!("there is no job `{raw}`: job ids are numbers")))
}

/// `GET /jobs/ID`: the job with its log tail and per-epoch metrics.
#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs", description = "One job, with its log and epochs.", params(("id" = u64, Path, description = "The job's id")), responses((status = 200, description = "The job", content_type = "application/json"), (status = 404, description = "No such job", body = ErrorBody)))]
pub fn show(id: String, state: State) -> Result<Response, HttpError> {
    let id = id_of(&id)?;
    let job = state.jobs.get(id).ok_or(jobs::CancelError::NotFound(id))?;
    Ok(reply::json(&job))
}

/// `DELETE /jobs/ID`: cancels it.
#[utoipa::path(delete, path = "/jobs/{id}", tag = "jobs", description = "Cancels a job (a running trainer is stopped).", params(("id" = u64, Path, description = "The job's id")), responses((status = 200, description = "The job", content_type = "application/json"), (status = 404, description = "No such job", body = ErrorBody), (status = 403, description = "Refused by the trust rule (see docs/security.md)", body = ErrorBody)))]
pub fn cancel(id: String, state: State) -> Result<Response, HttpError> {
    let id = id_of(&id)?;
    Ok(reply::json(&state.jobs.cancel(id)?))
}

/// A training request from Label Studio (Start Training, or the legacy `/train`): answered at
/// once with the job, under the `job` key Label Studio records. Pressing it again while a
/// training of the project is queued or running answers that job.
pub fn train_from_label_studio(project: &Value, origin: &str, state: &State) -> Result<Response, HttpError> {
    let project = project_of(project.get("id").unwrap_or(project))
        .ok_or_else(|| HttpError::BadRequest("the training request names no project".into()))?;
    if let Some(job) = state.jobs.training_of(project) {
        return Ok(reply::json(
            &json!({ "job": job.id, "status": job.state, "detail": "this project is already training" }),
        ));
    }
    let job = state
        .jobs
        .submit(JobKind::Train, project, JobOptions::default(), origin)?;
    Ok(warp::reply::with_status(
        warp::reply::json(&json!({ "job": job.id, "status": job.state })),
        StatusCode::CREATED,
    )
    .into_response())
}

/// `POST /train` (Label Studio before 1.12): `{"project": ...}` or Start Training's payload.
#[utoipa::path(post, path = "/train", tag = "jobs", description = "Start Training of Label Studio before 1.12.", request_body(description = "`{\"project\": ...}`", content_type = "application/json"), responses((status = 201, description = "The job", content_type = "application/json"), (status = 400, description = "The request is malformed or refers to what does not exist", body = ErrorBody), (status = 401, description = "Basic auth is on and the credentials are wrong", body = ErrorBody), (status = 403, description = "Refused by the trust rule (see docs/security.md)", body = ErrorBody)))]
pub fn legacy_train(body: Bytes, state: State) -> Result<Response, HttpError> {
    let body: Value = reply::parse_body(&body)?;
    let project = body.get("project").cloned().unwrap_or(Value::Null);
    train_from_label_studio(&project, "label-studio (/train)", &state)
}

/// `POST /models/NAME/rollback`: the previous version of a trained model back in place.
#[utoipa::path(post, path = "/models/{name}/rollback", tag = "models", description = "Puts the previous version of a trained model back.", params(("name" = String, Path, description = "The model's name: its file name without `.onnx`")), responses((status = 200, description = "The model's status", content_type = "application/json"), (status = 404, description = "No earlier version", body = ErrorBody), (status = 403, description = "Refused by the trust rule (see docs/security.md)", body = ErrorBody)))]
pub async fn rollback(name: String, state: State) -> Result<Response, HttpError> {
    let name = checked_name(&name)?;
    Ok(reply::json(
        &jobs::rollback(&state.registry, &name, &state.trust.who()).await?,
    ))
}
