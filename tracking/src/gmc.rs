//! Global motion compensation for BoT-SORT: Ultralytics' `GMC` (trackers/utils/gmc.py, 8.4.190)
//! with its `sparseOptFlow` method (the default of its botsort.yaml) or `none`.
//!
//! Per frame: gray, shrunk by the downscale factor, Shi-Tomasi corners; from the second frame
//! on, the previous frame's corners are followed by pyramidal Lucas-Kanade and a similarity is
//! fitted to the followed ones by RANSAC, its translation scaled back to full resolution.
//!
//! Each step reproduces the OpenCV function Ultralytics calls with the arithmetic of the
//! reference install (opencv-python 5.0 on x86-64, with its IPP colour conversion and AVX2
//! filters): fixed-point sampling, the order of float sums, RANSAC's random draws. Which corners
//! are ranked in, which points are tracked where and which pairs are inliers all hinge on it; on
//! the fixture videos they come out identical, and only the final least-squares refinement
//! rounds differently (warps agree to about 1e-5 px).

mod corners;
mod gray;
mod optical_flow;
mod similarity;

use std::fmt;
use std::str::FromStr;

use crate::FrameRef;
use optical_flow::Pyramid;

/// A 2x3 affine warp from the previous frame to the current one (pixels of the full frame).
pub type Affine = [[f64; 3]; 2];

/// No camera motion.
pub const IDENTITY: Affine = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];

/// A point in the (downscaled) gray frame.
type Point = [f32; 2];

/// How camera motion is estimated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GmcMethod {
    /// Corners followed by sparse optical flow, as Ultralytics' `sparseOptFlow`.
    SparseOptFlow,
    /// No compensation: every warp is the identity.
    None,
}

/// A `gmc_method` that this crate does not implement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsupportedGmcMethod(pub String);

impl fmt::Display for UnsupportedGmcMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.0;
        if ["orb", "sift", "ecc"].contains(&name.as_str()) {
            write!(
                f,
                "GMC method {name:?} is not supported; the supported methods are sparseOptFlow and none"
            )
        } else {
            write!(
                f,
                "unknown GMC method {name:?}; the supported methods are sparseOptFlow and none"
            )
        }
    }
}

impl std::error::Error for UnsupportedGmcMethod {}

impl FromStr for GmcMethod {
    type Err = UnsupportedGmcMethod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sparseOptFlow" | "sparseoptflow" => Ok(GmcMethod::SparseOptFlow),
            // Ultralytics takes "none", "None" and Python's None alike.
            "none" | "None" => Ok(GmcMethod::None),
            other => Err(UnsupportedGmcMethod(other.to_owned())),
        }
    }
}

/// Camera-motion estimator for one video, frame after frame.
#[derive(Clone)]
pub struct Gmc {
    method: GmcMethod,
    downscale: usize,
    previous: Option<Previous>,
}

/// What Ultralytics keeps between frames (`prevFrame`, here as its optical-flow pyramid, and
/// `prevKeyPoints`). Without corners it treats the next frame as a first one, so this only
/// exists with at least one corner.
#[derive(Clone)]
struct Previous {
    pyramid: Pyramid,
    corners: Vec<Point>,
}

impl fmt::Debug for Gmc {
    // The previous frame's pixels would drown everything else.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gmc")
            .field("method", &self.method)
            .field("downscale", &self.downscale)
            .field("previous_corners", &self.previous.as_ref().map(|p| p.corners.len()))
            .finish()
    }
}

impl Gmc {
    /// `downscale` shrinks frames before the estimate (Ultralytics' default is 2; 0 counts as 1).
    pub fn new(method: GmcMethod, downscale: u32) -> Gmc {
        Gmc {
            method,
            downscale: downscale.max(1) as usize,
            previous: None,
        }
    }

    /// The warp from the previous frame to `frame`: the identity for the first frame, and
    /// wherever Ultralytics finds too few points or no model.
    ///
    /// A buffer that is not `width * height * 3` bytes, or a frame too small to downscale,
    /// gives the identity and forgets the previous frame. A frame of a different size from the
    /// previous one starts afresh, as a first frame (where OpenCV would fail).
    pub fn apply(&mut self, frame: FrameRef<'_>) -> Affine {
        if self.method == GmcMethod::None {
            return IDENTITY;
        }
        let (w, h) = (frame.width as usize, frame.height as usize);
        let (sw, sh) = (w / self.downscale, h / self.downscale);
        if w.checked_mul(h).and_then(|n| n.checked_mul(3)) != Some(frame.rgb.len()) || sw == 0 || sh == 0 {
            self.reset();
            return IDENTITY;
        }
        let mut gray = gray::rgb_to_gray(frame.rgb, w, h);
        if self.downscale > 1 {
            gray = gray::resize_linear(&gray, sw, sh);
        }
        let corners = corners::good_features_to_track(&gray);

        let previous = self.previous.take().filter(|p| p.pyramid.size() == (sw, sh));
        if previous.is_none() && corners.is_empty() {
            // Nothing to track from or to: the pyramid would go unused.
            return IDENTITY;
        }
        let pyramid = Pyramid::new(&gray);
        let warp = previous.map_or(IDENTITY, |prev| self.estimate(&prev, &pyramid));
        self.previous = (!corners.is_empty()).then_some(Previous { pyramid, corners });
        warp
    }

    /// Ultralytics' `apply_sparseoptflow` after the first frame.
    fn estimate(&self, prev: &Previous, pyramid: &Pyramid) -> Affine {
        let tracked = optical_flow::track(&prev.pyramid, pyramid, &prev.corners);
        let (from, to): (Vec<Point>, Vec<Point>) = prev
            .corners
            .iter()
            .zip(tracked)
            .filter_map(|(p, t)| t.map(|t| (*p, t)))
            .unzip();
        if from.len() <= 4 {
            return IDENTITY;
        }
        let Some(mut warp) = similarity::estimate_affine_partial_2d(&from, &to) else {
            return IDENTITY;
        };
        if self.downscale > 1 {
            warp[0][2] *= self.downscale as f64;
            warp[1][2] *= self.downscale as f64;
        }
        warp
    }

    /// Forgets the previous frame, for a new video (Ultralytics' `reset_params`).
    pub fn reset(&mut self) {
        self.previous = None;
    }
}

/// OpenCV's `BORDER_REFLECT_101` index into `0..len` (`len > 0`): `-1` is `1`, `len` is `len - 2`.
fn reflect101(i: isize, len: usize) -> usize {
    if len == 1 {
        return 0;
    }
    let n = len as isize;
    let period = 2 * (n - 1);
    let i = i.rem_euclid(period);
    (if i < n { i } else { period - i }) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect101_matches_opencv() {
        let got: Vec<usize> = (-5..9).map(|i| reflect101(i, 4)).collect();
        assert_eq!(got, [1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2]);
        assert_eq!(reflect101(-3, 1), 0);
    }

    #[test]
    fn methods_parse() {
        assert_eq!("sparseOptFlow".parse(), Ok(GmcMethod::SparseOptFlow));
        assert_eq!("sparseoptflow".parse(), Ok(GmcMethod::SparseOptFlow));
        assert_eq!("none".parse(), Ok(GmcMethod::None));
        let err = "orb".parse::<GmcMethod>().unwrap_err().to_string();
        assert!(
            err.contains("\"orb\" is not supported") && err.contains("sparseOptFlow and none"),
            "{err}"
        );
        let err = "fast".parse::<GmcMethod>().unwrap_err().to_string();
        assert!(err.contains("unknown GMC method \"fast\""), "{err}");
    }

    #[test]
    fn bad_frames_give_the_identity() {
        let mut gmc = Gmc::new(GmcMethod::SparseOptFlow, 2);
        assert_eq!(
            gmc.apply(FrameRef {
                rgb: &[0; 10],
                width: 2,
                height: 2
            }),
            IDENTITY
        );
        assert_eq!(
            gmc.apply(FrameRef {
                rgb: &[0; 3],
                width: 1,
                height: 1
            }),
            IDENTITY
        );
        assert_eq!(
            gmc.apply(FrameRef {
                rgb: &[],
                width: 0,
                height: 0
            }),
            IDENTITY
        );
        let huge = FrameRef {
            rgb: &[],
            width: u32::MAX,
            height: u32::MAX,
        };
        assert_eq!(gmc.apply(huge), IDENTITY);
    }
}
