"""CTC decoding and the character error rate."""

from __future__ import annotations

import numpy as np
import pytest

from quantzoo.compare import text as T


def test_ctc_greedy_merges_repeats_and_drops_blanks_but_keeps_a_doubled_letter_split_by_a_blank():
    vocab = ["<blank>", "l", "o", "h", "e", " "]
    ids = np.array([[3, 3, 4, 1, 1, 0, 1, 2, 5, 0]])
    assert T.ctc_greedy(ids, vocab) == ["hello"]  # trailing space stripped


def test_levenshtein_and_cer():
    assert T.levenshtein("", "abc") == 3
    assert T.levenshtein("flaw", "lawn") == 2
    assert T.cer("model zoo", "model zoo") == 0.0
    assert T.cer("modl zoo", "model zoo") == pytest.approx(1 / 9)
    assert T.cer("x", "") == 1.0
