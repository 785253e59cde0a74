"""The compose source kind: a pipeline of ONNX files joined into one model."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from quantzoo.cache import Cache
from quantzoo.errors import ChecksumError, QuantzooError
from quantzoo.fetch import compose as C
from quantzoo.fetch.kinds import SOURCE_KINDS, fetch_source

RNG = np.random.default_rng(0)
W1 = RNG.standard_normal((4, 3)).astype(np.float32)
W2 = RNG.standard_normal((3, 2)).astype(np.float32)


def _model(inp: str, out: str, w: np.ndarray, weight: str, relu: bool) -> onnx.ModelProto:
    """[N, in] -> MatMul(weight) (-> Relu) -> [N, out]: a tiny part."""
    nodes = [helper.make_node("MatMul", [inp, weight], [out + ("_pre" if relu else "")], name=f"mm_{weight}")]
    if relu:
        nodes.append(helper.make_node("Relu", [out + "_pre"], [out], name=f"relu_{weight}"))
    graph = helper.make_graph(nodes, f"g_{weight}",
                              [helper.make_tensor_value_info(inp, TensorProto.FLOAT, ["N", w.shape[0]])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", w.shape[1]])],
                              [numpy_helper.from_array(w, weight)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def _parts(tmp_path, second_weight: str = "W2"):
    a = _model("x", "feat", W1, "W1", relu=True)
    b = _model("feat", "y", W2, second_weight, relu=False)
    pa, pb = tmp_path / "a.onnx", tmp_path / "b.onnx"
    onnx.save(a, pa)
    onnx.save(b, pb)
    return pa, pb


def _run(model_bytes, feed):
    return ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"]).run(None, feed)


def test_the_composed_model_equals_running_the_parts_in_sequence_and_is_byte_identical(tmp_path):
    pa, pb = _parts(tmp_path)
    data = C.compose_files([pa, pb], ["featurizer", "head"], [{"feat": "feat"}])
    assert data == C.compose_files([pa, pb], ["featurizer", "head"], [{"feat": "feat"}])
    x = RNG.standard_normal((5, 4)).astype(np.float32)
    (feat,) = _run(pa.read_bytes(), {"x": x})
    (want,) = _run(pb.read_bytes(), {"feat": feat})
    (got,) = _run(data, {"x": x})
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got, np.maximum(x @ W1, 0) @ W2, rtol=1e-5, atol=1e-6)
    m = onnx.load_from_string(data)
    assert [i.name for i in m.graph.input] == ["x"] and [o.name for o in m.graph.output] == ["y"]
    assert [(o.domain, o.version) for o in m.opset_import] == [("", 17)]  # one entry per domain
    meta = {p.key: p.value for p in m.metadata_props}
    assert '"io_map":[{"feat":"feat"}]' in meta[C.META_KEY]


def test_names_that_clash_are_prefixed_with_the_part_name(tmp_path):
    pa, pb = _parts(tmp_path, second_weight="W1")  # both parts name their weight W1
    data = C.compose_files([pa, pb], ["featurizer", "head"], [{"feat": "feat"}])
    m = onnx.load_from_string(data)
    assert sorted(t.name for t in m.graph.initializer) == ["W1", "head/W1"]
    assert [o.name for o in m.graph.output] == ["head/y"]
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(data, {"x": x})[0], np.maximum(x @ W1, 0) @ W2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("io_map, message", [
    ([{"nope": "feat"}], r"io_map\[0\] names output 'nope', which is not an output of the parts before 'head'; "
                         r"their outputs are feat"),
    ([{"feat": "nope"}], r"io_map\[0\] names input 'nope', which is not an input of part 'head'; its inputs are feat"),
    ([], r"io_map must hold 1 mapping \(one per join of 2 parts, output -> input\), found 0"),
    ([["feat", "feat"]], r"io_map\[0\] must be a non-empty mapping of output name to input name"),
])
def test_a_bad_io_map_is_a_clear_error(tmp_path, io_map, message):
    pa, pb = _parts(tmp_path)
    with pytest.raises(QuantzooError, match=message):
        C.compose_files([pa, pb], ["featurizer", "head"], io_map)


def test_joining_tensors_of_different_element_types_is_refused(tmp_path):
    pa, _ = _parts(tmp_path)
    b = _model("feat", "y", W2, "W2", relu=False)
    b.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    pb = tmp_path / "b64.onnx"
    onnx.save(b, pb)
    with pytest.raises(QuantzooError, match=r"joins output 'feat' \(float32\) to input 'feat' of part 'head' "
                                            r"\(float64\): the element types differ"):
        C.compose_files([pa, pb], ["featurizer", "head"], [{"feat": "feat"}])


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_the_compose_kind_fetches_the_parts_and_lands_the_verified_result(tmp_path):
    pa, pb = _parts(tmp_path)
    data = C.compose_files([pa, pb], ["a", "b"], [{"feat": "feat"}],
                           shas=[_sha(pa.read_bytes()), _sha(pb.read_bytes())])
    parts = [{"name": n, "source": {"kind": "file", "path": p.name, "sha256": _sha(p.read_bytes())}}
             for n, p in (("a", pa), ("b", pb))]
    source = {"kind": "compose", "parts": parts, "io_map": [{"feat": "feat"}], "sha256": _sha(data), "size": len(data)}
    cache = Cache(tmp_path / "cache")
    got = fetch_source(source, cache, base_dir=tmp_path)
    assert got == cache.blob(_sha(data)) and got.read_bytes() == data
    assert SOURCE_KINDS["compose"].describe(source) == "compose(a.onnx -> b.onnx)"
    with pytest.raises(ChecksumError, match="does not match the manifest"):
        fetch_source({**source, "sha256": "0" * 64}, Cache(tmp_path / "cache2"), base_dir=tmp_path)
