//! Dynamic batching (ML_MAX_BATCH, ML_BATCH_WAIT_MS): tasks of one request and of several
//! run as one inference on a model with a dynamic batch axis, and answer exactly what they
//! answer one at a time.

use crate::common::*;
use serde_json::Value;

const DYNAMIC: &str = "yolov8n-shapes-det-320-dynamic.onnx";
const FIXED: &str = "yolov8n-shapes-det-320.onnx";

fn urls(count: usize) -> Vec<String> {
    let images = serve_dir(eval_images());
    let mut names: Vec<String> = std::fs::read_dir(eval_images())
        .expect("eval images")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".png"))
        .collect();
    names.sort();
    names
        .iter()
        .take(count)
        .map(|n| format!("http://{images}/{n}"))
        .collect()
}

fn boxes(body: &Value) -> Vec<Vec<Det>> {
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(dets_of)
        .collect()
}

const BATCHING: [(&str, &str); 4] = [
    ("ML_MAX_BATCH", "4"),
    // Long enough that the tasks of one request always meet in a batch.
    ("ML_BATCH_WAIT_MS", "200"),
    ("ML_TASK_CONCURRENCY", "8"),
    ("RUST_LOG", "info,ls_core::models::batcher=debug"),
];

#[tokio::test]
async fn batched_tasks_answer_what_they_answer_alone() {
    let urls = urls(8);
    let body = predict_body(&urls, "1.1", RECT_CONFIG);
    let alone = Server::start(&[(DYNAMIC, "1.onnx")], &[]).await;
    let (_, models) = alone.get("/models").await;
    assert_eq!(
        models["models"][0]["batch"], false,
        "batching is off by default: {models}"
    );
    let (status, expected) = alone.post("/predict", &body).await;
    assert_eq!(status, 200, "{expected}");

    let batched = Server::start(&[(DYNAMIC, "1.onnx")], &BATCHING).await;
    let (_, models) = batched.get("/models").await;
    assert_eq!(models["models"][0]["batch"], true, "{models}");
    let (status, answer) = batched.post("/predict", &body).await;
    assert_eq!(status, 200, "{answer}");
    let log = batched.log();
    let batches: Vec<&str> = log.lines().filter(|l| l.contains("running a batch of")).collect();
    assert!(
        batches.iter().any(|l| l.contains("batch of 4 task(s)")),
        "8 tasks, 8 in flight, batches of up to 4: {batches:?}"
    );

    let (expected, answer) = (boxes(&expected), boxes(&answer));
    assert_eq!(expected.len(), answer.len());
    let mut stats = MatchStats::default();
    for (reference, ours) in expected.iter().zip(&answer) {
        assert_eq!(reference.len(), ours.len(), "{reference:?} vs {ours:?}");
        match_dets(reference, ours, 0.999, 1e-4, &mut stats);
    }
    report(&format!(
        "batching: {} tasks in batches of up to 4 ({} batch lines): {} of {} boxes as unbatched (IoU >= 0.999, |dconf| <= 1e-4)",
        urls.len(),
        batches.len(),
        stats.matched,
        stats.reference
    ));
    assert_eq!(stats.matched, stats.reference);
}

#[tokio::test]
async fn a_model_with_a_fixed_batch_axis_is_not_batched() {
    let server = Server::start(&[(FIXED, "1.onnx")], &BATCHING).await;
    let (_, models) = server.get("/models").await;
    assert_eq!(models["models"][0]["batch"], false, "{models}");
    let (status, body) = server
        .post("/predict", &predict_body(&urls(2), "1.1", RECT_CONFIG))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(!server.log().contains("running a batch"));
}
