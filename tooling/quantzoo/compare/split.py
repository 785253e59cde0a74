"""Calibration and evaluation splits of a dataset: deterministic, disjoint, recorded.

Anything that looks at data to choose something (per-layer bit allocation, say) uses the
calibration part; every published figure comes from the evaluation part, so no choice is ever
scored on the data it was made on. An item goes to calibration when the hash of a salt and its
key, read as a number in [0, 1), is below the dataset's ``calibration`` fraction: the rule needs
no state, gives the same split on every machine, and adding items to a dataset never moves the
old ones. Several views of one photo are one item (the dataset adapter's `cluster`), so a photo
is never on both sides. See ARCHITECTURE.md, "Uncertainty and splits".
"""

from __future__ import annotations

import hashlib
from typing import Callable, Sequence

SALT = "quantzoo-split-1"
PARTS = ("evaluation", "calibration")


def position(item: str, salt: str = SALT) -> float:
    """Where an item falls in [0, 1): the first 8 bytes of sha256(salt, NUL, item) as a fraction.

    >>> 0 <= position("coffee.png") < 1, position("coffee.png") == position("coffee.png")
    (True, True)
    """
    digest = hashlib.sha256(f"{salt}\0{item}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def part_of(item: str, fraction: float, salt: str = SALT) -> str:
    """``"calibration"`` or ``"evaluation"`` for one item under a calibration `fraction`.

    >>> part_of("a", 0.0), part_of("a", 1.0)
    ('evaluation', 'calibration')
    """
    return "calibration" if position(item, salt) < fraction else "evaluation"


def select(keys: Sequence[str], fraction: float, part: str, cluster: Callable[[str], str] | None = None,
           salt: str = SALT) -> list[int]:
    """Indices of the samples (by key) that belong to `part`; with no fraction, every sample is
    evaluation and none is calibration.

    >>> keys = [f"line-{i:04d}" for i in range(1000)]
    >>> cal, ev = select(keys, 0.2, "calibration"), select(keys, 0.2, "evaluation")
    >>> len(cal) + len(ev), set(cal) & set(ev), 150 < len(cal) < 250
    (1000, set(), True)
    >>> select(["a#1", "a#2", "b#1"], 0.5, "calibration", cluster=lambda k: k.split("#")[0]) in ([], [0, 1], [2], [0, 1, 2])
    True
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}, found {part!r}")
    item = cluster or (lambda k: k)
    return [i for i, k in enumerate(keys) if part_of(item(k), fraction, salt) == part]


def record(fraction: float, part: str, salt: str = SALT) -> dict:
    """What a comparison records about its split: the part, the fraction, the salt and the rule.

    >>> record(0.2, "evaluation")["rule"]
    'calibration when sha256(salt, NUL, item) < fraction'
    """
    return {"part": part, "calibration_fraction": fraction, "salt": salt,
            "rule": "calibration when sha256(salt, NUL, item) < fraction"}
