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
use ls_core::{
    models::{ManageError, RouteError},
    pipeline::ApiError,
};
use ls_training::{CancelError, HistoryError, SubmitError};

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
    /// The status and the `error_type` word, side by side so that neither can drift from the
    /// other.
    fn kind(&self) -> (StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            HttpError::Api(e) => match e {
                ApiError::Route(RouteError::Loading { .. }) => (S::SERVICE_UNAVAILABLE, "model_loading"),
                ApiError::Route(RouteError::BadModelPath { .. }) => (S::BAD_REQUEST, "bad_model_path"),
                ApiError::Route(RouteError::Mismatch { .. }) => (S::BAD_REQUEST, "model_mismatch"),
                ApiError::Route(RouteError::BadTag(_)) => (S::BAD_REQUEST, "bad_label_config"),
                ApiError::Route(_) => (S::NOT_FOUND, "no_model"),
                ApiError::Config(_) => (S::BAD_REQUEST, "bad_label_config"),
                ApiError::NoConfig => (S::BAD_REQUEST, "no_label_config"),
                ApiError::Busy { .. } => (S::SERVICE_UNAVAILABLE, "busy"),
                ApiError::TooManyTasks { .. } => (S::PAYLOAD_TOO_LARGE, "too_many_tasks"),
                ApiError::Try(_) => (S::UNPROCESSABLE_ENTITY, "try_failed"),
            },
            HttpError::Manage(e) | HttpError::History(HistoryError::Manage(e)) => match e {
                ManageError::BadName { .. } => (S::BAD_REQUEST, "bad_model_name"),
                ManageError::NotFound(_) => (S::NOT_FOUND, "no_model"),
                ManageError::Refused(_) => (S::UNPROCESSABLE_ENTITY, "model_refused"),
                ManageError::TooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "model_too_large"),
                ManageError::Settings(_) => (S::BAD_REQUEST, "bad_settings"),
                ManageError::Io(_) | ManageError::Worker(_) => (S::INTERNAL_SERVER_ERROR, "internal"),
            },
            HttpError::History(HistoryError::Nothing(_)) => (S::NOT_FOUND, "no_earlier_version"),
            HttpError::History(HistoryError::Store(_) | HistoryError::Worker(_)) => {
                (S::INTERNAL_SERVER_ERROR, "internal")
            }
            HttpError::Cancel(CancelError::NotFound(_)) => (S::NOT_FOUND, "no_job"),
            HttpError::Submit(SubmitError::QueueFull { .. }) => (S::SERVICE_UNAVAILABLE, "job_queue_full"),
            HttpError::Submit(SubmitError::AlreadyTraining { .. }) => (S::CONFLICT, "already_training"),
            HttpError::Refused(_) => (S::FORBIDDEN, "forbidden"),
            HttpError::BadRequest(_) => (S::BAD_REQUEST, "bad_request"),
            HttpError::NotFound(_) => (S::NOT_FOUND, "not_found"),
            HttpError::NoEndpoint => (S::NOT_FOUND, "no_endpoint"),
            HttpError::MethodNotAllowed => (S::METHOD_NOT_ALLOWED, "method_not_allowed"),
            HttpError::BodyTooLarge => (S::PAYLOAD_TOO_LARGE, "body_too_large"),
            HttpError::Unauthorized { .. } => (S::UNAUTHORIZED, "unauthorized"),
            HttpError::TooManyFailures { .. } => (S::TOO_MANY_REQUESTS, "too_many_auth_failures"),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.kind().0
    }

    /// What went wrong, as a word a script can branch on.
    pub fn error_type(&self) -> &'static str {
        self.kind().1
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
