//! How long the mask result builders take: Label Studio RLE and polygon outlines for a
//! 1920x1080 image with 20 instances. Run: `cargo bench -p ls-ml-backend --bench masks`.

use std::time::{Duration, Instant};

use labelstudio_protocol::brush;
use plugin_api::Mask;

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;

/// A filled ellipse with a wavy edge, as run lengths over the whole image.
fn instance(i: u32) -> Mask {
    let (cx, cy) = (100.0 + (i % 5) as f64 * 380.0, 120.0 + (i / 5) as f64 * 260.0);
    let (rx, ry) = (60.0 + (i * 13 % 110) as f64, 40.0 + (i * 29 % 80) as f64);
    let mut runs = vec![0u32];
    let mut inside = false;
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            let (dx, dy) = ((x as f64 - cx) / rx, (y as f64 - cy) / ry);
            let wobble = 1.0 + 0.08 * (dy.atan2(dx) * 7.0).sin();
            let on = dx * dx + dy * dy <= wobble * wobble;
            if on != inside {
                runs.push(0);
                inside = on;
            }
            *runs.last_mut().expect("run") += 1;
        }
    }
    Mask {
        width: WIDTH,
        height: HEIGHT,
        runs: runs.into(),
    }
}

fn time<T>(rounds: u32, mut f: impl FnMut() -> T) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        std::hint::black_box(f());
        best = best.min(t.elapsed());
    }
    best
}

fn main() {
    let masks: Vec<Mask> = (0..20).map(instance).collect();
    let pixels: usize = masks
        .iter()
        .map(|m| m.runs.iter().skip(1).step_by(2).map(|r| *r as usize).sum::<usize>())
        .sum();
    let rle = time(20, || masks.iter().map(|m| brush::encode(m).len()).sum::<usize>());
    let outline = time(20, || {
        masks
            .iter()
            .map(|m| {
                let points: Vec<(f64, f64)> = mask_geometry::outline_of_runs(m.width as usize, &m.runs)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(x, y)| (x as f64 + 0.5, y as f64 + 0.5))
                    .collect();
                mask_geometry::douglas_peucker(&mask_geometry::drop_collinear(&points), 1.0).len()
            })
            .sum::<usize>()
    });
    let traced = time(20, || {
        masks
            .iter()
            .map(|m| mask_geometry::outline_of_runs(m.width as usize, &m.runs).map_or(0, |o| o.len()))
            .sum::<usize>()
    });
    println!("  (of which tracing alone:  {:7.3} ms)", traced.as_secs_f64() * 1e3);
    let bytes: usize = masks.iter().map(|m| brush::encode(m).len()).sum();
    println!("masks: {WIDTH}x{HEIGHT}, 20 instances, {pixels} mask pixels in all (best of 20 runs)");
    println!(
        "  brush RLE, all 20:        {:7.3} ms  ({bytes} bytes of RLE)",
        rle.as_secs_f64() * 1e3
    );
    println!("  polygon outline + DP, 20: {:7.3} ms", outline.as_secs_f64() * 1e3);
    println!(
        "  both:                     {:7.3} ms",
        (rle + outline).as_secs_f64() * 1e3
    );
}
