//! The HTTP layer: thin warp routes over the predictor and the registry.

pub mod basic_auth;
mod error;
mod health;
mod info;
mod jobs;
pub mod listener;
mod manage;
mod metrics;
mod openapi;
mod predict;
mod reply;
mod setup;
pub mod trust;
mod ui;
mod webhook;

use std::{convert::Infallible, sync::Arc, time::Instant};

use warp::{Filter, Reply, filters::BoxedFilter, reply::Response};

use ls_core::{metrics::Metrics, models::Registry, pipeline::Predictor, runtime::Runtime};

pub struct AppState {
    pub predictor: Arc<Predictor>,
    pub basic_auth: basic_auth::Expected,
    pub auth_throttle: Arc<basic_auth::Throttle>,
    /// Largest request body (ML_MAX_BODY_MB). Label Studio sends all selected tasks in one
    /// /predict, each with its annotations, so the default is generous.
    pub max_body_bytes: u64,
    /// Largest model upload (ML_MAX_MODEL_MB).
    pub max_model_bytes: u64,
    /// Who may change models and start work, and from where.
    pub trust: trust::Trust,
    /// ML_WEBHOOK_SECRET: a webhook event that carries it (`/webhook?secret=`) counts toward
    /// automatic training even without Basic auth.
    pub webhook_secret: Option<labelstudio_protocol::Secret>,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub runtime: Arc<Runtime>,
    pub started: Instant,
    pub jobs: Arc<ls_training::Jobs>,
    /// Annotations counted toward automatic training.
    pub annotations: webhook::AnnotationCounter,
}

pub type State = Arc<AppState>;

pub use trust::Trust;
pub use webhook::AnnotationCounter;

/// The first path segments the routes serve, the labels of the request metrics.
const ENDPOINTS: [&str; 12] = [
    "health",
    "ui",
    "setup",
    "predict",
    "webhook",
    "versions",
    "models",
    "jobs",
    "train",
    "plugins",
    "metrics",
    "openapi.json",
];

/// A group of routes, each answer already a response: groups compose without the route's
/// type growing with every `or` (past a point the release build's trait solver gives up).
type Routes = BoxedFilter<(Response,)>;
/// A check that lets a request through or rejects it.
type Gate = BoxedFilter<()>;

/// Every route: the server's answer to any request.
pub fn routes(state: State) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    // Everything but /health and /webhook: Label Studio's auto-created webhook sends no
    // credentials, and /health must answer whoever asks whether we are up.
    let auth = basic_auth::guard(state.basic_auth.clone(), Arc::clone(&state.auth_throttle)).boxed();
    // Changes and actions that cost pass the trust rule too (see `trust`).
    let writes = trust::guard(state.trust.clone()).boxed();
    let api = label_studio_routes(&state, &auth)
        .or(model_routes(&state, &auth, &writes))
        .unify()
        .or(job_routes(&state, &auth, &writes))
        .unify()
        .or(server_routes(&state, &auth))
        .unify();
    let log_state = Arc::clone(&state);
    trust::host_guard(state.trust.clone())
        .and(api)
        .recover(reply::rejection)
        .with(warp::reply::with::headers(reply::security_headers()))
        .with(warp::log::custom(move |info| log_request(&log_state.metrics, &info)))
}

fn with_state(state: &State) -> BoxedFilter<(State,)> {
    let state = Arc::clone(state);
    warp::any().map(move || Arc::clone(&state)).boxed()
}

fn body(state: &State) -> BoxedFilter<(bytes::Bytes,)> {
    warp::body::content_length_limit(state.max_body_bytes)
        .and(warp::body::bytes())
        .boxed()
}

/// What Label Studio calls (the protocol), and the page.
fn label_studio_routes(state: &State, auth: &Gate) -> Routes {
    // A browser at `/` is sent to the page; everyone else gets /health's JSON there.
    let to_page = warp::get()
        .and(warp::path::end())
        .and(warp::header::optional::<String>("accept"))
        .and_then(|accept: Option<String>| async move {
            if ui::wants_page(accept.as_deref()) {
                Ok(warp::redirect::found(warp::http::Uri::from_static("/ui")).into_response())
            } else {
                Err(warp::reject::not_found())
            }
        });
    let page = warp::path!("ui").and(warp::get()).and(auth.clone()).map(ui::page);
    let health = warp::path!("health")
        .or(warp::path::end())
        .unify()
        .and(warp::get())
        .and(with_state(state))
        .map(health::handle);
    let setup = warp::path!("setup")
        .and(warp::post())
        .and(auth.clone())
        .and(warp::header::headers_cloned())
        .and(body(state))
        .and(with_state(state))
        .map(|headers, body, state| error::respond(setup::handle(headers, body, state)));
    let predict = warp::path!("predict")
        .and(warp::post())
        .and(auth.clone())
        .and(body(state))
        .and(with_state(state))
        .then(|body, state| async move { error::respond(predict::handle(body, state).await) });
    let webhook = warp::path!("webhook")
        .and(warp::post())
        .and(warp::header::headers_cloned())
        .and(warp::query::<std::collections::HashMap<String, String>>())
        .and(body(state))
        .and(with_state(state))
        .map(|headers, query, body, state| error::respond(webhook::handle(headers, query, body, state)));
    let versions = warp::path!("versions")
        .and(warp::get())
        .and(auth.clone())
        .and(with_state(state))
        .map(info::versions);
    to_page
        .or(page)
        .unify()
        .or(health)
        .unify()
        .or(setup)
        .unify()
        .or(predict)
        .unify()
        .or(webhook)
        .unify()
        .or(versions)
        .unify()
        .boxed()
}

/// The models: the list, uploads, downloads, settings, rollback and tries.
fn model_routes(state: &State, auth: &Gate, writes: &Gate) -> Routes {
    let models = warp::path!("models")
        .and(warp::get())
        .and(auth.clone())
        .and(with_state(state))
        .map(info::models);
    let reload = warp::path!("models" / "reload")
        .and(warp::post())
        .and(auth.clone())
        .and(with_state(state))
        .then(info::reload);
    let upload = warp::path!("models" / String)
        .and(warp::put())
        .and(auth.clone())
        .and(writes.clone())
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .and(with_state(state))
        .then(|name, length, body, state| async move {
            error::respond(manage::upload(name, length, Box::pin(body), state).await)
        });
    let download = warp::path!("models" / String / "file")
        .and(warp::get())
        .and(auth.clone())
        .and(with_state(state))
        .then(|name, state| async move { error::respond(manage::download(name, state).await) });
    let delete = warp::path!("models" / String)
        .and(warp::delete())
        .and(auth.clone())
        .and(writes.clone())
        .and(with_state(state))
        .then(|name, state| async move { error::respond(manage::delete(name, state).await) });
    let settings = warp::path!("models" / String / "config")
        .and(warp::get())
        .and(auth.clone())
        .and(with_state(state))
        .then(|name, state| async move { error::respond(manage::settings(name, state).await) });
    let set_settings = warp::path!("models" / String / "config")
        .and(warp::put())
        .and(auth.clone())
        .and(writes.clone())
        .and(body(state))
        .and(with_state(state))
        .then(|name, body, state| async move { error::respond(manage::set_settings(name, body, state).await) });
    let rollback = warp::path!("models" / String / "rollback")
        .and(warp::post())
        .and(auth.clone())
        .and(writes.clone())
        .and(with_state(state))
        .then(|name, state| async move { error::respond(jobs::rollback(name, state).await) });
    let try_model = warp::path!("models" / String / "try")
        .and(warp::post())
        .and(auth.clone())
        .and(writes.clone())
        .and(warp::query::<std::collections::HashMap<String, String>>())
        .and(warp::header::optional::<String>("content-type"))
        .and(body(state))
        .and(with_state(state))
        .then(|name, query, content_type, body, state| async move {
            error::respond(manage::try_model(name, query, content_type, body, state).await)
        });
    models
        .or(reload)
        .unify()
        .or(upload)
        .unify()
        .or(download)
        .unify()
        .or(delete)
        .unify()
        .or(settings)
        .unify()
        .or(set_settings)
        .unify()
        .or(rollback)
        .unify()
        .or(try_model)
        .unify()
        .boxed()
}

/// Jobs, and Label Studio's old training call.
fn job_routes(state: &State, auth: &Gate, writes: &Gate) -> Routes {
    let submit = warp::path!("jobs")
        .and(warp::post())
        .and(auth.clone())
        .and(writes.clone())
        .and(body(state))
        .and(with_state(state))
        .map(|body, state| error::respond(jobs::submit(body, state)));
    let list = warp::path!("jobs")
        .and(warp::get())
        .and(auth.clone())
        .and(with_state(state))
        .map(jobs::list);
    let show = warp::path!("jobs" / String)
        .and(warp::get())
        .and(auth.clone())
        .and(with_state(state))
        .map(|id, state| error::respond(jobs::show(id, state)));
    let cancel = warp::path!("jobs" / String)
        .and(warp::delete())
        .and(auth.clone())
        .and(writes.clone())
        .and(with_state(state))
        .map(|id, state| error::respond(jobs::cancel(id, state)));
    // Label Studio before 1.12 (and its older SDK) trains through POST /train, with the
    // backend's credentials like /predict.
    let legacy_train = warp::path!("train")
        .and(warp::post())
        .and(auth.clone())
        .and(writes.clone())
        .and(body(state))
        .and(with_state(state))
        .map(|body, state| error::respond(jobs::legacy_train(body, state)));
    submit
        .or(list)
        .unify()
        .or(show)
        .unify()
        .or(cancel)
        .unify()
        .or(legacy_train)
        .unify()
        .boxed()
}

/// The server itself: its plugins and its metrics.
fn server_routes(state: &State, auth: &Gate) -> Routes {
    let plugins = warp::path!("plugins")
        .and(warp::get())
        .and(auth.clone())
        .and(with_state(state))
        .map(info::plugins);
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(auth.clone())
        .and(with_state(state))
        .map(metrics::handle);
    let openapi = warp::path!("openapi.json")
        .and(warp::get())
        .and(auth.clone())
        .map(openapi::document);
    plugins.or(metrics).unify().or(openapi).unify().boxed()
}

/// One line per request with its time, and the request metrics.
fn log_request(metrics: &Metrics, info: &warp::log::Info<'_>) {
    let path = info.path();
    let endpoint = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("health");
    // A label per endpoint, not per path: unknown paths would each add a series that is
    // never freed.
    let endpoint = if ENDPOINTS.contains(&endpoint) {
        endpoint
    } else {
        "other"
    };
    metrics.request(endpoint, info.status().as_u16());
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
}
