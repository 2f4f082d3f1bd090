//! Label Studio annotations as an Ultralytics YOLO dataset: which task a project's label
//! config trains ([`plan`]), each image's label file ([`convert`]), the train/val split and
//! the dataset's `data.yaml`. No I/O: the host fetches the images and writes the files.
//!
//! Label Studio stores coordinates in percent (0–100) of the original image; YOLO label
//! files hold them normalized (0–1), one object a line, numbers with six decimals as
//! Ultralytics' own converters write them.

use std::fmt;

use serde_json::Value;

use labelstudio_protocol::{
    brush,
    label_config::{Control, ControlKind, LabelConfig, LabelDef},
};

/// The Ultralytics task a dataset trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainTask {
    Detect,
    Obb,
    Segment,
    Pose,
    Classify,
}

impl TrainTask {
    /// Ultralytics' name for the task (`task=` on its command line).
    pub fn ultralytics(self) -> &'static str {
        match self {
            Self::Detect => "detect",
            Self::Obb => "obb",
            Self::Segment => "segment",
            Self::Pose => "pose",
            Self::Classify => "classify",
        }
    }
}

/// What a project's label config trains: one control tag on one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub task: TrainTask,
    /// `from_name` of the control tag trained (for pose, the `KeyPointLabels` tag).
    pub control: String,
    /// `to_name`: the `<Image>` tag's name.
    pub image: String,
    /// The image's data key: `task.data[value_key]` is the image's URL.
    pub value_key: String,
    /// Class names, in the order of the config's labels (the values Label Studio stores);
    /// a class's index is its YOLO class id. For pose, the parent `_bbox` tag's labels.
    pub classes: Vec<String>,
    /// Pose only: the keypoint labels in keypoint-index order.
    pub keypoints: Vec<String>,
    /// Pose only: the `<name>_bbox` tag the instances' boxes come from.
    pub parent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetError {
    #[error(
        "the label config has no tag a YOLO model can be trained for: add RectangleLabels, PolygonLabels, \
         BrushLabels, KeyPointLabels (with a <name>_bbox RectangleLabels) or Choices on an <Image>"
    )]
    NoTrainableTag,
    #[error("the label config's <{kind}> tag \"{name}\" has no labels to train a YOLO model for")]
    NoLabels { kind: &'static str, name: String },
}

/// Chooses what to train from the label config, and for `RectangleLabels`, from the regions
/// seen so far (a rotated box makes it an OBB dataset).
///
/// The first tag of the most specific kind wins: `KeyPointLabels` with a `<name>_bbox`
/// parent (pose), then `PolygonLabels` or `BrushLabels` (segment), then `RectangleLabels`
/// (detect, or obb with `model_obb="true"` or a rotated region), then `Choices` (classify).
/// Only tags on an `<Image>` and without `model_skip` count, and only tags with labels.
///
/// `results_seen` holds result regions; an item that is an array (a whole annotation's
/// `result`) counts as its regions.
pub fn plan<'a>(config: &LabelConfig, results_seen: impl IntoIterator<Item = &'a Value>) -> Result<Plan, DatasetError> {
    let on_image = |c: &&Control| !c.skip && config.image(&c.to_name).is_some();
    let of_kinds = |kinds: &'static [ControlKind]| {
        config
            .controls
            .iter()
            .filter(on_image)
            .filter(move |c| kinds.contains(&c.kind))
    };
    // Pose: keypoints with their parent boxes.
    for kp in of_kinds(&[ControlKind::KeyPointLabels]) {
        let Some(parent) = &kp.keypoints.parent else {
            continue;
        };
        let classes = class_names(&parent.labels);
        let keypoints = keypoint_order(&kp.labels);
        if classes.is_empty() || keypoints.is_empty() {
            continue;
        }
        return Ok(new_plan(
            config,
            kp,
            TrainTask::Pose,
            classes,
            keypoints,
            Some(parent.name.clone()),
        ));
    }

    let mut found: Option<(&Control, TrainTask)> = None;
    for (kinds, task) in [
        (
            &[ControlKind::PolygonLabels, ControlKind::BrushLabels][..],
            TrainTask::Segment,
        ),
        (&[ControlKind::RectangleLabels][..], TrainTask::Detect),
        (&[ControlKind::Choices][..], TrainTask::Classify),
    ] {
        if let Some(c) = of_kinds(kinds).find(|c| !c.labels.is_empty()) {
            found = Some((c, task));
            break;
        }
    }
    let Some((control, mut task)) = found else {
        // A tag that would do, but has no labels (or a pose tag without keypoint or box labels).
        let unlabelled = config.controls.iter().filter(on_image).find(|c| match c.kind {
            ControlKind::KeyPointLabels => c.keypoints.parent.is_some(),
            _ => c.labels.is_empty(),
        });
        return Err(match unlabelled {
            Some(c) => DatasetError::NoLabels {
                kind: tag_name(c.kind),
                name: c.name.clone(),
            },
            None => DatasetError::NoTrainableTag,
        });
    };
    if task == TrainTask::Detect && (control.obb || any_rotated(control, results_seen)) {
        task = TrainTask::Obb;
    }
    Ok(new_plan(
        config,
        control,
        task,
        class_names(&control.labels),
        Vec::new(),
        None,
    ))
}

fn new_plan(
    config: &LabelConfig,
    control: &Control,
    task: TrainTask,
    classes: Vec<String>,
    keypoints: Vec<String>,
    parent: Option<String>,
) -> Plan {
    Plan {
        task,
        control: control.name.clone(),
        image: control.to_name.clone(),
        value_key: config
            .image(&control.to_name)
            .map(|i| i.value_key.clone())
            .unwrap_or_default(),
        classes,
        keypoints,
        parent,
    }
}

fn tag_name(kind: ControlKind) -> &'static str {
    match kind {
        ControlKind::RectangleLabels => "RectangleLabels",
        ControlKind::PolygonLabels => "PolygonLabels",
        ControlKind::BrushLabels => "BrushLabels",
        ControlKind::KeyPointLabels => "KeyPointLabels",
        ControlKind::Choices => "Choices",
        ControlKind::Taxonomy => "Taxonomy",
    }
}

/// The distinct label values, in tag order.
fn class_names(labels: &[LabelDef]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in labels {
        if !out.contains(&l.value) {
            out.push(l.value.clone());
        }
    }
    out
}

/// Keypoint labels in index order: those with `model_index` by it (tag order on a tie),
/// then those without, in tag order. When the `model_index`es are 0..K-1, each label's
/// position is its `model_index`.
fn keypoint_order(labels: &[LabelDef]) -> Vec<String> {
    let mut sorted: Vec<&LabelDef> = labels.iter().collect();
    sorted.sort_by_key(|l| (l.model_index.is_none(), l.model_index.unwrap_or(0)));
    let mut out: Vec<String> = Vec::new();
    for l in sorted {
        if !out.contains(&l.value) {
            out.push(l.value.clone());
        }
    }
    out
}

/// Whether any region seen for the tag is a rotated rectangle.
fn any_rotated<'a>(control: &Control, results_seen: impl IntoIterator<Item = &'a Value>) -> bool {
    let rotated = |r: &Value| {
        r.get("from_name").and_then(Value::as_str) == Some(control.name.as_str())
            && r.get("to_name").and_then(Value::as_str) == Some(control.to_name.as_str())
            && r["value"]["rotation"].as_f64().is_some_and(is_rotated)
    };
    results_seen.into_iter().any(|item| match item {
        Value::Array(regions) => regions.iter().any(rotated),
        region => rotated(region),
    })
}

fn is_rotated(degrees: f64) -> bool {
    let r = degrees.rem_euclid(360.0);
    degrees.is_finite() && r > 1e-9 && r < 360.0 - 1e-9
}

/// One image's YOLO label.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    /// The lines of the label file (without line ends).
    Lines(Vec<String>),
    /// Classify: the class index.
    Class(usize),
    /// No objects (an empty label file is a valid negative, except for classify).
    Empty,
}

impl Label {
    /// The label file's text: each line ended by `\n`; empty for [`Label::Empty`] and for
    /// [`Label::Class`] (a classify dataset has no label files).
    pub fn file_text(&self) -> String {
        match self {
            Label::Lines(lines) => lines.iter().map(|l| format!("{l}\n")).collect(),
            Label::Class(_) | Label::Empty => String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    pub label: Label,
    /// Regions of the trained tags that could not be used, and why.
    pub skipped: Vec<Skip>,
}

/// Why a region was left out of the dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// A label that is not one of the plan's classes (or keypoints).
    UnknownLabel(String),
    /// The region (by id) has no usable shape: missing or non-numeric coordinates, fewer
    /// than 3 points, no area, or a brush mask that does not decode.
    BadGeometry(String),
    /// A keypoint (by id) with no `parentID`, or whose parent box is not in the annotation.
    NoParent(String),
    /// A second keypoint (by id) with the same label on the same box.
    DuplicateKeypoint(String),
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::UnknownLabel(label) => write!(f, "label \"{label}\" is not in the label config"),
            Skip::BadGeometry(id) => write!(f, "region {id} has no usable shape"),
            Skip::NoParent(id) => write!(f, "keypoint {id} has no parent box"),
            Skip::DuplicateKeypoint(id) => write!(f, "keypoint {id} repeats a keypoint of its box"),
        }
    }
}

/// The smallest piece of a brush mask, in pixels, that becomes a polygon.
pub const MIN_PIECE_PIXELS: usize = 4;

/// The most a brush outline is simplified, in pixels (less for small pieces: 1 % of the
/// square root of the piece's area, as predictions are simplified).
pub const BRUSH_TOLERANCE: f64 = 1.0;

/// One image's label from an annotation's `result`. `width`, `height`: the image's decoded
/// size, used where a region has no `original_width`/`original_height`.
///
/// Only regions of the plan's tag (and for pose, its parent tag) on the plan's image count;
/// others are ignored.
pub fn convert(plan: &Plan, result: &[Value], width: u32, height: u32) -> Converted {
    let mut skipped = Vec::new();
    let ours = |r: &&Value, tag: &str| {
        r.get("from_name").and_then(Value::as_str) == Some(tag)
            && r.get("to_name").and_then(Value::as_str) == Some(plan.image.as_str())
    };
    let regions: Vec<(usize, &Value)> = result
        .iter()
        .enumerate()
        .filter(|(_, r)| ours(r, &plan.control))
        .collect();
    let default_size = (width as f64, height as f64);
    let label = match plan.task {
        TrainTask::Classify => classify(plan, &regions, &mut skipped),
        TrainTask::Pose => {
            let boxes: Vec<(usize, &Value)> = match &plan.parent {
                Some(parent) => result.iter().enumerate().filter(|(_, r)| ours(r, parent)).collect(),
                None => Vec::new(),
            };
            lines(pose(plan, &boxes, &regions, default_size, &mut skipped))
        }
        TrainTask::Detect | TrainTask::Obb | TrainTask::Segment => {
            let mut out = Vec::new();
            for &(i, region) in &regions {
                let Some(class) = class_of(plan, region, &mut skipped) else {
                    continue;
                };
                match shape_lines(plan.task, region, default_size) {
                    Some(shapes) => out.extend(shapes.into_iter().map(|s| format!("{class} {s}"))),
                    None => skipped.push(Skip::BadGeometry(region_id(region, i))),
                }
            }
            lines(out)
        }
    };
    Converted { label, skipped }
}

fn lines(lines: Vec<String>) -> Label {
    if lines.is_empty() {
        Label::Empty
    } else {
        Label::Lines(lines)
    }
}

fn region_id(region: &Value, index: usize) -> String {
    match region.get("id") {
        Some(Value::String(id)) => id.clone(),
        Some(Value::Number(id)) => id.to_string(),
        _ => format!("#{index}"),
    }
}

/// The region's labels (`value[<type>]`, e.g. `value.rectanglelabels`).
fn labels_of(region: &Value) -> Vec<&str> {
    let kind = region.get("type").and_then(Value::as_str).unwrap_or_default();
    let value = &region["value"];
    let list = value
        .get(kind)
        .or_else(|| {
            [
                "rectanglelabels",
                "polygonlabels",
                "brushlabels",
                "keypointlabels",
                "choices",
            ]
            .iter()
            .find_map(|k| value.get(*k))
        })
        .and_then(Value::as_array);
    list.map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The class index of a region's (first) label; an unknown or missing label is skipped.
fn class_of(plan: &Plan, region: &Value, skipped: &mut Vec<Skip>) -> Option<usize> {
    let labels = labels_of(region);
    let Some(label) = labels.first() else {
        skipped.push(Skip::UnknownLabel(String::new()));
        return None;
    };
    let class = plan.classes.iter().position(|c| c == label);
    if class.is_none() {
        skipped.push(Skip::UnknownLabel(label.to_string()));
    }
    class
}

fn classify(plan: &Plan, regions: &[(usize, &Value)], skipped: &mut Vec<Skip>) -> Label {
    let mut class = None;
    for (_, region) in regions {
        for label in labels_of(region) {
            match plan.classes.iter().position(|c| c == label) {
                Some(i) => {
                    class.get_or_insert(i);
                }
                None => skipped.push(Skip::UnknownLabel(label.to_string())),
            }
        }
    }
    class.map_or(Label::Empty, Label::Class)
}

/// The image size a region's percentages are of.
fn size_of(region: &Value, default: (f64, f64)) -> (f64, f64) {
    let dim = |key: &str, fallback: f64| {
        region
            .get(key)
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite() && *v > 0.0)
            .unwrap_or(fallback)
    };
    (dim("original_width", default.0), dim("original_height", default.1))
}

fn number(value: &Value, key: &str) -> Option<f64> {
    value.get(key).and_then(Value::as_f64).filter(|v| v.is_finite())
}

/// A normalized coordinate as a label file writes it: clamped to [0, 1], six decimals.
fn coord(v: f64) -> String {
    // `+ 0.0` turns a clamped -0.0 into 0.0, which would print as "-0.000000".
    format!("{:.6}", v.clamp(0.0, 1.0) + 0.0)
}

fn coords(points: &[(f64, f64)]) -> String {
    points
        .iter()
        .map(|&(x, y)| format!("{} {}", coord(x), coord(y)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The four corners of a `rectanglelabels` value, normalized: from (x, y), `width` along
/// the rotation (degrees clockwise about (x, y)) and `height` across it. The rotation is
/// applied in pixels, as Label Studio draws it.
fn rect_corners(value: &Value, (w, h): (f64, f64)) -> Option<[(f64, f64); 4]> {
    let (x, y) = (number(value, "x")? / 100.0 * w, number(value, "y")? / 100.0 * h);
    let (bw, bh) = (
        number(value, "width")? / 100.0 * w,
        number(value, "height")? / 100.0 * h,
    );
    let rotation = value.get("rotation").and_then(Value::as_f64).unwrap_or(0.0);
    if !rotation.is_finite() || w <= 0.0 || h <= 0.0 {
        return None;
    }
    let (sin, cos) = if is_rotated(rotation) {
        rotation.to_radians().sin_cos()
    } else {
        (0.0, 1.0)
    };
    let corners = [
        (x, y),
        (x + bw * cos, y + bw * sin),
        (x + bw * cos - bh * sin, y + bw * sin + bh * cos),
        (x - bh * sin, y + bh * cos),
    ];
    Some(corners.map(|(px, py)| (px / w, py / h)))
}

/// `cx cy w h` of the upright box around the corners, clipped to the image; `None` when
/// nothing of it is inside.
fn upright_box(corners: &[(f64, f64)]) -> Option<String> {
    let clip = |v: f64| v.clamp(0.0, 1.0);
    let x1 = clip(corners.iter().map(|c| c.0).fold(f64::INFINITY, f64::min));
    let x2 = clip(corners.iter().map(|c| c.0).fold(f64::NEG_INFINITY, f64::max));
    let y1 = clip(corners.iter().map(|c| c.1).fold(f64::INFINITY, f64::min));
    let y2 = clip(corners.iter().map(|c| c.1).fold(f64::NEG_INFINITY, f64::max));
    (x2 > x1 && y2 > y1).then(|| {
        [(x1 + x2) / 2.0, (y1 + y2) / 2.0, x2 - x1, y2 - y1]
            .map(coord)
            .join(" ")
    })
}

/// The label-file coordinates of one region for detect, obb or segment (several for a
/// brush mask of several pieces); `None` when it has no usable shape.
fn shape_lines(task: TrainTask, region: &Value, default_size: (f64, f64)) -> Option<Vec<String>> {
    let value = &region["value"];
    let size = size_of(region, default_size);
    let kind = region.get("type").and_then(Value::as_str).unwrap_or_default();
    match task {
        TrainTask::Detect => Some(vec![upright_box(&rect_corners(value, size)?)?]),
        TrainTask::Obb => {
            let corners = rect_corners(value, size)?;
            let clipped = corners.map(|(x, y)| (x.clamp(0.0, 1.0), y.clamp(0.0, 1.0)));
            (polygon_area(&clipped) > 0.0).then(|| vec![coords(&corners)])
        }
        TrainTask::Segment if kind == "brushlabels" || value.get("rle").is_some() => {
            let outlines = brush_outlines(value, size)?;
            (!outlines.is_empty()).then(|| outlines.iter().map(|o| coords(o)).collect())
        }
        TrainTask::Segment => {
            let points: Vec<(f64, f64)> = value
                .get("points")?
                .as_array()?
                .iter()
                .map(|p| {
                    let p = p.as_array()?;
                    let (x, y) = (p.first()?.as_f64()?, p.get(1)?.as_f64()?);
                    (x.is_finite() && y.is_finite()).then_some((x / 100.0, y / 100.0))
                })
                .collect::<Option<_>>()?;
            let clipped: Vec<(f64, f64)> = points
                .iter()
                .map(|&(x, y)| (x.clamp(0.0, 1.0), y.clamp(0.0, 1.0)))
                .collect();
            (points.len() >= 3 && polygon_area(&clipped) > 0.0).then(|| vec![coords(&points)])
        }
        TrainTask::Pose | TrainTask::Classify => None,
    }
}

fn polygon_area(points: &[(f64, f64)]) -> f64 {
    if points.len() < 3 {
        return 0.0;
    }
    mask_geometry::area(points)
}

/// The outlines of a brush mask's pieces (at least [`MIN_PIECE_PIXELS`] each, largest
/// first), through their boundary pixels' centres, simplified, normalized. `None` when the
/// RLE does not decode to a mask of the image's size.
fn brush_outlines(value: &Value, (w, h): (f64, f64)) -> Option<Vec<Vec<(f64, f64)>>> {
    if value.get("format").and_then(Value::as_str).is_some_and(|f| f != "rle") {
        return None;
    }
    let bytes: Vec<u8> = value
        .get("rle")?
        .as_array()?
        .iter()
        .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
        .collect::<Option<_>>()?;
    let (width, height) = (w as usize, h as usize);
    let values = brush::decode(&bytes)?;
    if width == 0 || height == 0 || values.len() != width * height * 4 {
        return None;
    }
    let bits: Vec<bool> = values.chunks_exact(4).map(|px| px[3] > 0).collect();
    let outlines = mask_geometry::outlines_of_bits(width, height, &bits, MIN_PIECE_PIXELS)
        .into_iter()
        .filter_map(|outline| {
            let points: Vec<(f64, f64)> = outline
                .into_iter()
                .map(|(x, y)| (x as f64 + 0.5, y as f64 + 0.5))
                .collect();
            let points = mask_geometry::drop_collinear(&points);
            let epsilon = BRUSH_TOLERANCE.min(0.01 * polygon_area(&points).sqrt());
            let points = mask_geometry::douglas_peucker(&points, epsilon);
            (points.len() >= 3 && polygon_area(&points) > 0.0)
                .then(|| points.into_iter().map(|(x, y)| (x / w, y / h)).collect())
        })
        .collect();
    Some(outlines)
}

/// Pose lines: one per parent box, `cls cx cy w h` then `x y v` for each of the plan's
/// keypoints (`0 0 0` for one the box lacks).
fn pose(
    plan: &Plan,
    boxes: &[(usize, &Value)],
    points: &[(usize, &Value)],
    default_size: (f64, f64),
    skipped: &mut Vec<Skip>,
) -> Vec<String> {
    /// One parent box: its id, and unless it is unusable, its class and `cx cy w h`, and
    /// its keypoints by index.
    struct Instance {
        id: String,
        shape: Option<(usize, String)>,
        points: Vec<Option<(f64, f64)>>,
    }
    let unusable = |id: String| Instance {
        id,
        shape: None,
        points: Vec::new(),
    };
    let mut instances: Vec<Instance> = Vec::new();
    for &(i, region) in boxes {
        let id = region_id(region, i);
        let Some(class) = class_of(plan, region, skipped) else {
            // Its keypoints go with it, silently: the box's skip says why.
            instances.push(unusable(id));
            continue;
        };
        let shape =
            rect_corners(&region["value"], size_of(region, default_size)).and_then(|corners| upright_box(&corners));
        match shape {
            Some(shape) => instances.push(Instance {
                id,
                shape: Some((class, shape)),
                points: vec![None; plan.keypoints.len()],
            }),
            None => {
                skipped.push(Skip::BadGeometry(id.clone()));
                instances.push(unusable(id));
            }
        }
    }
    for &(i, region) in points {
        let id = region_id(region, i);
        let parent = match region.get("parentID") {
            Some(Value::String(p)) => Some(p.clone()),
            Some(Value::Number(p)) => Some(p.to_string()),
            _ => None,
        };
        let Some(instance) = parent.and_then(|p| instances.iter_mut().find(|b| b.id == p)) else {
            skipped.push(Skip::NoParent(id));
            continue;
        };
        if instance.shape.is_none() {
            continue;
        }
        let labels = labels_of(region);
        let Some(index) = labels
            .first()
            .and_then(|label| plan.keypoints.iter().position(|k| k == label))
        else {
            skipped.push(Skip::UnknownLabel(labels.first().unwrap_or(&"").to_string()));
            continue;
        };
        let value = &region["value"];
        let Some((x, y)) = number(value, "x").zip(number(value, "y")) else {
            skipped.push(Skip::BadGeometry(id));
            continue;
        };
        if instance.points[index].is_some() {
            skipped.push(Skip::DuplicateKeypoint(id));
            continue;
        }
        instance.points[index] = Some((x / 100.0, y / 100.0));
    }
    instances
        .into_iter()
        .filter_map(|instance| {
            let (class, shape) = instance.shape?;
            let mut line = format!("{class} {shape}");
            for point in instance.points {
                match point {
                    Some((x, y)) => line.push_str(&format!(" {} {} 2", coord(x), coord(y))),
                    None => line.push_str(" 0 0 0"),
                }
            }
            Some(line)
        })
        .collect()
}

/// Which part of the dataset an image goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Val,
}

impl Split {
    /// The folder name Ultralytics expects (`images/train`, `images/val`).
    pub fn dir(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
        }
    }
}

/// Per cent of tasks that go to validation.
pub const VAL_PERCENT: u64 = 20;

/// SplitMix64's finalizer: a fixed, well-mixed hash of a task id, the same on every
/// platform and Rust version (unlike `std`'s hashers).
fn mix(id: u64) -> u64 {
    let mut z = id.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A task's split, by a hash of its id: about [`VAL_PERCENT`] % go to validation, and a
/// task stays where it is as the project grows.
pub fn split_of(task_id: u64) -> Split {
    if mix(task_id) % 100 < VAL_PERCENT {
        Split::Val
    } else {
        Split::Train
    }
}

/// The splits of several tasks: [`split_of`] each, except that with two or more tasks
/// there is always at least one of each: when none went to validation, the training task
/// nearest to the cut (lowest hash) moves there; when none went to training, the
/// validation task with the highest hash moves there.
pub fn split_all(task_ids: &[u64]) -> Vec<Split> {
    let mut splits: Vec<Split> = task_ids.iter().map(|&id| split_of(id)).collect();
    if task_ids.len() < 2 {
        return splits;
    }
    let key = |i: usize| (mix(task_ids[i]) % 100, mix(task_ids[i]), i);
    let pick = |splits: &[Split], of: Split, lowest: bool| {
        let candidates = (0..splits.len()).filter(|&i| splits[i] == of);
        if lowest {
            candidates.min_by_key(|&i| key(i))
        } else {
            candidates.max_by_key(|&i| key(i))
        }
    };
    if !splits.contains(&Split::Val)
        && let Some(i) = pick(&splits, Split::Train, true)
    {
        splits[i] = Split::Val;
    }
    if !splits.contains(&Split::Train)
        && let Some(i) = pick(&splits, Split::Val, false)
    {
        splits[i] = Split::Train;
    }
    splits
}

/// A YAML double-quoted string.
fn yaml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            // Unicode line and paragraph separators, and the BOM, are line breaks or
            // invisible to YAML readers: escape them too.
            '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The dataset's `data.yaml` for Ultralytics, with the dataset at `root`: images in
/// `images/train` and `images/val`, labels beside them in `labels/…`, the class names by
/// index, and for pose `kpt_shape: [K, 3]` (no `flip_idx`: Ultralytics then turns off
/// left-right flips, which would swap left and right keypoints).
///
/// Ultralytics trains classify from folders (`<root>/train/<class>/…`,
/// `<root>/val/<class>/…`, classes in sorted folder-name order), not from a yaml; for
/// [`TrainTask::Classify`] this file only records the names.
pub fn data_yaml(plan: &Plan, root: &str) -> String {
    let mut out = format!("path: {}\ntrain: images/train\nval: images/val\n", yaml_quote(root));
    if plan.task == TrainTask::Pose {
        out.push_str(&format!("kpt_shape: [{}, 3]\n", plan.keypoints.len()));
    }
    out.push_str("names:\n");
    for (i, name) in plan.classes.iter().enumerate() {
        out.push_str(&format!("  {i}: {}\n", yaml_quote(name)));
    }
    out
}

/// The annotation to train on: the task's most recently updated annotation (by
/// `updated_at`, then `created_at`, then `id`) that was not cancelled (skipped) and has a
/// non-empty `result`.
pub fn latest_annotation(task: &Value) -> Option<&Value> {
    let usable = |a: &&Value| {
        a.get("was_cancelled").and_then(Value::as_bool) != Some(true)
            && a.get("result").and_then(Value::as_array).is_some_and(|r| !r.is_empty())
    };
    let key = |a: &&Value| {
        let time = a
            .get("updated_at")
            .and_then(Value::as_str)
            .or_else(|| a.get("created_at").and_then(Value::as_str))
            .unwrap_or_default()
            .to_string();
        (time, a.get("id").and_then(Value::as_u64).unwrap_or(0))
    };
    task.get("annotations")?
        .as_array()?
        .iter()
        .filter(usable)
        .max_by_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::Mask;
    use serde_json::json;

    fn config(xml: &str) -> LabelConfig {
        LabelConfig::parse(xml).expect("config")
    }

    const DETECT: &str = r#"<View>
      <Image name="img" value="$photo"/>
      <RectangleLabels name="boxes" toName="img">
        <Label value="cat"/><Label value="Dog" alias="dog"/>
      </RectangleLabels>
    </View>"#;

    fn detect_plan(task: TrainTask) -> Plan {
        Plan {
            task,
            control: "boxes".into(),
            image: "img".into(),
            value_key: "photo".into(),
            classes: vec!["cat".into(), "dog".into()],
            keypoints: vec![],
            parent: None,
        }
    }

    fn rect(id: &str, label: &str, [x, y, w, h, rotation]: [f64; 5], size: (u32, u32)) -> Value {
        json!({
            "id": id, "from_name": "boxes", "to_name": "img", "type": "rectanglelabels",
            "original_width": size.0, "original_height": size.1, "image_rotation": 0,
            "value": {"x": x, "y": y, "width": w, "height": h, "rotation": rotation, "rectanglelabels": [label]},
        })
    }

    fn lines_of(c: &Converted) -> Vec<&str> {
        match &c.label {
            Label::Lines(lines) => lines.iter().map(String::as_str).collect(),
            other => panic!("expected lines, got {other:?}"),
        }
    }

    #[test]
    fn task_names() {
        let names = [
            TrainTask::Detect,
            TrainTask::Obb,
            TrainTask::Segment,
            TrainTask::Pose,
            TrainTask::Classify,
        ]
        .map(TrainTask::ultralytics);
        assert_eq!(names, ["detect", "obb", "segment", "pose", "classify"]);
    }

    #[test]
    fn plans_detect_with_the_stored_label_values() {
        let plan = plan(&config(DETECT), []).expect("plan");
        assert_eq!(plan, detect_plan(TrainTask::Detect));
    }

    #[test]
    fn a_rotated_region_or_model_obb_makes_it_obb() {
        let c = config(DETECT);
        let flat = rect("a", "cat", [1.0, 1.0, 5.0, 5.0, 0.0], (10, 10));
        let full_turn = rect("b", "cat", [1.0, 1.0, 5.0, 5.0, 360.0], (10, 10));
        assert_eq!(plan(&c, [&flat, &full_turn]).expect("plan").task, TrainTask::Detect);
        let turned = rect("c", "cat", [1.0, 1.0, 5.0, 5.0, 30.0], (10, 10));
        assert_eq!(plan(&c, [&flat, &turned]).expect("plan").task, TrainTask::Obb);
        let annotation = json!([flat, turned]);
        assert_eq!(
            plan(&c, [&annotation]).expect("plan").task,
            TrainTask::Obb,
            "a whole result"
        );
        let mut other_tag = turned.clone();
        other_tag["from_name"] = json!("elsewhere");
        assert_eq!(plan(&c, [&other_tag]).expect("plan").task, TrainTask::Detect);

        let obb = config(&DETECT.replace(r#"toName="img">"#, r#"toName="img" model_obb="yes">"#));
        assert!(obb.controls[0].obb);
        assert!(!c.controls[0].obb);
        assert_eq!(plan(&obb, []).expect("plan").task, TrainTask::Obb);
    }

    #[test]
    fn plan_prefers_pose_then_segment_then_boxes_then_choices() {
        let xml = r#"<View>
          <Image name="img" value="$image"/>
          <Text name="txt" value="$text"/>
          <Choices name="on_text" toName="txt"><Choice value="t"/></Choices>
          <Choices name="kind" toName="img"><Choice value="indoor"/><Choice value="outdoor"/></Choices>
          <RectangleLabels name="boxes" toName="img"><Label value="car"/></RectangleLabels>
          <BrushLabels name="masks" toName="img" model_skip="true"><Label value="road"/></BrushLabels>
          <PolygonLabels name="outlines" toName="img"><Label value="lake"/></PolygonLabels>
          <RectangleLabels name="kp_bbox" toName="img"><Label value="person"/><Label value="horse"/></RectangleLabels>
          <KeyPointLabels name="kp" toName="img">
            <Label value="left_eye" model_index="1"/><Label value="nose" model_index="0"/>
            <Label value="tail" model_index="2"/>
          </KeyPointLabels>
        </View>"#;
        let pose = plan(&config(xml), []).expect("plan");
        assert_eq!(
            pose,
            Plan {
                task: TrainTask::Pose,
                control: "kp".into(),
                image: "img".into(),
                value_key: "image".into(),
                classes: vec!["person".into(), "horse".into()],
                keypoints: vec!["nose".into(), "left_eye".into(), "tail".into()],
                parent: Some("kp_bbox".into()),
            }
        );

        // Without the keypoints, the _bbox tag is an ordinary box tag; polygons come first.
        let start = xml.find("<KeyPointLabels").expect("kp");
        let end = xml.find("</KeyPointLabels>").expect("kp end") + "</KeyPointLabels>".len();
        let no_pose = format!("{}{}", &xml[..start], &xml[end..]);
        let segment = plan(&config(&no_pose), []).expect("plan");
        assert_eq!(
            (segment.task, segment.control.as_str(), segment.classes.clone()),
            (TrainTask::Segment, "outlines", vec!["lake".to_string()]),
            "the skipped brush tag does not count"
        );
        let unskipped = no_pose.replace(r#" model_skip="true""#, "");
        let brush = plan(&config(&unskipped), []).expect("plan");
        assert_eq!((brush.task, brush.control.as_str()), (TrainTask::Segment, "masks"));

        let boxes_only = no_pose.replace("PolygonLabels", "Ignored");
        let detect = plan(&config(&boxes_only), []).expect("plan");
        assert_eq!((detect.task, detect.control.as_str()), (TrainTask::Detect, "boxes"));

        let choices_only = boxes_only.replace("RectangleLabels", "Ignored");
        let classify = plan(&config(&choices_only), []).expect("plan");
        assert_eq!(
            (classify.task, classify.control.as_str(), classify.classes.clone()),
            (
                TrainTask::Classify,
                "kind",
                vec!["indoor".to_string(), "outdoor".to_string()]
            ),
            "the Choices on a Text tag does not count"
        );
    }

    #[test]
    fn keypoints_without_model_index_keep_tag_order() {
        let xml = r#"<View><Image name="img" value="$image"/>
          <RectangleLabels name="kp_bbox" toName="img"><Label value="person"/></RectangleLabels>
          <KeyPointLabels name="kp" toName="img"><Label value="b"/><Label value="a"/></KeyPointLabels></View>"#;
        assert_eq!(plan(&config(xml), []).expect("plan").keypoints, vec!["b", "a"]);
    }

    #[test]
    fn no_trainable_tag_is_a_clear_error() {
        let text_only = config(
            r#"<View><Image name="img" value="$image"/><Text name="t" value="$text"/>
               <Choices name="c" toName="t"><Choice value="x"/></Choices>
               <RectangleLabels name="skipped" toName="img" model_skip="true"><Label value="x"/></RectangleLabels>
               <KeyPointLabels name="kp" toName="img"><Label value="nose"/></KeyPointLabels></View>"#,
        );
        let err = plan(&text_only, []).expect_err("nothing to train");
        assert_eq!(err, DatasetError::NoTrainableTag);
        assert_eq!(
            err.to_string(),
            "the label config has no tag a YOLO model can be trained for: add RectangleLabels, PolygonLabels, \
             BrushLabels, KeyPointLabels (with a <name>_bbox RectangleLabels) or Choices on an <Image>"
        );
        let unlabelled =
            config(r#"<View><Image name="img" value="$image"/><PolygonLabels name="p" toName="img"/></View>"#);
        let err = plan(&unlabelled, []).expect_err("no labels");
        assert_eq!(
            err.to_string(),
            "the label config's <PolygonLabels> tag \"p\" has no labels to train a YOLO model for"
        );
    }

    #[test]
    fn rectangle_to_detect_line() {
        // 640x480: x 10 %, y 20 %, 30 % x 40 % -> centre (25 %, 40 %), size 30 % x 40 %.
        let result = [rect("r1", "dog", [10.0, 20.0, 30.0, 40.0, 0.0], (640, 480))];
        let out = convert(&detect_plan(TrainTask::Detect), &result, 640, 480);
        assert_eq!(lines_of(&out), ["1 0.250000 0.400000 0.300000 0.400000"]);
        assert!(out.skipped.is_empty());
        assert_eq!(out.label.file_text(), "1 0.250000 0.400000 0.300000 0.400000\n");
    }

    #[test]
    fn a_box_over_the_edge_is_clipped() {
        // x 80..120 % -> 80..100 %; y -10..30 % -> 0..30 %.
        let result = [rect("r1", "cat", [80.0, -10.0, 40.0, 40.0, 0.0], (100, 100))];
        let out = convert(&detect_plan(TrainTask::Detect), &result, 100, 100);
        assert_eq!(lines_of(&out), ["0 0.900000 0.150000 0.200000 0.300000"]);
    }

    /// A 100 x 50 px box at (200, 50) px on a 400 x 200 image, turned 90 degrees clockwise
    /// about its top-left corner: its width now runs down from (200, 50) to (200, 150), its
    /// height to the left, so the corners are (200, 50), (200, 150), (150, 150), (150, 50).
    fn turned_box() -> Value {
        rect("r1", "cat", [50.0, 25.0, 25.0, 25.0, 90.0], (400, 200))
    }

    #[test]
    fn rotated_rectangle_to_obb_corners() {
        let out = convert(&detect_plan(TrainTask::Obb), &[turned_box()], 400, 200);
        assert_eq!(
            lines_of(&out),
            ["0 0.500000 0.250000 0.500000 0.750000 0.375000 0.750000 0.375000 0.250000"]
        );
        // An upright box in an OBB dataset: its corners clockwise from the top-left.
        let upright = [rect("r2", "dog", [10.0, 20.0, 30.0, 40.0, 0.0], (640, 480))];
        let out = convert(&detect_plan(TrainTask::Obb), &upright, 640, 480);
        assert_eq!(
            lines_of(&out),
            ["1 0.100000 0.200000 0.400000 0.200000 0.400000 0.600000 0.100000 0.600000"]
        );
    }

    #[test]
    fn rotated_rectangle_to_detect_takes_the_box_around_it() {
        // Around the corners above: x 150..200, y 50..150 px.
        let out = convert(&detect_plan(TrainTask::Detect), &[turned_box()], 400, 200);
        assert_eq!(lines_of(&out), ["0 0.437500 0.500000 0.125000 0.500000"]);
    }

    #[test]
    fn without_the_original_size_the_decoded_size_is_used() {
        // Without original_width/height, the decoded size is used: the same as above.
        let mut region = turned_box();
        let v = region.as_object_mut().expect("object");
        v.remove("original_width");
        v.remove("original_height");
        let out = convert(&detect_plan(TrainTask::Obb), &[region], 400, 200);
        assert_eq!(
            lines_of(&out),
            ["0 0.500000 0.250000 0.500000 0.750000 0.375000 0.750000 0.375000 0.250000"]
        );
    }

    fn segment_plan() -> Plan {
        Plan {
            task: TrainTask::Segment,
            control: "shapes".into(),
            image: "img".into(),
            value_key: "image".into(),
            classes: vec!["lake".into(), "road".into()],
            keypoints: vec![],
            parent: None,
        }
    }

    #[test]
    fn polygon_to_segment_line() {
        let result = [
            json!({"id": "p1", "from_name": "shapes", "to_name": "img", "type": "polygonlabels",
                   "original_width": 200, "original_height": 100,
                   "value": {"points": [[10, 20], [50.5, 20], [30, 60]], "closed": true, "polygonlabels": ["road"]}}),
            json!({"id": "p2", "from_name": "shapes", "to_name": "img", "type": "polygonlabels",
                   "value": {"points": [[10, 20], [50, 20]], "polygonlabels": ["road"]}}),
            json!({"id": "p3", "from_name": "shapes", "to_name": "img", "type": "polygonlabels",
                   "value": {"points": [[10, 20], [20, 20], [30, 20]], "polygonlabels": ["lake"]}}),
        ];
        let out = convert(&segment_plan(), &result, 200, 100);
        assert_eq!(
            lines_of(&out),
            ["1 0.100000 0.200000 0.505000 0.200000 0.300000 0.600000"]
        );
        assert_eq!(
            out.skipped,
            vec![Skip::BadGeometry("p2".into()), Skip::BadGeometry("p3".into())],
            "two points, and three on a line"
        );
    }

    /// A brush region from rows of '#' and '.'.
    fn brush_region(id: &str, label: &str, rows: &[&str]) -> Value {
        let bits: Vec<bool> = rows.iter().flat_map(|r| r.chars()).map(|c| c == '#').collect();
        let mask = Mask {
            width: rows[0].len() as u32,
            height: rows.len() as u32,
            runs: mask_geometry::runs_of_bits(&bits).into(),
        };
        json!({"id": id, "from_name": "shapes", "to_name": "img", "type": "brushlabels",
               "original_width": mask.width, "original_height": mask.height, "image_rotation": 0,
               "value": {"format": "rle", "rle": brush::encode(&mask), "brushlabels": [label]}})
    }

    #[test]
    fn brush_to_one_line_per_piece() {
        // 10 x 6: a 4 x 3 block (columns 2-5, rows 1-3), a 2 x 2 block (columns 8-9, rows
        // 4-5) and a lone pixel, too small to keep. Outlines run through the boundary
        // pixels' centres: (2.5, 1.5) (5.5, 1.5) (5.5, 3.5) (2.5, 3.5) over 10 x 6, then
        // (8.5, 4.5) (9.5, 4.5) (9.5, 5.5) (8.5, 5.5).
        let region = brush_region(
            "m1",
            "lake",
            &[
                "..........",
                "..####....",
                "..####....",
                "..####....",
                "........##",
                "#.......##",
            ],
        );
        let out = convert(&segment_plan(), &[region], 10, 6);
        assert_eq!(
            lines_of(&out),
            [
                "0 0.250000 0.250000 0.550000 0.250000 0.550000 0.583333 0.250000 0.583333",
                "0 0.850000 0.750000 0.950000 0.750000 0.950000 0.916667 0.850000 0.916667",
            ]
        );
        assert!(out.skipped.is_empty());
    }

    #[test]
    fn a_brush_that_does_not_decode_is_bad_geometry() {
        let mut region = brush_region("m1", "road", &["##..", "##.."]);
        // The mask is 4 x 2; claiming 4 x 3 makes the RLE the wrong size.
        region["original_height"] = json!(3);
        let mut truncated = brush_region("m2", "road", &["##..", "##.."]);
        truncated["value"]["rle"] = json!([0, 0, 0]);
        let empty = brush_region("m3", "road", &["....", "...."]);
        let out = convert(&segment_plan(), &[region, truncated, empty], 4, 2);
        assert_eq!(out.label, Label::Empty);
        assert_eq!(
            out.skipped,
            vec![
                Skip::BadGeometry("m1".into()),
                Skip::BadGeometry("m2".into()),
                Skip::BadGeometry("m3".into())
            ]
        );
    }

    fn pose_plan() -> Plan {
        Plan {
            task: TrainTask::Pose,
            control: "kp".into(),
            image: "img".into(),
            value_key: "image".into(),
            classes: vec!["person".into(), "horse".into()],
            keypoints: vec!["nose".into(), "left_eye".into(), "right_eye".into()],
            parent: Some("kp_bbox".into()),
        }
    }

    fn keypoint(id: &str, label: &str, x: f64, y: f64, parent: Option<&str>) -> Value {
        let mut k = json!({"id": id, "from_name": "kp", "to_name": "img", "type": "keypointlabels",
                           "original_width": 100, "original_height": 100,
                           "value": {"x": x, "y": y, "width": 1, "keypointlabels": [label]}});
        if let Some(p) = parent {
            k["parentID"] = json!(p);
        }
        k
    }

    fn parent_box(id: &str, label: &str, [x, y, w, h]: [f64; 4]) -> Value {
        let mut b = rect(id, label, [x, y, w, h, 0.0], (100, 100));
        b["from_name"] = json!("kp_bbox");
        b
    }

    #[test]
    fn keypoints_with_their_parent_boxes() {
        let result = [
            parent_box("b1", "person", [10.0, 10.0, 50.0, 80.0]),
            keypoint("k1", "right_eye", 40.0, 25.0, Some("b1")),
            keypoint("k2", "nose", 30.0, 20.0, Some("b1")),
            parent_box("b2", "horse", [60.0, 50.0, 40.0, 20.0]),
            keypoint("k3", "left_eye", 70.0, 55.0, Some("b2")),
            keypoint("k4", "nose", 5.0, 5.0, None),
            keypoint("k5", "nose", 5.0, 5.0, Some("gone")),
            keypoint("k6", "nose", 31.0, 21.0, Some("b1")),
            keypoint("k7", "tail", 31.0, 21.0, Some("b1")),
        ];
        let out = convert(&pose_plan(), &result, 100, 100);
        assert_eq!(
            lines_of(&out),
            [
                "0 0.350000 0.500000 0.500000 0.800000 0.300000 0.200000 2 0 0 0 0.400000 0.250000 2",
                "1 0.800000 0.600000 0.400000 0.200000 0 0 0 0.700000 0.550000 2 0 0 0",
            ]
        );
        assert_eq!(
            out.skipped,
            vec![
                Skip::NoParent("k4".into()),
                Skip::NoParent("k5".into()),
                Skip::DuplicateKeypoint("k6".into()),
                Skip::UnknownLabel("tail".into()),
            ]
        );
    }

    #[test]
    fn the_keypoints_of_a_box_with_an_unknown_label_go_with_it() {
        let result = [
            parent_box("b1", "dragon", [10.0, 10.0, 50.0, 80.0]),
            keypoint("k1", "nose", 30.0, 20.0, Some("b1")),
        ];
        let out = convert(&pose_plan(), &result, 100, 100);
        assert_eq!(out.label, Label::Empty);
        assert_eq!(out.skipped, vec![Skip::UnknownLabel("dragon".into())]);
    }

    fn choices(id: &str, labels: &[&str]) -> Value {
        json!({"id": id, "from_name": "kind", "to_name": "img", "type": "choices",
               "value": {"choices": labels}})
    }

    #[test]
    fn choices_to_a_class() {
        let plan = Plan {
            task: TrainTask::Classify,
            control: "kind".into(),
            image: "img".into(),
            value_key: "image".into(),
            classes: vec!["indoor".into(), "outdoor".into()],
            keypoints: vec![],
            parent: None,
        };
        let out = convert(&plan, &[choices("c1", &["night", "outdoor", "indoor"])], 10, 10);
        assert_eq!(out.label, Label::Class(1));
        assert_eq!(out.skipped, vec![Skip::UnknownLabel("night".into())]);
        assert_eq!(convert(&plan, &[choices("c1", &["night"])], 10, 10).label, Label::Empty);
        assert_eq!(convert(&plan, &[], 10, 10).label, Label::Empty);
    }

    #[test]
    fn unknown_labels_are_skipped_and_other_tags_ignored() {
        let mut other_tag = rect("r3", "cat", [0.0, 0.0, 10.0, 10.0, 0.0], (100, 100));
        other_tag["from_name"] = json!("elsewhere");
        let mut other_image = rect("r4", "cat", [0.0, 0.0, 10.0, 10.0, 0.0], (100, 100));
        other_image["to_name"] = json!("img2");
        let result = [
            rect("r1", "horse", [0.0, 0.0, 10.0, 10.0, 0.0], (100, 100)),
            rect("r2", "cat", [0.0, 0.0, 10.0, 10.0, 0.0], (100, 100)),
            other_tag,
            other_image,
            choices("c1", &["whatever"]),
        ];
        let out = convert(&detect_plan(TrainTask::Detect), &result, 100, 100);
        assert_eq!(lines_of(&out), ["0 0.050000 0.050000 0.100000 0.100000"]);
        assert_eq!(out.skipped, vec![Skip::UnknownLabel("horse".into())]);
        assert_eq!(out.skipped[0].to_string(), "label \"horse\" is not in the label config");
        assert_eq!(
            Skip::BadGeometry("p2".into()).to_string(),
            "region p2 has no usable shape"
        );
        assert_eq!(
            convert(&detect_plan(TrainTask::Detect), &[], 100, 100).label,
            Label::Empty
        );
    }

    #[test]
    fn data_yaml_lists_the_classes() {
        let mut plan = detect_plan(TrainTask::Detect);
        plan.classes = vec!["cat".into(), "say \"hi\"\\".into(), "yes".into()];
        assert_eq!(
            data_yaml(&plan, "/data/job 1"),
            "path: \"/data/job 1\"\ntrain: images/train\nval: images/val\nnames:\n  0: \"cat\"\n  1: \"say \\\"hi\\\"\\\\\"\n  2: \"yes\"\n"
        );
        assert_eq!(
            data_yaml(&pose_plan(), "/d"),
            "path: \"/d\"\ntrain: images/train\nval: images/val\nkpt_shape: [3, 3]\nnames:\n  0: \"person\"\n  1: \"horse\"\n"
        );
        assert_eq!(yaml_quote("a\nb\tc\u{1}"), "\"a\\nb\\tc\\x01\"");
    }

    #[test]
    fn splits_are_deterministic_and_about_a_fifth_val() {
        let ids: Vec<u64> = (1..=1000).collect();
        let first: Vec<Split> = ids.iter().map(|&id| split_of(id)).collect();
        let again: Vec<Split> = ids.iter().map(|&id| split_of(id)).collect();
        assert_eq!(first, again);
        let val = first.iter().filter(|s| **s == Split::Val).count();
        assert_eq!(val, 208, "about a fifth of 1000 in val");
        // Fixed values: the hash must not change between versions, or tasks would move.
        let fixed: Vec<Split> = (1..=10).map(split_of).collect();
        assert_eq!(fixed, FIXED_SPLITS);
        assert_eq!(split_all(&ids), first, "large sets are left as they are");
    }

    /// The splits of task ids 1 to 10, worked out apart from this code (SplitMix64 of the
    /// id, mod 100: 65 10 53 78 18 92 87 22 28 66; below 20 is val).
    const FIXED_SPLITS: [Split; 10] = [
        Split::Train,
        Split::Val,
        Split::Train,
        Split::Train,
        Split::Val,
        Split::Train,
        Split::Train,
        Split::Train,
        Split::Train,
        Split::Train,
    ];

    #[test]
    fn split_all_keeps_one_of_each() {
        assert_eq!(split_all(&[]), vec![]);
        let one_train = (1..).find(|&id| split_of(id) == Split::Train).expect("a train id");
        let one_val = (1..).find(|&id| split_of(id) == Split::Val).expect("a val id");
        assert_eq!(split_all(&[one_train]), vec![Split::Train]);
        assert_eq!(split_all(&[one_val]), vec![Split::Val]);
        let trains: Vec<u64> = (1..).filter(|&id| split_of(id) == Split::Train).take(5).collect();
        let out = split_all(&trains);
        assert_eq!(out.iter().filter(|s| **s == Split::Val).count(), 1);
        assert_eq!(out, split_all(&trains), "deterministic");
        // The one moved is the lowest hash, wherever it sits.
        let moved = out.iter().position(|s| *s == Split::Val).expect("one val");
        let reversed: Vec<u64> = trains.iter().rev().copied().collect();
        let out_rev = split_all(&reversed);
        assert_eq!(out_rev[trains.len() - 1 - moved], Split::Val);
        let vals: Vec<u64> = (1..).filter(|&id| split_of(id) == Split::Val).take(3).collect();
        let out = split_all(&vals);
        assert_eq!(out.iter().filter(|s| **s == Split::Train).count(), 1);
        assert_eq!(split_all(&[one_train, one_train]), vec![Split::Val, Split::Train]);
    }

    #[test]
    fn latest_annotation_skips_cancelled_and_empty_ones() {
        let task = json!({"id": 1, "annotations": [
            {"id": 10, "updated_at": "2024-05-01T10:00:00.000000Z", "result": [{"id": "a"}]},
            {"id": 11, "updated_at": "2024-05-03T10:00:00.000000Z", "was_cancelled": true, "result": [{"id": "b"}]},
            {"id": 12, "updated_at": "2024-05-02T10:00:00.000000Z", "result": [{"id": "c"}]},
            {"id": 13, "updated_at": "2024-05-04T10:00:00.000000Z", "result": []},
            {"id": 9, "updated_at": "2024-05-02T10:00:00.000000Z", "result": [{"id": "d"}]},
        ]});
        assert_eq!(latest_annotation(&task).map(|a| &a["id"]), Some(&json!(12)));
        let none = json!({"annotations": [{"id": 1, "was_cancelled": true, "result": [{"id": "x"}]}]});
        assert_eq!(latest_annotation(&none), None);
        assert_eq!(latest_annotation(&json!({"data": {}})), None);
    }
}
