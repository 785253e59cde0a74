"""Variant ids: the names a manifest gives its compressed builds (``kmeans-4``, ``fp16``).

The grammar is derived from `modes.MODES` each time it is used: a mode with a prefix gives the
ids ``<prefix>-<n>`` for every n in its nbits range, a mode without one gives its own name. A
new `Mode` record is therefore a new variant id with no edit here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from .modes import MODES
from .native import DEFAULT_REPRESENTATION, REPRESENTATIONS

DEFAULT_VARIANTS = ("fp16", "linear-8", "linear-6", "linear-4", "linear-3", "linear-2",
                    "kmeans-8", "kmeans-6", "kmeans-4", "kmeans-3", "kmeans-2", "kmeans-1")
_OVERRIDES = ("granularity", "block_size", "group_size", "lut_function", "representation")
# The auto variants (`quantize/allocate.py`): a scheme per tensor chosen on the calibration split,
# "auto" for the manifest's threshold, "auto-<target>" (auto-0.99) for another value of its metric.
AUTO_MODE = "auto"
_AUTO = re.compile(r"^auto(?:-(0\.\d+|1(?:\.0+)?))?$")
# "<prefix>-<n>-g<G>": a table mode per grouped channel, G output channels per table (kmeans-4-g8)
_GROUPED = re.compile(r"^(.+-\d+)-g(\d+)$")


class _DefaultGranularity(Mapping):
    """mode name -> its default granularity, read from `MODES` on every lookup."""

    def __getitem__(self, mode: str) -> str:
        return MODES[mode].default_granularity

    def __iter__(self) -> Iterator[str]:
        return iter(MODES)

    def __len__(self) -> int:
        return len(MODES)


MODE_DEFAULT_GRANULARITY: Mapping[str, str] = _DefaultGranularity()


@dataclass(frozen=True)
class Variant:
    """One compressed build of a model: a quantize configuration with a stable id."""

    id: str
    mode: str
    nbits: int | None
    granularity: str
    block_size: int | None = None
    group_size: int | None = None
    lut_function: str | None = None
    representation: str = DEFAULT_REPRESENTATION  # quantize/native.py
    target: float | None = None  # auto variants: the threshold value to meet (None: the manifest's)

    @property
    def auto(self) -> bool:
        """A per-tensor allocation (`quantize/allocate.py`) rather than one scheme for every tensor."""
        return self.mode == AUTO_MODE

    def spec(self) -> dict:
        """The quantize configuration as plain data (what keys the artifact cache); the
        representation only when it is not the default and the target only for auto variants, so
        earlier artifact keys stay valid."""
        return {k: v for k, v in self.__dict__.items()
                if k != "id" and not (k == "representation" and v == DEFAULT_REPRESENTATION)
                and not (k == "target" and not self.auto)}


def _match(vid: str) -> tuple[str, int | None] | None:
    """(mode, nbits) for a variant id, or None when no mode's grammar accepts it."""
    for m in MODES.values():
        if m.prefix is None and vid == m.name:
            return m.name, None
    prefixed = {m.prefix: m for m in MODES.values() if m.prefix is not None}
    widths = {n for m in prefixed.values() for n in range(m.nbits[0], m.nbits[1] + 1)}
    # longest prefix first, so that "linear-sym-3" is not read as "linear" + "sym-3"
    pattern = "^({})-({})$".format("|".join(re.escape(p) for p in sorted(prefixed, key=len, reverse=True)),
                                   "|".join(str(n) for n in sorted(widths, reverse=True)))
    found = re.match(pattern, vid)
    if not found:
        return None
    mode, nbits = prefixed[found.group(1)], int(found.group(2))
    return (mode.name, nbits) if mode.nbits[0] <= nbits <= mode.nbits[1] else None


def _unknown(vid: str) -> str:
    plain = [m.name for m in MODES.values() if m.prefix is None]
    prefixed = [m for m in MODES.values() if m.prefix is not None]
    lo, hi = min(m.nbits[0] for m in prefixed), max(m.nbits[1] for m in prefixed)
    return (f"unknown variant id {vid!r}; expected {' or '.join(plain + ['<mode>'])}-<{lo}..{hi}> with mode one of "
            + ", ".join(m.prefix for m in prefixed) + " (a table mode may add -g<G>: G channels per table), "
            "or auto / auto-<target>")


def parse_variant(entry: str | dict) -> Variant:
    """A variant from its id (``"kmeans-4"``) or a mapping with ``id`` and overrides.

    >>> parse_variant("kmeans-4")
    Variant(id='kmeans-4', mode='kmeans_lut', nbits=4, granularity='per_tensor', block_size=None, group_size=None, lut_function=None, representation='auto', target=None)
    >>> parse_variant({"id": "linear-4", "granularity": "per_block", "block_size": 32}).block_size
    32
    >>> parse_variant("kmeans-9")
    Traceback (most recent call last):
    ...
    ValueError: unknown variant id 'kmeans-9'; expected fp16 or <mode>-<1..8> with mode one of linear, linear-sym, lut, kmeans, unique, custom (a table mode may add -g<G>: G channels per table), or auto / auto-<target>
    >>> v = parse_variant("kmeans-4-g8"); v.granularity, v.group_size
    ('per_grouped_channel', 8)
    """
    overrides: dict = {}
    if isinstance(entry, dict):
        overrides = {k: v for k, v in entry.items() if k != "id"}
        vid = entry.get("id")
    else:
        vid = entry
    if not isinstance(vid, str):
        raise ValueError(f"a variant needs an id string, found {vid!r}")
    if _AUTO.match(vid):
        return _auto(vid, overrides)
    grouped = _GROUPED.match(vid)
    if grouped and _match(grouped.group(1)) and "granularity" not in overrides and "group_size" not in overrides:
        base = parse_variant({"id": grouped.group(1), **overrides})
        if "per_grouped_channel" not in MODES[base.mode].granularities or int(grouped.group(2)) < 1:
            raise ValueError(f"variant {vid!r}: -g<G> (G output channels per table) applies to table modes only")
        return Variant(**{**base.__dict__, "id": vid, "granularity": "per_grouped_channel",
                          "group_size": int(grouped.group(2))})
    found = _match(vid)
    if found is None:
        raise ValueError(_unknown(vid))
    mode, nbits = found
    unknown = set(overrides) - set(_OVERRIDES)
    if unknown:
        raise ValueError(f"variant {vid!r} has unknown keys {sorted(unknown)}")
    representation = overrides.get("representation", DEFAULT_REPRESENTATION)
    if representation not in REPRESENTATIONS:
        raise ValueError(f"variant {vid!r}: representation must be one of {', '.join(REPRESENTATIONS)}, "
                         f"found {representation!r}")
    if MODES[mode].takes_lut_function and not overrides.get("lut_function"):
        raise ValueError(f"variant {vid!r} needs lut_function: 'module:function'")
    return Variant(
        id=vid, mode=mode, nbits=nbits,
        granularity=overrides.get("granularity", MODES[mode].default_granularity),
        block_size=overrides.get("block_size"), group_size=overrides.get("group_size"),
        lut_function=overrides.get("lut_function"), representation=representation,
    )


def _auto(vid: str, overrides: dict) -> Variant:
    """An auto variant: ``auto`` (the manifest's threshold) or ``auto-<target>``.

    >>> _auto("auto-0.99", {}).target, _auto("auto", {}).target, _auto("auto", {}).spec()["mode"]
    (0.99, None, 'auto')
    """
    unknown = set(overrides) - {"representation"}
    if unknown:
        raise ValueError(f"variant {vid!r} has unknown keys {sorted(unknown)}; an auto variant takes representation only")
    representation = overrides.get("representation", DEFAULT_REPRESENTATION)
    if representation not in REPRESENTATIONS:
        raise ValueError(f"variant {vid!r}: representation must be one of {', '.join(REPRESENTATIONS)}, "
                         f"found {representation!r}")
    target = _AUTO.match(vid).group(1)
    return Variant(id=vid, mode=AUTO_MODE, nbits=None, granularity="mixed", representation=representation,
                   target=float(target) if target else None)
