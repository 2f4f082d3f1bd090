//! Linear assignment as Ultralytics does it: `lap.lapjv(cost, extend_cost=True, cost_limit=thresh)`
//! (lap 0.5.13), then its `linear_assignment` turns the result into matches and leftovers.
//!
//! The solver is a line-by-line port of lap's `lapjv.cpp` rather than any optimal solver: when
//! two assignments cost the same (identical boxes, or costs that tie after the f32 IoU), which of
//! them comes out depends on the algorithm's scan order, and the trackers must pick the same one.

// Index loops keep the port comparable with the C, line for line.
#![allow(clippy::needless_range_loop)]

/// lap's `LARGE`: the initial column price, and the "no second best" sentinel.
const LARGE: f64 = 1_000_000.0;

/// The outcome of one association stage, in the orders Ultralytics produces: matches by row,
/// unmatched rows and columns ascending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Assignment {
    pub matches: Vec<(usize, usize)>,
    pub unmatched_rows: Vec<usize>,
    pub unmatched_cols: Vec<usize>,
}

/// Ultralytics' `matching.linear_assignment(cost, thresh)` for a row-major `rows x cols` matrix.
///
/// A pair is matched only if that is cheaper than leaving both unmatched, which the extended
/// matrix prices at `thresh / 2` per side.
pub(crate) fn linear_assignment(rows: usize, cols: usize, cost: &[f32], thresh: f64) -> Assignment {
    debug_assert_eq!(cost.len(), rows * cols);
    if rows == 0 || cols == 0 {
        return Assignment {
            matches: Vec::new(),
            unmatched_rows: (0..rows).collect(),
            unmatched_cols: (0..cols).collect(),
        };
    }
    let (x, y) = lapjv(rows, cols, cost, thresh);
    Assignment {
        matches: x.iter().enumerate().filter_map(|(i, &j)| j.map(|j| (i, j))).collect(),
        unmatched_rows: x
            .iter()
            .enumerate()
            .filter(|(_, j)| j.is_none())
            .map(|(i, _)| i)
            .collect(),
        unmatched_cols: y
            .iter()
            .enumerate()
            .filter(|(_, i)| i.is_none())
            .map(|(j, _)| j)
            .collect(),
    }
}

/// lap's Python-level `lapjv` with `extend_cost=True`: the row and column each item is assigned
/// to, `None` where it is left unmatched.
fn lapjv(rows: usize, cols: usize, cost: &[f32], cost_limit: f64) -> (Vec<Option<usize>>, Vec<Option<usize>>) {
    let (n, extended) = if cost_limit < f64::INFINITY {
        // Rows n_rows.. and columns n_cols.. are "unmatched" slots: any real row or column may
        // take one for cost_limit / 2, and the dummy-dummy block is free.
        let n = rows + cols;
        let mut c = vec![cost_limit / 2.0; n * n];
        for i in rows..n {
            c[i * n + cols..(i + 1) * n].fill(0.0);
        }
        for i in 0..rows {
            for j in 0..cols {
                c[i * n + j] = f64::from(cost[i * cols + j]);
            }
        }
        (n, c)
    } else {
        let n = rows.max(cols);
        let mut c = vec![0.0; n * n];
        for i in 0..rows {
            for j in 0..cols {
                c[i * n + j] = f64::from(cost[i * cols + j]);
            }
        }
        (n, c)
    };
    let (x, y) = lapjv_internal(n, &extended);
    let x = x[..rows]
        .iter()
        .map(|&j| usize::try_from(j).ok().filter(|&j| j < cols))
        .collect();
    let y = y[..cols]
        .iter()
        .map(|&i| usize::try_from(i).ok().filter(|&i| i < rows))
        .collect();
    (x, y)
}

/// A dense square cost matrix, row-major.
struct Dense<'a> {
    n: usize,
    c: &'a [f64],
}

impl Dense<'_> {
    #[inline]
    fn at(&self, i: usize, j: usize) -> f64 {
        self.c[i * self.n + j]
    }
}

/// `lapjv_internal`: column reduction, two rounds of augmenting row reduction, then augmentation
/// by shortest paths. `x[i]` is row i's column, `y[j]` column j's row (-1 for none).
fn lapjv_internal(n: usize, c: &[f64]) -> (Vec<isize>, Vec<isize>) {
    let cost = Dense { n, c };
    let mut x = vec![-1isize; n];
    let mut y = vec![0isize; n];
    let mut v = vec![LARGE; n];
    let mut free_rows = vec![0usize; n];
    let mut n_free = ccrrt_dense(&cost, &mut free_rows, &mut x, &mut y, &mut v);
    let mut rounds = 0;
    while n_free > 0 && rounds < 2 {
        n_free = carr_dense(&cost, n_free, &mut free_rows, &mut x, &mut y, &mut v);
        rounds += 1;
    }
    if n_free > 0 {
        ca_dense(&cost, &free_rows[..n_free], &mut x, &mut y, &mut v);
    }
    (x, y)
}

/// `_ccrrt_dense`: column reduction and reduction transfer. Returns the number of free rows.
fn ccrrt_dense(cost: &Dense, free_rows: &mut [usize], x: &mut [isize], y: &mut [isize], v: &mut [f64]) -> usize {
    let n = cost.n;
    for i in 0..n {
        for j in 0..n {
            let c = cost.at(i, j);
            if c < v[j] {
                v[j] = c;
                y[j] = i as isize;
            }
        }
    }
    let mut unique = vec![true; n];
    for j in (0..n).rev() {
        let i = y[j] as usize;
        if x[i] < 0 {
            x[i] = j as isize;
        } else {
            unique[i] = false;
            y[j] = -1;
        }
    }
    let mut n_free = 0;
    for i in 0..n {
        if x[i] < 0 {
            free_rows[n_free] = i;
            n_free += 1;
        } else if unique[i] {
            let j = x[i] as usize;
            let mut min = LARGE;
            for j2 in 0..n {
                if j2 == j {
                    continue;
                }
                let c = cost.at(i, j2) - v[j2];
                if c < min {
                    min = c;
                }
            }
            v[j] -= min;
        }
    }
    n_free
}

/// `_carr_dense`: augmenting row reduction. Returns the number of rows still free.
fn carr_dense(
    cost: &Dense,
    n_free_rows: usize,
    free_rows: &mut [usize],
    x: &mut [isize],
    y: &mut [isize],
    v: &mut [f64],
) -> usize {
    let n = cost.n;
    let mut current = 0usize;
    let mut new_free_rows = 0usize;
    let mut rr_cnt = 0usize;
    while current < n_free_rows {
        rr_cnt += 1;
        let free_i = free_rows[current];
        current += 1;
        let mut j1 = 0usize;
        let mut v1 = cost.at(free_i, 0) - v[0];
        let mut j2: isize = -1;
        let mut v2 = LARGE;
        for j in 1..n {
            let c = cost.at(free_i, j) - v[j];
            if c < v2 {
                if c >= v1 {
                    v2 = c;
                    j2 = j as isize;
                } else {
                    v2 = v1;
                    v1 = c;
                    j2 = j1 as isize;
                    j1 = j;
                }
            }
        }
        let mut i0 = y[j1];
        let v1_new = v[j1] - (v2 - v1);
        let v1_lowers = v1_new < v[j1];
        if rr_cnt < current * n {
            if v1_lowers {
                v[j1] = v1_new;
            } else if i0 >= 0 && j2 >= 0 {
                j1 = j2 as usize;
                i0 = y[j1];
            }
            if i0 >= 0 {
                if v1_lowers {
                    current -= 1;
                    free_rows[current] = i0 as usize;
                } else {
                    free_rows[new_free_rows] = i0 as usize;
                    new_free_rows += 1;
                }
            }
        } else if i0 >= 0 {
            free_rows[new_free_rows] = i0 as usize;
            new_free_rows += 1;
        }
        x[free_i] = j1 as isize;
        y[j1] = free_i as isize;
    }
    new_free_rows
}

/// `_find_dense`: moves the TODO columns with the least `d` to the SCAN list `cols[lo..hi]`.
fn find_dense(n: usize, lo: usize, d: &[f64], cols: &mut [usize]) -> usize {
    let mut hi = lo + 1;
    let mut mind = d[cols[lo]];
    for k in lo + 1..n {
        let j = cols[k];
        if d[j] <= mind {
            if d[j] < mind {
                hi = lo;
                mind = d[j];
            }
            cols[k] = cols[hi];
            cols[hi] = j;
            hi += 1;
        }
    }
    hi
}

/// `_scan_dense`: relaxes the TODO columns through the SCAN columns. Returns a free column
/// reached at the current minimum, if any; `lo`/`hi` are only written back when none is, as in
/// lap (the caller then reads `d[cols[lo]]` with the `lo` from before the scan).
// The TODO range is fixed when the loop starts, as in C, while `hi` moves on.
#[allow(clippy::too_many_arguments, clippy::mut_range_bound)]
fn scan_dense(
    cost: &Dense,
    plo: &mut usize,
    phi: &mut usize,
    d: &mut [f64],
    cols: &mut [usize],
    pred: &mut [usize],
    y: &[isize],
    v: &[f64],
) -> Option<usize> {
    let n = cost.n;
    let mut lo = *plo;
    let mut hi = *phi;
    while lo != hi {
        let j = cols[lo];
        lo += 1;
        let i = y[j] as usize;
        let mind = d[j];
        let h = cost.at(i, j) - v[j] - mind;
        for k in hi..n {
            let j = cols[k];
            let cred_ij = cost.at(i, j) - v[j] - h;
            if cred_ij < d[j] {
                d[j] = cred_ij;
                pred[j] = i;
                if cred_ij == mind {
                    if y[j] < 0 {
                        return Some(j);
                    }
                    cols[k] = cols[hi];
                    cols[hi] = j;
                    hi += 1;
                }
            }
        }
    }
    *plo = lo;
    *phi = hi;
    None
}

/// `find_path_dense`: one Dijkstra-like search from `start_i`; returns the free column it ends at
/// and updates the column prices.
fn find_path_dense(cost: &Dense, start_i: usize, y: &[isize], v: &mut [f64], pred: &mut [usize]) -> usize {
    let n = cost.n;
    let mut lo = 0usize;
    let mut hi = 0usize;
    let mut n_ready = 0usize;
    let mut cols: Vec<usize> = (0..n).collect();
    let mut d: Vec<f64> = (0..n).map(|j| cost.at(start_i, j) - v[j]).collect();
    pred.fill(start_i);
    let mut final_j = None;
    while final_j.is_none() {
        if lo == hi {
            n_ready = lo;
            hi = find_dense(n, lo, &d, &mut cols);
            for &j in &cols[lo..hi] {
                if y[j] < 0 {
                    final_j = Some(j);
                }
            }
        }
        if final_j.is_none() {
            final_j = scan_dense(cost, &mut lo, &mut hi, &mut d, &mut cols, pred, y, v);
        }
    }
    let mind = d[cols[lo]];
    for &j in &cols[..n_ready] {
        v[j] += d[j] - mind;
    }
    final_j.unwrap_or_default()
}

/// `_ca_dense`: augments along a shortest path from each remaining free row.
fn ca_dense(cost: &Dense, free_rows: &[usize], x: &mut [isize], y: &mut [isize], v: &mut [f64]) {
    let mut pred = vec![0usize; cost.n];
    for &free_i in free_rows {
        let mut j = find_path_dense(cost, free_i, y, v, &mut pred) as isize;
        // A path visits each row once; the bound only guards against a corrupted state.
        for _ in 0..cost.n {
            let i = pred[j as usize];
            y[j as usize] = i as isize;
            std::mem::swap(&mut j, &mut x[i]);
            if i == free_i {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator, so the tests need no extra crates.
    struct Lcg(u64);
    impl Lcg {
        fn next_f32(&mut self) -> f32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 40) as f32) / ((1u64 << 24) as f32)
        }
    }

    /// The best total over all partial matchings (each pair costs its entry, each unmatched row
    /// or column costs thresh / 2), by trying every matching.
    fn brute_force(rows: usize, cols: usize, cost: &[f32], thresh: f64) -> f64 {
        fn go(i: usize, rows: usize, cols: usize, cost: &[f32], thresh: f64, used: &mut Vec<bool>) -> f64 {
            if i == rows {
                return used.iter().filter(|u| !**u).count() as f64 * thresh / 2.0;
            }
            let mut best = thresh / 2.0 + go(i + 1, rows, cols, cost, thresh, used);
            for j in 0..cols {
                if !used[j] {
                    used[j] = true;
                    best = best.min(f64::from(cost[i * cols + j]) + go(i + 1, rows, cols, cost, thresh, used));
                    used[j] = false;
                }
            }
            best
        }
        go(0, rows, cols, cost, thresh, &mut vec![false; cols])
    }

    fn total(a: &Assignment, cols: usize, cost: &[f32], thresh: f64) -> f64 {
        let matched: f64 = a.matches.iter().map(|&(i, j)| f64::from(cost[i * cols + j])).sum();
        matched + (a.unmatched_rows.len() + a.unmatched_cols.len()) as f64 * thresh / 2.0
    }

    #[test]
    fn optimal_against_brute_force() {
        let mut rng = Lcg(7);
        for trial in 0..3000 {
            let rows = trial % 6;
            let cols = (trial / 6) % 6;
            // Quantised costs make ties common, which is where the scan order matters.
            let quantised = trial % 3 == 0;
            let cost: Vec<f32> = (0..rows * cols)
                .map(|_| {
                    let c = rng.next_f32();
                    if quantised { (c * 4.0).floor() / 4.0 } else { c }
                })
                .collect();
            let thresh = [0.5, 0.7, 0.8, 1.0][trial % 4];
            let a = linear_assignment(rows, cols, &cost, thresh);
            let mut seen_rows = vec![false; rows];
            let mut seen_cols = vec![false; cols];
            for &(i, j) in &a.matches {
                assert!(
                    !seen_rows[i] && !seen_cols[j],
                    "trial {trial}: a row or column matched twice"
                );
                seen_rows[i] = true;
                seen_cols[j] = true;
            }
            for &i in &a.unmatched_rows {
                assert!(!seen_rows[i]);
                seen_rows[i] = true;
            }
            for &j in &a.unmatched_cols {
                assert!(!seen_cols[j]);
                seen_cols[j] = true;
            }
            assert!(
                seen_rows.iter().chain(&seen_cols).all(|s| *s),
                "trial {trial}: something unaccounted for"
            );
            let best = brute_force(rows, cols, &cost, thresh);
            let got = total(&a, cols, &cost, thresh);
            assert!(
                (got - best).abs() < 1e-9,
                "trial {trial}: total {got}, optimum {best}, costs {cost:?}"
            );
        }
    }

    #[test]
    fn empty_matrices_leave_everything_unmatched() {
        let a = linear_assignment(3, 0, &[], 0.8);
        assert_eq!(
            a,
            Assignment {
                matches: vec![],
                unmatched_rows: vec![0, 1, 2],
                unmatched_cols: vec![]
            }
        );
        let a = linear_assignment(0, 2, &[], 0.8);
        assert_eq!(
            a,
            Assignment {
                matches: vec![],
                unmatched_rows: vec![],
                unmatched_cols: vec![0, 1]
            }
        );
    }

    #[test]
    fn pairs_over_the_limit_stay_unmatched() {
        let a = linear_assignment(2, 2, &[0.9, 0.95, 0.2, 0.85], 0.8);
        assert_eq!(
            a,
            Assignment {
                matches: vec![(1, 0)],
                unmatched_rows: vec![0],
                unmatched_cols: vec![1]
            }
        );
    }

    /// Outputs of lap 0.5.13 itself (`lap.lapjv(c, extend_cost=True, cost_limit=t)`) on matrices
    /// full of ties, where only the same algorithm gives the same answer. Made by
    /// tests/fixtures/lap-ties.py (see there).
    #[test]
    fn ties_resolve_as_lap_does() {
        let cases = include_str!("../tests/fixtures/lap-ties.txt");
        let mut checked = 0;
        for line in cases.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
            let fields: Vec<&str> = line.split(';').collect();
            let dims: Vec<usize> = fields[0].split_whitespace().map(|s| s.parse().unwrap()).collect();
            let thresh: f64 = fields[1].trim().parse().unwrap();
            let cost: Vec<f32> = fields[2].split_whitespace().map(|s| s.parse().unwrap()).collect();
            let parse_idx = |s: &str| -> Vec<Option<usize>> {
                s.split_whitespace()
                    .map(|t| t.parse::<isize>().unwrap())
                    .map(|v| usize::try_from(v).ok())
                    .collect()
            };
            let (x, y) = lapjv(dims[0], dims[1], &cost, thresh);
            assert_eq!(x, parse_idx(fields[3]), "rows of {line}");
            assert_eq!(y, parse_idx(fields[4]), "columns of {line}");
            checked += 1;
        }
        assert!(checked >= 100, "only {checked} cases");
    }
}
