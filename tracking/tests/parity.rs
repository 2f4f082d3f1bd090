//! The trackers against Ultralytics 8.4.190 on recorded runs: the same detections (and, for
//! BoT-SORT, the same camera warps) must give the same tracks frame by frame — the same number,
//! order and matched detection, ids that map one to one in order of birth, boxes within 1e-3 px,
//! the same scores and classes.
//!
//! Two sources: the video references (tests/fixtures/video/reference/*.json, from real videos
//! and a real detector), and tests/fixtures/video/tracker-cases.json, synthetic detections made by
//! scripts/fixtures/tracker-cases.py to reach every stage of the trackers.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use ls_tracking::{Detection, Tracker, TrackerConfig, TrackerKind};
use serde::Deserialize;
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/video");
const BOX_TOLERANCE: f64 = 1e-3;

#[derive(Deserialize)]
struct Reference {
    runs: BTreeMap<String, Run>,
}

#[derive(Deserialize)]
struct Run {
    config: serde_json::Map<String, Value>,
    frames: Vec<Frame>,
}

#[derive(Deserialize)]
struct Frame {
    detections: Vec<Det>,
    warp: Option<[[f64; 3]; 2]>,
    /// [x1, y1, x2, y2, id, score, cls, idx], as Ultralytics' tracker returns them.
    tracks: Vec<[f64; 8]>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Det {
    Object { xyxy: [f64; 4], conf: f64, cls: f64 },
    Row([f64; 6]),
}

impl Det {
    fn detection(&self) -> Detection {
        let (xyxy, conf, cls) = match self {
            Det::Object { xyxy, conf, cls } => (*xyxy, *conf, *cls),
            Det::Row([x1, y1, x2, y2, conf, cls]) => ([*x1, *y1, *x2, *y2], *conf, *cls),
        };
        // The recorded values are float32 ones, so these casts are exact.
        Detection {
            bbox: xyxy.map(|v| v as f32),
            score: conf as f32,
            class_id: cls as u32,
        }
    }
}

/// Builds the tracker the way the backend will: defaults, then every key of the recorded
/// Ultralytics configuration through `set`.
fn config(run: &str, recorded: &serde_json::Map<String, Value>) -> TrackerConfig {
    let kind: TrackerKind = recorded
        .get("tracker_type")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{run}: no tracker_type in the config"))
        .parse()
        .unwrap_or_else(|e| panic!("{run}: {e}"));
    let mut config = TrackerConfig::defaults(kind);
    for (key, value) in recorded {
        let value = match value {
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            other => panic!("{run}: config {key} = {other} is neither a string, a number nor a boolean"),
        };
        config.set(key, &value).unwrap_or_else(|e| panic!("{run}: {e}"));
    }
    config
}

struct Summary {
    frames: usize,
    rows: usize,
    ids: usize,
    max_box_diff: f64,
    same_ids: bool,
}

fn check_run(name: &str, run: &Run) -> Summary {
    let mut tracker = Tracker::new(config(name, &run.config));
    let mut ours_to_theirs: HashMap<u64, u64> = HashMap::new();
    let mut theirs_to_ours: HashMap<u64, u64> = HashMap::new();
    let mut max_box_diff: f64 = 0.0;
    let mut rows = 0;
    for (f, frame) in run.frames.iter().enumerate() {
        let detections: Vec<Detection> = frame.detections.iter().map(Det::detection).collect();
        let got = tracker.update_with_warp(&detections, frame.warp);
        let context = || {
            let ours: Vec<String> = got
                .iter()
                .map(|t| {
                    format!(
                        "id {} det {} {:?} {} cls {}",
                        t.id, t.detection, t.bbox, t.score, t.class_id
                    )
                })
                .collect();
            let theirs: Vec<String> = frame
                .tracks
                .iter()
                .map(|t| format!("id {} det {} {:?} {} cls {}", t[4], t[7], &t[..4], t[5], t[6]))
                .collect();
            format!("{name}, frame {f} (from 0):\n  ours:   {ours:#?}\n  theirs: {theirs:#?}")
        };
        assert_eq!(got.len(), frame.tracks.len(), "track count differs; {}", context());
        for (ours, theirs) in got.iter().zip(&frame.tracks) {
            assert_eq!(
                ours.detection as f64,
                theirs[7],
                "matched detection differs; {}",
                context()
            );
            let their_id = theirs[4] as u64;
            let mapped = *ours_to_theirs.entry(ours.id).or_insert(their_id);
            let back = *theirs_to_ours.entry(their_id).or_insert(ours.id);
            assert!(
                mapped == their_id && back == ours.id,
                "ids do not map one to one; {}",
                context()
            );
            for (&o, &t) in ours.bbox.iter().zip(theirs) {
                let diff = (f64::from(o) - t).abs();
                max_box_diff = max_box_diff.max(diff);
                assert!(diff <= BOX_TOLERANCE, "box differs by {diff} px; {}", context());
            }
            assert_eq!(ours.score, theirs[5] as f32, "score differs; {}", context());
            assert_eq!(f64::from(ours.class_id), theirs[6], "class differs; {}", context());
        }
        rows += got.len();
    }
    let mut pairs: Vec<(u64, u64)> = ours_to_theirs.iter().map(|(&o, &t)| (o, t)).collect();
    pairs.sort_unstable();
    assert!(
        pairs.windows(2).all(|w| w[0].1 < w[1].1),
        "{name}: ids are not in the same order of birth: {pairs:?}"
    );
    Summary {
        frames: run.frames.len(),
        rows,
        ids: pairs.len(),
        max_box_diff,
        same_ids: pairs.iter().all(|(o, t)| o == t),
    }
}

fn check_file(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reference: Reference = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(!reference.runs.is_empty(), "{}: no runs", path.display());
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for (name, run) in &reference.runs {
        let s = check_run(&format!("{file} {name}"), run);
        eprintln!(
            "{file} {name}: {} frames, {} tracks ({} ids{}), max box difference {:.2e} px",
            s.frames,
            s.rows,
            s.ids,
            if s.same_ids {
                ", the same numbers"
            } else {
                ", renumbered"
            },
            s.max_box_diff
        );
    }
    reference.runs.len()
}

#[test]
fn video_references_match_ultralytics() {
    let dir = PathBuf::from(FIXTURES).join("reference");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the Ultralytics references are part of the repository)",
            dir.display()
        )
    });
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no reference files", dir.display());
    let runs: usize = files.iter().map(|f| check_file(f)).sum();
    eprintln!("{} reference files, {runs} runs", files.len());
}

#[test]
fn tracker_cases_match_ultralytics() {
    let runs = check_file(&PathBuf::from(FIXTURES).join("tracker-cases.json"));
    assert!(runs >= 7, "only {runs} runs");
}
