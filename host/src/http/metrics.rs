use warp::{Reply, reply::Response};

use super::State;
use ls_core::metrics::CONTENT_TYPE;

pub fn handle(state: State) -> Response {
    let states = state.registry.statuses().into_iter().map(|m| m.state);
    let jobs = state
        .jobs
        .counts()
        .into_iter()
        .map(|((kind, job_state), n)| ((kind.as_str(), job_state.as_str()), n));
    warp::reply::with_header(state.metrics.render(states, jobs), "content-type", CONTENT_TYPE).into_response()
}
