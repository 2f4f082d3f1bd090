//! Parity with Ultralytics 8.4.190: every eval-a image goes through the real server, and the
//! boxes must match Ultralytics' own predictions on the same ONNX files.

use crate::common::*;
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
    report(&format!(
        "parity {model}: {}/{} reference detections matched ({:.2}%), {} extra ({:.2}%), min IoU {:.4}, max |dconf| {:.5}",
        stats.matched,
        stats.reference,
        100.0 * stats.matched_ratio(),
        stats.extra(),
        100.0 * stats.extra_ratio(),
        stats.min_iou,
        stats.max_conf_diff
    ));
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

/// Images as users have them, beyond the fixtures' RGB files: an RGBA PNG must predict exactly
/// as its RGB pixels (alpha is dropped, not composited, as OpenCV does), and a grayscale PNG
/// exactly as the same grey replicated into RGB.
#[tokio::test]
async fn rgba_and_grayscale_images_predict_like_their_rgb_pixels() {
    let dir = tempfile::tempdir().expect("dir");
    let rgb = image::open(eval_images().join("eval-a_0000.png"))
        .expect("png")
        .into_rgb8();
    let (w, h) = rgb.dimensions();
    let rgba = image::RgbaImage::from_fn(w, h, |x, y| {
        let p = rgb.get_pixel(x, y);
        image::Rgba([p[0], p[1], p[2], ((x * 7 + y * 13) % 256) as u8])
    });
    rgba.save(dir.path().join("rgba.png")).expect("save");
    rgb.save(dir.path().join("rgb.png")).expect("save");
    let gray = image::DynamicImage::ImageRgb8(rgb.clone()).into_luma8();
    gray.save(dir.path().join("gray.png")).expect("save");
    image::DynamicImage::ImageLuma8(gray)
        .into_rgb8()
        .save(dir.path().join("gray-as-rgb.png"))
        .expect("save");

    let images = serve_dir(dir.path().to_path_buf());
    let server = Server::start(&[("yolov8n-shapes-det-320.onnx", "m.onnx")], &[]).await;
    let urls: Vec<String> = ["rgba.png", "rgb.png", "gray.png", "gray-as-rgb.png"]
        .iter()
        .map(|f| format!("http://{images}/{f}"))
        .collect();
    let (status, body) = server.post("/predict", &predict_body(&urls, "1.1", RECT_CONFIG)).await;
    assert_eq!(status, 200);
    let dets: Vec<Vec<Det>> = body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(dets_of)
        .collect();
    let key = |d: &Vec<Det>| {
        format!(
            "{:?}",
            d.iter().map(|d| (&d.class, d.score, d.xyxy)).collect::<Vec<_>>()
        )
    };
    assert!(!dets[1].is_empty(), "the RGB image has detections");
    assert_eq!(key(&dets[0]), key(&dets[1]), "RGBA predicts as its RGB pixels");
    assert!(!dets[3].is_empty(), "the grey image has detections");
    assert_eq!(
        key(&dets[2]),
        key(&dets[3]),
        "grayscale predicts as grey replicated to RGB"
    );
}
