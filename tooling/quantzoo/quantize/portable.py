"""Portable artifacts: the decode written as plain standard-ONNX nodes, readable by any runtime.

`artifact.write_compressed` expresses each decode as a call to a model-local function in the
``ai.quantzoo`` domain. onnxruntime inlines such calls itself, but other runtimes (OpenVINO,
for one) refuse an unknown domain, so the engine finishes every artifact with `inline_decode`:
the calls are replaced by the functions' bodies (standard ops only), and the functions and the
``ai.quantzoo`` opset import are dropped. Every decode input is still a constant, so
onnxruntime still constant-folds the decode away at session creation (ARCHITECTURE.md,
"n-bit artifacts").

>>> import numpy as np
>>> from onnx import helper, numpy_helper, TensorProto
>>> from quantzoo.quantize import quantize_weights
>>> w = numpy_helper.from_array(np.linspace(-1, 1, 4096, dtype=np.float32).reshape(64, 64), "W")
>>> g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [w])
>>> m = quantize_weights(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), 4, "linear")
>>> sorted({n.domain or "ai.onnx" for n in m.graph.node}), len(m.functions)
(['ai.onnx'], 0)
"""

from __future__ import annotations

import onnx
import onnx.inliner

from .artifact import DOMAIN
from .weights import walk_graphs


def inline_decode(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with its model-local decode functions inlined: standard ONNX ops only.

    The functions and the ``ai.quantzoo`` opset import are removed; the result is deterministic
    (same input, same bytes). A model without functions is returned as a copy.
    """
    calls = {i for _, g in walk_graphs(model.graph) for n in g.node if n.domain == DOMAIN for i in n.input}
    out = onnx.inliner.inline_local_functions(model) if model.functions else _copy(model)
    del out.functions[:]
    # a decode input its function never read (the shape of an 8-bit table decode) is dropped
    used = {i for _, g in walk_graphs(out.graph) for n in g.node for i in n.input}
    used.update(o.name for o in out.graph.output)
    for _, g in walk_graphs(out.graph):
        unused = [t for t in g.initializer if t.name in calls and t.name not in used]
        for t in unused:
            g.initializer.remove(t)
    kept = [i for i in out.opset_import if i.domain != DOMAIN]
    del out.opset_import[:]
    out.opset_import.extend(kept)
    return out


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out
