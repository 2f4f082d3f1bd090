#!/usr/bin/env python3
"""Writes the tiny, deliberately unusable ONNX models in tests/fixtures/models/faults/, and
the typed-tensor model tests/fixtures/models/typed-io.onnx.

Each fault model is a valid ONNX file that no adapter can serve, for the reliability tests:
  identity-image.onnx   an image in, the same image out: not a model any plugin knows
  rank3-input.onnx      says task=detect, but its input is [1, 320, 320] (no channel axis)
  mismatched-head.onnx  says task=detect with 3 classes, but its head has 10 rows (needs 7)

typed-io.onnx takes f16, i64 and u8 inputs and answers in f16, i64 and f32, so the runtime's
typed tensors are tested on a real model (host/tests/integration/runtime_layout.rs):
  half [1, 4] f16, ids [1, 4] i64, bytes [1, 4] u8
  doubled = half + half (f16), squares = ids * ids (i64),
  total = f32(half) + f32(ids) + f32(bytes) (f32)

Needs onnx and numpy: the fixtures environment (`scripts/setup-venv.sh fixtures .venv-fixtures`). Run from the repository root.
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = "tests/fixtures/models/faults"
NAMES = "{0: 'circle', 1: 'square', 2: 'triangle'}"


def save(name, nodes, inputs, outputs, initializers=(), metadata=None):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="ls-ml-backend tests")
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(OUT, name))


def tensor(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


os.makedirs(OUT, exist_ok=True)
save(
    "identity-image.onnx",
    [helper.make_node("Identity", ["images"], ["output0"])],
    [tensor("images", [1, 3, 32, 32])],
    [tensor("output0", [1, 3, 32, 32])],
)
save(
    "rank3-input.onnx",
    [helper.make_node("Identity", ["images"], ["output0"])],
    [tensor("images", [1, 320, 320])],
    [tensor("output0", [1, 320, 320])],
    metadata={"task": "detect", "names": NAMES, "imgsz": "[320, 320]"},
)
shape = numpy_helper.from_array(np.array([1, -1], dtype=np.int64), "flat")
head = numpy_helper.from_array(np.array([1, 10, 84], dtype=np.int64), "head")
starts = numpy_helper.from_array(np.array([0], dtype=np.int64), "starts")
ends = numpy_helper.from_array(np.array([840], dtype=np.int64), "ends")
axes = numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")
save(
    "mismatched-head.onnx",
    [
        helper.make_node("Reshape", ["images", "flat"], ["flat_images"]),
        helper.make_node("Slice", ["flat_images", "starts", "ends", "axes"], ["some"]),
        helper.make_node("Reshape", ["some", "head"], ["output0"]),
    ],
    [tensor("images", [1, 3, 64, 64])],
    [tensor("output0", [1, 10, 84])],
    [shape, head, starts, ends, axes],
    metadata={"task": "detect", "names": NAMES, "imgsz": "[64, 64]"},
)

def typed(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


graph = helper.make_graph(
    [
        helper.make_node("Add", ["half", "half"], ["doubled"]),
        helper.make_node("Mul", ["ids", "ids"], ["squares"]),
        helper.make_node("Cast", ["half"], ["half_f32"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["ids"], ["ids_f32"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["bytes"], ["bytes_f32"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["half_f32", "ids_f32"], ["partial"]),
        helper.make_node("Add", ["partial", "bytes_f32"], ["total"]),
    ],
    "typed-io",
    [typed("half", TensorProto.FLOAT16, [1, 4]), typed("ids", TensorProto.INT64, [1, 4]), typed("bytes", TensorProto.UINT8, [1, 4])],
    [typed("doubled", TensorProto.FLOAT16, [1, 4]), typed("squares", TensorProto.INT64, [1, 4]), typed("total", TensorProto.FLOAT, [1, 4])],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="ls-ml-backend tests")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, "tests/fixtures/models/typed-io.onnx")
print("wrote", sorted(os.listdir(OUT)), "and typed-io.onnx")
