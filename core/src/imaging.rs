//! Decoding task images the way Ultralytics reads them: 8-bit RGB, EXIF orientation applied,
//! alpha dropped (not composited), grayscale replicated to three channels.
//!
//! JPEGs go through libjpeg-turbo's code (via mozjpeg, with its default ISLOW IDCT and fancy
//! upsampling), because that is what OpenCV decodes with: the pure-Rust decoder differs by a
//! level here and there, which moved a few reference boxes past the parity tolerance.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

/// An upright RGB8 image, `width * height * 3` bytes.
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot decode the image: {0}")]
pub struct DecodeError(String);

/// Decodes an image of at most `max_pixels` pixels. The size is read from the header first,
/// so a decompression bomb is refused before any memory is spent on it.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, DecodeError> {
    decode_within(bytes, max_pixels, "ML_MAX_IMAGE_PIXELS")
}

/// The same, with the limit named by `setting` in the error.
pub fn decode_within(bytes: &[u8], max_pixels: u64, setting: &str) -> Result<RgbImage, DecodeError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeError(e.to_string()))?;
    let reader_format = reader.format();
    if reader_format.is_none() {
        return Err(DecodeError("the data is not in a known image format".into()));
    }
    // RGBA at 16 bits per channel is the most a decoder buffers per pixel.
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(1 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| DecodeError(e.to_string()))?;
    let (w, h) = decoder.dimensions();
    if w as u64 * h as u64 > max_pixels {
        return Err(DecodeError(format!(
            "the image is {w}x{h} = {} pixels, more than the {max_pixels} allowed ({setting})",
            w as u64 * h as u64
        )));
    }
    if reader_format == Some(ImageFormat::Jpeg) && !has_end_marker(bytes) {
        return Err(DecodeError(
            "the JPEG is truncated: it has no end-of-image marker".into(),
        ));
    }
    // A broken EXIF block should not cost the image; it just stays as stored.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = match reader_format {
        Some(ImageFormat::Jpeg) => match decode_jpeg_like_opencv(bytes) {
            Some(image) => image,
            // CMYK and other colour spaces libjpeg cannot turn into RGB.
            None => DynamicImage::from_decoder(decoder).map_err(|e| DecodeError(e.to_string()))?,
        },
        _ => DynamicImage::from_decoder(decoder).map_err(|e| DecodeError(e.to_string()))?,
    };
    image.apply_orientation(orientation);
    let (width, height) = (image.width(), image.height());
    if width == 0 || height == 0 {
        return Err(DecodeError(format!("the image is empty ({width}x{height})")));
    }
    Ok(RgbImage {
        width,
        height,
        pixels: image.into_rgb8().into_raw(),
    })
}

/// Whether a JPEG ends with its end-of-image marker (FF D9), allowing for the trailing bytes
/// some cameras and editors append. libjpeg would silently fill a cut-off image with grey.
fn has_end_marker(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(64 * 1024)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Decodes a JPEG to RGB with libjpeg's defaults, or None if libjpeg cannot (the caller
/// falls back to the pure-Rust decoder). libjpeg reports errors by unwinding out of C.
fn decode_jpeg_like_opencv(bytes: &[u8]) -> Option<DynamicImage> {
    std::panic::catch_unwind(|| -> std::io::Result<DynamicImage> {
        let mut started = mozjpeg::Decompress::new_mem(bytes)?.rgb()?;
        let (width, height) = (started.width() as u32, started.height() as u32);
        let pixels = started.read_scanlines::<u8>()?;
        started.finish()?;
        image::RgbImage::from_raw(width, height, pixels)
            .map(DynamicImage::ImageRgb8)
            .ok_or_else(|| std::io::Error::other("short JPEG scanlines"))
    })
    .ok()?
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: u64 = 10_000_000;
    use image::{GrayImage, ImageFormat, Luma, Rgba, RgbaImage};

    fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).expect("encode");
        out.into_inner()
    }

    #[test]
    fn alpha_is_dropped_not_composited() {
        let img = RgbaImage::from_pixel(2, 1, Rgba([200, 100, 50, 0]));
        let decoded = decode(&encode(DynamicImage::ImageRgba8(img), ImageFormat::Png), LIMIT).expect("decode");
        assert_eq!(decoded.pixels, vec![200, 100, 50, 200, 100, 50]);
    }

    #[test]
    fn grayscale_is_replicated() {
        let img = GrayImage::from_pixel(1, 2, Luma([77]));
        let decoded = decode(&encode(DynamicImage::ImageLuma8(img), ImageFormat::Png), LIMIT).expect("decode");
        assert_eq!((decoded.width, decoded.height), (1, 2));
        assert_eq!(decoded.pixels, vec![77; 6]);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode(b"definitely not an image", LIMIT).is_err());
        assert!(decode(&[], LIMIT).is_err());
    }

    #[test]
    fn exif_orientation_is_applied() {
        // A 2x1 JPEG tagged "rotate 90 CW" (orientation 6) is shown as 1x2.
        let img = image::RgbImage::from_pixel(2, 1, image::Rgb([10, 200, 10]));
        let jpeg = encode(DynamicImage::ImageRgb8(img), ImageFormat::Jpeg);
        let tagged = with_exif_orientation(&jpeg, 6);
        let decoded = decode(&tagged, LIMIT).expect("decode");
        assert_eq!((decoded.width, decoded.height), (1, 2));
    }

    /// Inserts an APP1 EXIF segment holding only an orientation tag after the SOI marker.
    fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut tiff = vec![b'M', b'M', 0, 42, 0, 0, 0, 8, 0, 1];
        tiff.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
        tiff.extend_from_slice(&orientation.to_be_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend_from_slice(&tiff);
        let len = (payload.len() + 2) as u16;
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&payload);
        out.extend_from_slice(&jpeg[2..]);
        out
    }
}
