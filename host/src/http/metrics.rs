use std::collections::BTreeMap;

use warp::{Reply, reply::Response};

use super::State;
use crate::models::LoadState;

pub fn handle(state: State) -> Response {
    let mut by_state: BTreeMap<LoadState, usize> = BTreeMap::new();
    for model in state.registry.statuses() {
        *by_state.entry(model.state).or_default() += 1;
    }
    warp::reply::with_header(
        state.metrics.render(&by_state),
        "content-type",
        "text/plain; version=0.0.4",
    )
    .into_response()
}
