//! The HTTP layer: thin warp routes over the predictor and the registry.

pub mod basic_auth;
mod health;
mod info;
pub mod listener;
mod metrics;
mod predict;
mod reply;
mod setup;
mod webhook;

use std::{convert::Infallible, sync::Arc, time::Instant};

use warp::{Filter, Reply};

use crate::{metrics::Metrics, models::Registry, pipeline::Predictor, runtime::Runtime};

pub struct AppState {
    pub predictor: Predictor,
    pub basic_auth: basic_auth::Expected,
    /// Largest request body (ML_MAX_BODY_MB). Label Studio sends all selected tasks in one
    /// /predict, each with its annotations, so the default is generous.
    pub max_body_bytes: u64,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub runtime: Arc<Runtime>,
    pub started: Instant,
}

pub type State = Arc<AppState>;

pub fn routes(state: State) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let with_state = {
        let state = Arc::clone(&state);
        warp::any().map(move || Arc::clone(&state))
    };
    let body = warp::body::content_length_limit(state.max_body_bytes).and(warp::body::bytes());
    // Everything but /health and /webhook: Label Studio's auto-created webhook sends no
    // credentials, and /health must answer whoever asks whether we are up.
    let auth = basic_auth::guard(state.basic_auth.clone());

    let health = warp::get()
        .and(
            warp::path("health")
                .and(warp::path::end())
                .or(warp::path::end())
                .unify(),
        )
        .and(with_state.clone())
        .map(health::handle);
    let setup = warp::path!("setup")
        .and(warp::post())
        .and(auth.clone())
        .and(body)
        .and(with_state.clone())
        .map(setup::handle);
    let predict = warp::path!("predict")
        .and(warp::post())
        .and(auth.clone())
        .and(body)
        .and(with_state.clone())
        .then(predict::handle);
    let webhook = warp::path!("webhook").and(warp::post()).and(body).map(webhook::handle);
    let versions = warp::path!("versions")
        .and(warp::get())
        .and(auth.clone())
        .and(with_state.clone())
        .map(info::versions);
    let models = warp::path!("models")
        .and(warp::get())
        .and(auth.clone())
        .and(with_state.clone())
        .map(info::models);
    let reload = warp::path!("models" / "reload")
        .and(warp::post())
        .and(auth.clone())
        .and(with_state.clone())
        .then(info::reload);
    let plugins = warp::path!("plugins")
        .and(warp::get())
        .and(auth.clone())
        .and(with_state.clone())
        .map(info::plugins);
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(auth.clone())
        .and(with_state.clone())
        .map(metrics::handle);

    let log_state = Arc::clone(&state);
    health
        .or(setup)
        .or(predict)
        .or(webhook)
        .or(versions)
        .or(models)
        .or(reload)
        .or(plugins)
        .or(metrics)
        .recover(reply::rejection)
        .with(warp::log::custom(move |info| {
            let path = info.path();
            let endpoint = path
                .trim_start_matches('/')
                .split('/')
                .next()
                .filter(|s| !s.is_empty())
                .unwrap_or("health");
            log_state.metrics.request(endpoint, info.status().as_u16());
            let line = format!(
                "{} {} {} {:.1} ms",
                info.method(),
                path,
                info.status().as_u16(),
                info.elapsed().as_secs_f64() * 1e3
            );
            // Label Studio polls /health and /setup constantly; keep them out of the info log.
            if matches!(endpoint, "health" | "metrics" | "setup") {
                log::debug!("{line}");
            } else {
                log::info!("{line}");
            }
        }))
}
