//! Test harness: starts the real `ls-ml-backend` binary on a free port with a temporary
//! models folder and the plugins cargo built, and serves fixture images over loopback HTTP.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;

pub mod abi;
pub mod label_studio;

/// Prints a result line, and appends it to the file LS_ML_TEST_REPORT names, so that
/// scripts/test.sh can show the measured numbers after cargo's (captured) output.
pub fn report(line: &str) {
    println!("{line}");
    if let Ok(path) = std::env::var("LS_ML_TEST_REPORT")
        && let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path)
    {
        use std::io::Write;
        let _ = writeln!(file, "{line}");
    }
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

pub fn fixture_model(name: &str) -> PathBuf {
    fixtures().join("models").join(name)
}

pub fn eval_images() -> PathBuf {
    fixtures().join("eval-a/images")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The folder cargo put the binary in, where `cargo build --workspace` also puts the plugins.
pub fn build_dir() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_ls-ml-backend"));
    bin.parent().expect("binary folder").to_path_buf()
}

/// A built plugin library, by crate name with underscores (`yolov8_detect`).
pub fn plugin_library(name: &str) -> PathBuf {
    build_plugins();
    let file = build_dir().join(format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(file.is_file(), "{} is missing after the build", file.display());
    file
}

/// The plugins are libraries that no test target depends on, so `cargo test` alone does not
/// build them: the first test that needs one builds them all, once per test run, with the
/// test binary's own profile. Up to date it takes a moment; scripts/test.sh builds them first
/// and says so (`LS_ML_PLUGINS_BUILT`).
fn build_plugins() {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        // scripts/test.sh has built them, and its release build beside the tests holds the
        // target folder's lock: a second build here would wait for all of it.
        if std::env::var_os("LS_ML_PLUGINS_BUILT").is_some() {
            return;
        }
        let dir = build_dir();
        let target = dir.parent().expect("target folder");
        let mut args = vec!["build", "--workspace", "--exclude", "ls-ml-bench", "--quiet"];
        if dir.file_name().is_some_and(|name| name == "release") {
            args.push("--release");
        }
        abi::cargo(&args, &abi::repo(), target);
    });
}

/// A plugin folder holding copies of these built plugins.
pub fn plugins_dir(names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("plugins dir");
    for name in names {
        let lib = plugin_library(name);
        std::fs::copy(&lib, dir.path().join(lib.file_name().expect("name"))).expect("copy plugin");
    }
    dir
}

pub struct Server {
    pub port: u16,
    pub models_dir: tempfile::TempDir,
    pub plugins_dir: tempfile::TempDir,
    child: Child,
    log: Arc<Mutex<String>>,
    pub http: reqwest::Client,
}

impl Server {
    /// Starts the server with these fixture models copied in as the given names, and the
    /// shipped detection plugin.
    pub async fn start(models: &[(&str, &str)], env: &[(&str, &str)]) -> Server {
        Self::start_with_plugins(models, env, &["yolov8_detect"]).await
    }

    pub async fn start_with_plugins(models: &[(&str, &str)], env: &[(&str, &str)], plugins: &[&str]) -> Server {
        let models_dir = tempfile::tempdir().expect("temp dir");
        for (fixture, name) in models {
            std::fs::copy(fixture_model(fixture), models_dir.path().join(name)).expect("copy model");
        }
        Self::start_in(models_dir, plugins_dir(plugins), env).await
    }

    pub async fn start_in(
        models_dir: tempfile::TempDir,
        plugins_dir: tempfile::TempDir,
        env: &[(&str, &str)],
    ) -> Server {
        Self::start_exe(
            Path::new(env!("CARGO_BIN_EXE_ls-ml-backend")),
            models_dir,
            plugins_dir,
            env,
        )
        .await
    }

    /// The same with another build of the server.
    pub async fn start_exe(
        exe: &Path,
        models_dir: tempfile::TempDir,
        plugins_dir: tempfile::TempDir,
        env: &[(&str, &str)],
    ) -> Server {
        let port = free_port();
        let mut cmd = Command::new(exe);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ML_BACKEND_ADDR", "127.0.0.1")
            .env("ML_BACKEND_PORT", port.to_string())
            .env("ML_MODELS_DIR", models_dir.path())
            .env("ML_PLUGINS_DIR", plugins_dir.path())
            .env("RUST_LOG", "info")
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // What scripts/cuda-check.sh sets to run the suite on a GPU.
        for passed in ["ORT_DYLIB_PATH", "ML_PROVIDER", "LD_LIBRARY_PATH"] {
            if let Ok(value) = std::env::var(passed) {
                cmd.env(passed, value);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start ls-ml-backend");
        let log = Arc::new(Mutex::new(String::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as _),
        ]
        .into_iter()
        .flatten()
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("[server] {line}");
                    log.lock().expect("log").push_str(&(line + "\n"));
                }
            });
        }
        let server = Server {
            port,
            models_dir,
            plugins_dir,
            child,
            log,
            http: reqwest::Client::new(),
        };
        server.wait_until_loaded().await;
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Everything the server logged so far. The log is read on other threads, so this waits
    /// until it has been quiet for a moment (at most two seconds): a line written just before
    /// a response is then in it.
    pub fn log(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut last = self.log.lock().expect("log").len();
        loop {
            std::thread::sleep(Duration::from_millis(60));
            let now = self.log.lock().expect("log").len();
            if now == last || Instant::now() > deadline {
                break;
            }
            last = now;
        }
        self.log.lock().expect("log").clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory, in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// Samples the server's resident memory every 5 ms until the sampler is stopped.
    pub fn sample_peak_rss(&self) -> PeakRss {
        PeakRss::start(self.pid())
    }

    /// Sends SIGTERM, and waits (at most `limit`) for the process to exit.
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().await.expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A plain-text endpoint such as /metrics.
    pub async fn get_text(&self, path: &str) -> String {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("text body")
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self.http.post(self.url(path)).json(body).send().await.expect("POST");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Waits for /health, and for every model to leave the `loading` state.
    async fn wait_until_loaded(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(
                Instant::now() < deadline,
                "the server did not come up; log:\n{}",
                self.log()
            );
            // /health, not /models: it stays open when Basic auth is on.
            if let Ok(r) = self.http.get(self.url("/health")).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["models"]["loading"] == 0
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A process's resident memory, in KiB (from /proc; 0 if it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse().ok())
        })
        .unwrap_or(0)
}

/// The peak resident memory of a process over a stretch of time, sampled on a thread of its
/// own (so that it catches what an await between two samples would miss).
pub struct PeakRss {
    before: u64,
    peak: Arc<std::sync::atomic::AtomicU64>,
    sampling: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl PeakRss {
    pub fn start(pid: u32) -> PeakRss {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let before = rss_kib(pid);
        let peak = Arc::new(AtomicU64::new(before));
        let sampling = Arc::new(AtomicBool::new(true));
        let thread = {
            let (peak, sampling) = (Arc::clone(&peak), Arc::clone(&sampling));
            std::thread::spawn(move || {
                while sampling.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        PeakRss {
            before,
            peak,
            sampling,
            thread,
        }
    }

    /// How far above its level at the start the memory went, in MiB.
    pub fn stop(self) -> f64 {
        use std::sync::atomic::Ordering;
        self.sampling.store(false, Ordering::Relaxed);
        self.thread.join().expect("the sampler");
        self.peak.load(Ordering::Relaxed).saturating_sub(self.before) as f64 / 1024.0
    }
}

/// An HTTP Basic `Authorization` header for `user:pass`.
pub fn basic(user_pass: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass))
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves a folder over HTTP on a loopback port, on its own thread, until the test ends.
pub fn serve_dir(dir: PathBuf) -> SocketAddr {
    serve(warp::fs::dir(dir))
}

/// Serves a warp filter on a loopback port, on its own thread, until the test ends.
pub fn serve<F>(filter: F) -> SocketAddr
where
    F: warp::Filter + Clone + Send + Sync + 'static,
    F::Extract: warp::Reply,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send addr");
            warp::serve(filter).incoming(listener).run().await;
        });
    });
    rx.recv().expect("server address")
}

pub const RECT_CONFIG: &str = r#"<View>
  <Image name="image" value="$image" zoom="true"/>
  <RectangleLabels name="label" toName="image">
    <Label value="circle"/>
    <Label value="square"/>
    <Label value="triangle"/>
  </RectangleLabels>
</View>"#;

/// Puts a copy of `src` in `dir` as `name` the way `mv` from the same file system does:
/// written under a hidden temporary name, then renamed, atomically.
pub fn move_into_place(src: &Path, dir: &Path, name: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::copy(src, &tmp).expect("copy to temp");
    std::fs::rename(&tmp, dir.join(name)).expect("rename");
}

/// A label config with these control tags (`(tag, name)`, e.g. `("PolygonLabels", "outline")`)
/// on one image, each labelling the fixture models' three shapes.
pub fn shapes_config(tags: &[(&str, &str)]) -> String {
    let controls: String = tags
        .iter()
        .map(|(tag, name)| {
            format!(
                r#"<{tag} name="{name}" toName="image"><Label value="circle"/><Label value="square"/><Label value="triangle"/></{tag}>"#
            )
        })
        .collect();
    format!(r#"<View><Image name="image" value="$image"/>{controls}</View>"#)
}

/// A /predict body shaped like the one Label Studio 1.23.2 sends (see the captures).
pub fn predict_body(image_urls: &[String], project: &str, label_config: &str) -> Value {
    let tasks: Vec<Value> = image_urls
        .iter()
        .enumerate()
        .map(|(i, url)| {
            serde_json::json!({
                "id": i + 1, "data": {"image": url}, "meta": {},
                "created_at": "2026-11-27T17:33:42.948054Z", "updated_at": "2026-11-27T17:33:42.948060Z",
                "is_labeled": false, "overlap": 1, "inner_id": i + 1, "total_annotations": 0,
                "cancelled_annotations": 0, "total_predictions": 0, "comment_count": 0,
                "unresolved_comment_count": 0, "last_comment_updated_at": null, "project": 1,
                "updated_by": null, "file_upload": i + 1, "comment_authors": [], "annotations": [], "predictions": []
            })
        })
        .collect();
    serde_json::json!({
        "tasks": tasks, "project": project, "label_config": label_config,
        "params": {"login": null, "password": null, "context": null}
    })
}

/// A detection as a test compares it: class name, score, box corners in original pixels.
#[derive(Debug, Clone)]
pub struct Det {
    pub class: String,
    pub score: f64,
    pub xyxy: [f64; 4],
}

/// The rectangles of one prediction, converted back from percent to pixels.
pub fn dets_of(prediction: &Value) -> Vec<Det> {
    prediction["result"]
        .as_array()
        .expect("result list")
        .iter()
        .map(det_of)
        .collect()
}

/// One rectangle region, converted back from percent to pixels.
pub fn det_of(r: &Value) -> Det {
    let (w, h) = (
        r["original_width"].as_f64().expect("width"),
        r["original_height"].as_f64().expect("height"),
    );
    let v = &r["value"];
    let x = v["x"].as_f64().expect("x") * w / 100.0;
    let y = v["y"].as_f64().expect("y") * h / 100.0;
    let bw = v["width"].as_f64().expect("w") * w / 100.0;
    let bh = v["height"].as_f64().expect("h") * h / 100.0;
    Det {
        class: v["rectanglelabels"][0].as_str().expect("label").to_string(),
        score: r["score"].as_f64().expect("score"),
        xyxy: [x, y, x + bw, y + bh],
    }
}

pub fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct MatchStats {
    pub reference: usize,
    pub matched: usize,
    pub ours: usize,
    pub min_iou: f64,
    pub max_conf_diff: f64,
}

impl MatchStats {
    pub fn extra(&self) -> usize {
        self.ours - self.matched
    }
    pub fn matched_ratio(&self) -> f64 {
        if self.reference == 0 {
            1.0
        } else {
            self.matched as f64 / self.reference as f64
        }
    }
    pub fn extra_ratio(&self) -> f64 {
        if self.reference == 0 {
            0.0
        } else {
            self.extra() as f64 / self.reference as f64
        }
    }
}

/// Greedy matching: each reference detection takes the unused one of ours with the same
/// class and the highest IoU; it counts when IoU >= `min_iou` and |conf diff| <= `max_conf`.
pub fn match_dets(reference: &[Det], ours: &[Det], min_iou: f64, max_conf: f64, stats: &mut MatchStats) {
    let mut used = vec![false; ours.len()];
    stats.reference += reference.len();
    stats.ours += ours.len();
    for r in reference {
        let best = ours
            .iter()
            .enumerate()
            .filter(|(i, o)| !used[*i] && o.class == r.class)
            .map(|(i, o)| (i, iou(&r.xyxy, &o.xyxy), (r.score - o.score).abs()))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((i, iou, dconf)) = best
            && iou >= min_iou
            && dconf <= max_conf
        {
            used[i] = true;
            stats.matched += 1;
            stats.min_iou = if stats.matched == 1 {
                iou
            } else {
                stats.min_iou.min(iou)
            };
            stats.max_conf_diff = stats.max_conf_diff.max(dconf);
        }
    }
}

/// The reference detections of one image from a `reference_<model>.json`.
pub fn reference_dets(image: &Value) -> Vec<Det> {
    image["detections"]
        .as_array()
        .expect("detections")
        .iter()
        .map(|d| {
            let b = &d["box_xyxy"];
            Det {
                class: d["class_name"].as_str().expect("class").to_string(),
                score: d["confidence"].as_f64().expect("confidence"),
                xyxy: [0, 1, 2, 3].map(|i| b[i].as_f64().expect("coordinate")),
            }
        })
        .collect()
}

/// Every image of the eval set `fixtures/<eval_set>` in one /predict to `server`, with
/// Ultralytics' reference for `model` (`reference_<model>.json`); one result per image, in order.
pub async fn predict_eval_set(server: &Server, eval_set: &str, model: &str, config: &str) -> (Value, Vec<Value>) {
    let dir = fixtures().join(eval_set);
    let images = serve_dir(dir.join("images"));
    let reference = load_json(&dir.join(format!("reference_{}", model.replace(".onnx", ".json"))));
    let entries = reference["images"].as_array().expect("images");
    let urls: Vec<String> = entries
        .iter()
        .map(|e| format!("http://{images}/{}", e["file_name"].as_str().expect("file name")))
        .collect();
    let (status, body) = server.post("/predict", &predict_body(&urls, "1", config)).await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().expect("results").clone();
    assert_eq!(results.len(), entries.len(), "one result per task");
    (reference, results)
}

pub fn load_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read json")).expect("parse json")
}

/// The ONNX Runtime environment, as the server starts it, with these extra flags.
pub fn runtime(extra: &[&str]) -> ls_ml_backend::testing::Runtime {
    use clap::Parser as _;
    let mut args = vec!["ls-ml-backend".to_string()];
    // scripts/cuda-check.sh points ORT_DYLIB_PATH at the GPU build; otherwise the vendored one.
    if std::env::var_os("ORT_DYLIB_PATH").is_none() {
        args.push("--ort-dylib-path".into());
        args.push(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../vendor/onnxruntime/libonnxruntime.so")
                .display()
                .to_string(),
        );
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    ls_ml_backend::testing::Runtime::init(&ls_ml_backend::Config::parse_from(args).runtime_settings())
        .expect("ONNX Runtime starts")
}

/// Decodes every RLE with label-studio-sdk's `brush.decode_rle` (the installed Label Studio's
/// own SDK) and returns the length and SHA-256 of each output.
pub fn sdk_decode(rles: &[Vec<u8>]) -> Vec<(usize, String)> {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-ls/bin/python");
    assert!(
        python.is_file(),
        "label-studio-sdk is not installed: run scripts/setup-label-studio.sh"
    );
    let dir = tempfile::tempdir().expect("temp");
    let input = dir.path().join("rles.json");
    std::fs::write(&input, serde_json::to_vec(rles).expect("json")).expect("write");
    let script = r#"
import hashlib, json, sys
from label_studio_sdk.converter.brush import decode_rle
for rle in json.load(open(sys.argv[1])):
    out = bytes(decode_rle(rle).astype("uint8"))
    print(len(out), hashlib.sha256(out).hexdigest())
"#;
    let output = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(&input)
        .output()
        .expect("run python");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| {
            let (n, h) = l.split_once(' ').expect("two fields");
            (n.parse().expect("length"), h.to_string())
        })
        .collect()
}

/// A `brushlabels` region's RLE bytes.
pub fn rle_of(region: &Value) -> Vec<u8> {
    region["value"]["rle"]
        .as_array()
        .expect("rle")
        .iter()
        .map(|v| v.as_u64().expect("byte") as u8)
        .collect()
}

/// A `brushlabels` region's mask, one bool per pixel, decoded with our decoder (Label Studio's
/// RLE holds RGBA: the alpha byte says foreground); asserts it covers exactly `width * height`.
pub fn brush_mask(region: &Value, width: usize, height: usize) -> Vec<bool> {
    let bytes = labelstudio_protocol::brush::decode(&rle_of(region)).expect("our RLE decodes");
    assert_eq!(bytes.len(), width * height * 4, "the mask is exactly the image's size");
    bytes.chunks(4).map(|px| px[3] > 0).collect()
}

/// The regions of one type in a prediction.
pub fn regions_of<'a>(prediction: &'a Value, kind: &str) -> Vec<&'a Value> {
    prediction["result"]
        .as_array()
        .expect("result")
        .iter()
        .filter(|r| r["type"] == kind)
        .collect()
}

/// IoU of two masks of the same size; two empty masks match (1.0).
pub fn mask_iou(a: &[bool], b: &[bool]) -> f64 {
    let (mut inter, mut union) = (0usize, 0usize);
    for (x, y) in a.iter().zip(b) {
        inter += (*x && *y) as usize;
        union += (*x || *y) as usize;
    }
    if union == 0 { 1.0 } else { inter as f64 / union as f64 }
}
