use bytes::Bytes;
use log::{info, warn};
use serde_json::json;
use warp::http::StatusCode;

use super::{State, reply};
use crate::{labelstudio::protocol::PredictRequest, predictor::PredictError, registry::RouteError};

pub async fn handle(body: Bytes, state: State) -> warp::reply::Response {
    let started = std::time::Instant::now();
    let request: PredictRequest = match reply::parse_body(&body) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    drop(body);
    let tasks = request.tasks.len();
    match state.predictor.predict(request).await {
        Ok(outcome) => {
            let t = outcome.times;
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
            info!(
                "predict model={} tasks={tasks} failed={} total={:.1}ms fetch={:.1}ms decode={:.1}ms prepare={:.1}ms \
                 infer={:.1}ms finish={:.1}ms",
                outcome.model,
                outcome.failed,
                ms(started.elapsed()),
                ms(t.fetch),
                ms(t.decode),
                ms(t.prepare),
                ms(t.infer),
                ms(t.finish)
            );
            reply::json(&json!({ "results": outcome.results }))
        }
        Err(e) => {
            warn!("predict failed for all {tasks} task(s): {e}");
            let mut response = reply::error(status_of(&e), e.to_string());
            if matches!(e, PredictError::Busy { .. }) {
                response.headers_mut().insert(
                    warp::http::header::RETRY_AFTER,
                    warp::http::HeaderValue::from_static("5"),
                );
            }
            response
        }
    }
}

fn status_of(e: &PredictError) -> StatusCode {
    match e {
        PredictError::Route(e) if e.is_bad_request() => StatusCode::BAD_REQUEST,
        PredictError::Route(RouteError::Loading { .. }) => StatusCode::SERVICE_UNAVAILABLE,
        PredictError::Route(_) => StatusCode::NOT_FOUND,
        PredictError::Config(_) | PredictError::NoConfig => StatusCode::BAD_REQUEST,
        PredictError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
        PredictError::TooManyTasks { .. } => StatusCode::PAYLOAD_TOO_LARGE,
    }
}
