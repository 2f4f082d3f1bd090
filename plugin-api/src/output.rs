//! What an adapter finds: instances (each one object, with every shape it has) and
//! whole-image classes, per frame.

use abi_stable::{
    StableAbi,
    std_types::{ROption, RVec},
};

use crate::{BoxGeometry, Keypoint, Mask, Options, Point, Prepared};

/// One object the model found. Every shape belongs to this one object, so the host fills
/// each Label Studio tag from it without guessing which shapes go together: a box, a mask
/// and its outline from one instance become one linked region.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Instance {
    /// Index into the model's class names.
    pub class_id: u32,
    pub score: f32,
    /// The box (with rotation for an oriented box), in original-image pixels.
    pub bbox: ROption<BoxGeometry>,
    /// The mask over the whole original image.
    pub mask: ROption<Mask>,
    /// Outlines in original-image pixels, largest first. Without any, the host outlines the
    /// mask itself where a polygon is wanted.
    pub polygons: RVec<RVec<Point>>,
    /// Keypoints, each with its index in the model's skeleton.
    pub keypoints: RVec<Keypoint>,
    /// The track this instance belongs to, across the frames of one video.
    pub track_id: ROption<u64>,
    /// Anything else about the instance, as text (for settings a later 2.x may read).
    pub extra: Options,
}

impl Instance {
    pub fn new(class_id: u32, score: f32) -> Self {
        Self {
            class_id,
            score,
            bbox: ROption::RNone,
            mask: ROption::RNone,
            polygons: RVec::new(),
            keypoints: RVec::new(),
            track_id: ROption::RNone,
            extra: Options::default(),
        }
    }

    pub fn with_box(mut self, bbox: BoxGeometry) -> Self {
        self.bbox = ROption::RSome(bbox);
        self
    }

    pub fn with_mask(mut self, mask: Mask) -> Self {
        self.mask = ROption::RSome(mask);
        self
    }

    pub fn with_polygon(mut self, points: Vec<Point>) -> Self {
        self.polygons.push(RVec::from(points));
        self
    }

    pub fn with_keypoints(mut self, keypoints: Vec<Keypoint>) -> Self {
        self.keypoints = RVec::from(keypoints);
        self
    }

    pub fn with_track(mut self, track_id: u64) -> Self {
        self.track_id = ROption::RSome(track_id);
        self
    }
}

/// A class for the whole image (classification), with its score.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct ClassScore {
    pub class_id: u32,
    pub score: f32,
}

/// What the adapter found in one frame.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq)]
pub struct FrameOutput {
    pub instances: RVec<Instance>,
    /// Whole-image classes, best first.
    pub classes: RVec<ClassScore>,
}

impl FrameOutput {
    pub fn instances(instances: Vec<Instance>) -> Self {
        Self {
            instances: RVec::from(instances),
            classes: RVec::new(),
        }
    }

    pub fn classes(classes: Vec<ClassScore>) -> Self {
        Self {
            instances: RVec::new(),
            classes: RVec::from(classes),
        }
    }
}

/// The answer for a batch: one `FrameOutput` per frame, in the frames' order.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq)]
pub struct Output {
    pub frames: RVec<FrameOutput>,
}

impl Output {
    pub fn new(frames: Vec<FrameOutput>) -> Self {
        Self {
            frames: RVec::from(frames),
        }
    }

    /// The answer for a single frame.
    pub fn one(frame: FrameOutput) -> Self {
        Self::new(vec![frame])
    }
}

/// What `finish` returns: the answer, or (for a two-stage model, capability `two-stage`)
/// another inference to run, whose outputs come back to `finish` with its context.
#[repr(C, u8)]
#[derive(StableAbi, Debug)]
pub enum Step {
    Done(Output),
    Run(Prepared),
}
