"""What a choice must show on the calibration split to pass, and what a gate miss on the
evaluation split asks next (ARCHITECTURE.md, "Automatic mixed precision").

`requirement` turns a manifest threshold into a test of calibration values: a proportion must
reach the least mean whose Wilson lower end, on the evaluation split's independent items
(`independent_n`), meets the threshold (the published, conservative rule); another metric's
calibration interval must meet it. `give_up` says when a check's values so far can no longer
pass, so a check stops there with the outcome the whole split would give; `tighten` sizes the
required-SNR step after a gate miss from the misses the gate measured.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable

import numpy as np

# A gate miss: search again requiring more SNR than the choice that missed, by the step that
# brings the evaluation split's misses down to those the requirement allows plus TIGHTEN_DB (the
# misses are counts, noisy: aiming at the allowed count exactly missed again half the time), at
# most MAX_TIGHTEN_DB (`tighten`).
TIGHTEN_DB = 1.0
MAX_TIGHTEN_DB = 6.0


def independent_n(prepared) -> int:
    """The n of the published interval on a prepared split: its samples, or its clusters (photos,
    spoken sentences) when samples are views of one item (ARCHITECTURE.md, "Uncertainty and
    splits"): the Wilson interval of a proportion counts clusters.

    >>> from types import SimpleNamespace as N
    >>> independent_n(N(n=6, clusters=["a", "a", "b", "b", "c", "c"])), independent_n(N(n=6, clusters=None))
    (3, 6)
    """
    clusters = getattr(prepared, "clusters", None)
    return len(set(clusters)) if clusters else prepared.n


def requirement(threshold: dict, n_eval: int | None, clusters=None) -> tuple[Callable[[list], bool], dict]:
    """(does a list of per-sample calibration values pass, what it requires).

    A proportion (agreement) with a ``min``: the published rule takes the Wilson interval's lower
    end on the evaluation split's `n_eval` independent items (`independent_n`), so the
    calibration mean must reach the least proportion whose lower end meets the threshold there
    (1.0 when none does). Another metric: the calibration interval's conservative end (over the
    calibration samples' `clusters`, when given) must meet it.

    >>> ok, what = requirement({"metric": "top1_agreement", "min": 0.98}, 400)
    >>> what["calibration_mean_at_least"], ok([1.0] * 99 + [0.0]), ok([1.0] * 100)
    (0.995, False, True)
    >>> requirement({"metric": "top1_agreement", "min": 0.95}, 104)[1]["calibration_mean_at_least"]
    1.0
    """
    from ..compare.intervals import wilson
    from ..compare.metrics import metric
    from ..compare.summary import summarize

    name = threshold["metric"]
    is_min = threshold.get("min") is not None
    bound = threshold["min"] if is_min else threshold["max"]
    if metric(name).proportion and n_eval:
        ends = [wilson(k, n_eval) or (0.0, 1.0) for k in range(n_eval + 1)]
        if is_min:
            need = next((k / n_eval for k in range(n_eval + 1) if ends[k][0] >= bound), 1.0)
            return (lambda v: _mean(v) is not None and _mean(v) >= need - 1e-12,
                    {"metric": name, "calibration_mean_at_least": round(need, 6), "n_eval": n_eval})
        need = max((k / n_eval for k in range(n_eval + 1) if ends[k][1] <= bound), default=0.0)
        return (lambda v: _mean(v) is not None and _mean(v) <= need + 1e-12,
                {"metric": name, "calibration_mean_at_most": round(need, 6), "n_eval": n_eval})

    def ok(values: list) -> bool:
        groups = clusters if clusters is not None and len(clusters) == len(values) else None
        ci = summarize(name, values, groups)["ci95"]
        return ci is not None and (ci[0] >= bound if is_min else ci[1] <= bound)

    return ok, {"metric": name, "calibration_ci95_" + ("lower_at_least" if is_min else "upper_at_most"): bound}


def give_up(what: dict) -> Callable[[list, int], bool] | None:
    """For a proportion's requirement (`requirement`'s second value): whether the per-sample
    values so far, with `rest` values still to come (each in [0, 1] or None), can no longer pass,
    whatever the rest are — so a check stops there (`WeightSession.check`) and decides what the
    whole split would; None for another metric (its interval needs every sample).

    >>> g = give_up({"calibration_mean_at_least": 0.99})  # 200 values: at most 2 misses
    >>> g([1.0, 0.0, 0.0], 197), g([0.0, 0.0, 1.0, 0.0], 196), g([0.0, None, 0.0, 0.0], 196)
    (False, True, True)
    >>> give_up({"calibration_mean_at_most": 0.01})([1.0, 1.0, 1.0], 197), give_up({"x": 1}) is None
    (True, True)
    """
    if "calibration_mean_at_least" in what:
        need = what["calibration_mean_at_least"]

        def hopeless(values: list, rest: int) -> bool:  # the best case: every value to come is 1
            keep = _numbers(values)
            return keep is not None and (sum(keep) + rest) / max(1, len(keep) + rest) < need - 1e-12
        return hopeless
    if "calibration_mean_at_most" in what:
        most = what["calibration_mean_at_most"]

        def over(values: list, rest: int) -> bool:  # the best case: every value to come is 0
            keep = _numbers(values)
            return keep is not None and sum(keep) / max(1, len(keep) + rest) > most + 1e-12
        return over
    return None


def _numbers(values: list) -> list | None:
    """The values that are not None, or None when one is not a number (a pooled metric's row:
    no early decision then)."""
    keep = [v for v in values if v is not None]
    return keep if all(isinstance(v, numbers.Real) for v in keep) else None


def tighten(what: dict, mean: float | None) -> float:
    """The SNR (dB) a gate miss adds to the requirement, from the threshold metric's `mean` on the
    evaluation split and what the requirement asks (`requirement`'s second value). A proportion's
    misses (1 − mean; the mean itself under an upper bound) fell about as the output error energy
    does, as 10^(−SNR/10) (measured on ppocr-mobile-v2-cls and stn-digits: ARCHITECTURE.md,
    "Automatic mixed precision"), so the step is 10·log10(misses / misses allowed) + TIGHTEN_DB,
    within [TIGHTEN_DB, MAX_TIGHTEN_DB]; TIGHTEN_DB for another metric or an unknown mean.

    >>> need = {"calibration_mean_at_least": 0.99}
    >>> tighten(need, 0.98), tighten(need, 0.985), tighten(need, 0.5), tighten(need, 0.995)
    (4.01, 2.761, 6.0, 1.0)
    >>> tighten({"calibration_mean_at_least": 1.0}, 0.99), tighten({"calibration_ci95_lower_at_least": 30}, 29.0)
    (6.0, 1.0)
    """
    if mean is None:
        return TIGHTEN_DB
    if "calibration_mean_at_least" in what:
        misses, allowed = 1.0 - mean, 1.0 - what["calibration_mean_at_least"]
    elif "calibration_mean_at_most" in what:
        misses, allowed = mean, what["calibration_mean_at_most"]
    else:
        return TIGHTEN_DB
    step = 10.0 * math.log10(misses / allowed) + TIGHTEN_DB if allowed > 1e-12 and misses > 0 else MAX_TIGHTEN_DB
    return round(min(MAX_TIGHTEN_DB, max(TIGHTEN_DB, step)), 3)


def _mean(values: list) -> float | None:
    keep = [v for v in values if v is not None]
    return float(np.mean(keep)) if keep else None
