//! Classification parity with Ultralytics 8.4.190: every eval-a image through the real
//! server with the yolov8-cls plugin (built against plugin-api and its SDK alone) into a
//! `<Choices>` tag. The best class's probability must equal Ultralytics' to within 1e-5 (the
//! preprocessing is exact, so only float noise is left) and the classes must come in
//! Ultralytics' order. The same holds for yolov8-cls as it was released for plugin-api 1.1,
//! built from its frozen source and served through the host's 1.x shim.

use crate::common::*;
use serde_json::Value;

const CLS: &str = "yolov8n-shapes-cls-96.onnx";

fn config(multiple: bool) -> String {
    format!(
        r#"<View><Image name="image" value="$image"/>
        <Choices name="shape" toName="image"{}><Choice value="circle"/><Choice value="square"/><Choice value="triangle"/></Choices>
        </View>"#,
        if multiple { r#" choice="multiple""# } else { "" }
    )
}

#[tokio::test]
async fn class_probabilities_match_ultralytics() {
    check_parity(plugins_dir(&["yolov8_detect", "yolov8_cls"]), CLS, "plugin-api 2").await;
}

#[tokio::test]
async fn yolo11_class_probabilities_match_ultralytics() {
    check_parity(
        plugins_dir(&["yolov8_detect", "yolov8_cls"]),
        "yolo11t-shapes-cls-96.onnx",
        "plugin-api 2",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_1_1_release_of_the_plugin_still_matches_ultralytics() {
    let plugins = plugins_dir(&["yolov8_detect"]);
    let out = plugins.path().join("libyolov8_cls_1_1.so");
    tokio::task::spawn_blocking(move || {
        abi::build_frozen(&abi::repo().join("tests/abi/yolov8-cls-1.1"), "yolov8_cls_1_1", &out)
    })
    .await
    .expect("build");
    check_parity(plugins, CLS, "plugin-api 1.1").await;
}

async fn check_parity(plugins: tempfile::TempDir, model: &str, built_for: &str) {
    let images = serve_dir(eval_images());
    let models = tempfile::tempdir().expect("models");
    std::fs::copy(fixture_model(model), models.path().join(model)).expect("model");
    let server = Server::start_in(models, plugins, &[("ML_CONF", "0")]).await;
    let (_, models) = server.get("/models").await;
    assert_eq!(models["models"][0]["adapter"], "yolov8-cls 0.1.0", "{models}");
    let reference = load_json(&fixtures().join(format!("eval-a/reference_{}", model.replace(".onnx", ".json"))));
    let entries = reference["images"].as_array().expect("images");
    let tops: std::collections::BTreeSet<u64> = entries.iter().filter_map(|e| e["top1"].as_u64()).collect();
    assert!(
        tops.len() >= 2,
        "the model answers one class for every image: a blind fixture"
    );
    let names: Vec<&str> = ["circle", "square", "triangle"].to_vec();
    let urls: Vec<String> = entries
        .iter()
        .map(|e| format!("http://{images}/{}", e["file_name"].as_str().expect("name")))
        .collect();

    let (status, body) = server
        .post("/predict", &predict_body(&urls, "1.1", &config(true)))
        .await;
    assert_eq!(status, 200, "{body}");
    let (mut worst, mut order_ok) = (0.0f64, 0);
    for (entry, prediction) in entries.iter().zip(body["results"].as_array().expect("results")) {
        let result = &prediction["result"][0];
        assert_eq!(result["type"], "choices");
        let ours: Vec<&str> = result["value"]["choices"]
            .as_array()
            .expect("choices")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let expected: Vec<&str> = entry["top5"]
            .as_array()
            .expect("top5")
            .iter()
            .map(|i| names[i.as_u64().expect("index") as usize])
            .collect();
        order_ok += (ours == expected) as usize;
        // Several choices score their mean probability, as the official backend scores them.
        let listed: Vec<f64> = ours
            .iter()
            .filter_map(|label| names.iter().position(|n| n == label))
            .map(|i| entry["probs"][i].as_f64().expect("prob"))
            .collect();
        let mean = listed.iter().sum::<f64>() / listed.len().max(1) as f64;
        worst = worst.max((result["score"].as_f64().expect("score") - mean).abs());
    }
    report(&format!(
        "cls parity {model} ({built_for}): class order as Ultralytics' on {order_ok}/{} images, max |score - Ultralytics' mean probability of the listed classes| {worst:.2e}",
        entries.len()
    ));
    assert_eq!(order_ok, entries.len());
    assert!(worst <= 1e-5, "{worst}");

    // A single-choice tag gets the best class only.
    let (_, body) = server
        .post("/predict", &predict_body(&urls[..1], "1.1", &config(false)))
        .await;
    let single = &body["results"][0]["result"][0];
    let top1 = entries[0]["top1"].as_u64().expect("top1") as usize;
    assert_eq!(single["value"]["choices"], serde_json::json!([names[top1]]));
    // One choice scores its own probability: Ultralytics' top-1.
    let top = entries[0]["probs"][top1].as_f64().expect("prob");
    assert!(
        (single["score"].as_f64().expect("score") - top).abs() <= 1e-5,
        "{single} vs {top}"
    );
}
