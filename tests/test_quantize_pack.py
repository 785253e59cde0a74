"""pack: n-bit codes as byte-aligned bit planes, exactly n bits per code plus the padding."""

from __future__ import annotations

import numpy as np
import pytest

from quantzoo.quantize.pack import PLANES, pack, packed_nbytes, padded_count, unpack


@pytest.mark.parametrize("nbits", range(1, 9))
@pytest.mark.parametrize("count", [1, 7, 8, 9, 2121])
def test_unpack_gives_back_every_code_at_every_width(nbits, count):
    codes = np.random.default_rng(nbits * 1000 + count).integers(0, 1 << nbits, count).astype(np.uint8)
    planes = pack(codes, nbits)
    assert all(p.dtype == np.uint8 for p in planes)
    assert sum(p.nbytes for p in planes) == packed_nbytes(count, nbits) == padded_count(count) * nbits // 8
    assert np.array_equal(unpack(planes, nbits, count), codes.astype(np.int32))


def test_the_fields_of_a_width_add_up_to_it():
    for nbits, fields in PLANES.items():
        assert sum(w for w, _ in fields) == nbits
        assert [s for _, s in fields] == [sum(w for w, _ in fields[:i]) for i in range(len(fields))]
        assert all(w in (1, 2, 4, 8) for w, _ in fields)


def test_a_code_that_does_not_fit_is_refused():
    with pytest.raises(ValueError, match="code 8 does not fit in 3 bits"):
        pack(np.array([1, 8], np.uint8), 3)
