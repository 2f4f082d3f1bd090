//! `BYTETracker.update` and `BOTSORT.update` (Ultralytics 8.4.190), one frame at a time.
//!
//! BoT-SORT without re-identification is ByteTrack with another Kalman state (centre, width,
//! height) and the camera-motion warp applied after the prediction; the association is the same,
//! so one tracker serves both.

use std::collections::{HashSet, VecDeque};

use crate::assignment::{Assignment, linear_assignment};
use crate::config::{TrackerConfig, TrackerKind};
use crate::frame::FrameRef;
use crate::gmc::{Affine, Gmc};
use crate::kalman::Motion;
use crate::matching::{CostMatrix, fuse_score, iou_distance};
use crate::track::{Candidate, STrack, TrackState};

/// One detection of a frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    /// x1, y1, x2, y2 in pixels.
    pub bbox: [f32; 4],
    pub score: f32,
    pub class_id: u32,
}

/// A confirmed track matched in this frame (Ultralytics' result row).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Track {
    /// Numbered from 1 in order of birth, per tracker.
    pub id: u64,
    /// The Kalman-filtered box, x1, y1, x2, y2.
    pub bbox: [f32; 4],
    /// The matched detection's score and class.
    pub score: f32,
    pub class_id: u32,
    /// Index of the matched detection in this frame's detections.
    pub detection: usize,
}

/// GMC's frame downscale, as BOTSORT builds its `GMC`.
pub const GMC_DOWNSCALE: u32 = 2;
/// How many removed tracks are remembered (`merge_track_pools`' `removed_buffer`). A lost track
/// whose id is among them is dropped from the lost pool.
const REMOVED_BUFFER: usize = 1000;
/// Cost limits Ultralytics fixes: the second association (IoU only), the unconfirmed stage, and
/// the IoU distance under which a tracked and a lost track are the same object.
const SECOND_MATCH_THRESH: f64 = 0.5;
const UNCONFIRMED_MATCH_THRESH: f64 = 0.7;
const DUPLICATE_THRESH: f32 = 0.15;

/// A ByteTrack or BoT-SORT tracker over one video.
#[derive(Clone, Debug)]
pub struct Tracker {
    config: TrackerConfig,
    motion: Motion,
    frame_id: u64,
    tracked: Vec<STrack>,
    lost: Vec<STrack>,
    /// Ids of removed tracks, oldest first, repeats included (a lost track can be removed twice).
    removed_ids: VecDeque<u64>,
    last_id: u64,
    gmc: Option<Gmc>,
}

impl Tracker {
    /// A tracker as Ultralytics builds it for `mode="track"` (at its default 30 fps, lost tracks
    /// are kept for `track_buffer` frames).
    pub fn new(config: TrackerConfig) -> Tracker {
        let (motion, gmc) = match config.kind {
            TrackerKind::ByteTrack => (Motion::Xyah, None),
            TrackerKind::BotSort => (Motion::Xywh, Some(Gmc::new(config.gmc_method, GMC_DOWNSCALE))),
        };
        Tracker {
            config,
            motion,
            frame_id: 0,
            tracked: Vec::new(),
            lost: Vec::new(),
            removed_ids: VecDeque::new(),
            last_id: 0,
            gmc,
        }
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// Forgets every track and restarts the ids at 1, for a new video.
    pub fn reset(&mut self) {
        self.frame_id = 0;
        self.tracked.clear();
        self.lost.clear();
        self.removed_ids.clear();
        self.last_id = 0;
        if let Some(gmc) = &mut self.gmc {
            gmc.reset();
        }
    }

    /// Tracks one frame. BoT-SORT estimates the camera motion from `frame` (every frame it is
    /// given, as Ultralytics does, so that the next frame has a previous one); without a frame
    /// it assumes none.
    pub fn update(&mut self, detections: &[Detection], frame: Option<FrameRef<'_>>) -> Vec<Track> {
        let warp = match (&mut self.gmc, frame) {
            (Some(gmc), Some(frame)) => Some(gmc.apply(frame)),
            _ => None,
        };
        self.update_with_warp(detections, warp)
    }

    /// Tracks one frame with the camera motion given: the 2x3 warp from the previous frame to
    /// this one, or `None` for no compensation. ByteTrack has no motion compensation and ignores
    /// it.
    pub fn update_with_warp(&mut self, detections: &[Detection], warp: Option<Affine>) -> Vec<Track> {
        self.frame_id += 1;
        let frame_id = self.frame_id;
        let motion = self.motion;
        let cfg = &self.config;

        // Every existing track lives in the arena for this frame; the lists Ultralytics keeps are
        // indices into it, so a track can sit in several at once as it does there.
        let n_tracked = self.tracked.len();
        let mut arena: Vec<STrack> = std::mem::take(&mut self.tracked);
        arena.append(&mut self.lost);
        let prev_tracked: Vec<usize> = (0..n_tracked).collect();
        let prev_lost: Vec<usize> = (n_tracked..arena.len()).collect();

        // numpy compares the float32 scores with the thresholds in float32.
        let high = cfg.track_high_thresh as f32;
        let low = cfg.track_low_thresh as f32;
        let mut dets_high = Vec::new();
        let mut dets_low = Vec::new();
        for (i, d) in detections.iter().enumerate() {
            let Some(c) = Candidate::from_detection(d, i) else {
                continue;
            };
            if c.score >= high {
                dets_high.push(c);
            } else if c.score > low {
                dets_low.push(c);
            }
        }

        let (confirmed, unconfirmed): (Vec<usize>, Vec<usize>) =
            prev_tracked.iter().partition(|&&i| arena[i].is_activated);
        let pool = joint(&arena, &confirmed, &prev_lost);
        for &i in &pool {
            arena[i].predict(motion);
        }
        // Unconfirmed tracks are warped but not predicted, as in Ultralytics.
        if let (Some(warp), TrackerKind::BotSort) = (warp, cfg.kind) {
            for &i in pool.iter().chain(&unconfirmed) {
                arena[i].apply_warp(&warp);
            }
        }

        let mut activated: Vec<usize> = Vec::new();
        let mut refind: Vec<usize> = Vec::new();
        let mut lost_now: Vec<usize> = Vec::new();
        let mut removed_now: Vec<usize> = Vec::new();

        // First association: tracked and lost tracks with the confident detections.
        let cost = self.dists(&arena, &pool, &dets_high);
        let first = linear_assignment(cost.rows, cost.cols, &cost.data, cfg.match_thresh);
        for &(it, id) in &first.matches {
            let t = pool[it];
            if arena[t].state == TrackState::Tracked {
                activated.push(t);
            } else {
                refind.push(t);
            }
            arena[t].update(&dets_high[id], motion, frame_id);
        }

        // Second association: still-unmatched tracked tracks with the weak detections, by IoU alone.
        let r_tracked: Vec<usize> = first
            .unmatched_rows
            .iter()
            .map(|&i| pool[i])
            .filter(|&t| arena[t].state == TrackState::Tracked)
            .collect();
        let still_unmatched = if !r_tracked.is_empty() && !dets_low.is_empty() {
            let boxes: Vec<[f32; 4]> = r_tracked.iter().map(|&t| arena[t].xyxy_f32(motion)).collect();
            let det_boxes: Vec<[f32; 4]> = dets_low.iter().map(Candidate::xyxy).collect();
            let cost = iou_distance(&boxes, &det_boxes);
            let second = linear_assignment(cost.rows, cost.cols, &cost.data, SECOND_MATCH_THRESH);
            for &(it, id) in &second.matches {
                let t = r_tracked[it];
                // All of them are tracked, so all count as activated.
                activated.push(t);
                arena[t].update(&dets_low[id], motion, frame_id);
            }
            second.unmatched_rows
        } else {
            (0..r_tracked.len()).collect()
        };
        for it in still_unmatched {
            let t = r_tracked[it];
            arena[t].state = TrackState::Lost;
            lost_now.push(t);
        }

        // Unconfirmed tracks (born last frame) with the confident detections left over.
        let remaining: Vec<Candidate> = first.unmatched_cols.iter().map(|&i| dets_high[i].clone()).collect();
        let new_candidates = if unconfirmed.is_empty() {
            (0..remaining.len()).collect()
        } else {
            let cost = self.dists(&arena, &unconfirmed, &remaining);
            let Assignment {
                matches,
                unmatched_rows,
                unmatched_cols,
            } = linear_assignment(cost.rows, cost.cols, &cost.data, UNCONFIRMED_MATCH_THRESH);
            for (it, id) in matches {
                let t = unconfirmed[it];
                arena[t].update(&remaining[id], motion, frame_id);
                activated.push(t);
            }
            for it in unmatched_rows {
                let t = unconfirmed[it];
                arena[t].state = TrackState::Removed;
                removed_now.push(t);
            }
            unmatched_cols
        };

        // New tracks from what is left, if confident enough (compared in float32, as numpy does).
        let new_thresh = cfg.new_track_thresh as f32;
        for inew in new_candidates {
            let det = &remaining[inew];
            if det.score < new_thresh {
                continue;
            }
            self.last_id += 1;
            arena.push(STrack::activate(det, motion, self.last_id, frame_id));
            activated.push(arena.len() - 1);
        }

        // Lost tracks past the buffer. They are only dropped from the lost pool next frame (the
        // pool is filtered by the removed tracks of earlier frames), so for one frame they can
        // still be found again; Ultralytics behaves the same.
        let max_frames_lost = u64::from(self.config.track_buffer);
        for &t in &prev_lost {
            if frame_id - arena[t].frame_id > max_frames_lost {
                arena[t].state = TrackState::Removed;
                removed_now.push(t);
            }
        }

        // merge_track_pools.
        let still_tracked: Vec<usize> = prev_tracked
            .iter()
            .copied()
            .filter(|&t| arena[t].state == TrackState::Tracked)
            .collect();
        let tracked = joint(&arena, &still_tracked, &activated);
        let tracked = joint(&arena, &tracked, &refind);
        let mut lost = sub(&arena, &prev_lost, tracked.iter().map(|&t| arena[t].track_id).collect());
        lost.extend(lost_now);
        let lost = sub(&arena, &lost, self.removed_ids.iter().copied().collect());
        let (tracked, lost) = remove_duplicates(&arena, motion, &tracked, &lost);
        self.removed_ids.extend(removed_now.iter().map(|&t| arena[t].track_id));
        if self.removed_ids.len() > REMOVED_BUFFER {
            let excess = self.removed_ids.len() - REMOVED_BUFFER;
            self.removed_ids.drain(..excess);
        }

        self.tracked = tracked.iter().map(|&t| arena[t].clone()).collect();
        self.lost = lost.iter().map(|&t| arena[t].clone()).collect();
        self.tracked
            .iter()
            .filter(|t| t.is_activated)
            .map(|t| Track {
                id: t.track_id,
                bbox: t.xyxy_f32(motion),
                score: t.score,
                class_id: t.class_id,
                detection: t.idx,
            })
            .collect()
    }

    /// `get_dists`: IoU distance, fused with the detection scores if configured. (BoT-SORT's
    /// proximity mask only gates appearance costs, so without re-identification it is the same.)
    fn dists(&self, arena: &[STrack], tracks: &[usize], dets: &[Candidate]) -> CostMatrix {
        let boxes: Vec<[f32; 4]> = tracks.iter().map(|&t| arena[t].xyxy_f32(self.motion)).collect();
        let det_boxes: Vec<[f32; 4]> = dets.iter().map(Candidate::xyxy).collect();
        let mut cost = iou_distance(&boxes, &det_boxes);
        if self.config.fuse_score {
            let scores: Vec<f32> = dets.iter().map(|d| d.score).collect();
            fuse_score(&mut cost, &scores);
        }
        cost
    }
}

/// `joint_stracks`: `a`, then the tracks of `b` whose ids are not in `a`.
fn joint(arena: &[STrack], a: &[usize], b: &[usize]) -> Vec<usize> {
    let ids: HashSet<u64> = a.iter().map(|&t| arena[t].track_id).collect();
    a.iter()
        .copied()
        .chain(b.iter().copied().filter(|&t| !ids.contains(&arena[t].track_id)))
        .collect()
}

/// `sub_stracks`: the tracks of `a` whose ids are not in `ids`.
fn sub(arena: &[STrack], a: &[usize], ids: HashSet<u64>) -> Vec<usize> {
    a.iter()
        .copied()
        .filter(|&t| !ids.contains(&arena[t].track_id))
        .collect()
}

/// `remove_duplicate_stracks`: a tracked and a lost track over the same object (IoU distance
/// under 0.15); the one followed for fewer frames goes, the tracked one on a tie.
fn remove_duplicates(arena: &[STrack], motion: Motion, a: &[usize], b: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let boxes_a: Vec<[f32; 4]> = a.iter().map(|&t| arena[t].xyxy_f32(motion)).collect();
    let boxes_b: Vec<[f32; 4]> = b.iter().map(|&t| arena[t].xyxy_f32(motion)).collect();
    let dist = iou_distance(&boxes_a, &boxes_b);
    let mut drop_a = vec![false; a.len()];
    let mut drop_b = vec![false; b.len()];
    for (p, &ta) in a.iter().enumerate() {
        for (q, &tb) in b.iter().enumerate() {
            if dist.data[p * b.len() + q] < DUPLICATE_THRESH {
                let age_p = arena[ta].frame_id - arena[ta].start_frame;
                let age_q = arena[tb].frame_id - arena[tb].start_frame;
                if age_p > age_q {
                    drop_b[q] = true;
                } else {
                    drop_a[p] = true;
                }
            }
        }
    }
    let keep = |list: &[usize], drop: &[bool]| list.iter().zip(drop).filter(|(_, d)| !**d).map(|(&t, _)| t).collect();
    (keep(a, &drop_a), keep(b, &drop_b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, score: f32) -> Detection {
        Detection {
            bbox: [x, 50.0, x + 40.0, 130.0],
            score,
            class_id: 0,
        }
    }

    const SHIFT: Affine = [[1.0, 0.0, 30.0], [0.0, 1.0, 0.0]];

    #[test]
    fn later_births_wait_for_a_second_match() {
        let mut t = Tracker::new(TrackerConfig::defaults(TrackerKind::ByteTrack));
        assert_eq!(
            t.update(&[det(10.0, 0.9)], None).len(),
            1,
            "the first frame confirms at once"
        );
        let second = t.update(&[det(12.0, 0.9), det(300.0, 0.9)], None);
        assert_eq!(second.iter().map(|t| t.id).collect::<Vec<_>>(), [1]);
        let third = t.update(&[det(14.0, 0.9), det(302.0, 0.9)], None);
        assert_eq!(
            third.iter().map(|t| (t.id, t.detection)).collect::<Vec<_>>(),
            [(1, 0), (2, 1)]
        );
    }

    #[test]
    fn reset_starts_over() {
        let mut t = Tracker::new(TrackerConfig::defaults(TrackerKind::BotSort));
        t.update(&[det(10.0, 0.9), det(200.0, 0.9)], None);
        t.reset();
        let tracks = t.update(&[det(200.0, 0.9)], None);
        assert_eq!(tracks.iter().map(|t| t.id).collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn only_botsort_uses_the_warp() {
        let run = |kind, warp| {
            let mut t = Tracker::new(TrackerConfig::defaults(kind));
            t.update_with_warp(&[det(10.0, 0.9)], None);
            t.update_with_warp(&[det(40.0, 0.9)], warp)
        };
        assert_eq!(
            run(TrackerKind::ByteTrack, Some(SHIFT)),
            run(TrackerKind::ByteTrack, None)
        );
        // Shifted by the camera, the track lands on the moved detection and keeps its id.
        let warped = run(TrackerKind::BotSort, Some(SHIFT));
        assert_eq!(warped.iter().map(|t| t.id).collect::<Vec<_>>(), [1]);
        assert!((warped[0].bbox[0] - 40.0).abs() < 0.5, "{:?}", warped[0].bbox);
        assert!(
            run(TrackerKind::BotSort, None).is_empty(),
            "without the warp the boxes do not overlap enough"
        );
    }

    #[test]
    fn nothing_to_track() {
        let mut t = Tracker::new(TrackerConfig::defaults(TrackerKind::ByteTrack));
        assert!(t.update(&[], None).is_empty());
        assert!(t.update(&[det(10.0, 0.3), det(f32::NAN, 0.9)], None).is_empty());
    }
}
