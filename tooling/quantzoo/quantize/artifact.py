"""Writing compressed tensors into an ONNX model that stock onnxruntime runs at float speed.

Each compressed weight becomes packed uint8 bit planes (pack.py) plus its small float
parameters, and one node of a model-local function in the ``ai.quantzoo`` domain that decodes
them with standard ONNX ops (Range, Div, Mod, Cast, Gather, Reshape, Add, Sub, Mul, Slice)
into a float32 tensor with the weight's original name. Every input of that node is constant,
so onnxruntime inlines the function and constant-folds the decode when it creates a session:
the optimized graph is the float graph, and inference runs at float speed with a plain
``InferenceSession(path)``. (Native DequantizeLinear is not folded by default and would be
dequantized at every run; see DESIGN.md.)

Functions are named by what they do, e.g. ``DecodeLut4`` (one 4-bit plane through a table),
``DecodeAffine3`` (a 2-bit and a 1-bit plane, then ``(code - zero_point) * scale``), with
``Grouped``, ``View`` (per-block reshape) and ``Trim`` (padding dropped) variants.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .modes import Encoded
from .pack import PLANES, pack, padded_count
from .weights import Tensor, walk_graphs

DOMAIN = "ai.quantzoo"
DOMAIN_VERSION = 1
MIN_OPSET = 11


def recipe_name(enc: Encoded) -> str:
    """The decode function an `Encoded` needs.

    >>> from quantzoo.quantize.modes import MODES, Layout
    >>> recipe_name(MODES["kmeans_lut"](np.arange(16, dtype=np.float32), 3, Layout()))
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
    if padded_count(int(np.prod(enc.shape, dtype=np.int64))) != int(np.prod(enc.shape, dtype=np.int64)):
        name += "Trim"
    return name


def _const(name: str, array: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(array)))


def build_function(name: str, opset: int) -> onnx.FunctionProto:
    """The FunctionProto for a recipe name from `recipe_name`."""
    rest = name
    kind = next(k for k in ("DecodeGroupedLut", "DecodeAffine", "DecodeLut") if rest.startswith(k))
    rest = rest[len(kind):]
    trim = rest.endswith("Trim")
    rest = rest.removesuffix("Trim")
    view = rest.endswith("View")
    nbits = int(rest.removesuffix("View"))
    planes = PLANES[nbits]
    fused = kind == "DecodeLut" and len(planes) == 1

    inputs = [f"p{i}" for i in range(len(planes))]
    if kind == "DecodeAffine":
        inputs += ["zero_point", "scale"] + (["view"] if view else [])
    elif kind == "DecodeGroupedLut":
        inputs += ["lut", "offsets"]
    else:
        inputs += ["lut"]
    inputs += ["shape"]

    nodes = [
        _const("b0", np.array(0, np.int32)), _const("b256", np.array(256, np.int32)),
        _const("b1", np.array(1, np.int32)), _const("col", np.array([256, 1], np.int64)),
        _const("flat", np.array([-1], np.int64)),
        helper.make_node("Range", ["b0", "b256", "b1"], ["bytes_row"]),
        helper.make_node("Reshape", ["bytes_row", "col"], ["bytes"]),
    ]
    parts = []
    for i, (width, shift) in enumerate(planes):
        per = 8 // width
        nodes += [
            _const(f"div{i}", (1 << (np.arange(per) * width)).astype(np.int32)),
            _const(f"mod{i}", np.array(1 << width, np.int32)),
            helper.make_node("Div", ["bytes", f"div{i}"], [f"q{i}"]),
            helper.make_node("Mod", [f"q{i}", f"mod{i}"], [f"f{i}"]),
        ]
        table = f"f{i}"
        if shift:
            nodes += [_const(f"sh{i}", np.array(1 << shift, np.int32)),
                      helper.make_node("Mul", [table, f"sh{i}"], [f"t{i}"])]
            table = f"t{i}"
        if kind == "DecodeAffine":
            nodes.append(helper.make_node("Cast", [table], [f"tf{i}"], to=TensorProto.FLOAT))
            table = f"tf{i}"
        elif fused:
            nodes.append(helper.make_node("Gather", ["lut", table], ["lut_table"], axis=0))
            table = "lut_table"
        nodes += [helper.make_node("Cast", [f"p{i}"], [f"pi{i}"], to=TensorProto.INT32),
                  helper.make_node("Gather", [table, f"pi{i}"], [f"g{i}"], axis=0)]
        part = f"g{i}"
        if len(planes) > 1 or trim:
            nodes.append(helper.make_node("Reshape", [part, "flat"], [f"gf{i}"]))
            part = f"gf{i}"
        parts.append(part)
    codes = parts[0]
    for i, part in enumerate(parts[1:], 1):
        nodes.append(helper.make_node("Add", [codes, part], [f"sum{i}"]))
        codes = f"sum{i}"
    if trim:
        nodes += [_const("zero", np.array([0], np.int64)),
                  helper.make_node("ReduceProd", ["shape"], ["count"], keepdims=1),
                  helper.make_node("Slice", [codes, "zero", "count"], ["trimmed"])]
        codes = "trimmed"
    if fused:
        nodes.append(helper.make_node("Reshape", [codes, "shape"], ["w"]))
    elif kind == "DecodeLut":
        nodes += [helper.make_node("Gather", ["lut", codes], ["values"], axis=0),
                  helper.make_node("Reshape", ["values", "shape"], ["w"])]
    elif kind == "DecodeGroupedLut":
        nodes += [helper.make_node("Reshape", [codes, "shape"], ["c"]),
                  helper.make_node("Add", ["c", "offsets"], ["idx"]),
                  helper.make_node("Gather", ["lut", "idx"], ["w"], axis=0)]
    else:
        out = "w" if not view else "affine"
        nodes += [helper.make_node("Reshape", [codes, "view" if view else "shape"], ["c"]),
                  helper.make_node("Sub", ["c", "zero_point"], ["centred"]),
                  helper.make_node("Mul", ["centred", "scale"], [out])]
        if view:
            nodes.append(helper.make_node("Reshape", ["affine", "shape"], ["w"]))
    return helper.make_function(
        DOMAIN, name, inputs, ["w"], nodes, opset_imports=[helper.make_opsetid("", opset)])


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
        if enc.kind == "fp16":
            node = helper.make_node("Cast", [add("fp16", enc.half)], [base], name=names(f"{base}:decode"),
                                    to=TensorProto.FLOAT)
            stored[base] = int(enc.half.nbytes)
        else:
            planes = pack(enc.codes, enc.nbits)
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
                    ins.append(add("offsets", enc.offsets.astype(np.int32)))
                    param_bytes += enc.offsets.nbytes
            ins.append(shape_input(tuple(enc.shape)))
            node = helper.make_node(recipe, ins, [base], name=names(f"{base}:decode"), domain=DOMAIN)
            recipes.add(recipe)
            stored[base] = int(sum(p.nbytes for p in planes) + param_bytes)

        g.initializer.extend(new_inits)
        if tensor.constant_node is not None:
            idx = next(i for i, n in enumerate(g.node) if n.op_type == "Constant" and list(n.output) == [base])
            g.node.insert(idx, node)
            del g.node[idx + 1]
        else:
            idx = next(i for i, t in enumerate(g.initializer) if t.name == base)
            del g.initializer[idx]
            inserts.setdefault(tensor.scope, (g, []))[1].append(node)

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
    kept = [p for p in model.metadata_props if not p.key.startswith("quantzoo.")]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key in sorted(metadata):
        model.metadata_props.add(key=key, value=str(metadata[key]))
    return stored
