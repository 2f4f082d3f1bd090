//! A borrowed video frame.

/// One frame's pixels: 8-bit RGB, row after row with no padding (`rgb.len()` is
/// `width * height * 3`).
#[derive(Clone, Copy, Debug)]
pub struct FrameRef<'a> {
    pub rgb: &'a [u8],
    pub width: u32,
    pub height: u32,
}
