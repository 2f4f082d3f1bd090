//! Ultralytics' constant-velocity Kalman filters (`trackers/utils/kalman_filter.py`), in f64 as
//! numpy computes them.
//!
//! ByteTrack's state is (x, y, a, h) — centre, aspect ratio w/h, height — and their velocities
//! (`KalmanFilterXYAH`); BoT-SORT's is (x, y, w, h) and velocities (`KalmanFilterXYWH`). The
//! noise of both scales with the box size, so it is rebuilt from the mean at every step.

// The matrix arithmetic reads best with the indices of the formulas.
#![allow(clippy::needless_range_loop)]

use crate::gmc::Affine;

pub(crate) type Mean = [f64; 8];
pub(crate) type Covariance = [[f64; 8]; 8];

const STD_WEIGHT_POSITION: f64 = 1.0 / 20.0;
const STD_WEIGHT_VELOCITY: f64 = 1.0 / 160.0;

/// Which of the two filters, i.e. what the four measured numbers mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Motion {
    /// (centre x, centre y, aspect w/h, height): ByteTrack.
    Xyah,
    /// (centre x, centre y, width, height): BoT-SORT.
    Xywh,
}

fn diag_squared(std: [f64; 8]) -> Covariance {
    let mut m = [[0.0; 8]; 8];
    for (i, s) in std.iter().enumerate() {
        m[i][i] = s * s;
    }
    m
}

impl Motion {
    /// `initiate`: a new track at the measurement, with zero velocity.
    pub(crate) fn initiate(self, z: [f64; 4]) -> (Mean, Covariance) {
        let (wp, wv) = (2.0 * STD_WEIGHT_POSITION, 10.0 * STD_WEIGHT_VELOCITY);
        let std = match self {
            Motion::Xyah => [
                wp * z[3],
                wp * z[3],
                1e-2,
                wp * z[3],
                wv * z[3],
                wv * z[3],
                1e-5,
                wv * z[3],
            ],
            Motion::Xywh => [
                wp * z[2],
                wp * z[3],
                wp * z[2],
                wp * z[3],
                wv * z[2],
                wv * z[3],
                wv * z[2],
                wv * z[3],
            ],
        };
        let mut mean = [0.0; 8];
        mean[..4].copy_from_slice(&z);
        (mean, diag_squared(std))
    }

    /// The process noise's standard deviations for a state.
    fn motion_std(self, mean: &Mean) -> [f64; 8] {
        let (p, v) = (STD_WEIGHT_POSITION, STD_WEIGHT_VELOCITY);
        match self {
            Motion::Xyah => [
                p * mean[3],
                p * mean[3],
                1e-2,
                p * mean[3],
                v * mean[3],
                v * mean[3],
                1e-5,
                v * mean[3],
            ],
            Motion::Xywh => [
                p * mean[2],
                p * mean[3],
                p * mean[2],
                p * mean[3],
                v * mean[2],
                v * mean[3],
                v * mean[2],
                v * mean[3],
            ],
        }
    }

    /// `multi_predict` for one state: x' = F x, P' = (F P) Fᵀ + Q, with F adding each velocity to
    /// its position once. The sums are formed in numpy's order (F P first), which matters at the
    /// last bit.
    pub(crate) fn predict(self, mean: &Mean, cov: &Covariance) -> (Mean, Covariance) {
        let q = diag_squared(self.motion_std(mean));
        let mut new_mean = *mean;
        for i in 0..4 {
            new_mean[i] = mean[i] + mean[i + 4];
        }
        let mut fp = *cov;
        for i in 0..4 {
            for j in 0..8 {
                fp[i][j] = cov[i][j] + cov[i + 4][j];
            }
        }
        let mut new_cov = fp;
        for row in new_cov.iter_mut() {
            for j in 0..4 {
                row[j] += row[j + 4];
            }
        }
        for (row, q_row) in new_cov.iter_mut().zip(q.iter()) {
            for (p, q) in row.iter_mut().zip(q_row.iter()) {
                *p += q;
            }
        }
        (new_mean, new_cov)
    }

    /// `project`: the state's distribution in measurement space, with the measurement noise.
    fn project(self, mean: &Mean, cov: &Covariance) -> ([f64; 4], [[f64; 4]; 4]) {
        let p = STD_WEIGHT_POSITION;
        let std = match self {
            Motion::Xyah => [p * mean[3], p * mean[3], 1e-1, p * mean[3]],
            Motion::Xywh => [p * mean[2], p * mean[3], p * mean[2], p * mean[3]],
        };
        let mut s = [[0.0; 4]; 4];
        for i in 0..4 {
            for j in 0..4 {
                s[i][j] = cov[i][j];
            }
            s[i][i] += std[i] * std[i];
        }
        ([mean[0], mean[1], mean[2], mean[3]], s)
    }

    /// `update`: the Kalman correction with measurement `z`. The gain is K = P Hᵀ S⁻¹, from
    /// solving S Kᵀ = H Pᵀ as numpy's `linalg.solve` does (LU with partial pivoting).
    pub(crate) fn update(self, mean: &Mean, cov: &Covariance, z: [f64; 4]) -> (Mean, Covariance) {
        let (projected_mean, s) = self.project(mean, cov);
        // Kᵀ (4x8): solve S Kᵀ = P[:, :4]ᵀ.
        let mut rhs = [[0.0; 8]; 4];
        for (k, row) in rhs.iter_mut().enumerate() {
            for (j, r) in row.iter_mut().enumerate() {
                *r = cov[j][k];
            }
        }
        let kt = solve4(s, rhs);
        let innovation: [f64; 4] = std::array::from_fn(|k| z[k] - projected_mean[k]);
        let mut new_mean = *mean;
        for (i, m) in new_mean.iter_mut().enumerate() {
            let mut dot = 0.0;
            for k in 0..4 {
                dot += innovation[k] * kt[k][i];
            }
            *m += dot;
        }
        // K S Kᵀ, grouped as K (S Kᵀ) like numpy's multi_dot for these shapes.
        let mut skt = [[0.0; 8]; 4];
        for a in 0..4 {
            for j in 0..8 {
                let mut dot = 0.0;
                for b in 0..4 {
                    dot += s[a][b] * kt[b][j];
                }
                skt[a][j] = dot;
            }
        }
        let mut new_cov = *cov;
        for i in 0..8 {
            for j in 0..8 {
                let mut dot = 0.0;
                for a in 0..4 {
                    dot += kt[a][i] * skt[a][j];
                }
                new_cov[i][j] -= dot;
            }
        }
        (new_mean, new_cov)
    }
}

/// Solves `a x = b` for a 4x4 `a` and eight right-hand sides, by Gaussian elimination with
/// partial pivoting (LAPACK's gesv). A singular `a` cannot come from the filter (its diagonal
/// always carries the measurement noise); it would give non-finite numbers, not a panic.
fn solve4(mut a: [[f64; 4]; 4], mut b: [[f64; 8]; 4]) -> [[f64; 8]; 4] {
    for col in 0..4 {
        let mut pivot = col;
        for r in col + 1..4 {
            if a[r][col].abs() > a[pivot][col].abs() {
                pivot = r;
            }
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for r in col + 1..4 {
            let f = a[r][col] / a[col][col];
            for c in col..4 {
                a[r][c] -= f * a[col][c];
            }
            for c in 0..8 {
                b[r][c] -= f * b[col][c];
            }
        }
    }
    for col in (0..4).rev() {
        for c in 0..8 {
            let mut v = b[col][c];
            for k in col + 1..4 {
                v -= a[col][k] * b[k][c];
            }
            b[col][c] = v / a[col][col];
        }
    }
    b
}

/// Ultralytics' `multi_gmc` for one BoT-SORT state: the 2x3 camera warp applied to the mean and
/// covariance. Centres and their velocities turn with the signed rotation-scale part R; widths
/// and heights with |R| (the box around the turned box, never a negative size); the translation
/// moves only the centre.
pub(crate) fn warp_state(mean: &mut Mean, cov: &mut Covariance, h: &Affine) {
    let r = [[h[0][0], h[0][1]], [h[1][0], h[1][1]]];
    let abs_r = [[r[0][0].abs(), r[0][1].abs()], [r[1][0].abs(), r[1][1].abs()]];
    let mut r8 = [[0.0; 8]; 8];
    for block in 0..4 {
        let m = if block % 2 == 1 { &abs_r } else { &r };
        for a in 0..2 {
            for b in 0..2 {
                r8[2 * block + a][2 * block + b] = m[a][b];
            }
        }
    }
    let mut new_mean = [0.0; 8];
    for (i, m) in new_mean.iter_mut().enumerate() {
        *m = (0..8).map(|k| r8[i][k] * mean[k]).sum();
    }
    new_mean[0] += h[0][2];
    new_mean[1] += h[1][2];
    let mut rc = [[0.0; 8]; 8];
    for i in 0..8 {
        for j in 0..8 {
            rc[i][j] = (0..8).map(|k| r8[i][k] * cov[k][j]).sum();
        }
    }
    for i in 0..8 {
        for j in 0..8 {
            cov[i][j] = (0..8).map(|k| rc[i][k] * r8[j][k]).sum();
        }
    }
    *mean = new_mean;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-10 * a.abs().max(b.abs()) + 1e-15
    }

    fn assert_mean(got: &Mean, want: &[f64; 8]) {
        for i in 0..8 {
            assert!(close(got[i], want[i]), "mean[{i}]: {} vs {}", got[i], want[i]);
        }
    }

    fn assert_cov(got: &Covariance, want: &Covariance) {
        for i in 0..8 {
            for j in 0..8 {
                assert!(
                    close(got[i][j], want[i][j]),
                    "cov[{i}][{j}]: {} vs {}",
                    got[i][j],
                    want[i][j]
                );
            }
        }
    }

    // The expected numbers below come from Ultralytics 8.4.190's filters in its venv:
    //   kf = KalmanFilterXYAH()  (or KalmanFilterXYWH())
    //   m, P = kf.initiate(z0); m, P = kf.multi_predict(m[None], P[None]); (m, P) = (m[0], P[0])
    //   m, P = kf.update(m, P, z1); then one more multi_predict
    // with z0 = [100, 200, 0.5, 80] / [100, 200, 40, 80] and z1 = [104, 197, 0.55, 84] /
    // [104, 197, 46, 84]; the warp test then applies `multi_gmc` to the XYWH update. Written by
    // tests/fixtures/kalman-numbers.py.

    #[test]
    fn xyah_matches_ultralytics() {
        let kf = Motion::Xyah;
        let (m, p) = kf.initiate([100.0, 200.0, 0.5, 80.0]);
        let (m, p) = kf.predict(&m, &p);
        let (m, p) = kf.update(&m, &p, [104.0, 197.0, 0.55, 84.0]);
        assert_mean(&m, &XYAH_UPDATED_MEAN);
        assert_cov(&p, &XYAH_UPDATED_COV);
        let (m, p) = kf.predict(&m, &p);
        assert_mean(&m, &XYAH_PREDICTED_MEAN);
        assert_cov(&p, &XYAH_PREDICTED_COV);
    }

    #[test]
    fn xywh_matches_ultralytics() {
        let kf = Motion::Xywh;
        let (m, p) = kf.initiate([100.0, 200.0, 40.0, 80.0]);
        let (m, p) = kf.predict(&m, &p);
        let (m, p) = kf.update(&m, &p, [104.0, 197.0, 46.0, 84.0]);
        assert_mean(&m, &XYWH_UPDATED_MEAN);
        assert_cov(&p, &XYWH_UPDATED_COV);
        let (m, p) = kf.predict(&m, &p);
        assert_mean(&m, &XYWH_PREDICTED_MEAN);
        assert_cov(&p, &XYWH_PREDICTED_COV);
    }

    #[test]
    fn warp_matches_ultralytics() {
        let (mut m, mut p) = Motion::Xywh.initiate([100.0, 200.0, 40.0, 80.0]);
        let (pm, pp) = Motion::Xywh.predict(&m, &p);
        (m, p) = Motion::Xywh.update(&pm, &pp, [104.0, 197.0, 46.0, 84.0]);
        warp_state(&mut m, &mut p, &WARP);
        assert_mean(&m, &WARPED_MEAN);
        assert_cov(&p, &WARPED_COV);
    }

    #[test]
    fn solve_recovers_a_known_solution() {
        let a = [
            [4.0, 1.0, 0.5, 0.0],
            [1.0, 3.0, 0.0, 0.2],
            [0.5, 0.0, 2.0, 0.1],
            [0.0, 0.2, 0.1, 1.0],
        ];
        let x: [[f64; 8]; 4] = std::array::from_fn(|r| std::array::from_fn(|c| (r * 8 + c) as f64 - 7.5));
        let mut b = [[0.0; 8]; 4];
        for r in 0..4 {
            for c in 0..8 {
                b[r][c] = (0..4).map(|k| a[r][k] * x[k][c]).sum();
            }
        }
        let got = solve4(a, b);
        for r in 0..4 {
            for c in 0..8 {
                assert!((got[r][c] - x[r][c]).abs() < 1e-12);
            }
        }
    }

    include!("../tests/fixtures/kalman-numbers.rs");
}
