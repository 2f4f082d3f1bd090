//! The real binary, its endpoints and its protocol behaviour, with Label Studio-shaped
//! requests and images served over loopback HTTP.

use std::time::Instant;

use crate::common::*;
use serde_json::{Value, json};

const DET: &str = "yolov8n-shapes-det-320.onnx";

#[tokio::test]
async fn predict_answers_one_result_per_task_in_order_even_when_some_fail() {
    let images = serve_dir(eval_images());
    let server = Server::start(&[(DET, "1.onnx")], &[]).await;
    let urls = vec![
        format!("http://{images}/eval-a_0000.png"),
        format!("http://{images}/does-not-exist.png"),
        format!("http://{images}/eval-a_0012.jpg"),
        "ftp://nowhere/x.png".to_string(),
        format!("http://{images}/eval-a_0002.png"),
    ];
    let (status, body) = server
        .post("/predict", &predict_body(&urls, "1.1795800822", RECT_CONFIG))
        .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), urls.len());

    let (_, setup) = server
        .post("/setup", &json!({"project": "1.1795800822", "schema": RECT_CONFIG}))
        .await;
    let version = setup["model_version"].as_str().expect("model_version string");
    for r in results {
        assert_eq!(r["model_version"], version, "predictions carry the /setup version");
        assert!(r["score"].is_number());
    }
    // The failures keep their slots, empty; the others hold their own image's boxes.
    assert_eq!(results[1]["result"], json!([]));
    assert_eq!(results[3]["result"], json!([]));
    let reference = load_json(&fixtures().join("eval-a/reference_yolov8n-shapes-det-320.json"));
    let by_name = |name: &str| {
        reference["images"]
            .as_array()
            .expect("images")
            .iter()
            .find(|i| i["file_name"] == name)
            .cloned()
            .expect("image")
    };
    for (slot, name) in [(0, "eval-a_0000.png"), (2, "eval-a_0012.jpg"), (4, "eval-a_0002.png")] {
        let ours = dets_of(&results[slot]);
        let expected = reference_dets(&by_name(name));
        let mut stats = MatchStats::default();
        match_dets(&expected, &ours, 0.98, 0.01, &mut stats);
        assert_eq!(
            (stats.matched, stats.ours),
            (expected.len(), expected.len()),
            "slot {slot} holds {name}'s boxes"
        );
        for region in results[slot]["result"].as_array().expect("regions") {
            assert_eq!(region["from_name"], "label");
            assert_eq!(region["to_name"], "image");
            assert_eq!(region["type"], "rectanglelabels");
            assert_eq!(region["image_rotation"], 0);
            assert!(region["id"].as_str().is_some_and(|id| !id.is_empty()));
            assert_eq!(region["original_width"], by_name(name)["width"]);
            assert_eq!(region["original_height"], by_name(name)["height"]);
            let v = &region["value"];
            for key in ["x", "y", "width", "height"] {
                let p = v[key].as_f64().expect("percent");
                assert!((0.0..=100.0).contains(&p), "{key} = {p}");
            }
            assert_eq!(v["rotation"], 0.0);
        }
    }
    let log = server.log();
    assert!(
        log.contains("task 2:") && log.contains("404"),
        "the failed task is named in the log:\n{log}"
    );
    assert!(
        log.contains("predict model=1 tasks=5 failed=2"),
        "one summary line per request:\n{log}"
    );
}

#[tokio::test]
async fn labels_map_by_predicted_values_and_case_and_unlabelled_classes_are_dropped() {
    let images = serve_dir(eval_images());
    let server = Server::start(&[(DET, "model.onnx")], &[]).await;
    // eval-a_0000 has a circle and two triangles; only circles get a label here.
    let config = r#"<View><Image name="img" value="$photo"/>
      <RectangleLabels name="shapes" toName="img"><Label value="Round" predicted_values="circle"/></RectangleLabels></View>"#;
    let mut body = predict_body(&[String::new()], "5.1", config);
    body["tasks"][0]["data"] = json!({"photo": format!("http://{images}/eval-a_0000.png")});
    let (status, body) = server.post("/predict", &body).await;
    assert_eq!(status, 200);
    let result = body["results"][0]["result"].as_array().expect("result").clone();
    assert_eq!(result.len(), 1, "{result:?}");
    assert_eq!(result[0]["value"]["rectanglelabels"], json!(["Round"]));
    assert_eq!(
        (result[0]["from_name"].as_str(), result[0]["to_name"].as_str()),
        (Some("shapes"), Some("img"))
    );

    let config = RECT_CONFIG
        .replace("\"circle\"", "\"CIRCLE\"")
        .replace("<RectangleLabels", "<RectangleLabels model_score_threshold=\"0.9\"");
    let body = predict_body(&[format!("http://{images}/eval-a_0000.png")], "5.1", &config);
    let (_, body) = server.post("/predict", &body).await;
    let result = body["results"][0]["result"].as_array().expect("result").clone();
    // Only the 0.977 circle clears 0.9, and it takes the config's spelling.
    assert_eq!(result.len(), 1, "{result:?}");
    assert_eq!(result[0]["value"]["rectanglelabels"], json!(["CIRCLE"]));
}

#[tokio::test]
async fn endpoints_answer_label_studio_in_time_and_in_json() {
    let server = Server::start(&[(DET, "7.onnx")], &[]).await;

    let t = Instant::now();
    let (status, health) = server.get("/health").await;
    let health_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "UP");
    assert_eq!(health["models"]["ready"], 1);

    let t = Instant::now();
    let (status, setup) = server
        .post(
            "/setup",
            &json!({"project": "7.1795800822", "schema": RECT_CONFIG, "hostname": "http://localhost:8080",
                                "access_token": "abc", "extra_params": null}),
        )
        .await;
    let setup_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(status, 200, "{setup}");
    let version = setup["model_version"].as_str().expect("a string version").to_string();
    assert!(
        version.starts_with("7-") && version.contains("yolov8-detect"),
        "{version}"
    );
    report(&format!("/health {health_ms:.1} ms, /setup {setup_ms:.1} ms"));
    // Not a speed target (that is the benchmark's): these are Label Studio's own timeouts
    // (ML_TIMEOUT_HEALTH 1 s, ML_TIMEOUT_SETUP 3 s), past which it marks the backend broken.
    assert!(health_ms < 1000.0 && setup_ms < 3000.0, "Label Studio's own timeouts");

    // The same file gives the same version; the version is in /versions and /models.
    let (_, again) = server.post("/setup", &json!({"project": "7.1"})).await;
    assert_eq!(again["model_version"], version.as_str());
    let (_, versions) = server.get("/versions").await;
    assert_eq!(versions["versions"], json!([version]));
    let (_, models) = server.get("/models").await;
    let model = &models["models"][0];
    assert_eq!(model["name"], "7");
    assert_eq!(model["state"], "ready");
    assert_eq!(
        model["adapter"].as_str().map(|a| a.starts_with("yolov8-detect")),
        Some(true)
    );
    // What scripts/cuda-check.sh asks for, where it runs the suite on a GPU.
    let provider = std::env::var("ML_PROVIDER").unwrap_or_else(|_| "cpu".into());
    assert_eq!(model["provider"], provider.as_str());
    assert_eq!(model["input_shape"], json!([1, 3, 320, 320]));
    assert_eq!(model["class_names"], json!(["circle", "square", "triangle"]));
    let (_, plugins) = server.get("/plugins").await;
    assert!(
        plugins["plugins"]
            .as_array()
            .expect("plugins")
            .iter()
            .any(|p| p["name"] == "yolov8-detect" && p["tasks"] == json!(["detect"]))
    );

    for action in ["ANNOTATION_CREATED", "ANNOTATIONS_DELETED", "PROJECT_UPDATED"] {
        let (status, body) = server
            .post("/webhook", &json!({"action": action, "project": {"id": 7}}))
            .await;
        assert_eq!((status, body), (200, json!({"status": "ok"})), "{action}");
    }
    // Start Training answers at once with the job Label Studio records.
    let (status, body) = server
        .post(
            "/webhook",
            &json!({"action": "START_TRAINING", "project": {"id": 7, "title": "t"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let job = body["job"].as_u64().expect("a job id");
    let (status, listed) = server.get(&format!("/jobs/{job}")).await;
    assert_eq!(
        (status, listed["kind"].as_str(), listed["project"].as_u64()),
        (200, Some("train"), Some(7))
    );

    let text = server.get_text("/metrics").await;
    assert!(
        text.contains("ls_ml_requests_total{endpoint=\"setup\",status=\"200\"} 2"),
        "{text}"
    );
    assert!(text.contains("ls_ml_models{state=\"ready\"} 1"), "{text}");
    assert!(text.contains("ls_ml_jobs{kind=\"train\",state="), "{text}");
    assert!(text.contains("ls_ml_stage_seconds_count{stage=\"infer\"}"), "{text}");
}

#[tokio::test]
async fn whole_request_errors_are_json_with_a_clear_message() {
    let server = Server::start(&[(DET, "a.onnx"), (DET, "b.onnx")], &[]).await;
    let r = server
        .http
        .post(server.url("/predict"))
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.expect("json error body");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("JSON")), "{body}");

    // Two models and no project model or default: which one is ambiguous.
    let (status, body) = server
        .post(
            "/predict",
            &predict_body(&["http://x/a.png".into()], "3.1", RECT_CONFIG),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let detail = body["detail"].as_str().expect("detail");
    assert!(
        detail.contains("3.onnx") && detail.contains("ML_DEFAULT_MODEL"),
        "{detail}"
    );
    // /setup answers the same status and message for the same error.
    let (status, setup) = server
        .post("/setup", &json!({"project": "3.1", "schema": RECT_CONFIG}))
        .await;
    assert_eq!((status, &setup["detail"]), (404, &body["detail"]), "{setup}");
    // And a bad model_path is the request's fault in both.
    let bad = RECT_CONFIG.replace("<RectangleLabels ", r#"<RectangleLabels model_path="../a.onnx" "#);
    let (predict_status, _) = server
        .post("/predict", &predict_body(&["http://x/a.png".into()], "3.1", &bad))
        .await;
    let (setup_status, _) = server.post("/setup", &json!({"project": "3.1", "schema": bad})).await;
    assert_eq!((predict_status, setup_status), (400, 400));

    let (status, body) = server.get("/nope").await;
    assert_eq!(status, 404);
    assert!(body["detail"].is_string());
}

#[tokio::test]
async fn routing_prefers_the_project_model_then_the_default() {
    let server = Server::start(
        &[
            (DET, "3.onnx"),
            ("yolov8n-shapes-det-320-dynamic.onnx", "fallback.onnx"),
        ],
        &[("ML_DEFAULT_MODEL", "fallback.onnx")],
    )
    .await;
    let (_, three) = server.post("/setup", &json!({"project": "3.1"})).await;
    let (_, other) = server.post("/setup", &json!({"project": "4.1"})).await;
    assert!(
        three["model_version"].as_str().is_some_and(|v| v.starts_with("3-")),
        "{three}"
    );
    assert!(
        other["model_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("fallback-")),
        "{other}"
    );
}

#[tokio::test]
async fn an_empty_models_folder_starts_and_says_how_to_add_a_model() {
    let server = Server::start(&[], &[]).await;
    let (status, health) = server.get("/health").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("UP")));
    let (status, body) = server
        .post(
            "/predict",
            &predict_body(&["http://x/a.png".into()], "1.1", RECT_CONFIG),
        )
        .await;
    assert_eq!(status, 404);
    assert!(body["detail"].as_str().is_some_and(|d| d.contains(".onnx")), "{body}");
    assert!(
        server.log().contains("copy a YOLOv8 .onnx file there"),
        "{}",
        server.log()
    );
}

#[tokio::test]
async fn a_taken_port_is_a_clear_start_up_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let models = tempfile::tempdir().expect("dir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ls-ml-backend"))
        .env("ML_BACKEND_ADDR", "127.0.0.1")
        .env("ML_BACKEND_PORT", port.to_string())
        .env("ML_MODELS_DIR", models.path())
        .env("ML_PLUGINS_DIR", plugins_dir(&["yolov8_detect"]).path())
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")) && stderr.contains("ML_BACKEND_PORT"),
        "{stderr}"
    );
}

/// A detection model and a RectangleLabels config: a click has no tag to be answered in (an
/// empty result, and the log says why), while a box snaps to the best-overlapping detection.
#[tokio::test]
async fn a_detector_answers_a_smart_box_with_its_detection_and_a_click_with_nothing() {
    let images = serve_dir(eval_images());
    let server = Server::start(&[(DET, "1.onnx")], &[]).await;
    let mut body = predict_body(&[format!("http://{images}/eval-a_0000.png")], "1.1", RECT_CONFIG);
    body["params"]["context"] = json!({"result": [{"type": "keypointlabels", "value": {"x": 50.0, "y": 50.0}}]});
    let (status, answer) = server.post("/predict", &body).await;
    assert_eq!(status, 200);
    assert_eq!(answer["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(answer["results"][0]["result"], json!([]));
    assert!(
        server.log().contains("has no BrushLabels or PolygonLabels tag"),
        "the log says why"
    );

    // The ground-truth triangle of eval-a_0000 (360 x 640), drawn a little loosely.
    let truth = [204.196, 332.851, 269.395, 372.884];
    let (w, h) = (360.0, 640.0);
    let drawn = [truth[0] - 4.0, truth[1] - 3.0, truth[2] + 3.0, truth[3] + 4.0];
    body["params"]["context"] = json!({"result": [{"type": "rectanglelabels", "from_name": "label", "to_name": "image",
        "value": {"x": drawn[0] / w * 100.0, "y": drawn[1] / h * 100.0, "width": (drawn[2] - drawn[0]) / w * 100.0,
                  "height": (drawn[3] - drawn[1]) / h * 100.0, "rotation": 0, "rectanglelabels": ["triangle"]}}]});
    let (status, answer) = server.post("/predict", &body).await;
    assert_eq!(status, 200);
    let result = answer["results"][0]["result"].as_array().expect("result");
    assert_eq!(result.len(), 1, "{answer}");
    let det = det_of(&result[0]);
    assert_eq!(det.class, "triangle");
    assert!(iou(&det.xyxy, &truth) > 0.8, "the detection's own box: {:?}", det.xyxy);
}

#[tokio::test]
async fn the_health_check_flag_reports_whether_a_server_answers() {
    let server = Server::start(&[], &[]).await;
    let check = |port: u16| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ls-ml-backend"))
            .arg("--health-check")
            .env_clear()
            .env("ML_BACKEND_PORT", port.to_string())
            .output()
            .expect("run the health check")
    };
    let up = check(server.port);
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let down = check(free_port());
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("did not answer"));
}

/// The OpenAPI document is served, and its routes answer: none of them is unknown to the
/// server (the unit test holds the document to the route table).
#[tokio::test]
async fn the_openapi_document_describes_routes_that_answer() {
    let server = Server::start(&[(DET, "1.onnx")], &[]).await;
    let (status, document) = server.get("/openapi.json").await;
    assert_eq!(status, 200, "{document}");
    assert!(
        document["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{document}"
    );
    let paths = document["paths"].as_object().expect("paths");
    assert!(paths.len() >= 15, "{paths:?}");
    for (path, item) in paths {
        let concrete = path.replace("{name}", "no-such-model").replace("{id}", "999999");
        for method in item.as_object().expect("path item").keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let answer = server
                .http
                .request(method.clone(), server.url(&concrete))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("answer");
            let status = answer.status().as_u16();
            let body: Value = answer.json().await.unwrap_or(Value::Null);
            assert!(
                status != 405 && body["error_type"] != "no_endpoint",
                "{method} {concrete}: {status} {body}"
            );
        }
    }
}

/// A compose file written for the official YOLO backend: its names for our settings work
/// (each said in the log), blank variables are unset (`ML_DEFAULT_MODEL=` names no model ""),
/// and `model_path="yolov8n.pt"` finds the ONNX export of the same weights.
#[tokio::test]
async fn the_official_backends_settings_and_model_paths_work() {
    let images = serve_dir(eval_images());
    let root = tempfile::tempdir().expect("dir");
    std::fs::copy(fixture_model(DET), root.path().join("yolov8n.onnx")).expect("copy");
    let root_path = root.path().to_str().expect("utf-8").to_string();
    let official = [
        ("ML_MODELS_DIR", ""),
        ("MODEL_ROOT", root_path.as_str()),
        ("ML_DEFAULT_MODEL", " "),
        ("MODEL_SCORE_THRESHOLD", "0.9"),
        ("RUST_LOG", ""),
        ("LOG_LEVEL", "INFO"),
        // The official compose file leaves both blank: no auth, not a failed start.
        ("BASIC_AUTH_USER", ""),
        ("BASIC_AUTH_PASS", ""),
    ];
    let server = Server::start_in(
        tempfile::tempdir().expect("dir"),
        plugins_dir(&["yolov8_detect"]),
        &official,
    )
    .await;
    let (_, models) = server.get("/models").await;
    assert_eq!(
        models["models"][0]["name"], "yolov8n",
        "served from MODEL_ROOT: {models}"
    );
    let config = RECT_CONFIG.replace("<RectangleLabels ", r#"<RectangleLabels model_path="yolov8n.pt" "#);
    let body = predict_body(&[format!("http://{images}/eval-a_0000.png")], "1.1", &config);
    let (status, answer) = server.post("/predict", &body).await;
    assert_eq!(status, 200, "{answer}");
    let scores: Vec<f64> = answer["results"][0]["result"]
        .as_array()
        .expect("result")
        .iter()
        .filter_map(|r| r["score"].as_f64())
        .collect();
    assert!(
        !scores.is_empty() && scores.iter().all(|s| *s > 0.9),
        "MODEL_SCORE_THRESHOLD=0.9: {scores:?}"
    );
    let log = server.log();
    for said in [
        "MODEL_ROOT (the official YOLO backend's name) is read as ML_MODELS_DIR",
        "MODEL_SCORE_THRESHOLD (the official YOLO backend's name) is read as ML_CONF",
        "LOG_LEVEL (the official YOLO backend's name) is read as RUST_LOG",
        "blank, so unset: ",
        r#"model_path="yolov8n.pt" is served by yolov8n.onnx"#,
    ] {
        assert!(log.contains(said), "{said:?} in\n{log}");
    }

    // ALLOW_CUSTOM_MODEL_PATH=false: a tag's model_path is ignored, even one naming nothing.
    let nothing = RECT_CONFIG.replace("<RectangleLabels ", r#"<RectangleLabels model_path="nothing.pt" "#);
    let body = predict_body(&[format!("http://{images}/eval-a_0000.png")], "1.1", &nothing);
    let (status, answer) = server.post("/predict", &body).await;
    assert_eq!(status, 404, "allowed, it names no model: {answer}");
    let ignoring = [official.as_slice(), &[("ALLOW_CUSTOM_MODEL_PATH", "False")]].concat();
    let server = Server::start_in(
        tempfile::tempdir().expect("dir"),
        plugins_dir(&["yolov8_detect"]),
        &ignoring,
    )
    .await;
    let (status, answer) = server.post("/predict", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["results"][0]["result"].as_array().is_some_and(|r| !r.is_empty()),
        "{answer}"
    );
}

/// A tracker setting the server cannot follow (re-identification, an unknown key) is answered
/// at /setup with its reason, where Label Studio's Validate and Save shows it.
#[tokio::test]
async fn a_wrong_tracker_setting_is_refused_at_setup() {
    let server = Server::start(&[(DET, "1.onnx")], &[]).await;
    let config = |attributes: &str| {
        format!(
            r#"<View><Video name="video" value="$video"/><VideoRectangle name="box" toName="video" {attributes}/>
               <Labels name="labels" toName="video"><Label value="circle"/></Labels></View>"#
        )
    };
    let (status, body) = server
        .post("/setup", &json!({"project": "1.1", "schema": config("")}))
        .await;
    assert_eq!(status, 200, "{body}");
    for (attributes, says) in [
        (r#"botsort_with_reid="true""#, "with_reid"),
        (r#"botsort_max_age="3""#, "botsort_max_age"),
        (r#"model_tracker="deepsort""#, "model_tracker"),
    ] {
        let (status, body) = server
            .post("/setup", &json!({"project": "1.1", "schema": config(attributes)}))
            .await;
        assert_eq!(
            (status, body["error_type"].as_str()),
            (400, Some("bad_label_config")),
            "{attributes}: {body}"
        );
        assert!(
            body["detail"].as_str().is_some_and(|d| d.contains(says)),
            "{attributes}: {body}"
        );
    }
}
