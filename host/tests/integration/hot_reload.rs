//! Models dropped into, replaced in and removed from the models folder of a running server.

use std::{
    io::Write,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use crate::common::*;
use serde_json::{Value, json};

const DET: &str = "yolov8n-shapes-det-320.onnx";
const DYNAMIC: &str = "yolov8n-shapes-det-320-dynamic.onnx";

/// These tests load models while they measure; one at a time keeps the timings honest.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn start(env: &[(&str, &str)]) -> Server {
    Server::start_in(
        tempfile::tempdir().expect("models dir"),
        plugins_dir(&["yolov8_detect"]),
        env,
    )
    .await
}

fn body(server_images: std::net::SocketAddr, project: &str) -> Value {
    predict_body(
        &[format!("http://{server_images}/eval-a_0000.png")],
        &format!("{project}.1795800822"),
        RECT_CONFIG,
    )
}

/// The model_version of a successful prediction with boxes, or the failure.
async fn predict_version(server: &Server, body: &Value) -> Result<String, (u16, Value)> {
    let (status, answer) = server.post("/predict", body).await;
    let prediction = &answer["results"][0];
    if status == 200 && prediction["result"].as_array().is_some_and(|r| !r.is_empty()) {
        Ok(prediction["model_version"].as_str().expect("version").to_string())
    } else {
        Err((status, answer))
    }
}

async fn model_status(server: &Server, name: &str) -> Value {
    let (_, models) = server.get("/models").await;
    models["models"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == name))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Polls until `check` holds, or fails after `limit` with `what`.
async fn wait_for<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// Writes a file in `chunks` pieces spread over `over`, as a slow copy does.
fn write_slowly(src: &Path, dst: &Path, chunks: usize, over: Duration) {
    let bytes = std::fs::read(src).expect("read model");
    let mut file = std::fs::File::create(dst).expect("create");
    for piece in bytes.chunks(bytes.len().div_ceil(chunks)) {
        file.write_all(piece).expect("write");
        file.flush().expect("flush");
        std::thread::sleep(over / chunks as u32);
    }
}

#[tokio::test]
async fn models_come_and_go_while_the_server_runs() {
    let _serial = SERIAL.lock().await;
    let images = serve_dir(eval_images());
    let server = start(&[]).await;
    let dir = server.models_dir.path().to_path_buf();
    let project1 = body(images, "1");
    let project2 = body(images, "2");
    assert!(predict_version(&server, &project1).await.is_err(), "no model yet");

    // 1. A slow copy: nothing may serve before the write ends, and it serves soon after.
    let writing = Arc::new(AtomicBool::new(true));
    let early = Arc::new(AtomicUsize::new(0));
    let probe = {
        let (writing, early) = (Arc::clone(&writing), Arc::clone(&early));
        let http = reqwest::Client::new();
        let url = server.url("/predict");
        let project1 = project1.clone();
        tokio::spawn(async move {
            while writing.load(Ordering::SeqCst) {
                if let Ok(r) = http.post(&url).json(&project1).send().await
                    && r.status() == 200
                    && writing.load(Ordering::SeqCst)
                {
                    early.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        })
    };
    let (src, dst) = (fixture_model(DET), dir.join("1.onnx"));
    tokio::task::spawn_blocking(move || write_slowly(&src, &dst, 10, Duration::from_secs(2)))
        .await
        .expect("writer");
    writing.store(false, Ordering::SeqCst);
    // How soon is a figure for the report (and scripts/bench.sh); the test asks only that it
    // is served, within a bound that only a hang misses.
    let after_write = wait_for(Duration::from_secs(30), "the slowly copied model serves", || async {
        predict_version(&server, &project1).await.is_ok()
    })
    .await;
    probe.await.expect("probe");
    assert_eq!(
        early.load(Ordering::SeqCst),
        0,
        "nothing served while the file was written"
    );
    report(&format!(
        "hot reload: slow copy (2 s, 10 chunks) served {:.0} ms after the write ended",
        after_write.as_secs_f64() * 1e3
    ));
    let v1 = predict_version(&server, &project1).await.expect("serves");

    // 2. Replaced by another model (cp over it): the version changes.
    std::fs::copy(fixture_model(DYNAMIC), dir.join("1.onnx")).expect("replace");
    let started = Instant::now();
    wait_for(Duration::from_secs(10), "the replacement serves", || async {
        predict_version(&server, &project1).await.is_ok_and(|v| v != v1)
    })
    .await;
    report(&format!(
        "hot reload: cp over a served model, new version served {:.0} ms later",
        started.elapsed().as_secs_f64() * 1e3
    ));
    let v2 = predict_version(&server, &project1).await.expect("serves");
    assert!(v2.starts_with("1-"), "{v2}");

    // A second project's model, for step 5.
    move_into_place(&fixture_model(DET), &dir, "2.onnx");
    wait_for(Duration::from_secs(10), "project 2's model serves", || async {
        predict_version(&server, &project2).await.is_ok()
    })
    .await;

    // 3. Garbage under a new name: it fails, visibly, and nothing else changes.
    std::fs::write(dir.join("junk.onnx"), b"this is not an ONNX model").expect("junk");
    wait_for(Duration::from_secs(10), "junk shows as failed", || async {
        model_status(&server, "junk").await["state"] == "failed"
    })
    .await;
    let junk = model_status(&server, "junk").await;
    assert_eq!(junk["serving"], false, "{junk}");
    assert!(junk["error"].as_str().is_some_and(|e| !e.is_empty()), "{junk}");
    assert_eq!(
        predict_version(&server, &project1).await.ok().as_deref(),
        Some(v2.as_str())
    );

    // 4. A good model overwritten with garbage: the old version keeps serving.
    std::fs::write(dir.join("1.onnx"), b"garbage over a good model").expect("overwrite");
    wait_for(Duration::from_secs(10), "the broken file shows as failed", || async {
        model_status(&server, "1").await["state"] == "failed"
    })
    .await;
    let one = model_status(&server, "1").await;
    assert_eq!(
        (one["serving"].clone(), one["model_version"].clone()),
        (json!(true), json!(v2)),
        "{one}"
    );
    for _ in 0..3 {
        assert_eq!(
            predict_version(&server, &project1).await.ok().as_deref(),
            Some(v2.as_str())
        );
    }

    // 5. Deleted: project 1 gets a clear error, project 2 carries on.
    std::fs::remove_file(dir.join("1.onnx")).expect("delete");
    wait_for(Duration::from_secs(10), "the deleted model is gone", || async {
        model_status(&server, "1").await.is_null()
    })
    .await;
    let (status, answer) = predict_version(&server, &project1)
        .await
        .expect_err("project 1 has no model");
    assert_eq!(status, 404, "{answer}");
    assert!(
        answer["detail"].as_str().is_some_and(|d| d.contains("project 1")),
        "{answer}"
    );
    assert!(
        predict_version(&server, &project2).await.is_ok(),
        "project 2 carries on"
    );
    let log = server.log();
    assert!(log.contains("keeps serving"), "the log says the old version serves on");
}

#[tokio::test]
async fn no_request_fails_while_the_model_is_replaced_under_load() {
    let _serial = SERIAL.lock().await;
    let images = serve_dir(eval_images());
    let server = start(&[]).await;
    let dir = server.models_dir.path().to_path_buf();
    let request = body(images, "1");
    move_into_place(&fixture_model(DET), &dir, "1.onnx");
    let first = wait_for(Duration::from_secs(10), "the first model serves", || async {
        predict_version(&server, &request).await.is_ok()
    })
    .await;
    let det_version = predict_version(&server, &request).await.expect("serves");
    println!("first model after {first:?}");

    let running = Arc::new(AtomicBool::new(true));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (running, http, url, request) = (
                Arc::clone(&running),
                reqwest::Client::new(),
                server.url("/predict"),
                request.clone(),
            );
            tokio::spawn(async move {
                let mut answers = Vec::new();
                while running.load(Ordering::SeqCst) {
                    let r = http.post(&url).json(&request).send().await.expect("request");
                    let status = r.status().as_u16();
                    let v: Value = r.json().await.unwrap_or(Value::Null);
                    let boxes = v["results"][0]["result"].as_array().map_or(0, Vec::len);
                    answers.push((status, v["results"][0]["model_version"].clone(), boxes));
                }
                answers
            })
        })
        .collect();

    let mut versions = vec![det_version.clone()];
    let mut swap_times = Vec::new();
    for i in 0..20 {
        let (fixture, how) = if i % 2 == 0 { (DYNAMIC, "mv") } else { (DET, "cp") };
        let before = predict_version(&server, &request).await.expect("serving");
        let written = Instant::now();
        if how == "mv" {
            move_into_place(&fixture_model(fixture), &dir, "1.onnx");
        } else {
            std::fs::copy(fixture_model(fixture), dir.join("1.onnx")).expect("cp");
        }
        wait_for(Duration::from_secs(15), "the swap", || async {
            predict_version(&server, &request).await.is_ok_and(|v| v != before)
        })
        .await;
        swap_times.push(written.elapsed());
        let now = predict_version(&server, &request).await.expect("serving");
        if !versions.contains(&now) {
            versions.push(now);
        }
    }
    running.store(false, Ordering::SeqCst);
    let mut total = 0;
    for client in clients {
        for (status, version, boxes) in client.await.expect("client") {
            total += 1;
            assert_eq!(status, 200, "a request failed during the swaps");
            assert!(boxes > 0, "a prediction came back empty during the swaps");
            let version = version.as_str().expect("version").to_string();
            assert!(versions.contains(&version), "{version} is one of {versions:?}");
        }
    }
    assert_eq!(versions.len(), 2, "two models, two versions: {versions:?}");
    swap_times.sort();
    report(&format!(
        "hot reload under load: 20 swaps (mv and cp alternating) with 4 clients, {total} requests, 0 failed; \
         write-to-new-version p50 {:.0} ms, max {:.0} ms",
        swap_times[swap_times.len() / 2].as_secs_f64() * 1e3,
        swap_times[swap_times.len() - 1].as_secs_f64() * 1e3
    ));
    assert!(total > 20, "the clients kept asking ({total} requests)");
}

#[tokio::test]
async fn polling_mode_and_forced_rescans_find_changes_too() {
    let _serial = SERIAL.lock().await;
    let images = serve_dir(eval_images());
    let request = body(images, "1");

    let polling = start(&[("ML_WATCH", "poll"), ("ML_WATCH_INTERVAL_MS", "200")]).await;
    std::fs::copy(fixture_model(DET), polling.models_dir.path().join("1.onnx")).expect("copy");
    let found = wait_for(Duration::from_secs(10), "polling finds the model", || async {
        predict_version(&polling, &request).await.is_ok()
    })
    .await;
    report(&format!(
        "hot reload: polling every 200 ms found a new model in {:.0} ms",
        found.as_secs_f64() * 1e3
    ));
    std::fs::remove_file(polling.models_dir.path().join("1.onnx")).expect("delete");
    wait_for(Duration::from_secs(10), "polling notices the delete", || async {
        predict_version(&polling, &request).await.is_err()
    })
    .await;

    let off = start(&[("ML_WATCH", "off")]).await;
    std::fs::copy(fixture_model(DET), off.models_dir.path().join("1.onnx")).expect("copy");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        predict_version(&off, &request).await.is_err(),
        "not watched: nothing happens"
    );
    let (status, models) = off.post("/models/reload", &json!({})).await;
    assert_eq!(status, 200, "{models}");
    assert_eq!(models["models"][0]["state"], "ready", "{models}");
    assert!(predict_version(&off, &request).await.is_ok(), "serves after the rescan");
}

#[tokio::test]
async fn a_sidecar_sets_labels_thresholds_and_projects_and_reloads_its_model() {
    let _serial = SERIAL.lock().await;
    let images = serve_dir(eval_images());
    let server = start(&[]).await;
    let dir = server.models_dir.path().to_path_buf();
    std::fs::write(
        dir.join("shapes.toml"),
        "labels = [\"Round\", \"Box\", \"Tri\"]\nconf = 0.5\nprojects = [7]\n",
    )
    .expect("sidecar");
    move_into_place(&fixture_model(DET), &dir, "shapes.onnx");
    let config = r#"<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">
        <Label value="Round"/><Label value="Box"/><Label value="Tri"/></RectangleLabels></View>"#;
    // Two models, so that only the sidecar can route project 7.
    move_into_place(&fixture_model(DET), &dir, "other.onnx");
    let request = predict_body(&[format!("http://{images}/eval-a_0000.png")], "7.1795800822", config);
    wait_for(
        Duration::from_secs(10),
        "the sidecar model serves project 7",
        || async { predict_version(&server, &request).await.is_ok() },
    )
    .await;
    let (_, answer) = server.post("/predict", &request).await;
    let regions = answer["results"][0]["result"].as_array().cloned().expect("regions");
    assert!(
        regions.iter().all(|r| r["score"].as_f64().is_some_and(|s| s > 0.5)),
        "conf = 0.5"
    );
    let labels: Vec<&str> = regions
        .iter()
        .filter_map(|r| r["value"]["rectanglelabels"][0].as_str())
        .collect();
    assert!(labels.contains(&"Round"), "labels from the sidecar: {labels:?}");
    let before = answer["results"][0]["model_version"].clone();

    // Editing the sidecar reloads its model, under a new version.
    std::fs::write(
        dir.join("shapes.toml"),
        "labels = [\"Round\", \"Box\", \"Tri\"]\nconf = 0.9\nprojects = [7]\n",
    )
    .expect("sidecar");
    wait_for(Duration::from_secs(10), "the edited sidecar applies", || async {
        predict_version(&server, &request).await.is_ok_and(|v| v != before)
    })
    .await;

    // A broken sidecar is a failed load; the model keeps serving as it was.
    std::fs::write(dir.join("shapes.toml"), "conf = \"high\"\n").expect("sidecar");
    wait_for(Duration::from_secs(10), "the broken sidecar shows", || async {
        model_status(&server, "shapes").await["state"] == "failed"
    })
    .await;
    let status = model_status(&server, "shapes").await;
    assert!(
        status["error"].as_str().is_some_and(|e| e.contains("shapes.toml")),
        "{status}"
    );
    assert!(predict_version(&server, &request).await.is_ok(), "still serving");
}

#[tokio::test]
async fn a_plugin_dropped_in_serves_the_models_waiting_for_it() {
    let _serial = SERIAL.lock().await;
    let models = tempfile::tempdir().expect("models");
    std::fs::copy(
        fixture_model("yolov8n-shapes-seg-320.onnx"),
        models.path().join("2.onnx"),
    )
    .expect("seg");
    let server = Server::start_in(models, plugins_dir(&["yolov8_detect"]), &[]).await;
    let status = model_status(&server, "2").await;
    assert_eq!(status["state"], "failed", "no plugin for segmentation yet: {status}");

    // Written under a temporary name and renamed, as a deploy would.
    let plugins = server.plugins_dir.path().to_path_buf();
    let seg = plugin_library("yolov8_seg");
    std::fs::copy(&seg, plugins.join(".incoming.tmp")).expect("copy");
    let dropped = Instant::now();
    std::fs::rename(
        plugins.join(".incoming.tmp"),
        plugins.join(seg.file_name().expect("name")),
    )
    .expect("rename");
    let took = wait_for(Duration::from_secs(15), "the waiting model loads", || async {
        model_status(&server, "2").await["state"] == "ready"
    })
    .await;
    report(&format!(
        "hot reload: a plugin dropped in served its waiting model {:.0} ms later",
        took.as_secs_f64() * 1e3
    ));
    let (_, listed) = server.get("/plugins").await;
    assert!(listed.to_string().contains("yolov8-seg"), "{listed}");
    let images = serve_dir(eval_images());
    assert!(
        predict_version(&server, &body(images, "2")).await.is_ok(),
        "it predicts"
    );

    // The same plugin again: never loaded twice, never unloaded.
    std::fs::copy(&seg, plugins.join("libyolov8_seg_again.so")).expect("copy");
    wait_for(Duration::from_secs(10), "the duplicate is noticed", || async {
        server.log().contains("libyolov8_seg_again.so ignored")
    })
    .await;
    assert!(dropped.elapsed() < Duration::from_secs(30));
}
