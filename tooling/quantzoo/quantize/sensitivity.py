"""Per-tensor sensitivity: what compressing one tensor alone does to the model's output
(ARCHITECTURE.md, "Automatic mixed precision").

For every selected weight tensor and every candidate scheme (`DEFAULT_SCHEMES`: fp16, linear
8/6/4 per channel, k-means tables 8/6/5/4/3/2/1 per tensor and 4 bits per group of 8 output
channels), the tensor is encoded and decoded in numpy (`modes.decode` is bit-identical to the
artifact's in-graph decode, so no artifact is written) and written into the model's own weight
tensor, which a session made for that substitution runs (`weightsession.WeightSession`; the weights stay
constants, which onnxruntime folds and pre-packs). A measurement is one pass over the first
`samples` calibration samples with one weight replaced. Recorded per cell: the bytes it adds to
the artifact (codes, parameters and the decode's own nodes: `decode_overhead`), the weight's
relative error, the output error energy Σ(y − y_float)² of the primary output (the threshold's
output) pooled over the samples, its SNR in dB and the threshold metric's mean. The float
reference is the same model run the same way, so the error is the compression's alone.

Measured where it matters (`measure`): each tensor's probe scheme is run, the other cells are
predicted from the weight error (output error energy = gain × weight error², the gain fitted on
the tensor's measured cells), and `refine` measures a predicted cell when an allocation picks it.

Cost: one float pass over the calibration split, tensors × schemes encodes
(k-means at 6-8 bits dominates; `worth_encoding` leaves out tables too large for their tensor),
tensors probe passes and at most tensors refine passes per allocation, each over `samples`
samples (one float inference of that many samples) in a session made for it (serialising the
model and creating the session: 0.01-0.3 s on the catalog), or, for a small weight, in a session
shared by a group of them (`weightsession.fed_groups`). Only calibration samples are ever read
(`compare.split`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import numpy as np
from onnx import helper

from .artifact import stored_planes
from .modes import MODES, Layout, decode
from .recipe import FLOAT, scheme_config, tensor_key
from .weights import Selected
from .weightsession import WeightSession, db

# (Tables per group of 8 channels other than 4-bit ones are left out: 6- and 8-bit ones cost more
# than they save on the catalog's models and are the slowest encodes; 3-, 2- and 1-bit ones were
# never chosen on the five catalog models auto ran on (AUTO_REVISION 2) and were a third of
# ppocr-mobile-v2-cls's encode CPU-seconds.)
DEFAULT_SCHEMES = ("fp16", "linear-8", "linear-6", "linear-4",
                   "kmeans-8", "kmeans-6", "kmeans-5", "kmeans-4", "kmeans-3", "kmeans-2", "kmeans-1",
                   "kmeans-4-g8")
PROBES = ("kmeans-4",)  # measured for every tensor; the other cells are predicted, then refined
DEFAULT_SAMPLES = 32  # calibration samples per sensitivity pass (the allocation check uses all)
# A k-means table is a candidate when it has at most one entry per TABLE_SHARE values it codes
# (`worth_encoding`). With one per 4 (the first rule), k-means-8 on 1024-4095-value tensors was a
# third of ppocr-mobile-v2-cls's encode time and never chosen (its 1 KB table alone outweighs
# what its codes save over linear-8); one per 16 wrote the same artifact.
TABLE_SHARE = 16


@dataclass
class Cell:
    """One tensor compressed with one scheme, everything else float."""

    scheme: str
    bytes: int             # stored bytes in the artifact (codes + parameters + decode overhead)
    weight_error: float    # ||w − decoded|| / ||w||
    error_energy: float    # Σ over samples and elements of (y − y_float)² on the primary output
    snr_db: float          # 10·log10(signal / error_energy), capped at 200
    metric: float | None   # the threshold metric's mean against the float model (measured cells)
    measured: bool = True  # False: predicted from the tensor's measured cells (`measure`)


@dataclass
class TensorSensitivity:
    key: str               # recipe.tensor_key
    op: str
    shape: list[int]
    elements: int
    float_bytes: int
    cells: dict[str, Cell] = field(default_factory=dict)


@dataclass
class SensitivityTable:
    output: str
    metric: str
    signal_energy: float   # Σ y_float² on the primary output over the samples
    samples: int
    tensors: list[TensorSensitivity]
    seconds: dict = field(default_factory=dict)
    runs: int = 0          # full passes over the samples

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict) -> SensitivityTable:
        tensors = [TensorSensitivity(**{**t, "cells": {k: Cell(**c) for k, c in t["cells"].items()}})
                   for t in doc["tensors"]]
        return cls(**{**doc, "tensors": tensors})


def data_bytes(enc) -> int:
    """The bytes `artifact.write_compressed` stores for one encoded tensor's codes and parameters."""
    if enc.kind == "fp16":
        return int(enc.half.nbytes)
    if enc.kind == "affine":
        params = enc.zero_point.nbytes + enc.scale.nbytes
    else:
        params = enc.tables.nbytes + (12 if enc.offsets is not None else 0)
    return int(sum(p.nbytes for p in stored_planes(enc)) + params)


def decode_overhead(scheme: str, shape: tuple[int, ...], channel_axis, block_axis, name_length: int) -> int:
    """The bytes an artifact spends on one tensor's decode besides its data (the inlined decode
    nodes, whose names repeat the tensor's, and shape constants): measured by writing the decode
    of a small tensor of the same rank, axes and unit sides under names of 1 and 33
    characters, and read at this name's length in between (the names grow the nodes linearly)."""
    small = tuple(1 if d == 1 else 8 for d in shape)  # the decode's structure: rank, axes, unit sides
    short, long = (_overhead(scheme, small, channel_axis, block_axis, n) for n in (1, 33))
    return int(round(short + (long - short) * (name_length - 1) / 32))


@lru_cache(maxsize=None)
def _overhead(scheme: str, small: tuple[int, ...], channel_axis, block_axis, name_length: int) -> int:
    from onnx import TensorProto, numpy_helper

    from .artifact import write_compressed
    from .portable import inline_decode
    from .weights import Tensor

    cfg = scheme_config(scheme)
    w = np.linspace(-1, 1, int(np.prod(small)) or 1, dtype=np.float32).reshape(small)
    name = "w" * name_length
    init = numpy_helper.from_array(w, name)
    g = helper.make_graph([helper.make_node("Identity", [name], ["y"])], "g", [],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(small))], [init])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    before = len(model.SerializeToString())
    enc = MODES[cfg["mode"]].encode(w, cfg["nbits"], Layout(cfg["granularity"], channel_axis, block_axis,
                                                            cfg["block_size"], cfg["group_size"]))
    write_compressed(model, [(Tensor(name, model.graph.initializer[0], model.graph, ""), enc)], {})
    after = len(inline_decode(model).SerializeToString())
    return max(0, after - before + int(w.nbytes) - data_bytes(enc))


def stored_bytes(enc, s: Selected, scheme: str) -> int:
    """The bytes one encoded tensor adds to the artifact: its data and its decode."""
    return data_bytes(enc) + decode_overhead(scheme, tuple(s.tensor.shape), s.channel_axis, s.block_axis,
                                             len(s.tensor.name))


def worth_encoding(scheme: str, s: Selected) -> bool:
    """False for a table whose entries would number more than one in `TABLE_SHARE` of the values
    it codes (its table outweighs what it saves; and k-means at 6-8 bits on a small tensor is
    the slowest encode of all).

    >>> from types import SimpleNamespace as N
    >>> t = N(tensor=N(elements=512, shape=(8, 64)), channel_axis=1)
    >>> worth_encoding("kmeans-8", t), worth_encoding("kmeans-5", t), worth_encoding("linear-8", t)
    (False, True, True)
    """
    cfg = scheme_config(scheme)
    if cfg is None or cfg["mode"] not in ("kmeans_lut", "linear_lut"):
        return True
    groups = 1
    if cfg["granularity"] == "per_grouped_channel" and s.channel_axis is not None:
        groups = -(-s.tensor.shape[s.channel_axis] // cfg["group_size"])
    return groups * (1 << cfg["nbits"]) * TABLE_SHARE <= s.tensor.elements


def encode_scheme(array: np.ndarray, s: Selected, scheme: str) -> tuple[np.ndarray, int]:
    """(the decoded weight in its own dtype, the bytes it adds to the artifact) for one scheme."""
    cfg = scheme_config(scheme)
    if cfg is None:
        return array, int(array.nbytes)
    layout = Layout(cfg["granularity"], s.channel_axis, s.block_axis, cfg["block_size"], cfg["group_size"])
    w32 = array if array.dtype == np.float32 else array.astype(np.float32)
    enc = MODES[cfg["mode"]].encode(w32, cfg["nbits"], layout)
    return decode(enc).astype(array.dtype, copy=False), stored_bytes(enc, s, scheme)


def metric_figure(metric: str, values: list) -> float | None:
    """The threshold metric's figure over a run's per-sample values (a pooled metric's rows pool)."""
    from ..compare.summary import figure

    return figure(metric, values)


def measure(ws: WeightSession, schemes=DEFAULT_SCHEMES, probes=PROBES, progress=None
            ) -> tuple[SensitivityTable, dict]:
    """The sensitivity table of every selected tensor × scheme, and every decoded candidate
    weight by (tensor key, scheme) for the checks that follow.

    Each tensor's `probes` are measured (one pass each; ``probes=None`` measures every cell);
    the other cells are predicted from them: output error energy = gain × (weight error)², the
    gain fitted on the tensor's measured cells (`refine` measures a predicted cell and refits).
    """
    t0 = time.perf_counter()
    encode_s = run_s = 0.0
    tensors, decoded = [], {}
    for i, s in enumerate(ws.chosen):
        key = tensor_key(s.tensor.name, s.tensor.scope)
        w = ws.floats[key]
        row = TensorSensitivity(key, s.op, list(s.tensor.shape), s.tensor.elements, int(w.nbytes))
        ref = w.astype(np.float64)
        den = float(np.linalg.norm(ref))
        for scheme in schemes:
            if not worth_encoding(scheme, s):
                continue
            a = time.perf_counter()
            approx, nbytes = encode_scheme(w, s, scheme)
            werr = float(np.linalg.norm(ref - approx.astype(np.float64))) / den if den > 0 else 0.0
            decoded[key, scheme] = approx
            row.cells[scheme] = Cell(scheme, nbytes, round(werr, 8), 0.0, 200.0, None, measured=False)
            encode_s += time.perf_counter() - a
        for scheme in (schemes if probes is None else [p for p in probes if p in row.cells]):
            b = time.perf_counter()
            _measure_cell(ws, row, scheme, decoded)
            run_s += time.perf_counter() - b
        _predict(row, ws.signal)
        tensors.append(row)
        if progress:
            progress("sensitivity", i + 1, len(ws.chosen))
    table = SensitivityTable(ws.output, ws.metric, ws.signal, ws.samples, tensors,
                             {"encode_s": round(encode_s, 3), "run_s": round(run_s, 3),
                              "total_s": round(time.perf_counter() - t0, 3)}, 0)
    table.runs = int(round(ws.runs))
    return table, decoded


def _measure_cell(ws: WeightSession, row: TensorSensitivity, scheme: str, decoded: dict) -> None:
    error, values = ws.run({row.key: decoded[row.key, scheme]})
    c = row.cells[scheme]
    c.error_energy, c.snr_db, c.measured = error, round(db(ws.signal, error), 4), True
    c.metric = metric_figure(ws.metric, values)


def _predict(row: TensorSensitivity, signal: float) -> None:
    """Fill the unmeasured cells: error energy = gain × weight error², the gain the geometric
    mean of the measured cells' ratios (0 when none is informative)."""
    ratios = [c.error_energy / c.weight_error ** 2 for c in row.cells.values()
              if c.measured and c.weight_error > 0 and c.error_energy > 0]
    gain = float(np.exp(np.mean(np.log(ratios)))) if ratios else 0.0
    for c in row.cells.values():
        if not c.measured:
            c.error_energy = gain * c.weight_error ** 2
            c.snr_db = round(db(signal, c.error_energy), 4)


def refine(ws: WeightSession, table: SensitivityTable, key: str, scheme: str, decoded: dict) -> bool:
    """Measure one predicted cell and refit its tensor's predictions; whether anything was run."""
    row = next(t for t in table.tensors if t.key == key)
    if scheme == FLOAT or row.cells[scheme].measured:
        return False
    t0 = time.perf_counter()
    _measure_cell(ws, row, scheme, decoded)
    _predict(row, ws.signal)
    table.seconds["run_s"] = round(table.seconds.get("run_s", 0.0) + time.perf_counter() - t0, 3)
    table.runs = int(round(ws.runs))
    return True


def float_cell(t: TensorSensitivity) -> Cell:
    """The do-nothing option of a tensor: its float bytes, no error."""
    return Cell(FLOAT, t.float_bytes, 0.0, 0.0, 200.0, None, True)


__all__ = ["DEFAULT_SCHEMES", "Cell", "TensorSensitivity", "SensitivityTable", "measure", "refine",
           "encode_scheme", "stored_bytes", "decode_overhead"]
