//! JSON replies. Label Studio treats any non-JSON body as a failure, so every answer, errors
//! included (see `error`), is JSON.

use std::convert::Infallible;

use serde::Serialize;

use super::error::HttpError;
use warp::{
    Rejection, Reply,
    reject::{MethodNotAllowed, PayloadTooLarge},
    reply::Response,
};

pub fn json<T: Serialize>(value: &T) -> Response {
    warp::reply::json(value).into_response()
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

/// Warp's own rejections (and the guards') as our errors.
pub async fn rejection(rejection: Rejection) -> Result<Response, Infallible> {
    let error = if rejection.is_not_found() {
        HttpError::NoEndpoint
    } else if rejection.find::<super::basic_auth::Unauthorized>().is_some() {
        HttpError::Unauthorized { what: "this backend" }
    } else if let Some(super::basic_auth::TooManyFailures { retry_after_secs }) = rejection.find() {
        HttpError::TooManyFailures {
            retry_after_secs: *retry_after_secs,
        }
    } else if let Some(super::trust::Forbidden(why)) = rejection.find() {
        HttpError::Refused(why.clone())
    } else if rejection.find::<PayloadTooLarge>().is_some() {
        HttpError::BodyTooLarge
    } else if rejection.find::<MethodNotAllowed>().is_some() {
        HttpError::MethodNotAllowed
    } else {
        HttpError::BadRequest(format!("bad request: {rejection:?}"))
    };
    Ok(error.into_response())
}

/// Parses a JSON body, or answers 400 with serde's explanation.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, HttpError> {
    serde_json::from_slice(body)
        .map_err(|e| HttpError::BadRequest(format!("the body is not the JSON this endpoint expects: {e}")))
}
