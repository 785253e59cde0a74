"""pipeline.graphinfo: the parameter count and operator histogram of a float model."""

from __future__ import annotations

import numpy as np

from quantzoo.cache import Cache
from quantzoo.pipeline.graphinfo import cached_graph_info, graph_info


def _model(path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    const = helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.ones((3, 4), np.float32)))
    then_g = helper.make_graph([helper.make_node("Constant", [], ["t"], value=numpy_helper.from_array(
        np.ones(5, np.float32)))], "then", [], [helper.make_tensor_value_info("t", TensorProto.FLOAT, [5])])
    else_g = helper.make_graph([helper.make_node("Constant", [], ["e"], value=numpy_helper.from_array(
        np.ones(5, np.float32)))], "else", [], [helper.make_tensor_value_info("e", TensorProto.FLOAT, [5])])
    g = helper.make_graph(
        [const, helper.make_node("MatMul", ["x", "w"], ["y"]),
         helper.make_node("If", ["c"], ["z"], then_branch=then_g, else_branch=else_g)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2]),
         helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 7]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, [5])],
        [numpy_helper.from_array(np.ones((2, 7), np.float32), "w"),
         numpy_helper.from_array(np.array([1, 2], np.int64), "shape")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def test_graph_info_counts_weights_in_initializers_constants_and_subgraphs(tmp_path):
    info = graph_info(_model(tmp_path / "m.onnx"))
    assert info["parameters"] == 2 * 7 + 3 * 4 + 5 + 5  # the int64 shape tensor is not a parameter
    assert info["ops"] == {"Constant": 3, "If": 1, "MatMul": 1} and info["opset"] == 13


def test_graph_info_is_read_back_from_the_cache_by_the_float_sha256(tmp_path):
    cache = Cache(tmp_path / "cache")
    path = _model(tmp_path / "m.onnx")
    first = cached_graph_info(cache, path, "a" * 64)
    path.unlink()  # a second call must not need the file
    assert cached_graph_info(cache, path, "a" * 64) == first
