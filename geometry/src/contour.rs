//! The outer contour of the largest 8-connected component of a binary mask, traced through
//! its boundary pixels (as OpenCV's `findContours` with `RETR_EXTERNAL` does), holes ignored.
//!
//! Components are found on row spans (union-find), so the work grows with the outline and
//! the number of spans, not with the mask's area; only the chosen component is drawn into a
//! bitmap for tracing.

/// Neighbour offsets, clockwise on screen (y grows downwards), starting east.
const DIRS: [(i32, i32); 8] = [(1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1)];

/// A run of foreground pixels in one row: columns `start..end`.
#[derive(Debug, Clone, Copy)]
struct Span {
    row: usize,
    start: usize,
    end: usize,
}

/// Spans from run lengths over a `width`-wide image (background first), in raster order.
fn spans_of_runs(width: usize, runs: &[u32]) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut pos = 0usize;
    for (i, &run) in runs.iter().enumerate() {
        let (mut p, end) = (pos, pos + run as usize);
        if i % 2 == 1 {
            while p < end {
                let row = p / width;
                let row_end = end.min((row + 1) * width);
                spans.push(Span {
                    row,
                    start: p % width,
                    end: p % width + (row_end - p),
                });
                p = row_end;
            }
        }
        pos = end;
    }
    spans
}

/// Spans from a row-major grid of bits, in raster order.
fn spans_of_bits(width: usize, height: usize, bits: &[bool]) -> Vec<Span> {
    let mut spans = Vec::new();
    for row in 0..height {
        let line = &bits[row * width..((row + 1) * width).min(bits.len())];
        let mut col = 0;
        while col < line.len() {
            if line[col] {
                let start = col;
                while col < line.len() && line[col] {
                    col += 1;
                }
                spans.push(Span { row, start, end: col });
            } else {
                col += 1;
            }
        }
    }
    spans
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// The spans of the largest 8-connected component (the first in raster order on a tie).
fn largest_component(spans: &[Span]) -> Vec<Span> {
    components(spans, 1).into_iter().next().unwrap_or_default()
}

/// The spans of every 8-connected component of at least `min_pixels` pixels, largest first
/// (raster order on a tie).
fn components(spans: &[Span], min_pixels: usize) -> Vec<Vec<Span>> {
    let mut parent: Vec<usize> = (0..spans.len()).collect();
    // Spans of the previous row are a window that slides along the raster-ordered list.
    let (mut prev_start, mut row_start) = (0, 0);
    for i in 0..spans.len() {
        if i > 0 && spans[i].row != spans[i - 1].row {
            prev_start = if spans[i].row == spans[i - 1].row + 1 {
                row_start
            } else {
                i
            };
            row_start = i;
        }
        let s = spans[i];
        for (j, p) in spans.iter().enumerate().take(row_start).skip(prev_start) {
            // Diagonal neighbours count: columns overlap within one pixel.
            if p.start <= s.end && s.start <= p.end {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut sizes = vec![0usize; spans.len()];
    for (i, span) in spans.iter().enumerate() {
        let root = find(&mut parent, i);
        sizes[root] += span.end - span.start;
    }
    // Roots are each component's first span, so a stable sort settles ties by raster order.
    let mut roots: Vec<usize> = (0..spans.len())
        .filter(|&i| parent[i] == i && sizes[i] >= min_pixels.max(1))
        .collect();
    roots.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]));
    let mut slot = vec![usize::MAX; spans.len()];
    for (n, &root) in roots.iter().enumerate() {
        slot[root] = n;
    }
    let mut out = vec![Vec::new(); roots.len()];
    for (i, span) in spans.iter().enumerate() {
        let n = slot[find(&mut parent, i)];
        if n != usize::MAX {
            out[n].push(*span);
        }
    }
    out
}

/// One component drawn into its bounding box, with a one-pixel empty border so that
/// neighbour lookups never leave it.
struct Bitmap {
    /// Image coordinates of the bitmap's (0, 0).
    x0: i32,
    y0: i32,
    width: usize,
    bits: Vec<u8>,
}

impl Bitmap {
    fn draw(spans: &[Span]) -> Option<Bitmap> {
        let top = spans.first()?.row;
        let bottom = spans.last()?.row;
        let left = spans.iter().map(|s| s.start).min()?;
        let right = spans.iter().map(|s| s.end).max()?;
        let width = right - left + 2;
        let mut bits = vec![0u8; width * (bottom - top + 3)];
        for s in spans {
            let line = (s.row - top + 1) * width;
            bits[line + s.start - left + 1..line + s.end - left + 1].fill(1);
        }
        Some(Bitmap {
            x0: left as i32 - 1,
            y0: top as i32 - 1,
            width,
            bits,
        })
    }

    fn index(&self, x: i32, y: i32) -> usize {
        y as usize * self.width + x as usize
    }
}

/// The outline of the largest connected piece of a mask given as run lengths over a
/// `width`-wide image (background first), clockwise, in image pixel coordinates (each point
/// a boundary pixel). `None` for an empty mask.
pub fn outline_of_runs(width: usize, runs: &[u32]) -> Option<Vec<(i32, i32)>> {
    if width == 0 {
        return None;
    }
    outline(&spans_of_runs(width, runs))
}

/// The same for a row-major grid of bits.
pub fn outline_of_bits(width: usize, height: usize, bits: &[bool]) -> Option<Vec<(i32, i32)>> {
    outline(&spans_of_bits(width, height, bits))
}

/// The outlines of every piece of at least `min_pixels` pixels of a row-major grid of bits,
/// largest first.
pub fn outlines_of_bits(width: usize, height: usize, bits: &[bool], min_pixels: usize) -> Vec<Vec<(i32, i32)>> {
    components(&spans_of_bits(width, height, bits), min_pixels)
        .iter()
        .filter_map(|component| outline_of_component(component))
        .collect()
}

fn outline(spans: &[Span]) -> Option<Vec<(i32, i32)>> {
    outline_of_component(&largest_component(spans))
}

fn outline_of_component(component: &[Span]) -> Option<Vec<(i32, i32)>> {
    let bitmap = Bitmap::draw(component)?;
    let first = component[0];
    let start = (first.start as i32 - bitmap.x0, first.row as i32 - bitmap.y0);
    Some(
        trace(&bitmap, start)
            .into_iter()
            .map(|(x, y)| (x + bitmap.x0, y + bitmap.y0))
            .collect(),
    )
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

    #[test]
    fn every_piece_above_the_floor_largest_first() {
        let rows = ["##......", "##..####", "....#..#", "....####", "#......."];
        let bits: Vec<bool> = rows.iter().flat_map(|r| r.chars()).map(|c| c == '#').collect();
        let all = outlines_of_bits(8, 5, &bits, 1);
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!(all[0].first(), Some(&(4, 1)), "the ring (10 pixels) first");
        assert_eq!(all[1].first(), Some(&(0, 0)), "then the 2x2 block");
        assert_eq!(all[2], vec![(0, 4)]);
        assert_eq!(
            outlines_of_bits(8, 5, &bits, 2).len(),
            2,
            "the lone pixel is below the floor"
        );
    }
}
