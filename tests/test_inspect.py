"""inspect: `quantzoo inspect MODEL.onnx` on small models built here."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantzoo.cli import main
from quantzoo.errors import QuantzooError
from quantzoo.inspect import graph_summary, inspect_model


def _w(shape, name, dtype=np.float32):
    return numpy_helper.from_array(np.arange(int(np.prod(shape))).reshape(shape).astype(dtype), name)


def _save(graph, path, opsets=(("", 13),), **kw):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], **kw)
    onnx.save(m, str(path))
    return path


def conv_net(path):
    """Conv (32×16×3×3, selected) + bias, a small Conv (4×32×1×1), BatchNormalization, an int64 Reshape shape."""
    g = helper.make_graph(
        [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
         helper.make_node("BatchNormalization", ["c1", "scale", "shift", "mean", "var"], ["n1"]),
         helper.make_node("Conv", ["n1", "w2"], ["c2"]),
         helper.make_node("Reshape", ["c2", "shape"], ["y"])], "convnet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 256])],
        [_w((32, 16, 3, 3), "w1"), _w((32,), "b1"), _w((32,), "scale"), _w((32,), "shift"), _w((32,), "mean"),
         _w((32,), "var"), _w((4, 32, 1, 1), "w2"), numpy_helper.from_array(np.array([-1, 256], np.int64), "shape")])
    return _save(g, path)


def nested_net(path):
    """A Constant weight in the main graph; an If whose then-branch holds a Constant weight and a
    nested If whose branches hold one more each."""
    def branch(name, out, inner=None):
        nodes = [helper.make_node("Constant", [], [f"{name}_w"], value=_w((64, 64), f"{name}_w")),
                 helper.make_node("MatMul", ["h", f"{name}_w"], [out])]
        if inner is not None:
            nodes = [inner] + nodes
        return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 64])])

    inner = helper.make_node("If", ["c"], ["unused"], name="inner",
                             then_branch=branch("deep_then", "dt"), else_branch=branch("deep_else", "de"))
    g = helper.make_graph(
        [helper.make_node("Constant", [], ["w"], value=_w((64, 64), "w")),
         helper.make_node("MatMul", ["x", "w"], ["h"]),
         helper.make_node("If", ["c"], ["y"], name="outer",
                          then_branch=branch("then", "t", inner), else_branch=branch("else", "e"))], "nested",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64]),
         helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])])
    return _save(g, path)


def test_a_conv_net_reports_io_ops_initializers_and_what_quantize_takes(tmp_path):
    r = inspect_model(conv_net(tmp_path / "conv.onnx"))
    assert r["ir_version"] >= 7 and r["opsets"] == {"ai.onnx": 13}
    assert r["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["N", 16, 8, 8]}]
    assert r["outputs"] == [{"name": "y", "dtype": "float32", "shape": ["N", 256]}]
    assert r["ops"] == {"BatchNormalization": 1, "Conv": 2, "Reshape": 1} and r["nodes"] == 4
    assert r["parameters"] == 32 * 16 * 9 + 5 * 32 + 4 * 32  # the int64 shape is not a parameter
    [loc] = r["locations"]
    assert (loc["holder"], loc["scope"], loc["file"], loc["tensors"]) == ("initializer", "", None, 8)
    assert loc["dtypes"] == {"float32": 7, "int64": 1} and loc["bytes"] == 4 * r["parameters"] + 16
    assert [(s["name"], s["op"], s["channel_axis"], s["elements"], s["bytes"]) for s in r["selected"]] == [
        ("w1", "Conv", 0, 4608, 4 * 4608)]
    reasons = {s["name"]: s["reason"] for s in r["skipped"]}
    assert reasons["w2"] == "128 elements < min_elements 2048"
    assert reasons["b1"].startswith("not a weight of") and "Conv:2" in reasons["b1"]
    assert reasons["shape"].startswith("int64")
    assert r["custom_nodes"] == [] and r["external_files"] == [] and r["subgraphs"] == []


def test_selection_options_are_quantizes_own(tmp_path):
    path = conv_net(tmp_path / "conv.onnx")
    r = inspect_model(path, min_elements=100, exclude=["w1"])
    assert [s["name"] for s in r["selected"]] == ["w2"]
    assert {s["name"]: s["reason"] for s in r["skipped"]}["w1"] == "excluded by pattern 'w1'"
    assert inspect_model(path, op_types=["MatMul"])["selected"] == []


def test_constant_nodes_and_nested_if_bodies_are_found_with_their_paths(tmp_path):
    r = inspect_model(nested_net(tmp_path / "nested.onnx"))
    where = {(loc["holder"], loc["scope"]): loc["tensors"] for loc in r["locations"]}
    assert where == {("Constant", ""): 1, ("Constant", "outer/then_branch"): 1,
                     ("Constant", "outer/then_branch/inner/then_branch"): 1,
                     ("Constant", "outer/then_branch/inner/else_branch"): 1, ("Constant", "outer/else_branch"): 1}
    assert sorted(s["scope"] for s in r["subgraphs"]) == sorted([
        "outer/then_branch", "outer/then_branch/inner/then_branch", "outer/then_branch/inner/else_branch",
        "outer/else_branch"])
    assert r["ops"] == {"Constant": 5, "If": 2, "MatMul": 5} and r["parameters"] == 5 * 4096
    assert sorted((s["name"], s["scope"], s["holder"]) for s in r["selected"]) == sorted([
        ("w", "", "Constant"), ("then_w", "outer/then_branch", "Constant"),
        ("deep_then_w", "outer/then_branch/inner/then_branch", "Constant"),
        ("deep_else_w", "outer/then_branch/inner/else_branch", "Constant"),
        ("else_w", "outer/else_branch", "Constant")])


def test_external_data_is_named_and_sized_without_being_read(tmp_path):
    g = helper.make_graph([helper.make_node("MatMul", ["x", "big"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])],
                          "ext", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 128])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
                          [_w((128, 64), "big"), _w((64,), "b")])
    path = tmp_path / "ext.onnx"
    onnx.save_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(path),
                    save_as_external_data=True, all_tensors_to_one_file=True, location="ext.bin", size_threshold=1024)
    (tmp_path / "ext.bin").unlink()  # the report must come from the model's records alone
    r = inspect_model(path)
    assert r["external_files"] == [{"file": "ext.bin", "tensors": 1, "bytes": 4 * 128 * 64, "exists": False}]
    locs = {(loc["holder"], loc["file"]): (loc["tensors"], loc["bytes"]) for loc in r["locations"]}
    assert locs == {("initializer", "ext.bin"): (1, 4 * 128 * 64), ("initializer", None): (1, 4 * 64)}
    assert [(s["name"], s["file"]) for s in r["selected"]] == [("big", "ext.bin")]


def test_custom_domain_nodes_show_their_attributes(tmp_path):
    node = helper.make_node("Warp", ["x"], ["y"], name="warp0", domain="com.example", alpha=0.5, mode="fast",
                            sizes=[2, 3])
    g = helper.make_graph([node], "custom", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    r = inspect_model(_save(g, tmp_path / "custom.onnx", opsets=(("", 13), ("com.example", 1))))
    assert r["opsets"] == {"ai.onnx": 13, "com.example": 1} and r["ops"] == {"com.example.Warp": 1}
    assert r["custom_nodes"] == [{"domain": "com.example", "op_type": "Warp", "name": "warp0", "scope": "",
                                  "local_function": False,
                                  "attributes": {"alpha": 0.5, "mode": "fast", "sizes": [2, 3]}}]
    assert r["inputs"][0]["shape"] == [None, 3] and r["outputs"][0]["shape"] is None
    assert graph_summary(r)["custom_ops"] == [{"domain": "com.example", "op_type": "Warp", "count": 1}]


def test_initializers_listed_as_inputs_are_weights_as_quantize_sees_them(tmp_path):
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "old",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64]),
                           helper.make_tensor_value_info("w", TensorProto.FLOAT, [64, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [_w((64, 64), "w")])
    r = inspect_model(_save(g, tmp_path / "old.onnx"))
    assert [v["name"] for v in r["inputs"]] == ["x"] and r["initializer_inputs"] == ["w"]
    assert [(s["name"], s["op"]) for s in r["selected"]] == [("w", "MatMul")] and r["skipped"] == []


def test_the_summary_groups_skip_reasons(tmp_path):
    s = graph_summary(inspect_model(conv_net(tmp_path / "conv.onnx")))
    assert s["selected"] == {"tensors": 1, "elements": 4608, "bytes": 4 * 4608}
    reasons = {g["reason"]: g["tensors"] for g in s["skipped"]["reasons"]}
    assert reasons["fewer than 2048 elements"] == 1
    assert [n for r, n in reasons.items() if r.startswith("int64: only float32")] == [1]
    assert sum(reasons.values()) == s["skipped"]["tensors"] == 7
    assert "tensors" not in s and "selected" in s and s["inputs"][0]["name"] == "x"


def test_json_output_is_the_report_with_sorted_keys(tmp_path, capsys):
    path = conv_net(tmp_path / "conv.onnx")
    assert main(["inspect", str(path), "--json"]) == 0
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert doc == json.loads(json.dumps(inspect_model(path)))
    assert out == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_human_output_has_the_tables(tmp_path, capsys):
    assert main(["inspect", str(nested_net(tmp_path / "nested.onnx"))]) == 0
    out = capsys.readouterr().out
    for phrase in ("IR version", "ai.onnx 13", "Inputs and outputs", "Where the weights live",
                   "Constant nodes in outer/then_branch/inner/then_branch", "quantize would compress 5 tensors",
                   "and leave 0 tensors (0 elements, 0 B) alone", "Constant nodes in outer/else_branch"):
        assert phrase in out, phrase


@pytest.mark.parametrize("content, message", [
    (None, "no such file"), (b"hello, this is not a model at all\n", "is not an ONNX model"),
    (b"", "is not an ONNX model")])
def test_a_missing_or_non_onnx_file_is_a_clear_error(tmp_path, capsys, content, message):
    path = tmp_path / "m.onnx"
    if content is not None:
        path.write_bytes(content)
    assert main(["inspect", str(path)]) == 1
    assert message in capsys.readouterr().err
    with pytest.raises(QuantzooError, match=message):
        inspect_model(path)


def test_usage_errors_exit_2(tmp_path, capsys):
    for argv in (["inspect"], ["inspect", "m.onnx", "--bogus"], ["inspect", "m.onnx", "--min-elements", "x"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
    capsys.readouterr()
