//! Video tracking through the real server: the fixture videos (scripts/fixtures/make-videos.py)
//! decoded by ffmpeg, detected by the real plugin and ONNX Runtime, tracked, and compared with
//! Ultralytics' own `model.track` on the same model (scripts/fixtures/track-reference.py).
//! Also the bad inputs: each fails in its own slot, with a reason in the log.

use std::{collections::HashMap, path::PathBuf};

use crate::common::*;
use serde_json::{Value, json};

const MODEL: &str = "yolov8n-shapes-det-320.onnx";
const MIN_IOU: f64 = 0.95;
const MIN_MATCHED: f64 = 0.97;

fn videos() -> PathBuf {
    fixtures().join("video")
}

fn load(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("json")
}

fn video_config(tracker_attrs: &str) -> String {
    format!(
        r#"<View>
  <Video name="video" value="$video"/>
  <VideoRectangle name="box" toName="video" {tracker_attrs}/>
  <Labels name="videoLabels" toName="video">
    <Label value="circle"/><Label value="square"/><Label value="triangle"/>
  </Labels>
</View>"#
    )
}

fn video_body(urls: &[String], config: &str) -> Value {
    let tasks: Vec<Value> = urls
        .iter()
        .enumerate()
        .map(|(i, url)| json!({"id": i + 1, "data": {"video": url}, "annotations": [], "predictions": []}))
        .collect();
    json!({"tasks": tasks, "project": "1.1700000000", "label_config": config,
           "params": {"login": null, "password": null, "context": null}})
}

/// One box of a track: (1-based frame, corners in pixels, track).
struct Boxed {
    frame: u64,
    xyxy: [f64; 4],
    track: usize,
    label: String,
}

/// Every box of every `videorectangle` region, in pixels of a `width` x `height` frame.
fn boxes_of(result: &[Value], width: f64, height: f64) -> Vec<Boxed> {
    let mut out = Vec::new();
    for (track, region) in result.iter().enumerate() {
        assert_eq!(region["type"], "videorectangle", "{region}");
        let label = region["value"]["labels"][0].as_str().expect("label").to_string();
        for b in region["value"]["sequence"].as_array().expect("sequence") {
            let f = |k: &str| b[k].as_f64().unwrap_or_else(|| panic!("{k} in {b}"));
            let (x, y) = (f("x") * width / 100.0, f("y") * height / 100.0);
            let (w, h) = (f("width") * width / 100.0, f("height") * height / 100.0);
            out.push(Boxed {
                frame: b["frame"].as_u64().expect("frame"),
                xyxy: [x, y, x + w, y + h],
                track,
                label: label.clone(),
            });
        }
    }
    out
}

const NAMES: [&str; 3] = ["circle", "square", "triangle"];

/// Per frame, the reference tracks (xyxy, id, class name) of one run, clipped to the frame as
/// Ultralytics' results clip them (the fixture holds the tracker's own rows).
fn reference_frames(run: &Value, width: f64, height: f64) -> Vec<Vec<([f64; 4], u64, &'static str)>> {
    run["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .map(|frame| {
            frame["tracks"]
                .as_array()
                .expect("tracks")
                .iter()
                .map(|t| {
                    let v = |i: usize| t[i].as_f64().expect("number");
                    let (x, y) = (|v: f64| v.clamp(0.0, width), |v: f64| v.clamp(0.0, height));
                    ([x(v(0)), y(v(1)), x(v(2)), y(v(3))], v(4) as u64, NAMES[v(6) as usize])
                })
                .collect()
        })
        .collect()
}

/// What ffprobe prints for these entries of the first video stream, as bare CSV.
fn ffprobe(video: &std::path::Path, entries: &str) -> String {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            entries,
            "-of",
            "csv=p=0",
        ])
        .arg(video)
        .output()
        .expect("ffprobe (scripts/setup-ffmpeg.sh installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The presentation time of each frame (for the VFR video).
fn frame_times(video: &std::path::Path) -> Vec<f64> {
    ffprobe(video, "frame=pts_time")
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect()
}

/// The stream's base rate, and whether it differs from its average (a variable rate).
fn frame_rates(video: &std::path::Path) -> (f64, bool) {
    let text = ffprobe(video, "stream=r_frame_rate,avg_frame_rate");
    let rates: Vec<f64> = text
        .trim()
        .split(',')
        .filter_map(|r| {
            let (n, d) = r.split_once('/')?;
            Some(n.parse::<f64>().ok()? / d.parse::<f64>().ok()?)
        })
        .collect();
    assert_eq!(rates.len(), 2, "ffprobe said {text}");
    (rates[0], (rates[0] - rates[1]).abs() > 0.01 * rates[0])
}

#[tokio::test]
#[ignore = "needs ffmpeg and ffprobe (scripts/setup-ffmpeg.sh); scripts/test.sh runs it"]
async fn tracks_match_ultralytics_through_the_server() {
    let server = Server::start(&[(MODEL, MODEL)], &[]).await;
    let addr = serve_dir(videos());
    let mut summary = Vec::new();
    let mut references: Vec<PathBuf> = std::fs::read_dir(videos().join("reference"))
        .expect("tests/fixtures/video/reference (scripts/fixtures/track-reference.py makes it)")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    references.sort();
    assert!(
        references.len() >= 5,
        "the reference videos are missing: {references:?}"
    );
    for path in &references {
        let reference = load(path);
        let video = reference["video"].as_str().expect("video");
        let (width, height) = (
            reference["width"].as_f64().expect("width"),
            reference["height"].as_f64().expect("height"),
        );
        // Ultralytics numbers frames by decode order; Label Studio's grid places a
        // variable-rate video's frames by their time, at the video's average rate.
        let times = frame_times(&videos().join(video));
        let (base_rate, variable) = frame_rates(&videos().join(video));
        let grid = |index: usize| -> u64 {
            if !variable {
                return index as u64 + 1;
            }
            ((times[index] - times[0]) * base_rate).round() as u64 + 1
        };
        for (run_name, run) in reference["runs"].as_object().expect("runs") {
            let config = &run["config"];
            let kind = config["tracker_type"].as_str().expect("tracker_type");
            // Ultralytics' vid_stride is our model_frame_step: the reference's frame i is the
            // video's frame (i + 1) * stride (1-based).
            let stride = run["vid_stride"].as_u64().unwrap_or(1) as usize;
            let mut attrs = format!(r#"model_tracker="{kind}" model_frame_step="{stride}""#);
            for (key, value) in config.as_object().expect("config") {
                if key == "tracker_type" || key == "model" || key == "with_reid" {
                    continue;
                }
                let value = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                attrs.push_str(&format!(r#" {kind}_{key}="{value}""#));
            }
            let url = format!("http://{addr}/{video}");
            let (status, answer) = server
                .post("/predict", &video_body(&[url], &video_config(&attrs)))
                .await;
            assert_eq!(status, 200, "{answer}");
            let result = answer["results"][0]["result"].as_array().cloned().unwrap_or_default();
            assert!(!result.is_empty(), "{video} {run_name}: no tracks\n{}", server.log());
            let ours = boxes_of(&result, width, height);
            let frames = reference_frames(run, width, height);
            let mut by_frame: HashMap<u64, Vec<&Boxed>> = HashMap::new();
            for b in &ours {
                by_frame.entry(b.frame).or_default().push(b);
            }
            let (mut total, mut matched, mut worst_frame, mut min_iou) = (0usize, 0usize, 1.0f64, 1.0f64);
            // For identity agreement: which of our tracks each reference track maps to.
            let mut assigned: HashMap<u64, usize> = HashMap::new();
            let (mut switches, mut relabelled) = (0, 0);
            for (index, refs) in frames.iter().enumerate() {
                let mine = by_frame
                    .get(&grid((index + 1) * stride - 1))
                    .cloned()
                    .unwrap_or_default();
                let mut used = vec![false; mine.len()];
                let mut hit = 0;
                for (xyxy, id, class) in refs {
                    // A region has one label (its track's latest class, as the official backend
                    // writes it), so a box whose class flickered is matched by place alone.
                    let best = mine
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| !used[*j])
                        .map(|(j, b)| (j, iou(xyxy, &b.xyxy)))
                        .max_by(|a, b| a.1.total_cmp(&b.1));
                    if let Some((j, overlap)) = best
                        && overlap >= MIN_IOU
                    {
                        used[j] = true;
                        hit += 1;
                        min_iou = min_iou.min(overlap);
                        if mine[j].label != *class {
                            relabelled += 1;
                        }
                        let track = mine[j].track;
                        if let Some(previous) = assigned.insert(*id, track)
                            && previous != track
                        {
                            switches += 1;
                        }
                    }
                }
                total += refs.len();
                matched += hit;
                if !refs.is_empty() {
                    worst_frame = worst_frame.min(hit as f64 / refs.len() as f64);
                }
            }
            let share = matched as f64 / total.max(1) as f64;
            let reference_ids: std::collections::HashSet<u64> = frames.iter().flatten().map(|(_, id, _)| *id).collect();
            let line = format!(
                "video {video} {run_name}: {matched}/{total} reference boxes matched ({:.2}%, worst frame {:.0}%, min IoU \
                 {min_iou:.4}), {} extra, \
                 {} tracks (reference {}), {switches} id switches against the reference, {relabelled} boxes under \
                 their track's later label",
                share * 100.0,
                worst_frame * 100.0,
                ours.len() - matched,
                result.len(),
                reference_ids.len()
            );
            eprintln!("{line}");
            summary.push(line.clone());
            assert!(
                total > 50,
                "{video} {run_name}: the reference has too few boxes to test ({total})"
            );
            assert!(share >= MIN_MATCHED, "{line}");
            let extra = ours.len() - matched;
            assert!(extra as f64 <= (1.0 - MIN_MATCHED) * total as f64, "{line}");
            assert_eq!(switches, 0, "{line}");
            assert_eq!(result.len(), reference_ids.len(), "{line}");
            // Label Studio's pixels: every box inside the frame.
            assert!(
                ours.iter().all(|b| b.xyxy[0] >= -1e-3
                    && b.xyxy[1] >= -1e-3
                    && b.xyxy[2] <= width + 1e-3
                    && b.xyxy[3] <= height + 1e-3),
                "{video} {run_name}: a box leaves the frame"
            );
        }
    }
    for line in summary {
        report(&line);
    }
}

/// The tasks' results, in order: whether each got any region.
fn got_regions(answer: &Value) -> Vec<bool> {
    answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["result"].as_array().is_some_and(|a| !a.is_empty()))
        .collect()
}

#[tokio::test]
#[ignore = "needs ffmpeg and ffprobe (scripts/setup-ffmpeg.sh); scripts/test.sh runs it"]
async fn bad_videos_fail_in_their_own_slot_with_a_reason() {
    let server = Server::start(&[(MODEL, MODEL)], &[]).await;
    let addr = serve_dir(videos());
    let cases = [
        ("bad/truncated.mp4", "ffprobe cannot read the file"),
        ("bad/audio-only.m4a", "the file has no video stream (it holds audio)"),
        ("bad/zero-frames.mp4", "the video has no frames"),
        ("bad/not-a-video.mp4", "ffprobe cannot read the file"),
        ("bad/huge.mp4", "more than ML_MAX_IMAGE_PIXELS"),
        ("bad/missing.mp4", "HTTP 404"),
    ];
    let mut urls: Vec<String> = cases.iter().map(|(f, _)| format!("http://{addr}/{f}")).collect();
    urls.insert(3, format!("http://{addr}/cross.mp4"));
    let (status, answer) = server
        .post(
            "/predict",
            &video_body(&urls, &video_config(r#"model_tracker="bytetrack""#)),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let mut expected = vec![false; cases.len()];
    expected.insert(3, true);
    assert_eq!(
        got_regions(&answer),
        expected,
        "only the good video has tracks\n{}",
        server.log()
    );
    let log = server.log();
    for (i, (file, reason)) in cases.iter().enumerate() {
        let task = if i >= 3 { i + 2 } else { i + 1 };
        let line = log
            .lines()
            .find(|l| l.contains(&format!("task {task}:")) && l.contains("left empty"))
            .unwrap_or_else(|| panic!("no failure logged for {file}:\n{log}"));
        assert!(line.contains(reason), "{file}: expected `{reason}` in\n{line}");
    }
    assert_eq!(server.get("/health").await.0, 200);
}

#[tokio::test]
#[ignore = "needs ffmpeg and ffprobe (scripts/setup-ffmpeg.sh); scripts/test.sh runs it"]
async fn videos_over_the_limits_are_refused_before_decoding() {
    let manifest = load(&videos().join("manifest.json"));
    let frames = |name: &str| -> u64 {
        let entry = &manifest["videos"][name];
        entry["frame_count"]
            .as_u64()
            .unwrap_or_else(|| panic!("frame_count of {name} in the manifest: {entry}"))
    };
    let (short, long) = ("speed.mp4", "cross.mp4");
    assert!(
        frames(short) < frames(long),
        "the test needs {short} shorter than {long}"
    );
    let limit = frames(short).to_string();
    let server = Server::start(&[(MODEL, MODEL)], &[("ML_VIDEO_MAX_FRAMES", limit.as_str())]).await;
    let addr = serve_dir(videos());
    let urls = [format!("http://{addr}/{long}"), format!("http://{addr}/{short}")];
    let (status, answer) = server.post("/predict", &video_body(&urls, &video_config(""))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(got_regions(&answer), vec![false, true], "{}", server.log());
    assert!(
        server
            .log()
            .contains(&format!("more than ML_VIDEO_MAX_FRAMES ({limit})")),
        "{}",
        server.log()
    );
    // A download over ML_MAX_VIDEO_MB is cut off.
    let server = Server::start(&[(MODEL, MODEL)], &[("ML_MAX_VIDEO_MB", "0")]).await;
    let (status, answer) = server
        .post("/predict", &video_body(&urls[..1], &video_config("")))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(got_regions(&answer), vec![false]);
    assert!(server.log().contains("(ML_MAX_VIDEO_MB)"), "{}", server.log());
}

#[tokio::test]
#[ignore = "needs ffmpeg and ffprobe (scripts/setup-ffmpeg.sh); scripts/test.sh runs it"]
async fn a_hung_or_crashing_ffmpeg_is_stopped_and_the_server_stays_up() {
    let dir = tempfile::tempdir().expect("temp");
    let script = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script");
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&path)
            .status()
            .expect("chmod");
        path.display().to_string()
    };
    let hang = script("ffmpeg-hang", "sleep 600");
    let crash = script("ffmpeg-crash", "head -c 1000 /dev/zero; kill -SEGV $$");
    let addr = serve_dir(videos());
    let urls = [format!("http://{addr}/cross.mp4")];
    // The real ffprobe runs first, under the same stall limit: a cold start (its libraries
    // read from disk on a busy machine) must not be what the limit catches.
    let warm = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_streams"])
        .arg(videos().join("cross.mp4"))
        .output()
        .expect("run ffprobe");
    assert!(warm.status.success(), "ffprobe works");
    for (ffmpeg, reason) in [(hang, "sent nothing for 3 s"), (crash, "ffmpeg crashed (signal 11)")] {
        let server = Server::start(
            &[(MODEL, MODEL)],
            &[("ML_FFMPEG", ffmpeg.as_str()), ("ML_VIDEO_STALL_SECS", "3")],
        )
        .await;
        let started = std::time::Instant::now();
        let (status, answer) = server.post("/predict", &video_body(&urls, &video_config(""))).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(got_regions(&answer), vec![false]);
        assert!(started.elapsed().as_secs() < 30, "answered in {:?}", started.elapsed());
        assert!(server.log().contains(reason), "expected `{reason}`:\n{}", server.log());
        assert_eq!(server.get("/health").await.0, 200, "the server is still up");
    }
}

/// `model_frame_step="2"`: every other frame is tracked (frames 2, 4, 6, ...), all frames are
/// counted, and a step is not taken for a gap in a track's lifespan. The video comes from
/// Local Files, read in place (Label Studio's address points nowhere).
#[tokio::test]
#[ignore = "needs ffmpeg and ffprobe (scripts/setup-ffmpeg.sh); scripts/test.sh runs it"]
async fn a_frame_step_tracks_every_nth_frame_of_a_local_file() {
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let root = videos();
    let server = Server::start(
        &[(MODEL, MODEL)],
        &[
            ("LABEL_STUDIO_URL", nowhere.as_str()),
            ("LOCAL_FILES_DOCUMENT_ROOT", root.to_str().expect("utf-8 path")),
        ],
    )
    .await;
    let urls = ["/data/local-files/?d=speed.mp4".to_string()];
    let config = video_config(r#"model_tracker="bytetrack" model_frame_step="2""#);
    let (status, answer) = server.post("/predict", &video_body(&urls, &config)).await;
    assert_eq!(status, 200, "{answer}");
    let result = answer["results"][0]["result"].as_array().cloned().unwrap_or_default();
    assert!(!result.is_empty(), "{}", server.log());
    let reference = load(&videos().join("reference/speed.json"));
    let frames = reference["frames"].as_u64().expect("frames");
    for region in &result {
        assert_eq!(
            region["value"]["framesCount"].as_u64(),
            Some(frames),
            "all frames are counted"
        );
        let sequence = region["value"]["sequence"].as_array().expect("sequence");
        assert!(
            sequence.iter().all(|b| b["frame"].as_u64().is_some_and(|f| f % 2 == 0)),
            "{sequence:?}"
        );
        // speed.mp4's shapes stay in view: no gap, so only the last box ends the lifespan.
        let enabled: Vec<bool> = sequence.iter().map(|b| b["enabled"] == true).collect();
        assert!(enabled[..enabled.len() - 1].iter().all(|e| *e), "{enabled:?}");
        assert!(!enabled[enabled.len() - 1]);
    }
    // The boxes themselves are checked against Ultralytics' vid_stride=2 in the test above.
}

#[tokio::test]
#[ignore = "needs ffmpeg and ffprobe (scripts/setup-ffmpeg.sh); scripts/test.sh runs it"]
async fn a_playlist_named_like_a_video_reads_no_other_file() {
    // clip.mp4 under the document root is an HLS playlist naming a real video outside it:
    // ffmpeg would read that file (Debian's ffmpeg 5.1 does, by default) and we would track it.
    let root = tempfile::tempdir().expect("root");
    let private = tempfile::tempdir().expect("private");
    let secret = private.path().join("private.mp4");
    std::fs::copy(videos().join("speed.mp4"), &secret).expect("copy");
    std::fs::write(
        root.path().join("clip.mp4"),
        format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile://{}\n#EXT-X-ENDLIST\n",
            secret.display()
        ),
    )
    .expect("playlist");
    // The same file under the root is a real video, and is tracked: the whitelist keeps mp4.
    std::fs::copy(videos().join("speed.mp4"), root.path().join("real.mp4")).expect("copy");
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let server = Server::start(
        &[(MODEL, MODEL)],
        &[
            ("LABEL_STUDIO_URL", nowhere.as_str()),
            ("LOCAL_FILES_DOCUMENT_ROOT", root.path().to_str().expect("utf-8 path")),
        ],
    )
    .await;
    let urls = [
        "/data/local-files/?d=clip.mp4".to_string(),
        "/data/local-files/?d=real.mp4".to_string(),
    ];
    let config = video_config(r#"model_tracker="bytetrack""#);
    let (status, answer) = server.post("/predict", &video_body(&urls, &config)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(got_regions(&answer), [false, true], "{answer}");
    let log = server.log();
    assert!(log.contains("whitelist"), "the reason is logged:\n{log}");
    report("security: HLS playlist named clip.mp4 naming a file outside the root: 0 boxes (was 429)");
}
