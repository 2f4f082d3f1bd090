//! Shapes in original-image pixels.

use abi_stable::{StableAbi, std_types::RVec};

/// An axis-aligned (or, with `rotation`, oriented) box in original-image pixels.
/// `x`, `y` is the top-left corner; `rotation` is in degrees, clockwise, about that corner,
/// as Label Studio rotates rectangles.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct BoxGeometry {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
    pub rotation: f32,
}

impl BoxGeometry {
    /// An axis-aligned box from its corners.
    pub fn from_corners(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        Self {
            x: x1,
            y: y1,
            width: x2 - x1,
            height: y2 - y1,
            rotation: 0.0,
        }
    }
}

/// A point in original-image pixels.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

/// A keypoint in original-image pixels: which keypoint of the model's skeleton it is
/// (`index`, 0 for the first), with its own confidence.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct Keypoint {
    pub index: u32,
    pub x: f32,
    pub y: f32,
    pub score: f32,
}

/// A binary mask the size of the original image, run-length encoded in row-major order:
/// `runs` alternates counts of background and foreground pixels, starting with background
/// (so it starts with 0 when the first pixel is foreground). The counts sum to `width * height`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    pub width: u32,
    pub height: u32,
    pub runs: RVec<u32>,
}
