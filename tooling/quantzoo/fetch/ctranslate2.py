"""Read a CTranslate2 ``model.bin``: its variables as numpy arrays, without CTranslate2.

The file is little-endian (ARCHITECTURE.md, "Weights in other formats"):

- ``u32 version``; from version 2 a ``u16``-length spec name (NUL-terminated) and a ``u32`` revision;
- ``u32`` variable count, then per variable: a ``u16``-length name (NUL-terminated), ``u8`` rank,
  ``u32`` × rank dims, from version 4 a ``u8`` dtype code (`DTYPES`; before it every variable is
  float32), ``u32`` byte count, the data;
- from version 3, ``u32`` alias count, then pairs of ``u16``-length names (alias, target).

`read_model` returns a `Ct2Model`; `state_dict` turns its variables (aliases resolved) into
``{name with '/' as '.': array}``, the names a builder's ``weights_reader`` maps onto modules.
Numpy only; bad bytes raise `QuantzooError` naming the file and the offset.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import QuantzooError

# CTranslate2's DataType enum (include/ctranslate2/types.h), the codes a version-4+ file stores
DTYPES: dict[int, np.dtype] = {0: np.dtype("<f4"), 1: np.dtype("i1"), 2: np.dtype("<i2"),
                               3: np.dtype("<i4"), 4: np.dtype("<f2")}
SUPPORTED_VERSIONS = range(1, 7)


@dataclass
class Ct2Model:
    """A parsed ``model.bin``: its format version, spec name, revision, variables and aliases."""

    version: int
    spec: str
    revision: int
    variables: dict[str, np.ndarray] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)


class _Reader:
    def __init__(self, data: bytes, where: str):
        self.data, self.at, self.where = data, 0, where

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.data):
            raise QuantzooError(f"{self.where}: truncated CTranslate2 file: {n} bytes wanted at offset {self.at}, "
                                f"the file has {len(self.data)}; download the package again")
        out = self.data[self.at:self.at + n]
        self.at += n
        return out

    def num(self, fmt: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        raw = self.take(self.num("H"))
        return raw.rstrip(b"\0").decode("utf-8")


def parse(data: bytes, where: str = "model.bin") -> Ct2Model:
    """The `Ct2Model` in `data` (the bytes of a ``model.bin``).

    >>> blob = write_model({"a/w": np.arange(3, dtype=np.float16)}, aliases={"b/w": "a/w"})
    >>> m = parse(blob); m.spec, m.variables["a/w"].tolist(), m.aliases
    ('TestSpec', [0.0, 1.0, 2.0], {'b/w': 'a/w'})
    """
    r = _Reader(data, where)
    version = r.num("I")
    if version not in SUPPORTED_VERSIONS:
        raise QuantzooError(f"{where}: CTranslate2 format version {version}, expected 1-{SUPPORTED_VERSIONS[-1]}; "
                            "is this a CTranslate2 model.bin?")
    spec, revision = (r.string(), r.num("I")) if version >= 2 else ("", 1)
    model = Ct2Model(version, spec, revision)
    for _ in range(r.num("I")):
        name = r.string()
        dims = [r.num("I") for _ in range(r.num("B"))]
        code = r.num("B") if version >= 4 else 0
        if code not in DTYPES:
            raise QuantzooError(f"{where}: variable {name!r} has dtype code {code} at offset {r.at - 1}; "
                                f"known codes are {sorted(DTYPES)} (f32, i8, i16, i32, f16)")
        size = r.num("I")
        dt = DTYPES[code]
        if size != int(np.prod(dims, dtype=np.int64)) * dt.itemsize:
            raise QuantzooError(f"{where}: variable {name!r} of shape {dims} and dtype {dt} should take "
                                f"{int(np.prod(dims)) * dt.itemsize} bytes, the file says {size}")
        model.variables[name] = np.frombuffer(r.take(size), dtype=dt).reshape(dims).copy()
    if version >= 3:
        for _ in range(r.num("I")):
            alias = r.string()
            model.aliases[alias] = r.string()
    if r.at != len(data):
        raise QuantzooError(f"{where}: {len(data) - r.at} unread bytes after the last record (offset {r.at})")
    return model


def read_model(path: Path) -> Ct2Model:
    """`parse` of the file at `path`."""
    return parse(Path(path).read_bytes(), str(path))


def state_dict(model: Ct2Model) -> dict[str, np.ndarray]:
    """Every variable and alias as ``{dotted name: array}`` (``encoder/conv1/weight`` ->
    ``encoder.conv1.weight``).

    >>> state_dict(parse(write_model({"x/y": np.zeros(1, np.float32)}, aliases={"z": "x/y"}))).keys()
    dict_keys(['x.y', 'z'])
    """
    out = {k.replace("/", "."): v for k, v in model.variables.items()}
    for alias, target in model.aliases.items():
        if target not in model.variables:
            raise QuantzooError(f"CTranslate2 alias {alias!r} points at {target!r}, which is not a variable")
        out[alias.replace("/", ".")] = model.variables[target]
    return out


def write_model(variables: dict[str, np.ndarray], spec: str = "TestSpec", revision: int = 1,
                aliases: dict[str, str] | None = None, version: int = 6) -> bytes:
    """The bytes of a ``model.bin`` holding `variables` (the inverse of `parse`; for tests)."""
    codes = {dt: c for c, dt in DTYPES.items()}

    def s(text: str) -> bytes:
        raw = text.encode("utf-8") + b"\0"
        return struct.pack("<H", len(raw)) + raw

    out = [struct.pack("<I", version), s(spec), struct.pack("<I", revision), struct.pack("<I", len(variables))]
    for name, a in variables.items():
        a = np.ascontiguousarray(a)
        out += [s(name), struct.pack("<B", a.ndim), struct.pack(f"<{a.ndim}I", *a.shape),
                struct.pack("<B", codes[a.dtype.newbyteorder("<") if a.dtype.itemsize > 1 else a.dtype]),
                struct.pack("<I", a.nbytes), a.tobytes()]
    aliases = aliases or {}
    out.append(struct.pack("<I", len(aliases)))
    for k, v in aliases.items():
        out += [s(k), s(v)]
    return b"".join(out)
