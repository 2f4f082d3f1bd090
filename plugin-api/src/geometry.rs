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

    /// The four corners as Label Studio draws the box: from (x, y), `width` along the
    /// rotation and `height` across it, clockwise on screen.
    pub fn corners(&self) -> [(f32, f32); 4] {
        let (sin, cos) = (self.rotation as f64).to_radians().sin_cos();
        let (x, y, w, h) = (self.x as f64, self.y as f64, self.width as f64, self.height as f64);
        [
            (x, y),
            (x + w * cos, y + w * sin),
            (x + w * cos - h * sin, y + w * sin + h * cos),
            (x - h * sin, y + h * cos),
        ]
        .map(|(px, py)| (px as f32, py as f32))
    }

    /// The upright box around it, `[x1, y1, x2, y2]` (the box itself when it is not rotated).
    pub fn bounds(&self) -> [f32; 4] {
        if self.rotation == 0.0 {
            return [self.x, self.y, self.x + self.width, self.y + self.height];
        }
        let corners = self.corners();
        let xs = corners.map(|c| c.0);
        let ys = corners.map(|c| c.1);
        let min = |v: [f32; 4]| v.into_iter().fold(f32::INFINITY, f32::min);
        let max = |v: [f32; 4]| v.into_iter().fold(f32::NEG_INFINITY, f32::max);
        [min(xs), min(ys), max(xs), max(ys)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corners_and_bounds_of_a_turned_box() {
        let upright = BoxGeometry::from_corners(1.0, 2.0, 5.0, 4.0);
        assert_eq!(upright.bounds(), [1.0, 2.0, 5.0, 4.0]);
        // A 4 x 2 box turned a quarter clockwise about (10, 10): it hangs down and to the left.
        let turned = BoxGeometry {
            x: 10.0,
            y: 10.0,
            width: 4.0,
            height: 2.0,
            rotation: 90.0,
        };
        let b = turned.bounds();
        let near = |a: f32, e: f32| (a - e).abs() < 1e-5;
        assert!(
            near(b[0], 8.0) && near(b[1], 10.0) && near(b[2], 10.0) && near(b[3], 14.0),
            "{b:?}"
        );
        let c = turned.corners();
        assert!(near(c[1].0, 10.0) && near(c[1].1, 14.0), "{c:?}");
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
