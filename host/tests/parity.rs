//! Parity with Ultralytics 8.4.190: every eval-a image goes through the real server, and the
//! boxes must match Ultralytics' own predictions on the same ONNX files.

mod common;

use common::*;
use serde_json::Value;

const MIN_IOU: f64 = 0.98;
const MAX_CONF_DIFF: f64 = 0.01;

async fn parity(model: &str, reference: &str) -> MatchStats {
    let images = serve_dir(eval_images());
    let server = Server::start(&[(model, model)], &[]).await;
    let reference = load_json(&fixtures().join("eval-a").join(reference));
    let entries = reference["images"].as_array().expect("images");
    let urls: Vec<String> = entries
        .iter()
        .map(|e| format!("http://{images}/{}", e["file_name"].as_str().expect("file name")))
        .collect();

    // All 40 tasks in one request, as Label Studio's "Retrieve Predictions" sends them.
    let (status, body) = server
        .post("/predict", &predict_body(&urls, "1.1795800822", RECT_CONFIG))
        .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), entries.len(), "one result per task");

    let mut stats = MatchStats::default();
    for (entry, prediction) in entries.iter().zip(results) {
        let ours = dets_of(prediction);
        let expected = reference_dets(entry);
        let mut one = MatchStats::default();
        match_dets(&expected, &ours, MIN_IOU, MAX_CONF_DIFF, &mut one);
        if one.matched != one.reference || one.extra() > 0 {
            println!(
                "  {}: {}/{} matched, {} extra\n    ours:      {ours:?}\n    reference: {expected:?}",
                entry["file_name"],
                one.matched,
                one.reference,
                one.extra()
            );
        }
        let w = prediction["result"]
            .as_array()
            .and_then(|r| r.first())
            .map(|r| r["original_width"].clone());
        if let Some(w) = w {
            assert_eq!(w, entry["width"], "original_width of {}", entry["file_name"]);
        }
        match_dets(&expected, &ours, MIN_IOU, MAX_CONF_DIFF, &mut stats);
    }
    println!(
        "parity {model}: {}/{} reference detections matched ({:.2}%), {} extra ({:.2}%), min IoU {:.4}, max |dconf| {:.5}",
        stats.matched,
        stats.reference,
        100.0 * stats.matched_ratio(),
        stats.extra(),
        100.0 * stats.extra_ratio(),
        stats.min_iou,
        stats.max_conf_diff
    );
    let versions: Vec<&Value> = results.iter().map(|r| &r["model_version"]).collect();
    assert!(
        versions.iter().all(|v| *v == versions[0]),
        "one model_version for the whole batch"
    );
    stats
}

fn assert_parity(stats: MatchStats) {
    assert!(stats.reference > 100, "the reference has detections to compare");
    assert!(
        stats.matched_ratio() >= 0.99,
        "matched {:.4} < 0.99",
        stats.matched_ratio()
    );
    assert!(stats.extra_ratio() <= 0.01, "extra {:.4} > 0.01", stats.extra_ratio());
}

#[tokio::test]
async fn det_320_matches_ultralytics() {
    assert_parity(parity("yolov8n-shapes-det-320.onnx", "reference_yolov8n-shapes-det-320.json").await);
}

#[tokio::test]
async fn dynamic_model_letterboxed_to_its_imgsz_matches_ultralytics() {
    assert_parity(
        parity(
            "yolov8n-shapes-det-320-dynamic.onnx",
            "reference_yolov8n-shapes-det-320-dynamic_square.json",
        )
        .await,
    );
}
