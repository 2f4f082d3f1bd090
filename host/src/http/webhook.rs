//! `POST /webhook`, which two senders use (see docs): Label Studio's Start Training button
//! (`START_TRAINING`, sent with the backend's credentials), and the project webhook Label
//! Studio creates when the backend is connected (annotation events, sent without any).
//! Answered quickly: Label Studio delivers project webhooks with a one-second timeout.
//!
//! Both start trainings, so both pass the trust rule (`trust`): Start Training needs it, and
//! an annotation event counts toward automatic training only when it passes it, or carries
//! ML_WEBHOOK_SECRET (`/webhook?secret=...`), since with Basic auth on Label Studio's own
//! project webhook sends no credentials.

use std::collections::HashMap;

use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::{Value, json};
use warp::reply::Response;

use super::openapi::ErrorBody;
use super::{State, error::HttpError, jobs, reply};

/// Counts annotations per project toward automatic training (ML_TRAIN_EVERY_N_ANNOTATIONS).
#[derive(Default)]
pub struct AnnotationCounter {
    every: u64,
    counts: Mutex<HashMap<u64, u64>>,
}

impl AnnotationCounter {
    pub fn new(every: u64) -> Self {
        Self {
            every,
            counts: Mutex::default(),
        }
    }

    /// Adds `n` annotations of `project`; true when they reach the threshold (the count
    /// then starts over).
    pub fn add(&self, project: u64, n: u64) -> bool {
        if self.every == 0 {
            return false;
        }
        let mut counts = self.counts.lock();
        let count = counts.entry(project).or_default();
        *count += n;
        if *count >= self.every {
            *count = 0;
            true
        } else {
            false
        }
    }
}

/// Whether the query names the webhook secret. Both sides are hashed first, so the time of
/// the comparison tells nothing about where they differ.
fn carries_secret(given: Option<&str>, secret: Option<&labelstudio_protocol::Secret>) -> bool {
    use super::basic_auth::{constant_time_eq, digest};
    let (Some(given), Some(secret)) = (given, secret) else {
        return false;
    };
    constant_time_eq(&digest(given.as_bytes()), &digest(secret.expose().as_bytes()))
}

#[utoipa::path(post, path = "/webhook", tag = "label-studio", description = "Label Studio's events: `START_TRAINING` starts a training job; annotation events count toward `ML_TRAIN_EVERY_N_ANNOTATIONS`.", params(("secret" = Option<String>, Query, description = "ML_WEBHOOK_SECRET, for events without Basic auth")), request_body(description = "A Label Studio webhook event", content_type = "application/json"), responses((status = 200, description = "Handled (a training answers `{\"job\": ID}`)", content_type = "application/json"), (status = 400, description = "The request is malformed or refers to what does not exist", body = ErrorBody), (status = 401, description = "Basic auth is on and the credentials are wrong", body = ErrorBody), (status = 403, description = "Refused by the trust rule (see docs/security.md)", body = ErrorBody)))]
pub fn handle(
    headers: warp::http::HeaderMap,
    query: HashMap<String, String>,
    body: Bytes,
    state: State,
) -> Result<Response, HttpError> {
    let authorization = headers.get("authorization").and_then(|v| v.to_str().ok());
    let trusted = state.basic_auth.admits(authorization) && state.trust.check(&headers).is_ok();
    let event: Value = reply::parse_body(&body)?;
    let action = event.get("action").and_then(Value::as_str).unwrap_or("(no action)");
    let project_value = event.get("project").cloned().unwrap_or(Value::Null);
    let project = labelstudio_protocol::protocol::project_id(Some(&project_value)).and_then(|p| p.parse::<u64>().ok());
    log::info!(
        "webhook {action} for project {}",
        project.map_or_else(|| "-".to_string(), |p| p.to_string())
    );
    match action {
        "START_TRAINING" => {
            // Label Studio sends Start Training with the backend's Basic auth; the project
            // webhook's events come without, and never start training by themselves.
            if !state.basic_auth.admits(authorization) {
                return Err(HttpError::Unauthorized { what: "START_TRAINING" });
            }
            state.trust.check(&headers)?;
            jobs::train_from_label_studio(&project_value, "label-studio (Start Training)", &state)
        }
        "ANNOTATION_CREATED" | "ANNOTATION_UPDATED" | "ANNOTATIONS_CREATED" => {
            let n = match event.get("annotation") {
                Some(Value::Array(list)) => list.len() as u64,
                Some(_) => 1,
                None => 0,
            };
            if !trusted && !carries_secret(query.get("secret").map(String::as_str), state.webhook_secret.as_ref()) {
                log::info!(
                    "webhook {action}: not counted toward automatic training (no Basic auth, another origin, or no \
                     ML_WEBHOOK_SECRET)"
                );
                return Ok(reply::json(&json!({ "status": "ok" })));
            }
            if let Some(project) = project
                && state.annotations.add(project, n)
            {
                log::info!("project {project}: enough new annotations (ML_TRAIN_EVERY_N_ANNOTATIONS) to train again");
                if state.jobs.training_of(project).is_none()
                    && let Err(e) = state.jobs.submit(
                        ls_training::JobKind::Train,
                        project,
                        ls_training::JobOptions::default(),
                        "auto (annotations)",
                    )
                {
                    log::warn!("project {project}: automatic training not started: {e}");
                }
            }
            Ok(reply::json(&json!({ "status": "ok" })))
        }
        _ => Ok(reply::json(&json!({ "status": "ok" }))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_must_match_exactly() {
        let secret = labelstudio_protocol::Secret::from("s3cret".to_string());
        assert!(carries_secret(Some("s3cret"), Some(&secret)));
        assert!(!carries_secret(Some("s3cre"), Some(&secret)));
        assert!(!carries_secret(Some("s3cret "), Some(&secret)));
        assert!(!carries_secret(None, Some(&secret)));
        assert!(!carries_secret(Some(""), None), "no secret set: nothing matches");
    }

    #[test]
    fn the_counter_fires_every_n_and_starts_over() {
        let counter = AnnotationCounter::new(3);
        assert!(!counter.add(1, 2));
        assert!(!counter.add(2, 2), "projects count apart");
        assert!(counter.add(1, 1));
        assert!(!counter.add(1, 2));
        assert!(counter.add(1, 5));
        assert!(!AnnotationCounter::new(0).add(1, 100), "0 is off");
    }
}
