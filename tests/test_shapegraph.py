"""The graph side of `quantzoo shapes`: which dims vary, the targets it rewrites, the nodes that block."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantzoo.errors import QuantzooError
from quantzoo.shapegraph import Blocked, infer, reshape_target, scan, skeleton
from quantzoo.shapes import make_flexible


def _model(nodes, inputs, output, inits=(), opset=17) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                          [helper.make_tensor_value_info(output[0], TensorProto.FLOAT, output[1])],
                          [numpy_helper.from_array(np.asarray(v), n) for n, v in inits])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _i64(*v: int) -> np.ndarray:
    return np.array(v, dtype=np.int64)


@pytest.mark.parametrize("shape, target, flex, allowzero, want", [
    ([1, 256], [256], [True, False], False, [-1]),  # batch folded into one dim
    ([1, 4, 64], [1, 4, 8, 8], [True, False, False], False, [0, 4, 8, 8]),  # unflatten keeps the batch in place
    ([1, 4, 8, 8], [-1, 4, 64], [False, False, True, True], False, [1, 4, -1]),  # -1 moves to the varying group
    ([2, 3], [3, 2], [False, False], False, [3, 2]),  # nothing varies: nothing changes
    ([1, 4, 8, 8], [1, 4, 64], [True, False, False, False], True, [-1, 4, 64]),  # allowzero: no 0 copies
])
def test_reshape_targets_follow_the_varying_dims(shape, target, flex, allowzero, want):
    assert reshape_target(shape, target, flex, allowzero) == want


@pytest.mark.parametrize("shape, target, flex, why", [
    ([8, 64], [2, 4, 64], [True, False], "splits a varying dimension"),
    ([1, 4, 8, 8], [4, 64], [True, False, True, True], "more than one varying dimension"),
])
def test_a_target_it_cannot_regroup_safely_is_blocked(shape, target, flex, why):
    with pytest.raises(Blocked, match=why):
        reshape_target(shape, target, flex, False)


def test_a_constant_target_shared_by_two_reshapes_gets_one_new_target_each():
    m = _model([helper.make_node("Reshape", ["x", "t"], ["a"], name="r1"),
                helper.make_node("Relu", ["a"], ["b"]),
                helper.make_node("Reshape", ["b", "t"], ["y"], name="r2")],
               [("x", [1, 12])], ("y", [1, 12]), [("t", _i64(1, 12))])
    flex, report = make_flexible(m, {"x": "1..4,12"})
    assert [r.split(":")[0] for r in report.rewrites] == ["node 'r1' (Reshape)", "node 'r2' (Reshape)"]
    assert sorted(t.name for t in flex.graph.initializer) == ["t_flexible", "t_flexible1"]
    assert [numpy_helper.to_array(t).tolist() for t in flex.graph.initializer] == [[0, 12], [0, 12]]


def test_an_expand_target_that_repeats_the_original_size_broadcasts_instead():
    m = _model([helper.make_node("Expand", ["x", "s"], ["y"], name="e")], [("x", [2, 1])], ("y", [2, 5]),
               [("s", _i64(2, 5))])
    flex, report = make_flexible(m, {"x": "1..8,1"})
    assert report.rewrites == ["node 'e' (Expand): [2, 5] -> [1, 5]"]


def test_a_target_computed_from_shape_is_left_alone():
    m = _model([helper.make_node("Shape", ["x"], ["s"], end=1),
                helper.make_node("Concat", ["s", "m1"], ["t"], axis=0),
                helper.make_node("Reshape", ["x", "t"], ["y"])],
               [("x", [1, 3, 4])], ("y", [1, 12]), [("m1", _i64(-1))])
    flex, report = make_flexible(m, {"x": "1..4,3,4"})
    assert report.rewrites == [] and [c["x"][0] for c in report.checked] == [1, 4]


@pytest.mark.parametrize("nodes, inits, why", [
    ([helper.make_node("Add", ["x", "pos"], ["y"], name="add_pos")], [("pos", np.ones((1, 6, 8), np.float32))],
     "node 'add_pos' \\(Add\\): its operand 'pos' has a fixed size 6 where 'x' varies"),
    ([helper.make_node("Concat", ["cls", "x"], ["y"], name="cat", axis=1)], [("cls", np.ones((1, 1, 8), np.float32))],
     "node 'cat' \\(Concat\\): its operand 'cls' has a fixed size 1"),
    ([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [("w", np.ones((8, 8), np.float32))],
     "node 'mm' \\(MatMul\\): its operand 'w' takes a fixed 8 features"),
])
def test_a_constant_that_fixes_a_varying_size_names_its_node(nodes, inits, why):
    spec = "1,6,4..8" if "mm" in why else "1,2..6,8" if "pos" in why else "1..4,6,8"
    m = _model(nodes, [("x", [1, 6, 8])], ("y", None), inits)
    with pytest.raises(QuantzooError, match=why):
        make_flexible(m, {"x": spec})


def test_an_op_inference_does_not_know_blocks_nothing():
    m = _model([helper.make_node("Mystery", ["x"], ["h"], domain="ai.x"),
                helper.make_node("MatMul", ["h", "w"], ["y"])],
               [("x", [1, 8])], ("y", [1, 8]), [("w", np.ones((8, 8), np.float32))])
    m.opset_import.append(helper.make_opsetid("ai.x", 1))
    sk = skeleton(m)
    assert scan(m.graph, infer(sk, {"x": [1, 8]}), infer(sk, {"x": [4, 8]})) is None


def test_the_skeleton_keeps_large_weights_as_typed_inputs_only():
    m = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [("x", [1, 64])], ("y", [1, 64]),
               [("w", np.ones((64, 64), np.float32))])
    sk = skeleton(m)
    assert not sk.graph.initializer and [i.name for i in sk.graph.input] == ["x", "w"]
    assert infer(sk, {"x": [3, 64]})["y"] == [3, 64]


def _run(model, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_a_slice_that_ends_at_the_old_size_runs_to_the_end_instead(dtype):
    """x[:, :, 1:W] + x[:, :, :W-1] with W baked in as a constant end: a shifted difference."""
    t = lambda *v: np.array(v, dtype=dtype)  # noqa: E731
    m = _model([helper.make_node("Slice", ["x", "s1", "e1", "ax"], ["a"], name="tail"),
                helper.make_node("Slice", ["x", "s0", "e0", "ax"], ["b"], name="head"),
                helper.make_node("Sub", ["a", "b"], ["y"])],
               [("x", [1, 2, 8])], ("y", [1, 2, 7]),
               [("s1", t(1)), ("e1", t(8)), ("s0", t(0)), ("e0", t(-1)), ("ax", t(2))])
    flex, report = make_flexible(m, {"x": "1,2,4..16"})
    big = np.iinfo(dtype).max
    assert report.rewrites == [f"node 'tail' (Slice): ends [8] -> [{big}]"]
    x = np.random.default_rng(0).standard_normal((1, 2, 13)).astype(np.float32)
    np.testing.assert_array_equal(_run(flex, x), x[:, :, 1:] - x[:, :, :-1])


def test_a_resize_to_constant_sizes_that_double_a_map_scales_it_instead():
    """An upsampling baked in as sizes [1, 2, 8, 8] added to a 2× nearest copy made by Upsample's scales."""
    m = _model([helper.make_node("Resize", ["x", "", "", "sz"], ["u"], name="up", mode="nearest"),
                helper.make_node("Resize", ["x", "", "sc"], ["v"], mode="nearest"),
                helper.make_node("Add", ["u", "v"], ["y"])],
               [("x", [1, 2, 4, 4])], ("y", [1, 2, 8, 8]),
               [("sz", _i64(1, 2, 8, 8)), ("sc", np.array([1, 1, 2, 2], np.float32))])
    flex, report = make_flexible(m, {"x": "1,2,4..12,4..12"})
    assert report.rewrites == ["node 'up' (Resize): sizes [1, 2, 8, 8] -> scales [1.0, 1.0, 2.0, 2.0]"]
    assert list(flex.graph.node[0].input) == ["x", "", "up_input2_flexible"]
    x = np.random.default_rng(1).standard_normal((1, 2, 6, 10)).astype(np.float32)
    np.testing.assert_array_equal(_run(flex, x), 2 * x.repeat(2, axis=2).repeat(2, axis=3))


def test_a_resize_to_a_fixed_size_on_purpose_is_kept():
    """Resizing every input to 4×4 (its own size at the original shape) is the model's intent."""
    m = _model([helper.make_node("Resize", ["x", "", "", "sz"], ["y"], mode="linear")],
               [("x", [1, 1, 4, 4])], ("y", [1, 1, 4, 4]), [("sz", _i64(1, 1, 4, 4))])
    flex, report = make_flexible(m, {"x": "1,1,4..8,4..8"})
    assert report.rewrites == [] and _run(flex, np.ones((1, 1, 8, 8), np.float32)).shape == (1, 1, 4, 4)
