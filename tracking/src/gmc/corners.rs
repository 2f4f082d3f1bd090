//! Shi-Tomasi corners: `cv2.goodFeaturesToTrack` as Ultralytics calls it (`maxCorners=400`,
//! `qualityLevel=0.01`, `minDistance=0`, `blockSize=3`, no Harris), with `cornerMinEigenVal`'s
//! float arithmetic reproduced step by step so that the same pixels rank the same corners.

use super::gray::GrayImage;
use super::{Point, reflect101};

const MAX_CORNERS: usize = 400;
const QUALITY_LEVEL: f64 = 0.01;

/// The strongest corners, strongest first, at whole-pixel positions; empty where there are none.
pub(crate) fn good_features_to_track(img: &GrayImage) -> Vec<Point> {
    let (w, h) = (img.width, img.height);
    let mut eig = min_eigen_val(img);
    let max = eig.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    // cv::threshold(THRESH_TOZERO) takes the threshold as f32 and keeps only what is above it.
    let thresh = (f64::from(max) * QUALITY_LEVEL) as f32;
    for v in &mut eig {
        *v = if *v > thresh { *v } else { 0.0 };
    }

    // Local maxima of the 3x3 dilation (plateaus keep every pixel), off the one-pixel border:
    // the maximum of each horizontal triple first, then of three rows of those.
    let mut candidates: Vec<(f32, usize)> = Vec::new();
    let row_max = |y: usize| -> Vec<f32> {
        let row = &eig[y * w..(y + 1) * w];
        row.windows(3).map(|t| t[0].max(t[1]).max(t[2])).collect()
    };
    if h >= 3 && w >= 3 {
        let (mut up, mut mid) = (row_max(0), row_max(1));
        for y in 1..h - 1 {
            let down = row_max(y + 1);
            let row = &eig[y * w + 1..(y + 1) * w - 1];
            for (x, &v) in row.iter().enumerate() {
                if v != 0.0 && v >= up[x].max(mid[x]).max(down[x]) {
                    candidates.push((v, y * w + x + 1));
                }
            }
            (up, mid) = (mid, down);
        }
    }
    // OpenCV sorts pointers into the map, breaking ties by the larger address: equal responses
    // come later pixel first. That is a total order, so the strongest few can be picked first.
    let order = |a: &(f32, usize), b: &(f32, usize)| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1));
    if candidates.len() > MAX_CORNERS {
        candidates.select_nth_unstable_by(MAX_CORNERS, order);
        candidates.truncate(MAX_CORNERS);
    }
    candidates.sort_unstable_by(order);
    candidates
        .into_iter()
        .map(|(_, i)| [(i % w) as f32, (i / w) as f32])
        .collect()
}

/// `cv2.cornerMinEigenVal(img, blockSize=3, ksize=3)` with its default `BORDER_REFLECT_101`.
///
/// The Sobel derivatives are scaled by `1 / (4 * 3 * 255)` and rounded in `f32` as OpenCV's
/// separable filter does on a machine with AVX2 (as the reference's): its vector kernels use
/// fused multiply-adds, the scalar tail of each row pass does not. An `f64` product plus one
/// addend is exact at these magnitudes, so rounding it once to `f32` is the fused result. The
/// box filter's `f64` sums are done in OpenCV's order too: 3-sums along rows, then running sums
/// down the columns (which add the entering row and subtract the leaving one, so they round).
pub(crate) fn min_eigen_val(img: &GrayImage) -> Vec<f32> {
    let (w, h) = (img.width, img.height);
    let scale = 1.0 / (4.0 * 3.0 * 255.0);
    let k1 = scale as f32;
    let k2 = (2.0 * scale) as f32;
    // The vector row kernel makes 32 outputs a step.
    let simd_end = w / 32 * 32;

    // Row passes (the difference for d/dx, the smoothing for d/dy) for the rows -1..=h
    // (reflected), so that the column passes need no border.
    let rows = h + 2;
    let mut diff_x = vec![0f32; rows * w];
    let mut smooth_x = vec![0f32; rows * w];
    let mut padded = vec![0f32; w + 2];
    for r in 0..rows {
        let row = &img.data[reflect101(r as isize - 1, h) * w..][..w];
        for (p, &v) in padded[1..=w].iter_mut().zip(row) {
            *p = f32::from(v);
        }
        padded[0] = padded[reflect101(-1, w) + 1];
        padded[w + 1] = padded[reflect101(w as isize, w) + 1];
        let (l, c, rt) = (&padded[..w], &padded[1..w + 1], &padded[2..]);
        for (d, (l, rt)) in diff_x[r * w..(r + 1) * w].iter_mut().zip(l.iter().zip(rt)) {
            *d = rt - l;
        }
        let smooth = &mut smooth_x[r * w..(r + 1) * w];
        for (x, s) in smooth.iter_mut().enumerate() {
            *s = if x < simd_end {
                fma(rt[x], k1, fma(c[x], k2, l[x] * k1))
            } else {
                l[x] * k1 + c[x] * k2 + rt[x] * k1
            };
        }
    }

    // The products dx*dx, dx*dy, dy*dy of image row `y`, summed over 3 columns (reflected).
    let new_row = |len: usize| [vec![0f64; len], vec![0f64; len], vec![0f64; len]];
    let mut products = new_row(w + 2);
    let mut row_sums = |y: usize, out: &mut [Vec<f64>; 3]| {
        let (up, mid, down) = (&diff_x[y * w..], &diff_x[(y + 1) * w..], &diff_x[(y + 2) * w..]);
        let (s_up, s_down) = (&smooth_x[y * w..], &smooth_x[(y + 2) * w..]);
        for x in 0..w {
            let dx = fma(up[x] + down[x], k1, mid[x] * k2);
            let dy = s_down[x] - s_up[x];
            products[0][x + 1] = f64::from(dx * dx);
            products[1][x + 1] = f64::from(dx * dy);
            products[2][x + 1] = f64::from(dy * dy);
        }
        let (l, r) = (reflect101(-1, w) + 1, reflect101(w as isize, w) + 1);
        for (dst, src) in out.iter_mut().zip(&mut products) {
            src[0] = src[l];
            src[w + 1] = src[r];
            for (d, s) in dst.iter_mut().zip(src.windows(3)) {
                *d = s[0] + s[1] + s[2];
            }
        }
    };

    // The running column sums need the rows of 3-sums above and below each row: they are made
    // as the sums reach them, the last three kept (reflection only ever looks back).
    let slot = |r: isize| reflect101(r, h) % 3;
    let mut ring = vec![new_row(w); 3.min(h)];
    for (y, out) in ring.iter_mut().enumerate().take(2) {
        row_sums(y, out);
    }
    let mut sums = new_row(w);
    for (k, sum) in sums.iter_mut().enumerate() {
        let (above, first) = (&ring[slot(-1)][k], &ring[slot(0)][k]);
        for ((s, a), b) in sum.iter_mut().zip(above).zip(first) {
            *s = 0.0 + a + b;
        }
    }
    let mut eig = vec![0f32; w * h];
    let mut boxed = [vec![0f32; w], vec![0f32; w], vec![0f32; w]];
    for y in 0..h {
        if y >= 1 && y + 1 < h {
            row_sums(y + 1, &mut ring[(y + 1) % 3]);
        }
        let (enters, leaves) = (&ring[slot(y as isize + 1)], &ring[slot(y as isize - 1)]);
        for (k, m) in boxed.iter_mut().enumerate() {
            for (((m, s), a), d) in m.iter_mut().zip(&mut sums[k]).zip(&enters[k]).zip(&leaves[k]) {
                let t = *s + a;
                *m = t as f32;
                *s = t - d;
            }
        }
        // The smaller eigenvalue of each 2x2 gradient matrix.
        let row = eig[y * w..(y + 1) * w]
            .iter_mut()
            .zip(&boxed[0])
            .zip(&boxed[1])
            .zip(&boxed[2]);
        for (((e, &xx), &xy), &yy) in row {
            let (a, b, c) = (xx * 0.5, xy, yy * 0.5);
            let t = a - c;
            *e = (a + c) - (t * t + b * b).sqrt();
        }
    }
    eig
}

/// `a * b + c` rounded once to `f32`, as a fused multiply-add gives it.
fn fma(a: f32, b: f32, c: f32) -> f32 {
    (f64::from(a) * f64::from(b) + f64::from(c)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corners_of_a_synthetic_image_match_opencv() {
        let img = synthetic();
        let corners = good_features_to_track(&img);
        assert_eq!(corners.len(), EXPECTED.len());
        for (got, want) in corners.iter().zip(EXPECTED) {
            assert_eq!(got, &want, "{corners:?}");
        }
    }

    #[test]
    fn a_flat_image_has_no_corners() {
        let img = GrayImage {
            width: 20,
            height: 10,
            data: vec![77; 200],
        };
        assert!(good_features_to_track(&img).is_empty());
        let tiny = GrayImage {
            width: 1,
            height: 1,
            data: vec![3],
        };
        assert!(good_features_to_track(&tiny).is_empty());
    }

    /// Two bright rectangles and a diagonal stripe on a 40x30 dark background, with a little
    /// texture so that responses rarely tie.
    pub(crate) fn synthetic() -> GrayImage {
        let (w, h) = (40usize, 30usize);
        let mut data = vec![0u8; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut v = 20 + ((x * 7 + y * 13) % 11) as i32;
                if (5..15).contains(&x) && (4..12).contains(&y) {
                    v += 150;
                }
                if (22..35).contains(&x) && (15..26).contains(&y) {
                    v += 100 + (x as i32 - 22) * 3;
                }
                if (x as i32 - y as i32 - 2).abs() < 2 {
                    v += 60;
                }
                data[y * w + x] = v.clamp(0, 255) as u8;
            }
        }
        GrayImage {
            width: w,
            height: h,
            data,
        }
    }

    /// `cv2.goodFeaturesToTrack` of `synthetic()` with Ultralytics' parameters.
    const EXPECTED: [Point; 13] = [
        [14.0, 11.0],
        [5.0, 4.0],
        [14.0, 4.0],
        [5.0, 11.0],
        [34.0, 15.0],
        [34.0, 25.0],
        [22.0, 25.0],
        [22.0, 15.0],
        [22.0, 19.0],
        [28.0, 26.0],
        [20.0, 17.0],
        [10.0, 10.0],
        [9.0, 5.0],
    ];
}
