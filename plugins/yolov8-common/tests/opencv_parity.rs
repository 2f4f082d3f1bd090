//! The letterbox against Ultralytics' own: the plan for every eval-a image, and the pixels
//! of the two images whose letterboxed input tensors the fixtures keep.

use std::path::{Path, PathBuf};

use plugin_api::ImageRef;
use yolov8_common::Letterbox;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/eval-a")
}

fn reference() -> serde_json::Value {
    let text = std::fs::read(fixtures().join("reference_yolov8n-shapes-det-320.json")).expect("reference");
    serde_json::from_slice(&text).expect("json")
}

#[test]
fn letterbox_plan_matches_ultralytics_on_every_image() {
    let reference = reference();
    let images = reference["images"].as_array().expect("images");
    assert_eq!(images.len(), 40);
    for image in images {
        let (w, h) = (
            image["width"].as_u64().expect("w") as u32,
            image["height"].as_u64().expect("h") as u32,
        );
        let lb = Letterbox::plan(w, h, 320, 320).expect("plan");
        let want = &image["letterbox"];
        let name = &image["file_name"];
        assert_eq!(
            [lb.new_w as u64, lb.new_h as u64],
            [0, 1].map(|i| want["new_unpad_wh"][i].as_u64().expect("n")),
            "{name}"
        );
        assert_eq!(
            [lb.pad_left, lb.pad_top, lb.pad_right, lb.pad_bottom].map(u64::from),
            [0, 1, 2, 3].map(|i| want["pad_ltrb"][i].as_u64().expect("pad")),
            "{name}"
        );
        assert!(
            (lb.gain_x - want["gain_xy"][0].as_f64().expect("gx")).abs() < 1e-6,
            "{name}"
        );
        assert!(
            (lb.gain_y - want["gain_xy"][1].as_f64().expect("gy")).abs() < 1e-6,
            "{name}"
        );
    }
}

/// Reads a `.npy` of u8 (the fixtures' letterboxed inputs, HWC RGB).
fn read_npy_u8(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).expect("npy");
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    bytes[10 + header_len..].to_vec()
}

#[test]
fn letterboxed_pixels_are_identical_to_opencv() {
    for (stem, png) in [("eval-a_0000", "eval-a_0000.png"), ("eval-a_0001", "eval-a_0001.png")] {
        let decoded = image::open(fixtures().join("images").join(png))
            .expect("png")
            .into_rgb8();
        let (w, h) = decoded.dimensions();
        let lb = Letterbox::plan(w, h, 320, 320).expect("plan");
        let mut planes = vec![0.0f32; 3 * 320 * 320];
        lb.write(ImageRef::new(w, h, decoded.as_raw()), &mut planes)
            .expect("tensor");
        let expected = read_npy_u8(&fixtures().join("raw").join(format!("{stem}_input_rgb_u8_hwc.npy")));
        let plane = 320 * 320;
        let mut differing = 0;
        let mut max_diff = 0i32;
        for (i, want) in expected.iter().enumerate() {
            let (pixel, channel) = (i / 3, i % 3);
            let ours = (planes[channel * plane + pixel] * 255.0).round() as i32;
            let diff = (ours - *want as i32).abs();
            max_diff = max_diff.max(diff);
            differing += usize::from(diff != 0);
        }
        println!(
            "{png}: {w}x{h} -> {}x{}: {differing} of {} values differ, max diff {max_diff}",
            lb.new_w,
            lb.new_h,
            expected.len()
        );
        assert_eq!(differing, 0, "{png}: the letterboxed input differs from OpenCV's");
    }
}
