"""Allocation: the least bytes whose predicted output error meets a target, proved on the
calibration split (ARCHITECTURE.md, "Automatic mixed precision").

The additive-noise model: compressing several tensors adds their output error energies
(independent, zero-mean errors), so a choice of one scheme per tensor predicts
SNR = 10·log10(signal / Σ error energy) from the sensitivity table. For a required SNR,
`choose` solves the multiple-choice knapsack exactly — least total bytes with Σ error ≤ budget
— by dynamic programming over bytes at a resolution of 1/`BUCKETS` of the float size (so the
answer is within that of the true optimum; a greedy or Lagrangian walk reaches only the convex
hull's corners). The SNR that the threshold needs is not known in advance: `search` bisects
on it, and every candidate allocation is run on the whole calibration split (through the
`weightsession.WeightSession`, whose numpy decode is bit-identical to the artifact's; a check
stops once it can no longer pass: `give_up`) and kept only when the threshold metric passes
`requirement`; the cheapest passing allocation wins. A gate miss on the evaluation split
raises the required SNR by the step its measured misses ask (`tighten`).
Predicted cells an allocation picks are measured first (`sensitivity.refine`), so no choice
rests on a prediction. Everything is deterministic: same inputs, same recipe, same bytes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np

from ..errors import QuantzooError
from .recipe import FLOAT, Recipe
from .requirement import give_up, requirement, tighten
from .sensitivity import (DEFAULT_SAMPLES, DEFAULT_SCHEMES, Cell, SensitivityTable, float_cell, measure,
                          metric_figure, refine)
from .weightsession import WeightSession, db

BUCKETS = 40_000     # byte resolution of the knapsack: the float size / BUCKETS
SNR_RANGE = (0.0, 90.0)
# The bisection's first bracket is [0, FIRST_SNR_DB] (the catalog's thresholds needed 8-42 dB of
# SNR); only when FIRST_SNR_DB fails does it move to [FIRST_SNR_DB, 90]. It stops after
# SEARCH_STEPS halvings (48 dB / 2^6 = 0.75 dB), or sooner when the least-bytes choice at the
# failing end is within STOP_BYTES of the passing one's bytes (nothing left to win).
FIRST_SNR_DB = 48.0
SEARCH_STEPS = 6
STOP_BYTES = 0.01
REFINE_ROUNDS = 5    # measure-the-picks rounds per allocation
# Predicted cells an allocation picks are measured, largest predicted error first, until the
# unmeasured ones account for less than this share of the error budget (the allocation is then
# run for real anyway: a prediction can cost bytes, never a wrong pass).
UNMEASURED_SHARE = 0.1
GATE_ROUNDS = 8      # gate misses before the search gives up (each step: requirement.tighten)
UNIFORM_MARGIN_DB = 6.0
# Auto considers smaller tensors than the uniform variants' 2048: each is kept in float unless
# compressing it saves more than its decode costs (sensitivity.DECODE_OVERHEAD is in the bytes).
AUTO_MIN_ELEMENTS = 256


def options(table: SensitivityTable) -> list[list[Cell]]:
    """Each tensor's choices: float and every scheme, cheapest first (ties: the table's order)."""
    out = []
    for t in table.tensors:
        cells = [float_cell(t)] + list(t.cells.values())
        out.append(sorted(cells, key=lambda c: c.bytes))
    return out


def choose(opts: list[list[Cell]], budget: float, resolution: int | None = None) -> list[int] | None:
    """Per tensor, the index into its options of the least-bytes choice whose error energies sum
    to at most `budget` (multiple-choice knapsack, dynamic programme over bytes in units of
    `resolution`); None when even the most accurate choice exceeds the budget.

    >>> c = lambda b, e: Cell("s", b, 0.0, e, 0.0, None)
    >>> opts = [[c(1, 9.0), c(2, 4.0), c(4, 0.0)], [c(1, 5.0), c(3, 1.0), c(4, 0.0)]]
    >>> choose(opts, 6.0, 1), choose(opts, 10.0, 1), choose(opts, 0.0, 1), choose(opts, -1.0, 1)
    ([2, 0], [1, 0], [2, 2], None)
    """
    total = sum(max(c.bytes for c in o) for o in opts)
    res = resolution or max(1, math.ceil(total / BUCKETS))
    units, picks, best = _knapsack(tuple(tuple((c.bytes, c.error_energy) for c in o) for o in opts), res)
    ok = np.flatnonzero(best <= budget * (1 + 1e-12))
    if ok.size == 0:
        return None
    at = int(ok[0])
    out = []
    for u, pick in zip(reversed(units), reversed(picks)):
        k = int(pick[at])
        out.append(k)
        at -= u[k]
    return out[::-1]


@lru_cache(maxsize=4)
def _knapsack(cells: tuple, res: int) -> tuple:
    """The dynamic programme of `choose`, which does not depend on the budget: (each tensor's
    option sizes in units of `res`, each tensor's best option per total size, the least error
    energy per total size). Cached: the search asks it for several budgets on one table, and
    its cost (tensors × options × reachable sizes) was most of the search's own CPU time."""
    units = [[math.ceil(b / res) for b, _ in o] for o in cells]
    best = np.zeros(1)
    picks = []
    for o, u in zip(cells, units):  # `best` covers the sizes reachable so far; beyond them, nothing
        reach = best.size - 1
        new = np.full(reach + max(u) + 1, np.inf)
        pick = np.zeros(new.size, np.int16)
        for k, ((_, error), uk) in enumerate(zip(o, u)):
            cand = best + error
            target = new[uk:uk + reach + 1]
            better = cand < target
            target[better] = cand[better]
            pick[uk:uk + reach + 1][better] = k
        best = new
        picks.append(pick)
    return units, picks, best


@dataclass
class Attempt:
    snr_db: float           # the required (predicted) SNR
    bytes: int
    predicted_snr_db: float
    measured_snr_db: float  # on the whole calibration split
    metric: float | None
    passed: bool


@dataclass
class Allocation:
    schemes: dict[str, str]  # tensor key -> scheme
    bytes: int
    passed: bool
    attempts: list[Attempt] = field(default_factory=list)
    seconds: float = 0.0
    required_snr_db: float = 0.0  # the (predicted) SNR it was chosen for


def _picked(table: SensitivityTable, opts, idx) -> dict[str, Cell]:
    return {t.key: o[k] for t, o, k in zip(table.tensors, opts, idx)}


def _refine_picks(ws: WeightSession, table: SensitivityTable, picked: dict[str, Cell], decoded: dict,
                  budget: float) -> bool:
    """Measure the picked cells that are predicted, largest predicted error first, until the
    rest hold less than `UNMEASURED_SHARE` of the budget; whether anything was measured."""
    todo = sorted(((c.error_energy, k, c.scheme) for k, c in picked.items() if not c.measured), reverse=True)
    rest = sum(e for e, _, _ in todo)
    ran = False
    for e, key, scheme in todo:
        if rest < UNMEASURED_SHARE * budget:
            break
        ran = refine(ws, table, key, scheme, decoded) or ran
        rest -= e
    return ran


def _try_uniform(ws, table, decoded, accept, tried: dict, floor: float, attempts: list, stop=None) -> None:
    """Run the uniform allocations (one scheme for every tensor) cheaper than the best passing
    allocation found, whose predicted SNR is within `UNIFORM_MARGIN_DB` below its own: the
    knapsack's bytes resolution and the bisection's step can step over them."""
    passing = [v for v in tried.values() if v[1] and v[3] >= floor]
    if not passing:
        return
    best = min(passing, key=lambda v: v[0])
    best_pred = db(table.signal_energy, sum(_cell(table, k, s).error_energy for k, s in best[2].items()))
    for scheme in table.tensors[0].cells:
        if not all(scheme in t.cells for t in table.tensors):
            continue
        schemes = {t.key: scheme for t in table.tensors}
        sig = tuple(sorted(schemes.items()))
        nbytes = sum(t.cells[scheme].bytes for t in table.tensors)
        pred = db(table.signal_energy, sum(t.cells[scheme].error_energy for t in table.tensors))
        if sig in tried or nbytes >= best[0] or pred < max(floor, best_pred - UNIFORM_MARGIN_DB):
            continue
        snr, values = ws.check({k: decoded[k, s] for k, s in schemes.items()}, stop)
        tried[sig] = [nbytes, accept(values), schemes, pred]
        attempts.append(Attempt(round(pred, 3), nbytes, round(pred, 3), round(snr, 3),
                                metric_figure(ws.metric, values), tried[sig][1]))


def _cell(table: SensitivityTable, key: str, scheme: str) -> Cell:
    t = next(t for t in table.tensors if t.key == key)
    return float_cell(t) if scheme == FLOAT else t.cells[scheme]


def search(ws: WeightSession, table: SensitivityTable, decoded: dict, accept: Callable[[list], bool],
           steps: int = SEARCH_STEPS, floor: float = SNR_RANGE[0], tried: dict | None = None,
           stop: Callable[[list, int], bool] | None = None) -> Allocation:
    """Bisect on the required SNR, from `floor` up, for the cheapest allocation that passes
    `accept` on the whole calibration split (the cheapest passing one required at `floor` or more
    wins; none passing: the most accurate). `tried` carries measured allocations across calls;
    `stop` (`give_up`) ends a check once its outcome is decided."""
    t0 = time.perf_counter()
    attempts: list[Attempt] = []
    tried = {} if tried is None else tried  # signature -> [bytes, passed, schemes, highest required SNR]

    def budget_of(snr: float) -> float:
        return table.signal_energy * 10 ** (-snr / 10)

    def attempt(snr: float) -> bool:
        budget = budget_of(snr)
        for _ in range(REFINE_ROUNDS):  # the picks' own cells measured, not predicted
            opts = options(table)
            idx = choose(opts, budget)
            if idx is None:
                return False
            picked = _picked(table, opts, idx)
            if not _refine_picks(ws, table, picked, decoded, budget):
                break
        schemes = {k: c.scheme for k, c in picked.items()}
        sig = tuple(sorted(schemes.items()))
        nbytes = sum(c.bytes for c in picked.values())
        if sig not in tried:
            measured, values = ws.check({k: decoded[k, s] for k, s in schemes.items() if s != FLOAT}, stop)
            passed = accept(values)
            tried[sig] = [nbytes, passed, schemes, snr]
            attempts.append(Attempt(round(snr, 3), nbytes,
                                    round(db(table.signal_energy, sum(c.error_energy for c in picked.values())), 3),
                                    round(measured, 3), metric_figure(ws.metric, values), passed))
        tried[sig][3] = max(tried[sig][3], snr)
        return tried[sig][1]

    def close(lo: float, hi: float) -> bool:  # the choices at both ends differ by < STOP_BYTES
        opts = options(table)
        a, b = choose(opts, budget_of(lo)), choose(opts, budget_of(hi))
        if a is None or b is None:
            return False
        at = lambda idx: sum(o[k].bytes for o, k in zip(opts, idx))  # noqa: E731
        return at(b) - at(a) < STOP_BYTES * at(b)

    def bisect(lo: float, hi: float) -> bool:
        """Halve [lo, hi], `hi` taken to pass (unchecked); whether a required SNR below `hi` passed."""
        passed = False
        for _ in range(steps):
            if close(lo, hi):
                break
            mid = (lo + hi) / 2
            if attempt(mid):
                hi, passed = mid, True
            else:
                lo = mid
        return attempt(lo) or passed

    lo, hi = max(floor, SNR_RANGE[0]), max(floor, FIRST_SNR_DB)
    # after a gate miss the tightened SNR usually passes at once; else bisect up to FIRST_SNR_DB,
    # which is checked only when nothing below it passed (then [FIRST_SNR_DB, 90] if it fails too)
    if not (lo > SNR_RANGE[0] and attempt(lo)):
        if not bisect(lo, hi) and not attempt(hi) and hi < SNR_RANGE[1] and attempt(SNR_RANGE[1]):
            bisect(hi, SNR_RANGE[1])
    _try_uniform(ws, table, decoded, accept, tried, floor, attempts, stop)
    passing = [v for v in tried.values() if v[1] and v[3] >= floor]
    required = floor
    if passing:
        nbytes, _, schemes, required = min(passing, key=lambda v: (v[0], sorted(v[2].items())))
    else:  # nothing passes: every tensor at its most accurate compressed scheme
        schemes = {t.key: min(t.cells.values(), key=lambda c: (c.error_energy, c.bytes)).scheme for t in table.tensors}
        nbytes = sum(t.cells[schemes[t.key]].bytes for t in table.tensors)
    return Allocation(schemes, nbytes, bool(passing), attempts, round(time.perf_counter() - t0, 3), required)


def auto_quantize(src, dst, evaluation, threshold: dict, n_eval: int | None, *, schemes=DEFAULT_SCHEMES,
                  samples: int = DEFAULT_SAMPLES, selector: dict | None = None, representation: str = "auto",
                  source_sha256: str | None = None, data_name: str | None = None, progress=None,
                  gate: Callable | None = None, gate_samples: int | None = None):
    """Find a recipe for `threshold` on the calibration `evaluation` (`compare.prepare(...,
    part="calibration")`) and write its artifact to `dst`: (the quantize report, the recipe, the
    sensitivity table). `n_eval`: the evaluation split's independent items (`independent_n`: the
    n of the conservative rule's interval); `gate_samples`: the samples one gate runs (cost only).
    `gate(path) -> (passed, the threshold metric's mean)`: a last check of the written artifact
    (the pipeline: the threshold by the published rule on the evaluation split); on a miss the
    search is repeated requiring `tighten` more SNR than the choice that missed, at most
    `GATE_ROUNDS` times. The
    gate passes or fails whole artifacts: every per-tensor choice is made on calibration data."""
    from .engine import load_model, quantize_file
    from .legacy import modernize
    from .weights import select

    split = evaluation.describe.get("split")
    if split and split.get("part") != "calibration":
        raise QuantzooError(f"auto quantization chooses from data, so it reads the calibration split only; "
                            f"found the {split.get('part')} split: prepare(..., part='calibration')")
    sel = {"min_elements": AUTO_MIN_ELEMENTS, "op_types": None, "exclude": [], **(selector or {})}
    t0 = time.perf_counter()
    proto, sha, _, label, base_dir = load_model(src)
    modernize(proto, label, base_dir)
    chosen, _ = select(proto, min_elements=sel["min_elements"], op_types=sel["op_types"],
                       exclude=tuple(sel["exclude"]))
    if not chosen:
        raise QuantzooError(f"{label}: no tensor selected for compression; lower min_elements or widen op_types")
    ws = WeightSession(proto, chosen, base_dir, evaluation, threshold["output"], threshold["metric"], samples)
    t_session = time.perf_counter() - t0
    table, decoded = measure(ws, schemes, progress=progress)
    accept, what = requirement(threshold, n_eval, getattr(evaluation, "clusters", None))
    tried: dict = {}
    stop = give_up(what)
    found = search(ws, table, decoded, accept, tried=tried, stop=stop)
    target = {k: threshold[k] for k in ("output", "metric", "min", "max") if threshold.get(k) is not None}
    gates, seconds, attempts = [], found.seconds, list(found.attempts)
    for _ in range(GATE_ROUNDS + 1):
        recipe = Recipe(found.schemes, min_elements=sel["min_elements"], op_types=sel["op_types"],
                        exclude=list(sel["exclude"]), representation=representation,
                        source_sha256=source_sha256 or sha, target=target)
        report = quantize_file(src, dst, recipe=recipe, source_sha256=source_sha256, jobs=1, data_name=data_name)
        if gate is None:
            break
        ok, mean = gate(dst)
        step = tighten(what, mean)
        gates.append({"bytes": report.artifact_bytes, "required_snr_db": round(found.required_snr_db, 3),
                      "passed": bool(ok), "metric": mean, **({} if ok else {"tighten_db": step})})
        if ok or not found.passed or len(gates) > GATE_ROUNDS:
            break
        found = search(ws, table, decoded, accept, floor=found.required_snr_db + step, tried=tried, stop=stop)
        seconds += found.seconds
        attempts += found.attempts
    table.runs = int(round(ws.runs))
    measured = {"requirement": what, "passed_on_calibration": found.passed, "bytes_predicted": found.bytes,
                "calibration_samples": ws.calibration_samples, "sensitivity_samples": ws.samples,
                "attempts": [a.__dict__ for a in attempts],
                "seconds": {"session_s": round(t_session, 3), **table.seconds, "search_s": round(seconds, 3)},
                "passes": table.runs, "required_snr_db": round(found.required_snr_db, 3),
                # model runs in samples (load-independent cost): the passes, plus the gate's
                "sample_inferences": int(round(ws.runs * ws.samples)) + len(gates) * (gate_samples or n_eval or 0)}
    if gates:
        measured["gate"] = gates
    recipe.measured = measured
    return report, recipe, table
