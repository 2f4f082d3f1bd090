//! Bilinear resize of RGB8 images that reproduces OpenCV's `cv::resize(..., INTER_LINEAR)`
//! bit for bit on x86: half-pixel centres, no antialiasing when shrinking, 11-bit fixed-point
//! weights, and the two rounding schemes of its vectorised and scalar vertical pass.
//! Ultralytics letterboxes with exactly this call, so matching it keeps our input tensors,
//! and with them the model's outputs, identical to the reference.

const COEF_BITS: u32 = 11;
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;
const CHANNELS: usize = 3;

/// Resizes a tightly packed RGB8 image (`src_w * src_h * 3` bytes) to `dst_w` x `dst_h`.
pub fn resize_linear(src: &[u8], src_w: usize, src_h: usize, dst_w: usize, dst_h: usize) -> Vec<u8> {
    debug_assert_eq!(src.len(), src_w * src_h * CHANNELS);
    if src_w == dst_w && src_h == dst_h {
        return src.to_vec();
    }
    let scale_x = 1.0 / (dst_w as f64 / src_w as f64);
    let scale_y = 1.0 / (dst_h as f64 / src_h as f64);
    // OpenCV switches INTER_LINEAR to its fast area path for an exact 2x reduction.
    if is_exact_half(scale_x) && is_exact_half(scale_y) {
        return halve(src, src_w, dst_w, dst_h);
    }
    let xs = axis_taps(src_w, dst_w, scale_x, true);
    let ys = axis_taps(src_h, dst_h, scale_y, false);
    let clamp_row = |y: i64| y.clamp(0, src_h as i64 - 1) as usize;

    let row_len = dst_w * CHANNELS;
    let mut dst = vec![0u8; row_len * dst_h];
    // Horizontally filtered source rows, cached because neighbouring output rows share them.
    let mut rows: [(usize, Vec<i32>); 2] = [(usize::MAX, vec![0; row_len]), (usize::MAX, vec![0; row_len])];
    for (dy, tap) in ys.iter().enumerate() {
        let y0 = clamp_row(tap.index);
        let y1 = clamp_row(tap.index + 1);
        if rows[0].0 != y0 && rows[1].0 == y0 {
            rows.swap(0, 1);
        }
        for (slot, y) in [(0, y0), (1, y1)] {
            if rows[slot].0 != y {
                filter_row(
                    &src[y * src_w * CHANNELS..(y + 1) * src_w * CHANNELS],
                    &xs,
                    &mut rows[slot].1,
                );
                rows[slot].0 = y;
            }
        }
        vertical(
            &rows[0].1,
            &rows[1].1,
            tap.w0,
            tap.w1,
            &mut dst[dy * row_len..(dy + 1) * row_len],
        );
    }
    dst
}

fn is_exact_half(scale: f64) -> bool {
    (scale - 2.0).abs() < f64::EPSILON
}

#[derive(Debug, Clone, Copy)]
struct Tap {
    index: i64,
    w0: i32,
    w1: i32,
}

/// Source index and fixed-point weights per output position. Columns are clamped to the image
/// here; rows are not, because OpenCV keeps a row's weights and clamps the row index on read,
/// which rounds differently from moving the weight.
fn axis_taps(src_len: usize, dst_len: usize, scale: f64, columns: bool) -> Vec<Tap> {
    (0..dst_len)
        .map(|d| {
            let mut f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            f -= s as f32;
            if columns && s < 0 {
                f = 0.0;
                s = 0;
            }
            if columns && s >= src_len as i64 - 1 {
                f = 0.0;
                s = src_len as i64 - 1;
            }
            Tap {
                index: s,
                w0: ((1.0 - f) * COEF_SCALE).round_ties_even() as i32,
                w1: (f * COEF_SCALE).round_ties_even() as i32,
            }
        })
        .collect()
}

fn filter_row(src: &[u8], xs: &[Tap], out: &mut [i32]) {
    let src_w = src.len() / CHANNELS;
    // Slices of known length per pixel let the compiler drop the per-value bounds checks.
    for (o, tap) in out.chunks_exact_mut(CHANNELS).zip(xs) {
        let index = tap.index as usize;
        let s0 = index * CHANNELS;
        if index + 1 < src_w {
            let px = &src[s0..s0 + 2 * CHANNELS];
            for c in 0..CHANNELS {
                o[c] = px[c] as i32 * tap.w0 + px[c + CHANNELS] as i32 * tap.w1;
            }
        } else {
            let px = &src[s0..s0 + CHANNELS];
            for c in 0..CHANNELS {
                o[c] = px[c] as i32 * (1 << COEF_BITS);
            }
        }
    }
}

/// OpenCV's vertical pass: SIMD lanes (16, then 8 values at a time) drop 4 bits before a
/// 16-bit high multiply and round at the end; the scalar tail rounds the exact product.
fn vertical(r0: &[i32], r1: &[i32], b0: i32, b1: i32, out: &mut [u8]) {
    let width = out.len();
    let mut simd_end = 0usize;
    while simd_end + 16 <= width {
        simd_end += 16;
    }
    while simd_end + 8 < width {
        simd_end += 8;
    }
    let (head, tail) = out.split_at_mut(simd_end);
    for ((o, &a), &b) in head.iter_mut().zip(&r0[..simd_end]).zip(&r1[..simd_end]) {
        let a = mul_hi(sat16(a >> 4), b0);
        let b = mul_hi(sat16(b >> 4), b1);
        let sum = (a + b).clamp(i16::MIN as i32, i16::MAX as i32);
        let v = ((sum + 2).min(i16::MAX as i32)) >> 2;
        *o = v.clamp(0, 255) as u8;
    }
    for ((o, &a), &b) in tail.iter_mut().zip(&r0[simd_end..width]).zip(&r1[simd_end..width]) {
        let v = (a as i64 * b0 as i64 + b as i64 * b1 as i64 + (1 << 21)) >> 22;
        *o = v.clamp(0, 255) as u8;
    }
}

fn sat16(v: i32) -> i32 {
    v.clamp(i16::MIN as i32, i16::MAX as i32)
}

fn mul_hi(a: i32, b: i32) -> i32 {
    (a * b) >> 16
}

fn halve(src: &[u8], src_w: usize, dst_w: usize, dst_h: usize) -> Vec<u8> {
    let mut dst = vec![0u8; dst_w * dst_h * CHANNELS];
    let stride = src_w * CHANNELS;
    for y in 0..dst_h {
        let top = &src[2 * y * stride..];
        let bottom = &src[(2 * y + 1) * stride..];
        for x in 0..dst_w {
            for c in 0..CHANNELS {
                let i = 2 * x * CHANNELS + c;
                let sum = top[i] as u32 + top[i + CHANNELS] as u32 + bottom[i] as u32 + bottom[i + CHANNELS] as u32;
                dst[(y * dst_w + x) * CHANNELS + c] = ((sum + 2) >> 2) as u8;
            }
        }
    }
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: usize, h: usize) -> Vec<u8> {
        (0..w * h * 3).map(|i| ((i * 7 + i / 3 * 13) % 256) as u8).collect()
    }

    #[test]
    fn same_size_is_a_copy() {
        let img = gradient(5, 4);
        assert_eq!(resize_linear(&img, 5, 4, 5, 4), img);
    }

    #[test]
    fn constant_image_stays_constant() {
        let img = vec![77u8; 13 * 9 * 3];
        for (w, h) in [(7, 5), (26, 18), (13, 4), (3, 20)] {
            let out = resize_linear(&img, 13, 9, w, h);
            assert_eq!(out.len(), w * h * 3);
            assert!(out.iter().all(|&v| v == 77), "{w}x{h}");
        }
    }

    #[test]
    fn exact_half_averages_blocks_with_rounding() {
        // One channel shown: the 2x2 block 10, 11, 12, 14 averages to 11.75 -> 12.
        let mut img = vec![0u8; 4 * 2 * 3];
        for (i, v) in [10u8, 11, 0, 0, 12, 14, 0, 0].iter().enumerate() {
            img[i * 3] = *v;
        }
        let out = resize_linear(&img, 4, 2, 2, 1);
        assert_eq!(out[0], 12);
        assert_eq!(out[3], 0);
    }

    #[test]
    fn upscaling_interpolates_between_neighbours() {
        // 2 pixels -> 4: half-pixel centres put outputs at source x = -0.25, 0.25, 0.75, 1.25.
        let img = [0u8, 0, 0, 200, 200, 200];
        let out = resize_linear(&img, 2, 1, 4, 1);
        let red: Vec<u8> = out.iter().step_by(3).copied().collect();
        assert_eq!(red, vec![0, 50, 150, 200]);
    }

    #[test]
    fn shrinking_samples_without_antialiasing() {
        // 3x reduction: each output pixel is the centre source pixel, not a box average.
        let img: Vec<u8> = [0u8, 90, 0, 0, 180, 0].iter().flat_map(|&v| [v, v, v]).collect();
        let out = resize_linear(&img, 6, 1, 2, 1);
        assert_eq!(out[0], 90);
        assert_eq!(out[3], 180);
    }
}
