//! The jobs API (`/jobs`), Label Studio's training triggers (`/train`, and `START_TRAINING`
//! on `/webhook`), and model rollback. Thin routes over `jobs`.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use warp::{http::StatusCode, reply::Response};

use super::{State, reply};
use crate::{
    jobs::{self, CancelError, HistoryError, JobKind, JobOptions, SubmitError},
    models::checked_name,
};

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

fn submit_error(e: &SubmitError) -> Response {
    let status = match e {
        SubmitError::QueueFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
        SubmitError::AlreadyTraining { .. } => StatusCode::CONFLICT,
    };
    reply::error(status, e.to_string())
}

fn created(job: &jobs::Job) -> Response {
    warp::reply::with_status(warp::reply::json(&job), StatusCode::CREATED).into_response()
}

use warp::Reply as _;

/// `POST /jobs`: `{"kind": "train" | "predict", "project": 3, ...options}`.
pub fn submit(body: Bytes, state: State) -> Response {
    let request: JobRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return reply::error(
                StatusCode::BAD_REQUEST,
                format!(
                    "a job is {{\"kind\": \"train\" or \"predict\", \"project\": <Label Studio project id>, ...options}}: {e}"
                ),
            );
        }
    };
    let Some(project) = project_of(&request.project) else {
        return reply::error(
            StatusCode::BAD_REQUEST,
            format!("`project` must be a Label Studio project id, not {}", request.project),
        );
    };
    let options: JobOptions = match serde_json::from_value(request.options) {
        Ok(o) => o,
        Err(e) => {
            return reply::error(
                StatusCode::BAD_REQUEST,
                format!("{e}; a job's options are epochs, imgsz, batch, patience, force and from_scratch"),
            );
        }
    };
    let problems = crate::models::train_problems(options.epochs, options.imgsz, options.batch, options.patience);
    if !problems.is_empty() {
        let problems: Vec<String> = problems.iter().map(|p| format!("`{p}")).collect();
        return reply::error(StatusCode::BAD_REQUEST, problems.join("; "));
    }
    match state
        .jobs
        .submit(request.kind, project, options, &format!("api ({})", state.trust.who()))
    {
        Ok(job) => created(&job),
        Err(e) => submit_error(&e),
    }
}

/// `GET /jobs`: every job, newest first, without their logs.
pub fn list(state: State) -> Response {
    let jobs: Vec<Value> = state.jobs.list().iter().map(jobs::Job::summary).collect();
    reply::json(&json!({ "jobs": jobs }))
}

fn id_of(raw: &str) -> Result<u64, Box<Response>> {
    raw.parse().map_err(|_| {
        Box::new(reply::error(
            StatusCode::NOT_FOUND,
            format!("there is no job `{raw}`: job ids are numbers"),
        ))
    })
}

/// `GET /jobs/ID`: the job with its log tail and per-epoch metrics.
pub fn show(id: String, state: State) -> Response {
    let id = match id_of(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match state.jobs.get(id) {
        Some(job) => reply::json(&job),
        None => reply::error(StatusCode::NOT_FOUND, format!("there is no job {id}")),
    }
}

/// `DELETE /jobs/ID`: cancels it.
pub fn cancel(id: String, state: State) -> Response {
    let id = match id_of(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match state.jobs.cancel(id) {
        Ok(job) => reply::json(&job),
        Err(e @ CancelError::NotFound(_)) => reply::error(StatusCode::NOT_FOUND, e.to_string()),
    }
}

/// A training request from Label Studio (Start Training, or the legacy `/train`): answered at
/// once with the job, under the `job` key Label Studio records. Pressing it again while a
/// training of the project is queued or running answers that job.
pub fn train_from_label_studio(project: &Value, origin: &str, state: &State) -> Response {
    let Some(project) = project_of(project.get("id").unwrap_or(project)) else {
        return reply::error(StatusCode::BAD_REQUEST, "the training request names no project");
    };
    if let Some(job) = state.jobs.training_of(project) {
        return reply::json(
            &json!({ "job": job.id, "status": job.state, "detail": "this project is already training" }),
        );
    }
    match state
        .jobs
        .submit(JobKind::Train, project, JobOptions::default(), origin)
    {
        Ok(job) => warp::reply::with_status(
            warp::reply::json(&json!({ "job": job.id, "status": job.state })),
            StatusCode::CREATED,
        )
        .into_response(),
        Err(e) => submit_error(&e),
    }
}

/// `POST /train` (Label Studio before 1.12): `{"project": ...}` or Start Training's payload.
pub fn legacy_train(body: Bytes, state: State) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let project = body.get("project").cloned().unwrap_or(Value::Null);
    train_from_label_studio(&project, "label-studio (/train)", &state)
}

/// `POST /models/NAME/rollback`: the previous version of a trained model back in place.
pub async fn rollback(name: String, state: State) -> Response {
    let name = match checked_name(&name) {
        Ok(name) => name,
        Err(e) => return reply::error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match jobs::rollback(&state.registry, &name, &state.trust.who()).await {
        Ok(status) => reply::json(&status),
        Err(e @ HistoryError::Nothing(_)) => reply::error(StatusCode::NOT_FOUND, e.to_string()),
        Err(HistoryError::Manage(e)) => reply::error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        Err(e) => reply::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
