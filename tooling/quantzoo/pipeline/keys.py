"""The cache key of every stored build result, one function per stage (pure).

A key hashes everything that decides the stored bytes, so a rerun with nothing changed finds
every result and a change anywhere upstream never serves an old one (ARCHITECTURE.md,
"The pipeline"):

    derived/artifacts/<key>.onnx (+ .json)   artifact_key: source sha256, variant spec, versions
    derived/comparisons/<key>.json           comparison_key: artifact and float sha256, evaluation data
    derived/previews/<key>[-input].png       preview_key: one model file's output map on one input
    derived/graph-info/<key>.json            graph_info_key: facts about a float model's graph
    derived/runtimes/<key>.json              compat_key: one model file's runtime compatibility matrix
    derived/flexible/<key>.onnx              flexible_key: a float model made flexible (manifest `shapes`)
    derived/shapes/<key>.json                shapes_key: one model file run at its promised shapes, timed

The keys of one model × variant are computed once, in `plan.JobKeys`.
"""

from __future__ import annotations

from .. import __version__
from ..cache import key_of


def artifact_key(source_sha256: str, spec: dict, version: str = __version__) -> str:
    """The cache key of a quantized artifact: source bytes, variant settings, tool version and
    the engine's own revision (so changed quantize code never serves an old artifact).

    >>> artifact_key("ab" * 32, {"mode": "fp16"}) == artifact_key("ab" * 32, {"mode": "fp16"})
    True
    >>> artifact_key("ab" * 32, {"mode": "fp16"}) == artifact_key("ab" * 32, {"mode": "fp16"}, "9.9")
    False
    """
    from ..quantize import ENGINE_REVISION

    return key_of("artifact", source_sha256, spec, version, ENGINE_REVISION)


def auto_spec(variant, model, identity: dict) -> dict:
    """What keys an auto variant's artifact besides its spec: the calibration data and
    preprocessing (`identity`), the threshold it meets and the search's own revision.

    >>> from types import SimpleNamespace as N
    >>> v = N(spec=lambda: {"mode": "auto", "target": None}, auto=True)
    >>> a = auto_spec(v, N(threshold={"metric": "m", "min": 0.9}), {"dataset": {"calibration": 0.2}})
    >>> a == auto_spec(v, N(threshold={"metric": "m", "min": 0.9}), {"dataset": {"calibration": 0.3}})
    False
    """
    from .autovariant import AUTO_REVISION

    return {**variant.spec(), "calibration": identity, "threshold": model.threshold, "auto_revision": AUTO_REVISION}


def evaluation_identity(model, dataset) -> dict:
    """Everything besides the two models that decides a comparison's numbers.

    >>> from types import SimpleNamespace as N
    >>> m = N(task="dense", preprocessing={"adapter": "arrays"}, labels=None, label_map=None)
    >>> evaluation_identity(m, None)["dataset"] is None
    True
    """
    ds = None
    if dataset is not None:
        ds = {"id": dataset.id, "source": dataset.source, "adapter": dataset.adapter,
              "params": dataset.params or {}, "labels": dataset.labels}
        if getattr(dataset, "calibration", None):  # which samples are evaluated
            ds["calibration"] = dataset.calibration
    identity = {"task": model.task, "preprocessing": model.preprocessing, "labels": model.labels,
                "label_map": model.label_map, "dataset": ds}
    if getattr(model, "custom_ops", None):  # their implementations (class, source sha256) decide the outputs
        identity["custom_ops"] = model.custom_ops
    return identity


def comparison_key(artifact_sha256: str, float_sha256: str, identity: dict, version: str = __version__,
                   judge: dict | None = None) -> str:
    """The cache key of a comparison: artifact bytes, float bytes, evaluation data, tool version
    and the metrics' own revision (so a changed metric definition is never served from cache);
    with a judge model (`compare.judge.identity`: its float sha256 and manifest), that too.

    >>> comparison_key("a" * 64, "f" * 64, {}) == comparison_key("b" * 64, "f" * 64, {})
    False
    >>> j1, j2 = {"float_sha256": "1"}, {"float_sha256": "2"}
    >>> comparison_key("a" * 64, "f" * 64, {}, judge=j1) == comparison_key("a" * 64, "f" * 64, {}, judge=j2)
    False
    """
    from ..compare.metrics import REVISION

    return key_of("comparison", artifact_sha256, float_sha256, identity, version, REVISION, *([judge] if judge else []))


def preview_key(model_sha256: str, float_sha256: str, identity: dict, version: str = __version__,
                samples: list | tuple | None = None) -> str:
    """The cache key of an output-map preview of one model file (the float one or an artifact);
    `samples` (the manifest's, which pick the input shown) matter here and not to comparisons.

    >>> preview_key("a" * 64, "a" * 64, {}) == preview_key("a" * 64, "a" * 64, {}, samples=["x.png"])
    False
    """
    return key_of("preview", model_sha256, float_sha256, identity, version, list(samples or []))


def graph_info_key(float_sha256: str, version: str = __version__) -> str:
    """The cache key of a float model's graph facts (parameter count, operators, opset).

    >>> len(graph_info_key("a" * 64))
    64
    """
    return key_of("graph-info", float_sha256, version)


def compat_key(model_sha256: str, float_sha256: str, identity: dict, runtimes: dict,
               version: str = __version__) -> str:
    """The cache key of one model file's runtime compatibility matrix: its bytes, its float
    model's (an artifact is held to its float model's matrix), the evaluation data its feeds
    come from, and `runtimes` (`runtimes.runtime_identity()`: installed versions and limits).

    >>> k = compat_key("a" * 64, "f" * 64, {}, {"openvino": {"version": "2026.4"}})
    >>> k == compat_key("a" * 64, "f" * 64, {}, {"openvino": {"version": "2026.5"}})
    False
    """
    return key_of("runtimes", model_sha256, float_sha256, identity, runtimes, version)


def flexible_key(float_sha256: str, shapes: list | tuple, version: str = __version__) -> str:
    """The cache key of a float model made flexible by the manifest's `shapes` ("NAME=SPEC" strings).

    >>> flexible_key("a" * 64, ["x=1..32,64"]) == flexible_key("a" * 64, ["x=1..8,64"])
    False
    """
    return key_of("flexible", float_sha256, list(shapes), version)


# Bump when what `flexible.measure` or `shapeeval` measures changes: cached shape checks are keyed by it.
# 2: top-1 agreement only for [N, classes] outputs; throughput from the median of timed runs.
# 3: agreement on the evaluation data at each promised shape (`shapeeval`); custom ops run.
SHAPES_REVISION = 4


def shapes_key(model_sha256: str, float_sha256: str, shapes: list | tuple, ort_version: str,
               identity: dict | None = None, version: str = __version__) -> str:
    """The cache key of one model file's shape checks and throughput: its bytes, its float
    model's (the reference at each shape), the promised shapes, the onnxruntime version, and the
    evaluation data its agreement at each shape is measured on (`identity`,
    `evaluation_identity`) with the metrics' revision.

    >>> shapes_key("a" * 64, "f" * 64, ["x=N,64"], "1.23") == shapes_key("a" * 64, "f" * 64, ["x=N,64"], "1.24")
    False
    >>> shapes_key("a" * 64, "f" * 64, ["x=N,64"], "1.23", {"dataset": "a"}) == shapes_key("a" * 64, "f" * 64, ["x=N,64"], "1.23", {"dataset": "b"})
    False
    """
    from ..compare.kinds import REDUCE_REVISION
    from ..compare.metrics import REVISION

    return key_of("shapes", model_sha256, float_sha256, list(shapes), ort_version, identity, version,
                  SHAPES_REVISION, REVISION, REDUCE_REVISION)
