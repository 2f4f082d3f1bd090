//! Ultralytics' rotated NMS: probabilistic IoU between boxes seen as Gaussians, and "fast NMS"
//! (a box is dropped when any better box of its class overlaps it, whether or not that better
//! box was itself dropped), in f32 as torch computes it.

/// Ultralytics offsets centres by class times this, so that boxes of different classes never overlap.
const CLASS_OFFSET: f32 = 7680.0;
/// Ultralytics keeps at most this many candidates (best first) before NMS.
const MAX_NMS: usize = 30000;
const EPS: f32 = 1e-7;

/// An oriented box in the model's input pixels: centre, size and angle in radians.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RotatedBox {
    pub cx: f32,
    pub cy: f32,
    pub w: f32,
    pub h: f32,
    pub angle: f32,
    pub score: f32,
    pub class_id: usize,
}

/// The covariance `[[a, c], [c, b]]` of the box as a uniform distribution.
fn covariance(w: f32, h: f32, angle: f32) -> (f32, f32, f32) {
    let (a, b) = (w * w / 12.0, h * h / 12.0);
    let (cos, sin) = (angle.cos(), angle.sin());
    let (cos2, sin2) = (cos * cos, sin * sin);
    (a * cos2 + b * sin2, a * sin2 + b * cos2, (a - b) * cos * sin)
}

/// Probabilistic IoU (1 - Hellinger distance) of two boxes given as `cx, cy, w, h, angle`, as
/// Ultralytics' `batch_probiou`.
pub fn probiou(p: [f32; 5], q: [f32; 5]) -> f32 {
    let [x1, y1, w1, h1, r1] = p;
    let [x2, y2, w2, h2, r2] = q;
    let (a1, b1, c1) = covariance(w1, h1, r1);
    let (a2, b2, c2) = covariance(w2, h2, r2);
    let denominator = (a1 + a2) * (b1 + b2) - (c1 + c2).powi(2) + EPS;
    let t1 = (((a1 + a2) * (y1 - y2).powi(2) + (b1 + b2) * (x1 - x2).powi(2)) / denominator) * 0.25;
    let t2 = (((c1 + c2) * (x2 - x1) * (y1 - y2)) / denominator) * 0.5;
    let t3 = ((((a1 + a2) * (b1 + b2) - (c1 + c2).powi(2))
        / (4.0 * ((a1 * b1 - c1 * c1).max(0.0) * (a2 * b2 - c2 * c2).max(0.0)).sqrt() + EPS)
        + EPS)
        .ln())
        * 0.5;
    let bd = (t1 + t2 + t3).clamp(EPS, 100.0);
    let hd = (1.0 - (-bd).exp() + EPS).sqrt();
    1.0 - hd
}

/// Keeps, best score first, every box that no better box of its class overlaps with a
/// probabilistic IoU above `iou`; at most `max_det`.
pub fn nms_rotated(mut boxes: Vec<RotatedBox>, iou: f32, max_det: usize) -> Vec<RotatedBox> {
    boxes.sort_by(|a, b| b.score.total_cmp(&a.score));
    boxes.truncate(MAX_NMS);
    let keyed: Vec<[f32; 5]> = boxes
        .iter()
        .map(|b| {
            let off = b.class_id as f32 * CLASS_OFFSET;
            [b.cx + off, b.cy + off, b.w, b.h, b.angle]
        })
        .collect();
    let mut kept = Vec::new();
    for (j, b) in boxes.iter().enumerate() {
        if kept.len() == max_det {
            break;
        }
        if (0..j).all(|i| probiou(keyed[i], keyed[j]) <= iou) {
            kept.push(*b);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rbox(cx: f32, cy: f32, w: f32, h: f32, angle: f32, score: f32, class_id: usize) -> RotatedBox {
        RotatedBox {
            cx,
            cy,
            w,
            h,
            angle,
            score,
            class_id,
        }
    }

    #[test]
    fn probiou_is_one_for_the_same_box_and_falls_with_distance() {
        let a = [50.0, 50.0, 20.0, 10.0, 0.3];
        assert!((probiou(a, a) - 1.0).abs() < 1e-3, "{}", probiou(a, a));
        let near = probiou(a, [52.0, 50.0, 20.0, 10.0, 0.3]);
        let far = probiou(a, [80.0, 50.0, 20.0, 10.0, 0.3]);
        assert!(near > 0.7 && far < 0.05 && near > far, "{near} {far}");
        // A square turned by 90 degrees is the same square.
        let s = [10.0, 10.0, 8.0, 8.0, 0.0];
        assert!((probiou(s, [10.0, 10.0, 8.0, 8.0, std::f32::consts::FRAC_PI_2]) - 1.0).abs() < 1e-3);
    }

    #[test]
    fn a_box_suppressed_by_a_suppressed_box_is_still_dropped() {
        // Three boxes in a row, each overlapping the next: greedy NMS would keep the first and
        // the third; Ultralytics' fast NMS drops the third too, because the second overlaps it.
        let boxes = vec![
            rbox(50.0, 50.0, 20.0, 10.0, 0.0, 0.9, 0),
            rbox(53.0, 50.0, 20.0, 10.0, 0.0, 0.8, 0),
            rbox(56.0, 50.0, 20.0, 10.0, 0.0, 0.7, 0),
        ];
        let first_second = probiou([50.0, 50.0, 20.0, 10.0, 0.0], [53.0, 50.0, 20.0, 10.0, 0.0]);
        let first_third = probiou([50.0, 50.0, 20.0, 10.0, 0.0], [56.0, 50.0, 20.0, 10.0, 0.0]);
        let threshold = (first_second + first_third) / 2.0;
        assert!(first_third < threshold && threshold < first_second);
        let kept = nms_rotated(boxes, threshold, 300);
        assert_eq!(kept.iter().map(|b| b.score).collect::<Vec<_>>(), vec![0.9]);
    }

    #[test]
    fn classes_do_not_suppress_each_other_and_max_det_caps() {
        let boxes = vec![
            rbox(50.0, 50.0, 20.0, 10.0, 0.0, 0.9, 0),
            rbox(50.0, 50.0, 20.0, 10.0, 0.0, 0.8, 1),
            rbox(150.0, 50.0, 20.0, 10.0, 0.0, 0.7, 0),
        ];
        assert_eq!(nms_rotated(boxes.clone(), 0.7, 300).len(), 3);
        assert_eq!(nms_rotated(boxes, 0.7, 2).len(), 2);
    }
}
