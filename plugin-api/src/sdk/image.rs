//! Turning RGB8 pixels into the planar (CHW) f32 tensors most vision models take.

use crate::{ImageRef, PluginError};

/// Where a window of the source image lands in the destination planes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Top-left corner of the window in the source image.
    pub src_x: usize,
    pub src_y: usize,
    /// Top-left corner in the destination planes.
    pub dst_x: usize,
    pub dst_y: usize,
    /// Size of the window.
    pub width: usize,
    pub height: usize,
}

impl Placement {
    /// The whole image at the destination's top-left corner.
    pub fn whole(width: usize, height: usize) -> Self {
        Self {
            src_x: 0,
            src_y: 0,
            dst_x: 0,
            dst_y: 0,
            width,
            height,
        }
    }
}

/// Copies a window of `image` into three planes `R, G, B` of `dst_w x dst_h` f32 values each
/// (`planes.len() == 3 * dst_w * dst_h`), scaled from 0..255 to 0..1. Pixels outside the
/// window keep their value (fill the planes with the padding first). Checks every bound.
pub fn rgb_to_chw(
    image: ImageRef<'_>,
    planes: &mut [f32],
    dst_w: usize,
    dst_h: usize,
    at: Placement,
) -> Result<(), PluginError> {
    let (w, h) = (image.width as usize, image.height as usize);
    let pixels = image.rgb()?;
    let plane = dst_w * dst_h;
    if planes.len() != 3 * plane
        || at.src_x + at.width > w
        || at.src_y + at.height > h
        || at.dst_x + at.width > dst_w
        || at.dst_y + at.height > dst_h
    {
        return Err(PluginError::internal(format!(
            "a {}x{} window does not fit from {w}x{h} into {dst_w}x{dst_h} planes",
            at.width, at.height
        )));
    }
    // `v as f32 / 255.0` for every byte value, looked up: the same numbers without a
    // division per element.
    let scaled: [f32; 256] = std::array::from_fn(|v| v as f32 / 255.0);
    let (r_plane, rest) = planes.split_at_mut(plane);
    let (g_plane, b_plane) = rest.split_at_mut(plane);
    for y in 0..at.height {
        let src_start = ((at.src_y + y) * w + at.src_x) * 3;
        let src_row = &pixels[src_start..src_start + at.width * 3];
        let start = (at.dst_y + y) * dst_w + at.dst_x;
        let rows = r_plane[start..start + at.width]
            .iter_mut()
            .zip(g_plane[start..start + at.width].iter_mut())
            .zip(b_plane[start..start + at.width].iter_mut());
        for (((r, g), b), px) in rows.zip(src_row.chunks_exact(3)) {
            *r = scaled[px[0] as usize];
            *g = scaled[px[1] as usize];
            *b = scaled[px[2] as usize];
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_lands_where_placed_and_the_rest_keeps_its_value() {
        // 2x1 image: red, blue; into 3x2 planes at (1, 1).
        let pixels = [255u8, 0, 0, 0, 0, 255];
        let mut planes = vec![-1.0f32; 3 * 6];
        let at = Placement {
            dst_x: 1,
            dst_y: 1,
            ..Placement::whole(2, 1)
        };
        rgb_to_chw(ImageRef::new(2, 1, &pixels), &mut planes, 3, 2, at).expect("copy");
        assert_eq!(&planes[0..6], &[-1.0, -1.0, -1.0, -1.0, 1.0, 0.0], "R");
        assert_eq!(&planes[12..18], &[-1.0, -1.0, -1.0, -1.0, 0.0, 1.0], "B");
    }

    #[test]
    fn out_of_bounds_windows_and_short_images_are_errors() {
        let pixels = [0u8; 12];
        let mut planes = vec![0.0f32; 3 * 4];
        let image = ImageRef::new(2, 2, &pixels);
        assert!(rgb_to_chw(image, &mut planes, 2, 2, Placement::whole(2, 2)).is_ok());
        let shifted = Placement {
            dst_x: 1,
            ..Placement::whole(2, 2)
        };
        assert!(rgb_to_chw(image, &mut planes, 2, 2, shifted).is_err());
        assert!(rgb_to_chw(ImageRef::new(3, 2, &pixels), &mut planes, 2, 2, Placement::whole(2, 2)).is_err());
    }
}
