"""Read a .safetensors file into numpy arrays, without the safetensors package.

The format (https://huggingface.co/docs/safetensors): 8 bytes little-endian header length H,
then H bytes of JSON ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__":
{...}}``, then the data, each tensor's bytes little-endian and row-major at its offsets from the
end of the header. Only tensors are read: no code runs (like ``torch.load(weights_only=True)``).
The manifest's ``architecture.weights_reader: st_reader:read`` makes the `pytorch` source kind
read the weights with `read` (the safetensors package is not a dependency). See ARCHITECTURE.md,
"Text embeddings".
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np


DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
          "U8": "u1", "BOOL": "?", "BF16": "<u2"}  # BF16: the raw 16 bits, widened by `bf16_to_f32`
MAX_HEADER = 100 * 1024 * 1024


def _header(raw: bytes, where: str) -> tuple[dict, int]:
    if len(raw) < 8:
        raise ValueError(f"{where} is {len(raw)} bytes, too short for a safetensors file (8-byte header length)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > MAX_HEADER or 8 + n > len(raw):
        raise ValueError(f"{where}: the safetensors header length {n} does not fit the file of {len(raw)} bytes")
    try:
        header = json.loads(raw[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"{where}: the safetensors header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise ValueError(f"{where}: the safetensors header is a {type(header).__name__}, expected an object")
    return header, 8 + n


def bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns (uint16) -> float32 (the high half of a float32).

    >>> bf16_to_f32(np.array([0x3F80, 0xC000], dtype=np.uint16)).tolist()
    [1.0, -2.0]
    """
    return (bits.astype(np.uint32) << 16).view(np.float32)


def read(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of the file by name (sorted), as numpy arrays (bfloat16 widened to float32).

    >>> import tempfile; p = Path(tempfile.mkdtemp()) / "w.safetensors"
    >>> body = np.arange(3, dtype="<f4").tobytes()
    >>> h = json.dumps({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}}).encode()
    >>> _ = p.write_bytes(struct.pack("<Q", len(h)) + h + body)
    >>> read(p)["a"].tolist()
    [0.0, 1.0, 2.0]
    """
    where = str(path)
    raw = Path(path).read_bytes()
    header, start = _header(raw, where)
    out = {}
    for name in sorted(k for k in header if k != "__metadata__"):
        info = header[name]
        try:
            dtype, shape, (begin, end) = info["dtype"], [int(d) for d in info["shape"]], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{where}: tensor {name!r} lacks dtype, shape or data_offsets: {info!r}") from None
        if dtype not in DTYPES:
            raise ValueError(f"{where}: tensor {name!r} has dtype {dtype}; readable: {', '.join(DTYPES)}")
        item = np.dtype(DTYPES[dtype]).itemsize
        count = int(np.prod(shape)) if shape else 1
        if end - begin != count * item or start + end > len(raw) or begin < 0:
            raise ValueError(f"{where}: tensor {name!r} ({dtype} {shape}) has data_offsets [{begin}, {end}], "
                                f"expected {count * item} bytes inside the file; the file is damaged")
        a = np.frombuffer(raw, dtype=DTYPES[dtype], count=count, offset=start + begin).reshape(shape)
        out[name] = bf16_to_f32(a) if dtype == "BF16" else a.astype(a.dtype.newbyteorder("="), copy=True)
    return out
