"""`quantzoo shapes`: make input dimensions of an ONNX model flexible, and prove it.

One model serving several input sizes (Core ML Tools 2.0's flexible shapes: a range per
dimension or a list of enumerated shapes). `make_flexible` sets the chosen dimensions to named
symbols, rewrites the shape constants that bake the original size in (Reshape and Expand
targets), clears the shapes inferred at the old size, records what it promises in the
``quantzoo.shapes`` metadata key, and verifies the promise in onnxruntime: the model runs at
every range bound and every enumerated shape, and at the original shape its outputs are the
original model's. A size baked into weights (a Gemm/MatMul/Conv whose weight takes the varying
size, a constant operand broadcast against it) is an error naming the node; nothing is written.

Which dimensions vary is read from two concrete shape inferences, one at the original shape and
one at a probe shape (ARCHITECTURE.md, "Flexible shapes").
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import QuantzooError, UsageError
from .shapegraph import Blocked, declare, infer, label, retarget, scan, skeleton
from .threads import ort_options

METADATA_KEY = "quantzoo.shapes"
MAX_CHECKS = 16  # shapes run in onnxruntime, bounds combined; more are thinned out evenly, ends kept
TOLERANCE = 1e-6  # largest difference from the original model allowed at the original shape
GRAMMAR = """\
--input NAME=SPEC, SPEC being either
  a range per dimension, comma-separated: DIM,DIM,... with DIM one of
      7         a fixed size
      1..32     any size from 1 to 32 (both included)
      32..      any size from 32 up
      N or *    any size
    e.g. x=1..32,3,48,32..2048
  or enumerated shapes, comma-separated: AxBxC...,AxBxC...
    e.g. x=1x3x224x224,1x3x320x320"""
_INT, _DIM = r"[1-9]\d*", r"(?:[1-9]\d*|[1-9]\d*\.\.(?:[1-9]\d*)?|N|\*)"


@dataclass(frozen=True)
class InputSpec:
    """The shapes one input accepts: `ranges` (lo, hi or None) per dimension, or `shapes`.

    >>> s = parse_spec("x=1..32,3,48,32..")
    >>> s.ranges, s.varying()
    (((1, 32), (3, 3), (48, 48), (32, None)), [0, 3])
    >>> parse_spec("x=1x3x224x224,1x3x320x320").record()
    {'shapes': [[1, 3, 224, 224], [1, 3, 320, 320]]}
    """

    name: str
    ranges: tuple[tuple[int, int | None], ...] | None = None
    shapes: tuple[tuple[int, ...], ...] | None = None

    @property
    def rank(self) -> int:
        return len(self.ranges) if self.ranges is not None else len(self.shapes[0])

    def varying(self) -> list[int]:
        """The dimensions that take more than one size."""
        if self.ranges is not None:
            return [i for i, (lo, hi) in enumerate(self.ranges) if hi != lo]
        return [i for i in range(self.rank) if len({s[i] for s in self.shapes}) > 1]

    def record(self) -> dict:
        """What the metadata promises: ``{"ranges": [[lo, hi|null], ...]}`` or ``{"shapes": [...]}``."""
        if self.ranges is not None:
            return {"ranges": [list(r) for r in self.ranges]}
        return {"shapes": [list(s) for s in self.shapes]}

    def checks(self, ref: list[int]) -> list[tuple[int, ...]]:
        """The shapes to run: each enumerated one, or every low/high combination (an open upper
        bound is checked at twice the original size, at least twice the low bound)."""
        if self.shapes is not None:
            return list(self.shapes)
        ends = [(lo,) if hi == lo else (lo, hi if hi is not None else max(2 * ref[i], 2 * lo))
                for i, (lo, hi) in enumerate(self.ranges)]
        return list(itertools.product(*ends))


def parse_spec(text: str) -> InputSpec:
    """``NAME=SPEC`` (see GRAMMAR) → InputSpec; a wrong spec is a UsageError that shows GRAMMAR.

    >>> parse_spec("x=4..2")
    Traceback (most recent call last):
    ...
    quantzoo.errors.UsageError: --input 'x=4..2': the range 4..2 is empty
    --input NAME=SPEC, SPEC being either
    ...
    """
    name, eq, spec = text.rpartition("=")
    spec = spec.replace(" ", "")
    fail = lambda why: UsageError(f"--input {text!r}: {why}\n{GRAMMAR}")  # noqa: E731
    if not eq or not name:
        raise fail("expected NAME=SPEC")
    if "x" in spec:
        if not re.fullmatch(rf"{_INT}(?:x{_INT})+(?:,{_INT}(?:x{_INT})+)*", spec):
            raise fail("enumerated shapes are sizes joined by x, the shapes joined by commas")
        shapes = tuple(dict.fromkeys(tuple(int(d) for d in s.split("x")) for s in spec.split(",")))
        if len({len(s) for s in shapes}) > 1:
            raise fail("the enumerated shapes have different ranks")
        return InputSpec(name, shapes=shapes)
    if not re.fullmatch(rf"{_DIM}(?:,{_DIM})*", spec):
        raise fail(f"cannot read {spec!r}")
    ranges = []
    for d in spec.split(","):
        lo, dots, hi = d.partition("..")
        if d in ("N", "*"):
            ranges.append((1, None))
        elif not dots:
            ranges.append((int(d), int(d)))
        elif hi and int(hi) < int(lo):
            raise fail(f"the range {d} is empty")
        else:
            ranges.append((int(lo), int(hi) if hi else None))
    return InputSpec(name, ranges=tuple(ranges))


@dataclass
class ShapesReport:
    """What `make_flexible` did: the promise per input, the rewrites, the shapes it ran."""

    inputs: dict[str, dict]
    symbols: dict[str, list[str | int]]  # input -> its new dims (symbol or size)
    original: dict[str, list[int]]  # the shape the outputs were compared at
    rewrites: list[str] = field(default_factory=list)
    checked: list[dict[str, list[int]]] = field(default_factory=list)
    max_abs_diff: float = 0.0

    def lines(self) -> list[str]:
        out = [f"{n}: {' x '.join(map(str, dims))}" for n, dims in self.symbols.items()]
        out += [f"rewrote {r}" for r in self.rewrites] or ["rewrote no shape constant"]
        out += [f"runs at {_fmt(c)}" for c in self.checked]
        out.append(f"at {_fmt(self.original)}: max |difference| from the original {self.max_abs_diff:.3g}")
        return out


def _fmt(shapes: dict[str, list[int]]) -> str:
    return ", ".join(f"{n}={'x'.join(map(str, s))}" for n, s in shapes.items())


def _specs(specs) -> dict[str, InputSpec]:
    if isinstance(specs, dict):
        items = [s if isinstance(s, InputSpec) else parse_spec(f"{n}={s}") for n, s in specs.items()]
    else:
        items = [s if isinstance(s, InputSpec) else parse_spec(s) for s in specs]
    if not items:
        raise UsageError(f"no --input given\n{GRAMMAR}")
    return {s.name: s for s in items}


def _plan(model, specs: dict[str, InputSpec]):
    """Per input: the original (reference) shape, the probe shape and the new dims."""
    inits = {t.name for t in model.graph.initializer}
    real = {i.name: i for i in model.graph.input if i.name not in inits}
    ref, probe, symbols = {}, {}, {}
    for name, spec in specs.items():
        if name not in real:
            raise UsageError(f"--input {name}: the model has no input {name!r}; its inputs: {', '.join(real)}")
        # a dim_value of 0 or -1 (some exporters write -1 for "any") is no size at all
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                for d in real[name].type.tensor_type.shape.dim]
        if len(dims) != spec.rank:
            raise UsageError(f"--input {name}: the spec has {spec.rank} dimensions, input {name!r} has {len(dims)}")
        checks, vary = spec.checks([d or 1 for d in dims]), spec.varying()
        ref[name] = [d if d is not None else checks[0][i] for i, d in enumerate(dims)]
        for i, d in enumerate(dims):
            if i not in vary and d is not None and d != checks[0][i]:
                raise UsageError(f"--input {name}: dimension {i} is {d} in the model, the spec fixes it to "
                                 f"{checks[0][i]}")
        probe[name] = [next((c[i] for c in checks if c[i] != ref[name][i]), ref[name][i]) if i in vary
                       else ref[name][i] for i in range(len(dims))]
        symbols[name] = [f"{name}_dim{i}" if i in vary else checks[0][i] for i in range(len(dims))]
    for name, vi in real.items():  # inputs left alone: symbolic dims run at 1
        if name not in specs:
            ref[name] = probe[name] = [max(d.dim_value, 1) for d in vi.type.tensor_type.shape.dim]
    return ref, probe, symbols


def make_flexible(model_or_path, specs, custom_ops: dict | None = None):
    """Make the inputs named in `specs` flexible; return (ModelProto, ShapesReport).

    `specs`: ``{"x": "1..32,3,8,8"}``, ``["x=1..32,3,8,8"]`` or InputSpec values. `custom_ops`
    (``{"domain.OpType": class or "module:Class"}``, `quantzoo.customops`) run the model's custom
    layers in the check. Raises QuantzooError naming the node when the graph keeps a dimension
    fixed, or when the result does not run at a promised shape or differs from the original at
    the original shape.
    """
    import onnx

    specs = _specs(specs)
    original = onnx.load(str(model_or_path)) if isinstance(model_or_path, (str, Path)) else model_or_path
    model = onnx.ModelProto()
    model.CopyFrom(original)
    ref, probe_dims, symbols = _plan(model, specs)
    report = ShapesReport({n: {**s.record(), "original": ref[n]} for n, s in specs.items()}, symbols,
                          {n: ref[n] for n in specs})
    sk = skeleton(model)
    orig = infer(sk, ref)
    for _ in range(2 * len(model.graph.node) + 1):  # each pass rewrites one node, none more than twice
        probe = infer(sk, probe_dims)
        try:
            step = scan(model.graph, orig, probe)
        except Blocked as e:
            raise QuantzooError(f"cannot make {', '.join(specs)} flexible: {e}") from None
        if step is None:
            break
        report.rewrites.append(f"{label(model.graph.node[step.index], step.index)}: {step.text}")
        for g in (model.graph, sk.graph):
            retarget(g, step.index, step.changes)
    else:
        raise QuantzooError(f"rewriting the shape constants did not settle (last: {report.rewrites[-1]})")
    declare(model, sk, symbols)
    del model.metadata_props[:]
    model.metadata_props.extend(p for p in original.metadata_props if p.key != METADATA_KEY)
    model.metadata_props.add(key=METADATA_KEY, value=json.dumps(report.inputs, sort_keys=True))
    _verify(original, model, specs, ref, report, custom_ops)
    return model, report


def feeds(model, shapes: dict[str, list[int]], seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs (standard normal, a fixed seed; zeros for integer inputs) at `shapes`."""
    from onnx.helper import tensor_dtype_to_np_dtype

    rng = np.random.default_rng(seed)
    out = {}
    for vi in model.graph.input:
        if vi.name in shapes:
            dtype = tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)
            x = rng.standard_normal(shapes[vi.name]) if np.issubdtype(dtype, np.floating) else \
                np.zeros(shapes[vi.name])
            out[vi.name] = x.astype(dtype)
    return out


def _session(model, custom_ops: dict | None = None):
    import onnxruntime as ort

    from .customops import session_options

    so = session_options(custom_ops, model) if custom_ops else ort_options()
    so.log_severity_level = 4  # the failure reaches the user in our own error
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def check_shapes(specs: dict[str, InputSpec], ref: dict[str, list[int]]) -> list[dict[str, list[int]]]:
    """The shapes a promise is checked at: every combination of the inputs' bounds or enumerated
    shapes, thinned out evenly to at most MAX_CHECKS (the ends kept).

    >>> check_shapes({"x": parse_spec("x=1..32,64")}, {"x": [1, 64]})
    [{'x': [1, 64]}, {'x': [32, 64]}]
    """
    names = list(specs)
    combos = list(itertools.product(*(specs[n].checks(ref[n]) for n in names)))
    if len(combos) > MAX_CHECKS:
        combos = [combos[round(i * (len(combos) - 1) / (MAX_CHECKS - 1))] for i in range(MAX_CHECKS)]
    return [{n: list(s) for n, s in zip(names, combo)} for combo in combos]


def promise(model) -> tuple[dict[str, InputSpec], dict[str, list[int]]] | None:
    """The promise a flexible model carries in its metadata: (specs, original shapes), or None.

    >>> import onnx
    >>> m = onnx.ModelProto()
    >>> _ = m.metadata_props.add(key=METADATA_KEY, value='{"x": {"ranges": [[1, 32], [64, 64]], "original": [1, 64]}}')
    >>> specs, ref = promise(m)
    >>> specs["x"].ranges, ref
    (((1, 32), (64, 64)), {'x': [1, 64]})
    """
    raw = next((p.value for p in model.metadata_props if p.key == METADATA_KEY), None)
    if raw is None:
        return None
    doc = json.loads(raw)
    specs = {n: InputSpec(n, ranges=tuple(tuple(r) for r in d["ranges"])) if "ranges" in d
             else InputSpec(n, shapes=tuple(tuple(s) for s in d["shapes"])) for n, d in doc.items()}
    return specs, {n: list(d["original"]) for n, d in doc.items()}


def _verify(original, model, specs: dict[str, InputSpec], ref: dict, report: ShapesReport,
            custom_ops: dict | None = None) -> None:
    """Run `model` at every promised bound or shape, and against `original` at `ref`."""
    from .customops import run
    from .runtimes import short_error

    names = list(specs)
    try:
        sess = _session(model, custom_ops)
    except Exception as e:  # noqa: BLE001 - onnxruntime's own message names what it refused
        if "is not a registered function/op" in str(e):
            from .customops import check

            check(model, custom_ops or {})  # a custom layer without its class: the error says how to give one
        raise QuantzooError(f"onnxruntime cannot load the flexible model: {short_error(e)}") from None
    for checked in check_shapes(specs, ref):
        shapes = {**ref, **checked}
        try:
            run(sess, None, feeds(model, shapes))
        except Exception as e:  # noqa: BLE001
            raise QuantzooError(f"the flexible model does not run at {_fmt({n: shapes[n] for n in names})}: "
                                f"{short_error(e)}") from None
        report.checked.append({n: shapes[n] for n in names})
    at_ref = feeds(model, ref, seed=1)
    want, got = run(_session(original, custom_ops), None, at_ref), run(sess, None, at_ref)
    diffs = [float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0.0))
             for a, b in zip(want, got)]
    report.max_abs_diff = max(diffs, default=0.0)
    if any(a.shape != b.shape for a, b in zip(want, got)) or not report.max_abs_diff <= TOLERANCE:
        raise QuantzooError(f"at the original shape {_fmt(report.original)} the flexible model's outputs differ from "
                            f"the original's (max |difference| {report.max_abs_diff:.3g}, allowed {TOLERANCE})")


def cli_shapes(args) -> int:
    """`quantzoo shapes IN.onnx -o OUT.onnx --input NAME=SPEC ...`: write the flexible model, print the report."""
    import onnx

    from .cache import atomic_path
    from .customops import parse_cli

    model, report = make_flexible(args.model, args.inputs, parse_cli(getattr(args, "custom_op", None)) or None)
    with atomic_path(args.output) as tmp:
        onnx.save(model, str(tmp))
    for line in report.lines():
        print(line)
    print(f"wrote {args.output}")
    return 0
