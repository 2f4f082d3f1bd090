//! The runtime's CPU layout with real ONNX Runtime: a model's sessions read one shared copy of
//! its weights, a solo session serves lone inferences, and every session computes the same
//! outputs whichever one a call lands on.

use crate::common::*;
use ls_ml_backend::testing::{OwnedTensor, Provider};
use plugin_api::Tensor;

/// A deterministic, image-like input: a gradient with some texture.
fn input() -> Vec<Tensor> {
    let data: Vec<f32> = (0..3 * 320 * 320usize)
        .map(|i| ((i * 7919) % 251) as f32 / 255.0 * 0.3 + (i % 320) as f32 / 320.0 * 0.7)
        .collect();
    vec![Tensor::from_values("images", &[1, 3, 320, 320], &data).expect("tensor")]
}

fn values(t: &OwnedTensor) -> &[f32] {
    t.values::<f32>().expect("f32 outputs")
}

fn max_difference(a: &[OwnedTensor], b: &[OwnedTensor]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.shape, y.shape);
            values(x).iter().zip(values(y)).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

#[test]
fn sessions_share_weights_and_agree_whichever_runs_the_call() {
    let runtime = runtime(&["--sessions", "2", "--intra-threads", "1", "--solo-threads", "2"]);
    let model = fixture_model("yolov8n-shapes-det-320.onnx");
    let bytes = std::fs::read(&model).expect("model");
    let loaded = runtime.load(&model, &bytes).expect("model loads");
    assert_eq!(loaded.pool.size(), 2, "two sessions run in parallel");
    if loaded.provider == Provider::Cpu {
        assert!(loaded.pool.has_solo(), "a solo session for lone inferences");
        assert!(
            loaded.pool.shares_weights(),
            "the sessions read one copy of the weights"
        );
    }
    let inputs = input();
    // Alone: the solo session (2 threads).
    let alone = loaded.pool.run_blocking(&inputs).expect("inference");
    assert!(
        alone.iter().any(|t| values(t).iter().any(|v| *v != 0.0)),
        "the model computed something"
    );
    // Three callers at once: the one-thread sessions take most calls.
    let worst = std::thread::scope(|scope| {
        let callers: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    (0..6)
                        .map(|_| max_difference(&alone, &loaded.pool.run_blocking(&inputs).expect("inference")))
                        .fold(0.0, f32::max)
                })
            })
            .collect();
        callers
            .into_iter()
            .map(|c| c.join().expect("caller"))
            .fold(0.0, f32::max)
    });
    report(&format!(
        "runtime layout: solo and parallel sessions agree to {worst:e} (max |difference| over all outputs)"
    ));
    assert!(worst <= 1e-3, "sessions disagree by {worst}");

    // The shared weights must stay put while other models come and go and memory is reused.
    for _ in 0..2 {
        let other = fixture_model("yolov8n-shapes-seg-320.onnx");
        drop(
            runtime
                .load(&other, &std::fs::read(&other).expect("model"))
                .expect("loads"),
        );
    }
    // Blocks of many sizes filled with a pattern, alive during the inference: any freed
    // memory the sessions still read would now hold it.
    let filler: Vec<Vec<u8>> = [1usize, 2, 4, 8, 12, 13, 16]
        .iter()
        .flat_map(|mib| (0..4).map(move |_| vec![0xA5u8; mib << 20]))
        .collect();
    let later = max_difference(&alone, &loaded.pool.run_blocking(&inputs).expect("inference"));
    drop(filler);
    assert!(later <= 1e-3, "outputs changed after other models loaded: {later}");
}

#[test]
fn the_solo_session_can_be_turned_off() {
    let runtime = runtime(&["--sessions", "2", "--intra-threads", "1", "--solo-threads", "0"]);
    assert_eq!(runtime.solo_threads(), 0);
    let model = fixture_model("yolov8n-shapes-det-320.onnx");
    let loaded = runtime
        .load(&model, &std::fs::read(&model).expect("model"))
        .expect("model loads");
    assert!(!loaded.pool.has_solo());
}
