//! The outer contour of the largest 8-connected component of a binary mask, traced through
//! its boundary pixels (as OpenCV's `findContours` with `RETR_EXTERNAL` does), holes ignored.

/// Neighbour offsets, clockwise on screen (y grows downwards), starting east.
const DIRS: [(i32, i32); 8] = [(1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1)];

/// The mask's foreground cut to its bounding box, with a one-pixel empty border so that
/// neighbour lookups never leave it.
struct Bitmap {
    /// Image coordinates of the bitmap's (1, 1).
    x0: i32,
    y0: i32,
    width: usize,
    height: usize,
    bits: Vec<u8>,
}

impl Bitmap {
    /// From run lengths over a `width`-wide image, alternating background and foreground,
    /// background first.
    fn from_runs(width: usize, runs: &[u32]) -> Option<Bitmap> {
        let w = width;
        if w == 0 {
            return None;
        }
        // Foreground spans as (start, end) pixel offsets.
        let mut spans = Vec::new();
        let mut pos = 0usize;
        for (i, &run) in runs.iter().enumerate() {
            let run = run as usize;
            if i % 2 == 1 && run > 0 {
                spans.push((pos, pos + run));
            }
            pos += run;
        }
        let (first, last) = (spans.first()?.0, spans.last()?.1 - 1);
        let (top, bottom) = (first / w, last / w);
        let (mut left, mut right) = (w, 0);
        for &(s, e) in &spans {
            if s / w == (e - 1) / w {
                left = left.min(s % w);
                right = right.max((e - 1) % w);
            } else {
                (left, right) = (0, w - 1);
                break;
            }
        }
        let mut bitmap = Bitmap::empty(left, top, right, bottom);
        for &(s, e) in &spans {
            let mut p = s;
            while p < e {
                let (row, col) = (p / w, p % w);
                let row_end = e.min((row + 1) * w);
                for c in col..col + (row_end - p) {
                    bitmap.set(c, row);
                }
                p = row_end;
            }
        }
        Some(bitmap)
    }

    /// From a row-major grid of `width` x `height` bits.
    fn from_bits(width: usize, height: usize, bits: &[bool]) -> Option<Bitmap> {
        let set = |x: usize, y: usize| bits.get(y * width + x).copied().unwrap_or(false);
        let rows: Vec<usize> = (0..height).filter(|&y| (0..width).any(|x| set(x, y))).collect();
        let (top, bottom) = (*rows.first()?, *rows.last()?);
        let left = (0..width).find(|&x| (top..=bottom).any(|y| set(x, y)))?;
        let right = (0..width).rev().find(|&x| (top..=bottom).any(|y| set(x, y)))?;
        let mut bitmap = Bitmap::empty(left, top, right, bottom);
        for y in top..=bottom {
            for x in left..=right {
                if set(x, y) {
                    bitmap.set(x, y);
                }
            }
        }
        Some(bitmap)
    }

    /// An empty bitmap for the image pixels `left..=right` x `top..=bottom`.
    fn empty(left: usize, top: usize, right: usize, bottom: usize) -> Bitmap {
        let (width, height) = (right - left + 3, bottom - top + 3);
        Bitmap {
            x0: left as i32 - 1,
            y0: top as i32 - 1,
            width,
            height,
            bits: vec![0u8; width * height],
        }
    }

    /// Sets the image pixel (x, y).
    fn set(&mut self, x: usize, y: usize) {
        let i = self.index(x as i32 - self.x0, y as i32 - self.y0);
        self.bits[i] = 1;
    }

    fn index(&self, x: i32, y: i32) -> usize {
        y as usize * self.width + x as usize
    }
}

/// The outline of the largest connected piece of a mask given as run lengths over a
/// `width`-wide image (background first), clockwise, in image pixel coordinates (each point
/// a boundary pixel). `None` for an empty mask.
pub fn outline_of_runs(width: usize, runs: &[u32]) -> Option<Vec<(i32, i32)>> {
    outline(Bitmap::from_runs(width, runs)?)
}

/// The same for a row-major grid of bits.
pub fn outline_of_bits(width: usize, height: usize, bits: &[bool]) -> Option<Vec<(i32, i32)>> {
    outline(Bitmap::from_bits(width, height, bits)?)
}

fn outline(mut bitmap: Bitmap) -> Option<Vec<(i32, i32)>> {
    let start = largest_component(&mut bitmap)?;
    let points = trace(&bitmap, start);
    Some(
        points
            .into_iter()
            .map(|(x, y)| (x + bitmap.x0, y + bitmap.y0))
            .collect(),
    )
}

/// Labels 8-connected components in place (foreground 1 becomes its label + 2) and returns
/// the first pixel, in raster order, of the largest; every other component is cleared.
fn largest_component(bitmap: &mut Bitmap) -> Option<(i32, i32)> {
    let mut best: Option<(usize, u8, (i32, i32))> = None;
    let mut stack = Vec::new();
    // Labels cycle through 2..=255; only "this one" vs "the best so far" matters, and the
    // best one is copied out before its label can come round again.
    let mut label: u8 = 1;
    let mut keep = vec![0u8; bitmap.bits.len()];
    for y in 1..bitmap.height as i32 - 1 {
        for x in 1..bitmap.width as i32 - 1 {
            if bitmap.bits[bitmap.index(x, y)] != 1 {
                continue;
            }
            label = if label == 255 { 2 } else { label + 1 };
            let mut members = Vec::new();
            stack.push((x, y));
            let at = bitmap.index(x, y);
            bitmap.bits[at] = label;
            while let Some((cx, cy)) = stack.pop() {
                members.push(bitmap.index(cx, cy));
                for (dx, dy) in DIRS {
                    let (nx, ny) = (cx + dx, cy + dy);
                    let i = bitmap.index(nx, ny);
                    if bitmap.bits[i] == 1 {
                        bitmap.bits[i] = label;
                        stack.push((nx, ny));
                    }
                }
            }
            if best.is_none_or(|(size, _, _)| members.len() > size) {
                keep.iter_mut().for_each(|k| *k = 0);
                for &i in &members {
                    keep[i] = 1;
                }
                best = Some((members.len(), label, (x, y)));
            }
        }
    }
    bitmap.bits = keep;
    best.map(|(_, _, start)| start)
}

/// Moore-neighbour tracing of the outer boundary, from the component's first pixel in
/// raster order (whose west neighbour is background), stopping when the first step repeats.
fn trace(bitmap: &Bitmap, start: (i32, i32)) -> Vec<(i32, i32)> {
    let fg = |(x, y): (i32, i32)| bitmap.bits[bitmap.index(x, y)] == 1;
    let mut contour = vec![start];
    let mut current = start;
    // Direction from the current pixel to the background pixel we came from.
    let mut back = 4;
    let mut first_step: Option<(i32, i32)> = None;
    loop {
        let mut next = None;
        for i in 1..=8 {
            let dir = (back + i) % 8;
            let candidate = (current.0 + DIRS[dir].0, current.1 + DIRS[dir].1);
            if fg(candidate) {
                let (px, py) = DIRS[(dir + 7) % 8];
                let previous = (current.0 + px, current.1 + py);
                back = direction(candidate, previous);
                next = Some(candidate);
                break;
            }
        }
        let Some(next) = next else {
            return contour; // a single pixel
        };
        if current == start {
            match first_step {
                None => first_step = Some(next),
                Some(step) if step == next => {
                    contour.pop(); // the start, reached again
                    return contour;
                }
                Some(_) => {}
            }
        }
        contour.push(next);
        current = next;
    }
}

/// The direction index from `from` to its neighbour `to`.
fn direction(from: (i32, i32), to: (i32, i32)) -> usize {
    let delta = (to.0 - from.0, to.1 - from.1);
    DIRS.iter().position(|d| *d == delta).unwrap_or(4)
}

/// Shoelace area of a closed polygon.
pub fn area(points: &[(f64, f64)]) -> f64 {
    let n = points.len();
    (0..n)
        .map(|i| {
            let (a, b) = (points[i], points[(i + 1) % n]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum::<f64>()
        .abs()
        / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mask from rows of '#' and '.', as (width, runs) and as bits.
    fn mask(rows: &[&str]) -> (usize, Vec<u32>) {
        let mut runs = vec![0u32];
        let mut fg = false;
        for c in rows.iter().flat_map(|r| r.chars()) {
            let on = c == '#';
            if on != fg {
                runs.push(0);
                fg = on;
            }
            *runs.last_mut().expect("a run") += 1;
        }
        (rows[0].len(), runs)
    }

    /// Both entry points must agree; returns their outline.
    fn traced(rows: &[&str]) -> Option<Vec<(i32, i32)>> {
        let (width, runs) = mask(rows);
        let bits: Vec<bool> = rows.iter().flat_map(|r| r.chars()).map(|c| c == '#').collect();
        let from_runs = outline_of_runs(width, &runs);
        assert_eq!(from_runs, outline_of_bits(width, rows.len(), &bits));
        from_runs
    }

    #[test]
    fn traces_a_square_clockwise() {
        let c = traced(&["......", ".###..", ".###..", ".###..", "......"]).expect("outline");
        assert_eq!(c, vec![(1, 1), (2, 1), (3, 1), (3, 2), (3, 3), (2, 3), (1, 3), (1, 2)]);
        let f: Vec<(f64, f64)> = c.iter().map(|&(x, y)| (x as f64, y as f64)).collect();
        assert_eq!(area(&f), 4.0, "pixel-centre outline of a 3x3 square");
    }

    #[test]
    fn keeps_the_largest_piece_and_ignores_holes() {
        let c = traced(&["##......", "##..####", "....#..#", "....####", "........"]).expect("outline");
        assert_eq!(c.first(), Some(&(4, 1)), "the ring, not the 2x2 block");
        assert!(c.iter().all(|&(x, y)| (4..=7).contains(&x) && (1..=3).contains(&y)));
        assert_eq!(c.len(), 10, "the outer boundary only: {c:?}");
    }

    #[test]
    fn thin_and_tiny_shapes() {
        assert_eq!(traced(&["...", ".#.", "..."]), Some(vec![(1, 1)]));
        let diagonal = traced(&["#..", ".#.", "..#"]).expect("diagonal");
        assert_eq!(diagonal, vec![(0, 0), (1, 1), (2, 2), (1, 1)]);
        assert_eq!(traced(&["...", "..."]), None);
        // Foreground touching the image border.
        let full = traced(&["##", "##"]).expect("full");
        assert_eq!(full, vec![(0, 0), (1, 0), (1, 1), (0, 1)]);
    }
}
