//! The 8-bit gray frame GMC works on: OpenCV's `cvtColor(BGR2GRAY)` and `resize(INTER_LINEAR)`
//! with their integer arithmetic, so that the same frame gives the same pixels.

/// An 8-bit single-channel image, row after row with no padding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GrayImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

/// Luma of an RGB8 frame (`rgb.len()` must be `width * height * 3`).
///
/// The weights are those of the reference's OpenCV: opencv-python's x86-64 wheels route
/// `cvtColor(BGR2GRAY)` through Intel IPP, whose fixed point is 15 bits,
/// `(9798 R + 19235 G + 3735 B + 2^14) >> 15` (checked on all 2^24 colours). OpenCV's own
/// 14-bit weights `(4899, 9617, 1868)` differ from it by one level on about 0.2% of pixels.
pub(crate) fn rgb_to_gray(rgb: &[u8], width: usize, height: usize) -> GrayImage {
    let data = rgb
        .chunks_exact(3)
        .take(width * height)
        .map(|p| ((u32::from(p[0]) * 9798 + u32::from(p[1]) * 19235 + u32::from(p[2]) * 3735 + (1 << 14)) >> 15) as u8)
        .collect();
    GrayImage { width, height, data }
}

/// `cv2.resize(src, (width, height))` with its default `INTER_LINEAR`, for 8-bit images.
///
/// OpenCV's bilinear resize is fixed point: 11-bit weights rounded from `f32` positions, a
/// horizontal pass into `i32`, and a vertical pass whose rounding (`>> 4`, a 16-bit multiply-high
/// each row, then `(sum + 2) >> 2`) is that of its SIMD kernel, which the scalar tail copies.
/// An exact 2x shrink switches to `INTER_AREA`, the rounded mean of each 2x2 block (which the
/// bilinear weights, one half each, would give too). `width` and `height` must not be zero.
pub(crate) fn resize_linear(src: &GrayImage, width: usize, height: usize) -> GrayImage {
    if width == src.width && height == src.height {
        return src.clone();
    }
    if width * 2 == src.width && height * 2 == src.height {
        return half(src);
    }
    let xs = Taps::new(src.width, width);
    let ys = Taps::new(src.height, height);
    let next_row = |sy: usize| (sy + 1).min(src.height - 1);

    // The horizontal pass of each source row that the vertical pass reads, once.
    let mut needed = vec![false; src.height];
    for dy in 0..height {
        let sy = ys.at(dy).0;
        needed[sy] = true;
        needed[next_row(sy)] = true;
    }
    let rows: Vec<Vec<i32>> = needed
        .iter()
        .enumerate()
        .map(|(y, &n)| if n { horizontal(src, y, &xs) } else { Vec::new() })
        .collect();

    let mut data = vec![0u8; width * height];
    for (dy, out) in data.chunks_exact_mut(width).enumerate() {
        let (sy, [b0, b1]) = ys.at(dy);
        for ((o, &s0), &s1) in out.iter_mut().zip(&rows[sy]).zip(&rows[next_row(sy)]) {
            let v = ((b0 * (s0 >> 4)) >> 16) + ((b1 * (s1 >> 4)) >> 16);
            *o = ((v + 2) >> 2).clamp(0, 255) as u8;
        }
    }
    GrayImage { width, height, data }
}

/// The rounded mean of each 2x2 block.
fn half(src: &GrayImage) -> GrayImage {
    let (width, height) = (src.width / 2, src.height / 2);
    let mut data = Vec::with_capacity(width * height);
    for rows in src.data.chunks_exact(2 * src.width) {
        let (top, bottom) = rows.split_at(src.width);
        data.extend(
            top.chunks_exact(2)
                .zip(bottom.chunks_exact(2))
                .map(|(t, b)| ((u16::from(t[0]) + u16::from(t[1]) + u16::from(b[0]) + u16::from(b[1]) + 2) >> 2) as u8),
        );
    }
    GrayImage { width, height, data }
}

fn horizontal(src: &GrayImage, y: usize, xs: &Taps) -> Vec<i32> {
    let row = &src.data[y * src.width..(y + 1) * src.width];
    (0..xs.len())
        .map(|dx| {
            let (sx, [a0, a1]) = xs.at(dx);
            let right = row.get(sx + 1).copied().unwrap_or(0);
            i32::from(row[sx]) * a0 + i32::from(right) * a1
        })
        .collect()
}

/// Source index and the two 11-bit weights of each destination pixel along one axis.
struct Taps {
    taps: Vec<(usize, [i32; 2])>,
}

impl Taps {
    fn new(src_len: usize, dst_len: usize) -> Taps {
        const ONE: f32 = 2048.0;
        // OpenCV keeps the inverse scale and inverts it back; the double rounding is its own.
        let scale = 1.0 / (dst_len as f64 / src_len as f64);
        let taps = (0..dst_len)
            .map(|d| {
                let pos = ((d as f64 + 0.5) * scale - 0.5) as f32;
                let mut s = pos.floor() as i64;
                let mut frac = pos - s as f32;
                if s < 0 {
                    s = 0;
                    frac = 0.0;
                }
                if s >= src_len as i64 - 1 {
                    s = src_len as i64 - 1;
                    frac = 0.0;
                }
                let w0 = ((1.0 - frac) * ONE).round_ties_even() as i32;
                let w1 = (frac * ONE).round_ties_even() as i32;
                (s as usize, [w0, w1])
            })
            .collect();
        Taps { taps }
    }

    fn len(&self) -> usize {
        self.taps.len()
    }

    fn at(&self, i: usize) -> (usize, [i32; 2]) {
        self.taps[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gray_matches_opencv() {
        // cv2.cvtColor(BGR2GRAY) of these RGB triples (given to OpenCV as BGR), from the
        // reference venv; the last five are rounding cases where OpenCV's 14-bit weights differ.
        let rgb: [[u8; 3]; 12] = [
            [0, 0, 0],
            [255, 255, 255],
            [255, 0, 0],
            [0, 255, 0],
            [0, 0, 255],
            [12, 200, 97],
            [250, 3, 128],
            [71, 0, 55],
            [19, 197, 63],
            [117, 122, 236],
            [188, 59, 111],
            [44, 8, 225],
        ];
        let expected = [0u8, 255, 76, 150, 29, 132, 91, 27, 129, 133, 103, 43];
        let flat: Vec<u8> = rgb.iter().flatten().copied().collect();
        assert_eq!(rgb_to_gray(&flat, 12, 1).data, expected);
    }

    #[test]
    fn exact_half_matches_opencv() {
        let data = vec![
            61, 233, 156, 237, 12, 219, //
            92, 13, 17, 251, 249, 136, //
            115, 140, 154, 199, 199, 107, //
            121, 218, 92, 123, 23, 191,
        ];
        let src = GrayImage {
            width: 6,
            height: 4,
            data,
        };
        // cv2.resize to 3x2, from the reference venv: the rounded 2x2 means.
        assert_eq!(resize_linear(&src, 3, 2).data, [100, 165, 154, 149, 142, 130]);
        // The bilinear weights at this scale are one half each, so either path gives these.
        let (xs, ys) = (Taps::new(6, 3), Taps::new(4, 2));
        assert!((0..3).all(|i| xs.at(i).1 == [1024, 1024]) && (0..2).all(|i| ys.at(i).1 == [1024, 1024]));
    }

    #[test]
    fn odd_sizes_match_opencv() {
        // cv2.resize of this 7x5 ramp-and-noise image to 3x2 and 5x3 (not exact halves, so
        // bilinear), from the reference venv.
        let data: Vec<u8> = vec![
            10, 200, 30, 40, 250, 60, 70, //
            80, 90, 100, 110, 120, 130, 140, //
            150, 160, 170, 180, 190, 200, 210, //
            220, 230, 240, 250, 5, 15, 25, //
            35, 45, 55, 65, 75, 85, 95,
        ];
        let src = GrayImage {
            width: 7,
            height: 5,
            data,
        };
        assert_eq!(resize_linear(&src, 3, 2).data, EXPECTED_3X2);
        assert_eq!(resize_linear(&src, 5, 3).data, EXPECTED_5X3);
    }

    const EXPECTED_3X2: [u8; 6] = [99, 93, 116, 180, 204, 36];
    const EXPECTED_5X3: [u8; 15] = [59, 97, 63, 157, 91, 152, 166, 180, 194, 208, 99, 112, 127, 55, 69];
}
