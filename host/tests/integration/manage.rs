//! The management API against the real server: upload (checked in a staging slot before it
//! replaces anything), download, settings checked one by one, try on an image, delete; and
//! who may change models from where.

use crate::common::*;
use serde_json::{Value, json};

const DET: &str = "yolov8n-shapes-det-320.onnx";
const SEG: &str = "yolov8n-shapes-seg-320.onnx";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_model(name)).expect("fixture")
}

async fn start(env: &[(&str, &str)]) -> Server {
    Server::start_in(
        tempfile::tempdir().expect("models"),
        plugins_dir(&["yolov8_detect", "yolov8_seg"]),
        env,
    )
    .await
}

async fn put(server: &Server, path: &str, body: Vec<u8>) -> (u16, Value) {
    let r = server.http.put(server.url(path)).body(body).send().await.expect("PUT");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn put_json(server: &Server, path: &str, body: &Value) -> (u16, Value) {
    let r = server.http.put(server.url(path)).json(body).send().await.expect("PUT");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Files in the models folder other than models and sidecars (staging leftovers).
fn leftovers(server: &Server) -> Vec<String> {
    std::fs::read_dir(server.models_dir.path())
        .expect("models dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !n.ends_with(".onnx") && !n.ends_with(".toml"))
        .collect()
}

#[tokio::test]
async fn upload_configure_try_download_and_delete() {
    let server = start(&[]).await;
    let (status, installed) = put(&server, "/models/det", fixture(DET)).await;
    assert_eq!(status, 200, "{installed}");
    assert_eq!(
        (&installed["state"], &installed["serving"]),
        (&json!("ready"), &json!(true)),
        "{installed}"
    );
    let version = installed["model_version"].as_str().expect("version").to_string();

    // Download: the same bytes.
    let file = server
        .http
        .get(server.url("/models/det/file"))
        .send()
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("bytes");
    assert!(file.as_ref() == fixture(DET).as_slice(), "the download is the upload");

    // A file that is no model is refused with the reason; the model keeps serving.
    let (status, refused) = put(&server, "/models/det", b"not an onnx model".to_vec()).await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["detail"].as_str().is_some_and(|d| d.contains("keeps serving")),
        "{refused}"
    );
    let (_, models) = server.get("/models").await;
    assert_eq!(models["models"][0]["model_version"], version.as_str(), "{models}");
    assert!(leftovers(&server).is_empty(), "{:?}", leftovers(&server));

    // Settings are checked one by one, with the file's messages.
    let (status, bad) = put_json(&server, "/models/det/config", &json!({"conf": 1.5, "confidence": 0.4})).await;
    assert_eq!(status, 400, "{bad}");
    assert!(
        bad["errors"]["conf"]
            .as_str()
            .is_some_and(|e| e.contains("between 0 and 1")),
        "{bad}"
    );
    assert!(
        bad["errors"]["confidence"]
            .as_str()
            .is_some_and(|e| e.contains("unknown setting")),
        "{bad}"
    );
    let (_, settings) = server.get("/models/det/config").await;
    assert_eq!(settings, json!({}), "nothing was saved");
    let (status, relabelled) = put_json(
        &server,
        "/models/det/config",
        &json!({"labels": ["ring", "box", "wedge"], "conf": 0.3}),
    )
    .await;
    assert_eq!(status, 200, "{relabelled}");
    assert_eq!(relabelled["class_names"], json!(["ring", "box", "wedge"]));
    assert_ne!(
        relabelled["model_version"],
        version.as_str(),
        "new settings, new version"
    );
    let (_, settings) = server.get("/models/det/config").await;
    assert_eq!(settings, json!({"labels": ["ring", "box", "wedge"], "conf": 0.3}));

    // Try it on an image: the instances are /predict's boxes, in pixels.
    let image = std::fs::read(eval_images().join("eval-a_0000.png")).expect("image");
    let r = server
        .http
        .post(server.url("/models/det/try"))
        .header("content-type", "image/png")
        .body(image)
        .send()
        .await
        .expect("try");
    assert_eq!(r.status().as_u16(), 200);
    let tried: Value = r.json().await.expect("json");
    let images = serve_dir(eval_images());
    let config = r#"<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">
        <Label value="ring"/><Label value="box"/><Label value="wedge"/></RectangleLabels></View>"#;
    let (_, predicted) = server
        .post(
            "/predict",
            &predict_body(&[format!("http://{images}/eval-a_0000.png")], "1", config),
        )
        .await;
    let boxes = dets_of(&predicted["results"][0]);
    let instances = tried["instances"].as_array().expect("instances");
    assert!(
        !boxes.is_empty() && boxes.len() == instances.len(),
        "{tried}\n{predicted}"
    );
    for (det, instance) in boxes.iter().zip(instances) {
        let b = &instance["box"];
        let xyxy = [
            b["x"].as_f64().unwrap_or(f64::NAN),
            b["y"].as_f64().unwrap_or(f64::NAN),
            b["x"].as_f64().unwrap_or(f64::NAN) + b["width"].as_f64().unwrap_or(f64::NAN),
            b["y"].as_f64().unwrap_or(f64::NAN) + b["height"].as_f64().unwrap_or(f64::NAN),
        ];
        assert!(iou(&det.xyxy, &xyxy) > 0.999, "{det:?} vs {instance}");
        assert_eq!(instance["label"], det.class.as_str());
    }

    // A cross-site request may not delete it; the page's own may.
    let r = server
        .http
        .delete(server.url("/models/det"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status().as_u16(), 403);
    let r = server
        .http
        .delete(server.url("/models/det"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status().as_u16(), 200);
    let (_, models) = server.get("/models").await;
    assert_eq!(models["models"], json!([]), "{models}");
    assert!(
        !server.models_dir.path().join("det.toml").exists(),
        "its settings went with it"
    );
    let log = server.log();
    assert!(
        log.contains("model det installed by") && log.contains("sha256") && log.contains("model det deleted by"),
        "changes are logged:\n{log}"
    );
}

#[tokio::test]
async fn oversized_uploads_and_bad_names_are_refused() {
    let server = start(&[("ML_MAX_MODEL_MB", "1")]).await;
    let (status, body) = put(&server, "/models/det", fixture(DET)).await;
    assert_eq!(status, 413, "{body}");
    assert!(leftovers(&server).is_empty(), "{:?}", leftovers(&server));
    for bad in ["..%2Fescape", ".hidden", "det.onnx", "a%20b"] {
        let (status, body) = put(&server, &format!("/models/{bad}"), b"x".to_vec()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (_, models) = server.get("/models").await;
    assert_eq!(models["models"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_uploads_to_one_name_leave_one_whole_version() {
    let server = start(&[]).await;
    let (det, seg) = tokio::join!(
        put(&server, "/models/x", fixture(DET)),
        put(&server, "/models/x", fixture(SEG))
    );
    assert_eq!((det.0, seg.0), (200, 200), "{det:?} {seg:?}");
    // The watcher may still be reloading the last file it saw renamed into place.
    let mut models = Value::Null;
    for _ in 0..600 {
        models = server.get("/models").await.1;
        if models["models"][0]["state"] == "ready" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let model = &models["models"][0];
    let file = std::fs::read(server.models_dir.path().join("x.onnx")).expect("x.onnx");
    let expected = if file == fixture(DET) {
        "yolov8-detect"
    } else {
        assert!(file == fixture(SEG), "the file is one of the uploads, whole");
        "yolov8-seg"
    };
    assert!(
        model["adapter"].as_str().is_some_and(|a| a.starts_with(expected)),
        "the model that serves is the file that is there: {models}"
    );
    assert!(leftovers(&server).is_empty(), "{:?}", leftovers(&server));
}

#[tokio::test]
async fn beyond_loopback_changes_need_basic_auth() {
    let server = start(&[("ML_BACKEND_ADDR", "0.0.0.0")]).await;
    // A small body: the refusal comes before the body is read.
    let (status, body) = put(&server, "/models/det", b"an onnx file".to_vec()).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains("BASIC_AUTH_USER")),
        "{body}"
    );
    let (status, _) = server.get("/models").await;
    assert_eq!(status, 200, "reading stays open");
    assert!(leftovers(&server).is_empty());
}
