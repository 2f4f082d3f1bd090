//! Multi-object tracking for video: ByteTrack and BoT-SORT (without re-identification), with
//! BoT-SORT's global motion compensation, following Ultralytics' `trackers/` (8.4.190) so that
//! the same detections give the same tracks.
//!
//! ```
//! use ls_tracking::{Detection, Tracker, TrackerConfig, TrackerKind};
//!
//! let mut config = TrackerConfig::defaults(TrackerKind::ByteTrack);
//! config.set("track_buffer", "60").unwrap();
//! let mut tracker = Tracker::new(config);
//! for x in [10.0, 12.0, 14.0] {
//!     let person = Detection { bbox: [x, 20.0, x + 40.0, 100.0], score: 0.9, class_id: 0 };
//!     let tracks = tracker.update(&[person], None);
//!     assert_eq!(tracks.len(), 1);
//!     assert_eq!((tracks[0].id, tracks[0].detection), (1, 0));
//! }
//! ```

mod assignment;
mod config;
mod frame;
pub mod gmc;
mod kalman;
mod matching;
mod track;
mod tracker;

pub use config::{ConfigError, TrackerConfig, TrackerKind};
pub use frame::FrameRef;
pub use tracker::{Detection, GMC_DOWNSCALE, Track, Tracker};
