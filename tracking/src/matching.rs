//! Association costs (`trackers/utils/matching.py`): IoU distance and score fusion.
//!
//! Ultralytics computes these in float32 (`bbox_ioa` on float32 copies of the boxes, and numpy
//! keeps float32 when a Python float joins in), so they are f32 here too: a cost that lands
//! right at a threshold must fall on the same side.

/// A row-major cost matrix: rows are tracks, columns detections.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CostMatrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

/// `iou_distance`: 1 − IoU for every pair of (x1, y1, x2, y2) boxes, as `bbox_ioa(iou=True)`
/// computes it (eps 1e-7 in the denominator, areas of the given corners as they are).
pub(crate) fn iou_distance(a: &[[f32; 4]], b: &[[f32; 4]]) -> CostMatrix {
    const EPS: f32 = 1e-7;
    let mut data = Vec::with_capacity(a.len() * b.len());
    for p in a {
        let area_a = (p[2] - p[0]) * (p[3] - p[1]);
        for q in b {
            let iw = (p[2].min(q[2]) - p[0].max(q[0])).max(0.0);
            let ih = (p[3].min(q[3]) - p[1].max(q[1])).max(0.0);
            let inter = iw * ih;
            let area_b = (q[2] - q[0]) * (q[3] - q[1]);
            let union = area_b + area_a - inter;
            data.push(1.0 - inter / (union + EPS));
        }
    }
    CostMatrix {
        rows: a.len(),
        cols: b.len(),
        data,
    }
}

/// `fuse_score`: 1 − IoU · score, so a weak detection needs more overlap to match.
pub(crate) fn fuse_score(cost: &mut CostMatrix, scores: &[f32]) {
    debug_assert_eq!(scores.len(), cost.cols);
    if cost.cols == 0 {
        return;
    }
    for row in cost.data.chunks_mut(cost.cols) {
        for (c, &s) in row.iter_mut().zip(scores) {
            *c = 1.0 - (1.0 - *c) * s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Ultralytics 8.4.190's matching.iou_distance / fuse_score on the same float32 boxes and
    // np.float32 scores give exactly these float32 values.
    #[test]
    fn iou_and_fusion_match_ultralytics() {
        let a = [[10.0, 20.0, 50.0, 80.0], [100.5, 100.25, 140.75, 170.0]];
        let b = [
            [12.0, 18.0, 52.0, 79.0],
            [200.0, 200.0, 210.0, 210.0],
            [100.0, 110.0, 141.0, 165.5],
        ];
        let mut c = iou_distance(&a, &b);
        assert_eq!((c.rows, c.cols), (2, 3));
        let want = [0.137_028_46_f32, 1.0, 1.0, 1.0, 1.0, 0.215_926_29];
        assert_eq!(c.data, want);
        fuse_score(&mut c, &[0.9, 0.3, 0.45]);
        assert_eq!(c.data, [0.223_325_61_f32, 1.0, 1.0, 1.0, 1.0, 0.647_166_85]);
    }

    #[test]
    fn empty_sides_give_empty_matrices() {
        let c = iou_distance(&[], &[[0.0, 0.0, 1.0, 1.0]]);
        assert_eq!((c.rows, c.cols, c.data.len()), (0, 1, 0));
        let mut c = iou_distance(&[[0.0, 0.0, 1.0, 1.0]], &[]);
        fuse_score(&mut c, &[]);
        assert_eq!((c.rows, c.cols, c.data.len()), (1, 0, 0));
    }
}
