//! Instance masks as Ultralytics 8.4 computes them (`process_mask` with `upsample=True`):
//! mask coefficients times prototypes at a quarter of the input size, bilinear upsampling to
//! the input size (PyTorch's `align_corners=False`), logit > 0, then everything outside the
//! box zeroed. The mask is then mapped back to the original image, undoing pad and gain.

use plugin_api::{Mask, PluginError, Point, RVec, TensorRef};
use yolov8_common::{Detection, Letterbox};

/// The prototype output `[1, channels, h, w]`, viewed without copying.
pub struct Protos<'a> {
    data: &'a [f32],
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl<'a> Protos<'a> {
    pub fn new(output: &TensorRef<'a>) -> Result<Self, PluginError> {
        let shape = output.shape();
        let (channels, height, width) = match shape {
            [1, c, h, w] | [c, h, w] if *c > 0 && *h > 0 && *w > 0 => (*c as usize, *h as usize, *w as usize),
            _ => {
                return Err(PluginError::unsupported(format!(
                    "output `{}` has shape {shape:?}; mask prototypes are [1, channels, height, width]",
                    output.name()
                )));
            }
        };
        let data = output.f32s()?;
        if data.len() != channels * height * width {
            return Err(PluginError::invalid_input(format!(
                "output `{}` holds {} values, but its shape {shape:?} needs {}",
                output.name(),
                data.len(),
                channels * height * width
            )));
        }
        Ok(Self {
            data,
            channels,
            height,
            width,
        })
    }
}

/// One output index of a bilinear upsampling: the two source indices and their weights.
#[derive(Debug, Clone, Copy)]
struct Tap {
    i0: usize,
    i1: usize,
    w0: f32,
    w1: f32,
}

/// PyTorch's source index for `align_corners=False` (`area_pixel_compute_source_index`),
/// in f32 as its CPU kernel computes it.
fn tap(dst: usize, scale: f32, src_len: usize) -> Tap {
    let src = (scale * (dst as f32 + 0.5) - 0.5).max(0.0);
    let i0 = (src as usize).min(src_len - 1);
    let i1 = if i0 < src_len - 1 { i0 + 1 } else { i0 };
    let w1 = src - i0 as f32;
    Tap {
        i0,
        i1,
        w0: 1.0 - w1,
        w1,
    }
}

/// The instance mask at the model's input size, kept only inside the box: rows
/// `top..top + height`, columns `left..left + width`.
#[derive(Debug, Clone, PartialEq)]
pub struct InputMask {
    pub left: usize,
    pub top: usize,
    pub width: usize,
    pub height: usize,
    pub bits: Vec<bool>,
}

impl InputMask {
    pub fn is_empty(&self) -> bool {
        !self.bits.iter().any(|b| *b)
    }

    pub fn count(&self) -> usize {
        self.bits.iter().filter(|b| **b).count()
    }

    pub fn get(&self, row: usize, col: usize) -> bool {
        row >= self.top
            && col >= self.left
            && row < self.top + self.height
            && col < self.left + self.width
            && self.bits[(row - self.top) * self.width + (col - self.left)]
    }
}

/// The range of input indices `i` with `lo <= i < hi` (Ultralytics' `crop_mask`).
fn crop_range(lo: f32, hi: f32, len: usize) -> (usize, usize) {
    if lo.is_nan() || hi.is_nan() {
        return (0, 0);
    }
    let start = lo.ceil().clamp(0.0, len as f32) as usize;
    let end = hi.ceil().clamp(0.0, len as f32) as usize;
    (start, end.max(start))
}

/// Computes one instance's mask at the input size (`in_w` x `in_h`).
pub fn input_mask(protos: &Protos<'_>, coeffs: &[f32], det: &Detection, in_w: usize, in_h: usize) -> InputMask {
    let (left, right) = crop_range(det.x1, det.x2, in_w);
    let (top, bottom) = crop_range(det.y1, det.y2, in_h);
    let (width, height) = (right - left, bottom - top);
    let mut mask = InputMask {
        left,
        top,
        width,
        height,
        bits: vec![false; width * height],
    };
    if width == 0 || height == 0 {
        return mask;
    }
    let scale_x = protos.width as f32 / in_w as f32;
    let scale_y = protos.height as f32 / in_h as f32;
    let cols: Vec<Tap> = (left..right).map(|c| tap(c, scale_x, protos.width)).collect();
    let rows: Vec<Tap> = (top..bottom).map(|r| tap(r, scale_y, protos.height)).collect();

    // Only the prototype window the box's pixels read from.
    let (px0, px1) = (cols[0].i0, cols[cols.len() - 1].i1 + 1);
    let (py0, py1) = (rows[0].i0, rows[rows.len() - 1].i1 + 1);
    let (ww, wh) = (px1 - px0, py1 - py0);
    let mut logits = vec![0f32; ww * wh];
    let plane = protos.height * protos.width;
    for (k, &coeff) in coeffs.iter().enumerate().take(protos.channels) {
        let proto = &protos.data[k * plane..(k + 1) * plane];
        for y in 0..wh {
            let src = &proto[(py0 + y) * protos.width + px0..][..ww];
            let dst = &mut logits[y * ww..][..ww];
            for (d, s) in dst.iter_mut().zip(src) {
                *d += coeff * s;
            }
        }
    }
    let at = |y: usize, x: usize| logits[(y - py0) * ww + (x - px0)];
    for (r, ty) in rows.iter().enumerate() {
        let out = &mut mask.bits[r * width..][..width];
        for (bit, tx) in out.iter_mut().zip(&cols) {
            let v = ty.w0 * (tx.w0 * at(ty.i0, tx.i0) + tx.w1 * at(ty.i0, tx.i1))
                + ty.w1 * (tx.w0 * at(ty.i1, tx.i0) + tx.w1 * at(ty.i1, tx.i1));
            *bit = v > 0.0;
        }
    }
    mask
}

/// For each original pixel index along one axis, the input index it shows: the input pixel
/// under the original pixel's centre, inside the letterboxed image.
fn axis_map(len: usize, gain: f64, pad: u32, new_len: u32) -> Vec<usize> {
    let last = pad as usize + new_len.max(1) as usize - 1;
    (0..len)
        .map(|i| (pad as usize + ((i as f64 + 0.5) * gain).floor() as usize).min(last))
        .collect()
}

/// The mask in original-image pixels, run-length encoded (background first).
pub fn to_original(mask: &InputMask, letterbox: &Letterbox) -> Mask {
    let (w, h) = (letterbox.src_w as usize, letterbox.src_h as usize);
    let xs = axis_map(w, letterbox.gain_x, letterbox.pad_left, letterbox.new_w);
    let ys = axis_map(h, letterbox.gain_y, letterbox.pad_top, letterbox.new_h);
    let mut runs = Runs::default();
    // Columns whose input index falls in the mask's columns form one contiguous range.
    let first = xs.partition_point(|&ix| ix < mask.left);
    let last = xs.partition_point(|&ix| ix < mask.left + mask.width);
    for &iy in &ys {
        if iy < mask.top || iy >= mask.top + mask.height {
            runs.push(false, w);
            continue;
        }
        runs.push(false, first);
        let row = &mask.bits[(iy - mask.top) * mask.width..][..mask.width];
        for &ix in &xs[first..last] {
            runs.push(row[ix - mask.left], 1);
        }
        runs.push(false, w - last);
    }
    Mask {
        width: w as u32,
        height: h as u32,
        runs: runs.finish(),
    }
}

/// A piece of a mask smaller than this share of its largest piece gets no outline of its own:
/// specks are noise to a COCO or YOLO export, while a real second piece (an object split by
/// an occluder) is kept.
pub const MIN_PIECE_SHARE: f64 = 0.01;

/// The outlines of the mask's pieces as Ultralytics' `masks.xy` traces them (through boundary
/// pixels at the input size, then mapped to original-image pixels with the boxes' pad and
/// gain and clipped to the image), one per piece of at least `MIN_PIECE_SHARE` of the
/// largest (and 2 pixels), largest first. Ultralytics joins the pieces into one outline with
/// zero-width bridges; Label Studio gets one polygon per piece instead.
pub fn outlines(mask: &InputMask, letterbox: &Letterbox) -> Vec<RVec<Point>> {
    let pieces = mask_geometry::outlines_of_bits(mask.width, mask.height, &mask.bits, 2);
    let Some(largest) = pieces.first().map(|p| polygon_pixels(p)) else {
        return Vec::new();
    };
    let (w, h) = (letterbox.src_w as f64, letterbox.src_h as f64);
    pieces
        .into_iter()
        .enumerate()
        .filter(|(i, p)| *i == 0 || polygon_pixels(p) >= MIN_PIECE_SHARE * largest)
        .map(|(_, points)| {
            points
                .into_iter()
                .map(|(x, y)| Point {
                    x: (((mask.left as i32 + x) as f64 - letterbox.pad_left as f64) / letterbox.gain_x).clamp(0.0, w)
                        as f32,
                    y: (((mask.top as i32 + y) as f64 - letterbox.pad_top as f64) / letterbox.gain_y).clamp(0.0, h)
                        as f32,
                })
                .collect()
        })
        .collect()
}

/// The area a traced outline encloses, with its boundary pixels (so a single pixel counts 1).
fn polygon_pixels(points: &[(i32, i32)]) -> f64 {
    let f: Vec<(f64, f64)> = points.iter().map(|&(x, y)| (x as f64, y as f64)).collect();
    mask_geometry::area(&f) + points.len() as f64 / 2.0 + 1.0
}

/// Builds alternating background/foreground run lengths, background first.
#[derive(Default)]
struct Runs {
    runs: Vec<u32>,
    current: bool,
    length: u32,
}

impl Runs {
    fn push(&mut self, value: bool, count: usize) {
        if count == 0 {
            return;
        }
        if value != self.current {
            self.runs.push(self.length);
            self.current = value;
            self.length = 0;
        }
        self.length += count as u32;
    }

    fn finish(mut self) -> RVec<u32> {
        self.runs.push(self.length);
        self.runs.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_follow_pytorch_half_pixel_centres() {
        // 80 -> 320: output 0 and 1 read input 0 only (clamped), output 2 sits between 0 and 1.
        let t = tap(0, 0.25, 80);
        assert_eq!((t.i0, t.i1, t.w1), (0, 1, 0.0));
        let t = tap(2, 0.25, 80);
        assert_eq!((t.i0, t.i1, t.w0, t.w1), (0, 1, 0.875, 0.125));
        let t = tap(319, 0.25, 80);
        assert_eq!((t.i0, t.i1), (79, 79), "the last pixel clamps");
    }

    #[test]
    fn crop_keeps_indices_inside_the_box() {
        assert_eq!(crop_range(1.2, 4.0, 10), (2, 4));
        assert_eq!(crop_range(-3.0, 2.5, 10), (0, 3));
        assert_eq!(crop_range(8.0, 30.0, 10), (8, 10));
        assert_eq!(crop_range(5.0, 2.0, 10), (5, 5));
        assert_eq!(crop_range(f32::NAN, 2.0, 10), (0, 0));
    }

    #[test]
    fn runs_alternate_from_background() {
        let mut r = Runs::default();
        r.push(true, 2);
        r.push(true, 1);
        r.push(false, 4);
        r.push(true, 0);
        assert_eq!(r.finish().to_vec(), vec![0, 3, 4]);
        let mut r = Runs::default();
        r.push(false, 5);
        assert_eq!(r.finish().to_vec(), vec![5]);
    }

    #[test]
    fn maps_back_through_pad_and_gain() {
        // A 4x2 image letterboxed into 8x8: scale 2, 4 rows of padding at the top... plan it.
        let lb = Letterbox::plan(4, 2, 8, 8).expect("plan");
        assert_eq!((lb.new_w, lb.new_h, lb.pad_left, lb.pad_top), (8, 4, 0, 2));
        // Input pixels (row 2..4, cols 0..2) set: the original's top-left pixel.
        let mask = InputMask {
            left: 0,
            top: 2,
            width: 2,
            height: 2,
            bits: vec![true; 4],
        };
        let m = to_original(&mask, &lb);
        assert_eq!((m.width, m.height), (4, 2));
        assert_eq!(m.runs.to_vec(), vec![0, 1, 7]);
    }
}
