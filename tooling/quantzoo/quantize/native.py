"""The native representation: an affine-encoded weight as one standard ``DequantizeLinear``
node over uint8 / uint4 / uint2 codes, instead of the in-graph decode (ARCHITECTURE.md, "Large
models").

onnxruntime does not fold ``DequantizeLinear`` at session creation, so nothing full-size is
materialised: a 134M-weight model opens in a fraction of the float model's time and memory.
2-D MatMul weights are written blocked along K (axis 0; per channel is one block of K rows),
which onnxruntime fuses with the MatMul into its n-bit kernel (``MatMulNBits``), faster than
float at batch 1. Other weights dequantize at every run unless the session sets
``session.disable_quant_qdq=1`` (then they are folded back to float at creation).

Only what DequantizeLinear can say exactly is written natively: affine codes at 2, 4 or 8 bits
with an integer zero point, per channel, or per block of a 2-D weight, in a model whose opset
has the type (uint8: 13, uint4 and blocks: 21, uint2: 25). Everything else keeps the decode.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .modes import Encoded
from .weights import Tensor

REPRESENTATIONS = ("decode", "native")


def _storage(nbits: int):
    """(numpy dtype of the codes, onnx type, opset that has it, IR version that has it) or None."""
    import ml_dtypes

    if nbits == 8:
        return np.uint8, 13, 7
    if nbits == 4:
        return ml_dtypes.uint4, 21, 10
    if nbits == 2 and hasattr(ml_dtypes, "uint2") and hasattr(TensorProto, "UINT2"):
        return ml_dtypes.uint2, 25, 11
    return None


def native_form(enc: Encoded, channel_axis: int | None, opset: int) -> tuple[dict, int, int] | None:
    """The DequantizeLinear inputs and attributes of an encoding, with the opset and IR version
    they need; None when DequantizeLinear cannot state it exactly at this opset.

    >>> from quantzoo.quantize.modes import MODES, Layout
    >>> w = np.linspace(-1, 1, 64 * 32, dtype=np.float32).reshape(64, 32)
    >>> form, _, _ = native_form(MODES["linear"].encode(w, 4, Layout("per_channel", 1, 0)), 1, 21)
    >>> form["scale"].shape, form["attrs"]
    ((1, 32), {'axis': 0, 'block_size': 64})
    """
    storage = _storage(enc.nbits)
    if enc.kind != "affine" or storage is None or channel_axis is None:
        return None
    dtype, need_opset, ir = storage
    zp = np.asarray(enc.zero_point)
    if not np.array_equal(zp, np.round(zp)):  # 1-bit sign × scale has zero point 0.5
        return None
    shape, view = tuple(enc.shape), tuple(enc.view)
    if view == shape:  # per channel
        if len(shape) == 2 and channel_axis == 1 and opset >= 21:  # MatMul [K, N]: one block of K rows per column
            attrs = {"axis": 0, "block_size": shape[0]}
            scale, zp = enc.scale.reshape(1, shape[1]), zp.reshape(1, shape[1])
            need_opset = max(need_opset, 21)
        else:
            attrs = {"axis": channel_axis}
            scale, zp = enc.scale.reshape(-1), zp.reshape(-1)
    elif len(shape) == 2:  # per block of a 2-D weight: the view cut one axis into (blocks, size)
        axis = next(a for a in range(2) if view[a] != shape[a])
        blocked = shape[:axis] + (view[axis],) + shape[axis + 1:]
        attrs = {"axis": axis, "block_size": view[axis + 1]}
        scale, zp = enc.scale.reshape(blocked), zp.reshape(blocked)
        need_opset = max(need_opset, 21)
    else:
        return None
    if opset < need_opset:
        return None
    codes = np.asarray(enc.codes).reshape(shape).astype(dtype)
    form = {"codes": codes, "scale": np.ascontiguousarray(scale, np.float32), "zero_point": zp.astype(dtype),
            "attrs": attrs}
    return form, need_opset, ir


def write_native(model: onnx.ModelProto, items: list[tuple[Tensor, dict, int]]) -> dict[str, int]:
    """Replace each tensor by a DequantizeLinear of its `native_form` (in place); returns the
    stored bytes per tensor name. `items`: (tensor, form, IR version it needs)."""
    from .artifact import _Names

    names = _Names(model)
    stored: dict[str, int] = {}
    for tensor, form, ir in items:
        g, base = tensor.graph, tensor.name
        inits = [numpy_helper.from_array(form[k], names(f"{base}:{k}")) for k in ("codes", "scale", "zero_point")]
        node = helper.make_node("DequantizeLinear", [t.name for t in inits], [base], name=names(f"{base}:decode"),
                                **form["attrs"])
        g.initializer.extend(inits)
        if tensor.constant_node is not None:
            idx = next(i for i, n in enumerate(g.node) if n.op_type == "Constant" and list(n.output) == [base])
            g.node.insert(idx, node)
            del g.node[idx + 1]
        else:
            idx = next(i for i, t in enumerate(g.initializer) if t.name == base)
            del g.initializer[idx]
            g.node.insert(0, node)
        model.ir_version = max(model.ir_version, ir)
        stored[base] = int(sum(len(t.raw_data) for t in inits))
    return stored
