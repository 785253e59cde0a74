"""CTC text recognition: greedy decoding of per-step class ids, and the character error rate."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def ctc_greedy(ids: np.ndarray, vocab: Sequence[str] | None = None, blank: int = 0) -> list:
    """Greedy CTC decode of [N, T] argmax ids: merge repeats, drop the blank.

    With `vocab` the result is a list of strings (stray leading/trailing spaces stripped);
    without, a list of tuples of class ids.

    >>> ctc_greedy(np.array([[0, 1, 1, 0, 1, 2, 2]]), ["-", "a", "b"])
    ['aab']
    >>> ctc_greedy(np.array([[3, 3, 0, 3]]))
    [(3, 3)]
    """
    out = []
    for row in np.asarray(ids):
        keep = row[(row != blank) & np.concatenate(([True], row[1:] != row[:-1]))]
        if vocab is None:
            out.append(tuple(int(i) for i in keep))
        else:
            out.append("".join(vocab[i] if i < len(vocab) else "" for i in keep).strip())
    return out


def levenshtein(a: Sequence, b: Sequence) -> int:
    """Edit distance (insertions, deletions, substitutions cost 1).

    >>> levenshtein("kitten", "sitting")
    3
    """
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(hypothesis: Sequence, reference: Sequence) -> float:
    """Character error rate: edit distance / reference length (an empty reference counts as 1).

    >>> cer("helo", "hello")
    0.2
    >>> cer("", "")
    0.0
    """
    return levenshtein(hypothesis, reference) / max(len(reference), 1)
