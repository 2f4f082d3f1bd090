//! JSON replies and errors. Label Studio treats any non-JSON body as a failure, so every
//! answer, errors included, is JSON.

use std::convert::Infallible;

use serde::Serialize;

use crate::{models::RouteError, pipeline::ApiError};
use warp::{
    Rejection, Reply,
    http::StatusCode,
    reject::{MethodNotAllowed, PayloadTooLarge},
    reply::Response,
};

pub fn json<T: Serialize>(value: &T) -> Response {
    warp::reply::json(value).into_response()
}

pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    warp::reply::with_status(
        warp::reply::json(&serde_json::json!({ "status": status.as_u16(), "detail": message })),
        status,
    )
    .into_response()
}

/// The one place an API error gets its HTTP status, so that `/predict` and `/setup` answer
/// the same status for the same error.
pub fn status_of(e: &ApiError) -> StatusCode {
    match e {
        ApiError::Route(RouteError::BadModelPath { .. } | RouteError::Mismatch { .. })
        | ApiError::Config(_)
        | ApiError::NoConfig => StatusCode::BAD_REQUEST,
        ApiError::Route(RouteError::Loading { .. }) | ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
        ApiError::Route(_) => StatusCode::NOT_FOUND,
        ApiError::TooManyTasks { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        ApiError::Try(_) => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// An API error as its JSON reply; a busy backend also says when to retry.
pub fn api_error(e: &ApiError) -> Response {
    let mut response = error(status_of(e), e.to_string());
    if matches!(e, ApiError::Busy { .. }) {
        response.headers_mut().insert(
            warp::http::header::RETRY_AFTER,
            warp::http::HeaderValue::from_static("5"),
        );
    }
    response
}

/// Sent with every answer: no content sniffing, no framing, no referrer to other sites.
pub fn security_headers() -> warp::http::HeaderMap {
    use warp::http::{HeaderValue, header};
    warp::http::HeaderMap::from_iter([
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ])
}

pub async fn rejection(rejection: Rejection) -> Result<Response, Infallible> {
    let reply = if rejection.is_not_found() {
        error(
            StatusCode::NOT_FOUND,
            "no such endpoint; this backend serves /health, /setup, /predict, /webhook, /versions, /metrics, /models \
             (and /models/NAME, /models/NAME/file, /models/NAME/config, /models/NAME/try, /models/NAME/rollback), /jobs \
             (and /jobs/ID), /train and /plugins",
        )
    } else if rejection.find::<super::basic_auth::Unauthorized>().is_some() {
        let mut reply = error(
            StatusCode::UNAUTHORIZED,
            "this backend requires HTTP Basic auth: in Label Studio, connect the model with Authentication \
             \"Basic Authentication\" and the user and password set in BASIC_AUTH_USER / BASIC_AUTH_PASS",
        );
        reply.headers_mut().insert(
            warp::http::header::WWW_AUTHENTICATE,
            warp::http::HeaderValue::from_static("Basic realm=\"ls-ml-backend\""),
        );
        reply
    } else if let Some(super::basic_auth::TooManyFailures { retry_after_secs }) = rejection.find() {
        let mut reply = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed Basic auth attempts from this address this minute; try again later",
        );
        if let Ok(value) = warp::http::HeaderValue::from_str(&retry_after_secs.to_string()) {
            reply.headers_mut().insert(warp::http::header::RETRY_AFTER, value);
        }
        reply
    } else if let Some(super::trust::Forbidden(why)) = rejection.find() {
        error(StatusCode::FORBIDDEN, why.to_string())
    } else if rejection.find::<PayloadTooLarge>().is_some() {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is larger than the limit (ML_MAX_BODY_MB)",
        )
    } else if rejection.find::<MethodNotAllowed>().is_some() {
        error(StatusCode::METHOD_NOT_ALLOWED, "wrong HTTP method for this endpoint")
    } else {
        error(StatusCode::BAD_REQUEST, format!("bad request: {rejection:?}"))
    };
    Ok(reply)
}

/// Parses a JSON body, or answers 400 with serde's explanation.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("the body is not the JSON this endpoint expects: {e}"),
        ))
    })
}
