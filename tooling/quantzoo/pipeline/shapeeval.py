"""Agreement at each promised shape on the evaluation data, in the build's `shapes` stage
(ARCHITECTURE.md, "Flexible shapes").

`flexible.measure` runs a file at every checked shape on random inputs; here each checked shape
of a variant also gets the task's own metrics against the float model on real data at that
shape. At the size the model's preprocessing produces anyway (the one non-batch input shape of
its evaluation batches) that is the variant's comparison. At any other size the evaluation part
of the model's dataset (at most `SAMPLES` samples, spread over it) is preprocessed again with
the preprocessor's size set to the shape (`params_at`), the float model and the variant run on
it, and the comparison's primary metrics and SNR are kept, each with n and its 95 % interval.
The float outputs at each size are cached like any evaluation's (``derived/float-outputs/``), so
every variant of a model reuses them. A variant that runs on random inputs but not on the real
data at a shape is marked as not running there, with the reason.

The record added to a verified row: ``"evaluation": {"n", "batch", "resized", "metrics":
{output: {metric: summary}}}`` (`catalog.shapes.ShapeEvaluation`).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

SAMPLES = 16     # evaluation samples per re-preprocessed size, at most (the cold catalog build's budget)
MAX_BATCH = 32   # the largest batch the evaluation at a size runs at
# When what is measured here changes, bump keys.SHAPES_REVISION (cached checks are keyed by it).


def _layout(params: dict, dims: list[int]) -> str:
    """NCHW unless the params say otherwise or the shape ends in 1 or 3 channels and starts elsewhere."""
    if params.get("layout"):
        return str(params["layout"]).upper()
    return "NHWC" if dims[-1] in (1, 3) and dims[0] not in (1, 3) else "NCHW"


def _image_at(params: dict, height: int, width: int) -> dict:
    """`image` params giving a [height, width] input: a centre crop of that size out of an image
    resized as before but scaled by as much as the crop grew; else a plain resize to it.

    >>> _image_at({"resize": "shorter", "shorter_side": 256, "crop": [224, 224]}, 320, 320)
    {'resize': 'shorter', 'shorter_side': 366, 'crop': [320, 320]}
    >>> _image_at({"resize": "limit", "limit_side_len": 640, "mean": 0.5}, 960, 960)
    {'mean': 0.5, 'resize': 'exact', 'size': [960, 960]}
    """
    crop = params.get("crop")
    if crop and params.get("resize") in ("shorter", "exact"):
        grow = max(height / int(crop[0]), width / int(crop[1]))
        out = dict(params, crop=[height, width])
        if params["resize"] == "shorter":
            out["shorter_side"] = math.ceil(float(params.get("shorter_side", 256)) * grow - 1e-9)
        else:
            out["size"] = [math.ceil(int(s) * grow - 1e-9) for s in params["size"]]
        return out
    keep = {k: v for k, v in params.items()
            if k not in ("resize", "size", "crop", "limit_side_len", "limit_type", "multiple_of", "shorter_side")}
    return {**keep, "resize": "exact", "size": [height, width]}


def _text_line_at(params: dict, height: int, width: int) -> dict:
    """`text-line-image` params giving a [height, width] line (resized to the height, padded to the width).

    >>> _text_line_at({"height": 48, "width": 320, "pad_value": 255}, 48, 1280)
    {'height': 48, 'width': 1280, 'pad_value': 255}
    """
    return dict(params, height=height, width=width)


_SIZED = {"image": _image_at, "text-line-image": _text_line_at}  # preprocessors with an image size


def params_at(preprocessing: dict, dims: list[int]) -> dict | None:
    """The preprocessing params that give one sample of non-batch shape `dims` ([C, H, W] or
    [H, W, C]), or None when the adapter has no size to set (bytes, arrays).

    >>> params_at({"adapter": "text-line-image", "params": {"height": 48, "width": 320}}, [3, 48, 32])
    {'height': 48, 'width': 32}
    >>> params_at({"adapter": "arrays"}, [3, 48, 32]) is None
    True
    """
    fn = _SIZED.get(preprocessing.get("adapter"))
    if fn is None or len(dims) != 3:
        return None
    params = dict(preprocessing.get("params") or {})
    h, w = (dims[1], dims[2]) if _layout(params, dims) == "NCHW" else (dims[0], dims[1])
    return fn(params, int(h), int(w))


def headline(metrics: dict) -> dict:
    """The metrics kept per shape: each output's primary metrics (`compare.metrics.Metric.primary`)
    and SNR.

    >>> s = {"mean": 1.0, "n": 2}
    >>> headline({"y": {"top1_agreement": s, "top5_agreement": s, "snr_db": s}})
    {'y': {'snr_db': {'mean': 1.0, 'n': 2}, 'top1_agreement': {'mean': 1.0, 'n': 2}}}
    """
    from ..compare.metrics import METRICS

    def kept(m: str) -> bool:
        return m == "snr_db" or (m in METRICS and METRICS[m].primary is not None)

    return {out: {m: ms[m] for m in sorted(ms) if kept(m)} for out, ms in metrics.items()}


def own_dims(batches: list[dict], name: str) -> tuple[int, ...] | None:
    """The one non-batch shape of input `name` in the evaluation batches, or None when it varies.

    >>> import numpy as np
    >>> own_dims([{"x": np.zeros((2, 3, 4))}, {"x": np.zeros((1, 3, 4))}], "x")
    (3, 4)
    """
    found = {tuple(b[name].shape[1:]) for b in batches if name in b}
    return found.pop() if len(found) == 1 else None


def _batch(spec, batches: list[int]) -> int:
    """The batch the data runs at: an enumerated promise's smallest checked batch (a last, partial
    batch must be accepted too), else the largest checked batch up to MAX_BATCH."""
    small = sorted(set(batches))
    if spec.shapes is not None:
        return small[0]
    return max((b for b in small if b <= MAX_BATCH), default=small[0])


def _groups(doc: dict, specs: dict, ref: dict) -> dict[tuple[int, ...], list[tuple[int, int]]]:
    """(row index, batch) of the verified shapes that run, by their non-batch dims."""
    from ..shapes import check_shapes

    name = next(iter(specs))
    out: dict[tuple[int, ...], list[tuple[int, int]]] = {}
    for i, (row, checked) in enumerate(zip(doc["verified"], check_shapes(specs, ref))):
        if row.get("runs"):
            out.setdefault(tuple(checked[name][1:]), []).append((i, checked[name][0]))
    return out


def _prepared(model, registry, cache, float_path: Path, params: dict, batch: int, dims: tuple):
    """The float model's outputs on the evaluation data preprocessed with `params` (cached)."""
    from ..compare import prepare
    from ..errors import QuantzooError

    resized = dataclasses.replace(model, preprocessing={**model.preprocessing, "params": params})
    try:
        return prepare(float_path, None, model=resized, registry=registry, cache=cache, limit=SAMPLES,
                       batch_size=batch)
    except Exception as e:  # noqa: BLE001 - the float model itself: every variant fails the same way
        from ..runtimes import short_error

        raise QuantzooError(f"the float model does not run on the evaluation data preprocessed to the promised "
                            f"size {'x'.join(map(str, dims))} ({params}): {short_error(e)}") from None


def _own(comparison: dict) -> dict:
    """The evaluation at the preprocessing's own size: the variant's comparison."""
    return {"n": comparison["dataset"]["n"], "batch": comparison["dataset"]["batch_size"], "resized": False,
            "metrics": headline(comparison["outputs"])}


def _at_size(model, registry, cache, float_path: Path, art_path: Path, dims: tuple, batch: int) -> dict | str | None:
    """The evaluation on the data re-preprocessed at `dims`; the reason when the variant does not
    run on it; None when the preprocessor has no size to set."""
    from ..runtimes import short_error

    params = params_at(model.preprocessing, list(dims))
    if params is None:
        return None
    prepared = _prepared(model, registry, cache, Path(float_path), params, batch, dims)
    try:
        c = prepared.compare(art_path)
    except Exception as e:  # noqa: BLE001 - onnxruntime's own message says why
        return f"on the evaluation data at this size: {short_error(e)}"
    return {"n": c.dataset["n"], "batch": batch, "resized": True, "metrics": headline(c.metrics)}


def add_evaluations(doc: dict, model, registry, cache, float_path: Path, art_path: Path, evaluation,
                    comparison: dict) -> dict:
    """`doc` (a variant's `flexible.measure`) with an ``evaluation`` on each running row of a
    single-input promise: the comparison's at the preprocessing's own size, a new one at the
    others (`evaluation()` gives the prepared data, whose batches show the own size). A row whose
    shape fails on the real data gets ``runs: false`` and the error."""
    import onnx

    from ..shapes import promise

    found = promise(onnx.load(str(art_path), load_external_data=False))
    if found is None or len(found[0]) != 1 or not getattr(model, "dataset", None):
        return doc
    specs, ref = found
    ev = evaluation()
    if len(ev.signature[0]) != 1:
        return doc  # inputs besides the promised one: how to size their data is not known
    own = own_dims(ev.batches, next(iter(specs)))
    for dims, rows in _groups(doc, specs, ref).items():
        if own is not None and dims == own:
            result = _own(comparison)
        else:
            batch = _batch(next(iter(specs.values())), [b for _, b in rows])
            result = _at_size(model, registry, cache, float_path, art_path, dims, batch)
        for i, _ in rows:
            if isinstance(result, str):
                doc["verified"][i] |= {"runs": False, "error": result}
            elif result is not None:
                doc["verified"][i]["evaluation"] = result
    return doc
