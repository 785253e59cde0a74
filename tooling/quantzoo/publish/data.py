"""What the site is made of, as plain data: the built results the pipeline hands over
(`BuiltModel`), the metric names and formats, the recommended variant and the file names inside
the site. Everything here is pure (no I/O); `index` turns it into index.json and `pages` into
the page contexts the templates lay out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..catalog import MetricSummary
from ..registry import Model, Variant


@dataclass(frozen=True)
class BuiltVariant:
    """One variant that made it through quantize and compare."""

    variant: Variant
    path: Path                   # the artifact (usually in the cache)
    sha256: str
    size: int
    comparison: dict             # Comparison.to_dict(): {"outputs": {out: {metric: {mean, std, n}}}, ...}
    preview: Path | None = None  # PNG of the output map on the preview input (map-output models)
    files: tuple = ()            # files the artifact reads beside it (external data): (path, {file, sha256, size})
    runtimes: dict = field(default_factory=dict)  # runtimes.compatibility: {runtime: {runs, max_abs_diff, error}}
    shapes: dict | None = None   # pipeline.flexible.measure: {accepted, verified, throughput}; None without `shapes`
    auto: dict | None = None     # an auto variant's {recipe, sensitivity, report} (pipeline/autovariant.py)


@dataclass(frozen=True)
class BuiltCustomOp:
    """One custom op the model's files need (`quantzoo.customops`): its node as the float model
    has it and its implementation, published beside the model as `file`."""

    domain: str
    op_type: str
    cls: str | None              # "module:Class" from the manifest's custom_ops
    description: str             # the node's doc_string (the conversion function's description)
    attributes: dict             # of its first node, as JSON values
    nodes: int                   # how many nodes of this op the float model has
    source: Path | None = None   # the implementation's source file (usually in the cache)
    sha256: str | None = None
    size: int | None = None

    @property
    def key(self) -> str:
        return f"{self.domain}.{self.op_type}"

    @property
    def file(self) -> str | None:
        """The implementation's name in the site: its module's name, so ``module:Class`` imports from it.

        >>> BuiltCustomOp("ai.x", "Op", "pkg.grid_sampler:GridSampler", "", {}, 1, Path("blobs/ab")).file
        'grid_sampler.py'
        """
        return self.cls.partition(":")[0].rpartition(".")[2] + ".py" if self.cls and self.source else None


@dataclass
class BuiltModel:
    """One model as the pipeline built it: the float file, facts about its graph, its variants."""

    model: Model
    float_path: Path
    float_sha256: str
    float_size: int
    info: dict                                   # graph facts: parameters, ops, opset, ...
    variants: list[BuiltVariant] = field(default_factory=list)
    failures: list = field(default_factory=list)  # pipeline.Failure: .variant (None: the model), .stage, .error
    preview_input: Path | None = None            # PNG of the preview input
    preview_float: Path | None = None            # PNG of the float model's output on it
    dataset: Any = None                          # registry Dataset used for the comparisons
    named: dict | None = None                    # compare.named.named_predictions: top labels on named samples
    float_runtimes: dict = field(default_factory=dict)  # the float model's runtimes.compatibility
    custom_ops: tuple[BuiltCustomOp, ...] = ()   # the custom ops its files need, with their implementations
    float_shapes: dict | None = None             # the float model's pipeline.flexible.measure
    grid: Any = None                             # publish.grid.PictureGrid (tasks with the picture grid)


# --- small pure helpers ---------------------------------------------------------------------

def finite(x: Any) -> float | None:
    """`x` as a float, or None when it is missing or not finite (JSON has no inf/nan).

    >>> finite(0.5), finite(float("inf")), finite(None)
    (0.5, None, None)
    """
    if x is None or isinstance(x, bool):
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def metric_mean(comparison: dict, output: str, metric: str) -> float | None:
    """The mean of one metric of one output in a comparison dict, or None (inf stays inf)."""
    try:
        v = comparison["outputs"][output][metric]["mean"]
    except (KeyError, TypeError):
        return None
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def summary(doc: dict) -> MetricSummary:
    """A comparison's ``{mean, std, n, ci95?, excluded?}`` as a catalog `MetricSummary`, with
    non-finite numbers (and an interval with one) as None.

    >>> summary({"mean": 0.97, "std": 0.17, "n": 100, "ci95": [0.915, 0.99], "excluded": 2})
    MetricSummary(mean=0.97, std=0.17, n=100, ci95=(0.915, 0.99), excluded=2)
    >>> summary({"mean": float("inf"), "std": None, "n": 3}).mean is None
    True
    """
    ci = doc.get("ci95")
    bounds = tuple(finite(x) for x in ci) if isinstance(ci, (list, tuple)) and len(ci) == 2 else None
    return MetricSummary(finite(doc.get("mean")), finite(doc.get("std")),
                         int(doc["n"]) if doc.get("n") is not None else None,
                         bounds if bounds is not None and None not in bounds else None,
                         int(doc.get("excluded") or 0))


def metric_summary(comparison: dict, output: str, metric: str) -> MetricSummary | None:
    """The summary of one metric of one output in a comparison dict, or None when not measured."""
    try:
        doc = comparison["outputs"][output][metric]
    except (KeyError, TypeError):
        return None
    return summary(doc) if isinstance(doc, dict) else None


def meets(threshold: dict, value: float | None, ci95: tuple[float, float] | None = None) -> bool:
    """Whether a metric satisfies a manifest threshold ``{output, metric, min|max}``, conservatively:
    with an interval `ci95`, its lower end must meet a ``min`` (its upper end a ``max``); without
    one, the value itself.

    >>> meets({"metric": "top1_agreement", "min": 0.99}, 0.995), meets({"metric": "cer", "max": 0.01}, 0.02)
    (True, False)
    >>> meets({"metric": "string_agreement", "min": 0.95}, 0.97, (0.915, 0.99))
    False
    >>> meets({"metric": "cer", "max": 0.05}, 0.01, (0.004, 0.03))
    True
    """
    is_min = "min" in threshold and threshold["min"] is not None
    if ci95 is not None:
        value = ci95[0] if is_min else ci95[1]
    if value is None:
        return False
    return value >= threshold["min"] if is_min else value <= threshold["max"]


def variant_meets(threshold: dict, variant: BuiltVariant) -> bool:
    """Whether a built variant meets its model's threshold under the conservative rule of `meets`."""
    s = metric_summary(variant.comparison, threshold["output"], threshold["metric"])
    return meets(threshold, metric_mean(variant.comparison, threshold["output"], threshold["metric"]),
                 s.ci95 if s else None)


def short_of_evidence(model: BuiltModel) -> list[BuiltVariant]:
    """The variants whose measured value meets the threshold but whose 95 % interval does not: the
    evaluation set is too small to show it (a perfect detector on a few photos), listed in order."""
    thr = model.model.threshold
    return [v for v in model.variants if not variant_meets(thr, v)
            and meets(thr, metric_mean(v.comparison, thr["output"], thr["metric"]))]


def recommend(model: BuiltModel) -> BuiltVariant | None:
    """The smallest variant that meets the manifest threshold by `meets` (the conservative end of
    its interval); ties: the one listed first. None when no variant meets it.
    """
    thr = model.model.threshold
    best = None
    for v in model.variants:
        if variant_meets(thr, v) and (best is None or v.size < best.size):
            best = v
    return best


def source_url(model: Model) -> str | None:
    """Where the float model comes from, for a person to open (`fetch.upstream_url` of its source).

    >>> from types import SimpleNamespace as M
    >>> source_url(M(source={"kind": "pypi", "package": "magika", "version": "1.0.3"}))
    'https://pypi.org/project/magika/1.0.3/'
    >>> source_url(M(source={"kind": "file", "path": "m.onnx"})) is None
    True
    """
    from ..fetch import upstream_url

    return upstream_url(model.source)


def source_sha256(model: Model) -> str | None:
    src = model.source
    if src.get("sha256"):
        return src["sha256"]
    w = src.get("weights")
    return w.get("sha256") if isinstance(w, dict) else None


def safe_href(url: Any) -> str | None:
    """`url` when it is an http(s) link, else None: a manifest never gets to inject `javascript:`.

    >>> safe_href("https://pypi.org/x"), safe_href("javascript:alert(1)"), safe_href(" HTTP://a ")
    ('https://pypi.org/x', None, 'HTTP://a')
    """
    if not isinstance(url, str):
        return None
    u = url.strip()
    return u if u.lower().startswith(("https://", "http://")) and not any(c in u for c in "\"'<>\x00 ") else None


# --- file names inside the site -------------------------------------------------------------

def float_file_name(model_id: str) -> str:
    return f"{model_id}-float.onnx"


def variant_file_name(model_id: str, variant_id: str) -> str:
    return f"{model_id}-{variant_id}.onnx"


def site_file(model_id: str, name: str) -> str:
    """Path of a published file relative to the site root."""
    return f"files/{model_id}/{name}"


def public_file(model_id: str, name: str, artifact_base_url: str | None) -> str:
    """The `file` field of index.json: relative to the site root, or absolute under the base URL.

    >>> public_file("m", "m-fp16.onnx", None), public_file("m", "m-fp16.onnx", "https://cdn.example/zoo/")
    ('files/m/m-fp16.onnx', 'https://cdn.example/zoo/m/m-fp16.onnx')
    """
    if artifact_base_url:
        return f"{artifact_base_url.rstrip('/')}/{model_id}/{name}"
    return site_file(model_id, name)
