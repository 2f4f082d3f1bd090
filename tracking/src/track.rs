//! One track's state: Ultralytics' `STrack` (ByteTrack) and `BOTrack` (BoT-SORT without
//! re-identification), which differ only in the Kalman filter and so in how a box converts to
//! and from the state.

use crate::Detection;
use crate::gmc::Affine;
use crate::kalman::{Covariance, Mean, Motion, warp_state};

/// `TrackState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TrackState {
    Tracked,
    Lost,
    Removed,
}

/// A detection as the trackers see it before it joins a track: Ultralytics builds an `STrack`
/// without a Kalman state for it, whose `tlwh` is the float32 `_tlwh`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Candidate {
    /// (left, top, width, height), float32 as Ultralytics stores `_tlwh`.
    pub tlwh: [f32; 4],
    pub score: f32,
    pub class_id: u32,
    /// The detection's index in this frame's input.
    pub idx: usize,
}

impl Candidate {
    /// The detection's box as Ultralytics derives it, or `None` where Ultralytics drops the
    /// detection (zero or negative width or height) or where it could only make NaNs (a
    /// non-finite coordinate, which Ultralytics does not guard against).
    ///
    /// The steps and their precisions follow the reference: `Boxes.xywh` in float32, then
    /// `xywh2ltwh` in float64 (the index column `parse_bboxes` appends makes the array float64),
    /// stored as float32.
    pub(crate) fn from_detection(d: &Detection, idx: usize) -> Option<Candidate> {
        let [x1, y1, x2, y2] = d.bbox;
        if !d.bbox.iter().all(|v| v.is_finite()) {
            return None;
        }
        let (cx, cy, w, h) = ((x1 + x2) / 2.0, (y1 + y2) / 2.0, x2 - x1, y2 - y1);
        // Written so that NaN (from infinite sums) also counts as invalid.
        if !(w > 0.0 && h > 0.0) {
            return None;
        }
        let left = (f64::from(cx) - f64::from(w) / 2.0) as f32;
        let top = (f64::from(cy) - f64::from(h) / 2.0) as f32;
        Some(Candidate {
            tlwh: [left, top, w, h],
            score: d.score,
            class_id: d.class_id,
            idx,
        })
    }

    /// `xyxy` of a state-less `STrack`: corners from `_tlwh`, in float32.
    pub(crate) fn xyxy(&self) -> [f32; 4] {
        let [l, t, w, h] = self.tlwh;
        [l, t, l + w, t + h]
    }

    /// `convert_coords(tlwh)`: the Kalman measurement, computed in float32 (on the float32
    /// `_tlwh`) before the filter takes it as float64.
    fn measurement(&self, motion: Motion) -> [f64; 4] {
        let [l, t, w, h] = self.tlwh;
        let (x, y) = (l + w / 2.0, t + h / 2.0);
        let third = match motion {
            Motion::Xyah => w / h,
            Motion::Xywh => w,
        };
        [f64::from(x), f64::from(y), f64::from(third), f64::from(h)]
    }
}

/// An activated track.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct STrack {
    pub mean: Mean,
    pub covariance: Covariance,
    pub state: TrackState,
    /// Confirmed: started on the first frame, or matched again after its first frame.
    pub is_activated: bool,
    pub track_id: u64,
    pub score: f32,
    pub class_id: u32,
    pub idx: usize,
    /// The last frame this track was updated in (`end_frame`).
    pub frame_id: u64,
    pub start_frame: u64,
}

impl STrack {
    /// `activate`: a new track from an unmatched detection. Only tracks born on the first frame
    /// are confirmed at once; later ones must be matched again on the next frame.
    pub(crate) fn activate(det: &Candidate, motion: Motion, track_id: u64, frame_id: u64) -> STrack {
        let (mean, covariance) = motion.initiate(det.measurement(motion));
        STrack {
            mean,
            covariance,
            state: TrackState::Tracked,
            is_activated: frame_id == 1,
            track_id,
            score: det.score,
            class_id: det.class_id,
            idx: det.idx,
            frame_id,
            start_frame: frame_id,
        }
    }

    /// `update` (a tracked or unconfirmed track matched) and `re_activate` (a lost one found
    /// again, with its id kept): the same correction; they differ only in bookkeeping Ultralytics
    /// does not read back (`tracklet_len`).
    pub(crate) fn update(&mut self, det: &Candidate, motion: Motion, frame_id: u64) {
        (self.mean, self.covariance) = motion.update(&self.mean, &self.covariance, det.measurement(motion));
        self.state = TrackState::Tracked;
        self.is_activated = true;
        self.frame_id = frame_id;
        self.score = det.score;
        self.class_id = det.class_id;
        self.idx = det.idx;
    }

    /// One step of `multi_predict`: a track that is not being tracked keeps its place, so its
    /// size velocity (ByteTrack: height; BoT-SORT: width and height) is zeroed first.
    pub(crate) fn predict(&mut self, motion: Motion) {
        let mut mean = self.mean;
        if self.state != TrackState::Tracked {
            match motion {
                Motion::Xyah => mean[7] = 0.0,
                Motion::Xywh => {
                    mean[6] = 0.0;
                    mean[7] = 0.0;
                }
            }
        }
        (self.mean, self.covariance) = motion.predict(&mean, &self.covariance);
    }

    /// `multi_gmc` for this track.
    pub(crate) fn apply_warp(&mut self, warp: &Affine) {
        warp_state(&mut self.mean, &mut self.covariance, warp);
    }

    /// `xyxy` from the Kalman mean, in float64 as Ultralytics computes it.
    pub(crate) fn xyxy(&self, motion: Motion) -> [f64; 4] {
        let m = &self.mean;
        let w = match motion {
            Motion::Xyah => m[2] * m[3],
            Motion::Xywh => m[2],
        };
        let h = m[3];
        let (l, t) = (m[0] - w / 2.0, m[1] - h / 2.0);
        [l, t, l + w, t + h]
    }

    /// The box as the IoU costs and the result array see it: float32.
    pub(crate) fn xyxy_f32(&self, motion: Motion) -> [f32; 4] {
        self.xyxy(motion).map(|v| v as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degenerate_detections_are_dropped() {
        let det = |bbox| Detection {
            bbox,
            score: 0.9,
            class_id: 0,
        };
        assert!(Candidate::from_detection(&det([10.0, 10.0, 10.0, 20.0]), 0).is_none());
        assert!(Candidate::from_detection(&det([10.0, 20.0, 15.0, 20.0]), 0).is_none());
        assert!(Candidate::from_detection(&det([10.0, 10.0, 5.0, 20.0]), 0).is_none());
        assert!(Candidate::from_detection(&det([f32::NAN, 10.0, 15.0, 20.0]), 0).is_none());
        assert!(Candidate::from_detection(&det([0.0, 10.0, f32::INFINITY, 20.0]), 0).is_none());
        let c = Candidate::from_detection(&det([10.5, 20.25, 30.0, 60.0]), 3);
        assert_eq!(c.map(|c| (c.tlwh, c.idx)), Some(([10.5, 20.25, 19.5, 39.75], 3)));
    }

    #[test]
    fn a_new_track_sits_on_its_detection() {
        let det = Candidate {
            tlwh: [10.0, 20.0, 40.0, 80.0],
            score: 0.9,
            class_id: 2,
            idx: 0,
        };
        for motion in [Motion::Xyah, Motion::Xywh] {
            let t = STrack::activate(&det, motion, 1, 1);
            assert_eq!(t.xyxy(motion), [10.0, 20.0, 50.0, 100.0]);
            assert!(t.is_activated);
            assert!(!STrack::activate(&det, motion, 2, 5).is_activated);
        }
    }
}
