//! Regions of a Label Studio annotation read back as typed boxes and choices, for scoring a
//! model against what annotators drew. The JSON is read here, at the edge; the scorer sees
//! labelled boxes in pixels.

use std::collections::BTreeSet;

use serde_json::Value;

/// A region as the box around it, in pixels of the original image.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelledBox {
    pub label: String,
    /// `[x1, y1, x2, y2]`.
    pub bbox: [f64; 4],
    pub score: f64,
}

/// The regions of the tags in `from_names` as boxes: a rectangle's (a rotated one's upright
/// box), a polygon's or a brush mask's bounds. Regions of other kinds, without a label or
/// without an area are left out.
pub fn boxes(result: &[Value], from_names: &BTreeSet<&str>, width: u32, height: u32) -> Vec<LabelledBox> {
    let (w, h) = (width as f64, height as f64);
    let mut out = Vec::new();
    for region in result {
        let from = region.get("from_name").and_then(Value::as_str).unwrap_or_default();
        let kind = region.get("type").and_then(Value::as_str).unwrap_or_default();
        if !from_names.contains(from) {
            continue;
        }
        let Some(value) = region.get("value") else { continue };
        let Some(label) = value
            .get(kind)
            .and_then(Value::as_array)
            .and_then(|l| l.first())
            .and_then(Value::as_str)
        else {
            continue;
        };
        let num = |key: &str| value.get(key).and_then(Value::as_f64);
        let bbox = match kind {
            "rectanglelabels" => {
                let (Some(x), Some(y), Some(bw), Some(bh)) = (num("x"), num("y"), num("width"), num("height")) else {
                    continue;
                };
                let (x, y, bw, bh) = (x * w / 100.0, y * h / 100.0, bw * w / 100.0, bh * h / 100.0);
                let (sin, cos) = num("rotation").unwrap_or(0.0).to_radians().sin_cos();
                let corners = [(0.0, 0.0), (bw, 0.0), (bw, bh), (0.0, bh)]
                    .map(|(dx, dy)| (x + dx * cos - dy * sin, y + dx * sin + dy * cos));
                bounds(corners.iter().copied())
            }
            "polygonlabels" => {
                let points = value
                    .get("points")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                bounds(
                    points
                        .iter()
                        .filter_map(|p| Some((p.get(0)?.as_f64()? * w / 100.0, p.get(1)?.as_f64()? * h / 100.0))),
                )
            }
            "brushlabels" => {
                let rle: Vec<u8> = value
                    .get("rle")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_u64).map(|b| b as u8).collect())
                    .unwrap_or_default();
                let Some(values) = crate::brush::decode(&rle) else {
                    continue;
                };
                let mut points = Vec::new();
                for (i, pixel) in values.chunks_exact(4).enumerate() {
                    if pixel[3] > 0 {
                        let (px, py) = ((i % width.max(1) as usize) as f64, (i / width.max(1) as usize) as f64);
                        points.push((px, py));
                        points.push((px + 1.0, py + 1.0));
                    }
                }
                bounds(points.into_iter())
            }
            _ => None,
        };
        if let Some(bbox) = bbox {
            out.push(LabelledBox {
                label: label.to_string(),
                bbox,
                score: region.get("score").and_then(Value::as_f64).unwrap_or(1.0),
            });
        }
    }
    out
}

/// The highest-scored choice of the `Choices` tag `from_name`.
pub fn first_choice(result: &[Value], from_name: &str) -> Option<String> {
    result
        .iter()
        .filter(|r| r.get("from_name").and_then(Value::as_str) == Some(from_name))
        .filter_map(|r| {
            let label = r.pointer("/value/choices/0")?.as_str()?.to_string();
            Some((r.get("score").and_then(Value::as_f64).unwrap_or(1.0), label))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, label)| label)
}

/// The upright box around `points`, if it has an area.
pub fn bounds(points: impl Iterator<Item = (f64, f64)>) -> Option<[f64; 4]> {
    let mut b: Option<[f64; 4]> = None;
    for (x, y) in points.filter(|(x, y)| x.is_finite() && y.is_finite()) {
        b = Some(match b {
            None => [x, y, x, y],
            Some([x1, y1, x2, y2]) => [x1.min(x), y1.min(y), x2.max(x), y2.max(y)],
        });
    }
    b.filter(|[x1, y1, x2, y2]| x2 > x1 && y2 > y1)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rotated_boxes_are_read_as_the_box_around_them() {
        // 40x20 px at (50, 50) turned 90 degrees clockwise about its top-left corner covers
        // x 30..50, y 50..90.
        let rotated = json!({"from_name": "label", "type": "rectanglelabels",
            "value": {"x": 50.0, "y": 50.0, "width": 40.0, "height": 20.0, "rotation": 90.0, "rectanglelabels": ["a"]}});
        let got = boxes(&[rotated], &BTreeSet::from(["label"]), 100, 100);
        let b = got[0].bbox;
        for (v, want) in b.iter().zip([30.0, 50.0, 50.0, 90.0]) {
            assert!((v - want).abs() < 1e-9, "{b:?}");
        }
    }

    #[test]
    fn polygons_and_other_tags() {
        let polygon = json!({"from_name": "seg", "type": "polygonlabels",
            "value": {"points": [[10.0, 10.0], [50.0, 10.0], [30.0, 40.0]], "polygonlabels": ["cat"]}});
        let other = json!({"from_name": "other", "type": "polygonlabels",
            "value": {"points": [[0.0, 0.0], [5.0, 0.0], [5.0, 5.0]], "polygonlabels": ["cat"]}});
        let got = boxes(&[polygon, other], &BTreeSet::from(["seg"]), 200, 100);
        assert_eq!(
            got,
            [LabelledBox {
                label: "cat".into(),
                bbox: [20.0, 10.0, 100.0, 40.0],
                score: 1.0
            }]
        );
    }

    #[test]
    fn the_best_scored_choice_of_the_tag() {
        let choice =
            |c: &str, s: f64| json!({"from_name": "class", "type": "choices", "score": s, "value": {"choices": [c]}});
        let result = [choice("cat", 0.4), choice("dog", 0.9)];
        assert_eq!(first_choice(&result, "class").as_deref(), Some("dog"));
        assert_eq!(first_choice(&result, "other"), None);
    }
}
