"""Finding the weights of an ONNX model and choosing which ones to compress.

Weights live in three places: graph initializers, `Constant` nodes (PaddlePaddle exports keep
every weight there) and the bodies of `If`, `Loop` and `Scan` nodes (silero-vad keeps its
weights in `If` branches), at any depth. `find_tensors` walks all of them and resolves every
name the way ONNX scopes it: a subgraph reads the nearest enclosing definition (so a weight
defined in one graph and read only in a `Loop` inside an `If` below it is found, and two
branches may each define their own tensor under one name). `select` applies the rules that
follow coremltools' defaults:

- a tensor is compressed when it is a float32, float16 or bfloat16 weight input of one of
  `op_types` (Conv, ConvTranspose, MatMul, Gemm, Gather used as an embedding, LSTM, GRU, RNN by
  default: see `WEIGHT_ROLES`) and has at least `min_elements` elements; a weight may reach its
  op through data-movement nodes (`PASS_THROUGH`: silero-vad slices and re-concatenates its
  LSTM gates), and its channel and block axes are traced back through them;
- biases, normalisation parameters and shape-like tensors are not weight inputs, so they stay;
- a tensor read by several nodes is one tensor: compressed once, decoded once;
- custom-domain nodes (`quantzoo.customops`) are left as they are: a tensor read only by them is
  skipped with that reason, since nothing says how their implementation reads it;
- every other tensor is reported with the reason it was left alone.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import onnx
from onnx import numpy_helper

from ..customops import STANDARD_DOMAINS

# The dtypes compressed (the decode ends in a Cast back to the tensor's own dtype).
FLOAT_TYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16",
               onnx.TensorProto.BFLOAT16: "bfloat16"}
DEFAULT_OP_TYPES = ("Conv", "ConvTranspose", "MatMul", "Gemm", "Gather", "LSTM", "GRU", "RNN")


def _attr(node: onnx.NodeProto, name: str, default=0):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


# A role answers, for a node and the rank of one of its inputs: is this input a weight, and
# which axes are its output channels and its input (reduction) dimension. None: not a weight.
Role = Callable[[onnx.NodeProto, int, int, Callable[[str], bool]], "tuple[int | None, int | None] | None"]


def _conv(node, index, rank, is_const):
    return (0, 1 if rank > 1 else None) if index == 1 else None


def _conv_transpose(node, index, rank, is_const):
    return (1 if rank > 1 else None, 0) if index == 1 else None


def _matmul(node, index, rank, is_const):
    if index not in (0, 1):
        return None
    if rank < 2:
        return (None, None)
    return (rank - 1, rank - 2) if index == 1 else (rank - 2, rank - 1)


def _gemm(node, index, rank, is_const):
    if index == 0:
        return (1, 0) if _attr(node, "transA") else (0, 1)
    if index == 1:
        return (0, 1) if _attr(node, "transB") else (1, 0)
    return None


def _gather(node, index, rank, is_const):
    # An embedding: constant table, indices computed at run time, rows gathered along axis 0.
    if index != 0 or _attr(node, "axis") != 0 or len(node.input) < 2 or is_const(node.input[1]):
        return None
    return (0, 1 if rank > 1 else None)


def _recurrent(node, index, rank, is_const):
    return (1, 2) if index in (1, 2) and rank == 3 else None


WEIGHT_ROLES: dict[str, Role] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MatMul": _matmul,
    "Gemm": _gemm,
    "Gather": _gather,
    "LSTM": _recurrent,
    "GRU": _recurrent,
    "RNN": _recurrent,
}


def _any_input(node, index, rank, is_const):
    return (None, None)  # an op type the user named that has no known weight layout


@dataclass
class Tensor:
    """One constant tensor of the model, wherever it lives."""

    name: str
    proto: onnx.TensorProto
    graph: onnx.GraphProto  # the graph holding the initializer or the Constant node
    scope: str  # "" for the main graph, else e.g. "If_0/then_branch"
    constant_node: onnx.NodeProto | None = None
    uses: list[tuple[onnx.NodeProto, int]] = field(default_factory=list)

    @property
    def dtype(self) -> int:
        return self.proto.data_type

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.proto.dims)

    @property
    def elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    def array(self) -> np.ndarray:
        return numpy_helper.to_array(self.proto)


@dataclass
class Selected:
    tensor: Tensor
    op: str
    channel_axis: int | None
    block_axis: int | None


@dataclass
class Skipped:
    name: str
    scope: str
    elements: int
    reason: str


def subgraphs(node: onnx.NodeProto) -> Iterator[tuple[str, onnx.GraphProto]]:
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            yield a.name, a.g
        elif a.type == onnx.AttributeProto.GRAPHS:
            for i, g in enumerate(a.graphs):
                yield f"{a.name}[{i}]", g


def walk_graphs(graph: onnx.GraphProto, scope: str = "") -> Iterator[tuple[str, onnx.GraphProto]]:
    """The graph and every subgraph below it, depth first, with a readable scope path."""
    yield scope, graph
    for i, node in enumerate(graph.node):
        for attr, sub in subgraphs(node):
            label = f"{node.name or node.op_type + '_' + str(i)}/{attr}"
            yield from walk_graphs(sub, f"{scope}/{label}" if scope else label)


def _constants(graph: onnx.GraphProto, scope: str) -> list[Tensor]:
    """The initializers, then the tensor-valued Constant nodes, of one graph (not its subgraphs)."""
    out = [Tensor(init.name, init, graph, scope) for init in graph.initializer]
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and len(node.output) == 1:
            for a in node.attribute:
                if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                    out.append(Tensor(node.output[0], a.t, graph, scope, constant_node=node))
    return out


@dataclass
class _Value:
    """A value computed at run time (a node output or a graph input) and the nodes that read it."""

    uses: list[tuple[onnx.NodeProto, int]] = field(default_factory=list)


def _resolve(model: onnx.ModelProto) -> tuple[list[Tensor], dict[int, list]]:
    """Every constant tensor (graph by graph, depth first), each name's readers resolved by ONNX
    scoping, and the values each node defines (by ``id(node)``)."""
    found: list[Tensor] = []
    defined: dict[int, list] = {}

    def visit(graph: onnx.GraphProto, scope: str, outer: dict) -> None:
        env = dict(outer)
        env.update((v.name, _Value()) for v in graph.input)
        own = _constants(graph, scope)
        found.extend(own)
        env.update((t.name, t) for t in own if t.constant_node is None)
        constant_of = {t.name: t for t in own if t.constant_node is not None}
        for i, node in enumerate(graph.node):
            for k, name in enumerate(node.input):
                if name in env:
                    env[name].uses.append((node, k))
            for attr, sub in subgraphs(node):
                label = f"{node.name or node.op_type + '_' + str(i)}/{attr}"
                visit(sub, f"{scope}/{label}" if scope else label, env)
            outs = [constant_of[node.output[0]] if node.op_type == "Constant" and node.output[0] in constant_of
                    else _Value() for _ in node.output]
            env.update(zip(node.output, outs))
            defined[id(node)] = outs

    visit(model.graph, "", {})
    return found, defined


def find_tensors(model: onnx.ModelProto) -> list[Tensor]:
    """Every initializer and tensor-valued Constant node, with the nodes that read it."""
    return _resolve(model)[0]


# Data-movement ops a weight may pass through on its way to the op that uses it. Each maps the
# input's axes to the output's: fn(node, input index, origin, constant) -> the origin tuple of
# every output (origin[a]: which axis of the stored tensor axis a of this value comes from, or
# None), or None when this input is not moved data (or its layout cannot be followed).
def _same(node, index, origin, constant):
    return [origin] * len(node.output) if index == 0 or node.op_type == "Concat" else None


def _axes(node, constant):
    if _attr(node, "axes", None) is not None:
        return [int(a) for a in _attr(node, "axes")]
    if len(node.input) > 1 and node.input[1]:
        value = constant(node.input[1])
        return None if value is None else [int(a) for a in np.ravel(value)]
    return None


def _unsqueeze(node, index, origin, constant):
    axes = _axes(node, constant) if index == 0 else None
    if axes is None:
        return None
    rank = len(origin) + len(axes)
    new = {a % rank for a in axes}
    rest = iter(origin)
    return [tuple(None if a in new else next(rest) for a in range(rank))]


def _squeeze(node, index, origin, constant):
    axes = _axes(node, constant) if index == 0 else None
    if axes is None:
        return None
    gone = {a % len(origin) for a in axes}
    return [tuple(o for a, o in enumerate(origin) if a not in gone)]


def _transpose(node, index, origin, constant):
    if index != 0:
        return None
    perm = _attr(node, "perm", None) or list(reversed(range(len(origin))))
    return [tuple(origin[p] for p in perm)]


def _reshape(node, index, origin, constant):
    if index != 0:
        return None
    if node.op_type == "Flatten":
        return [(None, None)]
    shape = constant(node.input[1]) if len(node.input) > 1 else None
    return None if shape is None else [(None,) * int(np.size(shape))]


PASS_THROUGH: dict[str, Callable] = {
    "Identity": _same, "Cast": _same, "Slice": _same, "Split": _same, "Concat": _same,
    "Unsqueeze": _unsqueeze, "Squeeze": _squeeze, "Transpose": _transpose, "Reshape": _reshape, "Flatten": _reshape,
}
_MAX_HOPS = 8


def _role(t: Tensor, defined: dict, ops: tuple, is_const, constant):
    """(op, channel axis, block axis) of the first weight use of `t`, directly or through
    `PASS_THROUGH` nodes (breadth first, direct uses before any other), or None."""
    frontier = [(t, tuple(range(len(t.shape))))]
    seen = {id(t)}
    for _ in range(_MAX_HOPS):
        following = []
        for value, origin in frontier:
            for node, index in value.uses:
                if node.domain not in ("", "ai.onnx"):
                    continue
                if node.op_type in ops:
                    axes = WEIGHT_ROLES.get(node.op_type, _any_input)(node, index, len(origin), is_const)
                    if axes is not None:
                        return (node.op_type, *(None if a is None else origin[a] for a in axes))
                move = PASS_THROUGH.get(node.op_type)
                moved = move(node, index, origin, constant) if move else None
                for out, out_origin in zip(defined.get(id(node), []), moved or []):
                    if id(out) not in seen:
                        seen.add(id(out))
                        following.append((out, out_origin))
        frontier = following
    return None


def _graph_io(model: onnx.ModelProto) -> set[str]:
    names = set()
    for _, g in walk_graphs(model.graph):
        names.update(v.name for v in g.input)
        names.update(v.name for v in g.output)
    return names


def select(model: onnx.ModelProto, *, min_elements: int = 2048, op_types=None,
           exclude=()) -> tuple[list[Selected], list[Skipped]]:
    """Split the model's constant tensors into those to compress and those left alone (with why).

    >>> from onnx import helper, TensorProto
    >>> w = numpy_helper.from_array(np.ones((64, 64), np.float32), "W")
    >>> g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
    ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
    ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [w])
    >>> chosen, skipped = select(helper.make_model(g))
    >>> [(s.tensor.name, s.op, s.channel_axis) for s in chosen]
    [('W', 'MatMul', 1)]
    """
    ops = tuple(op_types) if op_types else DEFAULT_OP_TYPES
    tensors, defined = _resolve(model)
    consts = {t.name: t for t in tensors}
    io = _graph_io(model)
    local = {(f.domain, f.name) for f in model.functions}  # model-local functions are not custom ops

    def is_const(name: str) -> bool:
        return name in consts

    def constant(name: str):  # small shape-like inputs (axes, target shapes); None when not at hand
        t = consts.get(name)
        return t.array() if t is not None and t.proto.data_location != onnx.TensorProto.EXTERNAL else None

    chosen: list[Selected] = []
    skipped: list[Skipped] = []
    for t in tensors:
        def skip(reason: str) -> None:
            skipped.append(Skipped(t.name, t.scope, t.elements, reason))

        pattern = next((p for p in exclude if fnmatch.fnmatchcase(t.name, p)), None)
        if pattern is not None:
            skip(f"excluded by pattern {pattern!r}")
            continue
        if t.dtype not in FLOAT_TYPES:
            skip(f"{onnx.TensorProto.DataType.Name(t.dtype).lower()}: only float32, float16 and bfloat16 "
                 "tensors are compressed")
            continue
        if t.name in io:
            skip("a graph input or output (a feed could replace it)")
            continue
        role = _role(t, defined, ops, is_const, constant)
        readers = {(n.domain, n.op_type) for n, _ in t.uses}
        custom = sorted(f"{d}.{o}" for d, o in readers if d not in STANDARD_DOMAINS and (d, o) not in local)
        if role is None and readers and len(custom) == len(readers):
            skip(f"read only by custom op{'s' if len(custom) > 1 else ''} {', '.join(custom)}")
            continue
        if role is None:
            users = sorted({f"{n.op_type}:{i}" for n, i in t.uses})
            shown = ", ".join(users[:3]) + (", …" if len(users) > 3 else "") if users else "nothing"
            skip(f"not a weight of {'/'.join(ops)} (read by {shown})")
            continue
        if t.elements < min_elements:
            skip(f"{t.elements} elements < min_elements {min_elements}")
            continue
        chosen.append(Selected(t, *role))
    return chosen, skipped
