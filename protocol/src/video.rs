//! Tracks as Label Studio `videorectangle` regions, written as Label Studio's own YOLO backend
//! writes them (`control_models/video_rectangle.py`): one region per track, its boxes in a
//! `sequence` of keyframes in percent of the frame, and `enabled: false` on the last box
//! before a gap and on the track's last box, which ends the track's lifespan line there.

use crate::{
    label_config::VideoControl,
    region::{Region, RegionValue, Shape, VideoBox},
    results::{region_id, round6},
};

/// One box of a track on one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedBox {
    /// 1-based frame number on Label Studio's timeline.
    pub frame: u64,
    /// Seconds.
    pub time: f64,
    /// The frame's decoded index: two boxes whose indexes are more than the frame step apart
    /// have a gap between them.
    pub index: u64,
    /// Corners in pixels.
    pub xyxy: [f32; 4],
    pub score: f32,
}

/// A track: its label and its boxes in frame order.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackPath {
    pub label: String,
    pub boxes: Vec<TrackedBox>,
}

/// The video as Label Studio's player sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoFrame {
    pub width: u32,
    pub height: u32,
    pub frames_count: u64,
    pub duration: f64,
}

/// One `videorectangle` region per non-empty track. `step` is the frame step the video was
/// tracked at.
pub fn regions(control: &VideoControl, tracks: &[TrackPath], video: VideoFrame, step: u64) -> Vec<Region> {
    let (w, h) = (video.width.max(1) as f64, video.height.max(1) as f64);
    tracks
        .iter()
        .filter(|t| !t.boxes.is_empty())
        .map(|track| {
            let sequence: Vec<VideoBox> = track
                .boxes
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let gap_after = track
                        .boxes
                        .get(i + 1)
                        .is_none_or(|next| next.index.saturating_sub(b.index) > step.max(1));
                    let [x1, y1, x2, y2] = b.xyxy.map(f64::from);
                    VideoBox {
                        frame: b.frame,
                        enabled: !gap_after,
                        rotation: 0,
                        x: round6(x1 / w * 100.0),
                        y: round6(y1 / h * 100.0),
                        width: round6((x2 - x1) / w * 100.0),
                        height: round6((y2 - y1) / h * 100.0),
                        time: round6(b.time),
                        score: round6(b.score as f64),
                    }
                })
                .collect();
            let score = track.boxes.iter().map(|b| b.score).fold(0.0f32, f32::max);
            Region {
                id: region_id(),
                from_name: control.name.clone(),
                to_name: control.to_name.clone(),
                kind: "videorectangle",
                original: None,
                origin: Some("manual"),
                value: RegionValue {
                    shape: Shape::VideoRectangle {
                        frames_count: video.frames_count,
                        duration: round6(video.duration),
                        sequence,
                    },
                    labels_key: "labels",
                    labels: vec![track.label.clone()],
                },
                score: round6(score as f64),
                hidden: false,
                parent_id: None,
                meta: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::label_config::LabelConfig;
    use serde_json::{Value, json};

    fn control() -> VideoControl {
        let config = LabelConfig::parse(
            r#"<View><Video name="video" value="$video"/><VideoRectangle name="box" toName="video"/>
               <Labels name="labels" toName="video"><Label value="Ball"/></Labels></View>"#,
        )
        .expect("config");
        config.video_controls[0].clone()
    }

    fn at(frame: u64, index: u64) -> TrackedBox {
        TrackedBox {
            frame,
            time: frame as f64 / 25.0,
            index,
            xyxy: [10.0, 20.0, 60.0, 40.0],
            score: 0.5 + frame as f32 / 100.0,
        }
    }

    #[test]
    fn a_track_is_one_region_with_its_lifespan_broken_at_gaps() {
        let track = TrackPath {
            label: "Ball".into(),
            boxes: vec![at(1, 0), at(2, 1), at(3, 2), at(6, 5), at(7, 6)],
        };
        let video = VideoFrame {
            width: 200,
            height: 100,
            frames_count: 10,
            duration: 0.4,
        };
        let regions: Vec<Value> = regions(&control(), &[track], video, 1)
            .iter()
            .map(|r| serde_json::to_value(r).expect("JSON"))
            .collect();
        assert_eq!(regions.len(), 1);
        let r = &regions[0];
        assert_eq!(
            (r["from_name"].as_str(), r["to_name"].as_str()),
            (Some("box"), Some("video"))
        );
        assert_eq!(r["type"], "videorectangle");
        assert_eq!(r["value"]["labels"], json!(["Ball"]));
        assert_eq!(
            (r["value"]["framesCount"].as_u64(), r["value"]["duration"].as_f64()),
            (Some(10), Some(0.4))
        );
        let seq = r["value"]["sequence"].as_array().expect("sequence");
        let enabled: Vec<bool> = seq.iter().map(|s| s["enabled"].as_bool().unwrap_or(true)).collect();
        assert_eq!(enabled, vec![true, true, false, true, false]);
        let first = &seq[0];
        assert_eq!(
            [&first["x"], &first["y"], &first["width"], &first["height"]].map(|v| v.as_f64()),
            [Some(5.0), Some(20.0), Some(25.0), Some(20.0)]
        );
        assert_eq!((first["frame"].as_u64(), first["time"].as_f64()), (Some(1), Some(0.04)));
        assert_eq!(r["score"].as_f64(), Some(0.57), "the track's best score");
    }

    #[test]
    fn with_a_frame_step_the_step_is_no_gap() {
        let track = TrackPath {
            label: "Ball".into(),
            boxes: vec![at(1, 0), at(4, 3), at(7, 6), at(13, 12)],
        };
        let video = VideoFrame {
            width: 100,
            height: 100,
            frames_count: 13,
            duration: 0.52,
        };
        let regions: Vec<Value> = regions(&control(), &[track], video, 3)
            .iter()
            .map(|r| serde_json::to_value(r).expect("JSON"))
            .collect();
        let seq = regions[0]["value"]["sequence"].as_array().expect("sequence").clone();
        let enabled: Vec<bool> = seq.iter().map(|s| s["enabled"].as_bool().unwrap_or(true)).collect();
        assert_eq!(enabled, vec![true, true, false, false]);
        let empty = TrackPath {
            label: "Ball".into(),
            boxes: Vec::new(),
        };
        assert!(super::regions(&control(), &[empty], video, 1).is_empty());
    }
}
