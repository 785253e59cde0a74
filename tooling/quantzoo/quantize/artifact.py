"""Writing compressed tensors into an ONNX model that stock onnxruntime runs at float speed.

Each compressed weight becomes packed uint8 bit planes (pack.py) plus its small float
parameters, and one node of a model-local function in the ``ai.quantzoo`` domain that decodes
them with standard ONNX ops (Range, Div, Mod, Cast, Gather, Reshape, Add, Sub, Mul, Shape,
Slice) into a float32 tensor with the weight's original name (a float16 or bfloat16 weight
gets a Cast back to its own dtype after the decode). Every input of that node is
constant, so onnxruntime inlines the function and constant-folds the decode when it creates a
session: the optimized graph is the float graph, and inference runs at float speed with a
plain ``InferenceSession(path)``. (onnxruntime does not fold native DequantizeLinear by default,
so a model built on it dequantizes at every run and infers slower than float; the measurements
are in ARCHITECTURE.md, section "n-bit artifacts".)

onnxruntime keeps every folded intermediate until the folding pass ends, so the decode is
built to materialise few full-size tensors: codes are read a *group* at a time through a
joint index (see `joint_layout`), one Gather yields g weights, and 8-bit codes are stored in
the weight's own shape and used directly.

Functions are named by what they do, e.g. ``DecodeLut4`` (4-bit codes through a table),
``DecodeAffine3`` (3-bit codes, then ``(code - zero_point) * scale``), with ``Grouped``,
``View`` (per-block reshape) and ``Trim`` (padding dropped) variants.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .modes import Encoded
from .pack import PLANES, pack, padded_count
from .weights import Tensor, walk_graphs

DOMAIN = "ai.quantzoo"
MODEL_KEYS = ("quantzoo.shapes",)  # metadata about the model, not about a compression
DOMAIN_VERSION = 1
MIN_OPSET = 11


def recipe_name(enc: Encoded) -> str:
    """The decode function an `Encoded` needs.

    >>> from quantzoo.quantize.modes import MODES, Layout
    >>> recipe_name(MODES["kmeans_lut"].encode(np.arange(16, dtype=np.float32), 3, Layout()))
    'DecodeLut3'
    """
    if enc.kind == "fp16":
        return "Cast"
    if enc.kind == "affine":
        base = "DecodeAffine"
    elif enc.offsets is not None:
        base = "DecodeGroupedLut"
    else:
        base = "DecodeLut"
    name = f"{base}{enc.nbits}"
    if enc.kind == "affine" and tuple(enc.view) != tuple(enc.shape):
        name += "View"
    count = int(np.prod(enc.shape, dtype=np.int64))
    if enc.nbits != 8 and padded_count(count) != count:
        name += "Trim"
    return name


def _const(name: str, array: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(array)))


def joint_layout(nbits: int) -> tuple[int, list[tuple[int, int, int]]]:
    """How codes are read back: ``(g, [(width, shift, offset), ...])`` per plane.

    A *group* of g = 8 / (first plane's width) consecutive codes has all its first-plane fields
    in one byte and its fields of every other plane in one sub-byte unit (g × width bits) of
    that plane's stream. Those units, placed at bit `offset` of a g·n-bit *joint index*, name
    the whole group at once, so one Gather through a [2^(g·n), g] table decodes g weights and
    the decode never materialises per-weight integers (which is what costs memory while
    onnxruntime folds it).

    >>> joint_layout(3)
    (4, [(2, 0, 0), (1, 2, 8)])
    """
    planes = PLANES[nbits]
    g = 8 // planes[0][0]
    out, offset = [], 0
    for width, shift in planes:
        out.append((width, shift, offset))
        offset += g * width
    return g, out


def joint_table(nbits: int) -> np.ndarray:
    """int32 [2^(g·n), g]: the g codes a joint index stands for (numpy twin of the graph's)."""
    g, planes = joint_layout(nbits)
    i = np.arange(1 << (g * nbits), dtype=np.int64)[:, None]
    codes = np.zeros((len(i), g), np.int64)
    for width, shift, offset in planes:
        j = np.arange(g)[None, :]
        codes += ((i >> (offset + j * width)) & ((1 << width) - 1)) << shift
    return codes.astype(np.int32)


def build_function(name: str, opset: int) -> onnx.FunctionProto:
    """The FunctionProto for a recipe name from `recipe_name`."""
    rest = name
    kind = next(k for k in ("DecodeGroupedLut", "DecodeAffine", "DecodeLut") if rest.startswith(k))
    rest = rest[len(kind):]
    trim = rest.endswith("Trim")
    rest = rest.removesuffix("Trim")
    view = rest.endswith("View")
    nbits = int(rest.removesuffix("View"))
    g, planes = joint_layout(nbits)

    inputs = [f"p{i}" for i in range(len(planes))]
    if kind == "DecodeAffine":
        inputs += ["zero_point", "scale"] + (["view"] if view else [])
    elif kind == "DecodeGroupedLut":
        inputs += ["lut", "groups", "offsets_shape"]
    else:
        inputs += ["lut"]
    inputs += ["shape"]
    nodes: list[onnx.NodeProto] = []

    def node(op, ins, out, **attrs):
        nodes.append(helper.make_node(op, ins, [out], **attrs))
        return out

    def const(nm, array):
        nodes.append(_const(nm, array))
        return nm

    if nbits == 8:
        # One code per byte, stored in the weight's (or view's) shape: no unpacking at all.
        if kind == "DecodeAffine":
            codes = node("Cast", ["p0"], "codes", to=TensorProto.FLOAT)
        else:
            codes = node("Cast", ["p0"], "codes", to=TensorProto.INT32)
        values = codes
    else:
        # The joint-index table: entry [i, j] is code j of the group with joint index i.
        bits = g * nbits
        node("Range", [const("zero_i", np.array(0, np.int32)), const("size_i", np.array(1 << bits, np.int32)),
                       const("one_i", np.array(1, np.int32))], "i_row")
        node("Reshape", ["i_row", const("col_i", np.array([1 << bits, 1], np.int64))], "i")
        table = None
        for p, (width, shift, offset) in enumerate(planes):
            div = const(f"div{p}", (1 << (offset + np.arange(g) * width)).astype(np.int32))
            field = node("Mod", [node("Div", ["i", div], f"q{p}"), const(f"mod{p}", np.array(1 << width, np.int32))],
                         f"f{p}")
            if shift:
                field = node("Mul", [field, const(f"sh{p}", np.array(1 << shift, np.int32))], f"fs{p}")
            table = field if table is None else node("Add", [table, field], f"t{p}")
        if kind == "DecodeAffine":
            table = node("Cast", [table], "table_f", to=TensorProto.FLOAT)
        elif kind == "DecodeLut":
            table = node("Gather", ["lut", table], "table_v", axis=0)
        # The joint index of every group: the first plane's byte plus every other plane's unit.
        index = node("Cast", ["p0"], "idx0", to=TensorProto.INT32)
        if len(planes) > 1:
            node("Range", ["zero_i", const("b256", np.array(256, np.int32)), "one_i"], "b_row")
            node("Reshape", ["b_row", const("col_b", np.array([256, 1], np.int64))], "b")
            first_shape = None
            for p, (width, _, offset) in list(enumerate(planes))[1:]:
                unit = g * width
                per = 8 // unit
                sub = node("Mul", [node("Mod", [node("Div", ["b", const(f"udiv{p}", (1 << (np.arange(per) * unit)).astype(np.int32))], f"uq{p}"),
                                                const(f"umod{p}", np.array(1 << unit, np.int32))], f"uf{p}"),
                                   const(f"uoff{p}", np.array(1 << offset, np.int32))], f"sub{p}")
                part = node("Gather", [sub, node("Cast", [f"p{p}"], f"pi{p}", to=TensorProto.INT32)], f"u{p}", axis=0)
                if p == 1:
                    first_shape = part  # p0 is stored in this plane's [bytes, units per byte] shape
                else:
                    part = node("Reshape", [part, node("Shape", [first_shape], f"shp{p}")], f"ur{p}")
                index = node("Add", [index, part], f"idx{p}")
        values = node("Gather", [table, index], "values", axis=0)
        if trim:
            flat = node("Reshape", [values, const("flat", np.array([-1], np.int64))], "values_flat")
            count = node("ReduceProd", ["shape"], "count", keepdims=1)
            values = node("Slice", [flat, const("start", np.array([0], np.int64)), count], "values_trim")

    if kind == "DecodeLut":
        if nbits == 8:
            node("Gather", ["lut", values], "w", axis=0)
        else:
            node("Reshape", [values, "shape"], "w")
    elif kind == "DecodeGroupedLut":
        if nbits != 8:
            values = node("Reshape", [values, "shape"], "codes_shaped")
        # offsets = (channel // group_size) * 2^n, laid out along the channel axis
        pick = [node("Gather", ["groups", const(f"at{i}", np.array(i, np.int64))], f"grp{i}", axis=0)
                for i in range(3)]
        channel = node("Range", [const("zero_c", np.array(0, np.int32)), pick[0], const("one_c", np.array(1, np.int32))],
                       "channel")
        offsets = node("Reshape", [node("Mul", [node("Div", [channel, pick[1]], "group"), pick[2]], "offsets_row"),
                                   "offsets_shape"], "offsets")
        node("Gather", ["lut", node("Add", [values, offsets], "grouped")], "w", axis=0)
    else:
        if nbits != 8:
            values = node("Reshape", [values, "view" if view else "shape"], "codes_shaped")
        out = "w" if not view else "affine"
        node("Mul", [node("Sub", [values, "zero_point"], "centred"), "scale"], out)
        if view:
            node("Reshape", ["affine", "shape"], "w")
    return helper.make_function(DOMAIN, name, inputs, ["w"], nodes, opset_imports=[helper.make_opsetid("", opset)])


def stored_planes(enc: Encoded) -> list[np.ndarray]:
    """The uint8 initializers of an `Encoded`, shaped as the decode function reads them."""
    if enc.nbits == 8:
        shape = enc.view if enc.kind == "affine" else enc.shape
        return [np.asarray(enc.codes, np.uint8).reshape(shape)]
    planes = pack(enc.codes, enc.nbits)
    if len(planes) > 1:
        g, layout = joint_layout(enc.nbits)
        per = 8 // (g * layout[1][0])
        planes[0] = planes[0].reshape(-1, per)
    return planes


class _Names:
    """Fresh, deterministic tensor names that collide with nothing in the model."""

    def __init__(self, model: onnx.ModelProto):
        self.used = set()
        for _, g in walk_graphs(model.graph):
            self.used.update(t.name for t in g.initializer)
            self.used.update(v.name for v in list(g.input) + list(g.output) + list(g.value_info))
            for n in g.node:
                self.used.update(n.input)
                self.used.update(n.output)
                self.used.add(n.name)

    def __call__(self, wanted: str) -> str:
        name, i = wanted, 1
        while name in self.used:
            name = f"{wanted}_{i}"
            i += 1
        self.used.add(name)
        return name


def opset_of(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    return 1


def write_compressed(model: onnx.ModelProto, items: list[tuple[Tensor, Encoded]], metadata: dict[str, str]) -> dict:
    """Replace each tensor of `items` (which must belong to `model`) by its decode, in place.

    Returns the stored bytes of every compressed tensor (packed planes + parameters) by name.
    """
    names = _Names(model)
    opset = opset_of(model)
    recipes: set[str] = set()
    stored: dict[str, int] = {}
    shapes: dict[tuple[str, tuple], str] = {}
    inserts: dict[str, tuple[onnx.GraphProto, list[onnx.NodeProto]]] = {}  # scope -> decode nodes

    for tensor, enc in items:
        g = tensor.graph
        base = tensor.name
        new_inits: list[onnx.TensorProto] = []

        def add(suffix: str, array: np.ndarray) -> str:
            name = names(f"{base}:{suffix}")
            new_inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
            return name

        def shape_input(shape: tuple[int, ...]) -> str:
            key = (tensor.scope, tuple(shape))
            if key not in shapes:
                name = names("qz_shape_" + "x".join(map(str, shape) or ["scalar"]))
                new_inits.append(numpy_helper.from_array(np.array(shape, np.int64), name))
                shapes[key] = name
            return shapes[key]

        recipe = recipe_name(enc)
        # The decode computes float32; a float16 or bfloat16 weight gets a Cast back to its dtype.
        out = base if tensor.dtype == TensorProto.FLOAT or enc.kind == "fp16" else names(f"{base}:float")
        if enc.kind == "fp16":
            node = helper.make_node("Cast", [add("fp16", enc.half)], [base], name=names(f"{base}:decode"),
                                    to=tensor.dtype)
            stored[base] = int(enc.half.nbytes)
        else:
            planes = stored_planes(enc)
            ins = [add(f"p{i}", p) for i, p in enumerate(planes)]
            param_bytes = 0
            if enc.kind == "affine":
                ins += [add("zero_point", enc.zero_point), add("scale", enc.scale)]
                param_bytes = enc.zero_point.nbytes + enc.scale.nbytes
                if tuple(enc.view) != tuple(enc.shape):
                    ins.append(shape_input(tuple(enc.view)))
            else:
                ins.append(add("lut", enc.tables.reshape(-1)))
                param_bytes = enc.tables.nbytes
                if enc.offsets is not None:
                    spec = [enc.offsets.size, enc.group_size, 1 << enc.nbits]
                    ins.append(add("groups", np.array(spec, np.int32)))
                    ins.append(shape_input(tuple(enc.offsets.shape)))
            ins.append(shape_input(tuple(enc.shape)))
            node = helper.make_node(recipe, ins, [out], name=names(f"{base}:decode"), domain=DOMAIN)
            recipes.add(recipe)
            stored[base] = int(sum(p.nbytes for p in planes) + param_bytes)
        nodes = [node]
        if out != base:
            nodes.append(helper.make_node("Cast", [out], [base], name=names(f"{base}:cast"), to=tensor.dtype))

        g.initializer.extend(new_inits)
        if tensor.constant_node is not None:
            idx = next(i for i, n in enumerate(g.node) if n.op_type == "Constant" and list(n.output) == [base])
            del g.node[idx]
            for k, n in enumerate(nodes):
                g.node.insert(idx + k, n)
        else:
            idx = next(i for i, t in enumerate(g.initializer) if t.name == base)
            del g.initializer[idx]
            inserts.setdefault(tensor.scope, (g, []))[1].extend(nodes)

    for g, nodes in inserts.values():
        existing = list(g.node)
        del g.node[:]
        g.node.extend(nodes + existing)

    for name in sorted(recipes):
        model.functions.append(build_function(name, opset))
    if recipes and not any(i.domain == DOMAIN for i in model.opset_import):
        model.opset_import.append(helper.make_opsetid(DOMAIN, DOMAIN_VERSION))
    if recipes:
        model.ir_version = max(model.ir_version, 8)  # model-local functions need IR 8
    # a previous quantize run's keys are replaced; what describes the model itself (the shapes it
    # accepts, `quantzoo shapes`) stays true of its compressed copy and is kept
    kept = [p for p in model.metadata_props if not p.key.startswith("quantzoo.") or p.key in MODEL_KEYS]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key in sorted(metadata):
        model.metadata_props.add(key=key, value=str(metadata[key]))
    return stored
