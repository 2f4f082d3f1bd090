//! Turning regions into Label Studio prediction JSON.

use rand::{Rng, distr::Alphanumeric};
use serde_json::{Value, json};

use plugin_api::{BoxGeometry, FrameOutput, Instance, Mask, ROption};

use super::{
    brush,
    label_config::{Control, ControlKind},
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

/// The envelope every image result shares, around a `value`.
fn result(id: String, score: f32, label: &str, control: &Control, size: ImageSize, mut value: Value) -> Value {
    let kind = control.kind.result_type();
    value[kind] = json!([label]);
    json!({
        "id": id,
        "from_name": control.name,
        "to_name": control.to_name,
        "type": kind,
        "original_width": size.width,
        "original_height": size.height,
        "image_rotation": 0,
        "value": value,
        "score": round6(score as f64),
    })
}

/// A `rectanglelabels` value for a box, in percent of the image.
pub fn rectangle_value(b: &BoxGeometry, size: ImageSize) -> Value {
    let (w, h) = (size.width as f64, size.height as f64);
    json!({
        "x": percent(b.x as f64, w),
        "y": percent(b.y as f64, h),
        "width": percent(b.width as f64, w),
        "height": percent(b.height as f64, h),
        "rotation": b.rotation,
    })
}

/// A `polygonlabels` value: the instance's own outline, or else the outline of its mask's
/// largest piece through its boundary pixels' centres; straight runs are dropped and the
/// outline is simplified to within `tolerance` pixels. Points in percent.
pub fn polygon_value(instance: &Instance, size: ImageSize, tolerance: f64) -> Option<Value> {
    let points: Vec<(f64, f64)> = match (instance.polygons.first(), &instance.mask) {
        (Some(points), _) => points.iter().map(|p| (p.x as f64, p.y as f64)).collect(),
        (None, ROption::RSome(mask)) if (mask.width, mask.height) == (size.width, size.height) => {
            mask_geometry::outline_of_runs(mask.width as usize, &mask.runs)?
                .into_iter()
                .map(|(x, y)| (x as f64 + 0.5, y as f64 + 0.5))
                .collect()
        }
        _ => return None,
    };
    let points = mask_geometry::douglas_peucker(&mask_geometry::drop_collinear(&points), tolerance);
    if points.len() < 3 {
        return None;
    }
    let (w, h) = (size.width as f64, size.height as f64);
    let points: Vec<[f64; 2]> = points.iter().map(|&(x, y)| [percent(x, w), percent(y, h)]).collect();
    Some(json!({ "points": points, "closed": true }))
}

/// A `brushlabels` value: the mask in Label Studio's RLE. Only for a mask of exactly the
/// image's size; any other size would draw nothing in Label Studio.
pub fn brush_value(mask: &Mask, size: ImageSize) -> Option<Value> {
    ((mask.width, mask.height) == (size.width, size.height))
        .then(|| json!({ "format": "rle", "rle": brush::encode(mask) }))
}

/// A `choices` result: the labels of whole-image classes, best first, scored by the best.
pub fn choices(picked: &[(f32, &str)], control: &Control) -> Option<Value> {
    let best = picked.first()?.0;
    let labels: Vec<&str> = picked.iter().map(|(_, label)| *label).collect();
    Some(json!({
        "id": region_id(),
        "from_name": control.name,
        "to_name": control.to_name,
        "type": control.kind.result_type(),
        "value": { "choices": labels },
        "score": round6(best as f64),
    }))
}

/// What the results of one image are built from.
pub struct Found<'a> {
    pub frame: &'a FrameOutput,
    /// The model's class names, by class id.
    pub class_names: &'a [String],
    pub size: ImageSize,
}

/// Label Studio results for one image: each instance goes to every control tag that can show
/// one of its shapes and has a label for its class, above that tag's score threshold; the
/// whole-image classes go to `Choices`.
///
/// Label Studio wants distinct ids, one per region, and each tag's result is a region of its
/// own. The results of one instance share an id prefix (`<instance id><n>`), so an export
/// tells which rectangle, polygon and mask are one object.
pub fn build(found: &Found<'_>, controls: &[Control], default_conf: f32, polygon_tolerance: f64) -> Vec<Value> {
    let Found {
        frame,
        class_names,
        size,
    } = *found;
    let class_name = |class_id: u32| class_names.get(class_id as usize).map(String::as_str);
    let instance_ids: Vec<String> = frame.instances.iter().map(|_| region_id()).collect();
    let mut results_of = vec![0usize; frame.instances.len()];
    let mut out = Vec::new();
    for control in controls {
        let threshold = control.score_threshold.unwrap_or(default_conf);
        if control.kind == ControlKind::Choices {
            let mut picked: Vec<(f32, &str)> = frame
                .classes
                .iter()
                .filter(|c| c.score > threshold)
                .filter_map(|c| Some((c.score, control.label_for(class_name(c.class_id)?)?)))
                .collect();
            picked.sort_by(|a, b| b.0.total_cmp(&a.0));
            picked.dedup_by(|a, b| a.1 == b.1);
            picked.truncate(if control.multiple { picked.len() } else { 1 });
            out.extend(choices(&picked, control));
            continue;
        }
        for (i, instance) in frame.instances.iter().enumerate() {
            if instance.score <= threshold {
                continue;
            }
            let Some(label) = class_name(instance.class_id).and_then(|name| control.label_for(name)) else {
                continue;
            };
            let value = match control.kind {
                ControlKind::RectangleLabels => instance.bbox.as_ref().into_option().map(|b| rectangle_value(b, size)),
                ControlKind::PolygonLabels => polygon_value(instance, size, polygon_tolerance),
                ControlKind::BrushLabels => instance.mask.as_ref().into_option().and_then(|m| brush_value(m, size)),
                ControlKind::KeyPointLabels | ControlKind::Choices => None,
            };
            if let Some(value) = value {
                let id = format!("{}{}", instance_ids[i], results_of[i]);
                results_of[i] += 1;
                out.push(result(id, instance.score, label, control, size, value));
            }
        }
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

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// One prediction: the regions, their mean score, and the model version.
pub fn prediction(result: Vec<Value>, model_version: &str) -> Value {
    let scores: Vec<f64> = result
        .iter()
        .filter_map(|r| r.get("score").and_then(Value::as_f64))
        .collect();
    let score = if scores.is_empty() {
        0.0
    } else {
        scores.iter().sum::<f64>() / scores.len() as f64
    };
    json!({ "result": result, "score": round6(score), "model_version": model_version })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::label_config::LabelConfig;
    use plugin_api::{ClassScore, Point};

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
            size: SIZE,
        };
        build(&found, controls, 0.25, tolerance)
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

    #[test]
    fn prediction_score_is_the_mean() {
        let p = prediction(vec![json!({"score": 0.5}), json!({"score": 1.0})], "v1");
        assert_eq!(p["score"], 0.75);
        assert_eq!(p["model_version"], "v1");
        assert_eq!(prediction(vec![], "v1")["score"], 0.0);
    }
}
