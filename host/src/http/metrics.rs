use warp::{Reply, reply::Response};

use super::State;
use crate::metrics::CONTENT_TYPE;

pub fn handle(state: State) -> Response {
    let states = state.registry.statuses().into_iter().map(|m| m.state);
    warp::reply::with_header(state.metrics.render(states), "content-type", CONTENT_TYPE).into_response()
}
