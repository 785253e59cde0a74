"""Old ONNX, brought up to what the decode needs before anything else is done to it.

Two shapes of old model are common (the classic ONNX Model Zoo ships both at once):

- **An opset older than the decode needs** (`artifact.MIN_OPSET`): the model is upgraded to
  `UPGRADE_OPSET` with `onnx.version_converter`, then the upgraded model is run in onnxruntime
  against the original on a generated input (`CHECK_SEED`; every float input drawn from
  N(0, 1), integer inputs 0, free dimensions 1) and refused when any output differs by more
  than `TOLERANCE` × max(1, max |original output|), the rule the PyTorch conversion uses.
- **Initializers also listed as graph inputs** (required before IR 4, and what TorchScript
  writes with ``keep_initializers_as_inputs=True``): a feed could replace them, so nothing would
  treat them as weights. They are removed from the inputs (onnxruntime does the same when it
  wants to fold them) and the IR version is raised to 4 where the format needs it.

`modernize` does both in place and returns one line per change for the quantize report.

    >>> from onnx import helper, numpy_helper, TensorProto
    >>> w = numpy_helper.from_array(np.ones((4, 4), np.float32), "W")
    >>> g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
    ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4]),
    ...      helper.make_tensor_value_info("W", TensorProto.FLOAT, [4, 4])],
    ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w])
    >>> m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 9)], ir_version=3)
    >>> for line in modernize(m, "m"):
    ...     print(line)
    1 initializer was also a graph input (IR 3): removed from the inputs and treated as a weight
    opset 9 upgraded to 13 (the decode needs 11); checked on a generated input: max abs difference 0
    >>> [v.name for v in m.graph.input], m.opset_import[0].version
    (['x'], 13)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from ..errors import QuantzooError
from .artifact import MIN_OPSET, opset_of

UPGRADE_OPSET = 13
TOLERANCE = 1e-4
CHECK_SEED = 0


def strip_initializer_inputs(model: onnx.ModelProto) -> list[str]:
    """Take initializers that are also listed as graph inputs (the old ONNX Model Zoo shape) out of
    the inputs, in place, so they are weights; the names taken out."""
    inits = {t.name for t in model.graph.initializer}
    doubled = [v.name for v in model.graph.input if v.name in inits]
    if doubled:
        kept = [v for v in model.graph.input if v.name not in inits]
        del model.graph.input[:]
        model.graph.input.extend(kept)
    return doubled


def modernize(model: onnx.ModelProto, label: str, base_dir: Path | None = None) -> list[str]:
    """Strip initializers from the graph inputs and upgrade an old opset, in place; the report lines."""
    notes = []
    doubled = strip_initializer_inputs(model)
    if doubled:
        many = len(doubled) > 1
        notes.append(f"{len(doubled)} initializer{'s were' if many else ' was'} also "
                     f"{'graph inputs' if many else 'a graph input'} (IR {model.ir_version}): removed from the "
                     f"inputs and treated as {'weights' if many else 'a weight'}")
        model.ir_version = max(model.ir_version, 4)
    old = opset_of(model)
    if old < MIN_OPSET:
        if base_dir is not None:
            from .external import materialize

            materialize(model, base_dir)  # old models are small: the converter needs every tensor
        upgraded = _upgrade(model, old, label)
        diff = _check(model, upgraded, old, label)
        model.CopyFrom(upgraded)
        notes.append(f"opset {old} upgraded to {UPGRADE_OPSET} (the decode needs {MIN_OPSET}); "
                     f"checked on a generated input: max abs difference {diff:.3g}")
    return notes


def _upgrade(model: onnx.ModelProto, old: int, label: str) -> onnx.ModelProto:
    from onnx import version_converter

    try:
        upgraded = version_converter.convert_version(model, UPGRADE_OPSET)
    except Exception as e:  # the converter raises RuntimeError / ConvertError with its reason
        raise QuantzooError(f"{label}: opset {old} is older than {MIN_OPSET}, which the in-graph decode needs, "
                            f"and onnx.version_converter could not upgrade it to {UPGRADE_OPSET}: "
                            f"{str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__}") from None
    return upgraded


def generated_inputs(model: onnx.ModelProto, seed: int = CHECK_SEED) -> dict[str, np.ndarray]:
    """One input per graph input: floats N(0, 1), integers 0, booleans False; free dimensions 1.

    >>> from onnx import helper, TensorProto
    >>> g = helper.make_graph([], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])], [])
    >>> {k: v.shape for k, v in generated_inputs(helper.make_model(g)).items()}
    {'x': (1, 3)}
    """
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for v in model.graph.input:
        if v.name in inits:
            continue
        t = v.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)
        shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in t.shape.dim]
        if np.issubdtype(dtype, np.floating):
            feeds[v.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[v.name] = np.zeros(shape, dtype)
    return feeds


def _run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _check(original: onnx.ModelProto, upgraded: onnx.ModelProto, old: int, label: str) -> float:
    feeds = generated_inputs(original)
    try:
        want = _run(original, feeds)
    except Exception as e:
        raise QuantzooError(f"{label}: cannot check the opset {old} → {UPGRADE_OPSET} upgrade: onnxruntime "
                            f"does not run the original ({e.__class__.__name__}: {str(e)[:300]})") from None
    try:
        got = _run(upgraded, feeds)
    except Exception as e:
        raise QuantzooError(f"{label}: the opset {old} → {UPGRADE_OPSET} upgrade does not run in onnxruntime "
                            f"({e.__class__.__name__}: {str(e)[:300]})") from None
    worst = 0.0
    for out, a, b in zip(original.graph.output, want, got):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            raise QuantzooError(f"{label}: the opset {old} → {UPGRADE_OPSET} upgrade changes output {out.name!r} "
                                f"from shape {a.shape} to {b.shape}")
        if a.size == 0:
            continue
        if a.dtype.kind not in "fc":
            diff = 0.0 if np.array_equal(a, b) else float("inf")
        else:
            diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
        allowed = TOLERANCE * max(1.0, float(np.max(np.abs(a.astype(np.float64)))) if a.dtype.kind in "fc" else 1.0)
        if not diff <= allowed:
            raise QuantzooError(f"{label}: the opset {old} → {UPGRADE_OPSET} upgrade changes output {out.name!r} "
                                f"by {diff:.3g} (allowed {allowed:.3g}) on a generated input (seed {CHECK_SEED}); "
                                "upgrade the model by hand and check it")
        worst = max(worst, diff)
    return worst
