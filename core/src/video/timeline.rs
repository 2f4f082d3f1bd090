//! Where each decoded frame lands on Label Studio's timeline.
//!
//! Label Studio's player numbers frames on a constant grid (its `<Video framerate>`), and the
//! official YOLO backend numbers them by decode order: frame `i` (0-based) is frame `i + 1` at
//! time `(i + 1) / fps`. For a constant-rate video the two agree, and we do the same. For a
//! variable-rate video decode order drifts off the grid, so each frame is placed by its own
//! presentation time on the grid of `framerate`, else of the video's base rate (its highest,
//! so that no two frames share a grid frame).

use super::probe::VideoInfo;

#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// `framesCount`: frames on Label Studio's grid.
    pub frames_count: u64,
    /// `duration`, in seconds.
    pub duration: f64,
    /// Whether the frames' timestamps showed a variable rate (and placed them by time).
    pub variable: bool,
    /// The frames per second the frames were numbered at.
    pub rate: f64,
    /// The frames' (1-based frame number, time in seconds), by decoded index.
    positions: Vec<(u64, f64)>,
}

/// Whether frame intervals vary: some interval is off the typical one by more than a quarter
/// (a constant-rate video's intervals differ only by the time base's rounding).
fn varies(times: &[f64]) -> Option<f64> {
    let mut deltas: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).filter(|d| *d > 0.0).collect();
    if deltas.len() < 2 {
        return None;
    }
    deltas.sort_by(f64::total_cmp);
    let typical = deltas[deltas.len() / 2];
    let shortest = deltas[0];
    deltas
        .iter()
        .any(|d| (d - typical).abs() > 0.25 * typical)
        .then_some(shortest)
}

impl Timeline {
    /// `decoded` frames were decoded, `times` are their presentation times (as ffmpeg
    /// reported them; ignored unless there is one per frame), `framerate` is the label
    /// config's.
    pub fn new(info: &VideoInfo, decoded: u64, times: &[f64], framerate: Option<f64>) -> Timeline {
        let fps = if info.fps > 0.0 {
            info.fps
        } else {
            framerate.unwrap_or(30.0)
        };
        let timed = times.len() as u64 == decoded && decoded > 0;
        // The timestamps decide, not the container's rates: a remux can make those agree for
        // a variable-rate video, and a guessed base rate can make them disagree for a constant one.
        let shortest = if timed { varies(times) } else { None };
        let Some(shortest) = shortest else {
            let duration = decoded as f64 / fps;
            return Timeline {
                frames_count: decoded,
                duration,
                variable: false,
                rate: fps,
                positions: (0..decoded).map(|i| (i + 1, (i + 1) as f64 / fps)).collect(),
            };
        };
        // The grid of the label config's rate, else the base rate when the timestamps bear it
        // out (every frame on its own tick), else the rate of the shortest interval.
        let highest = 1.0 / shortest;
        let base_fits = info.base_fps >= 0.95 * highest && info.base_fps <= 4.0 * highest;
        let rate = framerate
            .filter(|r| *r > 0.0)
            .unwrap_or(if base_fits { info.base_fps } else { highest });
        let start = times.iter().copied().fold(f64::INFINITY, f64::min);
        let positions: Vec<(u64, f64)> = times
            .iter()
            .map(|t| {
                let frame = ((t - start) * rate).round().max(0.0) as u64 + 1;
                (frame, frame as f64 / rate)
            })
            .collect();
        let last = positions.iter().map(|p| p.0).max().unwrap_or(0);
        let duration = if info.duration > 0.0 {
            info.duration
        } else {
            last as f64 / rate
        };
        Timeline {
            frames_count: last.max((duration * rate).round() as u64),
            duration,
            variable: true,
            rate,
            positions,
        }
    }

    /// The 1-based frame number and time of a decoded frame.
    pub fn position(&self, index: u64) -> Option<(u64, f64)> {
        self.positions.get(index as usize).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(fps: f64, variable_rate: bool) -> VideoInfo {
        VideoInfo {
            width: 64,
            height: 64,
            rotation: 0,
            fps,
            base_fps: 30.0,
            variable_rate,
            frames: 0,
            duration: 0.0,
            codec: "h264".into(),
            stream_index: 0,
        }
    }

    #[test]
    fn constant_rate_follows_decode_order_as_the_official_backend() {
        let t = Timeline::new(&info(25.0, false), 50, &[], None);
        assert_eq!((t.frames_count, t.duration), (50, 2.0));
        assert_eq!(t.position(0), Some((1, 0.04)));
        assert_eq!(t.position(49), Some((50, 2.0)));
        assert_eq!(t.position(50), None);
    }

    #[test]
    fn variable_rate_places_frames_by_their_time() {
        // Three frames 1/30 s apart, then two 1/15 s apart.
        let times = [0.0, 1.0 / 30.0, 2.0 / 30.0, 4.0 / 30.0, 6.0 / 30.0];
        let t = Timeline::new(&info(25.0, true), 5, &times, None);
        let frames: Vec<u64> = (0..5).filter_map(|i| t.position(i)).map(|p| p.0).collect();
        assert_eq!(frames, vec![1, 2, 3, 5, 7], "on the base rate's grid");
        assert_eq!(t.frames_count, 7);
        let at_15 = Timeline::new(&info(25.0, true), 5, &times, Some(15.0));
        let frames: Vec<u64> = (0..5).filter_map(|i| at_15.position(i)).map(|p| p.0).collect();
        assert_eq!(frames, vec![1, 2, 2, 3, 4], "on the label config's framerate");
        // Without times for every frame, decode order it is.
        let partial = Timeline::new(&info(25.0, true), 5, &times[..3], Some(30.0));
        assert_eq!(partial.position(4).map(|p| p.0), Some(5));
        // The timestamps decide: the container may call it constant (a remux) ...
        let remuxed = Timeline::new(&info(25.0, false), 5, &times, None);
        assert!(remuxed.variable);
        assert_eq!(remuxed.position(4).map(|p| p.0), Some(7));
        // ... or variable, when the frames come evenly (a guessed base rate).
        let even: Vec<f64> = (0..5)
            .map(|i| i as f64 * 0.04 + if i % 2 == 1 { 1e-4 } else { 0.0 })
            .collect();
        let steady = Timeline::new(&info(25.0, true), 5, &even, None);
        assert!(!steady.variable);
        assert_eq!(steady.position(4), Some((5, 0.2)));
    }
}
