//! Douglas–Peucker simplification of a closed outline.

/// Drops points closer than `epsilon` pixels to the simplified outline. The outline is
/// closed (the last point connects to the first); the first point is always kept.
pub fn douglas_peucker(points: &[(f64, f64)], epsilon: f64) -> Vec<(f64, f64)> {
    if points.len() < 4 || epsilon <= 0.0 {
        return points.to_vec();
    }
    // Split the ring at its first point and the point farthest from it; simplify both halves.
    let far = (1..points.len())
        .max_by(|&a, &b| dist2(points[0], points[a]).total_cmp(&dist2(points[0], points[b])))
        .unwrap_or(1);
    let mut ring: Vec<(f64, f64)> = points.to_vec();
    ring.push(points[0]);
    let mut keep = vec![false; ring.len()];
    keep[0] = true;
    keep[far] = true;
    keep[ring.len() - 1] = true;
    let mut stack = vec![(0, far), (far, ring.len() - 1)];
    while let Some((a, b)) = stack.pop() {
        if b <= a + 1 {
            continue;
        }
        let (mut worst, mut at) = (0.0, a);
        for i in a + 1..b {
            let d = segment_distance(ring[i], ring[a], ring[b]);
            if d > worst {
                (worst, at) = (d, i);
            }
        }
        if worst > epsilon {
            keep[at] = true;
            stack.push((a, at));
            stack.push((at, b));
        }
    }
    ring.pop();
    ring.into_iter().zip(keep).filter_map(|(p, k)| k.then_some(p)).collect()
}

/// Drops points that lie exactly on the straight line through their neighbours: the same
/// outline, as OpenCV's `CHAIN_APPROX_SIMPLE` leaves it.
pub fn drop_collinear(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let n = points.len();
    if n < 3 {
        return points.to_vec();
    }
    (0..n)
        .filter(|&i| {
            let (a, p, b) = (points[(i + n - 1) % n], points[i], points[(i + 1) % n]);
            let cross = (p.0 - a.0) * (b.1 - a.1) - (p.1 - a.1) * (b.0 - a.0);
            let forward = (p.0 - a.0) * (b.0 - p.0) + (p.1 - a.1) * (b.1 - p.1) > 0.0;
            !(cross == 0.0 && forward)
        })
        .map(|i| points[i])
        .collect()
}

fn dist2(a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)
}

/// Distance from `p` to the segment `a`-`b`.
fn segment_distance(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let len2 = dist2(a, b);
    if len2 == 0.0 {
        return dist2(p, a).sqrt();
    }
    let t = (((p.0 - a.0) * (b.0 - a.0) + (p.1 - a.1) * (b.1 - a.1)) / len2).clamp(0.0, 1.0);
    dist2(p, (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1))).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn straight_edges_collapse_to_corners() {
        let mut square = Vec::new();
        for x in 0..10 {
            square.push((x as f64, 0.0));
        }
        for y in 0..10 {
            square.push((10.0, y as f64));
        }
        for x in (1..=10).rev() {
            square.push((x as f64, 10.0));
        }
        for y in (1..=10).rev() {
            square.push((0.0, y as f64));
        }
        let s = douglas_peucker(&square, 1.0);
        assert_eq!(s, vec![(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)]);
    }

    #[test]
    fn collinear_points_go_and_turns_stay() {
        let square = vec![
            (0.0, 0.0),
            (1.0, 0.0),
            (2.0, 0.0),
            (2.0, 1.0),
            (2.0, 2.0),
            (1.0, 2.0),
            (0.0, 2.0),
            (0.0, 1.0),
        ];
        assert_eq!(
            drop_collinear(&square),
            vec![(0.0, 0.0), (2.0, 0.0), (2.0, 2.0), (0.0, 2.0)]
        );
        // A spike that doubles back is a turn, not a straight line.
        let spike = vec![(0.0, 0.0), (2.0, 0.0), (1.0, 0.0), (1.0, 1.0)];
        assert_eq!(drop_collinear(&spike).len(), 4);
    }

    #[test]
    fn small_wiggles_go_and_big_ones_stay() {
        let line = vec![
            (0.0, 0.0),
            (5.0, 0.4),
            (10.0, 0.0),
            (10.0, 10.0),
            (5.0, 3.0),
            (0.0, 10.0),
        ];
        let s = douglas_peucker(&line, 1.0);
        assert!(!s.contains(&(5.0, 0.4)), "{s:?}");
        assert!(s.contains(&(5.0, 3.0)), "{s:?}");
        assert_eq!(douglas_peucker(&line, 0.0), line, "no tolerance, no change");
    }
}
