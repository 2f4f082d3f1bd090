//! segment-anything's `SamPredictor` recipe, step by step: `ResizeLongestSide` for the image
//! and the prompt coordinates, `Sam.preprocess` (normalise, pad bottom and right), and the
//! prompt layout of its ONNX decoder export.

use plugin_api::sdk::resize_bilinear;

/// SAM's pixel mean and standard deviation, on 0..255 values.
pub const PIXEL_MEAN: [f32; 3] = [123.675, 116.28, 103.53];
pub const PIXEL_STD: [f32; 3] = [58.395, 57.12, 57.375];

/// Point labels of the decoder: 1 on the object, 0 off it, 2 and 3 a box's corners, -1 the
/// padding point a prompt without a box gets.
pub const POSITIVE: f32 = 1.0;
pub const NEGATIVE: f32 = 0.0;
pub const BOX_TOP_LEFT: f32 = 2.0;
pub const BOX_BOTTOM_RIGHT: f32 = 3.0;
pub const PADDING: f32 = -1.0;

/// `ResizeLongestSide.get_preprocess_shape`: (height, width) with the longest side `target`,
/// each rounded half up.
pub fn preprocess_shape(height: usize, width: usize, target: usize) -> (usize, usize) {
    let scale = target as f64 / height.max(width).max(1) as f64;
    let h = (height as f64 * scale + 0.5) as usize;
    let w = (width as f64 * scale + 0.5) as usize;
    (h.max(1), w.max(1))
}

/// Where original-image coordinates land in the resized image (`apply_coords`): each axis
/// by its own ratio, in f64 as numpy does, then f32 as the model takes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transform {
    pub sx: f64,
    pub sy: f64,
}

impl Transform {
    pub fn new(height: usize, width: usize, target: usize) -> Self {
        let (h, w) = preprocess_shape(height, width, target);
        Transform {
            sx: w as f64 / width.max(1) as f64,
            sy: h as f64 / height.max(1) as f64,
        }
    }

    pub fn apply(&self, x: f32, y: f32) -> [f32; 2] {
        [(x as f64 * self.sx) as f32, (y as f64 * self.sy) as f32]
    }
}

/// The encoder's input: the image resized (Pillow's bilinear, as torchvision resizes the PIL
/// image), normalised, and zero-padded at the bottom and right to `target` x `target`, as
/// planar f32 `[3, target, target]` written into `planes`.
pub fn encoder_input(pixels: &[u8], width: usize, height: usize, target: usize, planes: &mut [f32]) {
    let (h, w) = preprocess_shape(height, width, target);
    let resized = resize_bilinear(pixels, width, height, w, h);
    let plane = target * target;
    planes.fill(0.0);
    for y in 0..h.min(target) {
        for x in 0..w.min(target) {
            let at = (y * w + x) * 3;
            for c in 0..3 {
                planes[c * plane + y * target + x] = (resized[at + c] as f32 - PIXEL_MEAN[c]) / PIXEL_STD[c];
            }
        }
    }
}

/// The decoder's `point_coords` and `point_labels` for clicks (x, y, positive) and a box
/// (x1, y1, x2, y2), all in original-image pixels: the clicks, then the box's two corners;
/// without a box, the padding point (0, 0) last, as `SamPredictor` embeds them.
pub fn prompt_points(
    clicks: &[(f32, f32, bool)],
    bbox: Option<[f32; 4]>,
    transform: Transform,
) -> (Vec<f32>, Vec<f32>) {
    let mut coords = Vec::with_capacity(2 * (clicks.len() + 2));
    let mut labels = Vec::with_capacity(clicks.len() + 2);
    for &(x, y, positive) in clicks {
        coords.extend(transform.apply(x, y));
        labels.push(if positive { POSITIVE } else { NEGATIVE });
    }
    match bbox {
        Some([x1, y1, x2, y2]) => {
            coords.extend(transform.apply(x1, y1));
            coords.extend(transform.apply(x2, y2));
            labels.extend([BOX_TOP_LEFT, BOX_BOTTOM_RIGHT]);
        }
        None => {
            coords.extend([0.0, 0.0]);
            labels.push(PADDING);
        }
    }
    (coords, labels)
}

/// Which of the decoder's masks to answer with: with several (the multimask output, whose
/// first is the single-mask token), the best scored of the rest, as
/// `SamPredictor.predict(multimask_output=True)` then picking the best `iou_predictions`;
/// with one, that one.
pub fn best_mask(scores: &[f32]) -> Option<usize> {
    let candidates = if scores.len() > 1 {
        1..scores.len()
    } else {
        0..scores.len()
    };
    candidates.max_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(b.cmp(&a)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_side_becomes_the_target_rounded_half_up() {
        assert_eq!(preprocess_shape(480, 640, 1024), (768, 1024));
        assert_eq!(preprocess_shape(640, 360, 1024), (1024, 576));
        // 389 * 1024 / 517 = 770.48...
        assert_eq!(preprocess_shape(389, 517, 1024), (770, 1024));
        let t = Transform::new(389, 517, 1024);
        assert_eq!(t.apply(517.0, 389.0), [1024.0, 770.0]);
    }

    #[test]
    fn points_come_first_then_the_box_or_the_padding_point() {
        let t = Transform { sx: 2.0, sy: 0.5 };
        let (coords, labels) = prompt_points(&[(1.0, 4.0, true), (3.0, 8.0, false)], None, t);
        assert_eq!(coords, [2.0, 2.0, 6.0, 4.0, 0.0, 0.0]);
        assert_eq!(labels, [1.0, 0.0, -1.0]);
        let (coords, labels) = prompt_points(&[], Some([1.0, 2.0, 3.0, 4.0]), t);
        assert_eq!(coords, [2.0, 1.0, 6.0, 2.0]);
        assert_eq!(labels, [2.0, 3.0]);
    }

    #[test]
    fn the_single_mask_token_is_skipped_when_there_are_several() {
        assert_eq!(best_mask(&[0.99, 0.2, 0.7, 0.5]), Some(2));
        assert_eq!(best_mask(&[0.3]), Some(0));
        assert_eq!(best_mask(&[]), None);
    }

    #[test]
    fn padding_is_zero_after_normalising() {
        // A 2 x 1 white image into a 4 x 4 input: the resized image is 4 x 2.
        let pixels = [255u8; 6];
        let mut planes = vec![9.0f32; 3 * 16];
        encoder_input(&pixels, 2, 1, 4, &mut planes);
        let white = (255.0 - PIXEL_MEAN[0]) / PIXEL_STD[0];
        assert_eq!(planes[0], white);
        assert_eq!(planes[4 + 3], white, "row 1 is inside the resized image");
        assert_eq!(planes[8], 0.0, "row 2 is padding");
    }
}
