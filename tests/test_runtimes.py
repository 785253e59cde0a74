"""runtimes: the Runtime records and the compatibility matrix of one model file."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantzoo import runtimes
from quantzoo.quantize import quantize_file
from quantzoo.runtimes import FLOAT_FAILS, RUNTIMES, Runtime, compatibility, max_abs_diff, runtime_identity

pytest.importorskip("openvino")
RNG = np.random.default_rng(11)


def _classifier(path, custom_op=False):
    w = (RNG.standard_normal((64, 64)) * 0.3).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"])]
    nodes.append(helper.make_node("Relu", ["h"], ["y"]) if not custom_op else
                 helper.make_node("Mystery", ["h"], ["y"], domain="com.example"))
    g = helper.make_graph(nodes, "c", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 64])],
                          [numpy_helper.from_array(w, "w")])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid("com.example", 1)] if custom_op else [])
    onnx.save(helper.make_model(g, opset_imports=opsets), path)
    return path


def _feeds(n=4):
    return [{"x": RNG.standard_normal((1, 64)).astype(np.float32)} for _ in range(n)]


def test_there_is_one_record_per_runtime_and_each_knows_its_version():
    assert list(RUNTIMES) == ["onnxruntime", "openvino", "onnx-reference"]
    for rt in RUNTIMES.values():
        assert isinstance(rt, Runtime) and rt.available() and rt.version()
    assert RUNTIMES["onnx-reference"].samples == 1
    assert set(runtime_identity()) == set(RUNTIMES)


def test_every_runtime_runs_a_float_model_and_its_artifact_close_to_onnxruntime(tmp_path):
    src = _classifier(tmp_path / "f.onnx")
    dst = tmp_path / "q.onnx"
    quantize_file(src, dst, mode="kmeans_lut", nbits=4)
    feeds = _feeds()
    fm = compatibility(src, feeds, parameters=4096)
    qm = compatibility(dst, feeds, parameters=4096, float_matrix=fm)
    for matrix in (fm, qm):
        assert set(matrix) == set(RUNTIMES)
        assert matrix["onnxruntime"] == {"runs": True, "max_abs_diff": None, "error": None}
        for name in ("openvino", "onnx-reference"):
            assert matrix[name]["runs"] and matrix[name]["error"] is None
            assert 0 <= matrix[name]["max_abs_diff"] < 1e-4


class Mystery:
    """The implementation of com.example.Mystery: a ReLU in numpy."""

    def __init__(self):
        pass

    def evaluate(self, h):
        return np.maximum(h, 0)

    def output_shapes(self, shape):
        return [shape]


def test_a_model_with_a_custom_op_runs_in_onnxruntime_with_its_class_and_nowhere_else(tmp_path):
    pytest.importorskip("onnxruntime_extensions")
    src = _classifier(tmp_path / "f.onnx", custom_op=True)
    fm = compatibility(src, _feeds(), custom_ops={"com.example.Mystery": Mystery})
    assert fm["onnxruntime"] == {"runs": True, "max_abs_diff": None, "error": None}
    for name, label in (("openvino", "OpenVINO"), ("onnx-reference", "ONNX reference")):
        assert fm[name] == {"runs": False, "max_abs_diff": None,
                            "error": f"custom op com.example.Mystery has no implementation in {label}"}
    dst = tmp_path / "q.onnx"
    quantize_file(src, dst, mode="linear", nbits=8)
    qm = compatibility(dst, _feeds(), float_matrix=fm, custom_ops={"com.example.Mystery": Mystery})
    assert qm == fm  # the artifact keeps the custom node: the same reason, not "float model does not run"


def test_a_model_a_runtime_cannot_load_is_recorded_with_its_error_and_holds_back_its_artifacts(tmp_path):
    src = _classifier(tmp_path / "f.onnx", custom_op=True)  # no implementation given for com.example.Mystery
    fm = compatibility(src, _feeds())
    assert not fm["onnxruntime"]["runs"] and "Mystery" in fm["onnxruntime"]["error"]
    assert fm["openvino"]["error"] == "custom op com.example.Mystery has no implementation in OpenVINO"
    plain = _classifier(tmp_path / "p.onnx")
    artifact = compatibility(plain, _feeds(), float_matrix={"openvino": {"runs": False, "error": "RuntimeError: x"}})
    assert artifact["openvino"] == {"runs": False, "max_abs_diff": None, "error": FLOAT_FAILS}


def test_a_runtime_that_raises_is_recorded_as_not_running_with_one_short_line(tmp_path, monkeypatch):
    def broken(path, feeds, custom_ops):
        raise RuntimeError("Exception from src/inference/src/cpp/core.cpp:132:\n" + "No conversion rule found " * 20)

    monkeypatch.setitem(RUNTIMES, "openvino", dataclasses.replace(RUNTIMES["openvino"], run=broken))
    row = compatibility(_classifier(tmp_path / "f.onnx"), _feeds())["openvino"]
    assert not row["runs"] and row["max_abs_diff"] is None
    assert row["error"].startswith("RuntimeError: No conversion rule found No") and len(row["error"]) == 200


def test_outputs_that_differ_in_shape_are_an_error_not_a_number(tmp_path, monkeypatch):
    def wrong(path, feeds, custom_ops):
        return [[np.zeros((1, 63), np.float32)] for _ in feeds]

    monkeypatch.setitem(RUNTIMES, "openvino", dataclasses.replace(RUNTIMES["openvino"], run=wrong))
    row = compatibility(_classifier(tmp_path / "f.onnx"), _feeds())["openvino"]
    assert row["runs"] and row["max_abs_diff"] is None
    assert row["error"] == "output 0 has shape [1, 63], onnxruntime's [1, 64]"


def test_a_large_model_skips_the_reference_evaluator_with_the_reason(tmp_path, monkeypatch):
    calls = []
    slow = RUNTIMES["onnx-reference"]
    monkeypatch.setitem(RUNTIMES, "onnx-reference", dataclasses.replace(slow, run=lambda p, f, c: calls.append(p)))
    src = _classifier(tmp_path / "f.onnx")
    fm = compatibility(src, _feeds(), parameters=6_000_000)
    assert fm["onnx-reference"] == {"runs": False, "max_abs_diff": None,
                                    "error": "skipped: 6.0M parameters, over the 1.0M this runtime is run on"}
    assert compatibility(src, _feeds(), parameters=6_000_000, float_matrix=fm)["onnx-reference"] == fm["onnx-reference"]
    assert calls == [] and fm["openvino"]["runs"]


def test_an_artifact_is_not_run_where_the_float_model_was_too_slow(tmp_path):
    src = _classifier(tmp_path / "f.onnx")
    fm = compatibility(src, _feeds())
    fm["onnx-reference"]["seconds"] = 900.0
    row = compatibility(src, _feeds(), float_matrix=fm)["onnx-reference"]
    assert row == {"runs": False, "max_abs_diff": None, "error": "skipped: took 900 s on the float model, over 30 s"}


def test_each_runtime_runs_only_its_own_number_of_samples(tmp_path, monkeypatch):
    seen = {}
    for name in ("openvino", "onnx-reference"):
        rt = RUNTIMES[name]
        monkeypatch.setitem(RUNTIMES, name, dataclasses.replace(
            rt, run=lambda p, f, c, rt=rt: seen.setdefault(rt.name, len(f)) and rt.run(p, f, c)))
    compatibility(_classifier(tmp_path / "f.onnx"), _feeds(6))
    assert seen == {"openvino": 2, "onnx-reference": 1}


def test_max_abs_diff_compares_numbers_and_treats_matching_nans_as_equal():
    nan = float("nan")
    assert max_abs_diff([[np.array([1.0, nan])]], [[np.array([1.5, nan])]]) == 0.5
    assert max_abs_diff([[np.array([3], np.int64)]], [[np.array([3], np.int64)]]) == 0.0
    with pytest.raises(ValueError, match="NaN or infinity"):
        max_abs_diff([[np.array([nan])]], [[np.array([1.0])]])
    with pytest.raises(ValueError, match="non-numeric"):
        max_abs_diff([[np.array(["a"])]], [[np.array(["b"])]])
    with pytest.raises(ValueError, match="gives 2 outputs, onnxruntime 1"):
        max_abs_diff([[np.zeros(1), np.zeros(1)]], [[np.zeros(1)]])


def test_an_uninstalled_runtime_is_left_out_of_the_matrix_and_its_identity(tmp_path, monkeypatch):
    monkeypatch.setitem(RUNTIMES, "openvino", dataclasses.replace(RUNTIMES["openvino"], version=lambda: None))
    assert "openvino" not in compatibility(_classifier(tmp_path / "f.onnx"), _feeds())
    assert "openvino" not in runtime_identity()
    assert runtimes.short_error(ValueError("")) == "ValueError"
