//! The attacks of the security probe (docs/security.md), each against the real server: the
//! Label Studio key stolen through /setup, DNS rebinding, cross-site trainings and webhooks,
//! idle connections, metric cardinality, names, Basic-auth guessing and unbounded job options.

use std::{
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::common::*;
use serde_json::{Value, json};
use warp::Filter;

const DET: &str = "yolov8n-shapes-det-320.onnx";
/// A legacy Label Studio token (40 hex digits), which the backend sends as `Token <key>`.
const KEY: &str = "0123456789abcdef0123456789abcdef01234567";

type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A listener that records each request's path and `Authorization` and answers 404: a
/// stand-in for an attacker's host, or for Label Studio's file endpoint.
fn recorder() -> (SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    let addr = serve(
        warp::path::full()
            .and(warp::header::optional::<String>("authorization"))
            .map(move |path: warp::path::FullPath, auth: Option<String>| {
                record.lock().expect("seen").push((path.as_str().to_string(), auth));
                warp::http::StatusCode::NOT_FOUND
            }),
    );
    (addr, seen)
}

/// A browser's cross-site form post: `text/plain`, which needs no CORS preflight.
fn cross_site(http: &reqwest::Client, url: String, body: &Value) -> reqwest::RequestBuilder {
    http.post(url)
        .header("content-type", "text/plain")
        .header("origin", "http://evil.example")
        .header("sec-fetch-site", "cross-site")
        .body(body.to_string())
}

/// Predicts one task whose image is a Label Studio upload, so that the backend fetches it
/// from wherever it thinks Label Studio is, with the key.
async fn predict_an_upload(server: &Server) -> Value {
    let body = predict_body(&["/data/upload/1/a.png".to_string()], "1.1", RECT_CONFIG);
    let (status, body) = server.post("/predict", &body).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn setup_cannot_repoint_the_label_studio_key() {
    let (attacker, attacker_saw) = recorder();
    let (label_studio, label_studio_saw) = recorder();
    let server = Server::start(
        &[(DET, "1.onnx")],
        &[("LABEL_STUDIO_API_KEY", KEY), ("ML_FETCH_TIMEOUT", "5")],
    )
    .await;
    let http = reqwest::Client::new();
    let setup =
        |host: SocketAddr| json!({"project": "1.1", "schema": RECT_CONFIG, "hostname": format!("http://{host}")});

    // A web page the user opens posts /setup cross-site first: it is answered (a model
    // version is no secret) but names no address.
    let answer = cross_site(&http, server.url("/setup"), &setup(attacker))
        .send()
        .await
        .expect("setup");
    assert_eq!(answer.status(), 200);
    predict_an_upload(&server).await;
    assert!(
        attacker_saw.lock().expect("seen").is_empty(),
        "nothing went to the attacker"
    );

    // Label Studio's own /setup (a server-side call, no Origin) fixes the address ...
    let (status, _) = server.post("/setup", &setup(label_studio)).await;
    assert_eq!(status, 200);
    predict_an_upload(&server).await;
    let to_label_studio = label_studio_saw.lock().expect("seen").clone();
    assert_eq!(
        to_label_studio,
        [("/data/upload/1/a.png".to_string(), Some(format!("Token {KEY}")))],
        "the upload was fetched from Label Studio, with the key"
    );

    // ... for good: a later /setup, even one that passes every check, re-points nothing.
    let (status, _) = server.post("/setup", &setup(attacker)).await;
    assert_eq!(status, 200);
    let answer = cross_site(&http, server.url("/setup"), &setup(attacker))
        .send()
        .await
        .expect("setup");
    assert_eq!(answer.status(), 200);
    predict_an_upload(&server).await;
    assert!(
        attacker_saw.lock().expect("seen").is_empty(),
        "the attacker never saw a request, let alone the key"
    );
    assert_eq!(label_studio_saw.lock().expect("seen").len(), 2);
    let log = server.log();
    assert!(log.contains("fixed at"), "the ignored /setup is logged:\n{log}");
    assert!(!log.contains(KEY), "the key never reaches the log");
    report(&format!(
        "security: /setup key theft: attacker got 0 requests, Label Studio {}",
        to_label_studio.len() + 1
    ));
}

#[tokio::test]
async fn without_a_trusted_setup_the_key_is_not_sent_at_all() {
    // Beyond loopback without Basic auth nobody is trusted, so /setup names no address and
    // an upload cannot be fetched: the error says what to set.
    let (attacker, attacker_saw) = recorder();
    let server = Server::start(
        &[(DET, "1.onnx")],
        &[("LABEL_STUDIO_API_KEY", KEY), ("ML_BACKEND_ADDR", "0.0.0.0")],
    )
    .await;
    let (status, _) = server
        .post(
            "/setup",
            &json!({"project": "1.1", "schema": RECT_CONFIG, "hostname": format!("http://{attacker}")}),
        )
        .await;
    assert_eq!(status, 200);
    let body = predict_an_upload(&server).await;
    assert_eq!(body["results"][0]["result"], json!([]), "{body}");
    assert!(attacker_saw.lock().expect("seen").is_empty());
    let log = server.log();
    assert!(log.contains("LABEL_STUDIO_URL"), "{log}");
}

/// A request as a page at `evil.example` sends it once its name resolves to 127.0.0.1.
fn rebound(http: &reqwest::Client, method: reqwest::Method, server: &Server, path: &str) -> reqwest::RequestBuilder {
    let host = format!("evil.example:{}", server.port);
    http.request(method, server.url(path))
        .header("host", &host)
        .header("origin", format!("http://{host}"))
}

#[tokio::test]
async fn a_rebound_name_gets_nothing() {
    let server = Server::start(&[(DET, "det.onnx")], &[]).await;
    let http = reqwest::Client::new();
    use reqwest::Method;
    for (method, path, body) in [
        (Method::PUT, "/models/det/config", Some(json!({"conf": 0.9}))),
        (Method::GET, "/models/det/file", None),
        (Method::DELETE, "/models/det", None),
        (Method::GET, "/models", None),
        (Method::POST, "/jobs", Some(json!({"kind": "predict", "project": 1}))),
    ] {
        let mut request = rebound(&http, method.clone(), &server, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.expect("request");
        let status = answer.status();
        let detail: Value = answer.json().await.expect("json");
        assert_eq!(status, 403, "{method} {path}: {detail}");
        assert!(
            detail["detail"]
                .as_str()
                .is_some_and(|d| d.contains("ML_ALLOWED_HOSTS")),
            "{detail}"
        );
    }
    // The model is untouched, and this machine's own names still get everything.
    for host in ["127.0.0.1", "localhost"] {
        let answer = http
            .get(server.url("/models/det/file"))
            .header("host", format!("{host}:{}", server.port))
            .send()
            .await
            .expect("download");
        assert_eq!(answer.status(), 200, "{host}");
        assert_eq!(
            answer.bytes().await.expect("bytes").len() as u64,
            std::fs::metadata(fixture_model(DET)).expect("fixture").len()
        );
    }
    // A name the operator lists is this machine too.
    let listed = Server::start(&[(DET, "det.onnx")], &[("ML_ALLOWED_HOSTS", "evil.example")]).await;
    let answer = rebound(&http, Method::GET, &listed, "/models")
        .send()
        .await
        .expect("models");
    assert_eq!(answer.status(), 200);
    report("security: DNS rebinding: 5 of 5 requests refused (403), the model intact");
}

#[tokio::test]
async fn cross_site_pages_start_no_training() {
    let server = Server::start(&[(DET, "1.onnx")], &[("ML_TRAIN_EVERY_N_ANNOTATIONS", "1")]).await;
    let http = reqwest::Client::new();
    let project = json!({"id": 1});
    let attacks = [
        ("/train", json!({"project": 1})),
        ("/jobs", json!({"kind": "train", "project": 1})),
        ("/webhook", json!({"action": "START_TRAINING", "project": project})),
    ];
    for (path, body) in &attacks {
        let answer = cross_site(&http, server.url(path), body).send().await.expect("post");
        assert_eq!(answer.status(), 403, "{path}");
    }
    // An annotation event from a page is answered (Label Studio retries what is not) but
    // counts for nothing.
    let event = json!({"action": "ANNOTATION_CREATED", "project": project, "annotation": {"id": 1}});
    let answer = cross_site(&http, server.url("/webhook"), &event)
        .send()
        .await
        .expect("webhook");
    assert_eq!(answer.status(), 200);
    let (_, jobs) = server.get("/jobs").await;
    assert_eq!(jobs["jobs"], json!([]), "{jobs}");
    // Label Studio's own event (a server-side call on this machine) does count.
    let (status, _) = server.post("/webhook", &event).await;
    assert_eq!(status, 200);
    let (_, jobs) = server.get("/jobs").await;
    assert_eq!(jobs["jobs"].as_array().map(Vec::len), Some(1), "{jobs}");
    report("security: cross-site /train, /jobs, START_TRAINING and annotation events: 0 jobs started");
}

#[tokio::test]
async fn unauthenticated_annotations_count_only_with_the_webhook_secret() {
    let server = Server::start(
        &[(DET, "1.onnx")],
        &[
            ("BASIC_AUTH_USER", "ann"),
            ("BASIC_AUTH_PASS", "pa55-word"),
            ("ML_TRAIN_EVERY_N_ANNOTATIONS", "1"),
            ("ML_WEBHOOK_SECRET", "hook-s3cret"),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let event = json!({"action": "ANNOTATION_CREATED", "project": {"id": 1}, "annotation": {"id": 1}});
    let jobs = || async {
        let r = http
            .get(server.url("/jobs"))
            .header("authorization", basic("ann:pa55-word"))
            .send()
            .await
            .expect("jobs");
        r.json::<Value>().await.expect("json")["jobs"]
            .as_array()
            .map_or(0, Vec::len)
    };
    for path in ["/webhook", "/webhook?secret=wrong"] {
        let answer = http.post(server.url(path)).json(&event).send().await.expect("webhook");
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(jobs().await, 0, "{path}: an unauthenticated event started a training");
    }
    let answer = http
        .post(server.url("/webhook?secret=hook-s3cret"))
        .json(&event)
        .send()
        .await
        .expect("webhook");
    assert_eq!(answer.status(), 200);
    assert_eq!(jobs().await, 1, "the secret proves the event is Label Studio's");
    assert!(
        !server.log().contains("hook-s3cret"),
        "the secret never reaches the log"
    );
}

/// A TCP connection to the server from `source`, another loopback address than the test's
/// own requests use, so that the per-address cap the attack hits is not the test's.
pub(crate) fn connect_from(source: Ipv4Addr, port: u16) -> Option<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().ok()?;
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0)).ok()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let stream = runtime
        .block_on(socket.connect(SocketAddr::from(([127, 0, 0, 1], port))))
        .ok()?
        .into_std()
        .ok()?;
    stream.set_nonblocking(false).ok()?;
    Some(stream)
}

/// Whether the server closed the connection within `limit`.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let _ = stream.set_read_timeout(Some(limit));
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            // A 408 or other bytes before the close.
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_and_half_sent_connections_are_bounded() {
    let server = Server::start(
        &[(DET, "1.onnx")],
        &[("ML_HEADER_TIMEOUT", "3"), ("ML_MAX_CONNECTIONS_PER_CLIENT", "20")],
    )
    .await;
    let port = server.port;
    let (held, refused) = tokio::task::spawn_blocking(move || {
        // All at once, as a flood comes; then see which the server kept.
        let streams: Vec<TcpStream> = (0..60)
            .filter_map(|_| {
                let mut stream = connect_from(Ipv4Addr::new(127, 0, 0, 2), port)?;
                let _ = stream.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n");
                Some(stream)
            })
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        let mut held = Vec::new();
        let mut refused = 60 - streams.len();
        for mut stream in streams {
            // Closed already (past the address's share), or still open.
            if closed_within(&mut stream, Duration::from_millis(20)) {
                refused += 1;
            } else {
                held.push(stream);
            }
        }
        (held, refused)
    })
    .await
    .expect("attack");
    assert!(held.len() <= 20, "{} connections held from one address", held.len());
    assert!(refused >= 40, "{refused} refused");
    // Everyone else is still served while the attacker holds its share.
    let started = Instant::now();
    let (status, _) = server.get("/health").await;
    assert_eq!(status, 200);
    let health_ms = started.elapsed().as_secs_f64() * 1e3;
    // The held ones are closed once their headers are late (3 s); a hang would miss 30 s.
    let started = Instant::now();
    let held_count = held.len();
    let closed = tokio::task::spawn_blocking(move || {
        held.into_iter()
            .filter_map(|mut s| closed_within(&mut s, Duration::from_secs(30)).then_some(()))
            .count()
    })
    .await
    .expect("wait");
    let closed_after = started.elapsed().as_secs_f64();
    assert_eq!(closed, held_count, "every half-sent request is closed");
    // An idle keep-alive connection goes the same way.
    let idle_closed = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .expect("write");
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).expect("answer");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        closed_within(&mut s, Duration::from_secs(30))
    })
    .await
    .expect("idle");
    assert!(idle_closed, "an idle keep-alive connection stays open");
    let log = server.log();
    assert!(
        log.contains("ML_MAX_CONNECTIONS_PER_CLIENT"),
        "the cap is logged:\n{log}"
    );
    report(&format!(
        "security: 60 half-sent connections from one address: {refused} closed at once, {held_count} held and \
         closed after {closed_after:.1} s (ML_HEADER_TIMEOUT=3); /health meanwhile {health_ms:.1} ms"
    ));
}

#[tokio::test]
async fn unknown_paths_share_one_metric_label() {
    let server = Server::start(&[(DET, "1.onnx")], &[]).await;
    let before = server.get_text("/metrics").await.len();
    for i in 0..300 {
        let (status, _) = server.get(&format!("/probe-{i}")).await;
        assert_eq!(status, 404);
    }
    let text = server.get_text("/metrics").await;
    assert!(text.contains("endpoint=\"other\",status=\"404\"} 300"), "{text}");
    assert!(!text.contains("probe-"), "a label per unknown path");
    report(&format!(
        "security: 300 unknown paths: /metrics {before} -> {} bytes",
        text.len()
    ));
}

#[tokio::test]
async fn names_are_plain_and_a_pairs_halves_are_not_models() {
    let server = Server::start(&[(DET, "det.onnx")], &[]).await;
    let http = reqwest::Client::new();
    let onnx = std::fs::read(fixture_model(DET)).expect("fixture");
    let long = "x".repeat(231);
    for name in ["sam.encoder", "sam.decoder", "evil%E2%80%AEgnp", "a%07b", long.as_str()] {
        let answer = http
            .put(server.url(&format!("/models/{name}")))
            .body(onnx.clone())
            .send()
            .await
            .expect("put");
        let status = answer.status();
        let body: Value = answer.json().await.expect("json");
        assert_eq!(status, 400, "{name}: {body}");
    }
    let (_, models) = server.get("/models").await;
    let listed: Vec<&str> = models["models"]
        .as_array()
        .expect("models")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(listed, ["det"]);
    // Answers name files, never where the server keeps them.
    let file = models["models"][0]["file"].as_str().expect("file");
    assert_eq!(file, "det.onnx");
    let (_, plugins) = server.get("/plugins").await;
    assert!(
        !plugins
            .to_string()
            .contains(&*server.plugins_dir.path().to_string_lossy())
    );
}

#[tokio::test]
async fn an_empty_half_of_basic_auth_fails_the_start() {
    for (user, pass) in [("", "pa55-word"), ("ann", "")] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_ls-ml-backend"))
            .env_clear()
            .env("ML_BACKEND_PORT", free_port().to_string())
            .env("ML_MODELS_DIR", tempfile::tempdir().expect("dir").path())
            .env("BASIC_AUTH_USER", user)
            .env("BASIC_AUTH_PASS", pass)
            .output()
            .expect("run");
        assert!(!output.status.success(), "started with user {user:?} and pass {pass:?}");
        // A blank variable is unset (as compose files leave them), so one blank half leaves the
        // other alone: still no start without auth.
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("is set without") && stderr.contains("set both BASIC_AUTH_USER and BASIC_AUTH_PASS"),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn guessing_the_password_is_throttled_per_address() {
    let server = Server::start(
        &[(DET, "1.onnx")],
        &[
            ("BASIC_AUTH_USER", "ann"),
            ("BASIC_AUTH_PASS", "pa55-word"),
            ("ML_AUTH_FAILURES_PER_MINUTE", "5"),
        ],
    )
    .await;
    let http = reqwest::Client::new();
    let get = |auth: &str| {
        http.get(server.url("/models"))
            .header("authorization", basic(auth))
            .send()
    };
    for guess in 0..5 {
        assert_eq!(get(&format!("ann:guess{guess}")).await.expect("get").status(), 401);
    }
    let blocked = get("ann:pa55-word").await.expect("get");
    assert_eq!(blocked.status(), 429, "even the right password, once over the limit");
    assert!(blocked.headers().contains_key("retry-after"));
    // Another address is not blocked by this one's guesses.
    let other = reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)))
        .build()
        .expect("client");
    let answer = other
        .get(server.url("/models"))
        .header("authorization", basic("ann:pa55-word"))
        .send()
        .await
        .expect("get");
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn job_options_are_bounded_and_finished_jobs_pruned() {
    let server = Server::start(&[(DET, "1.onnx")], &[("ML_JOBS_KEEP", "2")]).await;
    for options in [
        json!({"epochs": 4294967295u64}),
        json!({"imgsz": 0}),
        json!({"batch": 0}),
        json!({"imgsz": 100000}),
        json!({"patience": 0}),
    ] {
        let mut body = json!({"kind": "train", "project": 1});
        body.as_object_mut()
            .expect("object")
            .extend(options.as_object().expect("object").clone());
        let (status, answer) = server.post("/jobs", &body).await;
        assert_eq!(status, 400, "{options}: {answer}");
    }
    // Prediction jobs fail at once here (no Label Studio), which makes them finished jobs.
    let state = server.models_dir.path().join(".state/jobs");
    for _ in 0..5 {
        let (status, job) = server.post("/jobs", &json!({"kind": "predict", "project": 1})).await;
        assert_eq!(status, 201, "{job}");
        let id = job["id"].as_u64().expect("id");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, job) = server.get(&format!("/jobs/{id}")).await;
            if job["state"] != "queued" && job["state"] != "running" {
                break;
            }
            assert!(Instant::now() < deadline, "job {id} never finished: {job}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let (_, jobs) = server.get("/jobs").await;
    let kept = jobs["jobs"].as_array().map_or(0, Vec::len);
    assert_eq!(kept, 3, "2 finished kept (ML_JOBS_KEEP) and the newest: {jobs}");
    // The records on disk go with them (the writer thread removes them in order).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let files = std::fs::read_dir(&state).map_or(0, |d| d.count());
        if files == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "{files} job files on disk");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_answer_says_no_sniffing_no_framing_and_the_page_runs_no_injected_script() {
    let server = Server::start(&[(DET, "1.onnx")], &[]).await;
    let http = reqwest::Client::new();
    for path in ["/health", "/ui", "/nope", "/models"] {
        let answer = http.get(server.url(path)).send().await.expect("get");
        let header = |name: &str| {
            answer
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"), "{path}");
        assert_eq!(header("x-frame-options").as_deref(), Some("DENY"), "{path}");
        assert_eq!(header("referrer-policy").as_deref(), Some("no-referrer"), "{path}");
        if path == "/ui" {
            let policy = header("content-security-policy").expect("a CSP");
            let scripts = policy
                .split(';')
                .find(|d| d.trim().starts_with("script-src"))
                .expect("script-src");
            assert!(!scripts.contains("unsafe-inline"), "{policy}");
            assert!(scripts.contains("'sha256-"), "{policy}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn model_downloads_stream_instead_of_filling_memory() {
    const SIZE: u64 = 128 * 1024 * 1024;
    let server = Server::start(&[(DET, "det.onnx")], &[]).await;
    // A large "model" (sparse, so it costs no disk). It fails to load, but is still a file
    // that `GET /models/big/file` serves.
    let big = std::fs::File::create(server.models_dir.path().join("big.onnx")).expect("create");
    big.set_len(SIZE).expect("size");
    drop(big);
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.get("/models").await.1.to_string().contains("\"loading\"") || !server.log().contains("big") {
        assert!(Instant::now() < deadline, "the big file was never seen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let memory = server.sample_peak_rss();
    let downloads = (0..4).map(|_| async {
        let answer = server
            .http
            .get(server.url("/models/big/file"))
            .send()
            .await
            .expect("download");
        assert_eq!(answer.status(), 200);
        let mut got = 0u64;
        let mut answer = answer;
        while let Some(chunk) = answer.chunk().await.expect("chunk") {
            got += chunk.len() as u64;
        }
        got
    });
    let sizes = futures::future::join_all(downloads).await;
    let grew_mib = memory.stop();
    assert_eq!(sizes, [SIZE; 4], "every download is whole");
    // Read whole, four downloads of it would add 512 MiB.
    assert!(grew_mib < 64.0, "four 128 MiB downloads added {grew_mib:.0} MiB of RSS");
    report(&format!(
        "security: 4 concurrent downloads of a 128 MiB model: RSS +{grew_mib:.1} MiB at peak (read whole: +512)"
    ));
}

#[tokio::test]
async fn a_huge_image_is_refused_for_a_prompt_with_the_setting_to_raise() {
    let server = Server::start(&[(DET, "det.onnx")], &[]).await;
    // 6000 x 5000 = 30 MP: within ML_MAX_IMAGE_PIXELS (64 M), over ML_MAX_PROMPT_PIXELS (25 M).
    let mut png = Vec::new();
    image::GrayImage::new(6000, 5000)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    let answer = server
        .http
        .post(server.url("/models/det/try?points=100,100,1"))
        .header("content-type", "image/png")
        .body(png)
        .send()
        .await
        .expect("try");
    let status = answer.status();
    let body: Value = answer.json().await.expect("json");
    assert_eq!(status, 422, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("ML_MAX_PROMPT_PIXELS")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_sam_click_costs_at_12_and_25_megapixels() {
    let models = ["encoder", "decoder"].map(|g| format!("sam-tiny.{g}.onnx"));
    let server = Server::start_with_plugins(
        &[(&models[0], &models[0]), (&models[1], &models[1])],
        &[("ML_EMBEDDING_CACHE_MB", "0")],
        &["sam"],
    )
    .await;
    let mut figures = Vec::new();
    for (w, h) in [(4000u32, 3000u32), (5000, 5000)] {
        let mut png = Vec::new();
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("png");
        let memory = server.sample_peak_rss();
        let answer = server
            .http
            .post(server.url(&format!("/models/sam-tiny/try?points={},{},1", w / 2, h / 2)))
            .header("content-type", "image/png")
            .body(png)
            .send()
            .await
            .expect("try");
        let grew = memory.stop();
        let status = answer.status();
        let body: Value = answer.json().await.expect("json");
        assert_eq!(status, 200, "{w}x{h}: {body}");
        figures.push(format!("{:.0} MP +{grew:.0} MiB", f64::from(w) * f64::from(h) / 1e6));
    }
    report(&format!(
        "security: one SAM click (sam-tiny, no embedding cache), peak RSS: {}",
        figures.join(", ")
    ));
}
