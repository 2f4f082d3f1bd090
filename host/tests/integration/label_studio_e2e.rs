//! End to end with a real Label Studio 1.23.2: the test drives Label Studio only through its
//! REST API, as a user's browser does, and Label Studio drives our backend. Run twice: with
//! the legacy token, and with a personal access token (plus Basic auth on the backend).

mod jobs;

use std::collections::BTreeMap;

use crate::common::{label_studio::*, *};
use serde_json::{Value, json};

const MIN_IOU: f64 = 0.98;
const MAX_CONF_DIFF: f64 = 0.01;
const BASIC_USER: &str = "ls-e2e";
const BASIC_PASS: &str = "basic-pass-e2e-7781";

struct Scenario {
    name: &'static str,
    /// Environment of our backend.
    env: Vec<(&'static str, String)>,
    /// Whether LS connects with Basic auth.
    basic_auth: bool,
    secrets: Vec<String>,
}

/// Steps 1-6 of a user's session, then checks what Label Studio stored.
async fn run(ls: &LabelStudio, scenario: Scenario) {
    let env: Vec<(&str, &str)> = scenario.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start(&[("yolov8n-shapes-det-320.onnx", "yolov8n-shapes-det-320.onnx")], &env).await;

    // 1. A project with a RectangleLabels config.
    let project = ls.create_project(&format!("e2e {}", scenario.name), RECT_CONFIG).await;

    // 2. The eval-a images, uploaded through the import API.
    let reference = load_json(&fixtures().join("eval-a/reference_yolov8n-shapes-det-320.json"));
    let entries = reference["images"].as_array().expect("images");
    let files: Vec<_> = entries
        .iter()
        .map(|e| eval_images().join(e["file_name"].as_str().expect("file name")))
        .collect();
    assert_eq!(
        ls.upload(project, &files).await,
        files.len(),
        "every image became a task"
    );
    let tasks = ls.tasks(project).await;
    assert_eq!(tasks.len(), files.len());
    let image = |t: &Value| t["data"]["image"].as_str().expect("image").to_string();
    assert!(
        tasks.iter().all(|t| image(t).starts_with("/data/upload/")),
        "uploads are relative Label Studio paths: {}",
        image(&tasks[0])
    );

    // 3. Connect our backend, as Settings > Model > Connect Model does.
    let mut connect = json!({
        "url": server.url(""), "project": project, "title": "ls-ml-backend", "is_interactive": false,
        "auth_method": "NONE",
    });
    if scenario.basic_auth {
        connect["auth_method"] = json!("BASIC_AUTH");
        connect["basic_auth_user"] = json!(BASIC_USER);
        connect["basic_auth_pass"] = json!(BASIC_PASS);
    }
    let ml = ls.expect_post("/api/ml", &connect).await;
    let ml_id = ml["id"].as_u64().expect("ml id");
    let ml = ls.expect_get(&format!("/api/ml/{ml_id}")).await;
    assert_eq!(ml["state"], "CO", "connected: {ml}");
    let version = ml["model_version"].as_str().expect("model_version").to_string();
    assert!(version.starts_with("yolov8n-shapes-det-320-"), "{version}");

    // 5 (before 4, so that it is the one that asks): open a task, as clicking it does.
    let first = tasks[0]["id"].as_u64().expect("task id");
    let opened = ls.expect_get(&format!("/api/tasks/{first}?project={project}")).await;
    assert_eq!(
        opened["predictions"].as_array().map(Vec::len),
        Some(1),
        "opening a task predicts it: {}",
        opened["predictions"]
    );

    // 4. Retrieve Predictions on every task.
    let retrieved = ls
        .expect_post(
            &format!("/api/dm/actions?id=retrieve_tasks_predictions&project={project}"),
            &json!({"ordering": [], "selectedItems": {"all": true, "excluded": []},
                    "filters": {"conjunction": "and", "items": []}, "project": project.to_string()}),
        )
        .await;
    assert_eq!(retrieved["processed_items"], files.len(), "{retrieved}");

    // 6. Read the predictions back and compare them with Ultralytics' own.
    let predictions = ls.predictions(project).await;
    let mut by_task: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for p in &predictions {
        by_task.entry(p["task"].as_u64().expect("task")).or_default().push(p);
    }
    let mut stats = MatchStats::default();
    let mut predicted = 0;
    for task in &tasks {
        let id = task["id"].as_u64().expect("id");
        let stored = by_task.get(&id).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(stored.len(), 1, "task {id} has exactly one prediction: {stored:?}");
        let prediction = stored[0];
        assert_eq!(
            prediction["model_version"],
            version.as_str(),
            "the version /setup reported"
        );
        // Uploads are stored as `<8 hex>-<original name>`.
        let path = image(task);
        let file = path.rsplit('/').next().and_then(|f| f.split_once('-')).map(|(_, f)| f);
        let entry = entries
            .iter()
            .find(|e| Some(e["file_name"].as_str().expect("name")) == file)
            .unwrap_or_else(|| panic!("no reference for {path}"));
        let ours = dets_of(prediction);
        if !ours.is_empty() {
            predicted += 1;
        }
        match_dets(&reference_dets(entry), &ours, MIN_IOU, MAX_CONF_DIFF, &mut stats);
    }
    report(&format!(
        "label studio e2e ({}): {}/{} tasks got predictions ({} with regions, {} stored in all); parity {}/{} \
         reference detections matched ({:.2}%), {} extra, min IoU {:.4}, max |dconf| {:.5}",
        scenario.name,
        by_task.len(),
        tasks.len(),
        predicted,
        predictions.len(),
        stats.matched,
        stats.reference,
        100.0 * stats.matched_ratio(),
        stats.extra(),
        stats.min_iou,
        stats.max_conf_diff
    ));
    assert!(stats.reference > 100);
    assert!(stats.matched_ratio() >= 0.99, "matched {:.4}", stats.matched_ratio());
    assert!(stats.extra_ratio() <= 0.01, "extra {:.4}", stats.extra_ratio());

    // Send Test Request: Label Studio shows the backend's answer (its `results`) to the user.
    let test = ls
        .expect_post(&format!("/api/ml/{ml_id}/predict/test?random=true"), &json!({}))
        .await;
    assert!(
        test["response"][0]["result"].as_array().is_some_and(|r| !r.is_empty()),
        "test request: {test}"
    );

    // Start Training: a START_TRAINING webhook, which we accept and log.
    ls.expect_post(&format!("/api/ml/{ml_id}/train"), &json!({})).await;
    // An annotation: the project webhook Label Studio created, which sends no Basic auth.
    ls.expect_post(
        &format!("/api/tasks/{first}/annotations?project={project}"),
        &json!({"result": [{"id": "a1", "from_name": "label", "to_name": "image", "type": "rectanglelabels",
                 "original_width": 320, "original_height": 320, "image_rotation": 0,
                 "value": {"x": 10, "y": 10, "width": 20, "height": 20, "rotation": 0, "rectanglelabels": ["circle"]}}],
                "lead_time": 1.5}),
    )
    .await;

    let log = server.log();
    for needle in ["webhook START_TRAINING", "webhook ANNOTATION_CREATED"] {
        assert!(log.contains(needle), "our log has `{needle}`:\n{log}");
    }
    assert!(!log.contains("left empty"), "no task failed:\n{log}");
    for secret in &scenario.secrets {
        assert!(!log.contains(secret.as_str()), "a secret reached our log");
    }
}

#[tokio::test]
#[ignore = "needs Label Studio (scripts/setup-label-studio.sh); scripts/test.sh runs it"]
async fn legacy_token_with_the_address_from_setup() {
    let ls = LabelStudio::get().await;
    // No LABEL_STUDIO_URL: the address comes from /setup's `hostname`.
    run(
        &ls,
        Scenario {
            name: "legacy token",
            env: vec![("LABEL_STUDIO_API_KEY", LEGACY_TOKEN.to_string())],
            basic_auth: false,
            secrets: vec![LEGACY_TOKEN.to_string()],
        },
    )
    .await;
}

#[tokio::test]
#[ignore = "needs Label Studio (scripts/setup-label-studio.sh); scripts/test.sh runs it"]
async fn personal_access_token_and_basic_auth() {
    let ls = LabelStudio::get().await;
    let pat = ls.expect_post("/api/token/", &json!({})).await["token"]
        .as_str()
        .expect("a personal access token")
        .to_string();
    run(
        &ls,
        Scenario {
            name: "personal access token",
            env: vec![
                ("LABEL_STUDIO_URL", ls.url.clone()),
                ("LABEL_STUDIO_API_KEY", pat.clone()),
                ("BASIC_AUTH_USER", BASIC_USER.to_string()),
                ("BASIC_AUTH_PASS", BASIC_PASS.to_string()),
            ],
            basic_auth: true,
            secrets: vec![pat, BASIC_PASS.to_string()],
        },
    )
    .await;
}

/// A segmentation model fills a PolygonLabels project and a BrushLabels project, and Label
/// Studio stores what it sends.
#[tokio::test]
#[ignore = "needs Label Studio (scripts/setup-label-studio.sh); scripts/test.sh runs it"]
async fn segmentation_fills_polygon_and_brush_projects() {
    let ls = LabelStudio::get().await;
    let env = [
        ("LABEL_STUDIO_URL", ls.url.as_str()),
        ("LABEL_STUDIO_API_KEY", LEGACY_TOKEN),
    ];
    let seg = "yolov8n-shapes-seg-320.onnx";
    let server = Server::start_with_plugins(&[(seg, seg)], &env, &["yolov8_detect", "yolov8_seg"]).await;
    let reference = load_json(&fixtures().join("eval-a/reference_yolov8n-shapes-seg-320.json"));
    let entries: Vec<&Value> = reference["images"]
        .as_array()
        .expect("images")
        .iter()
        .take(10)
        .collect();
    let files: Vec<_> = entries
        .iter()
        .map(|e| eval_images().join(e["file_name"].as_str().expect("file name")))
        .collect();

    for (kind, tag) in [("polygonlabels", "PolygonLabels"), ("brushlabels", "BrushLabels")] {
        let config = shapes_config(&[(tag, "shapes")]);
        let project = ls.create_project(&format!("e2e {kind}"), &config).await;
        assert_eq!(ls.upload(project, &files).await, files.len());
        let version = ls.connect(project, &server.url("")).await;
        ls.retrieve_predictions(project).await;
        let tasks = ls.tasks(project).await;
        let predictions = ls.predictions(project).await;
        assert_eq!(
            predictions.len(),
            tasks.len(),
            "one stored prediction per task ({kind})"
        );
        let mut regions = 0;
        for p in &predictions {
            assert_eq!(p["model_version"], version);
            for r in p["result"].as_array().expect("result") {
                assert_eq!(r["type"], kind);
                regions += 1;
                let (w, h) = (
                    r["original_width"].as_u64().expect("width") as usize,
                    r["original_height"].as_u64().expect("height") as usize,
                );
                if kind == "brushlabels" {
                    let rle = rle_of(r);
                    let decoded = labelstudio_protocol::brush::decode(&rle).expect("stored RLE decodes");
                    assert_eq!(decoded.len(), w * h * 4, "the stored mask covers the image");
                } else {
                    assert!(r["value"]["points"].as_array().is_some_and(|p| p.len() >= 3));
                }
            }
        }
        let expected: usize = entries
            .iter()
            .map(|e| e["detections"].as_array().map_or(0, Vec::len))
            .sum();
        report(&format!(
            "label studio e2e ({kind}): {}/{} tasks got predictions stored, {regions} regions (Ultralytics: {expected} \
             instances)",
            predictions.len(),
            tasks.len()
        ));
        assert!(
            regions >= expected * 9 / 10,
            "{regions} regions for {expected} instances"
        );
    }
    assert!(!server.log().contains("left empty"), "no task failed");
}

/// A pose project (KeyPointLabels with their `_bbox` parents) and an oriented-box project
/// (rotated RectangleLabels): Label Studio stores what the backend sends, with the region
/// counts of Ultralytics' predictions and the keypoints linked to their boxes.
#[tokio::test]
#[ignore = "needs Label Studio (scripts/setup-label-studio.sh); scripts/test.sh runs it"]
async fn pose_and_oriented_boxes_fill_their_projects() {
    let ls = LabelStudio::get().await;
    let env = [
        ("LABEL_STUDIO_URL", ls.url.as_str()),
        ("LABEL_STUDIO_API_KEY", LEGACY_TOKEN),
    ];
    let pose_labels: String = ["square", "triangle"]
        .iter()
        .flat_map(|class| {
            (0..4).map(move |k| format!(r#"<Label value="{class}-{k}" predicted_values="{class}" model_index="{k}"/>"#))
        })
        .collect();
    let pose_config = format!(
        r#"<View><Image name="image" value="$image"/>
  <RectangleLabels name="pose_bbox" toName="image" model_skip="true"><Label value="square"/><Label value="triangle"/></RectangleLabels>
  <KeyPointLabels name="pose" toName="image">{pose_labels}</KeyPointLabels></View>"#
    );
    let obb_config = r#"<View><Image name="image" value="$image"/>
  <RectangleLabels name="label" toName="image" model_obb="true"><Label value="square"/><Label value="rectangle"/></RectangleLabels></View>"#;
    let cases = [
        ("yolov8t-shapes-pose-320.onnx", "eval-pose", pose_config.as_str()),
        ("yolov8t-shapes-obb-256x320.onnx", "eval-obb", obb_config),
    ];
    for (model, eval_set, config) in cases {
        let server =
            Server::start_with_plugins(&[(model, model)], &env, &["yolov8_detect", "yolov8_pose", "yolov8_obb"]).await;
        let dir = fixtures().join(eval_set);
        let reference = load_json(&dir.join(format!("reference_{}", model.replace(".onnx", ".json"))));
        let entries: Vec<&Value> = reference["images"].as_array().expect("images").iter().take(8).collect();
        let files: Vec<_> = entries
            .iter()
            .map(|e| dir.join("images").join(e["file_name"].as_str().expect("file name")))
            .collect();
        let project = ls.create_project(&format!("e2e {eval_set}"), config).await;
        assert_eq!(ls.upload(project, &files).await, files.len());
        let version = ls.connect(project, &server.url("")).await;
        ls.retrieve_predictions(project).await;
        let tasks = ls.tasks(project).await;
        let predictions = ls.predictions(project).await;
        assert_eq!(
            predictions.len(),
            tasks.len(),
            "one stored prediction per task ({eval_set})"
        );
        let (mut boxes, mut points, mut linked, mut turned) = (0, 0, 0, 0);
        for p in &predictions {
            assert_eq!(p["model_version"], version);
            let result = p["result"].as_array().expect("result");
            let ids: Vec<&Value> = result.iter().map(|r| &r["id"]).collect();
            for r in result {
                match r["type"].as_str() {
                    Some("rectanglelabels") => {
                        boxes += 1;
                        let rotation = r["value"]["rotation"].as_f64().expect("rotation") % 90.0;
                        turned += usize::from(rotation > 5.0 && rotation < 85.0);
                    }
                    Some("keypointlabels") => {
                        points += 1;
                        linked += usize::from(ids.contains(&&r["parentID"]));
                    }
                    other => panic!("unexpected region type {other:?}"),
                }
            }
        }
        let instances: usize = entries
            .iter()
            .map(|e| e["detections"].as_array().map_or(0, Vec::len))
            .sum();
        let keypoints: usize = entries
            .iter()
            .flat_map(|e| e["detections"].as_array().into_iter().flatten())
            .map(|d| d["keypoints"].as_array().map_or(0, Vec::len))
            .sum();
        report(&format!(
            "label studio e2e ({eval_set}): {}/{} tasks got predictions stored, {boxes} boxes ({turned} turned), \
             {points} keypoints ({linked} linked to their box); Ultralytics: {instances} instances, {keypoints} keypoints",
            predictions.len(),
            tasks.len()
        ));
        assert_eq!(boxes, instances, "{eval_set}: one box per instance");
        assert_eq!(points, keypoints, "{eval_set}: every keypoint");
        assert_eq!(linked, points, "every keypoint names its stored box as parent");
        if eval_set == "eval-obb" {
            assert!(
                turned * 2 >= boxes,
                "the stored boxes keep their rotation: {turned} of {boxes}"
            );
        }
        assert!(!server.log().contains("left empty"), "no task failed");
    }
}

/// A video project: an uploaded MP4, Retrieve Predictions, and the stored `videorectangle`
/// tracks are the ones our backend answers for the same file, on the video's frames.
#[tokio::test]
#[ignore = "needs Label Studio and ffmpeg (scripts/setup-label-studio.sh, scripts/setup-ffmpeg.sh); scripts/test.sh runs it"]
async fn video_tracking_fills_a_video_rectangle_project() {
    let ls = LabelStudio::get().await;
    let env = [
        ("LABEL_STUDIO_URL", ls.url.as_str()),
        ("LABEL_STUDIO_API_KEY", LEGACY_TOKEN),
    ];
    let det = "yolov8n-shapes-det-320.onnx";
    let server = Server::start(&[(det, det)], &env).await;
    let config = r#"<View>
  <Video name="video" value="$video" frameRate="30"/>
  <VideoRectangle name="box" toName="video" model_tracker="bytetrack"/>
  <Labels name="videoLabels" toName="video">
    <Label value="circle"/><Label value="square"/><Label value="triangle"/>
  </Labels>
</View>"#;
    let project = ls.create_project("e2e video", config).await;
    let video = fixtures().join("video/cross.mp4");
    assert_eq!(ls.upload(project, std::slice::from_ref(&video)).await, 1);
    let tasks = ls.tasks(project).await;
    let path = tasks[0]["data"]["video"].as_str().expect("video path").to_string();
    assert!(path.starts_with("/data/upload/"), "{path}");
    let version = ls.connect(project, &server.url("")).await;
    let started = std::time::Instant::now();
    ls.retrieve_predictions(project).await;
    let seconds = started.elapsed().as_secs_f64();
    let predictions = ls.predictions(project).await;
    assert_eq!(
        predictions.len(),
        1,
        "one stored prediction: {predictions:?}\n{}",
        server.log()
    );
    assert_eq!(predictions[0]["model_version"], version);
    let stored = predictions[0]["result"].as_array().cloned().expect("result");

    // The same video straight from the file, through our /predict.
    let addr = serve_dir(fixtures().join("video"));
    let body = json!({"tasks": [{"id": 1, "data": {"video": format!("http://{addr}/cross.mp4")}}],
                      "label_config": config, "project": project.to_string()});
    let (status, answer) = server.post("/predict", &body).await;
    assert_eq!(status, 200, "{answer}");
    let direct = answer["results"][0]["result"].as_array().cloned().expect("result");

    let reference = load_json(&fixtures().join("video/reference/cross.json"));
    let frames = reference["frames"].as_u64().expect("frames");
    let shape = |regions: &[Value]| -> Vec<(String, Vec<u64>)> {
        regions
            .iter()
            .map(|r| {
                assert_eq!(r["type"], "videorectangle", "{r}");
                assert_eq!(
                    (r["from_name"].as_str(), r["to_name"].as_str()),
                    (Some("box"), Some("video"))
                );
                assert_eq!(r["value"]["framesCount"].as_u64(), Some(frames), "framesCount of {r}");
                let sequence: Vec<u64> = r["value"]["sequence"]
                    .as_array()
                    .expect("sequence")
                    .iter()
                    .map(|b| b["frame"].as_u64().expect("frame"))
                    .collect();
                assert!(
                    sequence.iter().all(|f| (1..=frames).contains(f)),
                    "frames within the video: {sequence:?}"
                );
                (r["value"]["labels"][0].as_str().expect("label").to_string(), sequence)
            })
            .collect()
    };
    let (stored_shape, direct_shape) = (shape(&stored), shape(&direct));
    assert_eq!(stored_shape, direct_shape, "Label Studio stored the tracks we send");
    let boxes: usize = stored_shape.iter().map(|(_, s)| s.len()).sum();
    let reference_boxes: usize = reference["runs"]["bytetrack"]["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .map(|f| f["tracks"].as_array().map_or(0, Vec::len))
        .sum();
    report(&format!(
        "label studio e2e (video): {} tracks with {boxes} boxes stored over {frames} frames (Ultralytics: \
         {reference_boxes} boxes); Retrieve Predictions took {seconds:.1} s",
        stored.len()
    ));
    assert!(
        boxes.abs_diff(reference_boxes) <= reference_boxes / 20,
        "{boxes} boxes for Ultralytics' {reference_boxes}"
    );
    assert!(
        !server.log().contains("left empty"),
        "no task failed:\n{}",
        server.log()
    );
}

/// Smart tools: the backend connected with `is_interactive: true`, and Label Studio's own
/// `interactive-annotating` call (what the labeling page sends when an annotator clicks with a
/// smart KeyPointLabels tool or drags a smart RectangleLabels box) comes back with our mask and
/// polygon, and the mask decodes to the image's size with Label Studio's own decoder.
#[tokio::test]
#[ignore = "needs Label Studio (scripts/setup-label-studio.sh); scripts/test.sh runs it"]
async fn smart_tools_get_a_mask_and_a_polygon_through_label_studio() {
    let ls = LabelStudio::get().await;
    let env = [
        ("LABEL_STUDIO_URL", ls.url.as_str()),
        ("LABEL_STUDIO_API_KEY", LEGACY_TOKEN),
    ];
    let seg = "yolov8n-shapes-seg-320.onnx";
    let env = [env[0], env[1], ("ML_DEFAULT_MODEL", "yolov8n-shapes-seg-320")];
    let models = [
        (seg, seg),
        ("sam-tiny.encoder.onnx", "sam-tiny.encoder.onnx"),
        ("sam-tiny.decoder.onnx", "sam-tiny.decoder.onnx"),
    ];
    let server = Server::start_with_plugins(&models, &env, &["yolov8_seg", "sam"]).await;
    // The YOLO segmentation model (the project's), then segment-anything (by model_path).
    for routed in ["", r#" model_path="sam-tiny""#] {
        smart_project(&ls, &server, routed).await;
    }
    assert!(server.log().contains("interactive: task"), "our backend answered");
}

async fn smart_project(ls: &LabelStudio, server: &Server, routed: &str) {
    let labels = r#"<Label value="circle"/><Label value="square"/><Label value="triangle"/>"#;
    let config = format!(
        r#"<View><Image name="image" value="$image"/>
  <BrushLabels name="mask" toName="image"{routed}>{labels}</BrushLabels>
  <PolygonLabels name="outline" toName="image"{routed}>{labels}</PolygonLabels>
  <KeyPointLabels name="click" toName="image" smart="true" model_skip="true">{labels}</KeyPointLabels>
  <RectangleLabels name="drag" toName="image" smart="true" model_skip="true">{labels}</RectangleLabels></View>"#
    );
    let model = if routed.is_empty() { "yolov8-seg" } else { "sam" };
    let project = ls.create_project(&format!("e2e smart tools {model}"), &config).await;
    let gt = load_json(&fixtures().join("eval-a/ground_truth_coco.json"));
    let image = &gt["images"][0];
    let file = image["file_name"].as_str().expect("file");
    let (w, h) = (
        image["width"].as_f64().expect("width"),
        image["height"].as_f64().expect("height"),
    );
    let object = gt["annotations"]
        .as_array()
        .expect("annotations")
        .iter()
        .find(|a| a["image_id"] == image["id"])
        .expect("an object");
    let class = object["class_name"].as_str().expect("class");
    let b: Vec<f64> = object["bbox_xyxy"]
        .as_array()
        .expect("box")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect();
    assert_eq!(ls.upload(project, &[eval_images().join(file)]).await, 1);
    let task = ls.tasks(project).await[0]["id"].clone();
    let ml = ls
        .expect_post(
            "/api/ml",
            &json!({"url": server.url(""), "project": project, "title": "ls-ml-backend", "auth_method": "NONE",
                    "is_interactive": true}),
        )
        .await;
    assert_eq!(ml["is_interactive"], true, "{ml}");
    let click = json!({
        "id": "Kx9s", "from_name": "click", "to_name": "image", "type": "keypointlabels", "origin": "manual",
        "original_width": w, "original_height": h, "image_rotation": 0, "is_positive": true,
        "value": {"x": (b[0] + b[2]) / 2.0 / w * 100.0, "y": (b[1] + b[3]) / 2.0 / h * 100.0, "width": 0.6,
                  "keypointlabels": [class]}
    });
    let drag = json!({
        "id": "Rt4p", "from_name": "drag", "to_name": "image", "type": "rectanglelabels", "origin": "manual",
        "original_width": w, "original_height": h, "image_rotation": 0,
        "value": {"x": b[0] / w * 100.0, "y": b[1] / h * 100.0, "width": (b[2] - b[0]) / w * 100.0,
                  "height": (b[3] - b[1]) / h * 100.0, "rotation": 0, "rectanglelabels": [class]}
    });
    for (what, region) in [("a smart click", click), ("a smart box", drag)] {
        let answer = ls
            .expect_post(
                &format!("/api/ml/{}/interactive-annotating", ml["id"]),
                &json!({"task": task, "context": {"result": [region]}}),
            )
            .await;
        assert!(answer.get("errors").is_none(), "{what}: {answer}");
        let result = answer["data"]["result"].as_array().expect("data.result");
        let of = |kind: &str| result.iter().filter(|r| r["type"] == kind).collect::<Vec<_>>();
        let (masks, polygons) = (of("brushlabels"), of("polygonlabels"));
        assert_eq!(masks.len(), 1, "{what}: one mask: {answer}");
        assert!(!polygons.is_empty(), "{what}: its outline: {answer}");
        assert_eq!(masks[0]["value"]["brushlabels"][0], class);
        assert_eq!(polygons[0]["value"]["polygonlabels"][0], class);
        let rle = rle_of(masks[0]);
        let decoded = sdk_decode(&[rle]);
        assert_eq!(
            decoded[0].0,
            (w * h * 4.0) as usize,
            "{what}: Label Studio's decoder gives an RGBA image of the task's size"
        );
        report(&format!(
            "label studio e2e ({model}, {what}): interactive-annotating answered a {class} mask ({} RLE bytes) and {} \
             polygon(s)",
            masks[0]["value"]["rle"].as_array().map_or(0, Vec::len),
            polygons.len()
        ));
    }
}
