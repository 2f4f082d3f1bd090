//! Label Studio's REST API, for jobs: a project's label config, its tasks page by page (with
//! their annotations and predictions), and writing predictions back. Same address and key
//! rules as media downloads (LABEL_STUDIO_URL or /setup's address; LABEL_STUDIO_API_KEY or
//! /setup's legacy token). Transient failures (no answer, 5xx, 429) are retried, and so is a
//! refused access token, once it is refreshed.

use std::{sync::Arc, time::Duration};

use backon::{ExponentialBuilder, Retryable};
use labelstudio_protocol::region::TaskPrediction;
use reqwest::{Method, StatusCode, Url, header};
use serde_json::Value;

use super::{
    auth::{AuthError, Credentials},
    media::{ClientError, MediaClient},
};

/// Four tries in all, 0.5, 1 and 2 s apart.
const BACKOFF: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(500))
    .with_factor(2.0)
    .with_max_times(3);
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
    #[error("Label Studio's answer to {what} cannot be read: {message}")]
    Unreadable { what: String, message: String },
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

/// Label Studio's API at the address, and with the key, that media downloads use: both may
/// come from the first trusted /setup, which `MediaClient` keeps.
pub struct LabelStudioApi {
    http: reqwest::Client,
    media: Arc<MediaClient>,
    backoff: ExponentialBuilder,
}

impl LabelStudioApi {
    pub fn new(media: Arc<MediaClient>) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(TIMEOUT)
            .user_agent(concat!("ls-ml-backend/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ClientError::Http { source })?;
        Ok(Self {
            http,
            media,
            backoff: BACKOFF,
        })
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
    pub async fn import_predictions(
        &self,
        project: u64,
        predictions: &[TaskPrediction],
    ) -> Result<u64, LabelStudioError> {
        if predictions.is_empty() {
            return Ok(0);
        }
        let path = format!("api/projects/{project}/import/predictions");
        let what = format!("POST /{path}");
        // The typed predictions become Label Studio's JSON here, at the edge.
        let sent = serde_json::to_value(predictions).map_err(|e| LabelStudioError::Unexpected {
            what: what.clone(),
            message: format!("the predictions cannot be written as JSON: {e}"),
        })?;
        let body = self.call(Method::POST, &path, Some(&sent), &what).await?;
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
        let attempt = || self.attempt(method.clone(), &url, &base, &credentials, body, what);
        attempt
            .retry(self.backoff)
            .when(|failed| failed.retry)
            .notify(|failed, after| {
                log::warn!("{}; trying again in {:.1} s", failed.error, after.as_secs_f64());
            })
            .await
            .map_err(|failed| failed.error)
    }

    async fn attempt(
        &self,
        method: Method,
        url: &Url,
        base: &Url,
        credentials: &Credentials,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Value, Failed> {
        let authorization = credentials
            .header(&self.http, base)
            .await
            .map_err(|e| Failed::permanent(e.into()))?;
        let mut request = self
            .http
            .request(method, url.clone())
            .header(header::AUTHORIZATION, authorization);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| Failed {
            error: LabelStudioError::Unreachable {
                what: what.to_string(),
                message: e.to_string(),
            },
            retry: true,
        })?;
        let status = response.status();
        let text = response.text().await;
        if status.is_success() {
            let text =
                text.map_err(|e| Failed::permanent(unreadable(what, format!("the body could not be read: {e}"))))?;
            return json(&text, what).map_err(Failed::permanent);
        }
        let error = LabelStudioError::Status {
            what: what.to_string(),
            status,
            // The status is the answer; a body that breaks off only loses its explanation.
            body: match text {
                Ok(text) => shortened(&text),
                Err(e) => format!("(the body could not be read: {e})"),
            },
            hint: hint(status),
        };
        let transient = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
        let refreshed = status == StatusCode::UNAUTHORIZED && credentials.refused().await;
        Err(Failed {
            error,
            retry: transient || refreshed,
        })
    }
}

/// A try's failure, and whether another try can change the answer.
struct Failed {
    error: LabelStudioError,
    retry: bool,
}

impl Failed {
    fn permanent(error: LabelStudioError) -> Self {
        Failed { error, retry: false }
    }
}

/// A 2xx answer's JSON. Every endpoint used here answers JSON, so an empty body (a 204, or a
/// proxy's blank 200) is no answer either: read as null, a write would pass for done.
fn json(text: &str, what: &str) -> Result<Value, LabelStudioError> {
    if text.trim().is_empty() {
        return Err(unreadable(what, "the body is empty, where JSON was expected".into()));
    }
    serde_json::from_str(text).map_err(|e| unreadable(what, format!("it is not JSON ({e}): {}", shortened(text))))
}

fn unreadable(what: &str, message: String) -> LabelStudioError {
    LabelStudioError::Unreadable {
        what: what.to_string(),
        message,
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use backon::BackoffBuilder;
    use base64::Engine;
    use labelstudio_protocol::Secret;
    use parking_lot::Mutex;
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::{TcpListener, TcpStream},
    };

    use super::*;
    use crate::MediaSettings;

    const LEGACY_KEY: &str = "0123456789abcdef0123456789abcdef01234567";

    /// What the fake Label Studio does with one request.
    enum Answer {
        Http(u16, &'static str),
        /// Closes the connection without a response.
        Close,
    }

    /// A stand-in for Label Studio on 127.0.0.1. `answer` is given each request's path and how
    /// many requests came before it; the paths asked for are kept, in order.
    struct FakeLabelStudio {
        url: String,
        paths: Arc<Mutex<Vec<String>>>,
    }

    impl FakeLabelStudio {
        async fn start(answer: impl Fn(&str, usize) -> Answer + Send + Sync + 'static) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let url = format!("http://{}", listener.local_addr().expect("address"));
            let paths = Arc::new(Mutex::new(Vec::new()));
            let (seen, answer) = (Arc::clone(&paths), Arc::new(answer));
            let count = Arc::new(AtomicUsize::new(0));
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (seen, answer, count) = (Arc::clone(&seen), Arc::clone(&answer), Arc::clone(&count));
                    tokio::spawn(async move {
                        let mut stream = stream;
                        let Some(path) = read_request(&mut stream).await else {
                            return;
                        };
                        seen.lock().push(path.clone());
                        if let Answer::Http(status, body) = answer(&path, count.fetch_add(1, Ordering::SeqCst)) {
                            let response = format!(
                                "HTTP/1.1 {status} Fake\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                                 Connection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = stream.write_all(response.as_bytes()).await;
                            let _ = stream.shutdown().await;
                        }
                    });
                }
            });
            Self { url, paths }
        }

        fn paths(&self) -> Vec<String> {
            self.paths.lock().clone()
        }

        fn api(&self, key: &str) -> LabelStudioApi {
            let media = MediaClient::new(&MediaSettings {
                label_studio_url: Some(self.url.clone()),
                api_key: Some(Secret::from(key.to_string())),
                fetch_timeout_secs: 10,
                ..Default::default()
            })
            .expect("media client");
            let mut api = LabelStudioApi::new(Arc::new(media)).expect("API client");
            // These tests count tries; the waits between them are checked on their own.
            api.backoff = BACKOFF.with_min_delay(Duration::from_millis(1));
            api
        }
    }

    /// The request's path, once all of it (with its body) is read, so that closing the
    /// connection does not reset it under the client.
    async fn read_request(stream: &mut TcpStream) -> Option<String> {
        let mut received = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let n = stream.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
            received.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&received[..head_end]).to_string();
        let length: usize = head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.trim().parse().ok())
            .unwrap_or(0);
        while received.len() < head_end + length {
            let n = stream.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
            received.extend_from_slice(&chunk[..n]);
        }
        head.split_whitespace().nth(1).map(str::to_string)
    }

    const PROJECT: &str = r#"{"title": "Cats", "label_config": "<View/>"}"#;

    #[test]
    fn the_waits_are_half_a_second_then_doubling() {
        let waits: Vec<Duration> = BACKOFF.build().collect();
        assert_eq!(waits, [500, 1000, 2000].map(Duration::from_millis), "four tries in all");
    }

    #[tokio::test]
    async fn a_2xx_that_is_not_json_is_an_error_naming_the_endpoint() {
        let ls = FakeLabelStudio::start(|_, _| Answer::Http(200, "<html>Label Studio</html>")).await;
        let err = ls.api(LEGACY_KEY).project(7).await.expect_err("not JSON");
        assert!(
            matches!(&err, LabelStudioError::Unreadable { what, message }
                if what == "GET /api/projects/7" && message.contains("not JSON")),
            "{err}"
        );
        assert_eq!(ls.paths().len(), 1, "an unreadable answer is not retried");

        let ls = FakeLabelStudio::start(|_, _| Answer::Http(200, "")).await;
        let err = ls.api(LEGACY_KEY).project(7).await.expect_err("empty");
        assert!(
            matches!(&err, LabelStudioError::Unreadable { message, .. } if message.contains("empty")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn import_predictions_counts_only_what_label_studio_says_it_created() {
        let predictions = [1, 2, 3].map(|task| TaskPrediction {
            task,
            prediction: labelstudio_protocol::region::Prediction::empty("m@1"),
        });
        let ls = FakeLabelStudio::start(|_, _| Answer::Http(201, r#"{"created": 2}"#)).await;
        assert_eq!(
            ls.api(LEGACY_KEY)
                .import_predictions(5, &predictions)
                .await
                .expect("import"),
            2
        );
        assert_eq!(ls.paths(), ["/api/projects/5/import/predictions"]);

        for (status, body) in [(201, "{}"), (201, r#"{"created": "3"}"#), (201, "[]")] {
            let ls = FakeLabelStudio::start(move |_, _| Answer::Http(status, body)).await;
            let err = ls
                .api(LEGACY_KEY)
                .import_predictions(5, &predictions)
                .await
                .expect_err(body);
            assert!(matches!(err, LabelStudioError::Unexpected { .. }), "{body}: {err}");
        }
        for (status, body) in [(201, "created"), (200, ""), (204, "")] {
            let ls = FakeLabelStudio::start(move |_, _| Answer::Http(status, body)).await;
            let err = ls
                .api(LEGACY_KEY)
                .import_predictions(5, &predictions)
                .await
                .expect_err(body);
            assert!(
                matches!(&err, LabelStudioError::Unreadable { what, .. }
                    if what == "POST /api/projects/5/import/predictions"),
                "{status} {body:?}: {err}"
            );
        }

        let ls = FakeLabelStudio::start(|_, _| Answer::Http(500, "")).await;
        assert_eq!(ls.api(LEGACY_KEY).import_predictions(5, &[]).await.expect("nothing"), 0);
        assert!(ls.paths().is_empty(), "nothing to import is no request");
    }

    #[tokio::test]
    async fn no_answer_5xx_and_429_are_retried() {
        let ls = FakeLabelStudio::start(|_, n| match n {
            0 => Answer::Http(503, "starting"),
            1 => Answer::Http(429, r#"{"detail": "slow down"}"#),
            2 => Answer::Close,
            _ => Answer::Http(200, PROJECT),
        })
        .await;
        let project = ls.api(LEGACY_KEY).project(3).await.expect("the fourth try");
        assert_eq!(project.title, "Cats");
        assert_eq!(ls.paths().len(), 4);
    }

    #[tokio::test]
    async fn retries_stop_after_four_tries_with_the_last_error() {
        let ls = FakeLabelStudio::start(|_, _| Answer::Http(502, "bad gateway")).await;
        let err = ls.api(LEGACY_KEY).project(3).await.expect_err("down");
        assert!(
            matches!(&err, LabelStudioError::Status { status, body, .. }
                if *status == StatusCode::BAD_GATEWAY && body == "bad gateway"),
            "{err}"
        );
        assert_eq!(ls.paths().len(), 4);

        let ls = FakeLabelStudio::start(|_, _| Answer::Close).await;
        let err = ls.api(LEGACY_KEY).project(3).await.expect_err("no answer");
        assert!(matches!(err, LabelStudioError::Unreachable { .. }), "{err}");
        assert_eq!(ls.paths().len(), 4);
    }

    #[tokio::test]
    async fn other_refusals_are_not_retried() {
        for status in [400, 401, 403, 404] {
            let ls = FakeLabelStudio::start(move |_, _| Answer::Http(status, r#"{"detail": "no"}"#)).await;
            let err = ls.api(LEGACY_KEY).project(3).await.expect_err("refused");
            assert!(
                matches!(&err, LabelStudioError::Status { status: s, .. } if s.as_u16() == status),
                "{err}"
            );
            assert_eq!(ls.paths().len(), 1, "HTTP {status} with a legacy token");
        }
        // A page past the end is the end of the list, not an error.
        let ls = FakeLabelStudio::start(|_, _| Answer::Http(404, "")).await;
        let page = ls.api(LEGACY_KEY).tasks_page(3, 2, 100).await.expect("past the end");
        assert!(page.tasks.is_empty());
        assert_eq!(ls.paths().len(), 1);
    }

    #[tokio::test]
    async fn a_refused_access_token_is_refreshed_and_tried_again() {
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let personal = format!(
            "{}.{}.{}",
            enc(r#"{"alg":"HS256","typ":"JWT"}"#),
            enc(r#"{"token_type":"refresh","exp":4102444800}"#),
            enc("signature")
        );
        let project_tries = Arc::new(AtomicUsize::new(0));
        let tries = Arc::clone(&project_tries);
        let ls = FakeLabelStudio::start(move |path, _| match path {
            "/api/token/refresh" => Answer::Http(200, r#"{"access": "access"}"#),
            _ if tries.fetch_add(1, Ordering::SeqCst) == 0 => Answer::Http(401, r#"{"detail": "expired"}"#),
            _ => Answer::Http(200, PROJECT),
        })
        .await;
        let project = ls.api(&personal).project(3).await.expect("after a refresh");
        assert_eq!(project.label_config, "<View/>");
        assert_eq!(
            ls.paths(),
            [
                "/api/token/refresh",
                "/api/projects/3",
                "/api/token/refresh",
                "/api/projects/3"
            ]
        );
    }
}
