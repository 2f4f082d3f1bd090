//! Label Studio's REST API, for jobs: a project's label config, its tasks page by page (with
//! their annotations and predictions), and writing predictions back. Same address and key
//! rules as media downloads (LABEL_STUDIO_URL or /setup's address; LABEL_STUDIO_API_KEY or
//! /setup's legacy token). Transient failures (timeouts, 5xx, 429) are retried.

use std::{sync::Arc, time::Duration};

use reqwest::{Method, StatusCode, header};
use serde_json::Value;

use super::{auth::AuthError, media::MediaClient};

const ATTEMPTS: u32 = 4;
const TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum LabelStudioError {
    #[error(
        "Label Studio's address is unknown: set LABEL_STUDIO_URL (or connect the model from Label Studio, whose \
         /setup call tells it)"
    )]
    NoAddress,
    #[error(
        "no key for Label Studio's API: set LABEL_STUDIO_API_KEY to a personal access token or legacy token (or \
         connect the model from Label Studio with legacy tokens enabled)"
    )]
    NoKey,
    #[error("Label Studio did not answer {what}: {message}")]
    Unreachable { what: String, message: String },
    #[error("Label Studio answered {what} with HTTP {status}: {body}{hint}")]
    Status {
        what: String,
        status: StatusCode,
        body: String,
        hint: &'static str,
    },
    #[error("Label Studio's answer to {what} is not what was expected: {message}")]
    Unexpected { what: String, message: String },
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// A Label Studio project, as far as jobs need it.
#[derive(Debug, Clone)]
pub struct Project {
    pub title: String,
    pub label_config: String,
}

/// One page of a project's tasks.
#[derive(Debug, Clone)]
pub struct TasksPage {
    pub tasks: Vec<Value>,
    /// All the project's tasks (over all pages), when Label Studio says.
    pub total: Option<u64>,
}

pub struct LabelStudioApi {
    http: reqwest::Client,
    media: Arc<MediaClient>,
}

impl LabelStudioApi {
    pub fn new(media: Arc<MediaClient>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(TIMEOUT)
            .user_agent(concat!("ls-ml-backend/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self { http, media })
    }

    pub fn media(&self) -> &Arc<MediaClient> {
        &self.media
    }

    pub async fn project(&self, id: u64) -> Result<Project, LabelStudioError> {
        let what = format!("GET /api/projects/{id}");
        let body = self
            .call(Method::GET, &format!("api/projects/{id}"), None, &what)
            .await?;
        let label_config =
            body.get("label_config")
                .and_then(Value::as_str)
                .ok_or_else(|| LabelStudioError::Unexpected {
                    what: what.clone(),
                    message: "it has no label_config".into(),
                })?;
        Ok(Project {
            title: body
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            label_config: label_config.to_string(),
        })
    }

    /// Page `page` (from 1) of the project's tasks, with their annotations and predictions.
    pub async fn tasks_page(&self, project: u64, page: u64, page_size: u64) -> Result<TasksPage, LabelStudioError> {
        let path = format!("api/tasks?project={project}&page={page}&page_size={page_size}&fields=all");
        let what = format!("GET /{path}");
        let body = match self.call(Method::GET, &path, None, &what).await {
            // Label Studio answers a page past the end with 404.
            Err(LabelStudioError::Status {
                status: StatusCode::NOT_FOUND,
                ..
            }) if page > 1 => {
                return Ok(TasksPage {
                    tasks: Vec::new(),
                    total: None,
                });
            }
            other => other?,
        };
        let (tasks, total) = match body {
            Value::Array(tasks) => (tasks, None),
            Value::Object(mut object) => (
                match object.remove("tasks") {
                    Some(Value::Array(tasks)) => tasks,
                    _ => {
                        return Err(LabelStudioError::Unexpected {
                            what,
                            message: "it has no `tasks` list".into(),
                        });
                    }
                },
                object.get("total").and_then(Value::as_u64),
            ),
            _ => {
                return Err(LabelStudioError::Unexpected {
                    what,
                    message: "it is not a task list".into(),
                });
            }
        };
        Ok(TasksPage { tasks, total })
    }

    /// Stores predictions (each with its `task`) in one bulk call, Label Studio's
    /// `import/predictions`; how many it created.
    pub async fn import_predictions(&self, project: u64, predictions: &[Value]) -> Result<u64, LabelStudioError> {
        if predictions.is_empty() {
            return Ok(0);
        }
        let path = format!("api/projects/{project}/import/predictions");
        let what = format!("POST /{path}");
        let body = self
            .call(Method::POST, &path, Some(&Value::from(predictions.to_vec())), &what)
            .await?;
        // Label Studio answers `{"created": N}`; anything else is not a count to trust.
        body.get("created")
            .and_then(Value::as_u64)
            .ok_or_else(|| LabelStudioError::Unexpected {
                what,
                message: format!("the answer has no `created` count: {}", shortened(&body.to_string())),
            })
    }

    /// A request with the key, retried while Label Studio is briefly unavailable.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Value, LabelStudioError> {
        let base = self.media.label_studio().ok_or(LabelStudioError::NoAddress)?;
        let credentials = self.media.credentials().ok_or(LabelStudioError::NoKey)?;
        let url = base.join(path).map_err(|e| LabelStudioError::Unexpected {
            what: what.to_string(),
            message: format!("cannot build the URL: {e}"),
        })?;
        let mut last = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt - 1))).await;
            }
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(header::AUTHORIZATION, credentials.header(&self.http, &base).await?);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    last = Some(LabelStudioError::Unreachable {
                        what: what.to_string(),
                        message: e.to_string(),
                    });
                    continue;
                }
            };
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            if status.is_success() {
                return serde_json::from_str(&text).or_else(|e| {
                    if text.trim().is_empty() {
                        Ok(Value::Null)
                    } else {
                        Err(LabelStudioError::Unexpected {
                            what: what.to_string(),
                            message: format!("not JSON: {e}"),
                        })
                    }
                });
            }
            let error = LabelStudioError::Status {
                what: what.to_string(),
                status,
                body: shortened(&text),
                hint: hint(status),
            };
            let transient = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
            let refreshed = status == StatusCode::UNAUTHORIZED && credentials.refused().await;
            if !(transient || refreshed) {
                return Err(error);
            }
            last = Some(error);
        }
        Err(last.unwrap_or(LabelStudioError::NoAddress))
    }
}

fn hint(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => {
            " (check LABEL_STUDIO_API_KEY; a legacy token works only while the organization allows legacy tokens)"
        }
        StatusCode::FORBIDDEN => " (the key's user must be a member of the project's organization)",
        StatusCode::NOT_FOUND => " (is the project id right?)",
        _ => "",
    }
}

fn shortened(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}
