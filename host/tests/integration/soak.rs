//! Soak: clients send requests without pause while a model is swapped at intervals. No
//! request may fail, and the server's memory must stop growing. Two mixes:
//! - 8 clients of detection and segmentation;
//! - detection, segmentation, SAM clicks and video tracking, a project prediction job into a
//!   real Label Studio again and again, and the attacks of docs/security.md beside them.
//!
//! CI runs a short version (LS_ML_SOAK_SECONDS, default 20). The long one is
//! `scripts/soak.sh`, whose latest result is in docs/soak.md.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use crate::common::*;
use serde_json::Value;

fn seconds(var: &str, default: u64) -> Duration {
    Duration::from_secs(std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_clients_with_model_swaps_never_fail_and_memory_levels_off() {
    let duration = seconds("LS_ML_SOAK_SECONDS", 20);
    let swap_every = seconds("LS_ML_SOAK_SWAP_SECONDS", (duration.as_secs() / 4).max(5));
    let images = serve_dir(eval_images());
    let server = Server::start_with_plugins(
        &[
            ("yolov8n-shapes-det-320.onnx", "1.onnx"),
            ("yolov8n-shapes-seg-320.onnx", "2.onnx"),
        ],
        &[],
        &["yolov8_detect", "yolov8_seg"],
    )
    .await;
    let names: Vec<String> = std::fs::read_dir(eval_images())
        .expect("images")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();

    let config = shapes_config(&[
        ("RectangleLabels", "box"),
        ("PolygonLabels", "outline"),
        ("BrushLabels", "mask"),
    ]);
    let running = Arc::new(AtomicBool::new(true));
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (running, done, failed) = (Arc::clone(&running), Arc::clone(&done), Arc::clone(&failed));
            let (http, url, names, config) = (
                reqwest::Client::new(),
                server.url("/predict"),
                names.clone(),
                config.clone(),
            );
            tokio::spawn(async move {
                let mut i = c;
                while running.load(Ordering::SeqCst) {
                    let project = if i % 2 == 0 { "1.1" } else { "2.1" };
                    let urls: Vec<String> = (0..2)
                        .map(|k| format!("http://{images}/{}", names[(i * 2 + k) % names.len()]))
                        .collect();
                    let ok = match http
                        .post(&url)
                        .json(&predict_body(&urls, project, &config))
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 200 => {
                            r.json::<Value>()
                                .await
                                .ok()
                                .and_then(|v| v["results"].as_array().map(Vec::len))
                                == Some(2)
                        }
                        _ => false,
                    };
                    if ok {
                        done.fetch_add(1, Ordering::SeqCst);
                    } else {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                    i += 8;
                }
            })
        })
        .collect();

    let soaked = swap_and_sample(&server, duration, swap_every).await;
    running.store(false, Ordering::SeqCst);
    for client in clients {
        client.await.expect("client");
    }
    let (done, failed) = (done.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    report(&format!(
        "soak: {:.0} s, 8 clients, det + seg, {} model swaps: {done} requests ({:.1}/s), {failed} failed; {}",
        duration.as_secs_f64(),
        soaked.swaps,
        done as f64 / duration.as_secs_f64(),
        soaked.memory_summary()
    ));
    soaked.write_samples();
    assert_eq!(failed, 0, "no request fails");
    assert!(done > 20, "the clients kept asking ({done})");
    soaked.check();
}

/// What the soak's main loop saw: the server's memory every 0.5 s (seconds, KiB) and how often
/// the model was swapped.
struct Soaked {
    samples: Vec<(f64, u64)>,
    swaps: usize,
}

/// Swaps `1.onnx` between two builds of the detector every `swap_every` for `duration`,
/// sampling the server's memory.
async fn swap_and_sample(server: &Server, duration: Duration, swap_every: Duration) -> Soaked {
    let dir = server.models_dir.path();
    let started = Instant::now();
    let (mut samples, mut swaps, mut next_swap) = (Vec::new(), 0, started + swap_every);
    while started.elapsed() < duration {
        tokio::time::sleep(Duration::from_millis(500)).await;
        samples.push((started.elapsed().as_secs_f64(), server.rss_kib()));
        if Instant::now() >= next_swap {
            let fixture = if swaps % 2 == 0 {
                "yolov8n-shapes-det-320-dynamic.onnx"
            } else {
                "yolov8n-shapes-det-320.onnx"
            };
            move_into_place(&fixture_model(fixture), dir, "1.onnx");
            swaps += 1;
            next_swap += swap_every;
        }
    }
    Soaked { samples, swaps }
}

impl Soaked {
    /// Memory after warm-up: the peak of each half of the samples taken after the first half
    /// (allocator arenas and ONNX Runtime's buffers grow to their working size first), in MiB.
    fn early_and_late(&self) -> (f64, f64) {
        let warm: Vec<u64> = self.samples.iter().skip(self.samples.len() / 2).map(|s| s.1).collect();
        let (early, late) = warm.split_at(warm.len() / 2);
        let peak = |s: &[u64]| s.iter().copied().max().unwrap_or(0) as f64 / 1024.0;
        (peak(early), peak(late))
    }

    fn memory_summary(&self) -> String {
        let (early, late) = self.early_and_late();
        format!(
            "RSS peak {early:.1} MiB early vs {late:.1} MiB late (after warm-up), {:.1} MiB at the end",
            self.samples.last().map_or(0.0, |s| s.1 as f64 / 1024.0)
        )
    }

    /// The samples as CSV to the file LS_ML_SOAK_REPORT names (scripts/soak.sh sets it).
    fn write_samples(&self) {
        if let Ok(path) = std::env::var("LS_ML_SOAK_REPORT") {
            let rss: Vec<String> = self
                .samples
                .iter()
                .map(|(t, kib)| format!("{t:.1},{:.1}", *kib as f64 / 1024.0))
                .collect();
            std::fs::write(&path, format!("seconds,rss_mib\n{}\n", rss.join("\n")))
                .unwrap_or_else(|e| panic!("writing {path}: {e}"));
        }
    }

    /// The model was swapped, and memory stopped growing.
    fn check(&self) {
        assert!(self.swaps >= 2, "the model was swapped ({})", self.swaps);
        let (early, late) = self.early_and_late();
        assert!(
            late <= early * 1.2 + 24.0,
            "memory keeps growing: {early:.1} MiB -> {late:.1} MiB"
        );
    }
}

/// What a worker of the mixed soak did: requests that went as they should, and those that
/// did not (a failed prediction, or an attack that got through).
#[derive(Default)]
struct Tally {
    done: AtomicUsize,
    failed: AtomicUsize,
}

impl Tally {
    fn count(&self, ok: bool) {
        if ok {
            self.done.fetch_add(1, Ordering::SeqCst);
        } else {
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn get(&self) -> (usize, usize) {
        (self.done.load(Ordering::SeqCst), self.failed.load(Ordering::SeqCst))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs Label Studio and ffmpeg (scripts/setup-label-studio.sh, scripts/setup-ffmpeg.sh); scripts/test.sh runs it"]
async fn mixed_load_with_a_prediction_job_and_attacks_never_fails_and_memory_levels_off() {
    use crate::common::label_studio::{LEGACY_TOKEN, LabelStudio};
    let duration = seconds("LS_ML_SOAK_SECONDS", 20);
    let swap_every = seconds("LS_ML_SOAK_SWAP_SECONDS", (duration.as_secs() / 4).max(5));
    let ls = LabelStudio::get().await;
    let project = ls.create_project("soak: a prediction job", RECT_CONFIG).await;
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(eval_images())
        .expect("images")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert_eq!(ls.upload(project, &files).await, files.len());

    let models = tempfile::tempdir().expect("models");
    for (fixture, name) in [
        ("yolov8n-shapes-det-320.onnx", "1.onnx".to_string()),
        ("yolov8n-shapes-seg-320.onnx", "2.onnx".to_string()),
        ("yolov8n-shapes-det-320.onnx", format!("{project}.onnx")),
        ("sam-tiny.encoder.onnx", "sam-tiny.encoder.onnx".to_string()),
        ("sam-tiny.decoder.onnx", "sam-tiny.decoder.onnx".to_string()),
    ] {
        std::fs::copy(fixture_model(fixture), models.path().join(name)).expect("copy");
    }
    let state = tempfile::tempdir().expect("state");
    let videos = fixtures().join("video");
    let server = Arc::new(
        Server::start_in(
            models,
            plugins_dir(&["yolov8_detect", "yolov8_seg", "sam"]),
            &[
                ("LABEL_STUDIO_URL", ls.url.as_str()),
                ("LABEL_STUDIO_API_KEY", LEGACY_TOKEN),
                ("LOCAL_FILES_DOCUMENT_ROOT", videos.to_str().expect("utf-8")),
                ("ML_STATE_DIR", state.path().to_str().expect("utf-8")),
                ("ML_HEADER_TIMEOUT", "3"),
                ("ML_MAX_CONNECTIONS_PER_CLIENT", "16"),
            ],
        )
        .await,
    );
    ls.connect(project, &server.url("")).await;
    let images = serve_dir(eval_images());
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_name()?.to_str().map(str::to_string))
        .collect();
    let task_count = files.len() as u64;
    let running = Arc::new(AtomicBool::new(true));
    let tallies: [(&str, Arc<Tally>); 5] = [
        ("det + seg", Arc::default()),
        ("SAM clicks", Arc::default()),
        ("videos", Arc::default()),
        ("prediction jobs", Arc::default()),
        ("attacks refused", Arc::default()),
    ];
    let tally = |i: usize| Arc::clone(&tallies[i].1);
    let mut workers = Vec::new();

    let config = shapes_config(&[("RectangleLabels", "box"), ("PolygonLabels", "outline")]);
    for c in 0..4 {
        let (running, tally, server, names, config) = (
            Arc::clone(&running),
            tally(0),
            Arc::clone(&server),
            names.clone(),
            config.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut i = c;
            while running.load(Ordering::SeqCst) {
                let project = if i % 2 == 0 { "1.1" } else { "2.1" };
                let urls = [format!("http://{images}/{}", names[i % names.len()])];
                let (status, body) = server.post("/predict", &predict_body(&urls, project, &config)).await;
                tally.count(status == 200 && body["results"].as_array().map(Vec::len) == Some(1));
                i += 4;
            }
        }));
    }
    {
        let (running, tally, server, files) = (Arc::clone(&running), tally(1), Arc::clone(&server), files.clone());
        workers.push(tokio::spawn(async move {
            let mut i = 0;
            while running.load(Ordering::SeqCst) {
                let bytes = std::fs::read(&files[i % files.len()]).expect("image");
                let answer = server
                    .http
                    .post(server.url(&format!("/models/sam-tiny/try?points={},{},1", 60 + i % 100, 80)))
                    .header("content-type", "image/png")
                    .body(bytes)
                    .send()
                    .await;
                tally.count(answer.is_ok_and(|a| a.status() == 200));
                i += 1;
            }
        }));
    }
    {
        let (running, tally, server) = (Arc::clone(&running), tally(2), Arc::clone(&server));
        let config = r#"<View><Video name="video" value="$video"/>
  <VideoRectangle name="box" toName="video" model_tracker="bytetrack"/>
  <Labels name="videoLabels" toName="video"><Label value="circle"/><Label value="square"/><Label value="triangle"/></Labels>
</View>"#;
        workers.push(tokio::spawn(async move {
            while running.load(Ordering::SeqCst) {
                let body = serde_json::json!({"tasks": [{"id": 1, "data": {"video": "/data/local-files/?d=speed.mp4"}}],
                    "project": "1.1", "label_config": config});
                let (status, answer) = server.post("/predict", &body).await;
                tally.count(status == 200 && answer["results"][0]["result"].as_array().is_some_and(|r| !r.is_empty()));
            }
        }));
    }
    {
        // Again and again, predicting every task anew (`force`), into Label Studio.
        let (running, tally, server) = (Arc::clone(&running), tally(3), Arc::clone(&server));
        workers.push(tokio::spawn(async move {
            loop {
                let (status, job) = server
                    .post(
                        "/jobs",
                        &serde_json::json!({"kind": "predict", "project": project, "force": true}),
                    )
                    .await;
                let Some(id) = job["id"].as_u64().filter(|_| status == 201) else {
                    tally.count(false);
                    break;
                };
                let deadline = Instant::now() + Duration::from_secs(600);
                let job = loop {
                    let (_, job) = server.get(&format!("/jobs/{id}")).await;
                    if !matches!(job["state"].as_str(), Some("queued" | "running")) || Instant::now() > deadline {
                        break job;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                };
                tally.count(job["state"] == "succeeded" && job["result"]["written"].as_u64() == Some(task_count));
                if !running.load(Ordering::SeqCst) {
                    break;
                }
            }
        }));
    }
    {
        let (running, tally, server) = (Arc::clone(&running), tally(4), Arc::clone(&server));
        workers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let rebound = format!("evil.example:{}", server.port);
            let mut round = 0u64;
            while running.load(Ordering::SeqCst) {
                // DNS rebinding, a cross-site training, a cross-site /setup, an unknown path.
                let stolen = http
                    .get(server.url("/models/1/file"))
                    .header("host", &rebound)
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                tally.count(stolen.is_ok_and(|s| s == 403));
                let trained = http
                    .post(server.url("/jobs"))
                    .header("content-type", "text/plain")
                    .header("origin", "http://evil.example")
                    .body(format!(r#"{{"kind": "train", "project": {project}}}"#))
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                tally.count(trained.is_ok_and(|s| s == 403));
                let (status, _) = server.get(&format!("/probe-{round}")).await;
                tally.count(status == 404);
                // Half-sent requests from another address, left to the header timeout.
                let port = server.port;
                let held = tokio::task::spawn_blocking(move || {
                    (0..24)
                        .filter_map(|_| {
                            use std::io::Write;
                            let mut s = crate::security::connect_from(std::net::Ipv4Addr::new(127, 0, 0, 2), port)?;
                            s.write_all(b"GET /health HTTP/1.1\r\n").ok()?;
                            Some(s)
                        })
                        .collect::<Vec<_>>()
                })
                .await
                .expect("half-sent");
                tokio::time::sleep(Duration::from_millis(500)).await;
                drop(held);
                round += 1;
            }
        }));
    }

    let soaked = swap_and_sample(&server, duration, swap_every).await;
    running.store(false, Ordering::SeqCst);
    for worker in workers {
        worker.await.expect("worker");
    }
    let counts: Vec<String> = tallies
        .iter()
        .map(|(what, t)| {
            let (done, failed) = t.get();
            format!("{what} {done} ({failed} failed)")
        })
        .collect();
    report(&format!(
        "soak (mixed): {:.0} s, {} model swaps: {}; {}",
        duration.as_secs_f64(),
        soaked.swaps,
        counts.join(", "),
        soaked.memory_summary()
    ));
    soaked.write_samples();
    for (what, t) in &tallies {
        let (done, failed) = t.get();
        assert_eq!(failed, 0, "{what}: {failed} went wrong\n{}", server.log());
        assert!(done > 0, "{what}: nothing was done");
    }
    soaked.check();
}
