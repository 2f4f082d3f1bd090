//! Images and frames as the host hands them to an adapter.

use abi_stable::{StableAbi, std_types::RSlice};

use crate::PluginError;

/// A decoded image: RGB, 8 bits per channel, row-major, `width * height * 3` bytes, already
/// turned upright according to its EXIF orientation. Borrowed from the host for one call.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct ImageRef<'a> {
    pub width: u32,
    pub height: u32,
    pub pixels: RSlice<'a, u8>,
}

impl<'a> ImageRef<'a> {
    pub fn new(width: u32, height: u32, pixels: &'a [u8]) -> Self {
        Self {
            width,
            height,
            pixels: RSlice::from_slice(pixels),
        }
    }

    pub fn pixels(&self) -> &'a [u8] {
        self.pixels.as_slice()
    }

    /// The pixels, checked to hold exactly `width * height` RGB triples.
    pub fn rgb(&self) -> Result<&'a [u8], PluginError> {
        let (w, h) = (self.width as usize, self.height as usize);
        let pixels = self.pixels();
        if w == 0 || h == 0 || pixels.len() != w * h * 3 {
            return Err(PluginError::invalid_input(format!(
                "the image holds {} bytes, but {w}x{h} RGB needs {}",
                pixels.len(),
                w * h * 3
            )));
        }
        Ok(pixels)
    }

    /// The pixel at `(x, y)`, or None outside the image or when the buffer is short.
    pub fn pixel(&self, x: u32, y: u32) -> Option<[u8; 3]> {
        if x >= self.width || y >= self.height {
            return None;
        }
        let at = (y as usize * self.width as usize + x as usize) * 3;
        self.pixels().get(at..at + 3).map(|p| [p[0], p[1], p[2]])
    }
}

/// One image of a batch: a still image (index 0, timestamp 0) or a video frame.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub image: ImageRef<'a>,
    /// The frame's position in its video, from 0; 0 for a still image.
    pub index: u64,
    /// Seconds from the start of the video; 0 for a still image.
    pub timestamp: f64,
}

impl<'a> Frame<'a> {
    /// A still image.
    pub fn still(image: ImageRef<'a>) -> Self {
        Self {
            image,
            index: 0,
            timestamp: 0.0,
        }
    }
}
