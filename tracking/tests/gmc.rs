//! Global motion compensation against Ultralytics' own: the warps its `GMC(sparseOptFlow,
//! downscale=2)` gave on every frame of the video fixtures (tests/fixtures/video/gmc/, recorded
//! by scripts/fixtures/gmc-reference.py from the same ffmpeg rgb24 frames this test decodes),
//! and the known motion of a synthetic pan.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ls_tracking::FrameRef;
use ls_tracking::gmc::{Affine, Gmc, GmcMethod, IDENTITY};

/// Agreement asked of every frame on the reference's own pixels: translation in full-frame
/// pixels, and the 2x2 linear part. Only the final least-squares refinement rounds differently
/// from OpenCV's; everything before it is bit for bit.
const EXACT_PIXELS_TOLERANCE: (f64, f64) = (1e-4, 1e-6);
/// The same where this ffmpeg decodes the video to slightly other pixels than the reference's.
const OTHER_PIXELS_TOLERANCE: (f64, f64) = (0.1, 1e-3);

fn videos() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/video")
}

fn frame_size(file: &Path) -> (usize, usize) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("ffprobe runs (scripts/setup-ffmpeg.sh installs it)");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut dims = text
        .trim()
        .split(',')
        .map(|v| v.parse::<usize>().expect("a frame dimension"));
    (dims.next().expect("a width"), dims.next().expect("a height"))
}

/// Every frame of the first video stream as raw RGB, decoded as the reference script decodes
/// it (and as core/src/video/decode.rs does).
fn decode(file: &Path) -> (usize, usize, Vec<Vec<u8>>) {
    let (width, height) = frame_size(file);
    let mut child = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args([
            "-map",
            "0:v:0",
            "-an",
            "-sn",
            "-dn",
            "-vsync",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ffmpeg runs (scripts/setup-ffmpeg.sh installs it)");
    let mut stdout = child.stdout.take().expect("a piped stdout");
    let mut frames = Vec::new();
    loop {
        let mut frame = vec![0u8; width * height * 3];
        match stdout.read_exact(&mut frame) {
            Ok(()) => frames.push(frame),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("reading ffmpeg's frames of {}: {e}", file.display()),
        }
    }
    assert!(
        child.wait().expect("ffmpeg exits").success(),
        "ffmpeg failed on {}",
        file.display()
    );
    (width, height, frames)
}

/// 64-bit FNV-1a, as scripts/fixtures/gmc-reference.py records it.
fn fnv1a64<'a>(bytes: impl IntoIterator<Item = &'a u8>) -> String {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
    }
    format!("{h:016x}")
}

fn warp(v: &serde_json::Value) -> Affine {
    let row = |r: &serde_json::Value| -> [f64; 3] {
        let r: Vec<f64> = r
            .as_array()
            .expect("a warp row")
            .iter()
            .map(|x| x.as_f64().expect("a number"))
            .collect();
        [r[0], r[1], r[2]]
    };
    let rows = v.as_array().expect("a 2x3 warp");
    [row(&rows[0]), row(&rows[1])]
}

/// Largest differences between two warps: (translation, linear part).
fn differences(a: &Affine, b: &Affine) -> (f64, f64) {
    let mut t = 0f64;
    let mut l = 0f64;
    for r in 0..2 {
        for c in 0..2 {
            l = l.max((a[r][c] - b[r][c]).abs());
        }
        t = t.max((a[r][2] - b[r][2]).abs());
    }
    (t, l)
}

/// Runs our GMC on a fixture video and compares every frame's warp with Ultralytics'.
fn parity(stem: &str) {
    let reference = videos().join("gmc").join(format!("{stem}.json"));
    let text = std::fs::read_to_string(&reference).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (make it with scripts/fixtures/gmc-reference.py)",
            reference.display()
        )
    });
    let json: serde_json::Value = serde_json::from_str(&text).expect("the reference is JSON");
    let expected: Vec<Affine> = json["warps"].as_array().expect("warps").iter().map(warp).collect();

    let video = videos().join(format!("{stem}.mp4"));
    let file = std::fs::read(&video).unwrap_or_else(|e| panic!("{}: {e}", video.display()));
    assert_eq!(
        json["mp4_fnv1a64"].as_str(),
        Some(fnv1a64(&file).as_str()),
        "{stem}.mp4 is not the video {} was recorded from: rerun scripts/fixtures/gmc-reference.py",
        reference.display()
    );
    let (width, height, frames) = decode(&video);
    assert_eq!(
        (json["width"].as_u64(), json["height"].as_u64()),
        (Some(width as u64), Some(height as u64))
    );
    assert_eq!(frames.len(), expected.len(), "{stem}: frames decoded vs recorded");
    let same_pixels = json["rgb_fnv1a64"].as_str() == Some(fnv1a64(frames.iter().flatten()).as_str());
    let (max_translation, max_linear) = if same_pixels {
        EXACT_PIXELS_TOLERANCE
    } else {
        eprintln!(
            "{stem}: this ffmpeg decodes other pixels than the reference's ({})",
            json["ffmpeg"]
        );
        OTHER_PIXELS_TOLERANCE
    };

    let mut gmc = Gmc::new(GmcMethod::SparseOptFlow, 2);
    let (mut max_t, mut max_l, mut worst) = (0f64, 0f64, 0);
    let mut elapsed = Duration::ZERO;
    for (i, (rgb, want)) in frames.iter().zip(&expected).enumerate() {
        let start = Instant::now();
        let got = gmc.apply(FrameRef {
            rgb,
            width: width as u32,
            height: height as u32,
        });
        elapsed += start.elapsed();
        let (t, l) = differences(&got, want);
        if t > max_t {
            worst = i;
        }
        max_t = max_t.max(t);
        max_l = max_l.max(l);
        assert!(
            t <= max_translation && l <= max_linear,
            "{stem} frame {i}: ours {got:?}, Ultralytics' {want:?}"
        );
    }
    eprintln!(
        "{stem}: {} frames {width}x{height}, max difference: translation {max_t:.3e} px (frame {worst}), linear {max_l:.3e}; \
         {:.2} ms a frame (same pixels as the reference: {same_pixels})",
        frames.len(),
        elapsed.as_secs_f64() * 1e3 / frames.len() as f64
    );
}

#[test]
#[ignore = "needs ffmpeg and ffprobe (scripts/setup-ffmpeg.sh); scripts/test.sh runs it"]
fn pan_matches_ultralytics() {
    parity("pan");
}

#[test]
#[ignore = "needs ffmpeg and ffprobe (scripts/setup-ffmpeg.sh); scripts/test.sh runs it"]
fn cross_matches_ultralytics() {
    parity("cross");
}

#[test]
#[ignore = "needs ffmpeg and ffprobe (scripts/setup-ffmpeg.sh); scripts/test.sh runs it"]
fn enter_leave_matches_ultralytics() {
    parity("enter-leave");
}

/// A textured still, panned by the crop window moving (+4, +2) px a frame: the content moves by
/// (-4, -2), with no rotation or scale. Stored losslessly, so the frames are exact crops.
#[test]
#[ignore = "needs ffmpeg and ffprobe (scripts/setup-ffmpeg.sh); scripts/test.sh runs it"]
fn synthetic_pan_is_recovered() {
    let dir = std::env::temp_dir().join(format!("ls-tracking-gmc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let (tw, th) = (2048usize, 1200usize);
    let mut ppm = format!("P6\n{tw} {th}\n255\n").into_bytes();
    for y in 0..th {
        for x in 0..tw {
            let (u, v) = (x as f64, y as f64);
            let s = (u * 0.071).sin() * (v * 0.053).cos()
                + 0.6 * ((u + 2.0 * v) * 0.019).sin()
                + 0.4 * ((u * v).sqrt() * 0.11).cos();
            let g = (128.0 + 80.0 * s).clamp(0.0, 255.0) as u8;
            ppm.extend_from_slice(&[g, g.wrapping_add((x / 7) as u8 & 0x1f), 255 - g]);
        }
    }
    let texture = dir.join("texture.ppm");
    std::fs::write(&texture, ppm).expect("the texture is written");
    let clip = dir.join("pan.mkv");
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-loop", "1", "-i"])
        .arg(&texture)
        .args([
            "-vf",
            "crop=1920:1080:8+4*n:6+2*n",
            "-frames:v",
            "8",
            "-c:v",
            "ffv1",
            "-pix_fmt",
            "bgr0",
        ])
        .arg(&clip)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg made the clip");
    let (width, height, frames) = decode(&clip);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!((width, height, frames.len()), (1920, 1080, 8));

    let mut gmc = Gmc::new(GmcMethod::SparseOptFlow, 2);
    let mut elapsed = Duration::ZERO;
    for (i, rgb) in frames.iter().enumerate() {
        let start = Instant::now();
        let got = gmc.apply(FrameRef {
            rgb,
            width: 1920,
            height: 1080,
        });
        elapsed += start.elapsed();
        let want = if i == 0 {
            IDENTITY
        } else {
            [[1.0, 0.0, -4.0], [0.0, 1.0, -2.0]]
        };
        let (t, l) = differences(&got, &want);
        assert!(t < 0.05 && l < 1e-3, "frame {i}: {got:?}");
    }
    eprintln!(
        "synthetic 1920x1080 pan: {:.2} ms a frame",
        elapsed.as_secs_f64() * 1e3 / frames.len() as f64
    );
}

#[test]
#[ignore = "needs ffmpeg and ffprobe (scripts/setup-ffmpeg.sh); scripts/test.sh runs it"]
fn none_reset_and_bad_frames() {
    let (width, height, frames) = decode(&videos().join("pan.mp4"));
    let frame = |i: usize| FrameRef {
        rgb: &frames[i],
        width: width as u32,
        height: height as u32,
    };

    let mut none = Gmc::new(GmcMethod::None, 2);
    assert!((0..3).all(|i| none.apply(frame(i)) == IDENTITY));

    let mut gmc = Gmc::new(GmcMethod::SparseOptFlow, 2);
    assert_eq!(gmc.apply(frame(0)), IDENTITY, "the first frame");
    let moved = gmc.apply(frame(1));
    assert_ne!(moved, IDENTITY, "pan.mp4 pans");
    gmc.reset();
    assert_eq!(gmc.apply(frame(1)), IDENTITY, "a first frame again after reset");
    assert_eq!(gmc.apply(frame(2)), {
        let mut fresh = Gmc::new(GmcMethod::SparseOptFlow, 2);
        fresh.apply(frame(1));
        fresh.apply(frame(2))
    });

    // A short buffer resets too: the next frame is a first one.
    let short = FrameRef {
        rgb: &frames[3][..100],
        width: width as u32,
        height: height as u32,
    };
    assert_eq!(gmc.apply(short), IDENTITY);
    assert_eq!(gmc.apply(frame(4)), IDENTITY);
    // So does a change of size (where OpenCV would raise).
    let small = vec![90u8; 64 * 48 * 3];
    assert_eq!(
        gmc.apply(FrameRef {
            rgb: &small,
            width: 64,
            height: 48
        }),
        IDENTITY
    );
    assert_eq!(gmc.apply(frame(5)), IDENTITY);
}
