"""A manifest's `shapes` in the build: the float model made flexible once (every variant is
quantized from it, so each inherits the promise), then every model file run at each promised
shape against the float model, and timed at batch 1, 8 and 32 (ARCHITECTURE.md, "Flexible shapes").

A measurement (`measure`) is JSON: ``{"accepted": <the quantzoo.shapes promise>, "verified":
[{"shape", "runs", "max_abs_diff", "top1_agreement", "error"?}], "throughput": {"1": samples/s}}``.
Throughput is a measurement of the machine that ran the build.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..cache import Cache, atomic_path
from ..errors import QuantzooError
from .keys import flexible_key
from .store import flexible_path
from ..threads import ort_options

SEED = 0            # the random inputs at every shape
BATCHES = (1, 8, 32)
TIMED_RUNS = 3      # per batch size, after one warm-up run: at least this many runs ...
MIN_SECONDS = 0.2   # ... and at least this long; the median run is what counts (a busy machine's spikes)
MAX_KEPT_BYTES = 64 << 20  # the float model's outputs at the checked shapes are kept for the variants up to this
# When what `measure` measures changes, bump keys.SHAPES_REVISION (cached checks are keyed by it).


def flexible_float(model, float_path: Path, float_sha256: str, cache: Cache) -> Path:
    """The float model with the manifest's `shapes` applied (`shapes.make_flexible`), cached by
    the float's sha256 and the shapes; a graph that cannot follow is a QuantzooError naming the node.
    A model's custom layers run in the check with the classes of its ``custom_ops``."""
    import onnx

    from ..shapes import make_flexible

    key = flexible_key(float_sha256, model.shapes)
    out = flexible_path(cache, key)
    with cache.lock(f"flexible-{key[:24]}"):
        if not out.is_file():
            ops = None
            if getattr(model, "custom_ops", None):
                from ..compare.core import model_custom_ops

                ops = model_custom_ops(model, cache)
            flexible, _ = make_flexible(float_path, list(model.shapes), ops)
            with atomic_path(out) as tmp:
                onnx.save(flexible, str(tmp))
    return out


def shape_text(shapes: dict[str, list[int]]) -> str:
    """How a checked shape is written: ``1x64`` for one input, ``x=1x64 y=2x3`` for several.

    >>> shape_text({"x": [1, 64]}), shape_text({"x": [1, 64], "y": [2]})
    ('1x64', 'x=1x64 y=2')
    """
    texts = {n: "x".join(map(str, s)) for n, s in shapes.items()}
    return next(iter(texts.values())) if len(texts) == 1 else " ".join(f"{n}={t}" for n, t in texts.items())


def _session(path: Path, custom_ops: dict | None):
    """An onnxruntime session with compare's options (`compare.core`)."""
    import onnxruntime as ort

    from ..customops import session_options

    so = session_options(custom_ops, path) if custom_ops else ort_options()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def difference(want: list, got: list) -> tuple[float | None, float | None]:
    """(max |difference| over all outputs, top-1 agreement of the first output when it is class
    scores [N, classes]; None for any other rank, where a top-1 means nothing); (None, None) when
    the shapes differ.

    >>> a = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> difference([a], [a + [[0.0, 0.0], [0.0, 2.0]]])
    (2.0, 0.5)
    >>> difference([np.zeros((1, 4, 3))], [np.ones((1, 4, 3))])  # per-step scores: no top-1
    (1.0, None)
    """
    if len(want) != len(got) or any(np.shape(a) != np.shape(b) for a, b in zip(want, got)):
        return None, None
    diff = max((float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)), initial=0.0))
                for a, b in zip(want, got)), default=0.0)
    first, other = np.asarray(want[0]), np.asarray(got[0])
    if first.ndim != 2 or first.size == 0:
        return diff, None
    return diff, float((first.argmax(axis=1) == other.argmax(axis=1)).mean())


def _others(model, promised: dict) -> dict[str, list[int]]:
    """Shapes of the inputs without a promise: their fixed sizes, 1 for a symbolic dimension."""
    inits = {t.name for t in model.graph.initializer}
    return {i.name: [d.dim_value or 1 for d in i.type.tensor_type.shape.dim]
            for i in model.graph.input if i.name not in inits and i.name not in promised}


def batch_shapes(specs: dict, ref: dict[str, list[int]]) -> dict[int, dict[str, list[int]]]:
    """The shapes throughput is timed at: per batch of BATCHES the promise accepts, when dimension
    0 of every promised input is flexible; else the original shape alone (under its batch size).

    >>> from quantzoo.shapes import parse_spec
    >>> batch_shapes({"x": parse_spec("x=1..16,64")}, {"x": [1, 64]})
    {1: {'x': [1, 64]}, 8: {'x': [8, 64]}}
    >>> batch_shapes({"x": parse_spec("x=2,8..64")}, {"x": [2, 8]})
    {2: {'x': [2, 8]}}
    """
    out = {}
    if all(0 in s.varying() for s in specs.values()):
        for b in BATCHES:
            shapes = {}
            for n, s in specs.items():
                if s.ranges is not None:
                    lo, hi = s.ranges[0]
                    shapes[n] = [b, *ref[n][1:]] if lo <= b and (hi is None or b <= hi) else None
                else:
                    shapes[n] = next((list(e) for e in s.shapes if e[0] == b), None)
            if all(v is not None for v in shapes.values()):
                out[b] = shapes
    if not out:
        first = next(iter(ref.values()))
        out[first[0] if first else 1] = {n: list(r) for n, r in ref.items()}
    return out


def _throughput(sess, model, shapes: dict[str, list[int]], batch: int) -> float:
    from ..shapes import feeds

    x = feeds(model, shapes, seed=SEED)
    sess.run(None, x)  # warm-up
    times: list[float] = []
    until = time.perf_counter() + MIN_SECONDS
    while len(times) < TIMED_RUNS or time.perf_counter() < until:
        t0 = time.perf_counter()
        sess.run(None, x)
        times.append(time.perf_counter() - t0)
    return round(batch / max(float(np.median(times)), 1e-9), 1)


def measure(path: Path, float_path: Path, custom_ops: dict | None = None,
            reference: dict[str, list[np.ndarray]] | None = None,
            keep: dict[str, list[np.ndarray]] | None = None) -> dict:
    """Run the model file `path` at every shape its promise is checked at (`shapes.check_shapes`)
    on random inputs of a fixed seed, against `float_path` (itself: no comparison), and time it.

    `reference` holds the float model's outputs on those inputs by shape text (`float_outputs`),
    so each variant runs only itself; a shape missing from it runs the float model here. When
    `path` is the float model, `keep` (a dict) receives its outputs by shape text."""
    import onnx

    from ..customops import run  # raises what a custom layer's class raised
    from ..runtimes import short_error
    from ..shapes import METADATA_KEY, check_shapes, feeds, promise

    model = onnx.load(str(path), load_external_data=False)
    found = promise(model)
    if found is None:
        raise QuantzooError(f"{path.name} carries no {METADATA_KEY} promise: its float model was not made flexible")
    specs, ref = found
    accepted = json.loads(next(p.value for p in model.metadata_props if p.key == METADATA_KEY))
    others = _others(model, specs)
    sess = _session(path, custom_ops)
    is_float = Path(path) == Path(float_path)
    ref_sess = None
    verified = []
    for checked in check_shapes(specs, ref):
        text = shape_text(checked)
        row = {"shape": text, "runs": False, "max_abs_diff": None, "top1_agreement": None}
        x = feeds(model, {**others, **checked}, seed=SEED)
        try:
            got = run(sess, None, x)
            row["runs"] = True
            if is_float and keep is not None:
                keep[text] = [np.asarray(a) for a in got]
            if not is_float:
                want = (reference or {}).get(text)
                if want is None:
                    ref_sess = ref_sess or _session(float_path, custom_ops)
                    want = run(ref_sess, None, x)
                row["max_abs_diff"], row["top1_agreement"] = difference(want, got)
        except Exception as e:  # noqa: BLE001 - onnxruntime's own message says why
            row["error"] = short_error(e)
        verified.append(row)
    throughput = {}
    for batch, shapes in batch_shapes(specs, ref).items():
        try:
            throughput[str(batch)] = _throughput(sess, model, {**others, **shapes}, batch)
        except Exception:  # noqa: BLE001 - a shape that does not run is reported in `verified`
            continue
    return {"accepted": accepted, "verified": verified, "throughput": throughput}


def save_outputs(path: Path, outputs: dict[str, list[np.ndarray]]) -> bool:
    """Keep the float model's outputs at the checked shapes for the variants' checks (one .npz,
    written atomically), unless they exceed MAX_KEPT_BYTES (then each variant runs the float
    model itself); whether they were kept."""
    if sum(a.nbytes for arrays in outputs.values() for a in arrays) > MAX_KEPT_BYTES:
        return False
    flat = {f"{i:03d}-{j:02d}": a for i, (_, arrays) in enumerate(sorted(outputs.items())) for j, a in enumerate(arrays)}
    names = json.dumps(sorted(outputs))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, __shapes__=np.frombuffer(names.encode("utf-8"), np.uint8), **flat)
    return True


def float_outputs(path: Path) -> dict[str, list[np.ndarray]] | None:
    """The float model's outputs `save_outputs` kept, by shape text, or None when there are none.

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "o.npz"
    >>> save_outputs(p, {"1x2": [np.ones((1, 2))], "4x2": [np.zeros((4, 2)), np.ones(3)]})
    True
    >>> {k: [a.shape for a in v] for k, v in float_outputs(p).items()}
    {'1x2': [(1, 2)], '4x2': [(4, 2), (3,)]}
    """
    try:
        with np.load(path) as z:
            names = json.loads(bytes(z["__shapes__"]).decode("utf-8"))
            out: dict[str, list[np.ndarray]] = {n: [] for n in names}
            for key in sorted(k for k in z.files if k != "__shapes__"):
                out[names[int(key[:3])]].append(z[key])
            return out
    except (OSError, ValueError, KeyError):
        return None


def shape_failure(result: dict | None) -> str | None:
    """Why a measured file fails its promise (it does not run at a promised shape), or None.

    >>> shape_failure({"verified": [{"shape": "1x64", "runs": True}, {"shape": "32x64", "runs": False, "error": "no"}]})
    'does not run at the promised shape 32x64: no'
    """
    bad = [r for r in (result or {}).get("verified", []) if not r.get("runs")]
    if not bad:
        return None
    return "; ".join(f"does not run at the promised shape {r['shape']}: {r.get('error') or 'unknown error'}"
                     for r in bad)
