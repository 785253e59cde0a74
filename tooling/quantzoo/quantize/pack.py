"""Bit packing: n-bit codes as byte-aligned bit planes, and their numpy decode.

An n-bit code is split into fields of 4, 2 and 1 bits (the binary digits of n: 3 = 2+1,
5 = 4+1, 6 = 4+2, 7 = 4+2+1; 1, 2, 4 and 8 are one field). Each field of every code goes into
its own packed little-endian stream, so a byte of a w-bit stream holds exactly 8/w fields and
never straddles. Storage is exactly n bits per code plus at most 7 codes of padding. The
in-graph decode (artifact.py) reads a group of codes at once: a byte of the first stream and
the matching sub-byte unit of every other stream form one joint index into a small table.

    >>> codes = np.array([5, 0, 7, 3, 1, 6, 2, 4], np.uint8)
    >>> planes = pack(codes, 3)
    >>> [p.nbytes for p in planes], unpack(planes, 3, 8).tolist()
    ([2, 1], [5, 0, 7, 3, 1, 6, 2, 4])
"""

from __future__ import annotations

import numpy as np

# nbits -> ((field width, shift within the code), ...), low bits first
PLANES: dict[int, tuple[tuple[int, int], ...]] = {
    1: ((1, 0),),
    2: ((2, 0),),
    3: ((2, 0), (1, 2)),
    4: ((4, 0),),
    5: ((4, 0), (1, 4)),
    6: ((4, 0), (2, 4)),
    7: ((4, 0), (2, 4), (1, 6)),
    8: ((8, 0),),
}
ALIGN = 8  # codes are padded to a multiple of 8 so that every stream ends on a byte


def padded_count(count: int) -> int:
    """Number of codes after padding to `ALIGN`.

    >>> padded_count(10)
    16
    """
    return -(-count // ALIGN) * ALIGN


def pack(codes: np.ndarray, nbits: int) -> list[np.ndarray]:
    """One packed uint8 stream per field of `PLANES[nbits]`; codes must be < 2**nbits."""
    flat = np.asarray(codes).ravel()
    if flat.size and int(flat.max()) >= (1 << nbits):
        raise ValueError(f"code {int(flat.max())} does not fit in {nbits} bits")
    n = padded_count(flat.size)
    full = np.zeros(n, np.uint8)
    full[: flat.size] = flat
    out = []
    for width, shift in PLANES[nbits]:
        per_byte = 8 // width
        field = ((full >> shift) & ((1 << width) - 1)).reshape(-1, per_byte)
        stream = np.zeros(field.shape[0], np.uint8)
        for j in range(per_byte):
            stream |= (field[:, j] << (j * width)).astype(np.uint8)
        out.append(stream)
    return out


def unpack(planes: list[np.ndarray], nbits: int, count: int) -> np.ndarray:
    """The first `count` codes (int32) of packed `planes`: the numpy twin of the graph decode."""
    total = None
    for stream, (width, shift) in zip(planes, PLANES[nbits]):
        part = byte_table(width, shift)[stream.astype(np.int32)].reshape(-1)
        total = part if total is None else total + part
    return total[:count]


def byte_table(width: int, shift: int) -> np.ndarray:
    """int32 [256, 8/width]: the fields of a byte of a width-bit stream, shifted into place.

    >>> byte_table(4, 0)[0x3A].tolist()
    [10, 3]
    """
    per_byte = 8 // width
    b = np.arange(256, dtype=np.int32)[:, None]
    div = (1 << (np.arange(per_byte, dtype=np.int32) * width))[None, :]
    return ((b // div) % (1 << width)) * (1 << shift)


def packed_nbytes(count: int, nbits: int) -> int:
    """Bytes of all streams for `count` codes.

    >>> packed_nbytes(2048, 3)
    768
    """
    return padded_count(count) * nbits // 8
