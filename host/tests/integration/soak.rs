//! Soak: 8 clients send detection and segmentation requests without pause while a model is
//! swapped at intervals. No request may fail, and the server's memory must stop growing.
//!
//! CI runs a short version (LS_ML_SOAK_SECONDS, default 20). The long one is
//! `scripts/soak.sh` (10 minutes, release build), whose latest result is in docs/soak.md.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use crate::common::*;
use serde_json::Value;

fn seconds(var: &str, default: u64) -> Duration {
    Duration::from_secs(std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_clients_with_model_swaps_never_fail_and_memory_levels_off() {
    let duration = seconds("LS_ML_SOAK_SECONDS", 20);
    let swap_every = seconds("LS_ML_SOAK_SWAP_SECONDS", (duration.as_secs() / 4).max(5));
    let images = serve_dir(eval_images());
    let server = Server::start_with_plugins(
        &[
            ("yolov8n-shapes-det-320.onnx", "1.onnx"),
            ("yolov8n-shapes-seg-320.onnx", "2.onnx"),
        ],
        &[],
        &["yolov8_detect", "yolov8_seg"],
    )
    .await;
    let dir = server.models_dir.path().to_path_buf();
    let names: Vec<String> = std::fs::read_dir(eval_images())
        .expect("images")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();

    let config = shapes_config(&[
        ("RectangleLabels", "box"),
        ("PolygonLabels", "outline"),
        ("BrushLabels", "mask"),
    ]);
    let running = Arc::new(AtomicBool::new(true));
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (running, done, failed) = (Arc::clone(&running), Arc::clone(&done), Arc::clone(&failed));
            let (http, url, names, config) = (
                reqwest::Client::new(),
                server.url("/predict"),
                names.clone(),
                config.clone(),
            );
            tokio::spawn(async move {
                let mut i = c;
                while running.load(Ordering::SeqCst) {
                    let project = if i % 2 == 0 { "1.1" } else { "2.1" };
                    let urls: Vec<String> = (0..2)
                        .map(|k| format!("http://{images}/{}", names[(i * 2 + k) % names.len()]))
                        .collect();
                    let ok = match http
                        .post(&url)
                        .json(&predict_body(&urls, project, &config))
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 200 => {
                            r.json::<Value>()
                                .await
                                .ok()
                                .and_then(|v| v["results"].as_array().map(Vec::len))
                                == Some(2)
                        }
                        _ => false,
                    };
                    if ok {
                        done.fetch_add(1, Ordering::SeqCst);
                    } else {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                    i += 8;
                }
            })
        })
        .collect();

    let started = Instant::now();
    let (mut samples, mut swaps, mut next_swap) = (Vec::new(), 0, started + swap_every);
    while started.elapsed() < duration {
        tokio::time::sleep(Duration::from_millis(500)).await;
        samples.push((started.elapsed().as_secs_f64(), server.rss_kib()));
        if Instant::now() >= next_swap {
            let fixture = if swaps % 2 == 0 {
                "yolov8n-shapes-det-320-dynamic.onnx"
            } else {
                "yolov8n-shapes-det-320.onnx"
            };
            move_into_place(&fixture_model(fixture), &dir, "1.onnx");
            swaps += 1;
            next_swap += swap_every;
        }
    }
    running.store(false, Ordering::SeqCst);
    for client in clients {
        client.await.expect("client");
    }
    let (done, failed) = (done.load(Ordering::SeqCst), failed.load(Ordering::SeqCst));
    // Memory after warm-up: the peak of each half of the samples taken after the first half
    // (allocator arenas and ONNX Runtime's buffers grow to their working size first).
    let warm: Vec<u64> = samples.iter().skip(samples.len() / 2).map(|s| s.1).collect();
    let (early, late) = warm.split_at(warm.len() / 2);
    let peak = |s: &[u64]| s.iter().copied().max().unwrap_or(0) as f64 / 1024.0;
    let line = format!(
        "soak: {:.0} s, 8 clients, det + seg, {swaps} model swaps: {done} requests ({:.1}/s), {failed} failed; \
         RSS peak {:.1} MiB early vs {:.1} MiB late (after warm-up), {:.1} MiB at the end",
        duration.as_secs_f64(),
        done as f64 / duration.as_secs_f64(),
        peak(early),
        peak(late),
        samples.last().map_or(0.0, |s| s.1 as f64 / 1024.0)
    );
    report(&line);
    if let Ok(path) = std::env::var("LS_ML_SOAK_REPORT") {
        let rss: Vec<String> = samples
            .iter()
            .map(|(t, kib)| format!("{t:.1} {:.1}", *kib as f64 / 1024.0))
            .collect();
        std::fs::write(path, format!("{line}\n\nseconds RSS-MiB\n{}\n", rss.join("\n"))).expect("write report");
    }
    assert_eq!(failed, 0, "no request fails");
    assert!(done > 20, "the clients kept asking ({done})");
    assert!(swaps >= 2, "the model was swapped ({swaps})");
    assert!(
        peak(late) <= peak(early) * 1.2 + 24.0,
        "memory keeps growing: {:.1} MiB -> {:.1} MiB",
        peak(early),
        peak(late)
    );
}
