//! Typed tensors with real ONNX Runtime: each element type the plugin ABI carries reaches a
//! model and comes back. (Its own test binary: ONNX Runtime allows one environment per
//! process, and the other runtime tests hold theirs.)

use crate::common::*;
use plugin_api::{ElementType, Tensor};

/// A model with f16, i64 and u8 inputs and f16, i64 and f32 outputs
/// (`scripts/make-fault-models.py`): each element type reaches the model and comes back.
#[test]
fn typed_tensors_reach_the_model_and_come_back() {
    let runtime = runtime(&[]);
    let model = fixture_model("typed-io.onnx");
    let loaded = runtime
        .load(&model, &std::fs::read(&model).expect("model"))
        .expect("model loads");
    let types = |list: &[plugin_api::TensorInfo]| list.iter().map(|t| t.element_type).collect::<Vec<_>>();
    assert_eq!(
        types(&loaded.info.inputs),
        [ElementType::F16, ElementType::I64, ElementType::U8]
    );
    assert_eq!(
        types(&loaded.info.outputs),
        [ElementType::F16, ElementType::I64, ElementType::F32]
    );
    // 1.0, 2.0, -0.5 and 3.0 as IEEE 754 half-precision bits.
    let half = [0x3C00u16, 0x4000, 0xB800, 0x4200];
    let inputs = vec![
        Tensor::from_values("half", &[1, 4], &half).expect("f16"),
        Tensor::from_values("ids", &[1, 4], &[1i64, 2, 3, -4]).expect("i64"),
        Tensor::from_values("bytes", &[1, 4], &[10u8, 20, 30, 255]).expect("u8"),
    ];
    let outputs = loaded.pool.run_blocking(&inputs).expect("inference");
    let output = |name: &str| outputs.iter().find(|t| t.name.as_str() == name).expect(name);
    assert_eq!(output("doubled").element_type, ElementType::F16);
    assert_eq!(
        output("doubled").values::<u16>().expect("f16"),
        &[0x4000, 0x4400, 0xBC00, 0x4600],
        "2, 4, -1, 6"
    );
    assert_eq!(output("squares").values::<i64>().expect("i64"), &[1, 4, 9, 16]);
    assert_eq!(
        output("total").values::<f32>().expect("f32"),
        &[12.0, 24.0, 32.5, 254.0]
    );
    report("runtime: f16, i64 and u8 inputs, f16, i64 and f32 outputs through a real model");
}
