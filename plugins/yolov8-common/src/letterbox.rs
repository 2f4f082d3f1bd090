//! Ultralytics' `LetterBox`: scale to fit, keep the aspect ratio, pad the rest with grey 114.

use plugin_api::{
    ElementType, ImageRef, PluginError, Tensor,
    sdk::{Placement, rgb_to_chw},
};

use crate::resize::resize_linear;

const PAD_VALUE: u8 = 114;

/// Where an image of `src` size lands inside a `dst` input, and how to map back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub src_w: u32,
    pub src_h: u32,
    pub dst_w: u32,
    pub dst_h: u32,
    /// The resized image's size inside the input, before padding.
    pub new_w: u32,
    pub new_h: u32,
    pub pad_left: u32,
    pub pad_top: u32,
    pub pad_right: u32,
    pub pad_bottom: u32,
    /// Per-axis scale from original to input pixels (`new / src`); they differ slightly
    /// when rounding the resized size moves one axis more than the other.
    pub gain_x: f64,
    pub gain_y: f64,
}

impl Letterbox {
    /// Plans the letterbox exactly as Ultralytics does: `r = min(h/H, w/W)` (upscaling allowed),
    /// `new = round(size * r)` with Python's ties-to-even rounding, and the padding split
    /// as `round(d/2 - 0.1)` before and `round(d/2 + 0.1)` after.
    pub fn plan(src_w: u32, src_h: u32, dst_w: u32, dst_h: u32) -> Result<Self, PluginError> {
        if src_w == 0 || src_h == 0 {
            return Err(PluginError::invalid_input(format!(
                "the image is empty ({src_w}x{src_h})"
            )));
        }
        if dst_w == 0 || dst_h == 0 {
            return Err(PluginError::unsupported(format!(
                "the model input is empty ({dst_w}x{dst_h})"
            )));
        }
        let r = f64::min(dst_h as f64 / src_h as f64, dst_w as f64 / src_w as f64);
        // A sliver of an image (1x5000, say) would round to zero pixels; keep one.
        let new_w = ((src_w as f64 * r).round_ties_even() as u32).clamp(1, dst_w);
        let new_h = ((src_h as f64 * r).round_ties_even() as u32).clamp(1, dst_h);
        let dw = (dst_w - new_w) as f64 / 2.0;
        let dh = (dst_h - new_h) as f64 / 2.0;
        Ok(Self {
            src_w,
            src_h,
            dst_w,
            dst_h,
            new_w,
            new_h,
            pad_left: (dw - 0.1).round_ties_even() as u32,
            pad_right: (dw + 0.1).round_ties_even() as u32,
            pad_top: (dh - 0.1).round_ties_even() as u32,
            pad_bottom: (dh + 0.1).round_ties_even() as u32,
            gain_x: new_w as f64 / src_w as f64,
            gain_y: new_h as f64 / src_h as f64,
        })
    }

    /// Maps an input-pixel x back to original-image pixels, clipped to the image.
    pub fn unmap_x(&self, x: f32) -> f32 {
        (((x as f64 - self.pad_left as f64) / self.gain_x) as f32).clamp(0.0, self.src_w as f32)
    }

    /// Maps an input-pixel y back to original-image pixels, clipped to the image.
    pub fn unmap_y(&self, y: f32) -> f32 {
        (((y as f64 - self.pad_top as f64) / self.gain_y) as f32).clamp(0.0, self.src_h as f32)
    }

    /// Letterboxes `image` into a `[1, 3, dst_h, dst_w]` tensor named `name`.
    pub fn tensor(&self, name: &str, image: ImageRef<'_>) -> Result<Tensor, PluginError> {
        let shape = [1, 3, self.dst_h as i64, self.dst_w as i64];
        let mut tensor = Tensor::zeros(name, ElementType::F32, &shape)?;
        self.write(image, tensor.values_mut::<f32>()?)?;
        Ok(tensor)
    }

    /// Letterboxes `image` into `planes`, three `dst_w x dst_h` planes (R, G, B) scaled to 0..1,
    /// as one item of a `[batch, 3, dst_h, dst_w]` tensor.
    pub fn write(&self, image: ImageRef<'_>, planes: &mut [f32]) -> Result<(), PluginError> {
        let (w, h) = (image.width as usize, image.height as usize);
        if (w, h) != (self.src_w as usize, self.src_h as usize) {
            return Err(PluginError::internal(
                "the letterbox was planned for another image size",
            ));
        }
        let pixels = image.rgb()?;
        let (nw, nh) = (self.new_w as usize, self.new_h as usize);
        let resized = resize_linear(pixels, w, h, nw, nh);
        planes.fill(PAD_VALUE as f32 / 255.0);
        let at = Placement {
            dst_x: self.pad_left as usize,
            dst_y: self.pad_top as usize,
            ..Placement::whole(nw, nh)
        };
        rgb_to_chw(
            ImageRef::new(self.new_w, self.new_h, &resized),
            planes,
            self.dst_w as usize,
            self.dst_h as usize,
            at,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landscape_into_square_pads_top_and_bottom() {
        let lb = Letterbox::plan(640, 480, 320, 320).expect("plan");
        assert_eq!((lb.new_w, lb.new_h), (320, 240));
        assert_eq!((lb.pad_left, lb.pad_top, lb.pad_right, lb.pad_bottom), (0, 40, 0, 40));
        assert_eq!((lb.gain_x, lb.gain_y), (0.5, 0.5));
    }

    #[test]
    fn odd_padding_puts_the_extra_pixel_after() {
        // 333x250 -> r = 0.96096, new = (320, 240.24 -> 240), dh = 80 -> 40/40; and 250x333:
        let lb = Letterbox::plan(250, 333, 320, 320).expect("plan");
        assert_eq!((lb.new_w, lb.new_h), (240, 320));
        let lb = Letterbox::plan(301, 200, 320, 320).expect("plan");
        // r = 320/301, new_h = round(212.62) = 213, dh = 107 -> top 53, bottom 54.
        assert_eq!(lb.new_h, 213);
        assert_eq!((lb.pad_top, lb.pad_bottom), (53, 54));
        assert!((lb.gain_y - 213.0 / 200.0).abs() < 1e-12);
    }

    #[test]
    fn rounding_ties_go_to_even_as_in_python() {
        // 640x481 -> r = 0.5 and 240.5 rounds to 240, not 241.
        let lb = Letterbox::plan(640, 481, 320, 320).expect("plan");
        assert_eq!(lb.new_h, 240);
    }

    #[test]
    fn non_square_input() {
        let lb = Letterbox::plan(640, 480, 320, 256).expect("plan");
        assert_eq!((lb.new_w, lb.new_h), (320, 240));
        assert_eq!((lb.pad_top, lb.pad_bottom, lb.pad_left, lb.pad_right), (8, 8, 0, 0));
    }

    #[test]
    fn unmap_inverts_the_mapping_and_clips() {
        let lb = Letterbox::plan(640, 480, 320, 320).expect("plan");
        assert_eq!(lb.unmap_x(160.0), 320.0);
        assert_eq!(lb.unmap_y(40.0), 0.0);
        assert_eq!(lb.unmap_y(10.0), 0.0);
        assert_eq!(lb.unmap_x(400.0), 640.0);
    }

    #[test]
    fn tensor_is_chw_scaled_and_padded_with_114() {
        let pixels: Vec<u8> = [255u8, 0, 0].repeat(4 * 2);
        let lb = Letterbox::plan(4, 2, 4, 4).expect("plan");
        let mut data = vec![0.0f32; 3 * 16];
        lb.write(ImageRef::new(4, 2, &pixels), &mut data).expect("tensor");
        let grey = 114.0 / 255.0;
        // Row 0 is padding, rows 1-2 the image, row 3 padding.
        assert_eq!(data[0], grey);
        assert_eq!(data[4], 1.0);
        assert_eq!(data[16 + 4], 0.0);
        assert_eq!(data[12], grey);
    }

    #[test]
    fn empty_images_are_refused() {
        assert!(Letterbox::plan(0, 10, 320, 320).is_err());
    }
}
