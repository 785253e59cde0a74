"""The ONNX runtimes an artifact is checked in, and the runtime compatibility matrix.

One `Runtime` record per runtime in `RUNTIMES` (ARCHITECTURE.md, "One record per concept"): its
name, how to ask its version (None: not installed), how to run a model file on a few inputs,
and how much of the evaluation it can afford. `compatibility` runs every installed runtime on
the same feeds and measures each against onnxruntime's outputs of the same file, which is
what the build records for every artifact and its float model (pipeline stage "runtimes").
A model with custom ops (`quantzoo.customops`) runs where its implementation classes can be
registered (onnxruntime); elsewhere the matrix records which op has no implementation there.

>>> sorted(RUNTIMES)
['onnx-reference', 'onnxruntime', 'openvino']
>>> RUNTIMES["onnxruntime"].available()
True
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from .threads import openvino_config, ort_options

REFERENCE = "onnxruntime"          # every other runtime's outputs are measured against this one's
FLOAT_FAILS = "float model does not run either"


@dataclass(frozen=True)
class Runtime:
    """One ONNX runtime.

    `run(model_path, feeds, custom_ops)` runs the model once per feed ({input name: array}) and
    returns, per feed, the graph's outputs in graph order; it raises whatever the runtime raises.
    `custom_ops` (``{"domain.OpType": class}``) is given only to a runtime whose record says it
    runs them (`runs_custom_ops`).
    `samples` is how many evaluation samples it runs; models over `max_parameters` are skipped
    (with the reason recorded), and an artifact is not run when the float model took longer
    than `max_seconds` (the float model always runs once).
    """

    name: str
    label: str                                    # for people: the site's table header
    version: Callable[[], str | None]             # None when the runtime is not installed
    run: Callable[[str, list[dict], dict | None], list[list[np.ndarray]]]
    samples: int = 2
    max_parameters: int | None = None
    max_seconds: float | None = None
    runs_custom_ops: bool = False                 # registers quantzoo.customops implementation classes

    def available(self) -> bool:
        return self.version() is not None

    def skip_reason(self, parameters: int | None) -> str | None:
        """Why this runtime is not run on a model of `parameters` weights, or None.

        >>> RUNTIMES["onnx-reference"].skip_reason(25_000_000)
        'skipped: 25.0M parameters, over the 1.0M this runtime is run on'
        """
        if self.max_parameters is not None and parameters is not None and parameters > self.max_parameters:
            return (f"skipped: {parameters / 1e6:.1f}M parameters, over the {self.max_parameters / 1e6:.1f}M "
                    "this runtime is run on")
        return None

    def custom_reason(self, custom: list[str]) -> str | None:
        """Why this runtime cannot run a model with the custom ops `custom`, or None.

        >>> RUNTIMES["openvino"].custom_reason(["ai.quantzoo.seed.GridSampler"])
        'custom op ai.quantzoo.seed.GridSampler has no implementation in OpenVINO'
        >>> RUNTIMES["onnxruntime"].custom_reason(["ai.quantzoo.seed.GridSampler"]) is None
        True
        """
        if not custom or self.runs_custom_ops:
            return None
        return f"custom op{'s' if len(custom) > 1 else ''} {', '.join(custom)} ha{'ve' if len(custom) > 1 else 's'} " \
               f"no implementation in {self.label}"


def _module_version(module: str) -> str | None:
    import importlib

    try:
        return str(importlib.import_module(module).__version__)
    except ImportError:
        return None


def output_names(model_path: str) -> list[str]:
    """The graph outputs of a model file, in graph order (external data is not read)."""
    import onnx

    return [o.name for o in onnx.load(str(model_path), load_external_data=False).graph.output]


def _run_onnxruntime(model_path: str, feeds: list[dict], custom_ops: dict | None = None) -> list[list[np.ndarray]]:
    import onnxruntime as ort

    from .customops import run, session_options

    so = session_options(custom_ops, model_path) if custom_ops else ort_options()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    return [list(run(sess, None, feed)) for feed in feeds]


def _run_openvino(model_path: str, feeds: list[dict], custom_ops: dict | None = None) -> list[list[np.ndarray]]:
    import openvino as ov

    # f32 inference: on CPUs with bf16 units OpenVINO would otherwise compute in bf16 by default
    compiled = ov.Core().compile_model(str(model_path), "CPU", {"INFERENCE_PRECISION_HINT": "f32", **openvino_config()})
    names = output_names(model_path)
    out = []
    for feed in feeds:
        res = compiled(feed)
        out.append([np.asarray(res[compiled.output(n)]) for n in names])
    return out


def _run_reference(model_path: str, feeds: list[dict], custom_ops: dict | None = None) -> list[list[np.ndarray]]:
    from onnx.reference import ReferenceEvaluator

    ref = ReferenceEvaluator(str(model_path))
    return [[np.asarray(a) for a in ref.run(None, feed)] for feed in feeds]


RUNTIMES: dict[str, Runtime] = {r.name: r for r in (
    Runtime("onnxruntime", "ONNX Runtime", functools.cache(lambda: _module_version("onnxruntime")),
            _run_onnxruntime, runs_custom_ops=True),
    Runtime("openvino", "OpenVINO", functools.cache(lambda: _module_version("openvino")), _run_openvino),
    # the pure-numpy evaluator of the onnx package: slow (ppocr-v4-det, 1.2M parameters: 10 s for one
    # 480×640 sample, where onnxruntime takes milliseconds), so one sample and models up to 1M parameters
    Runtime("onnx-reference", "ONNX reference", functools.cache(lambda: _module_version("onnx")),
            _run_reference, samples=1, max_parameters=1_000_000, max_seconds=30.0),
)}


def runtime_identity() -> dict[str, dict]:
    """What decides a matrix besides the model: each installed runtime's version and limits
    (part of the cache key, so a new runtime version is measured again).

    >>> runtime_identity()["onnxruntime"]["samples"]
    2
    """
    return {r.name: {"version": r.version(), "samples": r.samples, "max_parameters": r.max_parameters,
                     "max_seconds": r.max_seconds}
            for r in RUNTIMES.values() if r.available()}


def short_error(e: BaseException) -> str:
    """What a runtime raised, in one line of at most 200 characters: its message lines joined,
    without the source-location lines OpenVINO puts first.

    >>> short_error(RuntimeError("Exception from src/inference/src/cpp/core.cpp:132:\\nCheck 'false' failed at "
    ...     "x.cpp:151:\\nModel wasn't fully converted.\\nSummary:\\n-- No conversion rule found for operations: a.B"))
    "RuntimeError: Model wasn't fully converted. No conversion rule found for operations: a.B"
    """
    lines = [ln.strip().removeprefix("-- ") for ln in str(e).splitlines()]
    lines = [ln for ln in lines if ln and not _LOCATION.match(ln)]
    text = f"{type(e).__name__}: {' '.join(lines)}".rstrip(": ")
    return text if len(text) <= 200 else text[:199] + "…"


_LOCATION = re.compile(r"^(Exception from \S+:\d+:|Check '.*' failed at \S+:\d+:|Summary:)$")


def max_abs_diff(got: list[list[np.ndarray]], want: list[list[np.ndarray]]) -> float:
    """The largest absolute difference over every output of every feed; NaN where both are NaN
    counts as equal. Raises ValueError naming what does not match (count, shape, values).

    >>> max_abs_diff([[np.array([1.0, 2.0])]], [[np.array([1.0, 2.5])]])
    0.5
    """
    worst = 0.0
    for g_outs, w_outs in zip(got, want, strict=True):
        if len(g_outs) != len(w_outs):
            raise ValueError(f"gives {len(g_outs)} outputs, onnxruntime {len(w_outs)}")
        for i, (g, w) in enumerate(zip(g_outs, w_outs)):
            g, w = np.asarray(g), np.asarray(w)
            if g.shape != w.shape:
                raise ValueError(f"output {i} has shape {list(g.shape)}, onnxruntime's {list(w.shape)}")
            if g.dtype.kind not in "biuf" or w.dtype.kind not in "biuf":
                if not np.array_equal(g, w):
                    raise ValueError(f"output {i} (non-numeric) differs from onnxruntime's")
                continue
            if g.size == 0:
                continue
            g64, w64 = g.astype(np.float64), w.astype(np.float64)
            diff = np.abs(g64 - w64)
            diff[(g64 == w64) | (np.isnan(g64) & np.isnan(w64))] = 0.0
            if not np.all(np.isfinite(diff)):
                raise ValueError(f"output {i} has NaN or infinity where onnxruntime's does not")
            worst = max(worst, float(diff.max()))
    return worst


def compatibility(model_path: str | Path, feeds: list[dict], *, parameters: int | None = None,
                  float_matrix: dict | None = None, custom_ops: dict | None = None) -> dict[str, dict]:
    """Run every installed runtime on `feeds` (each runtime its first `samples`), and return
    ``{runtime: {"runs", "max_abs_diff", "error"}}``.

    ``max_abs_diff`` is measured against onnxruntime's outputs of the same file on the same feeds
    (None for onnxruntime itself, or when either did not run). With `float_matrix` (the float
    model's own matrix) the file is an artifact: it is held to what its float model does, so a
    runtime that did not run the float model is not run and is recorded with the float's reason.
    `custom_ops` (``{"domain.OpType": class}``) run the model's custom ops where the runtime can;
    a runtime that cannot is recorded with the op it lacks.
    """
    from .customops import custom_nodes

    path = str(model_path)
    custom = sorted({n.key for n in custom_nodes(path)})
    need = max((r.samples for r in RUNTIMES.values() if r.available()), default=0)
    want = None
    try:
        want = _run_onnxruntime(path, feeds[:need], custom_ops)
    except Exception as e:  # noqa: BLE001 (any runtime error is a result here)
        ref_error = short_error(e)
    matrix: dict[str, dict] = {}
    for rt in RUNTIMES.values():
        if not rt.available():
            continue
        if rt.name == REFERENCE:
            matrix[rt.name] = _row(want is not None, None, None if want is not None else ref_error)
            continue
        held = (float_matrix or {}).get(rt.name)
        reason = rt.skip_reason(parameters) or rt.custom_reason(custom)
        if reason is None and held is not None and not held.get("runs"):
            reason = held.get("error") if str(held.get("error", "")).startswith("skipped") else FLOAT_FAILS
        if reason is None and held is not None and rt.max_seconds is not None and held.get("seconds", 0) > rt.max_seconds:
            reason = f"skipped: took {held['seconds']:.0f} s on the float model, over {rt.max_seconds:.0f} s"
        if reason is not None:
            matrix[rt.name] = _row(False, None, reason)
            continue
        matrix[rt.name] = _measure(rt, path, feeds[:rt.samples], want, custom_ops if rt.runs_custom_ops else None)
    return matrix


def _measure(rt: Runtime, path: str, feeds: list[dict], want: list[list[np.ndarray]] | None,
             custom_ops: dict | None) -> dict:
    t0 = time.perf_counter()
    try:
        got = rt.run(path, feeds, custom_ops)
    except Exception as e:  # noqa: BLE001
        return _row(False, None, short_error(e))
    seconds = round(time.perf_counter() - t0, 3)
    if want is None:
        return _row(True, None, None, seconds)
    try:
        return _row(True, max_abs_diff(got, want[:len(got)]), None, seconds)
    except ValueError as e:
        return _row(True, None, str(e), seconds)


def _row(runs: bool, diff: float | None, error: str | None, seconds: float | None = None) -> dict:
    row = {"runs": runs, "max_abs_diff": None if diff is None else float(f"{diff:.3g}"), "error": error}
    return row | {"seconds": seconds} if seconds is not None else row
