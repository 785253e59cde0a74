"""legacy: old opsets upgraded and checked, initializers listed as graph inputs treated as weights."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from quantize_models import RNG, matmul_model

from quantzoo.errors import QuantzooError
from quantzoo.quantize import legacy, quantize_file

W = (RNG.standard_normal((32, 16)) * 0.1).astype(np.float32)  # [out, in], as torch stores a Linear


def old_model() -> onnx.ModelProto:
    """Conv, pooling, then a MatMul through a Transpose of the stored weight, at opset 9 and IR 3
    (so every initializer is also a graph input)."""
    conv = (RNG.standard_normal((16, 4, 3, 3)) * 0.2).astype(np.float32)
    vi = helper.make_tensor_value_info
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "conv.w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
         helper.make_node("GlobalAveragePool", ["r"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
         helper.make_node("Unsqueeze", ["f"], ["u"], axes=[0]), helper.make_node("Squeeze", ["u"], ["s"], axes=[0]),
         helper.make_node("Transpose", ["fc.w"], ["fc.w_t"], perm=[1, 0]),
         helper.make_node("MatMul", ["s", "fc.w_t"], ["y"])], "old",
        [vi("x", TensorProto.FLOAT, [1, 4, 8, 8]), vi("conv.w", TensorProto.FLOAT, [16, 4, 3, 3]),
         vi("fc.w", TensorProto.FLOAT, [32, 16])],
        [vi("y", TensorProto.FLOAT, [1, 32])],
        [numpy_helper.from_array(conv, "conv.w"), numpy_helper.from_array(W, "fc.w")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 3
    return model


def run(model, x):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


X = RNG.standard_normal((1, 4, 8, 8)).astype(np.float32)


def test_an_opset_9_model_with_initializers_as_inputs_quantizes_as_it_is(tmp_path):
    src = tmp_path / "old.onnx"
    onnx.save(old_model(), src)
    report = quantize_file(src, tmp_path / "q.onnx", mode="linear", nbits=8, min_elements=200)
    assert report.notes == [
        "2 initializers were also graph inputs (IR 3): removed from the inputs and treated as weights",
        "opset 9 upgraded to 13 (the decode needs 11); checked on a generated input: max abs difference 0"]
    assert report.to_dict()["notes"] == report.notes and "note: opset 9 upgraded to 13" in report.summary()
    # fc.w reaches its MatMul through a Transpose: its output channels are its rows (axis 0)
    assert {r.name: (r.op, r.channel_axis, r.block_axis) for r in report.tensors} == {
        "conv.w": ("Conv", 0, 1), "fc.w": ("MatMul", 0, 1)}
    q = onnx.load(tmp_path / "q.onnx")
    onnx.checker.check_model(q, full_check=True)
    assert q.opset_import[0].version == 13 and [v.name for v in q.graph.input] == ["x"]
    np.testing.assert_allclose(run(q, X), run(onnx.load(src), X), rtol=0.05, atol=0.02)


def test_a_current_model_is_left_as_it_is():
    m = matmul_model(W)
    before = m.SerializeToString()
    assert legacy.modernize(m, "m") == [] and m.SerializeToString() == before


def test_an_upgrade_that_changes_the_outputs_is_refused(monkeypatch):
    def broken(model, old, label):
        from onnx import version_converter

        up = version_converter.convert_version(model, legacy.UPGRADE_OPSET)
        up.graph.initializer[1].CopyFrom(numpy_helper.from_array(np.zeros((32, 16), np.float32), "fc.w"))
        return up

    monkeypatch.setattr(legacy, "_upgrade", broken)
    with pytest.raises(QuantzooError, match=r"opset 9 → 13 upgrade changes output 'y' by .* on a generated input"):
        legacy.modernize(old_model(), "old.onnx")


def test_a_model_the_converter_cannot_upgrade_is_a_clear_error(monkeypatch):
    from onnx import version_converter

    def fail(model, target):
        raise RuntimeError("No Adapter For Foo\nmore")

    monkeypatch.setattr(version_converter, "convert_version", fail)
    with pytest.raises(QuantzooError, match=r"old.onnx: opset 9 is older than 11.*could not upgrade it to 13: "
                                            r"No Adapter For Foo$"):
        legacy.modernize(old_model(), "old.onnx")


def test_generated_inputs_are_seeded_and_fill_free_dimensions_with_one():
    vi = helper.make_tensor_value_info
    g = helper.make_graph([], "g", [vi("x", TensorProto.FLOAT16, ["n", 3]), vi("ids", TensorProto.INT64, [2, "t"]),
                                    vi("flag", TensorProto.BOOL, [])], [])
    a, b = legacy.generated_inputs(helper.make_model(g)), legacy.generated_inputs(helper.make_model(g))
    assert {k: (v.shape, v.dtype.name) for k, v in a.items()} == {
        "x": ((1, 3), "float16"), "ids": ((2, 1), "int64"), "flag": ((), "bool")}
    assert np.array_equal(a["x"], b["x"]) and not a["ids"].any()
