//! Label Studio protocol details through the real binary: Basic auth, per-control models
//! (`model_path`, `model_skip`), and where Label Studio's credentials may go when fetching
//! media (a stand-in Label Studio on loopback that redirects elsewhere, as presign does).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use crate::common::*;
use base64::Engine;
use serde_json::{Value, json};
use warp::{Filter, http::StatusCode, reply::Reply};

const DET: &str = "yolov8n-shapes-det-320.onnx";
const DYNAMIC: &str = "yolov8n-shapes-det-320-dynamic.onnx";

#[tokio::test]
async fn basic_auth_guards_everything_but_health_and_webhook() {
    // This test fails auth on purpose far more often than the throttle allows in a minute
    // (security.rs tests the throttle).
    let server = Server::start(
        &[(DET, "1.onnx")],
        &[
            ("BASIC_AUTH_USER", "ann"),
            ("BASIC_AUTH_PASS", "pa55-word"),
            ("ML_AUTH_FAILURES_PER_MINUTE", "1000"),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let body = predict_body(&[], "1.1", RECT_CONFIG);
    let call = |method: &str, path: &str, auth: Option<String>| {
        let mut request = match method {
            "GET" => http.get(server.url(path)),
            _ => http.post(server.url(path)).json(&body),
        };
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        request.send()
    };
    for (method, path) in [
        ("POST", "/setup"),
        ("POST", "/predict"),
        ("GET", "/versions"),
        ("GET", "/models"),
        ("GET", "/plugins"),
        ("GET", "/metrics"),
        ("GET", "/jobs"),
    ] {
        let denied = call(method, path, None).await.expect("request");
        assert_eq!(denied.status(), 401, "{method} {path} without credentials");
        assert_eq!(
            denied.headers().get("www-authenticate").and_then(|v| v.to_str().ok()),
            Some("Basic realm=\"ls-ml-backend\"")
        );
        let detail: Value = denied.json().await.expect("JSON error");
        assert!(detail["detail"].as_str().is_some_and(|d| d.contains("BASIC_AUTH_USER")));
        for wrong in [basic("ann:pa55-wor"), basic("bob:pa55-word"), "Bearer pa55-word".into()] {
            let status = call(method, path, Some(wrong)).await.expect("request").status();
            assert_eq!(status, 401, "{method} {path} with wrong credentials");
        }
        let status = call(method, path, Some(basic("ann:pa55-word")))
            .await
            .expect("request")
            .status();
        assert_eq!(status, 200, "{method} {path} with the right credentials");
    }
    // Label Studio's own webhook sends no credentials; /health must answer anyone.
    assert_eq!(call("GET", "/health", None).await.expect("health").status(), 200);
    let webhook = http
        .post(server.url("/webhook"))
        .json(&json!({"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 1}], "project": {"id": 1}}))
        .send()
        .await
        .expect("webhook");
    assert_eq!(webhook.status(), 200);
    // Start Training comes with the backend's credentials; without them it starts nothing,
    // and neither does a job request.
    let training = json!({"action": "START_TRAINING", "project": {"id": 1}});
    let denied = http
        .post(server.url("/webhook"))
        .json(&training)
        .send()
        .await
        .expect("webhook");
    assert_eq!(denied.status(), 401);
    let denied = http
        .post(server.url("/jobs"))
        .json(&json!({"kind": "train", "project": 1}))
        .send()
        .await
        .expect("jobs");
    assert_eq!(denied.status(), 401);
    let (_, jobs) = {
        let r = http
            .get(server.url("/jobs"))
            .header("Authorization", basic("ann:pa55-word"))
            .send()
            .await
            .expect("jobs");
        (r.status(), r.json::<Value>().await.expect("json"))
    };
    assert_eq!(jobs["jobs"], json!([]), "nothing was started: {jobs}");
    let admitted = http
        .post(server.url("/webhook"))
        .header("Authorization", basic("ann:pa55-word"))
        .json(&training)
        .send()
        .await
        .expect("webhook");
    assert_eq!(admitted.status(), 201);
    assert!(
        !server.log().contains("pa55-word"),
        "the password never reaches the log"
    );
}

#[tokio::test]
async fn model_path_picks_the_model_per_control_tag_and_never_leaves_the_folder() {
    let images = serve_dir(eval_images());
    let server = Server::start(&[(DET, "1.onnx"), (DYNAMIC, "other.onnx")], &[]).await;
    let (_, models) = server.get("/models").await;
    let version = |name: &str| {
        models["models"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["name"] == name))
            .and_then(|m| m["model_version"].as_str())
            .expect("version")
            .to_string()
    };
    let config = r#"<View>
      <Image name="image" value="$image"/>
      <RectangleLabels name="project_model" toName="image"><Label value="circle"/></RectangleLabels>
      <RectangleLabels name="named_model" toName="image" model_path="other.onnx"><Label value="circle"/></RectangleLabels>
      <RectangleLabels name="people_only" toName="image" model_skip="true"><Label value="circle"/></RectangleLabels>
    </View>"#;
    let expected = format!("{}+{}", version("1"), version("other"));

    let (status, setup) = server
        .post("/setup", &json!({"project": "1.17", "schema": config}))
        .await;
    assert_eq!(
        (status, setup["model_version"].as_str()),
        (200, Some(expected.as_str()))
    );

    let urls = [format!("http://{images}/eval-a_0000.png")];
    let (status, body) = server.post("/predict", &predict_body(&urls, "1.17", config)).await;
    assert_eq!(status, 200, "{body}");
    let prediction = &body["results"][0];
    assert_eq!(prediction["model_version"], expected.as_str());
    let mut per_control: HashMap<String, usize> = HashMap::new();
    for region in prediction["result"].as_array().expect("result") {
        *per_control
            .entry(region["from_name"].as_str().expect("from_name").to_string())
            .or_default() += 1;
    }
    assert!(
        per_control.get("project_model").is_some_and(|n| *n > 0),
        "{per_control:?}"
    );
    assert!(
        per_control.get("named_model").is_some_and(|n| *n > 0),
        "{per_control:?}"
    );
    assert!(!per_control.contains_key("people_only"), "model_skip is honoured");

    for escape in ["../1.onnx", "/etc/passwd", "sub/1.onnx"] {
        let config = format!(
            r#"<View><Image name="image" value="$image"/><RectangleLabels name="l" toName="image" model_path="{escape}"><Label value="circle"/></RectangleLabels></View>"#
        );
        let (status, body) = server.post("/predict", &predict_body(&urls, "1.17", &config)).await;
        assert_eq!(status, 400, "{escape}: {body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| d.contains("model_path")),
            "{body}"
        );
        let (status, _) = server
            .post("/setup", &json!({"project": "1.17", "schema": config}))
            .await;
        assert_eq!(status, 400, "{escape}");
    }
    let config = r#"<View><Image name="image" value="$image"/><RectangleLabels name="l" toName="image" model_path="nope.onnx"><Label value="circle"/></RectangleLabels></View>"#;
    let (status, body) = server.post("/predict", &predict_body(&urls, "1.17", config)).await;
    assert_eq!(status, 404, "{body}");
}

type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

fn jwt_signed(claims: &Value, signature: &str) -> String {
    let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.{signature}",
        enc(r#"{"alg":"HS256","typ":"JWT"}"#),
        enc(&claims.to_string())
    )
}

fn jwt(claims: &Value) -> String {
    jwt_signed(claims, "sig")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A stand-in for Label Studio's file endpoints: uploads want the key, and redirect to an
/// image host elsewhere (as cloud storage does); presign checks the URI and redirects too.
/// Personal access tokens are exchanged at /api/token/refresh; the first access token it
/// hands out is refused once, as after a Label Studio restart.
fn fake_label_studio(image_host: SocketAddr, seen: Seen, refreshes: Arc<AtomicUsize>) -> SocketAddr {
    let elsewhere = format!("http://localhost:{}", image_host.port());
    let record = {
        let seen = Arc::clone(&seen);
        warp::path::full()
            .and(warp::header::optional::<String>("authorization"))
            .map(move |path: warp::path::FullPath, auth: Option<String>| {
                seen.lock()
                    .expect("seen")
                    .push((path.as_str().to_string(), auth.clone()));
                auth
            })
    };
    let refresh = {
        let refreshes = Arc::clone(&refreshes);
        warp::path!("api" / "token" / "refresh")
            .and(warp::post())
            .and(warp::body::json())
            .map(move |body: Value| {
                let n = refreshes.fetch_add(1, Ordering::SeqCst) + 1;
                assert!(body["refresh"].as_str().is_some_and(|r| r.split('.').count() == 3));
                let signature = if n == 1 { "first" } else { "sig" };
                let access = jwt_signed(&json!({"exp": now() + 300, "n": n}), signature);
                warp::reply::json(&json!({ "access": access })).into_response()
            })
    };
    let accepted = |auth: &Option<String>| match auth.as_deref() {
        Some("Token legacy-key") => true,
        // Only the second access token onwards: the first one is "revoked".
        Some(bearer) => bearer.starts_with("Bearer ") && bearer.len() > 7 && !bearer.ends_with(".first"),
        None => false,
    };
    let upload = {
        let elsewhere = elsewhere.clone();
        warp::path!("data" / "upload" / "1" / String).and(record.clone()).map(
            move |file: String, auth: Option<String>| {
                if !accepted(&auth) {
                    return warp::reply::with_status(
                        warp::reply::json(&json!({"detail": "no"})),
                        StatusCode::UNAUTHORIZED,
                    )
                    .into_response();
                }
                warp::reply::with_header(StatusCode::FOUND, "location", format!("{elsewhere}/{file}")).into_response()
            },
        )
    };
    let presign = warp::path!("tasks" / u64 / "presign")
        .and(warp::query::<HashMap<String, String>>())
        .and(record)
        .map(move |task: u64, query: HashMap<String, String>, auth: Option<String>| {
            let uri = query
                .get("fileuri")
                .and_then(|f| base64::engine::general_purpose::URL_SAFE.decode(f).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            if !accepted(&auth) {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            if task != 7 || !uri.starts_with("s3://bucket/") {
                return StatusCode::NOT_FOUND.into_response();
            }
            let file = uri.trim_start_matches("s3://bucket/");
            warp::reply::with_header(StatusCode::SEE_OTHER, "location", format!("{elsewhere}/{file}")).into_response()
        });
    serve(refresh.or(upload).or(presign))
}

/// An image host that records which requests carried an Authorization header.
fn image_host(seen: Seen) -> SocketAddr {
    let files = warp::path::full()
        .and(warp::header::optional::<String>("authorization"))
        .map(move |path: warp::path::FullPath, auth: Option<String>| {
            seen.lock().expect("seen").push((path.as_str().to_string(), auth));
        })
        .untuple_one()
        .and(warp::fs::dir(eval_images()));
    serve(files)
}

async fn fetch_through(key: &str) -> (Vec<Value>, Seen, Seen, usize) {
    let at_images: Seen = Arc::default();
    let at_ls: Seen = Arc::default();
    let refreshes = Arc::new(AtomicUsize::new(0));
    let images = image_host(Arc::clone(&at_images));
    let ls = fake_label_studio(images, Arc::clone(&at_ls), Arc::clone(&refreshes));
    let server = Server::start(
        &[(DET, "1.onnx")],
        &[
            ("LABEL_STUDIO_URL", &format!("http://127.0.0.1:{}", ls.port())),
            ("LABEL_STUDIO_API_KEY", key),
        ],
    )
    .await;
    let mut body = predict_body(
        &[
            "/data/upload/1/eval-a_0000.png".to_string(),
            "s3://bucket/eval-a_0002.png".to_string(),
            format!("http://localhost:{}/eval-a_0012.jpg", images.port()),
        ],
        "1.1",
        RECT_CONFIG,
    );
    body["tasks"][1]["id"] = json!(7);
    let (status, answer) = server.post("/predict", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(!server.log().contains(key), "the key never reaches the log");
    let results = answer["results"].as_array().cloned().expect("results");
    (results, at_ls, at_images, refreshes.load(Ordering::SeqCst))
}

#[tokio::test]
async fn label_studio_credentials_never_follow_a_redirect_to_another_host() {
    let (results, at_ls, at_images, _) = fetch_through("legacy-key").await;
    for (i, r) in results.iter().enumerate() {
        assert!(r["result"].as_array().is_some_and(|r| !r.is_empty()), "task {i}: {r}");
    }
    let at_ls = at_ls.lock().expect("seen").clone();
    assert_eq!(at_ls.len(), 2, "an upload and a presign: {at_ls:?}");
    assert!(
        at_ls
            .iter()
            .all(|(_, auth)| auth.as_deref() == Some("Token legacy-key")),
        "{at_ls:?}"
    );
    let at_images = at_images.lock().expect("seen").clone();
    assert_eq!(at_images.len(), 3, "{at_images:?}");
    assert!(at_images.iter().all(|(_, auth)| auth.is_none()), "{at_images:?}");
}

#[tokio::test]
async fn a_personal_access_token_is_exchanged_and_refreshed_when_refused() {
    let pat = jwt(&json!({"token_type": "refresh", "exp": now() + 86400}));
    let (results, at_ls, at_images, refreshes) = fetch_through(&pat).await;
    for (i, r) in results.iter().enumerate() {
        assert!(r["result"].as_array().is_some_and(|r| !r.is_empty()), "task {i}: {r}");
    }
    let at_ls = at_ls.lock().expect("seen").clone();
    assert!(
        at_ls.iter().all(|(_, auth)| auth
            .as_deref()
            .is_some_and(|a| a.starts_with("Bearer ") && !a.contains(&pat))),
        "access tokens, never the personal token itself: {at_ls:?}"
    );
    // The first access token is refused; each refusal refreshes, and the token is cached.
    assert!((2..=3).contains(&refreshes), "{refreshes} refreshes for two downloads");
    assert!(at_images.lock().expect("seen").iter().all(|(_, auth)| auth.is_none()));
}

#[tokio::test]
async fn local_files_are_read_from_the_mounted_document_root() {
    // Label Studio's address points nowhere: the image can only come from the disk.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let root = eval_images();
    let server = Server::start(
        &[(DET, "1.onnx")],
        &[
            ("LABEL_STUDIO_URL", nowhere.as_str()),
            ("LOCAL_FILES_DOCUMENT_ROOT", root.to_str().expect("utf-8 path")),
        ],
    )
    .await;
    let urls = [
        "/data/local-files/?d=eval-a_0000.png".to_string(),
        "/data/local-files/?d=../eval-a/manifest.json".to_string(),
    ];
    let (status, body) = server.post("/predict", &predict_body(&urls, "1.1", RECT_CONFIG)).await;
    assert_eq!(status, 200, "{body}");
    let reference = load_json(&fixtures().join("eval-a/reference_yolov8n-shapes-det-320.json"));
    let expected = reference_dets(&reference["images"][0]);
    assert_eq!(reference["images"][0]["file_name"], "eval-a_0000.png");
    let mut stats = MatchStats::default();
    match_dets(&expected, &dets_of(&body["results"][0]), 0.98, 0.01, &mut stats);
    assert_eq!(stats.matched, expected.len(), "read from disk, predicted as usual");
    assert_eq!(
        body["results"][1]["result"],
        json!([]),
        "a path that leaves the root is refused"
    );
    assert!(
        server.log().contains("leaves LOCAL_FILES_DOCUMENT_ROOT"),
        "{}",
        server.log()
    );
}

#[tokio::test]
async fn each_image_of_a_two_image_config_gets_its_own_boxes() {
    let images = serve_dir(eval_images());
    let server = Server::start(&[(DET, "1.onnx")], &[]).await;
    let one = |value: &str| {
        format!(
            r#"<View><Image name="img" value="${value}"/><RectangleLabels name="boxes" toName="img">
               <Label value="circle"/><Label value="square"/><Label value="triangle"/></RectangleLabels></View>"#
        )
    };
    let two = r#"<View>
      <Image name="left" value="$left"/>
      <RectangleLabels name="left_boxes" toName="left"><Label value="circle"/><Label value="square"/><Label value="triangle"/></RectangleLabels>
      <Image name="right" value="$right"/>
      <RectangleLabels name="right_boxes" toName="right"><Label value="circle"/><Label value="square"/><Label value="triangle"/></RectangleLabels>
    </View>"#;
    let (left, right) = (
        format!("http://{images}/eval-a_0000.png"),
        format!("http://{images}/eval-a_0001.png"),
    );
    let predict = |data: Value, config: String| {
        let server = &server;
        async move {
            let body = json!({"tasks": [{"id": 1, "data": data}], "project": "1.1", "label_config": config});
            let (status, answer) = server.post("/predict", &body).await;
            assert_eq!(status, 200, "{answer}");
            answer["results"][0]["result"].as_array().cloned().unwrap_or_default()
        }
    };
    let boxes = |result: &[Value], tag: &str| -> Vec<String> {
        let mut out: Vec<String> = result
            .iter()
            .filter(|r| tag.is_empty() || r["from_name"] == tag)
            .map(|r| {
                let v = &r["value"];
                format!(
                    "{} {:.3} {:.3} {:.3} {:.3}",
                    v["rectanglelabels"][0], v["x"], v["y"], v["width"], v["height"]
                )
            })
            .collect();
        out.sort();
        out
    };
    let alone_left = predict(json!({"left": left}), one("left")).await;
    let alone_right = predict(json!({"right": right}), one("right")).await;
    assert!(!alone_left.is_empty() && !alone_right.is_empty());
    assert_ne!(boxes(&alone_left, ""), boxes(&alone_right, ""), "the two images differ");
    let both = predict(json!({"left": left, "right": right}), two.to_string()).await;
    assert_eq!(boxes(&both, "left_boxes"), boxes(&alone_left, ""));
    assert_eq!(boxes(&both, "right_boxes"), boxes(&alone_right, ""));
    for region in &both {
        let expected = if region["from_name"] == "left_boxes" {
            "left"
        } else {
            "right"
        };
        assert_eq!(region["to_name"], expected, "{region}");
    }
}

/// Label Studio sends a box drawn to the right edge of an image as `px / width * 100`, which
/// can come out a rounding error past 100 %: that box is the same prompt as one ending at
/// exactly 100 %, and a box clearly past the edge still gets the empty answer of a bad prompt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_box_a_rounding_error_past_the_image_edge_is_answered_as_one_on_it() {
    let server = Server::start_with_plugins(&[("yolov8n-shapes-seg-320.onnx", "seg.onnx")], &[], &["yolov8_seg"]).await;
    let images = serve_dir(eval_images());
    // eval-a_0035.png is 301 x 419 px; its circle spans x 154.6 to the right edge (301).
    let url = format!("http://{images}/eval-a_0035.png");
    let config = r#"<View><Image name="image" value="$image"/>
      <RectangleLabels name="drag" toName="image" smart="true"><Label value="circle"/><Label value="square"/><Label value="triangle"/></RectangleLabels></View>"#;
    let (x, y, height) = (154.0 / 301.0 * 100.0, 219.0 / 419.0 * 100.0, 157.0 / 419.0 * 100.0);
    let ask = |width: f64| {
        let (server, url) = (&server, &url);
        async move {
            let mut body = predict_body(std::slice::from_ref(url), "7", config);
            body["params"]["context"] = json!({"result": [{
                "id": "r", "from_name": "drag", "to_name": "image", "type": "rectanglelabels", "origin": "manual",
                "original_width": 301, "original_height": 419, "image_rotation": 0,
                "value": {"x": x, "y": y, "width": width, "height": height, "rotation": 0, "rectanglelabels": ["circle"]}
            }]});
            let (status, answer) = server.post("/predict", &body).await;
            assert_eq!(status, 200, "{answer}");
            answer["results"][0]["result"].as_array().cloned().unwrap_or_default()
        }
    };
    let shape = |result: &[Value]| -> Vec<String> {
        result
            .iter()
            .map(|r| {
                let v = &r["value"];
                format!(
                    "{} {} {} {:.6} {:.6} {:.6} {:.6}",
                    r["from_name"], r["type"], v["rectanglelabels"], v["x"], v["y"], v["width"], v["height"]
                )
            })
            .collect()
    };
    let on_edge = ask(100.0 - x).await;
    assert_eq!(on_edge.len(), 1, "the circle at the edge: {on_edge:?}");
    assert_eq!(on_edge[0]["value"]["rectanglelabels"], json!(["circle"]));
    let past = 100.0 - x + 1e-13;
    assert!(
        x + past > 100.0 && x + past < 100.0 + 1e-12,
        "the case under test: {}",
        x + past
    );
    assert_eq!(shape(&ask(past).await), shape(&on_edge), "the same prompt");
    assert!(ask(101.0 - x).await.is_empty(), "a box to 101 % is refused");
    assert!(
        server.log().contains("outside the image"),
        "the refusal is logged: {}",
        server.log()
    );
}

/// The official backend's keypoint config names no `<name>_bbox` tag for the boxes it adds:
/// it still connects, and its keypoints come without a parent box.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keypoints_without_their_bbox_tag_connect_and_come_without_a_parent() {
    let server = Server::start_with_plugins(
        &[("yolov8t-shapes-pose-320.onnx", "pose.onnx")],
        &[],
        &["yolov8_detect", "yolov8_pose"],
    )
    .await;
    let labels: String = ["square", "triangle"]
        .iter()
        .flat_map(|class| {
            (0..4).map(move |k| format!(r#"<Label value="{class}-{k}" predicted_values="{class}" model_index="{k}"/>"#))
        })
        .collect();
    let config = format!(
        r#"<View><KeyPointLabels name="keypoints" toName="image" model_add_bboxes="true" model_point_size="1">{labels}</KeyPointLabels>
           <Image name="image" value="$image"/></View>"#
    );
    let (status, body) = server
        .post("/setup", &json!({"project": "1.1", "schema": config}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["model_version"].as_str().is_some_and(|v| !v.is_empty()), "{body}");
    let images = serve_dir(fixtures().join("eval-pose/images"));
    let urls: Vec<String> = ["eval-pose_0000.png", "eval-pose_0001.jpg", "eval-pose_0002.jpg"]
        .iter()
        .map(|f| format!("http://{images}/{f}"))
        .collect();
    let (status, answer) = server.post("/predict", &predict_body(&urls, "1.1", &config)).await;
    assert_eq!(status, 200, "{answer}");
    let regions: Vec<&Value> = answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .flat_map(|p| p["result"].as_array().into_iter().flatten())
        .collect();
    assert!(!regions.is_empty(), "the pose model finds keypoints: {answer}");
    for r in &regions {
        assert_eq!(
            (&r["from_name"], &r["type"]),
            (&json!("keypoints"), &json!("keypointlabels")),
            "{r}"
        );
        assert!(r.get("parentID").is_none(), "no parent box to point at: {r}");
        assert!(
            r["value"]["keypointlabels"][0]
                .as_str()
                .is_some_and(|l| l.contains('-')),
            "{r}"
        );
    }
}

/// A `<Taxonomy>` on an image is filled with the model's best whole-image class, as Label
/// Studio stores a taxonomy: the path from the root to that class's `<Choice>`.
#[tokio::test]
async fn a_taxonomy_gets_the_path_of_the_best_class() {
    let server = Server::start_with_plugins(
        &[("yolov8n-shapes-cls-96.onnx", "cls.onnx")],
        &[("ML_CONF", "0")],
        &["yolov8_detect", "yolov8_cls"],
    )
    .await;
    let images = serve_dir(eval_images());
    let urls: Vec<String> = [
        "eval-a_0000.png",
        "eval-a_0011.png",
        "eval-a_0012.jpg",
        "eval-a_0035.png",
    ]
    .iter()
    .map(|f| format!("http://{images}/{f}"))
    .collect();
    let choices = r#"<View><Image name="image" value="$image"/>
      <Choices name="shape" toName="image"><Choice value="circle"/><Choice value="square"/><Choice value="triangle"/></Choices></View>"#;
    let taxonomy = r#"<View><Image name="image" value="$image"/>
      <Taxonomy name="kind" toName="image">
        <Choice value="Shape">
          <Choice value="Round"><Choice value="circle"/></Choice>
          <Choice value="Angular" alias="angular"><Choice value="square"/><Choice value="triangle"/></Choice>
        </Choice>
      </Taxonomy></View>"#;
    let (status, body) = server
        .post("/setup", &json!({"project": "1.1", "schema": taxonomy}))
        .await;
    assert_eq!(status, 200, "{body}");
    let predict = |config: &'static str| {
        let (server, urls) = (&server, &urls);
        async move {
            let (status, answer) = server.post("/predict", &predict_body(urls, "1.1", config)).await;
            assert_eq!(status, 200, "{answer}");
            answer["results"].as_array().cloned().expect("results")
        }
    };
    let (flat, tree) = (predict(choices).await, predict(taxonomy).await);
    let mut classes = std::collections::BTreeSet::new();
    for (flat, tree) in flat.iter().zip(&tree) {
        let best = flat["result"][0]["value"]["choices"][0].as_str().expect("a best class");
        classes.insert(best.to_string());
        let path = match best {
            "circle" => json!(["Shape", "Round", "circle"]),
            other => json!(["Shape", "angular", other]),
        };
        let result = tree["result"].as_array().expect("result");
        assert_eq!(result.len(), 1, "{tree}");
        let r = &result[0];
        assert_eq!(
            (&r["from_name"], &r["to_name"]),
            (&json!("kind"), &json!("image")),
            "{r}"
        );
        assert_eq!(r["type"], "taxonomy", "{r}");
        assert_eq!(r["value"]["taxonomy"], json!([path]), "{r}");
        assert_eq!(r["score"], flat["result"][0]["score"], "the class's probability");
    }
    assert!(classes.len() >= 2, "the images show different shapes: {classes:?}");
}
