//! Bad input, failing downloads, broken models, a full queue, shutdown and hostile URLs,
//! against the real binary. In every case: a clear answer, nothing shifted, and the server
//! serves the next request.

use std::{
    io::{Cursor, Write},
    time::{Duration, Instant},
};

use crate::common::*;
use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb};
use serde_json::{Value, json};
use warp::{Filter, http::StatusCode, reply::Reply};

const DET: &str = "yolov8n-shapes-det-320.onnx";

fn png(image: DynamicImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, ImageFormat::Png).expect("encode png");
    out.into_inner()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG whose header says `width` x `height` RGB, with no real pixel data behind it.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    out
}

fn cmyk_jpeg(width: usize, height: usize) -> Vec<u8> {
    let mut compress = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_CMYK);
    compress.set_size(width, height);
    let mut started = compress.start_compress(Vec::new()).expect("start");
    let pixels: Vec<u8> = (0..width * height)
        .flat_map(|i| {
            let inside = (i % width).abs_diff(width / 2) < width / 4 && (i / width).abs_diff(height / 2) < height / 4;
            if inside { [0, 255, 255, 0] } else { [0, 0, 0, 40] }
        })
        .collect();
    started.write_scanlines(&pixels).expect("write");
    started.finish().expect("finish")
}

fn animated_gif() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = image::codecs::gif::GifEncoder::new(&mut out);
        for shade in [40u8, 200] {
            let frame = ImageBuffer::from_fn(64, 48, |x, _| {
                if (20..44).contains(&x) {
                    image::Rgba([shade, 30, 30, 255])
                } else {
                    image::Rgba([114, 114, 114, 255])
                }
            });
            encoder.encode_frame(image::Frame::new(frame)).expect("gif frame");
        }
    }
    out
}

/// A real JPEG with a megabyte of junk EXIF (APP1 segments) after its start marker.
fn huge_exif_jpeg(jpeg: &[u8]) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    for _ in 0..16 {
        let mut segment = b"Exif\0\0MM\0\x2a".to_vec();
        segment.resize(65_000, 0xAB);
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((segment.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&segment);
    }
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// The tasks whose slot the server reported empty, from its log lines.
fn failed_tasks(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("its result is left empty"))
        .filter_map(|l| l.split("task ").nth(1)?.split(':').next().map(str::to_string))
        .collect()
}

async fn still_serves(server: &Server, images: std::net::SocketAddr) {
    let urls = [format!("http://{images}/eval-a_0000.png")];
    let (status, body) = server.post("/predict", &predict_body(&urls, "1.1", RECT_CONFIG)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["results"][0]["result"].as_array().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn whole_request_problems_get_a_clear_status() {
    let images = serve_dir(eval_images());
    let server = Server::start(&[(DET, "1.onnx")], &[("ML_MAX_BODY_MB", "1")]).await;
    let http = reqwest::Client::new();
    let raw = |body: Vec<u8>| {
        http.post(server.url("/predict"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    for (what, body, expected) in [
        ("malformed JSON", b"{\"tasks\": [".to_vec(), 400),
        (
            "wrong types",
            br#"{"tasks": "all of them", "label_config": 7}"#.to_vec(),
            400,
        ),
        ("a task that is not an object", br#"{"tasks": [42]}"#.to_vec(), 400),
    ] {
        let response = raw(body).await.expect("request");
        assert_eq!(response.status(), expected, "{what}");
        let answer: Value = response.json().await.expect("a JSON error body");
        assert!(
            answer["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {answer}"
        );
        still_serves(&server, images).await;
    }
    // Over the body limit: refused from the Content-Length, before the body is read. (A
    // client still sending a 2 MB body may see the connection close first, so this one only
    // announces it.)
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    write!(
        stream,
        "POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        2 * 1024 * 1024
    )
    .expect("send headers");
    let mut answer = vec![0u8; 4096];
    let n = std::io::Read::read(&mut stream, &mut answer).expect("an answer");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("ML_MAX_BODY_MB"), "{answer}");
    still_serves(&server, images).await;

    // No tasks at all: nothing to predict, one (empty) list back.
    let (status, body) = server.post("/predict", &json!({ "label_config": RECT_CONFIG })).await;
    assert_eq!((status, body["results"].clone()), (200, json!([])));

    // 10,000 tasks in one request: every slot answered, in order; most have no image.
    let mut request = predict_body(&[], "1.1", RECT_CONFIG);
    let tasks: Vec<Value> = (0..10_000)
        .map(|i| {
            let data = if i % 2_000 == 7 {
                json!({ "image": format!("http://{images}/eval-a_0000.png") })
            } else {
                json!({ "text": "no image here" })
            };
            json!({ "id": i, "data": data })
        })
        .collect();
    request["tasks"] = Value::Array(tasks);
    let started = Instant::now();
    let (status, body) = server.post("/predict", &request).await;
    assert_eq!(status, 200);
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 10_000);
    for (i, r) in results.iter().enumerate() {
        let boxes = r["result"].as_array().expect("result").len();
        assert_eq!(boxes > 0, i % 2_000 == 7, "slot {i}");
    }
    report(&format!(
        "reliability: 10,000 tasks in one request answered in order in {:.2} s",
        started.elapsed().as_secs_f64()
    ));
    still_serves(&server, images).await;
}

#[tokio::test]
async fn broken_images_empty_their_slot_and_odd_ones_still_work() {
    let dir = tempfile::tempdir().expect("images");
    let eval = eval_images();
    let jpeg = std::fs::read(eval.join("eval-a_0012.jpg")).expect("jpeg");
    let sixteen = ImageBuffer::from_fn(96, 64, |x, _| {
        if (30..66).contains(&x) {
            Rgb([60000u16, 3000, 3000])
        } else {
            Rgb([29000, 29000, 29000])
        }
    });
    let files: Vec<(&str, Vec<u8>, bool)> = vec![
        // (name, bytes, whether it must decode)
        ("not-an-image.png", b"<html>404 page</html>".to_vec(), false),
        ("truncated.jpg", jpeg[..jpeg.len() / 2].to_vec(), false),
        ("zero.png", png_header_only(0, 0), false),
        ("one.png", png(DynamicImage::new_rgb8(1, 1)), true),
        ("bomb.png", png_header_only(20_000, 20_000), false),
        ("sixteen-bit.png", png(DynamicImage::ImageRgb16(sixteen)), true),
        ("cmyk.jpg", cmyk_jpeg(80, 60), true),
        ("animated.gif", animated_gif(), true),
        ("huge-exif.jpg", huge_exif_jpeg(&jpeg), true),
    ];
    for (name, bytes, _) in &files {
        std::fs::write(dir.path().join(name), bytes).expect("write");
    }
    let images = serve_dir(dir.path().to_path_buf());
    let server = Server::start(&[(DET, "1.onnx")], &[]).await;
    let urls: Vec<String> = files.iter().map(|(n, _, _)| format!("http://{images}/{n}")).collect();
    let (status, body) = server.post("/predict", &predict_body(&urls, "1.1", RECT_CONFIG)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"].as_array().map(Vec::len), Some(files.len()));
    let log = server.log();
    let failed = failed_tasks(&log);
    for (i, (name, _, decodes)) in files.iter().enumerate() {
        let id = (i + 1).to_string();
        assert_eq!(
            !failed.contains(&id),
            *decodes,
            "{name}: failed tasks {failed:?}\n{log}"
        );
        if !decodes {
            assert_eq!(body["results"][i]["result"], json!([]), "{name}");
        }
    }
    for clear in [
        "not in a known image format",
        "no end-of-image marker",
        "ML_MAX_IMAGE_PIXELS",
    ] {
        assert!(log.contains(clear), "the log explains: {clear}\n{log}");
    }
    // The huge-EXIF copy of a reference image is still that image, boxes and all.
    let huge = body["results"][8]["result"].as_array().expect("result");
    assert!(!huge.is_empty(), "huge EXIF: {huge:?}");
    still_serves(&server, serve_dir(eval)).await;
}

#[tokio::test]
async fn failing_downloads_are_cut_short_and_explained() {
    let not_found = warp::path("missing").map(|| StatusCode::NOT_FOUND.into_response());
    let unauthorized = warp::path("private").map(|| StatusCode::UNAUTHORIZED.into_response());
    let hang = warp::path("hang").then(|| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        StatusCode::OK.into_response()
    });
    let looping =
        warp::path("loop").map(|| warp::reply::with_header(StatusCode::FOUND, "location", "/loop").into_response());
    let host = serve(not_found.or(unauthorized).or(hang).or(looping));
    let server = Server::start(&[(DET, "1.onnx")], &[("ML_FETCH_TIMEOUT", "1")]).await;
    let urls = vec![
        format!("http://{host}/missing"),
        format!("http://{host}/private"),
        format!("http://{host}/hang"),
        format!("http://{host}/loop"),
        "gopher://example.com/a.png".to_string(),
        "/data/upload/1/needs-label-studio.png".to_string(),
    ];
    let started = Instant::now();
    let (status, body) = server.post("/predict", &predict_body(&urls, "1.1", RECT_CONFIG)).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    for (i, r) in body["results"].as_array().expect("results").iter().enumerate() {
        assert_eq!(r["result"], json!([]), "slot {i}");
    }
    report(&format!(
        "a download that hangs, with ML_FETCH_TIMEOUT=1: its task failed after {:.1} s",
        took.as_secs_f64()
    ));
    // The host hangs for an hour: only a fetch timeout that does not work misses this bound.
    assert!(
        took < Duration::from_secs(60),
        "the hanging download was cut ({took:?})"
    );
    let log = server.log();
    assert_eq!(failed_tasks(&log).len(), urls.len(), "{log}");
    for clear in [
        "HTTP 404",
        "HTTP 401",
        "ML_FETCH_TIMEOUT",
        "more than 5 redirects",
        "scheme `gopher`",
        "LABEL_STUDIO_URL",
    ] {
        assert!(log.contains(clear), "the log explains: {clear}\n{log}");
    }
    still_serves(&server, serve_dir(eval_images())).await;
}

#[tokio::test]
async fn broken_models_show_why_and_never_take_the_server_down() {
    let faults = fixtures().join("models/faults");
    let dir = tempfile::tempdir().expect("models");
    for name in ["identity-image.onnx", "rank3-input.onnx", "mismatched-head.onnx"] {
        std::fs::copy(faults.join(name), dir.path().join(name)).expect("copy");
    }
    std::fs::write(dir.path().join("corrupt.onnx"), b"\x08\x07\x12\x04junkjunkjunk").expect("corrupt");
    std::fs::copy(fixture_model(DET), dir.path().join("good.onnx")).expect("good");
    let server = Server::start_in(dir, plugins_dir(&["yolov8_detect", "yolov8_seg"]), &[]).await;
    let (_, models) = server.get("/models").await;
    let state = |name: &str| {
        models["models"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["name"] == name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    for (name, says) in [
        ("identity-image", "no adapter plugin accepts"),
        ("rank3-input", "no adapter plugin accepts"),
        ("mismatched-head", "4 + classes"),
        ("corrupt", "corrupt.onnx"),
    ] {
        let m = state(name);
        assert_eq!(m["state"], "failed", "{name}: {m}");
        assert!(m["error"].as_str().is_some_and(|e| e.contains(says)), "{name}: {m}");
    }
    assert_eq!(state("good")["state"], "ready");
    let images = serve_dir(eval_images());
    let urls = [format!("http://{images}/eval-a_0000.png")];
    let config = RECT_CONFIG.replace("toName=\"image\"", "toName=\"image\" model_path=\"good.onnx\"");
    let (status, body) = server.post("/predict", &predict_body(&urls, "1.1", &config)).await;
    assert_eq!(status, 200, "{body}");
    let config = RECT_CONFIG.replace("toName=\"image\"", "toName=\"image\" model_path=\"corrupt.onnx\"");
    let (status, body) = server.post("/predict", &predict_body(&urls, "1.1", &config)).await;
    assert_eq!(status, 404, "a failed model is named as such: {body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| d.contains("failed to load")),
        "{body}"
    );
}

/// An image server that takes `delay` to answer.
fn slow_images(delay: Duration) -> std::net::SocketAddr {
    let eval = eval_images();
    serve(warp::path::param::<String>().then(move |name: String| {
        let path = eval.join(name);
        async move {
            tokio::time::sleep(delay).await;
            match std::fs::read(path) {
                Ok(bytes) => bytes.into_response(),
                Err(_) => StatusCode::NOT_FOUND.into_response(),
            }
        }
    }))
}

#[tokio::test]
async fn a_full_queue_answers_503_at_once_and_recovers() {
    // The first request holds the queue for as long as its images take: the refusal must come
    // while it still does.
    let slow = slow_images(Duration::from_secs(5));
    let server = Server::start(&[(DET, "1.onnx")], &[("ML_QUEUE_TASKS", "3")]).await;
    let three: Vec<String> = (0..3).map(|i| format!("http://{slow}/eval-a_000{i}.png")).collect();
    let first = {
        let (http, url, body) = (
            reqwest::Client::new(),
            server.url("/predict"),
            predict_body(&three, "1.1", RECT_CONFIG),
        );
        tokio::spawn(async move { http.post(url).json(&body).send().await.map(|r| r.status().as_u16()) })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let one = predict_body(&three[..1], "1.1", RECT_CONFIG);
    let started = Instant::now();
    let busy = server
        .http
        .post(server.url("/predict"))
        .json(&one)
        .send()
        .await
        .expect("request");
    assert_eq!(busy.status(), 503);
    report(&format!(
        "a full queue (ML_QUEUE_TASKS=3): 503 after {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    ));
    assert!(
        !first.is_finished(),
        "refused at once, not queued behind the first request"
    );
    assert_eq!(
        busy.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let detail: Value = busy.json().await.expect("json");
    assert!(
        detail["detail"].as_str().is_some_and(|d| d.contains("ML_QUEUE_TASKS")),
        "{detail}"
    );
    let too_many: Vec<String> = (0..4).map(|_| three[0].clone()).collect();
    let (status, _) = server
        .post("/predict", &predict_body(&too_many, "1.1", RECT_CONFIG))
        .await;
    assert_eq!(status, 413, "more tasks than the whole queue holds");
    assert_eq!(first.await.expect("join").expect("first request"), 200);
    let (status, _) = server.post("/predict", &one).await;
    assert_eq!(status, 200, "the queue has room again");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_requests_in_flight_finish_then_exits_0() {
    let slow = slow_images(Duration::from_millis(1500));
    let mut server = Server::start(&[(DET, "1.onnx")], &[]).await;
    let urls = [format!("http://{slow}/eval-a_0000.png")];
    let in_flight = {
        let (http, url, body) = (
            reqwest::Client::new(),
            server.url("/predict"),
            predict_body(&urls, "1.1", RECT_CONFIG),
        );
        tokio::spawn(async move {
            let r = http.post(url).json(&body).send().await.expect("in-flight request");
            (r.status().as_u16(), r.json::<Value>().await.expect("json"))
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = tokio::task::block_in_place(|| server.terminate(Duration::from_secs(10))).expect("exits");
    let (code, body) = in_flight.await.expect("join");
    assert_eq!(code, 200, "{body}");
    assert!(
        body["results"][0]["result"].as_array().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    assert_eq!(status.code(), Some(0), "a clean exit:\n{}", server.log());
    assert!(server.log().contains("finishing requests in flight"));
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_is_bounded() {
    let slow = slow_images(Duration::from_secs(30));
    let mut server = Server::start(&[(DET, "1.onnx")], &[("ML_SHUTDOWN_TIMEOUT", "1")]).await;
    let urls = [format!("http://{slow}/eval-a_0000.png")];
    let (http, url, body) = (
        reqwest::Client::new(),
        server.url("/predict"),
        predict_body(&urls, "1.1", RECT_CONFIG),
    );
    tokio::spawn(async move { http.post(url).json(&body).send().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    // The request in flight would take 30 s: a server that waited for it, or hung, misses this.
    let status = tokio::task::block_in_place(|| server.terminate(Duration::from_secs(20)))
        .expect("gave up after ML_SHUTDOWN_TIMEOUT, long before the request in flight ended");
    report(&format!(
        "shutdown with ML_SHUTDOWN_TIMEOUT=1 and a request in flight: exited after {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    assert_ne!(status.code(), Some(0), "an unclean stop says so");
    assert!(server.log().contains("ML_SHUTDOWN_TIMEOUT"), "{}", server.log());
}

#[tokio::test]
async fn hostile_urls_are_refused_and_secrets_stay_out_of_the_log() {
    let images = serve_dir(eval_images());
    let ls = format!("http://{images}");
    let server = Server::start(
        &[(DET, "1.onnx")],
        &[
            ("ML_MEDIA_BLOCK_PRIVATE", "true"),
            ("LABEL_STUDIO_URL", &ls),
            ("LABEL_STUDIO_API_KEY", "s3cr3t-legacy-key"),
        ],
    )
    .await;
    let elsewhere = serve_dir(eval_images());
    let loopback_by_name = format!("http://localhost:{}/eval-a_0000.png", elsewhere.port());
    let urls = vec![
        // Label Studio's own address is allowed even though it is loopback.
        "/eval-a_0000.png".to_string(),
        format!(
            "http://127.0.0.1:{}/eval-a_0001.png?token=tok-in-url-99",
            elsewhere.port()
        ),
        loopback_by_name,
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://user:pa55w0rd@10.0.0.1:{}/a.png", images.port()),
    ];
    let (status, body) = server.post("/predict", &predict_body(&urls, "1.1", RECT_CONFIG)).await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().expect("results");
    assert!(
        results[0]["result"].as_array().is_some_and(|r| !r.is_empty()),
        "Label Studio is allowed"
    );
    for (i, r) in results.iter().enumerate().skip(1) {
        assert_eq!(r["result"], json!([]), "slot {i} is refused");
    }
    let log = server.log();
    assert!(log.contains("ML_MEDIA_BLOCK_PRIVATE"), "{log}");
    for secret in ["s3cr3t-legacy-key", "tok-in-url-99", "pa55w0rd"] {
        assert!(!log.contains(secret), "`{secret}` reached the log:\n{log}");
    }

    let allow = Server::start(&[(DET, "1.onnx")], &[("ML_MEDIA_ALLOWED_HOSTS", "images.example.com")]).await;
    let urls = [format!("http://{images}/eval-a_0000.png")];
    let (status, body) = allow.post("/predict", &predict_body(&urls, "1.1", RECT_CONFIG)).await;
    assert_eq!((status, body["results"][0]["result"].clone()), (200, json!([])));
    assert!(allow.log().contains("not in ML_MEDIA_ALLOWED_HOSTS"));
}

#[tokio::test]
async fn oversized_headers_are_refused_and_the_server_goes_on() {
    let server = Server::start(&[(DET, "1.onnx")], &[]).await;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let huge = "x".repeat(1024 * 1024);
    let request = format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Junk: {huge}\r\n\r\n");
    let _ = stream.write_all(request.as_bytes());
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stream, &mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431") || answer.starts_with("HTTP/1.1 400"),
        "a megabyte of headers is not served: {}",
        answer.lines().next().unwrap_or("")
    );
    let (status, _) = server.get("/health").await;
    assert_eq!(status, 200);
}
