//! `cv2.estimateAffinePartial2D(from, to, method=RANSAC)` with its defaults: a 4-DOF similarity
//! (rotation, uniform scale, translation) from RANSAC over point pairs (reprojection threshold
//! 3 px, at most 2000 iterations, confidence 0.99), refined on the inliers by OpenCV's
//! Levenberg-Marquardt (`cv::LevMarq`, 10 iterations).
//!
//! OpenCV's RANSAC draws its samples from `cv::RNG` seeded with `u64::MAX` on every call, a
//! multiply-with-carry generator that is reproduced here, so the same points draw the same
//! samples and find the same inliers.

use super::{Affine, Point};

const THRESHOLD: f64 = 3.0;
const CONFIDENCE: f64 = 0.99;
const MAX_ITERS: usize = 2000;
const MODEL_POINTS: usize = 2;
const REFINE_ITERS: usize = 10;

/// The similarity taking `from` to `to` (same length), or `None` where OpenCV returns nothing.
pub(crate) fn estimate_affine_partial_2d(from: &[Point], to: &[Point]) -> Option<Affine> {
    let (model, inliers) = ransac(from, to)?;
    let count = from.len();
    let mut h = model;
    if count > MODEL_POINTS {
        let (src, dst): (Vec<Point>, Vec<Point>) = from
            .iter()
            .zip(to)
            .zip(&inliers)
            .filter(|(_, keep)| **keep)
            .map(|((f, t), _)| (*f, *t))
            .unzip();
        if !src.is_empty() {
            let mut params = [h[0][0], h[1][0], h[0][2], h[1][2]];
            levenberg_marquardt(&src, &dst, &mut params);
            let [a, b, tx, ty] = params;
            h = [[a, -b, tx], [b, a, ty]];
        }
    }
    Some(h)
}

/// OpenCV's `cv::RNG`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 = u64::from(self.0 as u32) * 4_164_903_690 + (self.0 >> 32);
        self.0 as u32
    }

    /// `rng.uniform(0, n)` for `n > 0`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u32) as usize
    }
}

/// `RANSACPointSetRegistrator::run` with the 2-point similarity kernel: the best model and its
/// inlier mask.
fn ransac(from: &[Point], to: &[Point]) -> Option<(Affine, Vec<bool>)> {
    let count = from.len();
    if count < MODEL_POINTS || to.len() != count {
        return None;
    }
    if count == MODEL_POINTS {
        return Some((kernel([from[0], from[1]], [to[0], to[1]]), vec![true; count]));
    }
    let mut rng = Rng(u64::MAX);
    let mut niters = MAX_ITERS;
    let mut best: Option<(Affine, Vec<bool>)> = None;
    let mut best_count = 0;
    let mut mask = vec![false; count];
    let mut iter = 0;
    while iter < niters {
        // Two distinct indices; OpenCV's subset check cannot reject a pair of points.
        let i = rng.below(count);
        let mut j = rng.below(count);
        while j == i {
            j = rng.below(count);
        }
        let model = kernel([from[i], from[j]], [to[i], to[j]]);
        let good = find_inliers(from, to, &model, &mut mask);
        if good > best_count.max(MODEL_POINTS - 1) {
            best_count = good;
            best = Some((model, mask.clone()));
            niters = update_num_iters(CONFIDENCE, (count - good) as f64 / count as f64, niters);
        }
        iter += 1;
    }
    best
}

/// The similarity through two point pairs, solved in closed form as OpenCV does (in `f64`).
fn kernel(from: [Point; 2], to: [Point; 2]) -> Affine {
    let [x1, y1] = from[0].map(f64::from);
    let [x2, y2] = from[1].map(f64::from);
    let [cx1, cy1] = to[0].map(f64::from);
    let [cx2, cy2] = to[1].map(f64::from);
    let d = 1.0 / ((x1 - x2) * (x1 - x2) + (y1 - y2) * (y1 - y2));
    let s0 = d * ((cx1 - cx2) * (x1 - x2) + (cy1 - cy2) * (y1 - y2));
    let s1 = d * ((cy1 - cy2) * (x1 - x2) - (cx1 - cx2) * (y1 - y2));
    let s2 =
        d * ((cy1 - cy2) * (x1 * y2 - x2 * y1) - (cx1 * y2 - cx2 * y1) * (y1 - y2) - (cx1 * x2 - cx2 * x1) * (x1 - x2));
    let s3 = d
        * (-(cx1 - cx2) * (x1 * y2 - x2 * y1) - (cy1 * x2 - cy2 * x1) * (x1 - x2) - (cy1 * y2 - cy2 * y1) * (y1 - y2));
    [[s0, -s1, s2], [s1, s0, s3]]
}

/// Marks the pairs whose squared reprojection error, in `f32` as OpenCV computes it, is within
/// the threshold; returns how many.
fn find_inliers(from: &[Point], to: &[Point], m: &Affine, mask: &mut [bool]) -> usize {
    let f = m.map(|row| row.map(|v| v as f32));
    let t = (THRESHOLD * THRESHOLD) as f32;
    let mut n = 0;
    for ((p, q), keep) in from.iter().zip(to).zip(mask.iter_mut()) {
        let a = f[0][0] * p[0] + f[0][1] * p[1] + f[0][2] - q[0];
        let b = f[1][0] * p[0] + f[1][1] * p[1] + f[1][2] - q[1];
        *keep = a * a + b * b <= t;
        n += usize::from(*keep);
    }
    n
}

/// `cv::RANSACUpdateNumIters`.
fn update_num_iters(p: f64, ep: f64, max_iters: usize) -> usize {
    let p = p.clamp(0.0, 1.0);
    let ep = ep.clamp(0.0, 1.0);
    let num = (1.0 - p).max(f64::MIN_POSITIVE);
    let denom = 1.0 - (1.0 - ep).powi(MODEL_POINTS as i32);
    if denom < f64::MIN_POSITIVE {
        return 0;
    }
    let (num, denom) = (num.ln(), denom.ln());
    if denom >= 0.0 || -num >= max_iters as f64 * -denom {
        max_iters
    } else {
        (num / denom).round_ties_even() as usize
    }
}

/// Residuals `(a x - b y + tx - x', b x + a y + ty - y')` of the pairs; their Jacobian rows are
/// `(x, -y, 1, 0)` and `(y, x, 0, 1)`.
fn residuals(src: &[Point], dst: &[Point], h: &[f64; 4]) -> Vec<f64> {
    src.iter()
        .zip(dst)
        .flat_map(|(s, d)| {
            let (x, y) = (f64::from(s[0]), f64::from(s[1]));
            [
                h[0] * x - h[1] * y + h[2] - f64::from(d[0]),
                h[1] * x + h[0] * y + h[3] - f64::from(d[1]),
            ]
        })
        .collect()
}

/// `J^T J` and `J^T r` of the residuals at `h`.
fn normal_equations(src: &[Point], r: &[f64]) -> ([[f64; 4]; 4], [f64; 4]) {
    let mut jtj = [[0f64; 4]; 4];
    let mut jtb = [0f64; 4];
    for (s, r) in src.iter().zip(r.chunks_exact(2)) {
        let (x, y) = (f64::from(s[0]), f64::from(s[1]));
        for (row, res) in [([x, -y, 1.0, 0.0], r[0]), ([y, x, 0.0, 1.0], r[1])] {
            for i in 0..4 {
                jtb[i] += row[i] * res;
                for j in 0..4 {
                    jtj[i][j] += row[i] * row[j];
                }
            }
        }
    }
    (jtj, jtb)
}

fn sum_squares(v: &[f64]) -> f64 {
    v.iter().map(|v| v * v).sum()
}

/// `cv::LevMarq::optimize` with the settings `estimateAffinePartial2D` gives it (10 iterations,
/// geodesic acceleration on), for the 4 parameters `(a, b, tx, ty)`.
///
/// The residuals are linear in the parameters, so their second directional derivative is zero
/// and the geodesic correction vanishes (up to rounding noise); it is left out.
fn levenberg_marquardt(src: &[Point], dst: &[Point], h: &mut [f64; 4]) {
    const MIN_DIAG: f64 = 1e-6;
    const MAX_DIAG: f64 = 1e32;
    const MAX_LAMBDA: f64 = 1e32;
    const TOLERANCE: f64 = 1e-6;
    const UP_FACTOR: f64 = 2.0;
    const DOWN_FACTOR: f64 = 3.0;

    let mut r = residuals(src, dst, h);
    let mut old_energy = sum_squares(&r);
    let (mut jtj, mut jtb) = normal_equations(src, &r);
    let mut lambda = 1e-4;
    let mut up_factor = UP_FACTOR;
    let mut iter = 0;
    loop {
        let gradient_max = jtb.iter().fold(0f64, |m, v| m.max(v.abs()));
        let diag = [jtj[0][0], jtj[1][1], jtj[2][2], jtj[3][3]];
        let mut done = false;
        let mut accepted = false;
        while !accepted && !done {
            let lm_diag = diag.map(|d| (d * lambda).clamp(MIN_DIAG, MAX_DIAG));
            let mut a = jtj;
            for i in 0..4 {
                a[i][i] = diag[i] + lm_diag[i];
            }
            let step = solve4(a, jtb.map(|v| -v));
            let mut cost_change = 0.0;
            let (mut quality, mut step_norm, mut energy) = (0.0, 0.0, 0.0);
            let mut probe = *h;
            if let Some(x) = step {
                let jac_cost_change = -0.5 * (0..4).map(|i| x[i] * (jtb[i] - lm_diag[i] * x[i])).sum::<f64>();
                step_norm = x.iter().map(|v| v * v).sum();
                for i in 0..4 {
                    probe[i] += x[i];
                }
                energy = sum_squares(&residuals(src, dst, &probe));
                if energy.is_nan() {
                    return;
                }
                cost_change = old_energy - energy;
                quality = cost_change / jac_cost_change;
            }
            if step.is_none() || cost_change < 0.0 {
                lambda *= up_factor;
                up_factor *= 2.0;
            } else {
                accepted = true;
                lambda *= (1.0 / DOWN_FACTOR).max(1.0 - (2.0 * quality - 1.0).powi(3));
                up_factor = UP_FACTOR;
                *h = probe;
                old_energy = energy;
                done = gradient_max < TOLERANCE || step_norm < TOLERANCE || cost_change / energy < TOLERANCE;
            }
            iter += 1;
            done = done || iter >= REFINE_ITERS || lambda >= MAX_LAMBDA;
        }
        if done {
            return;
        }
        r = residuals(src, dst, h);
        (jtj, jtb) = normal_equations(src, &r);
    }
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting; `None` if `a` is singular.
fn solve4(mut a: [[f64; 4]; 4], mut b: [f64; 4]) -> Option<[f64; 4]> {
    for col in 0..4 {
        let pivot = (col..4).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col] == 0.0 || !a[pivot][col].is_finite() {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (pivot_row, pivot_b) = (a[col], b[col]);
        for (row, rhs) in a.iter_mut().zip(b.iter_mut()).skip(col + 1) {
            let f = row[col] / pivot_row[col];
            for (v, p) in row.iter_mut().zip(pivot_row).skip(col) {
                *v -= f * p;
            }
            *rhs -= f * pivot_b;
        }
    }
    let mut x = [0f64; 4];
    for row in (0..4).rev() {
        let s: f64 = (row + 1..4).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(m: &Affine, p: Point) -> Point {
        let (x, y) = (f64::from(p[0]), f64::from(p[1]));
        [
            (m[0][0] * x + m[0][1] * y + m[0][2]) as f32,
            (m[1][0] * x + m[1][1] * y + m[1][2]) as f32,
        ]
    }

    /// The similarity moving group `g` of configuration `c` in `ransac_follows_opencv_s_draws`.
    fn group_motion(g: usize, c: usize) -> Affine {
        let a = 0.01 * (g + 1) as f64 * (c + 1) as f64;
        let s = 1.0 + 0.005 * g as f64;
        [
            [s * a.cos(), -s * a.sin(), 30.0 * g as f64 - 20.0 + c as f64],
            [s * a.sin(), s * a.cos(), 10.0 - 25.0 * g as f64],
        ]
    }

    #[test]
    fn ransac_follows_opencv_s_draws() {
        // Three groups of 20 pairs, each moved exactly by its own similarity, interleaved in an
        // order that depends on the configuration. Every group fits 20 pairs, and RANSAC keeps
        // the first it samples, so which one wins depends on its random draws only. The groups
        // cv2.estimateAffinePartial2D picked (reference venv); by chance alone all six would
        // agree once in 729.
        const OPENCV_WINNERS: [usize; 6] = [1, 2, 0, 1, 2, 0];
        for (c, &winner) in OPENCV_WINNERS.iter().enumerate() {
            let (mut from, mut to) = (Vec::new(), Vec::new());
            for k in 0..60usize {
                let g = (k + c * (k / 3)) % 3;
                let m = group_motion(g, c);
                let (x, y) = (((k * 37) % 200) as f64 + 0.25, ((k * 53) % 150) as f64 + 0.5);
                from.push([x as f32, y as f32]);
                to.push([
                    (m[0][0] * x + m[0][1] * y + m[0][2]) as f32,
                    (m[1][0] * x + m[1][1] * y + m[1][2]) as f32,
                ]);
            }
            let got = estimate_affine_partial_2d(&from, &to).expect("a model");
            let want = group_motion(winner, c);
            let diff = (0..2)
                .flat_map(|r| (0..3).map(move |k| (r, k)))
                .map(|(r, k)| (got[r][k] - want[r][k]).abs());
            assert!(
                diff.fold(0.0, f64::max) < 1e-4,
                "configuration {c}: {got:?}, OpenCV's group {winner} is {want:?}"
            );
        }
    }

    #[test]
    fn recovers_a_similarity_despite_outliers() {
        let (angle, scale): (f64, f64) = (0.03, 1.02);
        let truth: Affine = [
            [scale * angle.cos(), -scale * angle.sin(), 4.5],
            [scale * angle.sin(), scale * angle.cos(), -2.25],
        ];
        let mut from = Vec::new();
        let mut to = Vec::new();
        let mut s = 12345u32;
        let mut noise = || {
            s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
            ((s >> 16) & 0x7fff) as f32 / 32768.0 - 0.5
        };
        for i in 0..120 {
            let p = [(i % 12) as f32 * 20.0 + 5.0, (i / 12) as f32 * 15.0 + 3.0];
            let q = apply(&truth, p);
            if i % 4 == 0 {
                // A quarter of the pairs are far off.
                from.push(p);
                to.push([q[0] + 40.0 + 30.0 * noise(), q[1] - 25.0 + 30.0 * noise()]);
            } else {
                from.push(p);
                to.push([q[0] + 0.02 * noise(), q[1] + 0.02 * noise()]);
            }
        }
        let m = estimate_affine_partial_2d(&from, &to).expect("enough consistent pairs");
        for (row, want) in m.iter().zip(&truth) {
            for (got, want) in row.iter().zip(want) {
                assert!((got - want).abs() < 2e-3, "{m:?} vs {truth:?}");
            }
        }
        assert!((m[0][2] - 4.5).abs() < 0.02 && (m[1][2] + 2.25).abs() < 0.02, "{m:?}");
    }

    #[test]
    fn degenerate_points_give_no_model() {
        let p = [[3.0f32, 4.0]; 5];
        assert_eq!(estimate_affine_partial_2d(&p, &p), None);
    }
}
