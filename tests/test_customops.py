"""Custom ops: implementation classes registered with onnxruntime through onnxruntime-extensions."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from quantzoo.customops import (
    CustomOpError, check, custom_nodes, identity, load_classes, parse_cli, run, session_options, split_key,
)

pytest.importorskip("onnxruntime_extensions")


class Affine:
    """y = x * scale + shift, with the node's attributes."""

    def __init__(self, scale, shift):
        self.scale, self.shift = scale, shift

    def evaluate(self, x):
        return x * self.scale + self.shift

    def output_shapes(self, shape):
        return [shape]


class WrongShape(Affine):
    def evaluate(self, x):
        return x[:, :1]


def _model(op="Affine", domain="ai.test.customops", **attrs):
    attrs = attrs or {"scale": 2.0, "shift": 1}
    node = helper.make_node(op, ["x"], ["y"], domain=domain, **attrs)
    node.doc_string = "x times scale plus shift"
    g = helper.make_graph([helper.make_node("Relu", ["in"], ["x"]), node], "g",
                          [helper.make_tensor_value_info("in", TensorProto.FLOAT, [None, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(domain, 1)])


def test_custom_nodes_are_found_with_their_attributes_types_and_description():
    [n] = custom_nodes(_model())
    assert (n.key, n.attributes, n.input_types, n.description) == (
        "ai.test.customops.Affine", {"scale": 2.0, "shift": 1}, (TensorProto.FLOAT,), "x times scale plus shift")


def test_a_registered_class_runs_the_node_in_onnxruntime():
    m = _model()
    so = session_options({"ai.test.customops.Affine": Affine}, m)
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    x = np.array([[-1.0, 0.5, 2.0]], np.float32)
    assert sess.run(None, {"in": x})[0].tolist() == [[1.0, 2.0, 5.0]]


def test_an_op_without_a_class_is_named_before_any_session_is_made():
    with pytest.raises(CustomOpError, match=r"custom op ai\.test\.customops\.Missing with no implementation.*"
                                            r"--custom-op ai\.test\.customops\.Missing=module:Class"):
        session_options({"ai.test.customops.Affine": Affine}, _model("Missing"))


def test_an_implementation_whose_shapes_disagree_is_a_clear_error():
    m = _model("Narrow")
    so = session_options({"ai.test.customops.Narrow": WrongShape}, m)
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    # raised after the run: an exception escaping a Python op would abort the process
    with pytest.raises(CustomOpError, match="output_shapes says"):
        run(sess, None, {"in": np.ones((1, 3), np.float32)})


def test_classes_load_from_specs_and_files(tmp_path):
    code = tmp_path / "blob-without-suffix"
    code.write_text("class Twice:\n    def __init__(self): pass\n    def evaluate(self, x): return 2 * x\n"
                    "    def output_shapes(self, s): return [s]\n")
    got = load_classes({"ai.t.Twice": {"class": "twice_impl:Twice", "source": {"kind": "file"}}}, lambda s: code)
    assert got["ai.t.Twice"]().evaluate(3) == 6
    assert load_classes({"ai.t.A": Affine}) == {"ai.t.A": Affine}
    with pytest.raises(CustomOpError, match="not an implementation class"):
        load_classes({"ai.t.X": object})
    with pytest.raises(CustomOpError, match="cannot load the custom op class no_such_module_x:Y"):
        load_classes({"ai.t.Y": "no_such_module_x:Y"})


def test_keys_cli_values_and_identity():
    assert split_key("a.b.Op") == ("a.b", "Op")
    with pytest.raises(CustomOpError):
        split_key("Op")
    assert parse_cli(["a.b.Op=m:C"]) == {"a.b.Op": "m:C"}
    with pytest.raises(CustomOpError, match="domain.OpType=module:Class"):
        parse_cli(["a.b.Op"])
    ident = identity({"a.b.Op": Affine})["a.b.Op"]
    assert ident["class"].endswith(":Affine") and len(ident["source_sha256"]) == 64


def test_a_model_without_custom_nodes_needs_no_classes():
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    assert check(helper.make_model(g), {}) == []
