"""The compression modes: one `Mode` record per mode in `MODES`, each with its encode function.

Every mode has the signature ``encode(w, nbits, layout) -> Encoded``: `w` is one float32 weight
tensor, `layout` says how its values are grouped (granularity, channel and block axes), and the
result holds integer codes plus what maps them back to floats. `decode` is the numpy reference
of that mapping; the ONNX artifact performs exactly the same float32 operations, so the decoded
weights in onnxruntime are bit-identical to `decode(encode(...))`.

Two families:

- affine ("linear", "linear_symmetric"): ``w ≈ (code - zero_point) * scale`` with one scale and
  zero point per tensor, per output channel or per block. At 1 bit min/max is degenerate, so
  both use sign × scale: ``code = w >= 0``, ``zero_point = 0.5``, ``scale = 2·mean|w|`` (the
  least-squares scale for a sign code).
- tables ("linear_lut", "kmeans_lut", "unique_lut", "custom_lut"): ``w ≈ lut[code]`` with one
  2^n-entry table per tensor or per group of output channels. A table mode is a function
  ``(values, nbits) -> (lut, codes)`` over one group's values (`TABLE_FUNCTIONS`).

"fp16" stores the tensor as float16 and casts it back.

A `Mode` also holds what the rest of the program needs to know about the mode (its variant-id
prefix, granularities, nbits range, scheduling hint, chart style): the engine, the variant
grammar, the CLI and the site read it from `MODES` when they run, so adding a mode is one
record and its encode function here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import QuantzooError
from .kmeans import assign, kmeans_1d

LINEAR_GRANULARITIES = ("per_tensor", "per_channel", "per_block")
TABLE_GRANULARITIES = ("per_tensor", "per_grouped_channel")
DEFAULT_GROUP_SIZE = 32


@dataclass(frozen=True)
class Layout:
    """How one tensor's values are grouped for quantization."""

    granularity: str = "per_tensor"
    channel_axis: int | None = None  # output-channel axis (per_channel, per_block, groups)
    block_axis: int | None = None  # input axis cut into blocks (per_block)
    block_size: int | None = None
    group_size: int | None = None
    lut_function: Callable | None = None
    lut_function_name: str | None = None


@dataclass
class Encoded:
    """One compressed tensor. `kind` is "table", "affine" or "fp16".

    table:  value = ``tables.ravel()[codes + offsets]`` with `tables` float32 [G, 2^n] and
            `offsets` int32 broadcast against `codes` (``group * 2^n``; None when G == 1).
    affine: value = ``((codes.reshape(view) - zero_point) * scale).reshape(shape)`` in float32.
    fp16:   value = ``half.astype(float32)``.
    """

    kind: str
    shape: tuple[int, ...]
    nbits: int
    granularity: str
    codes: np.ndarray | None = None
    tables: np.ndarray | None = None
    offsets: np.ndarray | None = None
    scale: np.ndarray | None = None
    zero_point: np.ndarray | None = None
    view: tuple[int, ...] | None = None
    half: np.ndarray | None = None
    note: str | None = None
    group_size: int | None = None  # channels per table (table kind with offsets)

    @property
    def param_count(self) -> int:
        """Float parameters stored beside the codes (table entries, scales and zero points)."""
        if self.kind == "table":
            return int(self.tables.size)
        if self.kind == "affine":
            return int(self.scale.size + self.zero_point.size)
        return 0


def decode(enc: Encoded) -> np.ndarray:
    """The float32 weight an `Encoded` stands for (the numpy twin of the in-graph decode).

    >>> enc = MODES["linear"].encode(np.array([[0.0, 1.0], [2.0, -2.0]], np.float32), 8, Layout("per_tensor"))
    >>> enc.codes.tolist(), [round(float(v), 3) for v in decode(enc).ravel()]
    ([[127, 191], [254, 0]], [0.0, 1.004, 1.992, -1.992])
    """
    if enc.kind == "fp16":
        return enc.half.astype(np.float32)
    if enc.kind == "table":
        flat = enc.tables.reshape(-1)
        idx = enc.codes.astype(np.int32)
        if enc.offsets is not None:
            idx = idx + enc.offsets
        return flat[idx].reshape(enc.shape)
    return _rows(enc.codes.reshape(enc.view), enc.zero_point, enc.scale,
                 fn=lambda c, z, s: (c.astype(np.float32) - z) * s, dtype=np.float32).reshape(enc.shape)


# --- grouping helpers -----------------------------------------------------------------------

def _reduce_plan(w: np.ndarray, layout: Layout) -> tuple[tuple[int, ...], tuple[int, ...], str, str | None]:
    """(view shape, axes to reduce over in that view, effective granularity, note)."""
    shape = w.shape
    g = layout.granularity
    ca = layout.channel_axis
    if g == "per_tensor" or w.ndim == 0:
        return shape, tuple(range(w.ndim)), "per_tensor", None
    if ca is None:
        return shape, tuple(range(w.ndim)), "per_tensor", f"{g} needs an output-channel axis; used per_tensor"
    if g == "per_channel":
        return shape, tuple(a for a in range(w.ndim) if a != ca), "per_channel", None
    # per_block: cut block_axis into (dim // B, B); one scale per (channel, block)
    ba, bs = layout.block_axis, layout.block_size
    reduce_ch = tuple(a for a in range(w.ndim) if a != ca)
    if ba is None or ba == ca:
        return shape, reduce_ch, "per_channel", "per_block needs an input axis; used per_channel"
    dim = shape[ba]
    if dim % bs != 0 or dim == bs:
        why = (f"input axis {ba} has {dim} entries, not a multiple of block_size {bs}" if dim % bs
               else f"input axis {ba} has only {dim} entries (one block)")
        return shape, reduce_ch, "per_channel", f"per_block: {why}; used per_channel"
    view = shape[:ba] + (dim // bs, bs) + shape[ba + 1:]
    ca_view = ca if ca < ba else ca + 1
    keep = {ca_view, ba}
    return view, tuple(a for a in range(len(view)) if a not in keep), "per_block", None


# Tensors larger than SLAB values are encoded and decoded a slab of rows at a time, so that a
# large weight costs its codes plus one slab of float temporaries, not several float copies.
# (CHUNK: the engine sums the relative errors of larger tensors slab by slab.)
SLAB = 1 << 20
CHUNK = 1 << 22


def _rows(v: np.ndarray, *params: np.ndarray, fn: Callable, dtype) -> np.ndarray:
    """``fn(v, *params)`` (elementwise, params broadcast with keepdims) a slab of axis-0 rows at a
    time for a large `v`: the same values as one call, without its full-size temporaries."""
    if v.ndim == 0 or v.size <= SLAB:
        return fn(v, *params).astype(dtype)
    out = np.empty(v.shape, dtype)
    step = max(1, SLAB // (v.size // v.shape[0]))
    for i in range(0, v.shape[0], step):
        rows = slice(i, i + step)
        out[rows] = fn(v[rows], *(p if p.ndim == 0 or p.shape[0] == 1 else p[rows] for p in params))
    return out


def decoded_slabs(enc: Encoded):
    """`decode(enc)` flattened, as (offset, float32 values) pieces of about `SLAB` values: an
    affine tensor is decoded a slab at a time, never whole.

    >>> enc = MODES["linear"].encode(np.ones((4, 2), np.float32), 8, Layout("per_channel", 1))
    >>> [(o, v.size) for o, v in decoded_slabs(enc)]
    [(0, 8)]
    """
    if enc.kind != "affine" or len(enc.view) == 0:
        flat = decode(enc).reshape(-1)
        for i in range(0, max(flat.size, 1), SLAB):
            yield i, flat[i:i + SLAB]
        return
    codes = enc.codes.reshape(enc.view)
    step = max(1, SLAB // max(1, codes.size // max(1, codes.shape[0])))
    pick = lambda p, rows: p if p.ndim == 0 or p.shape[0] == 1 else p[rows]  # noqa: E731
    for i in range(0, max(codes.shape[0], 1), step):
        rows = slice(i, i + step)
        part = (codes[rows].astype(np.float32) - pick(enc.zero_point, rows)) * pick(enc.scale, rows)
        yield i * (codes.size // max(1, codes.shape[0])), part.astype(np.float32, copy=False).reshape(-1)


def _affine(w: np.ndarray, nbits: int, layout: Layout, symmetric: bool) -> Encoded:
    view, axes, gran, note = _reduce_plan(w, layout)
    v = np.asarray(w, np.float32).reshape(view)
    top = (1 << nbits) - 1
    if nbits == 1:
        # Sign × scale: min/max at one bit would map every weight to min or max.
        alpha = np.mean(np.abs(v), axis=axes, keepdims=True, dtype=np.float64).astype(np.float32)
        scale = (alpha * np.float32(2)).astype(np.float32)
        zp = np.full_like(scale, 0.5)
        codes = _rows(v, fn=lambda x: x >= 0, dtype=np.uint8)
    elif symmetric:
        qmax = (1 << (nbits - 1)) - 1
        m = np.max(np.abs(v), axis=axes, keepdims=True)
        scale = np.where(m > 0, m / np.float32(qmax), np.float32(1)).astype(np.float32)
        zp = np.full_like(scale, float(1 << (nbits - 1)))
        codes = _rows(v, scale, zp, fn=lambda x, s, z: np.clip(np.round(x / s), -qmax, qmax) + z, dtype=np.uint8)
    else:
        lo = np.minimum(np.min(v, axis=axes, keepdims=True), 0).astype(np.float32)
        hi = np.maximum(np.max(v, axis=axes, keepdims=True), 0).astype(np.float32)
        scale = np.where(hi > lo, (hi - lo) / np.float32(top), np.float32(1)).astype(np.float32)
        zp = np.clip(np.round(-lo / scale), 0, top).astype(np.float32)
        codes = _rows(v, scale, zp, fn=lambda x, s, z: np.clip(np.round(x / s) + z, 0, top), dtype=np.uint8)
    if gran == "per_tensor":
        lut = ((np.arange(1 << nbits, dtype=np.float32) - zp.reshape(())) * scale.reshape(())).astype(np.float32)
        return Encoded("table", w.shape, nbits, gran, codes=codes.reshape(w.shape), tables=lut[None], note=note)
    return Encoded("affine", w.shape, nbits, gran, codes=codes.reshape(w.shape), scale=scale, zero_point=zp,
                   view=tuple(view), note=note)


def linear(w: np.ndarray, nbits: int, layout: Layout) -> Encoded:
    """Asymmetric min/max: ``scale = (max - min) / (2^n - 1)`` over a range that includes 0,
    integer zero point (so 0 is exact). 1 bit: sign × scale."""
    return _affine(w, nbits, layout, symmetric=False)


def linear_symmetric(w: np.ndarray, nbits: int, layout: Layout) -> Encoded:
    """Symmetric: ``scale = max|w| / (2^(n-1) - 1)``, zero point 2^(n-1). 1 bit: sign × scale."""
    return _affine(w, nbits, layout, symmetric=True)


def fp16(w: np.ndarray, nbits: int, layout: Layout) -> Encoded:
    """Float16 storage (values beyond ±65504 saturate rather than becoming inf)."""
    half = np.clip(w, -65504, 65504).astype(np.float16)
    return Encoded("fp16", w.shape, 16, "per_tensor", half=half)


# --- lookup tables --------------------------------------------------------------------------

def table_linear(values: np.ndarray, nbits: int) -> tuple[np.ndarray, np.ndarray]:
    """2^n evenly spaced entries from min to max; each value to its nearest entry."""
    lo, hi = float(values.min()), float(values.max())
    lut = np.linspace(lo, hi, 1 << nbits, dtype=np.float64).astype(np.float32)
    return lut, assign(values.ravel(), lut)


def table_kmeans(values: np.ndarray, nbits: int) -> tuple[np.ndarray, np.ndarray]:
    """1-D k-means with k = 2^n (see kmeans.py)."""
    lut, codes = kmeans_1d(values, 1 << nbits)
    return lut, codes.ravel()


def table_unique(values: np.ndarray, nbits: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values themselves: exact, or an error when there are more than 2^n."""
    uniq = np.unique(values)
    if len(uniq) > (1 << nbits):
        need = int(np.ceil(np.log2(len(uniq))))
        raise _TooManyValues(len(uniq), need)
    lut = np.full(1 << nbits, uniq[-1], np.float32)
    lut[: len(uniq)] = uniq
    return lut, np.searchsorted(uniq, values.ravel()).astype(np.uint8)


class _TooManyValues(Exception):
    def __init__(self, count: int, need: int):
        self.count, self.need = count, need


TABLE_FUNCTIONS: dict[str, Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]] = {
    "linear_lut": table_linear,
    "kmeans_lut": table_kmeans,
    "unique_lut": table_unique,
}


def load_lut_function(spec: Callable | str) -> tuple[Callable, str]:
    """A custom table function from a callable or ``"module:function"``, with a display name."""
    if callable(spec):
        name = f"{getattr(spec, '__module__', '?')}:{getattr(spec, '__qualname__', repr(spec))}"
        return spec, name
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise QuantzooError(f"lut_function must be a callable or 'module:function', found {spec!r}")
    mod_name, func_name = spec.split(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise QuantzooError(f"lut_function {spec!r}: cannot import module {mod_name!r} ({e}); "
                            "make sure it is on PYTHONPATH") from None
    func = getattr(mod, func_name, None)
    if not callable(func):
        raise QuantzooError(f"lut_function {spec!r}: module {mod_name!r} has no function {func_name!r}")
    return func, spec


def _check_custom(name: str, values: np.ndarray, nbits: int, result) -> tuple[np.ndarray, np.ndarray]:
    where = f"lut_function {name}"
    if not (isinstance(result, tuple) and len(result) == 2):
        raise QuantzooError(f"{where} must return (lut, codes), found {type(result).__name__}")
    lut, codes = (np.asarray(r) for r in result)
    k = 1 << nbits
    if lut.ndim != 1 or not 1 <= lut.size <= k or lut.dtype.kind not in "fiu":
        raise QuantzooError(f"{where}: lut must be a 1-D numeric array of 1..{k} entries for nbits={nbits}, "
                            f"found shape {lut.shape} dtype {lut.dtype}")
    if not np.all(np.isfinite(lut)):
        raise QuantzooError(f"{where}: lut has non-finite entries")
    if codes.size != values.size or codes.dtype.kind not in "iu":
        raise QuantzooError(f"{where}: codes must be an integer array with one code per weight "
                            f"({values.size}, shape {values.shape}), found shape {codes.shape} dtype {codes.dtype}")
    if codes.size and (int(codes.min()) < 0 or int(codes.max()) >= lut.size):
        raise QuantzooError(f"{where}: codes must lie in [0, {lut.size - 1}] (the lut has {lut.size} entries), "
                            f"found [{int(codes.min())}, {int(codes.max())}]")
    full = np.full(k, lut[-1], np.float32)
    full[: lut.size] = lut.astype(np.float32)
    return full, codes.ravel().astype(np.uint8)


def _table(mode: str) -> Callable[[np.ndarray, int, Layout], Encoded]:
    def encode(w: np.ndarray, nbits: int, layout: Layout) -> Encoded:
        k = 1 << nbits
        if mode == "custom_lut":
            func, name = layout.lut_function, layout.lut_function_name

            def fn(values, nb):
                return _check_custom(name, values, nb, func(values, nb))
        else:
            fn = TABLE_FUNCTIONS[mode]
        ca = layout.channel_axis
        if layout.granularity != "per_grouped_channel" or ca is None or w.ndim == 0:
            note = None
            if layout.granularity == "per_grouped_channel":
                note = "per_grouped_channel needs an output-channel axis; used per_tensor"
            lut, codes = fn(w, nbits)
            return Encoded("table", w.shape, nbits, "per_tensor", codes=codes.reshape(w.shape),
                           tables=np.asarray(lut, np.float32)[None], note=note)
        gs = layout.group_size or DEFAULT_GROUP_SIZE
        n_ch = w.shape[ca]
        n_groups = -(-n_ch // gs)
        moved = np.moveaxis(w, ca, 0)
        codes = np.empty(moved.shape, np.uint8)
        tables = np.empty((n_groups, k), np.float32)
        for g in range(n_groups):
            part = moved[g * gs:(g + 1) * gs]
            lut, c = fn(part, nbits)
            tables[g] = lut
            codes[g * gs:(g + 1) * gs] = np.asarray(c).reshape(part.shape)
        oshape = [1] * w.ndim
        oshape[ca] = n_ch
        offsets = ((np.arange(n_ch, dtype=np.int32) // gs) * k).reshape(oshape)
        return Encoded("table", w.shape, nbits, "per_grouped_channel", codes=np.moveaxis(codes, 0, ca),
                       tables=tables, offsets=offsets, group_size=gs)

    encode.__name__ = mode
    return encode


@dataclass(frozen=True)
class Mode:
    """One quantization mode and everything the program needs to know about it."""

    name: str  # the mode name: quantize's ``mode=``, the CLI's --mode, artifact metadata
    prefix: str | None  # variant-id prefix ("kmeans" -> "kmeans-4"); None: the variant id is the name
    label: str  # for people (CLI help)
    encode: Callable[[np.ndarray, int, Layout], Encoded]
    granularities: tuple[str, ...]
    default_granularity: str
    nbits: tuple[int, int] | None  # inclusive range; None: the mode takes no nbits
    heavy: bool = False  # encoding is slow enough to spread large models over processes
    colour: str = "#16a34a"  # chart fill
    marker: str = "circle"  # chart marker: circle, square, triangle or diamond
    takes_lut_function: bool = False  # encode calls a user table function (Layout.lut_function)


MODES: dict[str, Mode] = {m.name: m for m in (
    Mode("linear", "linear", "min/max affine", linear, LINEAR_GRANULARITIES, "per_channel", (1, 8),
         colour="#2563eb"),
    Mode("linear_symmetric", "linear-sym", "symmetric affine", linear_symmetric, LINEAR_GRANULARITIES,
         "per_channel", (1, 8), colour="#0891b2"),
    Mode("linear_lut", "lut", "evenly spaced table", _table("linear_lut"), TABLE_GRANULARITIES, "per_tensor",
         (1, 8), colour="#7c3aed", marker="triangle"),
    Mode("kmeans_lut", "kmeans", "k-means table", _table("kmeans_lut"), TABLE_GRANULARITIES, "per_tensor",
         (1, 8), heavy=True, colour="#ea580c", marker="square"),
    Mode("unique_lut", "unique", "table of the distinct values", _table("unique_lut"), TABLE_GRANULARITIES,
         "per_tensor", (1, 8), colour="#16a34a", marker="triangle"),
    Mode("custom_lut", "custom", "table from a user function", _table("custom_lut"), TABLE_GRANULARITIES,
         "per_tensor", (1, 8), heavy=True, colour="#db2777", marker="triangle", takes_lut_function=True),
    Mode("fp16", None, "16-bit floats", fp16, ("per_tensor",), "per_tensor", None,
         colour="#6b7280", marker="diamond"),
)}


def all_granularities() -> tuple[str, ...]:
    """Every granularity some mode takes, in the order the modes name them (the CLI's choices).

    >>> all_granularities()
    ('per_tensor', 'per_channel', 'per_block', 'per_grouped_channel')
    """
    return tuple(dict.fromkeys(g for m in MODES.values() for g in m.granularities))
