"""The graph side of `quantzoo shapes`: which dimensions vary, and the shape constants to rewrite.

Which dimensions of a tensor vary is read from two concrete shape inferences of the same graph,
one with the inputs at the original shape and one at a probe shape (a promised bound): a dim that
differs varies. `scan` walks the nodes in order and returns the first shape constant to rewrite
(a Reshape or Expand target that bakes in the original size, a Slice that ends at it, a Resize to
constant sizes that scale it), or raises `Blocked` at a node that keeps a varying dimension fixed
(a weight, a constant operand, a target it cannot regroup). ARCHITECTURE.md, "Flexible shapes".
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

_BROADCAST = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Mean", "Sum", "Where", "Equal", "Less", "Greater",
              "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "PRelu", "Mod", "BitShift"}


class Blocked(Exception):
    """A node that keeps a dimension fixed; turned into a QuantzooError naming the input."""


@dataclass(frozen=True)
class Rewrite:
    """One node's new constant inputs: position → value (None: the input is dropped); `text`
    says what changed, for the report."""

    index: int
    changes: dict
    text: str


def _ints(a) -> list:
    return [int(v) for v in np.asarray(a).reshape(-1)]


def label(node, index: int) -> str:
    return f"node {node.name!r} ({node.op_type})" if node.name else \
        f"{node.op_type} node #{index} (output {node.output[0]!r})"


def skeleton(model):
    """A copy without its large initializers (they become typed inputs): shape inference only."""
    import onnx

    sk = onnx.ModelProto()
    sk.CopyFrom(model)
    g = sk.graph
    big = [t for t in g.initializer if math.prod(t.dims) >= 1024]
    names = {i.name for i in g.input}
    for t in big:
        g.initializer.remove(t)
        if t.name not in names:
            g.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return sk


def infer(skeleton, dims: dict[str, list[int]]) -> dict[str, list[int | None] | None]:
    """Every tensor's shape (None where unknown) with the inputs set to `dims`."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(skeleton)
    del m.graph.value_info[:]
    for vi in m.graph.output:  # declared at the original shape: they would override the inferred ones
        vi.type.tensor_type.ClearField("shape")
    for vi in m.graph.input:
        if vi.name in dims:
            set_dims(vi, dims[vi.name])
    try:
        m = onnx.shape_inference.infer_shapes(m, strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001 - an uninferable model: every shape unknown, onnxruntime decides
        pass
    shapes: dict = {t.name: list(t.dims) for t in m.graph.initializer}
    for vi in (*m.graph.input, *m.graph.value_info, *m.graph.output):
        t = vi.type.tensor_type
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim] \
            if t.HasField("shape") else None
    return shapes


def set_dims(vi, dims: list) -> None:
    shape = vi.type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, str):
            dim.dim_param = d
        elif d is not None:
            dim.dim_value = d


def const(graph, name: str):
    """The value of an initializer or Constant output, or None."""
    from onnx import numpy_helper

    for t in graph.initializer:
        if t.name == name:
            return numpy_helper.to_array(t)
    for n in graph.node:
        if n.op_type == "Constant" and n.output[0] == name:
            for a in n.attribute:
                if a.name == "value":
                    return numpy_helper.to_array(a.t)
                if a.name == "value_ints":
                    return np.array(list(a.ints), dtype=np.int64)
    return None


def _resolve(target: list[int], shape: list[int], allowzero: bool) -> list[int]:
    out = [shape[i] if v == 0 and not allowzero else v for i, v in enumerate(target)]
    if -1 in out:
        out[out.index(-1)] = math.prod(shape) // math.prod(v for v in out if v != -1)
    return out


def _groups(a: list[int], b: list[int]):
    """Pair runs of `a` and `b` dims with equal products (how a Reshape regroups dimensions)."""
    i = j = 0
    while i < len(a) or j < len(b):
        ins, outs, pa, pb = [], [], 1, 1
        if i < len(a):
            ins, pa, i = [i], a[i], i + 1
        if j < len(b):
            outs, pb, j = [j], b[j], j + 1
        while pa != pb:
            if pa < pb and i < len(a):
                ins, pa, i = ins + [i], pa * a[i], i + 1
            elif pb < pa and j < len(b):
                outs, pb, j = outs + [j], pb * b[j], j + 1
            else:
                raise Blocked("its target does not regroup the input's dimensions")
        yield ins, outs


def reshape_target(shape: list[int], target: list[int], flex: list[bool], allowzero: bool) -> list[int]:
    """A Reshape target that follows the varying input dims: 0 copies a dim kept in place, -1
    takes a run of dims merged into one; a varying dim split over several is a Blocked.

    >>> reshape_target([1, 4, 8, 8], [1, 256], [True, False, False, False], False)
    [0, 256]
    >>> reshape_target([1, 4, 8, 8], [1, -1], [True, False, False, False], False)
    [0, -1]
    >>> reshape_target([1, 4, 8, 8], [1, 4, 64], [False, False, True, True], False)
    [1, 4, -1]
    """
    if 0 in shape:
        return target
    out_shape = _resolve(target, shape, allowzero)
    new, free = list(target), []
    for ins, outs in _groups(shape, out_shape):
        if not any(flex[i] for i in ins):
            for j in outs:
                if new[j] == 0 and not allowzero and j < len(flex) and flex[j]:
                    new[j] = out_shape[j]
            continue
        if len(outs) != 1:
            raise Blocked(f"its target {target} splits a varying dimension of its input {shape} over several")
        j = outs[0]
        if ins == [j] and not allowzero:
            new[j] = 0
        else:
            free.append(j)
    if len(free) > 1:
        raise Blocked(f"its target {target} would need -1 for more than one varying dimension")
    if free:
        new = [out_shape[j] if v == -1 else v for j, v in enumerate(new)]
        new[free[0]] = -1
    return new


def _flex(orig: dict, probe: dict, name: str) -> list[bool] | None:
    """Per dim: does it vary (differs between the two inferences)? None when either is unknown."""
    a, b = orig.get(name), probe.get(name)
    if a is None or b is None or len(a) != len(b):
        return None
    return [x is not None and y is not None and x != y for x, y in zip(a, b)]


def scan(graph, orig: dict, probe: dict) -> Rewrite | None:
    """The first node to rewrite, or None; a node that keeps a varying dimension fixed raises Blocked."""
    for k, node in enumerate(graph.node):
        flex = [_flex(orig, probe, n) if n else None for n in node.input]
        try:
            step = _check(graph, node, flex, orig)
        except Blocked as e:
            raise Blocked(f"{label(node, k)}: {e}") from None
        if step is not None:
            changes, text = step
            return Rewrite(k, changes, text)
    return None


def _target(position: int, old, new: list[int]):
    """A one-input rewrite of an int64 shape constant, or None when nothing changes."""
    old = _ints(old)
    return ({position: np.array(new, dtype=np.int64)}, f"{old} -> {new}") if new != old else None


def slice_bounds(shape: list[int], flex: list[bool], starts, ends, axes, steps) -> tuple[np.ndarray, np.ndarray]:
    """Slice starts and ends that follow a varying axis: an end at the original size (a start at
    its last element, stepping back) becomes "to the end" (the type's largest value); the
    dtypes are kept (starts and ends must share theirs).

    >>> s, e = slice_bounds([1, 3, 8], [False, False, True], np.array([0, 1]), np.array([8, 3]), [2, 1], [1, 1])
    >>> s.tolist(), e.tolist()
    ([0, 1], [9223372036854775807, 3])
    >>> s, e = slice_bounds([8], [True], np.array([7], np.int32), np.array([-9], np.int32), [0], [-1])
    >>> s.tolist(), e.dtype.name
    ([2147483647], 'int32')
    """
    starts, ends = np.array(starts), np.array(ends)
    last = np.iinfo(ends.dtype).max
    for i, a in enumerate(axes):
        a = int(a) % len(shape)
        if not flex[a]:
            continue
        if steps[i] > 0 and ends[i] == shape[a]:
            ends[i] = last
        elif steps[i] < 0 and starts[i] == shape[a] - 1:
            starts[i] = np.iinfo(starts.dtype).max
    return starts, ends


def _slice(graph, ins: list[str], flex: list[bool], shape: list[int]):
    """Slice (opset 10+) with constant bounds on a varying axis: see `slice_bounds`."""
    starts, ends = const(graph, ins[1]), const(graph, ins[2])
    axes = const(graph, ins[3]) if len(ins) > 3 and ins[3] else np.arange(len(np.atleast_1d(starts if starts is not None else [])))
    steps = const(graph, ins[4]) if len(ins) > 4 and ins[4] else np.ones(len(np.atleast_1d(axes)), np.int64)
    if starts is None or ends is None or axes is None or steps is None:
        return None  # computed at run time: onnxruntime will tell
    new_starts, new_ends = slice_bounds(shape, flex, starts, ends, list(axes), list(steps))
    changes = {p: v for p, v, old in ((1, new_starts, starts), (2, new_ends, ends)) if _ints(v) != _ints(old)}
    if not changes:
        return None
    return changes, "; ".join(f"{'starts' if p == 1 else 'ends'} {_ints(old)} -> {_ints(changes[p])}"
                              for p, old in ((1, starts), (2, ends)) if p in changes)


def resize_scales(shape: list[int], sizes: list[int], flex: list[bool], axes: list[int]) -> np.ndarray | None:
    """The float32 scales that give `sizes` from `shape` ([N, C, H, W]; `axes` the resized axes),
    when a varying axis is scaled by a factor other than 1; None when every varying axis keeps
    its size (a resize to a fixed size: on purpose, left alone). Each scale is nudged up until
    floor(size · scale) gives the size back.

    >>> resize_scales([1, 8, 14, 14], [1, 8, 28, 7], [True, False, True, True], [0, 1, 2, 3]).tolist()
    [1.0, 1.0, 2.0, 0.5]
    >>> resize_scales([1, 8, 14, 14], [1, 8, 14, 14], [True, False, True, True], [0, 1, 2, 3]) is None
    True
    """
    if not any(flex[a] and sizes[i] != shape[a] for i, a in enumerate(axes)):
        return None
    scales = []
    for i, a in enumerate(axes):
        s = np.float32(sizes[i] / shape[a])
        while math.floor(np.float32(shape[a]) * s) < sizes[i]:
            s = np.nextafter(s, np.float32(np.inf))
        scales.append(s)
    return np.array(scales, dtype=np.float32)


def _resize(graph, node, flex: list[bool], shape: list[int]):
    """Resize (opset 11+) to constant `sizes` that scale a varying axis: the same scales instead."""
    ins = list(node.input)
    sizes = const(graph, ins[3])
    policy = next((a.s.decode() for a in node.attribute if a.name == "keep_aspect_ratio_policy"), "stretch")
    axes = next((list(a.ints) for a in node.attribute if a.name == "axes"), None)
    if sizes is None or sizes.size == 0 or policy != "stretch":
        return None
    axes = [int(a) % len(shape) for a in axes] if axes is not None else list(range(len(shape)))
    scales = resize_scales(shape, _ints(sizes), flex, axes)
    if scales is None:
        return None
    return {2: scales, 3: None}, f"sizes {_ints(sizes)} -> scales {[float(s) for s in scales]}"


def _check(graph, node, flex: list, orig: dict):
    op, ins = node.op_type, list(node.input)
    varies = [f is not None and any(f) for f in flex]
    if op == "Reshape" and varies[0]:
        target = const(graph, ins[1])
        if target is None:
            return None  # computed at run time (Shape, Gather, Concat...): onnxruntime will tell
        allowzero = any(a.name == "allowzero" and a.i for a in node.attribute)
        return _target(1, target, reshape_target(orig[ins[0]], _ints(target), flex[0], allowzero))
    if op == "Expand" and varies[0] and (target := const(graph, ins[1])) is not None:
        new, shape = _ints(target), orig[ins[0]]
        for i in (i for i, f in enumerate(flex[0]) if f and i + len(new) - len(shape) >= 0):
            p = i + len(new) - len(shape)
            if new[p] not in (1, shape[i]):
                raise Blocked(f"its target {_ints(target)} fixes size {new[p]} where its input varies")
            new[p] = 1
        return _target(1, target, new)
    if op == "Slice" and varies[0] and len(ins) >= 3 and None not in orig[ins[0]]:
        return _slice(graph, ins, flex[0], orig[ins[0]])
    if op == "Resize" and varies[0] and len(ins) >= 4 and ins[3] and None not in orig[ins[0]]:
        return _resize(graph, node, flex[0], orig[ins[0]])
    weight_axes = {"MatMul": (-1, -2), "Gemm": (0 if _attr(node, "transA") else 1, 1 if _attr(node, "transB") else 0),
                   "Conv": (1, 1), "ConvTranspose": (1, 0)}
    if op in weight_axes and varies[0] and len(ins) > 1 and flex[1] is not None:
        a, b = weight_axes[op]
        if min(len(flex[0]), len(flex[1])) >= 2 and flex[0][a] and not flex[1][b] and orig[ins[1]][b] != 1:
            raise Blocked(f"its operand {ins[1]!r} takes a fixed {orig[ins[1]][b]} features where "
                           f"{ins[0]!r} varies (the size is baked into the weights)")
    if op in _BROADCAST or op == "Concat":
        axis = _attr(node, "axis") if op == "Concat" else None
        ranked = [(n, f, orig[n]) for n, f in zip(ins, flex) if n and f is not None]
        rank = max((len(s) for _, _, s in ranked), default=0)
        for d in range(1, rank + 1):
            if axis is not None and rank - d == axis % rank:
                continue
            moving = [n for n, f, s in ranked if len(f) >= d and f[-d]]
            fixed = [(n, s[-d]) for n, f, s in ranked  # Concat does not broadcast a 1
                     if len(f) >= d and not f[-d] and (s[-d] != 1 or axis is not None)]
            if moving and fixed:
                raise Blocked(f"its operand {fixed[0][0]!r} has a fixed size {fixed[0][1]} where "
                               f"{moving[0]!r} varies")
    return None


def _attr(node, name: str) -> int:
    return next((a.i for a in node.attribute if a.name == name), 0)


def _used(graph) -> set[str]:
    """Every tensor name a node reads, in `graph` and in the bodies of its If/Loop/Scan nodes."""
    names = set()
    for n in graph.node:
        names.update(n.input)
        for a in n.attribute:
            for g in (*([a.g] if a.HasField("g") else []), *a.graphs):
                names |= _used(g)
    return names


def retarget(graph, index: int, changes: dict) -> None:
    """Point inputs of node `index` at new initializers ({position: array}), or drop them
    ({position: None}: emptied, trailing ones removed); drop old constants nothing reads."""
    from onnx import numpy_helper

    node = graph.node[index]
    olds = [node.input[p] for p in changes]
    for position, value in sorted(changes.items()):
        old = node.input[position]
        if value is None:
            node.input[position] = ""
            continue
        taken = {t.name for t in graph.initializer} | {o for n in graph.node for o in n.output}
        base = old or f"{node.name or node.op_type}_input{position}"
        name = next(f"{base}_flexible{i or ''}" for i in itertools.count() if f"{base}_flexible{i or ''}" not in taken)
        graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        node.input[position] = name
    while node.input and not node.input[-1]:
        del node.input[-1]
    for old in (o for o in olds if o):
        if old not in _used(graph) and old not in {o.name for o in graph.output}:
            for t in [t for t in graph.initializer if t.name == old]:
                graph.initializer.remove(t)
            for n in [n for n in graph.node if n.op_type == "Constant" and list(n.output) == [old]]:
                graph.node.remove(n)


def declare(model, skeleton, symbols: dict[str, list]) -> None:
    """Inputs get their symbols; value_info goes; output dims keep only a size or one of the
    input symbols that inference proves (the names inference makes up for unknown dims go)."""
    import onnx

    known = {d for dims in symbols.values() for d in dims if isinstance(d, str)}
    for g in (model.graph, skeleton.graph):
        del g.value_info[:]
        for vi in g.input:
            if vi.name in symbols:
                set_dims(vi, symbols[vi.name])
        for vi in g.output:
            if vi.type.tensor_type.HasField("shape"):
                set_dims(vi, [None] * len(vi.type.tensor_type.shape.dim))
    try:
        inferred = {o.name: o for o in onnx.shape_inference.infer_shapes(skeleton, strict_mode=False).graph.output}
    except Exception:  # noqa: BLE001 - outputs stay of unknown size
        return
    for vi in model.graph.output:
        dims = vi.type.tensor_type.shape.dim
        found = inferred[vi.name].type.tensor_type.shape.dim if vi.name in inferred else ()
        if vi.type.tensor_type.HasField("shape") and len(found) == len(dims):
            set_dims(vi, [d.dim_value if d.HasField("dim_value") else d.dim_param if d.dim_param in known
                          else None for d in found])
