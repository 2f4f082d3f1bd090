//! segment-anything through the real server against segment-anything's own `SamPredictor`:
//! the fixture is the MobileSAM architecture with seeded random weights
//! (`scripts/fixtures/make-sam-fixture.py`), exported as an encoder and a prompt decoder, and
//! the reference holds the predictor's best mask and `iou_predictions` for clicks, negative
//! clicks, boxes and boxes with clicks on every eval-a image. Random weights make meaningless
//! masks, but matching them proves the recipe (resize, normalise, pad, prompt coordinates,
//! labels, mask choice, threshold). Also: the encoder runs once per image (the embedding
//! cache), and the two files reload as one model.

use crate::common::*;
use serde_json::{Value, json};

const SAM: &str = "sam-tiny";

fn pair() -> [(String, String); 2] {
    ["encoder", "decoder"].map(|g| (format!("{SAM}.{g}.onnx"), format!("{SAM}.{g}.onnx")))
}

async fn start(env: &[(&str, &str)]) -> Server {
    let files = pair();
    let models: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    Server::start_with_plugins(&models, env, &["sam"]).await
}

const CONFIG: &str = r#"<View><Image name="image" value="$image"/>
  <BrushLabels name="mask" toName="image"><Label value="object"/></BrushLabels>
  <PolygonLabels name="outline" toName="image"><Label value="object"/></PolygonLabels>
  <KeyPointLabels name="click" toName="image" smart="true" model_skip="true"><Label value="object" smart="true"/></KeyPointLabels>
  <RectangleLabels name="drag" toName="image" smart="true" model_skip="true"><Label value="object"/></RectangleLabels>
</View>"#;

/// The reference prompt as Label Studio's smart tools send it: percent of the image.
fn context(prompt: &Value, w: f64, h: f64) -> Value {
    let mut regions = Vec::new();
    let labels = prompt["labels"].as_array().cloned().unwrap_or_default();
    for (point, label) in prompt["points"].as_array().into_iter().flatten().zip(labels) {
        let (x, y) = (point[0].as_f64().expect("x"), point[1].as_f64().expect("y"));
        regions.push(json!({
            "id": "k", "from_name": "click", "to_name": "image", "type": "keypointlabels",
            "original_width": w, "original_height": h, "is_positive": label.as_f64() == Some(1.0),
            "value": {"x": x / w * 100.0, "y": y / h * 100.0, "width": 0.5, "keypointlabels": ["object"]}
        }));
    }
    if let Some(b) = prompt["box"].as_array() {
        let b: Vec<f64> = b.iter().map(|v| v.as_f64().expect("number")).collect();
        regions.push(json!({
            "id": "r", "from_name": "drag", "to_name": "image", "type": "rectanglelabels",
            "original_width": w, "original_height": h,
            "value": {"x": b[0] / w * 100.0, "y": b[1] / h * 100.0, "width": (b[2] - b[0]) / w * 100.0,
                      "height": (b[3] - b[1]) / h * 100.0, "rotation": 0, "rectanglelabels": ["object"]}
        }));
    }
    json!({ "result": regions })
}

fn runs_to_bits(runs: &[Value], n: usize) -> Vec<bool> {
    let mut bits = Vec::with_capacity(n);
    for (i, run) in runs.iter().enumerate() {
        bits.extend(std::iter::repeat_n(i % 2 == 1, run.as_u64().expect("run") as usize));
    }
    assert_eq!(bits.len(), n, "the reference runs cover the image");
    bits
}

async fn graph_runs(server: &Server) -> (u64, u64) {
    let (_, models) = server.get("/models").await;
    let graphs = models["models"][0]["graphs"].as_array().expect("graphs").clone();
    let count = |name: &str| {
        graphs
            .iter()
            .find(|g| g["name"] == name)
            .and_then(|g| g["inferences"].as_u64())
            .expect("a count")
    };
    (count("encoder"), count("decoder"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masks_and_scores_match_segment_anythings_predictor() {
    let server = start(&[]).await;
    let (_, models) = server.get("/models").await;
    assert_eq!(models["models"][0]["name"], SAM, "{models}");
    assert_eq!(models["models"][0]["adapter"], "sam 0.1.0", "{models}");
    let images = serve_dir(eval_images());
    let reference = load_json(&fixtures().join(format!("eval-a/reference_{SAM}.json")));
    let (encoded_before, decoded_before) = graph_runs(&server).await;
    let (mut ious, mut score_diffs, mut prompts, mut images_seen) = (Vec::new(), Vec::new(), 0u64, 0u64);
    let mut by_kind: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for image in reference["images"].as_array().expect("images") {
        let (w, h) = (
            image["width"].as_f64().expect("width"),
            image["height"].as_f64().expect("height"),
        );
        let n = (w * h) as usize;
        let url = format!("http://{images}/{}", image["file_name"].as_str().expect("file"));
        images_seen += 1;
        for prompt in image["prompts"].as_array().expect("prompts") {
            let mut body = predict_body(std::slice::from_ref(&url), "1", CONFIG);
            body["params"]["context"] = context(prompt, w, h);
            let (status, answer) = server.post("/predict", &body).await;
            assert_eq!(status, 200, "{answer}");
            let result = answer["results"][0]["result"].as_array().expect("result");
            let expected = runs_to_bits(prompt["mask_runs"].as_array().expect("runs"), n);
            let brush = result.iter().find(|r| r["type"] == "brushlabels");
            let ours = brush
                .map(|r| brush_mask(r, w as usize, h as usize))
                .unwrap_or_else(|| vec![false; n]);
            let iou = mask_iou(&ours, &expected);
            let best = prompt["best"].as_u64().expect("best") as usize;
            let score = prompt["iou_predictions"][best].as_f64().expect("score");
            if let Some(r) = brush {
                score_diffs.push((r["score"].as_f64().expect("our score") - score).abs());
                assert!(
                    result.iter().any(|r| r["type"] == "polygonlabels"),
                    "a mask comes with its outline"
                );
            }
            by_kind
                .entry(prompt["kind"].as_str().unwrap_or("?").to_string())
                .or_default()
                .push(iou);
            ious.push(iou);
            prompts += 1;
        }
    }
    let (encoded, decoded) = graph_runs(&server).await;
    let mut sorted = ious.clone();
    sorted.sort_by(f64::total_cmp);
    let pct = |p: f64| sorted[((sorted.len() - 1) as f64 * p) as usize];
    let max_diff = score_diffs.iter().copied().fold(0.0, f64::max);
    let kinds: Vec<String> = by_kind
        .iter()
        .map(|(k, v)| format!("{k} {} (min {:.4})", v.len(), v.iter().copied().fold(1.0, f64::min)))
        .collect();
    report(&format!(
        "SAM parity ({SAM}, {prompts} prompts on {images_seen} images: {}): mask IoU with SamPredictor min {:.4}, \
         1st percentile {:.4}, median {:.4}; iou_predictions max difference {max_diff:.2e}; encoder ran {} times, \
         decoder {} times",
        kinds.join(", "),
        sorted[0],
        pct(0.01),
        pct(0.5),
        encoded - encoded_before,
        decoded - decoded_before
    ));
    assert!(sorted[0] >= 0.99, "every mask matches the reference at IoU >= 0.99");
    assert_eq!(score_diffs.len() as u64, prompts, "every prompt got a mask");
    assert!(max_diff <= 1e-3, "iou_predictions within 1e-3: {max_diff}");
    assert_eq!(
        encoded - encoded_before,
        images_seen,
        "the encoder runs once per image: every later click is a cache hit"
    );
    assert_eq!(decoded - decoded_before, prompts, "the decoder runs once per click");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cache_every_click_encodes_and_plain_predictions_are_empty() {
    let server = start(&[("ML_EMBEDDING_CACHE_MB", "0")]).await;
    let images = serve_dir(eval_images());
    let url = format!("http://{images}/eval-a_0000.png");
    let click = json!({"result": [{"from_name": "click", "to_name": "image", "type": "keypointlabels",
        "is_positive": true, "value": {"x": 50.0, "y": 50.0, "width": 0.5, "keypointlabels": ["object"]}}]});
    let (before, _) = graph_runs(&server).await;
    for _ in 0..3 {
        let mut body = predict_body(std::slice::from_ref(&url), "1", CONFIG);
        body["params"]["context"] = click.clone();
        assert_eq!(server.post("/predict", &body).await.0, 200);
    }
    let (after, _) = graph_runs(&server).await;
    assert_eq!(after - before, 3, "with ML_EMBEDDING_CACHE_MB=0 each click encodes");
    // A task opened, or Retrieve Predictions: an interactive-only model answers empty, not an error.
    let (status, answer) = server.post("/predict", &predict_body(&[url], "1", CONFIG)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["results"][0]["result"].as_array().expect("result").is_empty(),
        "{answer}"
    );
    let (encoder_now, _) = graph_runs(&server).await;
    assert_eq!(encoder_now, after, "an ordinary prediction does not run the model");
}

/// The decoder's bytes with a `doc_string` appended: protobuf merges a repeated message, so
/// the graph is the same and only the file (and the model version) changes.
fn same_decoder_new_bytes(dir: &std::path::Path) -> std::path::PathBuf {
    let mut bytes = std::fs::read(fixture_model(&format!("{SAM}.decoder.onnx"))).expect("read");
    let doc = b"replaced by the hot reload test";
    bytes.push(0x32); // field 6 (doc_string), length-delimited
    bytes.push(doc.len() as u8);
    bytes.extend_from_slice(doc);
    let path = dir.join("decoder-v2.onnx");
    std::fs::write(&path, bytes).expect("write");
    path
}

async fn version(server: &Server) -> (String, bool, String) {
    let (_, models) = server.get("/models").await;
    let m = &models["models"][0];
    (
        m["model_version"].as_str().unwrap_or_default().to_string(),
        m["serving"].as_bool().unwrap_or(false),
        m["state"].as_str().unwrap_or_default().to_string(),
    )
}

async fn wait_for(
    server: &Server,
    what: &str,
    done: impl Fn(&(String, bool, String)) -> bool,
) -> (String, bool, String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let v = version(server).await;
        if done(&v) {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {v:?}\n{}", server.log());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_two_files_reload_as_one_model_and_a_broken_half_never_serves() {
    let server = start(&[]).await;
    let images = serve_dir(eval_images());
    let url = format!("http://{images}/eval-a_0002.png");
    let ask = || async {
        let mut body = predict_body(std::slice::from_ref(&url), "1", CONFIG);
        body["params"]["context"] = json!({"result": [{"from_name": "click", "to_name": "image",
            "type": "keypointlabels", "value": {"x": 40.0, "y": 60.0, "width": 0.5, "keypointlabels": ["object"]}}]});
        let (status, answer) = server.post("/predict", &body).await;
        assert_eq!(status, 200);
        answer["results"][0].clone()
    };
    let (v1, serving, _) = version(&server).await;
    assert!(serving && !v1.is_empty());
    let dir = server.models_dir.path().to_path_buf();
    let scratch = tempfile::tempdir().expect("temp");

    // A broken decoder: the load fails, the old pair keeps serving.
    let garbage = scratch.path().join("garbage.onnx");
    std::fs::write(&garbage, b"not an onnx file").expect("write");
    move_into_place(&garbage, &dir, &format!("{SAM}.decoder.onnx"));
    let failed = wait_for(&server, "the broken decoder fails", |v| v.2 == "failed").await;
    assert_eq!(
        (failed.0.as_str(), failed.1),
        (v1.as_str(), true),
        "the old pair serves on"
    );
    assert_eq!(ask().await["model_version"], v1.as_str());

    // The encoder gone: half a pair is not a model, and the old pair still serves.
    std::fs::remove_file(dir.join(format!("{SAM}.encoder.onnx"))).expect("remove");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (_, models) = server.get("/models").await;
    assert_eq!(models["models"][0]["serving"], true, "{models}");
    assert_eq!(ask().await["model_version"], v1.as_str());

    // Both files back, the decoder new: the new pair loads and answers.
    move_into_place(
        &fixture_model(&format!("{SAM}.encoder.onnx")),
        &dir,
        &format!("{SAM}.encoder.onnx"),
    );
    move_into_place(
        &same_decoder_new_bytes(scratch.path()),
        &dir,
        &format!("{SAM}.decoder.onnx"),
    );
    let ready = wait_for(&server, "the new pair loads", |v| v.2 == "ready" && v.0 != v1).await;
    let answer = ask().await;
    assert_eq!(answer["model_version"], ready.0.as_str());
    assert!(!answer["result"].as_array().expect("result").is_empty(), "{answer}");
    let log = server.log();
    assert!(
        log.contains("keeps serving"),
        "the failed loads say the old pair serves on"
    );
    assert!(
        log.contains("is missing: a two-file model needs both"),
        "the missing encoder is named"
    );
}
