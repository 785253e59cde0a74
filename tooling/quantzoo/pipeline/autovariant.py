"""The quantize stage of an auto variant (``auto``, ``auto-<target>``): a scheme per tensor chosen
on the model's calibration split (`quantize.allocate`), its recipe and sensitivity table kept in
the artifact's record (ARCHITECTURE.md, "Automatic mixed precision")."""

from __future__ import annotations

from pathlib import Path

from ..errors import QuantzooError

# Bump when the auto search (sensitivity, allocation, the calibration rule) changes its choices:
# auto artifacts are keyed by it (keys.auto_spec). 2: the calibration rule counts the evaluation
# split's independent items (clusters), as the published interval does. 3: a gate miss steps by
# the misses it measured (`requirement.tighten`), the bisection checks its top only when nothing
# below it passes, large tables are candidates on larger tensors only (sensitivity.TABLE_SHARE)
# and 3-, 2- and 1-bit tables per group of channels are no longer candidates.
AUTO_REVISION = 3


def threshold_of(model, variant) -> dict:
    """The threshold an auto variant meets: the manifest's, at `variant.target` when it has one.

    >>> from types import SimpleNamespace as N
    >>> threshold_of(N(threshold={"output": "y", "metric": "top1_agreement", "min": 0.98}), N(target=0.99))["min"]
    0.99
    """
    thr = dict(model.threshold)
    if variant.target is not None:
        bound = "max" if thr.get("max") is not None else "min"
        thr = {k: v for k, v in thr.items() if k not in ("min", "max")} | {bound: variant.target}
    return thr


def gate_on(evaluation, path: Path, threshold: dict) -> tuple[bool, float | None]:
    """(whether the artifact at `path` meets `threshold` on `evaluation` by the published
    (conservative) rule, the threshold metric's mean there): the gate of `allocate.auto_quantize`,
    which sizes its next step from the mean on a miss."""
    from ..publish.data import meets

    s = evaluation.compare(path).metrics.get(threshold["output"], {}).get(threshold["metric"]) or {}
    return bool(meets(threshold, s.get("mean"), tuple(s["ci95"]) if s.get("ci95") else None)), s.get("mean")


def quantize_auto(model, variant, job, cache, tmp: Path, reg, evaluation, data_name: str | None = None):
    """Write the auto artifact of `model` to `tmp`; (the quantize report, what the artifact's
    record keeps besides: the recipe and the sensitivity table). `evaluation()` gives the
    prepared evaluation split: its size (the conservative rule needs it) and the last gate
    (`gate_on`), which passes or fails whole artifacts and never picks a tensor's scheme."""
    from ..compare import prepare
    from ..quantize.allocate import auto_quantize
    from ..quantize.requirement import independent_n

    dataset = reg.datasets.get(model.dataset)
    if dataset is None or not getattr(dataset, "calibration", None):
        raise QuantzooError(f"{model.id}: an auto variant chooses from calibration data, and dataset "
                            f"{model.dataset!r} holds none out; add `calibration: 0.2` to its manifest")
    cal = prepare(Path(job.float_path), None, model=model, registry=reg, cache=cache, part="calibration")
    if cal.n == 0:
        raise QuantzooError(f"{model.id}: the calibration split of {model.dataset!r} is empty")
    thr = threshold_of(model, variant)
    report, recipe, table = auto_quantize(Path(job.float_path), tmp, cal, thr, independent_n(evaluation()),
                                          representation=variant.representation, source_sha256=job.float_sha256,
                                          selector={"exclude": list(getattr(model, "keep_float", None) or [])},
                                          data_name=data_name, gate=lambda p: gate_on(evaluation(), p, thr),
                                          gate_samples=evaluation().n)
    return report, {"recipe": recipe.to_dict(), "sensitivity": table.to_dict()}
