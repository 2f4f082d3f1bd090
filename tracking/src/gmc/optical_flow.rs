//! Pyramidal Lucas-Kanade: `cv2.calcOpticalFlowPyrLK(prev, next, points, None)` with OpenCV's
//! defaults (21x21 window, 3 pyramid levels, 30 iterations or a step under 0.01 px, minimum
//! eigenvalue 1e-4), including its fixed-point bilinear sampling and the order in which its SIMD
//! kernels sum in `f32`.

use super::gray::GrayImage;
use super::{Point, reflect101};

const WIN: usize = 21;
const HALF_WIN: f32 = (WIN as f32 - 1.0) * 0.5;
const MAX_LEVEL: usize = 3;
const MAX_ITERS: usize = 30;
/// The stopping step, squared, as OpenCV compares it (in `f64`).
const EPS_SQUARED: f64 = 0.01 * 0.01;
const MIN_EIG_THRESHOLD: f32 = 1e-4;
/// Bilinear weights are 14-bit; images are sampled with 5 fractional bits.
const W_BITS: i32 = 14;
const FLT_SCALE: f32 = 1.0 / (1u32 << 20) as f32;
/// Window columns that OpenCV's SIMD loops cover (eight a step); the rest are scalar.
const SIMD_COLUMNS: usize = WIN / 8 * 8;

/// The image pyramid of one frame, kept so that a frame's pyramid is built once although it
/// serves twice (as the next frame, then as the previous one).
#[derive(Clone, Debug)]
pub(crate) struct Pyramid {
    levels: Vec<Padded<u8>>,
}

impl Pyramid {
    /// `buildOpticalFlowPyramid`: `pyrDown` levels, stopping early once the next level would be
    /// no larger than the window.
    pub fn new(img: &GrayImage) -> Pyramid {
        let mut levels = vec![Padded::reflected(img)];
        while levels.len() <= MAX_LEVEL {
            let last = &levels[levels.len() - 1];
            if last.width.div_ceil(2) <= WIN || last.height.div_ceil(2) <= WIN {
                break;
            }
            let down = pyr_down(last);
            levels.push(Padded::reflected(&down));
        }
        Pyramid { levels }
    }

    pub fn size(&self) -> (usize, usize) {
        (self.levels[0].width, self.levels[0].height)
    }
}

/// Where each point of `prev` went in `next`, or `None` where OpenCV's status is 0 (lost).
pub(crate) fn track(prev: &Pyramid, next: &Pyramid, points: &[Point]) -> Vec<Option<Point>> {
    if prev.size() != next.size() {
        return vec![None; points.len()];
    }
    let max_level = prev.levels.len().min(next.levels.len()) - 1;
    let mut next_pts: Vec<Point> = points.to_vec();
    let mut status = vec![true; points.len()];
    for level in (0..=max_level).rev() {
        let deriv = scharr(&prev.levels[level]);
        let tracker = LevelTracker {
            prev: &prev.levels[level],
            next: &next.levels[level],
            deriv: &deriv,
            level,
            max_level,
        };
        for ((p, n), ok) in points.iter().zip(&mut next_pts).zip(&mut status) {
            tracker.track(*p, n, ok);
        }
    }
    next_pts
        .into_iter()
        .zip(status)
        .map(|(p, ok)| ok.then_some(p))
        .collect()
}

/// An image with a border of `WIN` pixels on every side, so that every window read that passes
/// OpenCV's bounds checks is inside it.
#[derive(Clone, Debug)]
struct Padded<T> {
    width: usize,
    height: usize,
    stride: usize,
    data: Vec<T>,
}

impl<T> Padded<T> {
    /// Index of pixel `(x, y)`, for `-WIN <= x < width + WIN` and likewise `y`.
    fn index(&self, x: isize, y: isize) -> usize {
        (y + WIN as isize) as usize * self.stride + (x + WIN as isize) as usize
    }
}

impl Padded<u8> {
    /// An image with OpenCV's `BORDER_REFLECT_101` around it, as the pyramid's levels carry.
    fn reflected(img: &GrayImage) -> Padded<u8> {
        let (w, h) = (img.width, img.height);
        let stride = w + 2 * WIN;
        let mut data = Vec::with_capacity(stride * (h + 2 * WIN));
        let left: Vec<usize> = (0..WIN).map(|i| reflect101(i as isize - WIN as isize, w)).collect();
        let right: Vec<usize> = (0..WIN).map(|i| reflect101((w + i) as isize, w)).collect();
        for py in 0..h + 2 * WIN {
            let y = reflect101(py as isize - WIN as isize, h);
            let row = &img.data[y * w..(y + 1) * w];
            data.extend(left.iter().map(|&x| row[x]));
            data.extend_from_slice(row);
            data.extend(right.iter().map(|&x| row[x]));
        }
        Padded {
            width: w,
            height: h,
            stride,
            data,
        }
    }
}

/// Scharr derivatives `d/dx` and `d/dy` of a level, unscaled (3, 10, 3), from its reflected
/// border, with a zero border around them as OpenCV pads them.
fn scharr(img: &Padded<u8>) -> [Padded<i16>; 2] {
    let (w, h) = (img.width, img.height);
    let stride = w + 2 * WIN;
    let plane = || Padded {
        width: w,
        height: h,
        stride,
        data: vec![0i16; stride * (h + 2 * WIN)],
    };
    let (mut gx, mut gy) = (plane(), plane());
    // Vertical passes for the columns -1..=w.
    let mut smooth = vec![0i32; w + 2];
    let mut diff = vec![0i32; w + 2];
    for y in 0..h as isize {
        let (up, mid, down) = (img.index(-1, y - 1), img.index(-1, y), img.index(-1, y + 1));
        let rows = img.data[up..up + w + 2]
            .iter()
            .zip(&img.data[mid..mid + w + 2])
            .zip(&img.data[down..down + w + 2]);
        for ((s, d), ((&a, &b), &c)) in smooth.iter_mut().zip(&mut diff).zip(rows) {
            let (a, b, c) = (i32::from(a), i32::from(b), i32::from(c));
            *s = (a + c) * 3 + b * 10;
            *d = c - a;
        }
        let out = gx.index(0, y);
        for x in 0..w {
            gx.data[out + x] = (smooth[x + 2] - smooth[x]) as i16;
            gy.data[out + x] = ((diff[x] + diff[x + 2]) * 3 + diff[x + 1] * 10) as i16;
        }
    }
    [gx, gy]
}

/// `cv2.pyrDown`: the 5x5 binomial filter (1 4 6 4 1)^2 / 256 over the reflected border, every
/// other pixel, to `((w + 1) / 2, (h + 1) / 2)`.
fn pyr_down(src: &Padded<u8>) -> GrayImage {
    const K: [i32; 5] = [1, 4, 6, 4, 1];
    let (w, h) = (src.width.div_ceil(2), src.height.div_ceil(2));
    // Horizontal pass of the source rows -2..h_src+2 at the kept columns.
    let rows = src.height + 4;
    let mut horizontal = vec![0i32; rows * w];
    for r in 0..rows {
        let base = src.index(-2, r as isize - 2);
        let row = &src.data[base..base + src.width + 4];
        for (x, out) in horizontal[r * w..(r + 1) * w].iter_mut().enumerate() {
            *out = K
                .iter()
                .zip(&row[2 * x..2 * x + 5])
                .map(|(k, &v)| k * i32::from(v))
                .sum();
        }
    }
    let mut data = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let sum: i32 = K
                .iter()
                .enumerate()
                .map(|(j, k)| k * horizontal[(2 * y + j) * w + x])
                .sum();
            data.push(((sum + 128) >> 8) as u8);
        }
    }
    GrayImage {
        width: w,
        height: h,
        data,
    }
}

struct LevelTracker<'a> {
    prev: &'a Padded<u8>,
    next: &'a Padded<u8>,
    deriv: &'a [Padded<i16>; 2],
    level: usize,
    max_level: usize,
}

/// 14-bit bilinear weights of a sub-pixel offset in `[0, 1)`, rounded as OpenCV does.
fn weights(a: f32, b: f32) -> [i16; 4] {
    let one = (1 << W_BITS) as f32;
    let w00 = ((1.0 - a) * (1.0 - b) * one).round_ties_even() as i16;
    let w01 = (a * (1.0 - b) * one).round_ties_even() as i16;
    let w10 = ((1.0 - a) * b * one).round_ties_even() as i16;
    [w00, w01, w10, (1 << W_BITS) - w00 - w01 - w10]
}

/// `CV_DESCALE`: rounding right shift.
fn descale(v: i32, n: i32) -> i32 {
    (v + (1 << (n - 1))) >> n
}

/// `cvFloor`, with NaN as far out of bounds as OpenCV's conversion puts it.
fn floor_i(v: f32) -> isize {
    if v.is_nan() { isize::MIN } else { v.floor() as isize }
}

fn out_of_bounds(x: isize, y: isize, width: usize, height: usize) -> bool {
    x < -(WIN as isize) || x >= width as isize || y < -(WIN as isize) || y >= height as isize
}

/// The window of the previous image at a point: its pixels with 5 fractional bits, and its
/// derivatives.
struct Window {
    pixels: [[i32; WIN]; WIN],
    grad_x: [[i32; WIN]; WIN],
    grad_y: [[i32; WIN]; WIN],
}

/// One row of a window, bilinearly sampled from rows `r0` (at the window's row) and `r1` (the
/// next) with OpenCV's rounding: `shift` is 9 for images (keeping 5 fractional bits), 14 for
/// derivatives. Operands and weights fit in 16 bits, as in OpenCV's multiply-add kernel, which
/// lets the compiler use the same instructions.
fn sample_row<T: Copy + Into<i16>>(r0: &[T], r1: &[T], wt: [i16; 4], shift: i32) -> [i32; WIN] {
    let mut out = [0i32; WIN];
    let (r0, r1) = (&r0[..WIN + 1], &r1[..WIN + 1]);
    let m = |a: T, w: i16| i32::from(a.into()) * i32::from(w);
    for (x, o) in out.iter_mut().enumerate() {
        let v = (m(r0[x], wt[0]) + m(r0[x + 1], wt[1])) + (m(r1[x], wt[2]) + m(r1[x + 1], wt[3]));
        *o = descale(v, shift);
    }
    out
}

impl LevelTracker<'_> {
    /// One point at this level: `next` holds its estimate at the level above (or nothing yet at
    /// the top) and receives the estimate here; `ok` becomes false where OpenCV's status does.
    fn track(&self, prev_pt: Point, next: &mut Point, ok: &mut bool) {
        let last = self.level == 0;
        let scale = 1.0 / (1u32 << self.level) as f32;
        let mut next_pt = if self.level == self.max_level {
            [prev_pt[0] * scale, prev_pt[1] * scale]
        } else {
            [next[0] * 2.0, next[1] * 2.0]
        };
        *next = next_pt;

        let p = [prev_pt[0] * scale - HALF_WIN, prev_pt[1] * scale - HALF_WIN];
        let (ix, iy) = (floor_i(p[0]), floor_i(p[1]));
        let (w, h) = (self.prev.width, self.prev.height);
        if out_of_bounds(ix, iy, w, h) {
            if last {
                *ok = false;
            }
            return;
        }
        let (window, [a11, a12, a22]) = self.window(ix, iy, weights(p[0] - ix as f32, p[1] - iy as f32));

        let det = a11 * a22 - a12 * a12;
        let min_eig = (a22 + a11 - ((a11 - a22) * (a11 - a22) + 4.0 * a12 * a12).sqrt()) / (2 * WIN * WIN) as f32;
        if min_eig < MIN_EIG_THRESHOLD || det < f32::EPSILON {
            if last {
                *ok = false;
            }
            return;
        }
        let inv_det = 1.0 / det;

        next_pt = [next_pt[0] - HALF_WIN, next_pt[1] - HALF_WIN];
        let mut prev_delta = [0f32; 2];
        for j in 0..MAX_ITERS {
            let (jx, jy) = (floor_i(next_pt[0]), floor_i(next_pt[1]));
            if out_of_bounds(jx, jy, w, h) {
                if last {
                    *ok = false;
                }
                break;
            }
            let wt = weights(next_pt[0] - jx as f32, next_pt[1] - jy as f32);
            let [b1, b2] = self.mismatch(&window, jx, jy, wt);
            let b1 = b1 * FLT_SCALE;
            let b2 = b2 * FLT_SCALE;
            let delta = [(a12 * b2 - a22 * b1) * inv_det, (a12 * b1 - a11 * b2) * inv_det];
            next_pt = [next_pt[0] + delta[0], next_pt[1] + delta[1]];
            *next = [next_pt[0] + HALF_WIN, next_pt[1] + HALF_WIN];

            let (dx, dy) = (f64::from(delta[0]), f64::from(delta[1]));
            if dx * dx + dy * dy <= EPS_SQUARED {
                break;
            }
            // A step that undoes the last one: OpenCV settles halfway.
            if j > 0
                && f64::from((delta[0] + prev_delta[0]).abs()) < 0.01
                && f64::from((delta[1] + prev_delta[1]).abs()) < 0.01
            {
                *next = [next[0] - delta[0] * 0.5, next[1] - delta[1] * 0.5];
                break;
            }
            prev_delta = delta;
        }

        // OpenCV's error measure re-checks the final position at the last level.
        if last && *ok {
            let (fx, fy) = (floor_i(next[0] - HALF_WIN), floor_i(next[1] - HALF_WIN));
            if out_of_bounds(fx, fy, w, h) {
                *ok = false;
            }
        }
    }

    /// The window at `(ix, iy)` and its gradient matrix `(A11, A12, A22)`, summed as OpenCV's
    /// 4-lane kernel does: lane `x % 4` for the first 16 columns (two vectors a step), the last
    /// five in a scalar sum, the lanes reduced as `(l0 + l2) + (l1 + l3)` and added to it.
    fn window(&self, ix: isize, iy: isize, wt: [i16; 4]) -> (Window, [f32; 3]) {
        let mut win = Window {
            pixels: [[0; WIN]; WIN],
            grad_x: [[0; WIN]; WIN],
            grad_y: [[0; WIN]; WIN],
        };
        let mut lanes = [[0f32; 4]; 3];
        let mut scalar = [0f32; 3];
        let (img, [dx, dy]) = (self.prev, self.deriv);
        for y in 0..WIN {
            let i = img.index(ix, iy + y as isize);
            let (s0, s1) = (i, i + img.stride);
            win.pixels[y] = sample_row(&img.data[s0..], &img.data[s1..], wt, W_BITS - 5);
            let gx = sample_row(&dx.data[s0..], &dx.data[s1..], wt, W_BITS);
            let gy = sample_row(&dy.data[s0..], &dy.data[s1..], wt, W_BITS);
            win.grad_x[y] = gx;
            win.grad_y[y] = gy;
            let (fx, fy) = (gx.map(|v| v as f32), gy.map(|v| v as f32));
            for (cx, cy) in fx[..SIMD_COLUMNS]
                .chunks_exact(4)
                .zip(fy[..SIMD_COLUMNS].chunks_exact(4))
            {
                for (j, (&x, &y)) in cx.iter().zip(cy).enumerate() {
                    lanes[0][j] += x * x;
                    lanes[1][j] += x * y;
                    lanes[2][j] += y * y;
                }
            }
            for x in SIMD_COLUMNS..WIN {
                scalar[0] += fx[x] * fx[x];
                scalar[1] += fx[x] * fy[x];
                scalar[2] += fy[x] * fy[x];
            }
        }
        let a = [0, 1, 2].map(|k| {
            let l = lanes[k];
            (scalar[k] + ((l[0] + l[2]) + (l[1] + l[3]))) * FLT_SCALE
        });
        (win, a)
    }

    /// Sums of (next - prev) times the derivatives over the window at `(jx, jy)`, in the order
    /// of OpenCV's 8-lane kernel: for each group of eight of the first 16 columns, the products
    /// of columns `x` and `x + 4` added in integers, then into one float lane per `x % 4` (and
    /// derivative); the last five columns one by one into a scalar sum. Its lanes are reduced
    /// as `(l0 + l2) + (l1 + l3)` and added to that sum.
    fn mismatch(&self, win: &Window, jx: isize, jy: isize, wt: [i16; 4]) -> [f32; 2] {
        let img = self.next;
        let (mut lanes_x, mut lanes_y) = ([0f32; 4], [0f32; 4]);
        let (mut b1, mut b2) = (0f32, 0f32);
        for y in 0..WIN {
            let i = img.index(jx, jy + y as isize);
            let sampled = sample_row(&img.data[i..], &img.data[i + img.stride..], wt, W_BITS - 5);
            let (gx, gy) = (&win.grad_x[y], &win.grad_y[y]);
            let mut px = [0i32; WIN];
            let mut py = [0i32; WIN];
            for x in 0..WIN {
                let diff = sampled[x] - win.pixels[y][x];
                px[x] = diff * gx[x];
                py[x] = diff * gy[x];
            }
            for base in (0..SIMD_COLUMNS).step_by(8) {
                for j in 0..4 {
                    lanes_x[j] += (px[base + j] + px[base + j + 4]) as f32;
                    lanes_y[j] += (py[base + j] + py[base + j + 4]) as f32;
                }
            }
            for x in SIMD_COLUMNS..WIN {
                b1 += px[x] as f32;
                b2 += py[x] as f32;
            }
        }
        let reduce = |l: [f32; 4]| (l[0] + l[2]) + (l[1] + l[3]);
        [b1 + reduce(lanes_x), b2 + reduce(lanes_y)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth texture sampled at `(x + dx, y + dy)`: shifting by `(dx, dy)` moves its content
    /// by `(-dx, -dy)`.
    fn texture(w: usize, h: usize, dx: f64, dy: f64) -> GrayImage {
        let mut data = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                let (u, v) = (x as f64 + dx, y as f64 + dy);
                let s = (u * 0.21).sin() * (v * 0.17).cos()
                    + 0.5 * (u * 0.05 + v * 0.11).sin()
                    + 0.3 * ((u - v) * 0.13).cos();
                data.push((128.0 + 70.0 * s).round().clamp(0.0, 255.0) as u8);
            }
        }
        GrayImage {
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn recovers_a_sub_pixel_shift() {
        let (w, h) = (160, 120);
        let prev = texture(w, h, 0.0, 0.0);
        // Content moves by (+2.3, -1.6) px.
        let next = texture(w, h, -2.3, 1.6);
        let points: Vec<Point> = (0..5)
            .flat_map(|i| (0..4).map(move |j| [30.0 + 25.0 * i as f32, 25.0 + 22.0 * j as f32]))
            .collect();
        let tracked = track(&Pyramid::new(&prev), &Pyramid::new(&next), &points);
        for (p, t) in points.iter().zip(&tracked) {
            let t = t.expect("an interior point on a textured image is tracked");
            assert!(
                (t[0] - p[0] - 2.3).abs() < 0.05 && (t[1] - p[1] + 1.6).abs() < 0.05,
                "{p:?} -> {t:?}"
            );
        }
    }

    #[test]
    fn pyramid_stops_before_the_window() {
        // 240x160 -> 120x80 -> 60x40; 30x20 would be under the 21-pixel window.
        let levels = Pyramid::new(&texture(240, 160, 0.0, 0.0)).levels;
        let sizes: Vec<_> = levels.iter().map(|l| (l.width, l.height)).collect();
        assert_eq!(sizes, [(240, 160), (120, 80), (60, 40)]);
        assert_eq!(Pyramid::new(&texture(960, 540, 0.0, 0.0)).levels.len(), 4);
    }

    #[test]
    fn a_flat_window_is_lost() {
        let flat = GrayImage {
            width: 64,
            height: 64,
            data: vec![100; 64 * 64],
        };
        let pyramid = Pyramid::new(&flat);
        assert_eq!(track(&pyramid, &pyramid, &[[32.0, 32.0]]), [None]);
    }
}
