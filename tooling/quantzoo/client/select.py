"""Choosing a variant of a catalog model (pure): by id, the recommended one, or by a size or
agreement constraint ranked by the model's primary metric.

The *primary metric* of a model is the first of `compare.metrics.primary_metrics()` that any of
its variants reports (on the first output, by name, that reports it).

`--min-agreement` is conservative, like the catalog's recommendation: when the index carries a
variant's 95 % interval (``ci95``), the interval's lower end must reach the bound; a variant
without an interval (an older catalog) is judged by its mean.
"""

from __future__ import annotations

import difflib

from ..catalog import FLOAT_VARIANT, CatalogIndex, ModelEntry, VariantEntry
from ..compare.metrics import higher_is_better, primary_metrics
from ..errors import QuantzooError, UsageError
from ..units import human_size


def find_model(index: CatalogIndex, model_id: str, where: str = "the catalog") -> ModelEntry:
    """The model entry with this id, or an error listing the ids that exist.

    >>> find_model(CatalogIndex((ModelEntry("a"),)), "a").id
    'a'
    """
    for m in index.models:
        if m.id == model_id:
            return m
    ids = [m.id for m in index.models]
    hint = _did_you_mean(model_id, ids)
    raise QuantzooError(f"no model {model_id!r} in {where}.{hint} Models there: {', '.join(ids) or 'none'}. "
                        "`quantzoo list` shows them with their tasks.")


def _did_you_mean(name: str, choices: list[str]) -> str:
    """A hint naming the closest choice: one that starts with `name`, else a near spelling.

    >>> _did_you_mean("magika", ["ppocr-v4-det", "magika-standard-v3"]), _did_you_mean("zzz", ["a"])
    (" Did you mean 'magika-standard-v3'?", '')
    """
    starts = [c for c in choices if c.startswith(name)]
    close = starts[:1] if len(starts) == 1 else difflib.get_close_matches(name, choices, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def primary_metric(model: ModelEntry) -> tuple[str, str] | None:
    """(output, metric) that ranks this model's variants, or None when it reports none of them.

    >>> from quantzoo.catalog import MetricSummary as S
    >>> v = VariantEntry("a", None, None, None, "a.onnx", 1, "0" * 64, {"map": {"cosine": S(1, 0, 1), "iou": S(1, 0, 1)}})
    >>> primary_metric(ModelEntry("m", variants=(v,)))
    ('map', 'iou')
    """
    for metric in primary_metrics():
        outputs = sorted({out for v in model.variants for out, ms in v.metrics.items() if metric in ms})
        if outputs:
            return outputs[0], metric
    return None


def agreement(variant: VariantEntry, key: tuple[str, str] | None) -> float | None:
    """The mean of the (output, metric) `key` for a variant, or None when it was not measured."""
    return None if key is None else variant.metric(*key)


def assured(variant: VariantEntry, key: tuple[str, str] | None) -> float | None:
    """What `--min-agreement` compares: the lower end of the (output, metric) `key`'s 95 % interval
    (the upper end for a lower-is-better metric), else its mean; None when it was not measured.

    >>> from quantzoo.catalog import MetricSummary as S
    >>> v = VariantEntry("a", None, None, None, "a.onnx", 1, "0" * 64, {"y": {"iou": S(0.97, 0.1, 100, (0.915, 0.99))}})
    >>> assured(v, ("y", "iou")), agreement(v, ("y", "iou"))
    (0.915, 0.97)
    """
    s = None if key is None else variant.summary(*key)
    return None if s is None else s.bound(higher_is_better(key[1]))


def check_constraints(max_size: int | None, min_agreement: float | None) -> None:
    """Usage errors for a negative size or an agreement that is not a fraction.

    >>> check_constraints(None, 99)
    Traceback (most recent call last):
    quantzoo.errors.UsageError: --min-agreement is a fraction such as 0.99 (metrics range over [-1, 1]), got 99; write percentages as fractions.
    """
    if max_size is not None and max_size < 0:
        raise UsageError(f"--max-size must be a byte count >= 0, got {max_size}.")
    if min_agreement is not None and not -1.0 <= min_agreement <= 1.0:
        raise UsageError(f"--min-agreement is a fraction such as 0.99 (metrics range over [-1, 1]), "
                         f"got {min_agreement:g}{'; write percentages as fractions' if min_agreement > 1 else ''}.")


def select_variant(model: ModelEntry, *, variant: str | None = None, max_size: int | None = None,
                   min_agreement: float | None = None) -> VariantEntry:
    """The variant `pull` takes for these choices (at most one of them is given):

    - nothing: the model's recommended variant;
    - `variant`: that id (``float`` is the original, unless a variant has that id);
    - `max_size`: the most agreeing variant of at most that many bytes (ties: the smaller file);
    - `min_agreement`: the smallest variant whose primary metric is at least that, by the lower end
      of its 95 % interval when the index has one (`assured`; ties: the more agreeing one).

    Variants without a measured primary metric are never chosen by a constraint. Ties left after
    that go to the variant listed first.

    >>> from quantzoo.catalog import MetricSummary as S
    >>> def v(vid, size, top1):
    ...     return VariantEntry(vid, None, None, None, vid + ".onnx", size, "0" * 64, {"y": {"top1_agreement": S(top1, 0, 9)}})
    >>> m = ModelEntry("m", recommended="b", variants=(v("a", 100, 1.0), v("b", 30, 0.99), v("c", 20, 0.9)))
    >>> [select_variant(m).id, select_variant(m, max_size=50).id, select_variant(m, min_agreement=0.95).id]
    ['b', 'b', 'b']
    """
    chosen = [name for name, value in (("variant", variant), ("max_size", max_size),
                                        ("min_agreement", min_agreement)) if value is not None]
    if len(chosen) > 1:
        raise UsageError(f"choose a variant one way only; got {' and '.join(chosen)}.")
    variants = model.variants
    mid = model.id
    listing = ", ".join(v.id for v in variants) or "none"
    if variant is not None:
        found = model.variant(variant)
        if found is not None:
            return found
        if variant == FLOAT_VARIANT and model.float_variant():
            return model.float_variant()
        hint = _did_you_mean(variant, [v.id for v in variants])
        extra = f" (or {FLOAT_VARIANT!r} for the original)" if model.float_variant() else ""
        raise QuantzooError(f"model {mid!r} has no variant {variant!r}.{hint} Its variants: {listing}{extra}.")
    if max_size is None and min_agreement is None:
        rec = model.variant(model.recommended) if model.recommended is not None else None
        if rec is not None:
            return rec
        raise QuantzooError(
            f"model {mid!r} has no recommended variant (none met the catalog's agreement threshold). "
            f"Choose one with --variant (its variants: {listing}), --max-size or --min-agreement; "
            f"`quantzoo info {mid}` shows their sizes and metrics.")
    key = primary_metric(model)
    if key is None:
        raise QuantzooError(
            f"model {mid!r} reports none of the metrics --max-size and --min-agreement rank by "
            f"({', '.join(primary_metrics())}). Choose with --variant (its variants: {listing}).")
    label = f"{key[1]} of output {key[0]!r}"
    measured = [(i, v, agreement(v, key)) for i, v in enumerate(variants)]
    measured = [(i, v, a) for i, v, a in measured if a is not None]
    if max_size is not None:
        fits = [(i, v, a) for i, v, a in measured if v.size <= max_size]
        if not fits:
            smallest = min(measured, key=lambda t: (t[1].size, t[0]))[1]
            raise QuantzooError(
                f"no variant of {mid!r} is at most {max_size} bytes ({human_size(max_size)}); the smallest is "
                f"{smallest.id!r} at {smallest.size} bytes ({human_size(smallest.size)}) with {label} "
                f"{_fmt(agreement(smallest, key))}. Raise --max-size to at least {smallest.size}.")
        return min(fits, key=lambda t: (-t[2], t[1].size, t[0]))[1]
    sure = [(i, v, a, assured(v, key)) for i, v, a in measured]  # measured: never None
    meets = [(i, v, a) for i, v, a, lo in sure if lo >= min_agreement]
    if not meets:
        best = min(sure, key=lambda t: (-t[3], t[1].size, t[0]))
        interval = f" (lower end of its 95 % interval; mean {_fmt(best[2])})" if best[3] != best[2] else ""
        raise QuantzooError(
            f"no variant of {mid!r} reaches {label} >= {min_agreement:g}; the best is {best[1].id!r} with "
            f"{_fmt(best[3])}{interval} ({best[1].size} bytes). Lower --min-agreement to at most {best[3]:g}.")
    return min(meets, key=lambda t: (t[1].size, -t[2], t[0]))[1]


def _fmt(value: float | None) -> str:
    return "unmeasured" if value is None else f"{value:.6g}"


def check_shape(model: ModelEntry, entry: VariantEntry, shape: str) -> None:
    """Refuse `entry` unless it was verified at `shape` (``NAME=AxBxC``): within its accepted
    shapes, every verified shape running (`catalog.ShapesEntry.accepts`).

    >>> from quantzoo.catalog import ShapeCheck, ShapesEntry
    >>> s = ShapesEntry({"x": {"ranges": [[1, 32], [64, 64]], "original": [1, 64]}},
    ...                 (ShapeCheck("1x64", True), ShapeCheck("32x64", True)))
    >>> v = VariantEntry("a", None, None, None, "a.onnx", 1, "0" * 64, shapes=s)
    >>> check_shape(ModelEntry("m", variants=(v,)), v, "x=32x64")
    >>> check_shape(ModelEntry("m", variants=(v,)), v, "x=64x64")
    Traceback (most recent call last):
    quantzoo.errors.QuantzooError: variant 'a' of 'm' is not verified at x=64x64; it accepts x=1..32,64 (verified at 1x64, 32x64).
    """
    name, eq, dims = shape.partition("=")
    if not eq or not name or not all(d.isdigit() for d in dims.split("x")):
        raise UsageError(f"--shape takes NAME=AxBxC (an input name and its sizes, e.g. x=1x3x224x224), got {shape!r}.")
    s = entry.shapes
    if s is None:
        raise QuantzooError(f"variant {entry.id!r} of {model.id!r} promises no input shapes (its catalog entry has "
                            f"none), so it is not verified at {shape}.")
    if not s.accepts(name, [int(d) for d in dims.split("x")]):
        verified = ", ".join(f"{c.shape}{'' if c.runs else ' (fails)'}" for c in s.verified) or "none"
        raise QuantzooError(f"variant {entry.id!r} of {model.id!r} is not verified at {shape}; it accepts "
                            f"{s.describe()} (verified at {verified}).")
