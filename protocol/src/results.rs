//! Turning what a model found into typed Label Studio regions ([`Region`]), written as
//! Label Studio's JSON only at the edge.

use rand::{Rng, distr::Alphanumeric};

use plugin_api::{BoxGeometry, FrameOutput, Instance, Keypoint, Mask, ROption};

use super::{
    brush,
    label_config::{Control, ControlKind, KeypointRef},
    region::{Meta, Original, Region, RegionValue, Shape},
};

/// Short random region ids; Label Studio needs them to be distinct strings.
pub fn region_id() -> String {
    rand::rng().sample_iter(&Alphanumeric).take(8).map(char::from).collect()
}

/// Size of the image as Label Studio shows it (after EXIF orientation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSize {
    pub width: u32,
    pub height: u32,
}

/// The envelope every image result shares, around a shape.
fn result(id: String, score: f32, label: &str, control: &Control, size: ImageSize, shape: Shape) -> Region {
    let kind = control.kind.result_type();
    Region {
        id,
        from_name: control.name.clone(),
        to_name: control.to_name.clone(),
        kind,
        original: Some(Original::from(size)),
        origin: None,
        value: RegionValue {
            shape,
            labels_key: kind,
            labels: vec![label.to_string()],
        },
        score: round6(score as f64),
        hidden: false,
        parent_id: None,
        meta: None,
    }
}

/// A rectangle for a box, in percent of the image.
pub fn rectangle_shape(b: &BoxGeometry, size: ImageSize) -> Shape {
    let (w, h) = (size.width as f64, size.height as f64);
    Shape::Rectangle {
        x: percent(b.x as f64, w),
        y: percent(b.y as f64, h),
        width: percent(b.width as f64, w),
        height: percent(b.height as f64, h),
        rotation: b.rotation,
    }
}

/// How far a simplified outline may stray, relative to the size of its piece (the square
/// root of its area): a fixed pixel tolerance would cut the corners of small objects.
pub const RELATIVE_TOLERANCE: f64 = 0.01;

/// Polygons, one per piece of the instance: its own outlines (the adapter's, one
/// per piece, largest first), or else the outline of its mask's largest piece through its
/// boundary pixels' centres. Straight runs are dropped and each outline is simplified to
/// within `tolerance` pixels, or 1 % of its piece's size where that is less. Points in percent.
pub fn polygon_shapes(instance: &Instance, size: ImageSize, tolerance: f64) -> Vec<Shape> {
    let outlines: Vec<Vec<(f64, f64)>> = match (instance.polygons.is_empty(), &instance.mask) {
        (false, _) => instance
            .polygons
            .iter()
            .map(|points| points.iter().map(|p| (p.x as f64, p.y as f64)).collect())
            .collect(),
        (true, ROption::RSome(mask)) if (mask.width, mask.height) == (size.width, size.height) => {
            mask_geometry::outline_of_runs(mask.width as usize, &mask.runs)
                .map(|points| {
                    points
                        .into_iter()
                        .map(|(x, y)| (x as f64 + 0.5, y as f64 + 0.5))
                        .collect()
                })
                .into_iter()
                .collect()
        }
        _ => Vec::new(),
    };
    let (w, h) = (size.width as f64, size.height as f64);
    outlines
        .iter()
        .filter_map(|points| {
            let points = mask_geometry::drop_collinear(points);
            let epsilon = tolerance.min(RELATIVE_TOLERANCE * mask_geometry::area(&points).sqrt());
            let points = mask_geometry::douglas_peucker(&points, epsilon);
            (points.len() >= 3).then(|| {
                let points: Vec<[f64; 2]> = points.iter().map(|&(x, y)| [percent(x, w), percent(y, h)]).collect();
                Shape::Polygon { points }
            })
        })
        .collect()
}

/// A keypoint in percent, drawn `point_size` pixels wide.
pub fn keypoint_shape(x: f32, y: f32, point_size: f64, size: ImageSize) -> Shape {
    let (w, h) = (size.width as f64, size.height as f64);
    Shape::Keypoint {
        x: percent(x as f64, w),
        y: percent(y as f64, h),
        width: percent(point_size, w),
    }
}

/// A brush mask in Label Studio's RLE. Only for a mask of exactly the image's size; any other
/// size would draw nothing in Label Studio.
pub fn brush_shape(mask: &Mask, size: ImageSize) -> Option<Shape> {
    ((mask.width, mask.height) == (size.width, size.height)).then(|| Shape::Brush {
        rle: brush::encode(mask),
    })
}

/// The instance's mask as a brush (none without a mask of the image's size).
fn brush_shapes(instance: &Instance, size: ImageSize) -> Vec<Shape> {
    instance
        .mask
        .as_ref()
        .into_option()
        .and_then(|m| brush_shape(m, size))
        .into_iter()
        .collect()
}

/// A `choices` result: the labels of whole-image classes, best first.
pub fn choices(picked: &[(f32, &str)], control: &Control) -> Option<Region> {
    // One choice: its score. Several (`choice="multiple"`): their mean, as the official
    // backend scores them.
    let score = picked.iter().map(|(s, _)| f64::from(*s)).sum::<f64>() / picked.len() as f64;
    if picked.is_empty() {
        return None;
    }
    Some(Region {
        id: region_id(),
        from_name: control.name.clone(),
        to_name: control.to_name.clone(),
        kind: control.kind.result_type(),
        original: None,
        origin: None,
        value: RegionValue {
            shape: Shape::Choices,
            labels_key: "choices",
            labels: picked.iter().map(|(_, label)| label.to_string()).collect(),
        },
        score: round6(score),
        hidden: false,
        parent_id: None,
        meta: None,
    })
}

/// A `taxonomy` result: the paths of whole-image classes, best first, scored as choices are.
pub fn taxonomy(picked: &[(f32, &[String])], control: &Control) -> Option<Region> {
    if picked.is_empty() {
        return None;
    }
    let score = picked.iter().map(|(s, _)| f64::from(*s)).sum::<f64>() / picked.len() as f64;
    Some(Region {
        id: region_id(),
        from_name: control.name.clone(),
        to_name: control.to_name.clone(),
        kind: control.kind.result_type(),
        original: None,
        origin: None,
        value: RegionValue {
            shape: Shape::Taxonomy {
                paths: picked.iter().map(|(_, path)| path.to_vec()).collect(),
            },
            labels_key: "taxonomy",
            labels: Vec::new(),
        },
        score: round6(score),
        hidden: false,
        parent_id: None,
        meta: None,
    })
}

/// The whole-image classes above `threshold` that `label_of` gives a label, best first, each
/// label once; only the best unless `multiple`.
fn picked_classes<'a, L: PartialEq + ?Sized>(
    frame: &FrameOutput,
    threshold: f32,
    multiple: bool,
    label_of: impl Fn(u32) -> Option<&'a L>,
) -> Vec<(f32, &'a L)> {
    let mut picked: Vec<(f32, &L)> = frame
        .classes
        .iter()
        .filter(|c| c.score > threshold)
        .filter_map(|c| Some((c.score, label_of(c.class_id)?)))
        .collect();
    picked.sort_by(|a, b| b.0.total_cmp(&a.0));
    picked.dedup_by(|a, b| a.1 == b.1);
    picked.truncate(if multiple { picked.len() } else { 1 });
    picked
}

/// What the results of one image are built from.
pub struct Found<'a> {
    pub frame: &'a FrameOutput,
    /// The model's class names, by class id.
    pub class_names: &'a [String],
    /// The model's keypoint names (`kpt_names`), by class id, then keypoint index.
    pub keypoint_names: &'a [Vec<String>],
    pub size: ImageSize,
}

/// Label Studio results for one image: each instance goes to every control tag that can show
/// one of its shapes and has a label for its class, above that tag's score threshold; the
/// whole-image classes go to `Choices`.
///
/// Label Studio wants distinct ids, one per region, and each tag's result is a region of its
/// own. The results of one instance share an id prefix (`<instance id><n>`), so an export
/// tells which rectangle, polygon and mask are one object.
pub fn build(found: &Found<'_>, controls: &[Control], default_conf: f32, polygon_tolerance: f64) -> Vec<Region> {
    let Found {
        frame,
        class_names,
        keypoint_names,
        size,
    } = *found;
    let class_name = |class_id: u32| class_names.get(class_id as usize).map(String::as_str);
    let instance_ids: Vec<String> = frame.instances.iter().map(|_| region_id()).collect();
    let mut results_of = vec![0usize; frame.instances.len()];
    let mut out = Vec::new();
    for control in controls {
        let threshold = control.score_threshold.unwrap_or(default_conf);
        if control.kind == ControlKind::Choices {
            let picked = picked_classes(frame, threshold, control.multiple, |c| {
                control.label_for(class_name(c)?)
            });
            out.extend(choices(&picked, control));
            continue;
        }
        if control.kind == ControlKind::Taxonomy {
            let picked = picked_classes(frame, threshold, control.multiple, |c| control.path_for(class_name(c)?));
            out.extend(taxonomy(&picked, control));
            continue;
        }
        for (i, instance) in frame.instances.iter().enumerate() {
            if instance.score <= threshold {
                continue;
            }
            let mut next_id = || {
                results_of[i] += 1;
                format!("{}{}", instance_ids[i], results_of[i] - 1)
            };
            if control.kind == ControlKind::KeyPointLabels {
                let Some(class) = class_name(instance.class_id) else {
                    continue;
                };
                let names = keypoint_names.get(instance.class_id as usize).map(Vec::as_slice);
                let points = Points {
                    class,
                    names: names.unwrap_or_default(),
                    one_class: class_names.len() == 1,
                };
                out.extend(keypoints(instance, &points, control, size, &mut next_id));
                continue;
            }
            let Some(label) = class_name(instance.class_id).and_then(|name| control.label_for(name)) else {
                continue;
            };
            let shapes = match control.kind {
                ControlKind::RectangleLabels => instance
                    .bbox
                    .as_ref()
                    .into_option()
                    .map(|b| rectangle_shape(b, size))
                    .into_iter()
                    .collect(),
                ControlKind::PolygonLabels => polygon_shapes(instance, size, polygon_tolerance),
                ControlKind::BrushLabels => brush_shapes(instance, size),
                ControlKind::KeyPointLabels | ControlKind::Choices | ControlKind::Taxonomy => Vec::new(),
            };
            for shape in shapes {
                out.push(result(next_id(), instance.score, label, control, size, shape));
            }
        }
    }
    out
}

/// The answer to an interactive prompt: the one object the prompt chose, in each target tag
/// with the label `label_of` gives that tag (a tag it gives none is left out). Rectangles
/// get the object's box: the adapter's, else the tight box around its mask. The results
/// share an id prefix, like one instance's results in [`build`].
pub fn prompted<'c>(
    instance: &Instance,
    targets: &'c [Control],
    label_of: impl Fn(&'c Control) -> Option<String>,
    size: ImageSize,
    polygon_tolerance: f64,
) -> Vec<Region> {
    let prefix = region_id();
    let mut out = Vec::new();
    for control in targets {
        let Some(label) = label_of(control) else {
            continue;
        };
        let shapes: Vec<Shape> = match control.kind {
            ControlKind::RectangleLabels => {
                let tight = || match &instance.mask {
                    ROption::RSome(mask) => mask_bounds(mask),
                    ROption::RNone => None,
                };
                instance
                    .bbox
                    .into_option()
                    .or_else(tight)
                    .map(|b| rectangle_shape(&b, size))
                    .into_iter()
                    .collect()
            }
            ControlKind::PolygonLabels => polygon_shapes(instance, size, polygon_tolerance),
            ControlKind::BrushLabels => brush_shapes(instance, size),
            ControlKind::KeyPointLabels | ControlKind::Choices | ControlKind::Taxonomy => Vec::new(),
        };
        for shape in shapes {
            let id = format!("{prefix}{}", out.len());
            out.push(result(id, instance.score, &label, control, size, shape));
        }
    }
    out
}

/// The upright box around a mask's pixels (whole pixels: a pixel at column 3 spans 3 to 4),
/// or None for an empty mask.
pub fn mask_bounds(mask: &Mask) -> Option<BoxGeometry> {
    let width = mask.width.max(1) as u64;
    let (mut x1, mut y1, mut x2, mut y2) = (u64::MAX, u64::MAX, 0u64, 0u64);
    let mut at = 0u64;
    for (i, &run) in mask.runs.iter().enumerate() {
        let run = run as u64;
        if i % 2 == 1 && run > 0 {
            let (first, last) = (at, at + run - 1);
            let (fy, ly) = (first / width, last / width);
            y1 = y1.min(fy);
            y2 = y2.max(ly);
            if fy == ly {
                x1 = x1.min(first % width);
                x2 = x2.max(last % width);
            } else {
                // The run wraps a row: it covers every column somewhere.
                x1 = 0;
                x2 = width - 1;
            }
        }
        at += run;
    }
    (x1 != u64::MAX).then(|| BoxGeometry::from_corners(x1 as f32, y1 as f32, (x2 + 1) as f32, (y2 + 1) as f32))
}

/// What the labels of a `KeyPointLabels` tag are matched against for one instance.
struct Points<'a> {
    class: &'a str,
    /// The model's names for this class's keypoints (empty without `kpt_names`).
    names: &'a [String],
    one_class: bool,
}

/// An instance's keypoints for a `KeyPointLabels` tag, as the official backend gives them:
/// its box first (to `<name>_bbox`, hidden, as the points' parent) when boxes are added, then
/// one region per keypoint that has a label and scores above `model_point_threshold`. An
/// instance whose class no label names gives nothing.
fn keypoints(
    instance: &Instance,
    points: &Points<'_>,
    control: &Control,
    size: ImageSize,
    next_id: &mut impl FnMut() -> String,
) -> Vec<Region> {
    let label_of = |index: usize| {
        control.keypoint_label(KeypointRef {
            class_name: points.class,
            index,
            name: points.names.get(index).map(String::as_str),
            one_class: points.one_class,
        })
    };
    let labelled: Vec<(&Keypoint, &str)> = instance
        .keypoints
        .iter()
        .filter_map(|k| Some((k, label_of(k.index as usize)?)))
        .collect();
    if labelled.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    // The object's id, shown with its box and each of its points.
    let object = next_id();
    let meta = || {
        Some(Meta {
            text: vec![object.clone()],
        })
    };
    let parent = match (&control.keypoints.parent, instance.bbox.as_ref().into_option()) {
        (Some(parent), Some(b)) => {
            let id = object.clone();
            out.push(Region {
                id: id.clone(),
                from_name: parent.name.clone(),
                to_name: control.to_name.clone(),
                kind: "rectanglelabels",
                original: Some(Original::from(size)),
                origin: None,
                value: RegionValue {
                    shape: rectangle_shape(b, size),
                    labels_key: "rectanglelabels",
                    labels: vec![parent.label_for(points.class).to_string()],
                },
                score: round6(instance.score as f64),
                hidden: true,
                parent_id: None,
                meta: meta(),
            });
            Some(id)
        }
        _ => None,
    };
    for (k, label) in labelled {
        if k.score <= control.keypoints.point_threshold {
            continue;
        }
        let shape = keypoint_shape(k.x, k.y, control.keypoints.point_size, size);
        let mut region = result(next_id(), k.score, label, control, size, shape);
        region.parent_id = parent.clone();
        region.meta = meta();
        out.push(region);
    }
    out
}

/// `v` as a percentage of `of`, rounded to 1e-6 % (well under a pixel on any image).
pub fn percent(v: f64, of: f64) -> f64 {
    if of <= 0.0 {
        return 0.0;
    }
    ((v / of * 100.0) * 1e6).round() / 1e6
}

pub(crate) fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::label_config::LabelConfig;
    use crate::region::Prediction;
    use plugin_api::{ClassScore, Point};
    use serde_json::{Value, json};

    /// Regions as the JSON Label Studio gets.
    fn written(regions: Vec<Region>) -> Vec<Value> {
        regions.iter().map(|r| serde_json::to_value(r).expect("JSON")).collect()
    }

    const SIZE: ImageSize = ImageSize {
        width: 640,
        height: 480,
    };

    fn controls(xml: &str) -> Vec<Control> {
        LabelConfig::parse(xml).expect("config").controls
    }

    /// The results for `frame` of a model whose classes are `cat` and `dog`.
    fn build_for(frame: &FrameOutput, controls: &[Control], tolerance: f64) -> Vec<Value> {
        let names = vec!["cat".to_string(), "dog".to_string()];
        let found = Found {
            frame,
            class_names: &names,
            keypoint_names: &[],
            size: SIZE,
        };
        written(build(&found, controls, 0.25, tolerance))
    }

    #[test]
    fn percent_conversion() {
        assert_eq!(percent(50.0, 200.0), 25.0);
        assert_eq!(percent(1.0, 3.0), 33.333333);
        assert_eq!(percent(5.0, 0.0), 0.0);
    }

    #[test]
    fn rectangle_result_is_in_percent_of_the_original() {
        let frame = FrameOutput::instances(vec![Instance::new(0, 0.9).with_box(BoxGeometry {
            x: 64.0,
            y: 48.0,
            width: 320.0,
            height: 240.0,
            rotation: 0.0,
        })]);
        let c = controls(
            r#"<View><Image name="img" value="$image"/><RectangleLabels name="label" toName="img"><Label value="Cat" predicted_values="cat"/></RectangleLabels></View>"#,
        );
        let out = build_for(&frame, &c, 1.0);
        assert_eq!(out.len(), 1);
        let r = &out[0];
        assert_eq!(r["type"], "rectanglelabels");
        assert_eq!(
            (r["from_name"].as_str(), r["to_name"].as_str()),
            (Some("label"), Some("img"))
        );
        assert_eq!(
            (
                &r["value"]["x"],
                &r["value"]["y"],
                &r["value"]["width"],
                &r["value"]["height"]
            ),
            (&json!(10.0), &json!(10.0), &json!(50.0), &json!(50.0))
        );
        assert_eq!(r["value"]["rectanglelabels"], json!(["Cat"]));
        assert_eq!(
            (r["original_width"].as_u64(), r["original_height"].as_u64()),
            (Some(640), Some(480))
        );
    }

    /// One instance with a box, a mask and an outline fills a rectangle, a polygon and a
    /// brush: one region each, with distinct ids that share the instance's prefix; a second
    /// instance gets another prefix.
    #[test]
    fn one_instance_gives_one_linked_region_per_tag() {
        let mask = Mask {
            width: 640,
            height: 480,
            runs: vec![640 * 10 + 5, 20, 640 * 480 - 640 * 10 - 25].into(),
        };
        let square = vec![
            Point { x: 5.0, y: 10.0 },
            Point { x: 25.0, y: 10.0 },
            Point { x: 25.0, y: 30.0 },
            Point { x: 5.0, y: 30.0 },
        ];
        let cat = Instance::new(0, 0.8)
            .with_box(BoxGeometry::from_corners(5.0, 10.0, 25.0, 30.0))
            .with_mask(mask)
            .with_polygon(square);
        let dog = Instance::new(1, 0.7).with_box(BoxGeometry::from_corners(100.0, 100.0, 200.0, 200.0));
        let frame = FrameOutput::instances(vec![cat, dog]);
        let c = controls(
            r#"<View><Image name="img" value="$image"/>
               <RectangleLabels name="box" toName="img"><Label value="cat"/><Label value="dog"/></RectangleLabels>
               <PolygonLabels name="poly" toName="img"><Label value="cat"/><Label value="dog"/></PolygonLabels>
               <BrushLabels name="brush" toName="img"><Label value="cat"/><Label value="dog"/></BrushLabels></View>"#,
        );
        let out = build_for(&frame, &c, 1.0);
        let of_type = |t: &str| out.iter().filter(|r| r["type"] == t).collect::<Vec<_>>();
        assert_eq!(of_type("rectanglelabels").len(), 2, "{out:?}");
        assert_eq!(of_type("polygonlabels").len(), 1, "the dog has no mask and no outline");
        assert_eq!(of_type("brushlabels").len(), 1);
        let cat_ids: Vec<&str> = out
            .iter()
            .filter(|r| r["score"] == 0.8)
            .filter_map(|r| r["id"].as_str())
            .collect();
        assert_eq!(cat_ids.len(), 3);
        let prefix = &cat_ids[0][..8];
        assert!(cat_ids.iter().all(|id| id.starts_with(prefix)), "{cat_ids:?}");
        let mut distinct = cat_ids.clone();
        distinct.dedup();
        assert_eq!(distinct.len(), 3, "each region has its own id: {cat_ids:?}");
        let dog_id = of_type("rectanglelabels")[1]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(!dog_id.starts_with(prefix), "another instance, another prefix");
        let polygon = &of_type("polygonlabels")[0]["value"]["points"];
        assert_eq!(
            polygon.as_array().map(Vec::len),
            Some(4),
            "the instance's own outline: {polygon}"
        );
    }

    #[test]
    fn a_mask_without_an_outline_is_outlined_and_classes_fill_choices() {
        let mask = Mask {
            width: 640,
            height: 480,
            runs: vec![640 * 10 + 5, 20, 640 - 20, 20, 640 * 480 - 640 * 11 - 45].into(),
        };
        let frame = FrameOutput {
            instances: vec![Instance::new(0, 0.9).with_mask(mask)].into(),
            classes: vec![
                ClassScore {
                    class_id: 1,
                    score: 0.6,
                },
                ClassScore {
                    class_id: 0,
                    score: 0.3,
                },
            ]
            .into(),
        };
        let c = controls(
            r#"<View><Image name="img" value="$image"/>
               <PolygonLabels name="poly" toName="img"><Label value="cat"/></PolygonLabels>
               <Choices name="kind" toName="img"><Choice value="cat"/><Choice value="dog"/></Choices></View>"#,
        );
        let out = build_for(&frame, &c, 0.0);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0]["type"], "polygonlabels");
        assert!(out[0]["value"]["points"].as_array().is_some_and(|p| p.len() >= 4));
        assert_eq!(out[1]["value"]["choices"], json!(["dog"]));
    }

    /// A pose instance fills its box into `<name>_bbox` (hidden, the parent) and one region per
    /// labelled keypoint above the threshold, each with `parentID`; a class without labels
    /// gives nothing.
    #[test]
    fn keypoints_come_with_their_parent_box() {
        let point = |index, x, y, score| Keypoint { index, x, y, score };
        let cat = Instance::new(0, 0.9)
            .with_box(BoxGeometry::from_corners(64.0, 48.0, 128.0, 96.0))
            .with_keypoints(vec![
                point(0, 64.0, 48.0, 0.9),
                point(1, 128.0, 96.0, 0.2),
                point(2, 100.0, 60.0, 0.9),
            ]);
        let dog = Instance::new(1, 0.8)
            .with_box(BoxGeometry::from_corners(0.0, 0.0, 10.0, 10.0))
            .with_keypoints(vec![point(0, 1.0, 1.0, 0.9)]);
        let frame = FrameOutput::instances(vec![cat, dog]);
        let active: Vec<Control> = LabelConfig::parse(
            r#"<View><Image name="img" value="$image"/>
               <RectangleLabels name="pose_bbox" toName="img" model_skip="true"><Label value="Cat" predicted_values="cat"/></RectangleLabels>
               <KeyPointLabels name="pose" toName="img" model_point_threshold="0.5" model_point_size="6.4">
                 <Label value="ear" predicted_values="cat" model_index="0"/>
                 <Label value="tail" predicted_values="cat" model_index="1"/>
               </KeyPointLabels></View>"#,
        )
        .expect("config")
        .active_controls()
        .cloned()
        .collect();
        assert_eq!(active.len(), 1, "the _bbox tag is filled through the keypoints");
        let out = build_for(&frame, &active, 1.0);
        assert_eq!(
            out.len(),
            2,
            "the box and the ear; the tail scores 0.2, keypoint 2 has no label, the dog no labels: {out:?}"
        );
        let (parent, ear) = (&out[0], &out[1]);
        assert_eq!(parent["from_name"], "pose_bbox");
        assert_eq!(parent["type"], "rectanglelabels");
        assert_eq!(parent["hidden"], true);
        assert_eq!(parent["value"]["rectanglelabels"], json!(["Cat"]));
        assert_eq!(ear["from_name"], "pose");
        assert_eq!(ear["type"], "keypointlabels");
        assert_eq!(ear["parentID"], parent["id"]);
        assert_eq!(ear["value"]["keypointlabels"], json!(["ear"]));
        assert_eq!((&ear["value"]["x"], &ear["value"]["y"]), (&json!(10.0), &json!(10.0)));
        assert_eq!(ear["value"]["width"], json!(1.0), "6.4 px of 640");
        assert_eq!(ear["score"], json!(0.9));
        // As the official backend: the box and its points show the object's id.
        assert_eq!(parent["meta"]["text"], json!([parent["id"]]));
        assert_eq!(ear["meta"]["text"], parent["meta"]["text"]);
    }

    #[test]
    fn several_choices_score_their_mean() {
        let tag = |multiple: &str| {
            controls(&format!(
                r#"<View><Image name="image" value="$image"/><Choices name="class" toName="image" choice="{multiple}">
                     <Choice value="cat"/><Choice value="dog"/></Choices></View>"#
            ))
        };
        let frame = FrameOutput::classes(vec![
            ClassScore {
                class_id: 0,
                score: 0.9,
            },
            ClassScore {
                class_id: 1,
                score: 0.5,
            },
        ]);
        let many = build_for(&frame, &tag("multiple"), 1.0);
        assert_eq!(many[0]["value"]["choices"], json!(["cat", "dog"]));
        assert_eq!(many[0]["score"], json!(0.7));
        let one = build_for(&frame, &tag("single"), 1.0);
        assert_eq!(
            (one[0]["value"]["choices"].clone(), one[0]["score"].clone()),
            (json!(["cat"]), json!(0.9))
        );
    }

    #[test]
    fn each_piece_of_an_instance_is_a_polygon_of_its_own() {
        let square = |x: f32, y: f32, s: f32| {
            vec![
                Point { x, y },
                Point { x: x + s, y },
                Point { x: x + s, y: y + s },
                Point { x, y: y + s },
            ]
        };
        let frame = FrameOutput::instances(vec![
            Instance::new(0, 0.9)
                .with_polygon(square(10.0, 10.0, 40.0))
                .with_polygon(square(100.0, 10.0, 8.0)),
        ]);
        let c = controls(
            r#"<View><Image name="img" value="$image"/><PolygonLabels name="poly" toName="img"><Label value="cat"/></PolygonLabels></View>"#,
        );
        let out = build_for(&frame, &c, 1.0);
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(
            out.iter()
                .all(|r| r["value"]["polygonlabels"] == json!(["cat"]) && r["score"] == json!(0.9))
        );
        assert_ne!(out[0]["id"], out[1]["id"]);
    }

    #[test]
    fn prediction_score_is_the_mean() {
        let cat = Control {
            name: "class".into(),
            to_name: "image".into(),
            ..controls(r#"<View><Image name="image" value="$image"/><Choices name="class" toName="image"><Choice value="cat"/></Choices></View>"#)[0].clone()
        };
        let region = |score| choices(&[(score, "cat")], &cat).expect("a choice");
        let p = serde_json::to_value(Prediction::new(vec![region(0.5), region(1.0)], "v1")).expect("JSON");
        assert_eq!(p["score"], 0.75);
        assert_eq!(p["model_version"], "v1");
        assert_eq!(p["result"].as_array().map(Vec::len), Some(2));
        assert_eq!(Prediction::empty("v1").score, 0.0);
    }

    #[test]
    fn mask_bounds_cover_exactly_the_foreground() {
        // 5 x 4: foreground at (1,1), (2,1) and (4,2).
        let mask = Mask {
            width: 5,
            height: 4,
            runs: plugin_api::RVec::from(vec![6, 2, 6, 1, 5]),
        };
        assert_eq!(mask_bounds(&mask), Some(BoxGeometry::from_corners(1.0, 1.0, 5.0, 3.0)));
        // A run from the end of row 0 into row 1 spans every column.
        let wrapping = Mask {
            width: 5,
            height: 2,
            runs: plugin_api::RVec::from(vec![4, 2, 4]),
        };
        assert_eq!(
            mask_bounds(&wrapping),
            Some(BoxGeometry::from_corners(0.0, 0.0, 5.0, 2.0))
        );
        let empty = Mask {
            width: 5,
            height: 2,
            runs: plugin_api::RVec::from(vec![10]),
        };
        assert_eq!(mask_bounds(&empty), None);
    }

    #[test]
    fn a_prompted_object_fills_each_target_with_the_chosen_label() {
        let config = LabelConfig::parse(
            r#"<View><Image name="image" value="$image"/>
               <BrushLabels name="brush" toName="image"><Label value="Car"/></BrushLabels>
               <RectangleLabels name="box" toName="image"><Label value="Car"/></RectangleLabels>
               <PolygonLabels name="poly" toName="image"><Label value="Bus"/></PolygonLabels></View>"#,
        )
        .expect("config");
        // A 4 x 3 square at (2, 2) on a 10 x 10 image: rows 2..5, columns 2..6.
        let mut runs = vec![22u32];
        for _ in 0..3 {
            runs.extend([4, 6]);
        }
        let last = runs.len() - 1;
        runs[last] = 100 - runs[..last].iter().sum::<u32>();
        let instance = Instance::new(0, 0.75)
            .with_mask(Mask {
                width: 10,
                height: 10,
                runs: plugin_api::RVec::from(runs),
            })
            .with_box(BoxGeometry::from_corners(1.5, 1.5, 6.5, 5.5));
        let size = ImageSize { width: 10, height: 10 };
        let label_of = |c: &Control| c.labels.iter().find(|l| l.value == "Car").map(|l| l.value.clone());
        let out = written(prompted(&instance, &config.controls, label_of, size, 1.0));
        let kinds: Vec<&str> = out.iter().filter_map(|r| r["type"].as_str()).collect();
        assert_eq!(
            kinds,
            ["brushlabels", "rectanglelabels"],
            "the polygon tag has no label Car"
        );
        assert_eq!(out[0]["score"], 0.75);
        assert_eq!(out[1]["value"]["rectanglelabels"][0], "Car");
        // The adapter's box; without one, the tight box around the mask.
        assert_eq!(out[1]["value"]["x"], 15.0);
        assert_eq!(out[1]["value"]["width"], 50.0);
        let mut maskonly = instance.clone();
        maskonly.bbox = ROption::RNone;
        let tight = written(prompted(&maskonly, &config.controls[1..2], label_of, size, 1.0));
        assert_eq!(tight[0]["value"]["x"], 20.0);
        assert_eq!(tight[0]["value"]["width"], 40.0);
        assert_eq!(tight[0]["value"]["height"], 30.0);
        let id = |r: &Value| r["id"].as_str().unwrap_or_default().to_string();
        assert_eq!(id(&out[0])[..8], id(&out[1])[..8], "one object: one id prefix");
    }
}
