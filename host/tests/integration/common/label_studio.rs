//! A real Label Studio (the `label-studio` PyPI package, version pinned by
//! scripts/setup-label-studio.sh) on a loopback port, with a throwaway data folder, driven
//! through its REST API the way its web UI drives it.

use std::{
    io::Write,
    path::PathBuf,
    process::{Child, ChildStdin, Command, Stdio},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::free_port;

pub const USER: &str = "e2e@example.com";
pub const PASSWORD: &str = "e2e-password-123";
/// The user's legacy token, fixed at first start with `--user-token`.
pub const LEGACY_TOKEN: &str = "e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0e2e0";

/// The `label-studio` executable: LABEL_STUDIO_BIN, else the venv the setup script makes.
fn executable() -> PathBuf {
    if let Ok(bin) = std::env::var("LABEL_STUDIO_BIN") {
        return PathBuf::from(bin);
    }
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv-ls/bin/label-studio");
    assert!(
        bin.is_file(),
        "Label Studio is not installed: run scripts/setup-label-studio.sh (scripts/test.sh does), or set \
         LABEL_STUDIO_BIN"
    );
    bin
}

struct Process {
    port: u16,
    log: PathBuf,
    _data: tempfile::TempDir,
    /// The shell that runs Label Studio: it exits when Label Studio does, so a Label Studio
    /// that dies at start-up is seen at once.
    child: Mutex<Child>,
    /// Label Studio is started by a shell that kills it when this pipe closes, which happens
    /// when the test process ends, however it ends (statics are never dropped).
    _lifeline: Mutex<ChildStdin>,
}

impl Process {
    fn exited(&self) -> Option<std::process::ExitStatus> {
        self.child.lock().ok()?.try_wait().ok().flatten()
    }
}

fn tail(log: &std::path::Path) -> String {
    let log = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

static PROCESS: OnceLock<Process> = OnceLock::new();
/// One scenario at a time: Label Studio on SQLite does not like concurrent writers.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// Set once Label Studio failed to come up: every later scenario fails at once with the same
/// reason, instead of waiting for a server that will not answer.
static FAILED: OnceLock<String> = OnceLock::new();

fn start() -> Process {
    let data = tempfile::tempdir().expect("Label Studio data dir");
    let port = free_port();
    let log = data.path().join("label-studio.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    // The reader in the background kills Label Studio when the pipe closes; the shell itself
    // waits for Label Studio, and so exits, with its status, when Label Studio does.
    let mut child = Command::new("sh")
        .arg("-c")
        // (A background list reads /dev/null unless told otherwise: hence descriptor 3.)
        .arg(r#"exec 3<&0; "$@" <&- 3<&- & pid=$!; (read _ <&3; kill -TERM $pid 2>/dev/null) & exec 3<&-; wait $pid"#)
        .arg("sh")
        .arg(executable())
        .args(["start", "--no-browser", "--internal-host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .arg("--data-dir")
        .arg(data.path())
        .args(["--username", USER, "--password", PASSWORD, "--user-token", LEGACY_TOKEN])
        .arg("--enable-legacy-api-token")
        .env("LABEL_STUDIO_BASE_DATA_DIR", data.path())
        .env("LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN", "true")
        // Without both, Label Studio refuses a backend on a loopback address with a 403.
        .env("ML_BLOCK_LOCAL_IP", "false")
        .env("SSRF_PROTECTION_ENABLED", "false")
        // A test reports to no one: Label Studio ships default Sentry DSNs (server and page),
        // collects analytics and asks PyPI for a newer version unless told not to.
        .env("LABEL_STUDIO_SENTRY_DSN", "")
        .env("LABEL_STUDIO_FRONTEND_SENTRY_DSN", "")
        .env("LABEL_STUDIO_COLLECT_ANALYTICS", "false")
        .env("LABEL_STUDIO_LATEST_VERSION_CHECK", "false")
        .env("HOME", data.path())
        .stdin(Stdio::piped())
        .stdout(log_file.try_clone().expect("log"))
        .stderr(log_file)
        .spawn()
        .expect("start Label Studio");
    let lifeline = child.stdin.take().expect("stdin");
    Process {
        port,
        log,
        _data: data,
        child: Mutex::new(child),
        _lifeline: Mutex::new(lifeline),
    }
}

pub struct LabelStudio {
    pub url: String,
    pub http: reqwest::Client,
    log: PathBuf,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl LabelStudio {
    /// The shared Label Studio, up and answering; holds it for this scenario alone.
    pub async fn get() -> LabelStudio {
        let serial = SERIAL.lock().await;
        if let Some(reason) = FAILED.get() {
            panic!("{reason}");
        }
        let process = PROCESS.get_or_init(start);
        let ls = LabelStudio {
            url: format!("http://127.0.0.1:{}", process.port),
            http: reqwest::Client::new(),
            log: process.log.clone(),
            _serial: serial,
        };
        // The first start runs Django's migrations: about 40 s on two cores. The deadline is
        // for a Label Studio that hangs; one that exits is reported as soon as it does.
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if let Ok(r) = ls.http.get(format!("{}/health", ls.url)).send().await
                && r.status().is_success()
            {
                break;
            }
            let reason = if let Some(status) = process.exited() {
                Some(format!(
                    "Label Studio exited at start-up ({status}):\n{}",
                    tail(&process.log)
                ))
            } else if Instant::now() >= deadline {
                Some(format!(
                    "Label Studio did not answer /health in 300 s:\n{}",
                    tail(&process.log)
                ))
            } else {
                None
            };
            if let Some(reason) = reason {
                panic!("{}", FAILED.get_or_init(|| reason));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        ls
    }

    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .header("Authorization", format!("Token {LEGACY_TOKEN}"))
    }

    async fn send(&self, what: &str, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}\n{}", self.log_tail()));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        self.send(path, self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(path, self.request(reqwest::Method::POST, path).json(body))
            .await
    }

    /// Asserts a 2xx answer and returns its body.
    pub async fn expect_post(&self, path: &str, body: &Value) -> Value {
        let (status, answer) = self.post_json(path, body).await;
        assert!(
            (200..300).contains(&status),
            "POST {path} answered {status}: {answer}\nLabel Studio log:\n{}",
            self.log_tail()
        );
        answer
    }

    pub async fn expect_get(&self, path: &str) -> Value {
        let (status, answer) = self.get_json(path).await;
        assert!(
            (200..300).contains(&status),
            "GET {path} answered {status}: {answer}\nLabel Studio log:\n{}",
            self.log_tail()
        );
        answer
    }

    pub async fn create_project(&self, title: &str, label_config: &str) -> u64 {
        let project = self
            .expect_post("/api/projects", &json!({"title": title, "label_config": label_config}))
            .await;
        project["id"].as_u64().expect("project id")
    }

    /// Uploads files through the import dialog's API, as a browser does (multipart form).
    pub async fn upload(&self, project: u64, files: &[PathBuf]) -> usize {
        let boundary = "----ls-ml-backend-e2e-boundary";
        let mut body = Vec::new();
        for (i, file) in files.iter().enumerate() {
            let name = file.file_name().and_then(|n| n.to_str()).expect("file name");
            let content_type = match file.extension().and_then(|e| e.to_str()) {
                Some("mp4") => "video/mp4",
                Some("jpg" | "jpeg") => "image/jpeg",
                _ => "image/png",
            };
            write!(
                body,
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file{i}\"; filename=\"{name}\"\r\n\
                 Content-Type: {content_type}\r\n\r\n"
            )
            .expect("write");
            body.extend_from_slice(&std::fs::read(file).expect("read image"));
            body.extend_from_slice(b"\r\n");
        }
        write!(body, "--{boundary}--\r\n").expect("write");
        let path = format!("/api/projects/{project}/import");
        let request = self
            .request(reqwest::Method::POST, &path)
            .header("Content-Type", format!("multipart/form-data; boundary={boundary}"))
            .body(body);
        let (status, answer) = self.send(&path, request).await;
        assert_eq!(status, 201, "import: {answer}\n{}", self.log_tail());
        answer["task_count"].as_u64().expect("task_count") as usize
    }

    /// Connects a backend to a project without auth, as Settings > Model does; returns the
    /// `model_version` Label Studio read from its /setup.
    pub async fn connect(&self, project: u64, backend_url: &str) -> Value {
        let ml = self
            .expect_post(
                "/api/ml",
                &json!({"url": backend_url, "project": project, "title": "ls-ml-backend", "auth_method": "NONE"}),
            )
            .await;
        self.expect_get(&format!("/api/ml/{}", ml["id"])).await["model_version"].clone()
    }

    /// Retrieve Predictions on every task of a project, as the Data Manager's action does.
    pub async fn retrieve_predictions(&self, project: u64) -> Value {
        self.expect_post(
            &format!("/api/dm/actions?id=retrieve_tasks_predictions&project={project}"),
            &json!({"selectedItems": {"all": true, "excluded": []}, "project": project.to_string()}),
        )
        .await
    }

    /// Every task of a project.
    pub async fn tasks(&self, project: u64) -> Vec<Value> {
        let answer = self
            .expect_get(&format!("/api/tasks?project={project}&page_size=1000"))
            .await;
        match answer {
            Value::Array(tasks) => tasks,
            other => other["tasks"].as_array().cloned().expect("tasks"),
        }
    }

    /// Every prediction stored in a project.
    pub async fn predictions(&self, project: u64) -> Vec<Value> {
        match self.expect_get(&format!("/api/predictions/?project={project}")).await {
            Value::Array(p) => p,
            other => other["results"].as_array().cloned().expect("predictions"),
        }
    }
}
