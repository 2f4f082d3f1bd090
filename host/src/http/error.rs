//! The one error of the HTTP layer, and the one place it becomes a status. Every answer that
//! is not a success is `{"status", "detail", "error_type"}`: Label Studio shows `detail`,
//! scripts branch on `error_type`. A settings change adds `errors`, each problem under its
//! setting. Handlers return `Result<Response, HttpError>` and use `?`.

use std::collections::BTreeMap;

use serde_json::json;
use warp::{
    Reply,
    http::{HeaderValue, StatusCode, header},
    reply::Response,
};

use super::trust::Refusal;
use crate::{
    jobs::{CancelError, HistoryError, SubmitError},
    models::{ManageError, RouteError},
    pipeline::ApiError,
};

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Manage(#[from] ManageError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
    #[error(transparent)]
    Cancel(#[from] CancelError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A body or query that is not what the endpoint takes.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error(
        "no such endpoint; this backend serves /health, /setup, /predict, /webhook, /versions, /metrics, /models \
         (and /models/NAME, /models/NAME/file, /models/NAME/config, /models/NAME/try, /models/NAME/rollback), /jobs \
         (and /jobs/ID), /train and /plugins"
    )]
    NoEndpoint,
    #[error("wrong HTTP method for this endpoint")]
    MethodNotAllowed,
    #[error("the request body is larger than the limit (ML_MAX_BODY_MB)")]
    BodyTooLarge,
    /// Basic auth is on and the request did not pass it; `what` says which request.
    #[error("{what} needs HTTP Basic auth: {HOW_TO_AUTH}")]
    Unauthorized { what: &'static str },
    #[error("too many failed Basic auth attempts from this address this minute; try again later")]
    TooManyFailures { retry_after_secs: u64 },
}

const HOW_TO_AUTH: &str = "in Label Studio, connect the model with Authentication \"Basic Authentication\" and the \
                           user and password set in BASIC_AUTH_USER / BASIC_AUTH_PASS";

impl HttpError {
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::Api(e) => match e {
                ApiError::Route(RouteError::BadModelPath { .. } | RouteError::Mismatch { .. })
                | ApiError::Config(_)
                | ApiError::NoConfig => StatusCode::BAD_REQUEST,
                ApiError::Route(RouteError::Loading { .. }) | ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
                ApiError::Route(_) => StatusCode::NOT_FOUND,
                ApiError::TooManyTasks { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                ApiError::Try(_) => StatusCode::UNPROCESSABLE_ENTITY,
            },
            HttpError::Manage(e) | HttpError::History(HistoryError::Manage(e)) => match e {
                ManageError::BadName { .. } | ManageError::Settings(_) => StatusCode::BAD_REQUEST,
                ManageError::NotFound(_) => StatusCode::NOT_FOUND,
                ManageError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
                ManageError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                ManageError::Io(_) | ManageError::Worker(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            HttpError::History(HistoryError::Nothing(_)) | HttpError::Cancel(CancelError::NotFound(_)) => {
                StatusCode::NOT_FOUND
            }
            HttpError::History(HistoryError::Io(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            HttpError::Submit(SubmitError::QueueFull { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::Submit(SubmitError::AlreadyTraining { .. }) => StatusCode::CONFLICT,
            HttpError::Refused(_) => StatusCode::FORBIDDEN,
            HttpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HttpError::NotFound(_) | HttpError::NoEndpoint => StatusCode::NOT_FOUND,
            HttpError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            HttpError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            HttpError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            HttpError::TooManyFailures { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// What went wrong, as a word a script can branch on.
    pub fn error_type(&self) -> &'static str {
        match self {
            HttpError::Api(e) => match e {
                ApiError::Route(RouteError::Loading { .. }) => "model_loading",
                ApiError::Route(RouteError::BadModelPath { .. }) => "bad_model_path",
                ApiError::Route(RouteError::Mismatch { .. }) => "model_mismatch",
                ApiError::Route(_) => "no_model",
                ApiError::Config(_) => "bad_label_config",
                ApiError::NoConfig => "no_label_config",
                ApiError::Busy { .. } => "busy",
                ApiError::TooManyTasks { .. } => "too_many_tasks",
                ApiError::Try(_) => "try_failed",
            },
            HttpError::Manage(e) | HttpError::History(HistoryError::Manage(e)) => match e {
                ManageError::BadName { .. } => "bad_model_name",
                ManageError::NotFound(_) => "no_model",
                ManageError::Refused(_) => "model_refused",
                ManageError::TooLarge { .. } => "model_too_large",
                ManageError::Settings(_) => "bad_settings",
                ManageError::Io(_) | ManageError::Worker(_) => "internal",
            },
            HttpError::History(HistoryError::Nothing(_)) => "no_earlier_version",
            HttpError::History(HistoryError::Io(_)) => "internal",
            HttpError::Cancel(CancelError::NotFound(_)) => "no_job",
            HttpError::Submit(SubmitError::QueueFull { .. }) => "job_queue_full",
            HttpError::Submit(SubmitError::AlreadyTraining { .. }) => "already_training",
            HttpError::Refused(_) => "forbidden",
            HttpError::BadRequest(_) => "bad_request",
            HttpError::NotFound(_) => "not_found",
            HttpError::NoEndpoint => "no_endpoint",
            HttpError::MethodNotAllowed => "method_not_allowed",
            HttpError::BodyTooLarge => "body_too_large",
            HttpError::Unauthorized { .. } => "unauthorized",
            HttpError::TooManyFailures { .. } => "too_many_auth_failures",
        }
    }

    fn fields(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            HttpError::Manage(e) => e.fields(),
            _ => None,
        }
    }
}

impl Reply for HttpError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = json!({
            "status": status.as_u16(),
            "detail": self.to_string(),
            "error_type": self.error_type(),
        });
        if let Some(fields) = self.fields() {
            body["errors"] = json!(fields);
        }
        let mut response = warp::reply::with_status(warp::reply::json(&body), status).into_response();
        let headers = response.headers_mut();
        match &self {
            HttpError::Api(ApiError::Busy { .. }) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            HttpError::Unauthorized { .. } => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"ls-ml-backend\""),
                );
            }
            HttpError::TooManyFailures { retry_after_secs } => {
                if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    headers.insert(header::RETRY_AFTER, value);
                }
            }
            _ => {}
        }
        response
    }
}

/// A handler's outcome as the answer.
pub fn respond(outcome: Result<Response, HttpError>) -> Response {
    outcome.unwrap_or_else(Reply::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_answers_status_detail_and_type() {
        let errors = [
            HttpError::Api(ApiError::NoConfig),
            HttpError::Api(ApiError::Busy {
                tasks: 1,
                queued: 2,
                limit: 2,
            }),
            HttpError::Manage(ManageError::Settings(BTreeMap::from([(
                "conf".to_string(),
                "`conf` must be between 0 and 1".to_string(),
            )]))),
            HttpError::Submit(SubmitError::QueueFull { limit: 3 }),
            HttpError::Refused(Refusal::CrossSite),
            HttpError::Unauthorized { what: "this endpoint" },
            HttpError::NoEndpoint,
        ];
        let expected = [
            (400, "no_label_config"),
            (503, "busy"),
            (400, "bad_settings"),
            (503, "job_queue_full"),
            (403, "forbidden"),
            (401, "unauthorized"),
            (404, "no_endpoint"),
        ];
        for (error, (status, kind)) in errors.into_iter().zip(expected) {
            let detail = error.to_string();
            let response = error.into_response();
            assert_eq!(response.status().as_u16(), status, "{kind}");
            let body = futures::executor::block_on(async {
                use http_body_util::BodyExt;
                response.into_body().collect().await.map(|b| b.to_bytes())
            })
            .expect("body");
            let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(body["status"], status);
            assert_eq!(body["error_type"], kind);
            assert_eq!(body["detail"], detail);
            if kind == "bad_settings" {
                assert!(body["errors"]["conf"].is_string(), "{body}");
            }
        }
    }
}
