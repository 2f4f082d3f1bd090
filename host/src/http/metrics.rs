use warp::{Reply, reply::Response};

use super::State;
use ls_core::metrics::CONTENT_TYPE;

#[utoipa::path(get, path = "/metrics", tag = "server", description = "OpenMetrics text for Prometheus: requests, task failures, stage latencies, models by state, jobs.", responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text")))]
pub fn handle(state: State) -> Response {
    let states = state.registry.statuses().into_iter().map(|m| m.state);
    let jobs = state
        .jobs
        .counts()
        .into_iter()
        .map(|((kind, job_state), n)| ((kind.as_str(), job_state.as_str()), n));
    warp::reply::with_header(state.metrics.render(states, jobs), "content-type", CONTENT_TYPE).into_response()
}
