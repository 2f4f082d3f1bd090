//! Scoring a model on a training job's validation images, in Label Studio's terms: the
//! instances the model finds, labelled with the same adapter, label mapping and thresholds as
//! serving, against the annotations (read back from Label Studio's JSON by the protocol
//! crate). The new model and the serving one are scored the same
//! way, so the install decision compares like with like even when their class lists differ.
//!
//! Regions are compared by their boxes: a rectangle's (rotated ones by the box around them),
//! a polygon's or a brush mask's bounding box (a predicted instance's mask, one box per
//! instance), a pose instance's parent box. The score is
//! COCO's box mAP over IoU 0.50:0.95 (101-point interpolation, averaged over the labels that
//! the annotations hold). Choices are scored by top-1 accuracy.

use std::collections::{BTreeMap, BTreeSet};

use labelstudio_protocol::{
    annotation::{self, LabelledBox},
    label_config::{Control, ControlKind},
    results,
};
use plugin_api::{BoxGeometry, FrameOutput, ROption};

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

/// One validation image: what the annotation holds, read back from Label Studio's JSON, and
/// what a model found, mapped to the tag's labels.
pub struct Sample {
    pub truth: Vec<LabelledBox>,
    pub predicted: Vec<LabelledBox>,
}

/// A model's instances as labelled boxes for the tag `control`, as serving would label them:
/// each instance above the tag's threshold (else `conf`) whose class the tag has a label for.
/// A rectangle tag takes the instance's box (a rotated one's upright box); a polygon or brush
/// tag the box around the mask (else around its outlines); a keypoint tag its parent box's.
pub fn predicted_boxes(frame: &FrameOutput, class_names: &[String], control: &Control, conf: f32) -> Vec<LabelledBox> {
    let threshold = control.score_threshold.unwrap_or(conf);
    frame
        .instances
        .iter()
        .filter(|i| i.score > threshold)
        .filter_map(|instance| {
            let class = class_names.get(instance.class_id as usize)?;
            let bbox = instance.bbox.as_ref().into_option();
            let upright = |b: &BoxGeometry| b.bounds().map(f64::from);
            let (label, bbox) = match control.kind {
                ControlKind::RectangleLabels => (control.label_for(class)?, upright(bbox?)),
                ControlKind::PolygonLabels | ControlKind::BrushLabels => {
                    let outline = || {
                        annotation::bounds(
                            instance
                                .polygons
                                .iter()
                                .flatten()
                                .map(|p| (f64::from(p.x), f64::from(p.y))),
                        )
                    };
                    let shape = match &instance.mask {
                        ROption::RSome(mask) => results::mask_bounds(mask).map(|b| upright(&b)),
                        ROption::RNone => outline(),
                    };
                    (control.label_for(class)?, shape?)
                }
                ControlKind::KeyPointLabels => {
                    let parent = control.keypoints.parent.as_ref()?;
                    (parent.label_for(class), upright(bbox?))
                }
                ControlKind::Choices | ControlKind::Taxonomy => return None,
            };
            Some(LabelledBox {
                label: label.to_string(),
                bbox,
                score: f64::from(instance.score),
            })
        })
        .collect()
}

/// The label a model's best whole-image class gets in the `Choices` tag `control`.
pub fn predicted_choice(frame: &FrameOutput, class_names: &[String], control: &Control, conf: f32) -> Option<String> {
    let threshold = control.score_threshold.unwrap_or(conf);
    frame
        .classes
        .iter()
        .filter(|c| c.score > threshold)
        .filter_map(|c| Some((c.score, control.label_for(class_names.get(c.class_id as usize)?)?)))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, label)| label.to_string())
}

fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// COCO's 101-point interpolated average precision of one label at one IoU threshold.
fn average_precision(images: &[Sample], label: &str, threshold: f64) -> f64 {
    let total: usize = images
        .iter()
        .map(|s| s.truth.iter().filter(|r| r.label == label).count())
        .sum();
    if total == 0 {
        return 0.0;
    }
    let mut detections: Vec<(f64, usize, &LabelledBox)> = images
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            s.predicted
                .iter()
                .filter(|r| r.label == label)
                .map(move |r| (r.score, i, r))
        })
        .collect();
    detections.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut matched: Vec<Vec<bool>> = images.iter().map(|s| vec![false; s.truth.len()]).collect();
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut curve = Vec::with_capacity(detections.len());
    for (_, image, detection) in detections {
        let truth = &images[image].truth;
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

/// The box mAP50-95 of a model's boxes over the validation images.
pub fn box_map(images: &[Sample]) -> f64 {
    let labels: BTreeSet<&String> = images.iter().flat_map(|s| s.truth.iter().map(|r| &r.label)).collect();
    if labels.is_empty() {
        return 0.0;
    }
    let per_label: BTreeMap<&String, f64> = labels
        .iter()
        .map(|label| {
            let ap = THRESHOLDS
                .iter()
                .map(|&t| average_precision(images, label, t))
                .sum::<f64>()
                / THRESHOLDS.len() as f64;
            (*label, ap)
        })
        .collect();
    per_label.values().sum::<f64>() / per_label.len() as f64
}

/// The share of images whose predicted choice is the annotated one, over the images that have
/// an annotated choice: `(annotated, predicted)` per image.
pub fn top1(images: &[(Option<String>, Option<String>)]) -> f64 {
    let judged: Vec<bool> = images
        .iter()
        .filter_map(|(truth, predicted)| Some(predicted.as_ref() == Some(truth.as_ref()?)))
        .collect();
    if judged.is_empty() {
        0.0
    } else {
        judged.iter().filter(|ok| **ok).count() as f64 / judged.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use labelstudio_protocol::label_config::LabelConfig;
    use plugin_api::{ClassScore, Instance, Mask, RVec};

    use super::*;

    /// A box of `label` from x, y, width, height in pixels.
    fn boxed(label: &str, x: f64, y: f64, w: f64, h: f64, score: f64) -> LabelledBox {
        LabelledBox {
            label: label.into(),
            bbox: [x, y, x + w, y + h],
            score,
        }
    }

    fn control(xml: &str) -> Control {
        let config = LabelConfig::parse(xml).expect("config");
        config.active_controls().next().expect("a control").clone()
    }

    #[test]
    fn a_perfect_model_scores_one_and_an_empty_one_zero() {
        let truth = vec![
            boxed("a", 20.0, 10.0, 40.0, 20.0, 1.0),
            boxed("b", 100.0, 50.0, 60.0, 30.0, 1.0),
        ];
        let perfect = Sample {
            truth: truth.clone(),
            predicted: truth.clone(),
        };
        assert!((box_map(&[perfect]) - 1.0).abs() < 1e-9);
        let none = Sample {
            truth,
            predicted: Vec::new(),
        };
        assert_eq!(box_map(&[none]), 0.0);
    }

    #[test]
    fn a_box_off_by_a_little_loses_the_strict_thresholds() {
        // 100x100 px truth; the prediction is shifted by 10 px: IoU = 90*100/(2*10000 - 9000) = 0.818.
        let map = box_map(&[Sample {
            truth: vec![boxed("a", 0.0, 0.0, 100.0, 100.0, 1.0)],
            predicted: vec![boxed("a", 10.0, 0.0, 100.0, 100.0, 0.9)],
        }]);
        // Matched at 0.50 ... 0.80 (7 of 10 thresholds).
        assert!((map - 0.7).abs() < 1e-9, "{map}");
    }

    #[test]
    fn a_wrong_label_or_a_false_positive_costs_precision() {
        let truth = vec![boxed("a", 0.0, 0.0, 50.0, 50.0, 1.0)];
        let wrong = Sample {
            truth: truth.clone(),
            predicted: vec![boxed("b", 0.0, 0.0, 50.0, 50.0, 0.9)],
        };
        assert_eq!(box_map(&[wrong]), 0.0);
        // A confident false positive ranked above the true one: precision 1/2 at full recall.
        let both = Sample {
            truth,
            predicted: vec![
                boxed("a", 60.0, 60.0, 20.0, 20.0, 0.95),
                boxed("a", 0.0, 0.0, 50.0, 50.0, 0.5),
            ],
        };
        let map = box_map(&[both]);
        assert!((map - 0.5).abs() < 1e-9, "{map}");
    }

    #[test]
    fn instances_are_labelled_as_serving_labels_them() {
        let rect = control(
            r#"<View><Image name="image" value="$image"/><RectangleLabels name="label" toName="image">
                 <Label value="Cat" predicted_values="cat"/></RectangleLabels></View>"#,
        );
        let names = ["cat".to_string(), "dog".to_string()];
        // 40x20 px at (50, 50) turned 90 degrees clockwise about its top-left corner covers
        // x 30..50, y 50..90.
        let turned = BoxGeometry {
            rotation: 90.0,
            ..BoxGeometry::from_corners(50.0, 50.0, 90.0, 70.0)
        };
        let frame = FrameOutput::instances(vec![
            Instance::new(0, 0.9).with_box(turned),
            // A class the tag has no label for, and one below the threshold.
            Instance::new(1, 0.9).with_box(BoxGeometry::from_corners(0.0, 0.0, 5.0, 5.0)),
            Instance::new(0, 0.1).with_box(BoxGeometry::from_corners(0.0, 0.0, 5.0, 5.0)),
        ]);
        let got = predicted_boxes(&frame, &names, &rect, 0.25);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].label, "Cat");
        for (v, want) in got[0].bbox.iter().zip([30.0, 50.0, 50.0, 90.0]) {
            assert!((v - want).abs() < 1e-4, "{:?}", got[0].bbox);
        }

        // A polygon tag takes the box around the mask, not the detector's box.
        let polygon = control(
            r#"<View><Image name="image" value="$image"/><PolygonLabels name="seg" toName="image">
                 <Label value="cat"/></PolygonLabels></View>"#,
        );
        let mask = Mask {
            width: 5,
            height: 4,
            runs: RVec::from(vec![6, 2, 6, 1, 5]),
        };
        let frame = FrameOutput::instances(vec![
            Instance::new(0, 0.9)
                .with_box(BoxGeometry::from_corners(0.0, 0.0, 5.0, 4.0))
                .with_mask(mask),
        ]);
        let got = predicted_boxes(&frame, &names, &polygon, 0.25);
        assert_eq!(got, [boxed("cat", 1.0, 1.0, 4.0, 2.0, f64::from(0.9f32))]);
    }

    #[test]
    fn choices_score_top1() {
        let choices = control(
            r#"<View><Image name="image" value="$image"/><Choices name="class" toName="image">
                 <Choice value="cat"/><Choice value="dog"/></Choices></View>"#,
        );
        let names = ["cat".to_string(), "dog".to_string()];
        let frame = FrameOutput::classes(vec![
            ClassScore {
                class_id: 0,
                score: 0.3,
            },
            ClassScore {
                class_id: 1,
                score: 0.6,
            },
        ]);
        let picked = predicted_choice(&frame, &names, &choices, 0.001);
        assert_eq!(picked.as_deref(), Some("dog"));
        let images = [
            (Some("dog".to_string()), picked.clone()),
            (Some("cat".to_string()), picked),
            // No annotated choice: not judged.
            (None, Some("cat".to_string())),
        ];
        assert_eq!(top1(&images), 0.5);
    }
}
