//! Pillow's bilinear resize of 8-bit images, bit for bit: a separable convolution with the
//! triangle filter widened by the downscale factor (so shrinking is antialiased), 22-bit
//! fixed-point weights, rounding and clamping after each pass, horizontal pass first. This is
//! what torchvision's `Resize` does to a PIL image (Ultralytics' classifiers, and
//! segment-anything's `ResizeLongestSide`).

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// For each output index, the first input index and the fixed-point weights.
fn coefficients(in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale; // the bilinear filter's support is 1
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = (((center + support + 0.5) as i64) as usize).min(in_size) - xmin;
            let weights: Vec<f64> = (0..xmax)
                .map(|x| {
                    let t = ((x + xmin) as f64 - center + 0.5) * ss;
                    let t = t.abs();
                    if t < 1.0 { 1.0 - t } else { 0.0 }
                })
                .collect();
            let total: f64 = weights.iter().sum();
            let fixed = weights
                .iter()
                .map(|w| {
                    let w = if total != 0.0 { w / total } else { *w };
                    let scaled = w * (1u32 << PRECISION_BITS) as f64;
                    (if w < 0.0 { scaled - 0.5 } else { scaled + 0.5 }) as i32
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(v: i32) -> u8 {
    if v >= (1 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// Resizes an RGB8 image (`w` x `h`) to `out_w` x `out_h`.
pub fn resize_bilinear(src: &[u8], w: usize, h: usize, out_w: usize, out_h: usize) -> Vec<u8> {
    let horizontal = if out_w != w {
        let coeffs = coefficients(w, out_w);
        let mut out = vec![0u8; out_w * h * 3];
        for (row, out_row) in src.chunks_exact(w * 3).zip(out.chunks_exact_mut(out_w * 3)) {
            for ((xmin, k), px) in coeffs.iter().zip(out_row.chunks_exact_mut(3)) {
                let mut ss = [1i32 << (PRECISION_BITS - 1); 3];
                let window = &row[xmin * 3..(xmin + k.len()) * 3];
                for (input, weight) in window.chunks_exact(3).zip(k) {
                    ss[0] += input[0] as i32 * weight;
                    ss[1] += input[1] as i32 * weight;
                    ss[2] += input[2] as i32 * weight;
                }
                px[0] = clip8(ss[0]);
                px[1] = clip8(ss[1]);
                px[2] = clip8(ss[2]);
            }
        }
        out
    } else {
        src.to_vec()
    };
    if out_h == h {
        return horizontal;
    }
    // Row by row: each output row is a weighted sum of whole input rows, which vectorises.
    let coeffs = coefficients(h, out_h);
    let stride = out_w * 3;
    let mut out = vec![0u8; stride * out_h];
    let mut sums = vec![0i32; stride];
    for ((ymin, k), out_row) in coeffs.iter().zip(out.chunks_exact_mut(stride)) {
        sums.fill(1i32 << (PRECISION_BITS - 1));
        for (y, weight) in k.iter().enumerate() {
            let row = &horizontal[(ymin + y) * stride..(ymin + y + 1) * stride];
            for (sum, &v) in sums.iter_mut().zip(row) {
                *sum += v as i32 * weight;
            }
        }
        for (o, &sum) in out_row.iter_mut().zip(&sums) {
            *o = clip8(sum);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_a_copy_and_flat_stays_flat() {
        let src: Vec<u8> = (0..4 * 3 * 3).map(|i| i as u8).collect();
        assert_eq!(resize_bilinear(&src, 4, 3, 4, 3), src);
        let flat = vec![77u8; 10 * 6 * 3];
        assert!(resize_bilinear(&flat, 10, 6, 3, 2).iter().all(|v| *v == 77));
        assert!(resize_bilinear(&flat, 10, 6, 25, 13).iter().all(|v| *v == 77));
    }

    #[test]
    fn halving_averages_pairs_with_the_wide_filter() {
        // 4 -> 2 in one row: the filter is two input pixels wide on each side, cut at the edges.
        let src: Vec<u8> = [0u8, 100, 200, 250].iter().flat_map(|v| [*v, *v, *v]).collect();
        let out = resize_bilinear(&src, 4, 1, 2, 1);
        // What Pillow 12 gives for this row (checked with PIL.Image.resize(BILINEAR)).
        assert_eq!((out[0], out[3]), (71, 207));
    }
}
