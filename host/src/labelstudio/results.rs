//! Turning regions into Label Studio prediction JSON.

use rand::{Rng, distr::Alphanumeric};
use serde_json::{Value, json};

use plugin_api::{Geometry, Region};

use super::{brush, label_config::Control};

/// Short random region ids; Label Studio needs them to be distinct strings.
pub fn region_id() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(10)
        .map(char::from)
        .collect()
}

/// Size of the image as Label Studio shows it (after EXIF orientation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageSize {
    pub width: u32,
    pub height: u32,
}

/// The envelope every image result shares, around a `value`.
fn result(region: &Region, label: &str, control: &Control, size: ImageSize, mut value: Value) -> Value {
    let kind = control.kind.result_type();
    value[kind] = json!([label]);
    json!({
        "id": region_id(),
        "from_name": control.name,
        "to_name": control.to_name,
        "type": kind,
        "original_width": size.width,
        "original_height": size.height,
        "image_rotation": 0,
        "value": value,
        "score": round6(region.score as f64),
    })
}

/// A `rectanglelabels` result for a box region, or None for other geometries.
pub fn rectangle(region: &Region, label: &str, control: &Control, size: ImageSize) -> Option<Value> {
    let Geometry::Box(b) = &region.geometry else {
        return None;
    };
    let (w, h) = (size.width as f64, size.height as f64);
    let value = json!({
        "x": percent(b.x as f64, w),
        "y": percent(b.y as f64, h),
        "width": percent(b.width as f64, w),
        "height": percent(b.height as f64, h),
        "rotation": b.rotation,
    });
    Some(result(region, label, control, size, value))
}

/// A `polygonlabels` result: a polygon region, or else the outline of a mask's largest
/// piece through its boundary pixels' centres; straight runs are dropped and the outline is
/// simplified to within `tolerance` pixels. Points in percent.
pub fn polygon(region: &Region, label: &str, control: &Control, size: ImageSize, tolerance: f64) -> Option<Value> {
    let points: Vec<(f64, f64)> = match &region.geometry {
        Geometry::Polygon(points) => points.iter().map(|p| (p.x as f64, p.y as f64)).collect(),
        Geometry::Mask(mask) if (mask.width, mask.height) == (size.width, size.height) => {
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
    Some(result(
        region,
        label,
        control,
        size,
        json!({ "points": points, "closed": true }),
    ))
}

/// A `brushlabels` result: the mask in Label Studio's RLE. Only for a mask of exactly the
/// image's size; any other size would draw nothing in Label Studio.
pub fn brush(region: &Region, label: &str, control: &Control, size: ImageSize) -> Option<Value> {
    let Geometry::Mask(mask) = &region.geometry else {
        return None;
    };
    if (mask.width, mask.height) != (size.width, size.height) {
        return None;
    }
    let value = json!({ "format": "rle", "rle": brush::encode(mask) });
    Some(result(region, label, control, size, value))
}

/// A `choices` result: the labels of whole-image classes, best first, scored by the best.
pub fn choices(regions: &[(&Region, &str)], control: &Control) -> Option<Value> {
    let best = regions.first()?.0.score;
    let labels: Vec<&str> = regions.iter().map(|(_, label)| *label).collect();
    Some(json!({
        "id": region_id(),
        "from_name": control.name,
        "to_name": control.to_name,
        "type": control.kind.result_type(),
        "value": { "choices": labels },
        "score": round6(best as f64),
    }))
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
    use crate::labelstudio::label_config::{ControlKind, LabelConfig};
    use plugin_api::BoxGeometry;

    fn control() -> Control {
        LabelConfig::parse(r#"<View><Image name="img" value="$image"/><RectangleLabels name="label" toName="img"><Label value="Cat"/></RectangleLabels></View>"#)
            .expect("config")
            .controls[0]
            .clone()
    }

    #[test]
    fn percent_conversion() {
        assert_eq!(percent(50.0, 200.0), 25.0);
        assert_eq!(percent(1.0, 3.0), 33.333333);
        assert_eq!(percent(5.0, 0.0), 0.0);
    }

    #[test]
    fn rectangle_result_is_in_percent_of_the_original() {
        let region = Region {
            class_id: 0,
            score: 0.9,
            geometry: Geometry::Box(BoxGeometry {
                x: 64.0,
                y: 48.0,
                width: 320.0,
                height: 240.0,
                rotation: 0.0,
            }),
        };
        let c = control();
        assert_eq!(c.kind, ControlKind::RectangleLabels);
        let r = rectangle(
            &region,
            "Cat",
            &c,
            ImageSize {
                width: 640,
                height: 480,
            },
        )
        .expect("box");
        assert_eq!(r["type"], "rectanglelabels");
        assert_eq!(
            (r["from_name"].as_str(), r["to_name"].as_str()),
            (Some("label"), Some("img"))
        );
        assert_eq!(r["value"]["x"], 10.0);
        assert_eq!(r["value"]["y"], 10.0);
        assert_eq!(r["value"]["width"], 50.0);
        assert_eq!(r["value"]["height"], 50.0);
        assert_eq!(r["value"]["rectanglelabels"], json!(["Cat"]));
        assert_eq!(
            (r["original_width"].as_u64(), r["original_height"].as_u64()),
            (Some(640), Some(480))
        );
        assert!(r["id"].as_str().is_some_and(|id| id.len() == 10));
    }

    #[test]
    fn prediction_score_is_the_mean() {
        let p = prediction(vec![json!({"score": 0.5}), json!({"score": 1.0})], "v1");
        assert_eq!(p["score"], 0.75);
        assert_eq!(p["model_version"], "v1");
        assert_eq!(prediction(vec![], "v1")["score"], 0.0);
    }
}
