//! Scoring a model on a training job's validation images, in Label Studio's terms: the
//! results the model would give (through the same adapter, label mapping and thresholds as
//! serving) against the annotations. The new model and the serving one are scored the same
//! way, so the install decision compares like with like even when their class lists differ.
//!
//! Regions are compared by their boxes: a rectangle's (rotated ones by the box around them),
//! a polygon's or a brush mask's bounding box, a pose instance's parent box. The score is
//! COCO's box mAP over IoU 0.50:0.95 (101-point interpolation, averaged over the labels that
//! the annotations hold). Choices are scored by top-1 accuracy.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// IoU thresholds 0.50, 0.55, ..., 0.95.
const THRESHOLDS: [f64; 10] = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Box mAP50-95.
    BoxMap,
    /// Top-1 accuracy of the choice.
    Top1,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::BoxMap => "mAP50-95",
            Metric::Top1 => "top-1 accuracy",
        }
    }
}

/// One labelled box, in pixels.
#[derive(Debug, Clone, PartialEq)]
struct Region {
    label: String,
    bbox: [f64; 4],
    score: f64,
}

/// One validation image: what the annotation holds and what a model gave.
pub struct Sample<'a> {
    pub truth: &'a [Value],
    pub predicted: &'a [Value],
    pub width: u32,
    pub height: u32,
}

/// The regions of `from_names` in a result list, as boxes.
fn regions(result: &[Value], from_names: &BTreeSet<&str>, width: u32, height: u32) -> Vec<Region> {
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
                let Some(values) = labelstudio_protocol::brush::decode(&rle) else {
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
            out.push(Region {
                label: label.to_string(),
                bbox,
                score: region.get("score").and_then(Value::as_f64).unwrap_or(1.0),
            });
        }
    }
    out
}

fn bounds(points: impl Iterator<Item = (f64, f64)>) -> Option<[f64; 4]> {
    let mut b: Option<[f64; 4]> = None;
    for (x, y) in points.filter(|(x, y)| x.is_finite() && y.is_finite()) {
        b = Some(match b {
            None => [x, y, x, y],
            Some([x1, y1, x2, y2]) => [x1.min(x), y1.min(y), x2.max(x), y2.max(y)],
        });
    }
    b.filter(|[x1, y1, x2, y2]| x2 > x1 && y2 > y1)
}

fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// COCO's 101-point interpolated average precision of one label at one IoU threshold.
fn average_precision(images: &[(Vec<Region>, Vec<Region>)], label: &str, threshold: f64) -> f64 {
    let total: usize = images
        .iter()
        .map(|(truth, _)| truth.iter().filter(|r| r.label == label).count())
        .sum();
    if total == 0 {
        return 0.0;
    }
    let mut detections: Vec<(f64, usize, &Region)> = images
        .iter()
        .enumerate()
        .flat_map(|(i, (_, predicted))| {
            predicted
                .iter()
                .filter(|r| r.label == label)
                .map(move |r| (r.score, i, r))
        })
        .collect();
    detections.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut matched: Vec<Vec<bool>> = images.iter().map(|(truth, _)| vec![false; truth.len()]).collect();
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut curve = Vec::with_capacity(detections.len());
    for (_, image, detection) in detections {
        let truth = &images[image].0;
        let best = truth
            .iter()
            .enumerate()
            .filter(|(j, t)| t.label == label && !matched[image][*j])
            .map(|(j, t)| (j, iou(&t.bbox, &detection.bbox)))
            .filter(|(_, overlap)| *overlap >= threshold)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((j, _)) => {
                matched[image][j] = true;
                tp += 1;
            }
            None => fp += 1,
        }
        curve.push((tp as f64 / total as f64, tp as f64 / (tp + fp) as f64));
    }
    // Precision made monotone from the right, then sampled at recall 0, 0.01, ..., 1.
    for i in (0..curve.len().saturating_sub(1)).rev() {
        curve[i].1 = curve[i].1.max(curve[i + 1].1);
    }
    (0..=100)
        .map(|k| {
            let recall = k as f64 / 100.0;
            curve.iter().find(|(r, _)| *r >= recall).map_or(0.0, |(_, p)| *p)
        })
        .sum::<f64>()
        / 101.0
}

/// The box mAP50-95 of a model's results over the validation images.
pub fn box_map(samples: &[Sample<'_>], from_names: &[&str]) -> f64 {
    let names: BTreeSet<&str> = from_names.iter().copied().collect();
    let images: Vec<(Vec<Region>, Vec<Region>)> = samples
        .iter()
        .map(|s| {
            (
                regions(s.truth, &names, s.width, s.height),
                regions(s.predicted, &names, s.width, s.height),
            )
        })
        .collect();
    let labels: BTreeSet<String> = images
        .iter()
        .flat_map(|(truth, _)| truth.iter().map(|r| r.label.clone()))
        .collect();
    if labels.is_empty() {
        return 0.0;
    }
    let per_label: BTreeMap<&String, f64> = labels
        .iter()
        .map(|label| {
            let ap = THRESHOLDS
                .iter()
                .map(|&t| average_precision(&images, label, t))
                .sum::<f64>()
                / THRESHOLDS.len() as f64;
            (label, ap)
        })
        .collect();
    per_label.values().sum::<f64>() / per_label.len() as f64
}

/// The share of images whose first choice (the highest scored) is the annotated one.
pub fn top1(samples: &[Sample<'_>], from_name: &str) -> f64 {
    let choice = |result: &[Value]| -> Option<String> {
        result
            .iter()
            .filter(|r| r.get("from_name").and_then(Value::as_str) == Some(from_name))
            .filter_map(|r| {
                let label = r.pointer("/value/choices/0")?.as_str()?.to_string();
                Some((r.get("score").and_then(Value::as_f64).unwrap_or(1.0), label))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, label)| label)
    };
    let judged: Vec<bool> = samples
        .iter()
        .filter_map(|s| Some(choice(s.predicted) == Some(choice(s.truth)?)))
        .collect();
    if judged.is_empty() {
        0.0
    } else {
        judged.iter().filter(|ok| **ok).count() as f64 / judged.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rect(label: &str, x: f64, y: f64, w: f64, h: f64, score: f64) -> Value {
        json!({"from_name": "label", "to_name": "image", "type": "rectanglelabels", "score": score,
               "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0, "rectanglelabels": [label]}})
    }

    #[test]
    fn a_perfect_model_scores_one_and_an_empty_one_zero() {
        let truth = vec![
            rect("a", 10.0, 10.0, 20.0, 20.0, 1.0),
            rect("b", 50.0, 50.0, 30.0, 30.0, 1.0),
        ];
        let perfect = truth.clone();
        let none: Vec<Value> = Vec::new();
        let sample = |p: &'static [Value]| Sample {
            truth: Box::leak(truth.clone().into_boxed_slice()),
            predicted: p,
            width: 200,
            height: 100,
        };
        let perfect: &'static [Value] = Box::leak(perfect.into_boxed_slice());
        assert!((box_map(&[sample(perfect)], &["label"]) - 1.0).abs() < 1e-9);
        let none: &'static [Value] = Box::leak(none.into_boxed_slice());
        assert_eq!(box_map(&[sample(none)], &["label"]), 0.0);
    }

    #[test]
    fn a_box_off_by_a_little_loses_the_strict_thresholds() {
        // 100x100 px truth; the prediction is shifted by 10 px: IoU = 90*100/(2*10000 - 9000) = 0.818.
        let truth = [rect("a", 0.0, 0.0, 50.0, 50.0, 1.0)];
        let shifted = [rect("a", 5.0, 0.0, 50.0, 50.0, 0.9)];
        let map = box_map(
            &[Sample {
                truth: &truth,
                predicted: &shifted,
                width: 200,
                height: 200,
            }],
            &["label"],
        );
        // Matched at 0.50 ... 0.80 (7 of 10 thresholds).
        assert!((map - 0.7).abs() < 1e-9, "{map}");
    }

    #[test]
    fn a_wrong_label_or_a_false_positive_costs_precision() {
        let truth = [rect("a", 0.0, 0.0, 50.0, 50.0, 1.0)];
        let wrong = [rect("b", 0.0, 0.0, 50.0, 50.0, 0.9)];
        assert_eq!(
            box_map(
                &[Sample {
                    truth: &truth,
                    predicted: &wrong,
                    width: 100,
                    height: 100
                }],
                &["label"]
            ),
            0.0
        );
        // A confident false positive ranked above the true one: precision 1/2 at full recall.
        let both = [
            rect("a", 60.0, 60.0, 20.0, 20.0, 0.95),
            rect("a", 0.0, 0.0, 50.0, 50.0, 0.5),
        ];
        let map = box_map(
            &[Sample {
                truth: &truth,
                predicted: &both,
                width: 100,
                height: 100,
            }],
            &["label"],
        );
        assert!((map - 0.5).abs() < 1e-9, "{map}");
    }

    #[test]
    fn rotated_boxes_are_compared_by_the_box_around_them() {
        // 40x20 px at (50, 50) turned 90 degrees clockwise about its top-left corner covers
        // x 30..50, y 50..90.
        let rotated = json!({"from_name": "label", "type": "rectanglelabels",
            "value": {"x": 50.0, "y": 50.0, "width": 40.0, "height": 20.0, "rotation": 90.0, "rectanglelabels": ["a"]}});
        let names = BTreeSet::from(["label"]);
        let got = regions(&[rotated], &names, 100, 100);
        let b = got[0].bbox;
        for (v, want) in b.iter().zip([30.0, 50.0, 50.0, 90.0]) {
            assert!((v - want).abs() < 1e-9, "{b:?}");
        }
    }

    #[test]
    fn choices_score_top1() {
        let choice =
            |c: &str, s: f64| json!({"from_name": "class", "type": "choices", "score": s, "value": {"choices": [c]}});
        let (t1, p1) = ([choice("cat", 1.0)], [choice("cat", 0.9)]);
        let (t2, p2) = ([choice("dog", 1.0)], [choice("cat", 0.8)]);
        let samples = [
            Sample {
                truth: &t1,
                predicted: &p1,
                width: 1,
                height: 1,
            },
            Sample {
                truth: &t2,
                predicted: &p2,
                width: 1,
                height: 1,
            },
        ];
        assert_eq!(top1(&samples, "class"), 0.5);
    }
}
