"""portable: artifacts hold only standard ONNX ops, so onnxruntime, OpenVINO and onnx.reference run them."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx.reference import ReferenceEvaluator
from quantize_models import RNG, X, decoded, graphs, make_model, matmul_model

from quantzoo.quantize import quantize_file, quantize_weights
from quantzoo.quantize.artifact import DOMAIN
from quantzoo.quantize.portable import inline_decode

openvino = pytest.importorskip("openvino")

# one artifact of every mode (and every decode shape: grouped tables, per-block views, 8-bit codes)
SETTINGS = [("linear", 8, {}), ("linear", 4, {"granularity": "per_block", "block_size": 16}), ("linear", 1, {}),
            ("linear_symmetric", 5, {}), ("linear_lut", 3, {}), ("kmeans_lut", 3, {}), ("kmeans_lut", 8, {}),
            ("kmeans_lut", 4, {"granularity": "per_grouped_channel"}), ("fp16", None, {})]


def _ids(settings):
    return [f"{m}-{n}-{kw.get('granularity', '')}" for m, n, kw in settings]


def _outputs_ort(model: onnx.ModelProto, feed: dict) -> list[np.ndarray]:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feed)


def _outputs_openvino(path, feed: dict) -> list[np.ndarray]:
    compiled = openvino.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    res = compiled(feed)
    return [np.asarray(res[compiled.output(o.name)]) for o in onnx.load(str(path)).graph.output]


@pytest.mark.parametrize("mode,nbits,kw", SETTINGS, ids=_ids(SETTINGS))
def test_an_artifact_has_only_standard_ops_and_passes_the_full_checker(mode, nbits, kw):
    q = quantize_weights(make_model(), nbits, mode, **kw)
    assert not q.functions
    assert {n.domain for _, g in graphs(q.graph) for n in g.node} == {""}
    assert [i.domain for i in q.opset_import] == [""]
    onnx.checker.check_model(q, full_check=True)
    assert sorted(decoded(q.graph) + [n for _, g in list(graphs(q.graph))[1:] for n in decoded(g)]) == [
        "conv.w", "else.w", "gemm.w", "matmul.w", "then.w"]


@pytest.mark.parametrize("mode,nbits,kw", SETTINGS, ids=_ids(SETTINGS))
def test_openvino_runs_an_artifact_of_every_mode_with_onnxruntimes_outputs(tmp_path, mode, nbits, kw):
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(make_model(), src)
    quantize_file(src, dst, mode=mode, nbits=nbits, **kw)
    q = onnx.load(dst)
    for flag in (True, False):  # both branches of the If, each with its own decoded weight
        feed = {"x": X, "flag": np.array(flag)}
        want, got = _outputs_ort(q, feed), _outputs_openvino(dst, feed)
        for w, g in zip(want, got, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_openvino_gives_the_same_top1_as_onnxruntime_on_a_quantized_classifier(tmp_path):
    w = (RNG.standard_normal((64, 64)) * 0.5).astype(np.float32)  # 64 classes
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(matmul_model(w), src)
    quantize_file(src, dst, mode="kmeans_lut", nbits=4)
    xs = RNG.standard_normal((16, 64)).astype(np.float32)
    sess = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    want = [sess.run(None, {"x": x[None]})[0].argmax() for x in xs]
    got = [_outputs_openvino(dst, {"x": x[None]})[0].argmax() for x in xs]
    assert got == want


def test_the_onnx_reference_evaluator_runs_an_artifact_with_onnxruntimes_outputs():
    w = np.linspace(-1, 1, 4096, dtype=np.float32).reshape(64, 64)
    x = RNG.standard_normal((1, 64)).astype(np.float32)
    for mode, nbits in (("linear", 3), ("kmeans_lut", 4), ("fp16", None)):
        q = quantize_weights(matmul_model(w), nbits, mode)
        (got,) = ReferenceEvaluator(q).run(None, {"x": x})
        np.testing.assert_allclose(got, _outputs_ort(q, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_onnxruntime_still_folds_the_inlined_decode_to_the_float_graph(tmp_path):
    src = tmp_path / "f.onnx"
    onnx.save(make_model(), src)

    def optimized_ops(path):
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = str(path.with_suffix(".opt.onnx"))
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return sorted(n.op_type for _, g in graphs(onnx.load(so.optimized_model_filepath).graph) for n in g.node)

    for i, (mode, nbits, kw) in enumerate(SETTINGS):
        dst = tmp_path / f"q{i}.onnx"
        quantize_file(src, dst, mode=mode, nbits=nbits, **kw)
        assert optimized_ops(dst) == optimized_ops(src), mode


def test_the_same_input_gives_the_same_bytes():
    a = quantize_weights(make_model(), 3, "kmeans_lut").SerializeToString(deterministic=True)
    b = quantize_weights(make_model(), 3, "kmeans_lut").SerializeToString(deterministic=True)
    assert a == b


def test_inlining_drops_the_functions_their_domain_and_the_inputs_no_decode_reads():
    from quantzoo.quantize.artifact import write_compressed
    from quantzoo.quantize.modes import MODES, Layout
    from quantzoo.quantize.weights import select

    model = matmul_model(np.linspace(-1, 1, 4096, dtype=np.float32).reshape(64, 64))
    chosen, _ = select(model)
    write_compressed(model, [(s.tensor, MODES["linear"].encode(s.tensor.array(), 8, Layout("per_channel", 1, 0)))
                             for s in chosen], {})
    assert [n.domain for n in model.graph.node] == [DOMAIN, ""] and "qz_shape_64x64" in {
        t.name for t in model.graph.initializer}
    flat = inline_decode(model)
    assert not flat.functions and DOMAIN not in {i.domain for i in flat.opset_import}
    assert "qz_shape_64x64" not in {t.name for t in flat.graph.initializer}  # 8-bit codes keep their shape
    x = RNG.standard_normal((1, 64)).astype(np.float32)
    np.testing.assert_array_equal(_outputs_ort(flat, {"x": x})[0], _outputs_ort(model, {"x": x})[0])
    assert inline_decode(flat) == flat  # already portable: unchanged
