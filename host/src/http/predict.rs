use bytes::Bytes;
use log::{info, warn};
use serde_json::json;

use super::openapi::ErrorBody;
use super::{State, error::HttpError, reply};
use labelstudio_protocol::protocol::PredictRequest;

#[utoipa::path(post, path = "/predict", tag = "label-studio", description = "Predictions for Label Studio's tasks: exactly one entry per task, in task order; interactive prompts in `params.context`.", request_body(description = "Label Studio's predict request: `tasks`, `label_config`, `project`, `params`", content_type = "application/json"), responses((status = 200, description = "`{\"results\": [...]}`", content_type = "application/json"), (status = 400, description = "The request is malformed or refers to what does not exist", body = ErrorBody), (status = 401, description = "Basic auth is on and the credentials are wrong", body = ErrorBody), (status = 503, description = "Busy (with `Retry-After`) or the model is loading", body = ErrorBody)))]
pub async fn handle(body: Bytes, state: State) -> Result<warp::reply::Response, HttpError> {
    let started = std::time::Instant::now();
    let request: PredictRequest = reply::parse_body(&body)?;
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
            Ok(reply::json(&json!({ "results": outcome.results })))
        }
        Err(e) => {
            warn!("predict failed for all {tasks} task(s): {e}");
            Err(e.into())
        }
    }
}
