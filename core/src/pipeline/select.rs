//! Answering a prompt with a model that knows no prompts: run it as usual (at a low
//! threshold, since the annotator has just said an object is there) and pick the instance the
//! prompt points at. This is FastSAM's method, and it works for any segmentation or detection
//! adapter without the adapter knowing.

use plugin_api::{BoxGeometry, Instance, Mask, ROption};

/// A prompt in original-image pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelPrompt {
    /// (x, y, positive).
    pub clicks: Vec<(f32, f32, bool)>,
    pub bbox: Option<BoxGeometry>,
}

/// Below this IoU of its box with the prompt's box an instance is not the object the box
/// means: the common threshold for "the same object" in detection benchmarks.
pub const MIN_BOX_IOU: f32 = 0.5;

/// The instance the prompt asks for, if any:
/// - an instance that contains a negative click is never chosen;
/// - an instance of a `preferred` class (the label the annotator chose) wins over any other
///   that fits the prompt: at a low threshold one object often has an instance of each of
///   two classes with nearly the same box;
/// - with clicks only, the instance containing the most positive clicks, then the highest score;
/// - with a box, among those containing the most positive clicks and whose box overlaps the
///   prompt's by at least [`MIN_BOX_IOU`], the best product of that IoU and the score: a sure
///   instance that fits well beats a doubtful one that fits a little better.
///
/// An instance "contains" a click by its mask where it has one, else by its box.
pub fn select(instances: &[Instance], prompt: &PixelPrompt, preferred: &[u32]) -> Option<usize> {
    let positives: Vec<(f32, f32)> = prompt.clicks.iter().filter(|c| c.2).map(|c| (c.0, c.1)).collect();
    let negatives: Vec<(f32, f32)> = prompt.clicks.iter().filter(|c| !c.2).map(|c| (c.0, c.1)).collect();
    let mut best: Option<(usize, (bool, usize, f32, f32))> = None;
    for (i, instance) in instances.iter().enumerate() {
        if negatives.iter().any(|&(x, y)| contains(instance, x, y)) {
            continue;
        }
        let hits = positives.iter().filter(|&&(x, y)| contains(instance, x, y)).count();
        let overlap = match &prompt.bbox {
            Some(b) => {
                let iou = instance.bbox.as_ref().into_option().map_or(0.0, |own| box_iou(own, b));
                if iou < MIN_BOX_IOU {
                    continue;
                }
                iou * instance.score
            }
            None => {
                if hits == 0 {
                    continue;
                }
                0.0
            }
        };
        let key = (preferred.contains(&instance.class_id), hits, overlap, instance.score);
        let better = match &best {
            None => true,
            Some((_, k)) => key > *k,
        };
        if better {
            best = Some((i, key));
        }
    }
    best.map(|(i, _)| i)
}

/// Whether an instance covers the point: its mask's pixel there, else its box.
pub fn contains(instance: &Instance, x: f32, y: f32) -> bool {
    match &instance.mask {
        ROption::RSome(mask) => mask_at(mask, x, y),
        ROption::RNone => instance.bbox.as_ref().into_option().is_some_and(|b| {
            let [x1, y1, x2, y2] = b.bounds();
            (x1..=x2).contains(&x) && (y1..=y2).contains(&y)
        }),
    }
}

/// The mask's pixel under a point (the pixel at column 3 spans 3.0 to 4.0).
fn mask_at(mask: &Mask, x: f32, y: f32) -> bool {
    if !(x >= 0.0 && y >= 0.0) {
        return false;
    }
    let (col, row) = (x.floor() as u64, y.floor() as u64);
    if col >= mask.width as u64 || row >= mask.height as u64 {
        return false;
    }
    let index = row * mask.width as u64 + col;
    let mut at = 0u64;
    for (i, &run) in mask.runs.iter().enumerate() {
        at += run as u64;
        if index < at {
            return i % 2 == 1;
        }
    }
    false
}

/// IoU of two boxes by their upright bounds.
pub fn box_iou(a: &BoxGeometry, b: &BoxGeometry) -> f32 {
    let [ax1, ay1, ax2, ay2] = a.bounds();
    let [bx1, by1, bx2, by2] = b.bounds();
    let w = (ax2.min(bx2) - ax1.max(bx1)).max(0.0);
    let h = (ay2.min(by2) - ay1.max(by1)).max(0.0);
    let inter = w * h;
    let union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugin_api::RVec;

    /// A square mask of `side` at (x, y) on a 20 x 20 image, with its box.
    fn square(x: u32, y: u32, side: u32, score: f32) -> Instance {
        let mut bits = vec![false; 400];
        for row in y..y + side {
            for col in x..x + side {
                bits[(row * 20 + col) as usize] = true;
            }
        }
        let runs = mask_geometry::runs_of_bits(&bits);
        Instance::new(0, score)
            .with_mask(Mask {
                width: 20,
                height: 20,
                runs: RVec::from(runs),
            })
            .with_box(BoxGeometry::from_corners(
                x as f32,
                y as f32,
                (x + side) as f32,
                (y + side) as f32,
            ))
    }

    fn clicks(clicks: &[(f32, f32, bool)]) -> PixelPrompt {
        PixelPrompt {
            clicks: clicks.to_vec(),
            bbox: None,
        }
    }

    #[test]
    fn a_click_picks_the_best_instance_under_it_and_a_negative_click_removes_it() {
        // A big weak square and a small strong one inside it.
        let instances = [square(2, 2, 12, 0.4), square(4, 4, 4, 0.9), square(15, 15, 4, 0.99)];
        assert_eq!(select(&instances, &clicks(&[(5.5, 5.5, true)]), &[]), Some(1));
        assert_eq!(select(&instances, &clicks(&[(12.5, 12.5, true)]), &[]), Some(0));
        // Overlapping squares: the stronger holds the click, a negative click on it alone takes
        // it away and leaves the other.
        let overlapping = [square(2, 2, 6, 0.5), square(5, 5, 6, 0.8)];
        assert_eq!(select(&overlapping, &clicks(&[(6.5, 6.5, true)]), &[]), Some(1));
        assert_eq!(
            select(&overlapping, &clicks(&[(6.5, 6.5, true), (10.0, 10.0, false)]), &[]),
            Some(0)
        );
        // Two clicks: the instance holding both wins over a stronger one holding one.
        assert_eq!(
            select(&instances, &clicks(&[(5.5, 5.5, true), (12.5, 3.0, true)]), &[]),
            Some(0)
        );
        // Off every object, or excluded everywhere: nothing, never a mask not asked for.
        assert_eq!(select(&instances, &clicks(&[(0.5, 19.5, true)]), &[]), None);
        assert_eq!(select(&instances, &clicks(&[(2.5, 2.5, false)]), &[]), None);
        assert_eq!(select(&instances, &clicks(&[(f32::NAN, 3.0, true)]), &[]), None);
    }

    #[test]
    fn a_box_picks_the_instance_whose_box_fits_it_best() {
        let instances = [square(2, 2, 12, 0.4), square(4, 4, 4, 0.9)];
        let near = |x1, y1, x2, y2| PixelPrompt {
            clicks: Vec::new(),
            bbox: Some(BoxGeometry::from_corners(x1, y1, x2, y2)),
        };
        assert_eq!(select(&instances, &near(2.5, 1.5, 14.0, 13.5), &[]), Some(0));
        assert_eq!(select(&instances, &near(3.8, 4.2, 8.3, 8.0), &[]), Some(1));
        assert_eq!(
            select(&instances, &near(15.0, 15.0, 19.0, 19.0), &[]),
            None,
            "no overlap: nothing"
        );
        // A box with a negative click inside the best fit takes the next.
        let mut with_click = near(3.8, 4.2, 8.3, 8.0);
        with_click.clicks.push((5.0, 5.0, false));
        assert_eq!(select(&instances, &with_click, &[]), None);
    }

    #[test]
    fn the_chosen_class_wins_over_a_stronger_instance_of_another() {
        let mut other = square(4, 4, 4, 0.9);
        other.class_id = 1;
        let instances = [square(4, 4, 4, 0.3), other];
        let prompt = clicks(&[(5.5, 5.5, true)]);
        assert_eq!(select(&instances, &prompt, &[]), Some(1));
        assert_eq!(select(&instances, &prompt, &[0]), Some(0));
        assert_eq!(
            select(&instances, &prompt, &[2]),
            Some(1),
            "no instance of the class: any class"
        );
    }

    #[test]
    fn without_a_mask_the_box_decides_containment() {
        let detection = Instance::new(0, 0.5).with_box(BoxGeometry::from_corners(1.0, 1.0, 5.0, 5.0));
        assert!(contains(&detection, 3.0, 3.0));
        assert!(!contains(&detection, 6.0, 3.0));
        assert!(contains(&square(4, 4, 4, 1.0), 7.99, 4.0));
        assert!(!contains(&square(4, 4, 4, 1.0), 8.0, 4.0));
    }
}
