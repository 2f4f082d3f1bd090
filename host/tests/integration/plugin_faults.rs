//! A faulty plugin never takes the server down: panics on the plugin's side come back as a
//! failed task, and impossible regions are dropped before they reach Label Studio.

use crate::common::*;
use serde_json::{Value, json};

const DET: &str = "yolov8n-shapes-det-320.onnx";

/// Predicts two tasks through the faulty adapter with the given fault, then checks that the
/// server still answers /health.
async fn predict_with_fault(fault: &str) -> (Server, Vec<Value>) {
    let images = serve_dir(eval_images());
    let server = Server::start_with_plugins(
        &[(DET, "1.onnx")],
        &[("LS_ML_TEST_FAULT", fault)],
        &["yolov8_detect", "faulty_plugin"],
    )
    .await;
    let (_, models) = server.get("/models").await;
    assert_eq!(
        models["models"][0]["adapter"]
            .as_str()
            .map(|a| a.starts_with("faulty-test-adapter")),
        Some(true),
        "{models}"
    );
    let urls = [
        format!("http://{images}/eval-a_0000.png"),
        format!("http://{images}/eval-a_0001.png"),
    ];
    let (status, body) = server.post("/predict", &predict_body(&urls, "1.1", RECT_CONFIG)).await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().expect("results").clone();
    assert_eq!(results.len(), 2, "one result per task");
    let (status, health) = server.get("/health").await;
    assert_eq!(
        (status, health["status"].as_str()),
        (200, Some("UP")),
        "the server survived"
    );
    (server, results)
}

#[tokio::test]
async fn a_panic_in_prepare_fails_the_task_not_the_server() {
    let (server, results) = predict_with_fault("panic-prepare").await;
    assert!(results.iter().all(|r| r["result"] == json!([])));
    assert!(
        server
            .log()
            .contains("adapter panicked: faulty adapter: prepare panicked on purpose"),
        "{}",
        server.log()
    );
}

#[tokio::test]
async fn a_panic_in_finish_fails_the_task_not_the_server() {
    let (server, results) = predict_with_fault("panic-finish").await;
    assert!(results.iter().all(|r| r["result"] == json!([])));
    assert!(server.log().contains("finish panicked on purpose"), "{}", server.log());
    let text = server.get_text("/metrics").await;
    assert!(text.contains("ls_ml_task_failures_total{kind=\"adapter\"} 2"), "{text}");
}

#[tokio::test]
async fn a_panic_while_opening_a_model_fails_that_model_not_the_server() {
    let server = Server::start_with_plugins(
        &[(DET, "1.onnx")],
        &[("LS_ML_TEST_FAULT", "panic-open")],
        &["yolov8_detect", "faulty_plugin"],
    )
    .await;
    let (_, models) = server.get("/models").await;
    let model = &models["models"][0];
    assert_eq!(model["state"], "failed", "{models}");
    assert!(
        model["error"]
            .as_str()
            .is_some_and(|e| e.contains("faulty-test-adapter cannot open the model")
                && e.contains("adapter panicked: faulty adapter: open panicked on purpose")),
        "{models}"
    );
    let (status, health) = server.get("/health").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("UP")));
}

#[tokio::test]
async fn non_finite_boxes_are_dropped() {
    let (_server, results) = predict_with_fault("nan-boxes").await;
    // Only the finite box (class 2, triangle) survives.
    assert_each_task_keeps_only(&results, "triangle");
}

#[tokio::test]
async fn more_regions_than_max_det_are_capped() {
    let (_server, results) = predict_with_fault("too-many").await;
    for r in &results {
        assert_eq!(
            r["result"].as_array().map(Vec::len),
            Some(300),
            "ML_MAX_DET defaults to 300"
        );
    }
}

#[tokio::test]
async fn unknown_class_ids_are_dropped() {
    let (_server, results) = predict_with_fault("bad-class").await;
    assert_each_task_keeps_only(&results, "square");
}

/// Every task's result holds exactly one region, labelled `label`.
fn assert_each_task_keeps_only(results: &[Value], label: &str) {
    for r in results {
        let regions = r["result"].as_array().expect("regions");
        assert_eq!(regions.len(), 1, "{regions:?}");
        assert_eq!(regions[0]["value"]["rectanglelabels"], json!([label]));
    }
}

#[tokio::test]
async fn a_library_that_is_not_a_valid_plugin_is_refused_and_the_rest_load() {
    let plugins = plugins_dir(&["yolov8_detect"]);
    // Carries the loader symbol's name, so it looks like a plugin, but is no library at all.
    let mut bogus = b"not an ELF file ".to_vec();
    bogus.extend_from_slice(b"_1as_0lib_1header_0root_bmodule_bloader");
    std::fs::write(
        plugins.path().join(format!(
            "{}bogus{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        )),
        bogus,
    )
    .expect("write");
    // A real shared library that is not a plugin is skipped without a word.
    let models = tempfile::tempdir().expect("dir");
    std::fs::copy(fixture_model(DET), models.path().join("1.onnx")).expect("copy");
    let server = Server::start_in(models, plugins, &[]).await;
    let log = server.log();
    let refused: Vec<&str> = log.lines().filter(|l| l.contains("refused")).collect();
    assert_eq!(refused.len(), 1, "{log}");
    assert!(
        refused[0].contains("bogus") && refused[0].len() < 600,
        "one short line: {}",
        refused[0]
    );
    let (_, plugins) = server.get("/plugins").await;
    assert_eq!(plugins["plugins"].as_array().map(Vec::len), Some(1));
    let (_, models) = server.get("/models").await;
    assert_eq!(models["models"][0]["state"], "ready");
}
