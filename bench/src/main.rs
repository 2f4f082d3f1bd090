//! `ls-ml-bench`: how close the backend comes to ONNX Runtime's own limit, and how it
//! compares with Ultralytics, measured in one run on one machine. Run it through
//! `scripts/bench.sh`, which builds in release mode and sets up the Python anchor.
//!
//! 1. The limit: `session.run` on a prepared tensor, one session x 2 threads, and two
//!    sessions x 1 thread in parallel.
//! 2. The pipeline's stages in-process: fetch (loopback), decode, letterbox, infer,
//!    decode + NMS, JSON.
//! 3. The real server over HTTP: latency p50/p95/p99 and throughput, at concurrency 1, 2, 4
//!    and 8, with 1 and 16 tasks per request, for eval-a images and for 1920x1080 JPEGs; one
//!    100-task request; the server's peak RSS with detection and segmentation loaded.
//! 4. The Python anchor: Ultralytics `YOLO(onnx).predict` on the same files, if installed.
//! 5. Dynamic batching: the dynamic-batch model at ML_MAX_BATCH 1, 4 and 16, 16-task
//!    requests from 4 clients (`--only-batching` runs just this; with ML_PROVIDER=cuda it
//!    measures the GPU).
//!
//! Prints a table with the ratios, writes `results.json` and `chart.svg` into `--out`.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::Parser;
use labelstudio_protocol::{label_config::LabelConfig, results};
use ls_ml_backend::{
    Config,
    testing::{self as imaging, Runtime},
};
use plugin_api::{FrameOutput, ImageRef, Params, TensorRef};
use serde_json::{Value, json};
use yolov8_common::{Letterbox, box_instance, detect};

#[derive(Parser)]
struct Args {
    /// Repository root (fixtures, scripts).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// Where results.json and chart.svg go.
    #[arg(long, default_value = "docs/bench")]
    out: PathBuf,
    /// Seconds of load per server configuration.
    #[arg(long, default_value_t = 4)]
    seconds: u64,
    /// Python with ultralytics and onnxruntime, for the anchor (skipped if missing).
    #[arg(long, default_value = ".venv-fixtures/bin/python")]
    python: PathBuf,
    /// Write the server's log (info level: one line per request with its stage times) here,
    /// to see where the time goes. Logging costs a little time itself.
    #[arg(long)]
    server_log: Option<PathBuf>,
    /// Only these image sets (eval-a, 1080p), task counts and client counts.
    #[arg(long, value_delimiter = ',', default_value = "eval-a,1080p")]
    sets: Vec<String>,
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    tasks: Vec<usize>,
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    clients: Vec<usize>,
    /// Paired rounds for the goal ratios.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Measure dynamic batching only (ML_MAX_BATCH 1, 4, 16) and print its table.
    #[arg(long)]
    only_batching: bool,
}

const CONFIG: &str = r#"<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">
<Label value="circle"/><Label value="square"/><Label value="triangle"/></RectangleLabels></View>"#;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(mut ms: Vec<f64>) -> (f64, f64, f64) {
    ms.sort_by(f64::total_cmp);
    (percentile(&ms, 0.5), percentile(&ms, 0.95), percentile(&ms, 0.99))
}

fn images(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    Ok(files)
}

/// Serves a folder on loopback from its own thread.
fn serve(dir: PathBuf) -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            // With TCP_NODELAY, as nginx (in Label Studio's image) sends by default: without it
            // the stand-in would add 40 ms delayed-ACK stalls that a real server does not.
            let listener = ls_ml_backend::testing::bind(([127, 0, 0, 1], 0).into()).expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send");
            warp::serve(warp::fs::dir(dir)).incoming(listener).run().await;
        });
    });
    rx.recv().expect("address")
}

/// 1920x1080 JPEGs (quality 90) made from eval-a images, as a camera would send them.
fn full_hd(sources: &[PathBuf], dir: &Path) -> anyhow::Result<()> {
    for (i, src) in sources.iter().take(10).enumerate() {
        let image = image::open(src)?.resize_exact(1920, 1080, image::imageops::FilterType::Triangle);
        let mut out = std::fs::File::create(dir.join(format!("hd_{i:02}.jpg")))?;
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&image.to_rgb8())?;
    }
    Ok(())
}

/// ONNX Runtime on its own, with its default options: `session.run` on a prepared tensor,
/// called from the measuring threads themselves. One session x 2 threads, and two sessions x
/// 1 thread.
struct Raw {
    one: Mutex<ort::session::Session>,
    two: [Mutex<ort::session::Session>; 2],
    shape: Vec<i64>,
    data: Vec<f32>,
    name: String,
}

impl Raw {
    fn new(env: &ort::environment::Environment, model: &Path, tensor: &plugin_api::Tensor) -> anyhow::Result<Self> {
        let bytes = std::fs::read(model)?;
        let session = |threads: usize| -> anyhow::Result<ort::session::Session> {
            ort::session::Session::builder(env)
                .and_then(|b| b.with_intra_threads(threads).map_err(Into::into))
                .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
                // Its threads stop spinning when a run ends, so that they do not take the cores
                // from the server's request that follows it (`alternated`); the run itself is
                // as fast either way (measured: within 0.06 ms).
                .and_then(|b| {
                    b.with_config_entry("session.force_spinning_stop", "1")
                        .map_err(Into::into)
                })
                .and_then(|mut b| b.commit_from_memory(&bytes))
                .map_err(|e| anyhow::anyhow!("{e}"))
        };
        Ok(Self {
            one: Mutex::new(session(2)?),
            two: [Mutex::new(session(1)?), Mutex::new(session(1)?)],
            shape: tensor.shape.to_vec(),
            data: tensor.values::<f32>()?.to_vec(),
            name: tensor.name.to_string(),
        })
    }

    fn run(&self, session: &Mutex<ort::session::Session>) -> anyhow::Result<()> {
        let mut session = session.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        let input = ort::value::TensorRef::from_array_view((self.shape.clone(), self.data.as_slice()))?;
        let outputs = session.run(ort::inputs![self.name.as_str() => input])?;
        std::hint::black_box(outputs.len());
        Ok(())
    }

    /// p50 (ms) of `runs` calls on the 1 x 2 session, and its calls per second.
    fn p50(&self, runs: usize) -> anyhow::Result<(f64, f64)> {
        for _ in 0..5 {
            self.run(&self.one)?;
        }
        let mut ms = Vec::new();
        let started = Instant::now();
        for _ in 0..runs {
            let t = Instant::now();
            self.run(&self.one)?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let per_s = runs as f64 / started.elapsed().as_secs_f64();
        Ok((summary(ms).0, per_s))
    }

    /// Calls per second of two threads, each on its own 1 x 1 session.
    fn parallel(&self, span: Duration) -> f64 {
        let deadline = Instant::now() + span;
        let runs: u64 = std::thread::scope(|scope| {
            let workers: Vec<_> = self
                .two
                .iter()
                .map(|session| {
                    scope.spawn(move || {
                        let mut n = 0u64;
                        while Instant::now() < deadline {
                            if self.run(session).is_ok() {
                                n += 1;
                            }
                        }
                        n
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
        });
        runs as f64 / span.as_secs_f64()
    }
}

/// Each round: the limit's p50 (1 session x 2 threads) and the server's p50 at 1 client, in
/// turns, for eval-a and for 1080p images; the limit's throughput (2 sessions x 1 thread) and
/// the server's best throughput (1-task requests from 8 clients, 16-task requests from 4).
async fn paired_rounds(
    raw: &Raw,
    port: u16,
    eval_urls: &[String],
    hd_urls: &[String],
    count: usize,
) -> anyhow::Result<Vec<Value>> {
    let mut rounds = Vec::new();
    for _ in 0..count.max(1) {
        let (raw_p50, e2e_p50) = alternated(raw, port, eval_urls, 60).await?;
        let (raw_hd_p50, hd_p50) = alternated(raw, port, hd_urls, 60).await?;
        let raw_per_s = raw.parallel(Duration::from_secs(2));
        let many = load(port, eval_urls, 8, 1, 2).await;
        let batched = load(port, eval_urls, 4, 16, 2).await;
        let rate = |v: &Value| v["images_per_s"].as_f64().unwrap_or(0.0);
        let best = rate(&many).max(rate(&batched));
        rounds.push(json!({
            "raw_p50_ms": raw_p50, "e2e_p50_ms": e2e_p50,
            "raw_p50_beside_1080p_ms": raw_hd_p50, "hd_p50_ms": hd_p50,
            "raw_per_s": raw_per_s, "e2e_best_per_s": best,
            "p50_vs_raw": e2e_p50 / raw_p50, "p50_1080p_vs_raw": hd_p50 / raw_hd_p50,
            "throughput_vs_raw": best / raw_per_s,
        }));
    }
    Ok(rounds)
}

struct Limit {
    p50_intra2_ms: f64,
    throughput_intra2: f64,
    throughput_2x1: f64,
}

fn measure_limit(raw: &Raw) -> anyhow::Result<Limit> {
    let (p50, throughput_intra2) = raw.p50(200)?;
    Ok(Limit {
        p50_intra2_ms: p50,
        throughput_intra2,
        throughput_2x1: raw.parallel(Duration::from_secs(5)),
    })
}

/// Per-stage p50s (ms) of the in-process pipeline over the eval-a images.
async fn measure_stages(
    runtime: &Runtime,
    model: &Path,
    eval: &[PathBuf],
    images: std::net::SocketAddr,
) -> anyhow::Result<Value> {
    let bytes = std::fs::read(model)?;
    let loaded = runtime.load_with(model, &bytes, 1, 2, 0)?;
    let info = loaded.info.clone();
    let input = yolov8_common::model::image_input(&info)?;
    let class_names = info
        .metadata("names")
        .and_then(plugin_api::sdk::parse_names)
        .context("the model names its classes")?;
    let classes = Some(class_names.len());
    let config = LabelConfig::parse(CONFIG)?;
    let control = &config.controls[0];
    let http = reqwest::Client::new();
    let mut stages: [Vec<f64>; 6] = Default::default();
    let params = Params::default();
    for round in 0..4 {
        for path in eval {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let t = Instant::now();
            let body = http
                .get(format!("http://{images}/{name}"))
                .send()
                .await?
                .bytes()
                .await?;
            let fetch = t.elapsed();
            let t = Instant::now();
            let image = imaging::decode(&body, 64_000_000)?;
            let decode = t.elapsed();
            let t = Instant::now();
            let letterbox = Letterbox::plan(image.width, image.height, input.width, input.height)?;
            let tensor = letterbox.tensor(&input.name, ImageRef::new(image.width, image.height, &image.pixels))?;
            let prepare = t.elapsed();
            let t = Instant::now();
            // The server's path: the session's own thread, awaited without blocking this one.
            let outputs = loaded.pool.run(vec![tensor]).await?;
            let infer = t.elapsed();
            let t = Instant::now();
            let views: Vec<TensorRef<'_>> = outputs.iter().map(|o| o.view()).collect();
            let spec = yolov8_common::HeadSpec {
                classes,
                extra: 0,
                end2end: None,
            };
            let (_, kept) = detect(&spec, &views, &params)?;
            let frame = FrameOutput::instances(kept.iter().map(|d| box_instance(&letterbox, d)).collect());
            let nms = t.elapsed();
            let t = Instant::now();
            let size = results::ImageSize {
                width: image.width,
                height: image.height,
            };
            let found = results::Found {
                frame: &frame,
                class_names: &class_names,
                keypoint_names: &[],
                size,
            };
            let result = results::build(&found, std::slice::from_ref(control), params.conf, 1.0);
            let json = serde_json::to_vec(
                &json!({ "results": [labelstudio_protocol::region::Prediction::new(result, "v")] }),
            )?;
            std::hint::black_box(json);
            let to_json = t.elapsed();
            if round > 0 {
                for (i, d) in [fetch, decode, prepare, infer, nms, to_json].iter().enumerate() {
                    stages[i].push(d.as_secs_f64() * 1e3);
                }
            }
        }
    }
    let p50 = |v: &Vec<f64>| summary(v.clone()).0;
    Ok(json!({
        "fetch": p50(&stages[0]), "decode": p50(&stages[1]), "letterbox": p50(&stages[2]),
        "infer": p50(&stages[3]), "decode_nms": p50(&stages[4]), "json": p50(&stages[5]),
    }))
}

struct ServerProcess(Child, u16);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl ServerProcess {
    fn peak_rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.0.id()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            })
            .map_or(f64::NAN, |kib| kib / 1024.0)
    }
}

async fn start_server(repo: &Path, models: &Path, log: Option<&Path>) -> anyhow::Result<ServerProcess> {
    start_server_with(repo, models, log, 2, &[]).await
}

async fn start_server_with(
    repo: &Path,
    models: &Path,
    log: Option<&Path>,
    ready: u64,
    env: &[(&str, String)],
) -> anyhow::Result<ServerProcess> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("bench folder")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new(dir.join("ls-ml-backend"))
        .env("ML_BACKEND_ADDR", "127.0.0.1")
        .env("ML_BACKEND_PORT", port.to_string())
        .env("ML_MODELS_DIR", models)
        .env("ML_PLUGINS_DIR", dir)
        // scripts/cuda-check.sh points it at the GPU build.
        .env(
            "ORT_DYLIB_PATH",
            std::env::var_os("ORT_DYLIB_PATH")
                .unwrap_or_else(|| repo.join("vendor/onnxruntime/libonnxruntime.so").into()),
        )
        .env("RUST_LOG", if log.is_some() { "info" } else { "warn" })
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(match log {
            Some(path) => Stdio::from(std::fs::File::create(path)?),
            None => Stdio::null(),
        })
        .spawn()
        .context("start target/release/ls-ml-backend (build it: scripts/bench.sh)")?;
    let server = ServerProcess(child, port);
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = http.get(format!("http://127.0.0.1:{port}/health")).send().await
            && let Ok(v) = r.json::<Value>().await
            && v["models"]["loading"] == 0
            && v["models"]["ready"].as_u64() >= Some(ready)
        {
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the server did not come up")
}

/// One `/predict` request with these tasks; whether it succeeded, its answer read whole.
async fn predict(http: &reqwest::Client, port: u16, tasks: Vec<Value>) -> bool {
    let body = json!({"tasks": tasks, "project": "1.1", "label_config": CONFIG});
    match http
        .post(format!("http://127.0.0.1:{port}/predict"))
        .json(&body)
        .send()
        .await
    {
        Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
        _ => false,
    }
}

/// The limit's p50 and the server's p50 at 1 client (1-task requests), measured call by call
/// in turns: one `session.run`, one request, one `session.run`... The machine's speed drifts
/// for minutes at a time, and a drift that falls between two measurements taken one after
/// the other skews their ratio by up to 1.5x; taken in turns, both see the same drift.
async fn alternated(raw: &Raw, port: u16, urls: &[String], calls: usize) -> anyhow::Result<(f64, f64)> {
    const WARM_UP: usize = 5;
    let http = reqwest::Client::new();
    let (mut raw_ms, mut server_ms) = (Vec::new(), Vec::new());
    for i in 0..WARM_UP + calls {
        let t = Instant::now();
        tokio::task::block_in_place(|| raw.run(&raw.one))?;
        let raw_took = t.elapsed();
        let t = Instant::now();
        let task = json!({"id": i, "data": {"image": urls[i % urls.len()]}});
        if !predict(&http, port, vec![task]).await {
            bail!("a /predict request failed while measuring the goal ratios");
        }
        let server_took = t.elapsed();
        if i >= WARM_UP {
            raw_ms.push(raw_took.as_secs_f64() * 1e3);
            server_ms.push(server_took.as_secs_f64() * 1e3);
        }
    }
    Ok((summary(raw_ms).0, summary(server_ms).0))
}

/// One load level: `clients` loops sending requests of `tasks` tasks for `seconds`, after a
/// warm-up. Throughput counts each request's images in proportion to the part of its time
/// that falls inside the window: long requests from clients that started together would
/// otherwise make the count jump by whole requests.
async fn load(port: u16, urls: &[String], clients: usize, tasks: usize, seconds: u64) -> Value {
    let warmup = Instant::now() + Duration::from_millis(700);
    let end = warmup + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            let urls = urls.to_vec();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let (mut ms, mut images, mut failed, mut i) = (Vec::new(), 0.0f64, 0usize, c * 7);
                while Instant::now() < end {
                    let batch: Vec<Value> = (0..tasks)
                        .map(|k| json!({"id": k, "data": {"image": urls[(i + k) % urls.len()]}}))
                        .collect();
                    i += tasks;
                    let started = Instant::now();
                    let ok = predict(&http, port, batch).await;
                    let finished = Instant::now();
                    let inside = finished.min(end).saturating_duration_since(started.max(warmup));
                    if inside.is_zero() {
                        continue;
                    }
                    if !ok {
                        failed += 1;
                        continue;
                    }
                    let took = finished - started;
                    images += tasks as f64 * inside.as_secs_f64() / took.as_secs_f64();
                    if finished <= end && started >= warmup {
                        ms.push(took.as_secs_f64() * 1e3);
                    }
                }
                (ms, images, failed)
            })
        })
        .collect();
    let (mut ms, mut images, mut failed) = (Vec::new(), 0.0, 0);
    for w in workers {
        if let Ok((m, n, f)) = w.await {
            ms.extend(m);
            images += n;
            failed += f;
        }
    }
    let (p50, p95, p99) = summary(ms);
    json!({"clients": clients, "tasks": tasks, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
           "images_per_s": images / seconds as f64, "failed": failed})
}

/// Throughput and latency of 16-task requests from 4 clients on the dynamic-batch model, one
/// server per ML_MAX_BATCH.
async fn measure_batching(repo: &Path, model: &Path, urls: &[String], seconds: u64) -> anyhow::Result<Vec<Value>> {
    let mut rows = Vec::new();
    for max_batch in [1usize, 4, 16] {
        let models = tempfile::tempdir()?;
        std::fs::copy(model, models.path().join("1.onnx"))?;
        let env = [
            ("ML_MAX_BATCH", max_batch.to_string()),
            ("ML_BATCH_WAIT_MS", "2".to_string()),
            // Enough tasks in flight to fill a batch of 16.
            ("ML_TASK_CONCURRENCY", "64".to_string()),
        ];
        let server = start_server_with(repo, models.path(), None, 1, &env).await?;
        let mut row = load(server.1, urls, 4, 16, seconds).await;
        row["max_batch"] = json!(max_batch);
        eprintln!("  {row}");
        rows.push(row);
    }
    Ok(rows)
}

fn print_batching(rows: &[Value]) {
    println!("dynamic batching (dynamic-batch model, 4 clients x 16-task requests, ML_BATCH_WAIT_MS=2):");
    println!("{:>9} {:>9} {:>9} {:>10}", "max_batch", "p50 ms", "p95 ms", "images/s");
    for r in rows {
        println!(
            "{:>9} {:>9.1} {:>9.1} {:>10.1}",
            r["max_batch"].as_u64().unwrap_or(0),
            r["p50_ms"].as_f64().unwrap_or(f64::NAN),
            r["p95_ms"].as_f64().unwrap_or(f64::NAN),
            r["images_per_s"].as_f64().unwrap_or(f64::NAN)
        );
    }
}

fn anchor(python: &Path, repo: &Path, model: &Path, eval: &Path) -> Value {
    if !python.is_file() {
        return json!({"skipped": format!("{} not found: scripts/bench.sh installs ultralytics there", python.display())});
    }
    let script = r#"
import json, os, statistics, sys, time
from ultralytics import YOLO
model, folder = sys.argv[1], sys.argv[2]
files = [os.path.join(folder, f) for f in sorted(os.listdir(folder))]
yolo = YOLO(model, task="detect")
for f in files[:5]:
    yolo.predict(f, verbose=False, device="cpu")
times = []
start = time.perf_counter()
for _ in range(3):
    for f in files:
        t = time.perf_counter()
        yolo.predict(f, verbose=False, device="cpu")
        times.append((time.perf_counter() - t) * 1e3)
total = time.perf_counter() - start
import ultralytics
print(json.dumps({"p50_ms": statistics.median(times), "images_per_s": len(times) / total, "ultralytics": ultralytics.__version__}))
"#;
    let output = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(model)
        .arg(eval)
        .current_dir(repo)
        .output();
    match output {
        // Ultralytics prints its own lines first; the result is the last one.
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| json!({"skipped": "no result line"})),
        Ok(o) => json!({"skipped": String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("failed").to_string()}),
        Err(e) => json!({"skipped": e.to_string()}),
    }
}

fn chart(rows: &[Value]) -> String {
    let (w, h, pad) = (760.0, 320.0, 50.0);
    let series: Vec<(&str, usize, &str)> = vec![
        ("eval-a", 1, "#1f77b4"),
        ("eval-a", 16, "#6baed6"),
        ("1080p", 1, "#d62728"),
        ("1080p", 16, "#fc9272"),
    ];
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="11">"#,
        w * 2.0 + pad,
        h + 40.0
    );
    for (panel, (key, title)) in [
        ("p50_ms", "p50 latency per request (ms)"),
        ("images_per_s", "throughput (images/s)"),
    ]
    .iter()
    .enumerate()
    {
        let x0 = pad + panel as f64 * (w + pad / 2.0);
        let max = rows.iter().filter_map(|r| r[*key].as_f64()).fold(1.0f64, f64::max) * 1.1;
        svg += &format!(r#"<text x="{}" y="14" font-size="13">{title}</text>"#, x0);
        svg += &format!(
            r#"<line x1="{x0}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{x0}" y1="20" x2="{x0}" y2="{}" stroke="black"/>"#,
            h,
            x0 + w - pad,
            h,
            h
        );
        for (i, c) in [1, 2, 4, 8].iter().enumerate() {
            let x = x0 + 20.0 + i as f64 * (w - pad - 40.0) / 3.0;
            svg += &format!(
                r#"<text x="{x}" y="{}" text-anchor="middle">{c} client{}</text>"#,
                h + 14.0,
                if *c > 1 { "s" } else { "" }
            );
        }
        svg += &format!(r#"<text x="{}" y="30" text-anchor="end">{max:.0}</text>"#, x0 - 4.0);
        for (set, tasks, colour) in &series {
            let points: Vec<String> = rows
                .iter()
                .filter(|r| r["images"] == *set && r["tasks"] == *tasks)
                .filter_map(|r| {
                    let i = [1, 2, 4, 8].iter().position(|c| r["clients"] == *c)?;
                    let x = x0 + 20.0 + i as f64 * (w - pad - 40.0) / 3.0;
                    let y = h - r[*key].as_f64()? / max * (h - 30.0);
                    Some(format!("{x:.1},{y:.1}"))
                })
                .collect();
            svg += &format!(
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
                points.join(" ")
            );
        }
    }
    for (i, (set, tasks, colour)) in series.iter().enumerate() {
        svg += &format!(
            r#"<text x="{}" y="{}" fill="{colour}">■ {set}, {tasks} task{} per request</text>"#,
            pad + i as f64 * 190.0,
            h + 32.0,
            if *tasks > 1 { "s" } else { "" }
        );
    }
    svg + "</svg>\n"
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let repo = args.repo.canonicalize()?;
    let fixtures = repo.join("tests/fixtures");
    let det = fixtures.join("models/yolov8n-shapes-det-320.onnx");
    let eval_dir = fixtures.join("eval-a/images");
    let eval = images(&eval_dir)?;
    let hd_dir = tempfile::tempdir()?;
    full_hd(&eval, hd_dir.path())?;
    let eval_server = serve(eval_dir.clone());
    let hd_server = serve(hd_dir.path().to_path_buf());
    let eval_urls: Vec<String> = eval
        .iter()
        .filter_map(|p| Some(format!("http://{eval_server}/{}", p.file_name()?.to_str()?)))
        .collect();
    let dynamic = fixtures.join("models/yolov8n-shapes-det-320-dynamic.onnx");
    if args.only_batching {
        eprintln!("measuring dynamic batching...");
        print_batching(&measure_batching(&repo, &dynamic, &eval_urls, args.seconds).await?);
        return Ok(());
    }

    let config = Config::parse_from([
        "ls-ml-bench",
        "--ort-dylib-path",
        repo.join("vendor/onnxruntime/libonnxruntime.so")
            .to_str()
            .context("path")?,
    ]);
    let runtime = Runtime::init(&config.runtime_settings())?;
    let sample = imaging::decode(&std::fs::read(&eval[0])?, 64_000_000)?;
    let letterbox = Letterbox::plan(sample.width, sample.height, 320, 320)?;
    let tensor = letterbox.tensor("images", ImageRef::new(sample.width, sample.height, &sample.pixels))?;
    eprintln!("measuring ONNX Runtime's own limit...");
    let raw = Raw::new(runtime.environment(), &det, &tensor)?;
    let limit = measure_limit(&raw)?;
    eprintln!("measuring the pipeline's stages in-process...");
    let stages = measure_stages(&runtime, &det, &eval, eval_server).await?;

    eprintln!("measuring the server over HTTP...");
    let models = tempfile::tempdir()?;
    std::fs::copy(&det, models.path().join("1.onnx"))?;
    std::fs::copy(
        fixtures.join("models/yolov8n-shapes-seg-320.onnx"),
        models.path().join("2.onnx"),
    )?;
    let server = start_server(&repo, models.path(), args.server_log.as_deref()).await?;
    let hd_urls: Vec<String> = (0..10).map(|i| format!("http://{hd_server}/hd_{i:02}.jpg")).collect();
    let mut rows = Vec::new();
    for (set, urls) in [("eval-a", &eval_urls), ("1080p", &hd_urls)] {
        if !args.sets.iter().any(|s| s == set) {
            continue;
        }
        for &tasks in &args.tasks {
            for &clients in &args.clients {
                let mut row = load(server.1, urls, clients, tasks, args.seconds).await;
                row["images"] = json!(set);
                eprintln!("  {row}");
                rows.push(row);
            }
        }
    }
    // This machine's speed drifts (shared CPUs): the goal ratios come from rounds that measure
    // ONNX Runtime's limit and the server back to back, each ratio within one round.
    eprintln!("measuring the goal ratios in paired rounds...");
    let paired = paired_rounds(&raw, server.1, &eval_urls, &hd_urls, args.rounds).await?;

    // "Retrieve Predictions" on 100 tasks: one request.
    let batch: Vec<Value> = (0..100)
        .map(|k| json!({"id": k, "data": {"image": eval_urls[k % eval_urls.len()]}}))
        .collect();
    let t = Instant::now();
    reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/predict", server.1))
        .json(&json!({"tasks": batch, "project": "1.1", "label_config": CONFIG}))
        .send()
        .await?
        .bytes()
        .await?;
    let hundred_ms = t.elapsed().as_secs_f64() * 1e3;
    let peak_rss = server.peak_rss_mib();
    drop(server);

    eprintln!("measuring dynamic batching...");
    let batching = measure_batching(&repo, &dynamic, &eval_urls, args.seconds).await?;

    eprintln!("measuring the Python anchor...");
    let anchor = anchor(&args.python, &repo, &det, &eval_dir);

    let median = |key: &str| {
        let mut v: Vec<f64> = paired.iter().filter_map(|r| r[key].as_f64()).collect();
        v.sort_by(f64::total_cmp);
        percentile(&v, 0.5)
    };
    let e2e_p50 = median("e2e_p50_ms");
    let best = median("e2e_best_per_s");
    let ratios = json!({
        "p50_vs_raw (goal <= 1.25)": median("p50_vs_raw"),
        "p50_1080p_vs_raw (goal <= 1.6)": median("p50_1080p_vs_raw"),
        "best_throughput_vs_raw_best (goal >= 0.85)": median("throughput_vs_raw"),
        "hundred_tasks_vs_100x_raw (goal <= 1.2)": hundred_ms / (100.0 * median("raw_p50_ms")),
        "peak_rss_mib (goal <= 200)": peak_rss,
        "p50_vs_ultralytics (goal < 1)": anchor["p50_ms"].as_f64().map(|a| e2e_p50 / a),
        "throughput_vs_ultralytics (goal >= 1.35)": anchor["images_per_s"].as_f64().map(|a| best / a),
    });
    let machine = json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "arch": std::env::consts::ARCH,
        "cpu": std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())),
    });
    let results = json!({
        "machine": machine,
        "limit": {"session_run_p50_ms_1x2": limit.p50_intra2_ms, "per_s_1x2": limit.throughput_intra2, "per_s_2x1": limit.throughput_2x1},
        "stages_p50_ms": stages,
        "paired_rounds": paired,
        "server": rows,
        "hundred_task_request_ms": hundred_ms,
        "peak_rss_mib": peak_rss,
        "anchor": anchor,
        "batching": batching,
        "ratios": ratios,
    });
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(args.out.join("results.json"), serde_json::to_string_pretty(&results)?)?;
    std::fs::write(args.out.join("chart.svg"), chart(&rows))?;

    println!("machine: {machine}");
    println!(
        "limit: session.run p50 {:.2} ms (1 session x 2 threads, {:.1}/s); 2 sessions x 1 thread: {:.1}/s",
        limit.p50_intra2_ms, limit.throughput_intra2, limit.throughput_2x1
    );
    println!("stages p50 (ms): {stages}");
    println!(
        "{:<8} {:>5} {:>7} {:>9} {:>9} {:>9} {:>10}",
        "images", "tasks", "clients", "p50 ms", "p95 ms", "p99 ms", "images/s"
    );
    for r in &rows {
        println!(
            "{:<8} {:>5} {:>7} {:>9.1} {:>9.1} {:>9.1} {:>10.1}",
            r["images"].as_str().unwrap_or(""),
            r["tasks"],
            r["clients"],
            r["p50_ms"].as_f64().unwrap_or(f64::NAN),
            r["p95_ms"].as_f64().unwrap_or(f64::NAN),
            r["p99_ms"].as_f64().unwrap_or(f64::NAN),
            r["images_per_s"].as_f64().unwrap_or(f64::NAN)
        );
    }
    println!("100-task request: {hundred_ms:.0} ms; peak RSS {peak_rss:.0} MiB");
    println!("Ultralytics anchor: {anchor}");
    println!("paired rounds (ratios within a round; the goal ratios are their medians):");
    for r in &paired {
        println!(
            "  raw p50 {:5.2} ms, e2e p50 {:5.2} ms ({:.2}x); raw p50 {:5.2} ms, 1080p p50 {:5.2} ms ({:.2}x); raw 2x1 {:5.1}/s, e2e best {:5.1}/s ({:.2}x)",
            r["raw_p50_ms"].as_f64().unwrap_or(f64::NAN),
            r["e2e_p50_ms"].as_f64().unwrap_or(f64::NAN),
            r["p50_vs_raw"].as_f64().unwrap_or(f64::NAN),
            r["raw_p50_beside_1080p_ms"].as_f64().unwrap_or(f64::NAN),
            r["hd_p50_ms"].as_f64().unwrap_or(f64::NAN),
            r["p50_1080p_vs_raw"].as_f64().unwrap_or(f64::NAN),
            r["raw_per_s"].as_f64().unwrap_or(f64::NAN),
            r["e2e_best_per_s"].as_f64().unwrap_or(f64::NAN),
            r["throughput_vs_raw"].as_f64().unwrap_or(f64::NAN),
        );
    }
    print_batching(&batching);
    println!("ratios: {}", serde_json::to_string_pretty(&ratios)?);
    Ok(())
}
