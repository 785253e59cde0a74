"""The native representation: an affine-encoded weight as one standard ``DequantizeLinear``
node over uint8 / uint4 / uint2 codes, instead of the in-graph decode (ARCHITECTURE.md, "Large
models").

onnxruntime does not fold ``DequantizeLinear`` at session creation, so nothing full-size is
materialised: a 134M-weight model opens in a fraction of the float model's time and memory.
2-D MatMul weights ``[K, N]`` are written blocked along K (axis 0) with a power-of-two block
size, which onnxruntime fuses with the MatMul into its n-bit kernel (``MatMulNBits``, 4 and 8
bits), faster than float at batch 1. Per channel is one block of K rows when K is a power of
two; otherwise the codes are padded with zero weights to a multiple of a power-of-two block
(the per-channel scale repeated per block) and a ``Pad`` of the MatMul's other input by the
same zero columns keeps the product exact and OpenVINO-readable (it wants K % block == 0).
Other weights dequantize at every run unless the session sets ``session.disable_quant_qdq=1``.

Only what DequantizeLinear can say exactly is written natively: affine codes at 2, 4 or 8 bits
with an integer zero point, per channel, or per block of a 2-D weight, in a model whose opset
has the type (uint8: 13, uint4 and blocks: 21, uint2: 25). Everything else keeps the decode.
A float16 or bfloat16 weight gets a Cast back to its dtype after the float32 DequantizeLinear.

``representation="auto"`` (the default) writes natively only the tensors where the fused
kernel applies and the decode's folding is costly (`auto_native`); the catalog's models have no
tensor that large, so their artifacts are the decode's.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .modes import Encoded
from .weights import Tensor, subgraphs

REPRESENTATIONS = ("auto", "decode", "native")
DEFAULT_REPRESENTATION = "auto"
# auto: a weight this large makes the decode's constant folding cost more session-creation time
# and memory than the float model (bench/results/scale.json); below it the decode runs at float
# speed with no creation cost worth trading for the fused kernel's int8 activations.
AUTO_MIN_ELEMENTS = 4_000_000
FUSED_NBITS = (4, 8)  # what onnxruntime 1.32 fuses into MatMulNBits (2 bits is not fused)


def _storage(nbits: int):
    """(numpy dtype of the codes, opset that has it, IR version that has it) or None."""
    import ml_dtypes

    if nbits == 8:
        return np.uint8, 13, 7
    if nbits == 4:
        return ml_dtypes.uint4, 21, 10
    if nbits == 2 and hasattr(ml_dtypes, "uint2") and hasattr(TensorProto, "UINT2"):
        return ml_dtypes.uint2, 25, 11
    return None


def _pow2(n: int) -> bool:
    return n >= 16 and n & (n - 1) == 0


def padded_block(k: int, n: int, nbits: int) -> int:
    """The power-of-two block size (≥ 16) that stores a per-channel [k, n] weight in the fewest
    bytes when k is padded to a multiple of it and the scale is repeated per block.

    >>> padded_block(5000, 5000, 4), padded_block(4096, 4096, 4), padded_block(11008, 4096, 4)
    (1024, 4096, 1024)
    """
    sizes = [1 << e for e in range(4, max(4, (k - 1).bit_length()) + 1)]
    return min(sizes, key=lambda b: ((-(-k // b) * b) * n * nbits / 8 + -(-k // b) * n * (4 + nbits / 8), -b))


def matmul_only(graph: onnx.GraphProto, name: str) -> bool:
    """Whether `name` is read only as input B of MatMul nodes of `graph` (not by a subgraph, not
    a graph output): then its K may be padded, with a Pad on each MatMul's input A."""
    uses = [(n, i) for n in graph.node for i, x in enumerate(n.input) if x == name]
    if not uses or name in {o.name for o in graph.output}:
        return False

    def reads(g: onnx.GraphProto) -> bool:
        return any(name in n.input or any(reads(s) for _, s in subgraphs(n)) for n in g.node)

    return all(n.op_type == "MatMul" and i == 1 for n, i in uses) and \
        not any(reads(s) for n in graph.node for _, s in subgraphs(n))


def native_form(enc: Encoded, channel_axis: int | None, opset: int, pad: bool = False) -> tuple[dict, int, int] | None:
    """The DequantizeLinear inputs and attributes of an encoding, with the opset and IR version
    they need; None when DequantizeLinear cannot state it exactly at this opset. `pad`: the
    weight is a MatMul's B only (`matmul_only`), so a K that is no power of two may be padded.
    ``form["fused"]`` says whether onnxruntime fuses it with its MatMul.

    >>> from quantzoo.quantize.modes import MODES, Layout
    >>> w = np.linspace(-1, 1, 64 * 32, dtype=np.float32).reshape(64, 32)
    >>> form, _, _ = native_form(MODES["linear"].encode(w, 4, Layout("per_channel", 1, 0)), 1, 21)
    >>> form["scale"].shape, form["attrs"], form["fused"]
    ((1, 32), {'axis': 0, 'block_size': 64}, True)
    """
    storage = _storage(enc.nbits)
    if enc.kind != "affine" or storage is None or channel_axis is None:
        return None
    dtype, need_opset, ir = storage
    zp = np.asarray(enc.zero_point)
    if not np.array_equal(zp, np.round(zp)):  # 1-bit sign × scale has zero point 0.5
        return None
    shape, view = tuple(enc.shape), tuple(enc.view)
    codes, extra, fused = np.asarray(enc.codes).reshape(shape), 0, False
    if view == shape:  # per channel
        if len(shape) == 2 and channel_axis == 1 and opset >= 21:  # MatMul [K, N]: blocks of K rows per column
            k, n = shape
            block = k if _pow2(k) or not pad else padded_block(k, n, enc.nbits)
            blocks = -(-k // block)
            extra = blocks * block - k  # zero-weight rows: codes at the zero point
            if extra:
                codes = np.concatenate([codes, np.broadcast_to(zp.reshape(1, n), (extra, n)).astype(codes.dtype)])
            attrs = {"axis": 0, "block_size": block}
            scale = np.repeat(enc.scale.reshape(1, n), blocks, axis=0)
            zp = np.repeat(zp.reshape(1, n), blocks, axis=0)
            need_opset, fused = max(need_opset, 21), _pow2(block)
        else:
            attrs = {"axis": channel_axis}
            scale, zp = enc.scale.reshape(-1), zp.reshape(-1)
    elif len(shape) == 2:  # per block of a 2-D weight: the view cut one axis into (blocks, size)
        axis = next(a for a in range(2) if view[a] != shape[a])
        blocked = shape[:axis] + (view[axis],) + shape[axis + 1:]
        attrs = {"axis": axis, "block_size": view[axis + 1]}
        scale, zp = enc.scale.reshape(blocked), zp.reshape(blocked)
        need_opset, fused = max(need_opset, 21), axis == 0 and channel_axis == 1 and _pow2(view[1])
    else:
        return None
    if opset < need_opset:
        return None
    form = {"codes": codes.astype(dtype), "scale": np.ascontiguousarray(scale, np.float32),
            "zero_point": zp.astype(dtype), "attrs": attrs, "pad": extra, "fused": fused and enc.nbits in FUSED_NBITS}
    return form, need_opset, ir


def auto_native(form: dict | None, matmul_b: bool, elements: int, dtype: int) -> bool:
    """The ``auto`` rule: native where onnxruntime fuses the weight into MatMulNBits (its form
    is fused and it is read only as MatMul input B: `matmul_only`) and the tensor is large enough
    for the decode's folding to cost more than the float model (bench/results/scale.json); the
    decode everywhere else, and for float16 / bfloat16 weights.

    >>> auto_native({"fused": True}, True, 4096 * 4096, TensorProto.FLOAT)
    True
    >>> auto_native({"fused": True}, True, 1280 * 1000, TensorProto.FLOAT)  # a classifier head
    False
    """
    return form is not None and form["fused"] and matmul_b and elements >= AUTO_MIN_ELEMENTS \
        and dtype == TensorProto.FLOAT


def write_native(model: onnx.ModelProto, items: list[tuple[Tensor, dict, int]]) -> dict[str, int]:
    """Replace each tensor by a DequantizeLinear of its `native_form` (in place); returns the
    stored bytes per tensor name. `items`: (tensor, form, IR version it needs)."""
    from .artifact import _Names

    names = _Names(model)
    stored: dict[str, int] = {}
    for tensor, form, ir in items:
        g, base = tensor.graph, tensor.name
        inits = [numpy_helper.from_array(form[k], names(f"{base}:{k}")) for k in ("codes", "scale", "zero_point")]
        out = base if tensor.dtype == TensorProto.FLOAT else names(f"{base}:float")
        nodes = [helper.make_node("DequantizeLinear", [t.name for t in inits], [out], name=names(f"{base}:decode"),
                                  **form["attrs"])]
        if out != base:  # float16 / bfloat16: back to the weight's own dtype
            nodes.append(helper.make_node("Cast", [out], [base], name=names(f"{base}:cast"), to=tensor.dtype))
        stored[base] = int(sum(len(t.raw_data) for t in inits))
        if form["pad"]:
            _pad_inputs(g, base, form["pad"], names, inits)
        g.initializer.extend(inits)
        if tensor.constant_node is not None:
            idx = next(i for i, n in enumerate(g.node) if n.op_type == "Constant" and list(n.output) == [base])
            del g.node[idx]
        else:
            idx = 0
            del g.initializer[next(i for i, t in enumerate(g.initializer) if t.name == base)]
        for k, n in enumerate(nodes):
            g.node.insert(idx + k, n)
        model.ir_version = max(model.ir_version, ir)
    return stored


def _pad_inputs(g: onnx.GraphProto, base: str, extra: int, names, inits: list) -> None:
    """Pad input A of every MatMul reading `base` with `extra` zero columns (its K grew)."""
    pads, axes = names(f"{base}:pads"), names(f"{base}:pad_axes")
    inits += [numpy_helper.from_array(np.array([0, extra], np.int64), pads),
              numpy_helper.from_array(np.array([-1], np.int64), axes)]
    keep = [v for v in g.value_info if v.name != base]  # its declared shape is the unpadded one
    del g.value_info[:]
    g.value_info.extend(keep)
    for i in [i for i, n in enumerate(g.node) if n.op_type == "MatMul" and n.input[1] == base][::-1]:
        n = g.node[i]
        padded = names(f"{n.input[0]}:padded")
        g.node.insert(i, helper.make_node("Pad", [n.input[0], pads, "", axes], [padded], name=names(f"{base}:pad")))
        n.input[0] = padded
