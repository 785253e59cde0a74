"""Models bigger than memory should hold twice: tensors read from disk when they are needed, and
artifacts written with external data when one protobuf cannot hold them (ARCHITECTURE.md,
"Large models").

`open_lazy(path)` parses only the skeleton of a model: every large initializer of the main graph
is left on disk, marked as external data that points at the file it is in (the model's own
``.onnx`` at an offset, or the data file an external-data model names), so a 537 MB model opens
in a few MB and each weight is read (`tensor_array`) when it is encoded. `save(model, dst)` writes
the model inline when it fits under `threshold` bytes, else as ``dst`` plus one data file beside
it (``<dst name>.data`` unless named), each tensor page-aligned so onnxruntime can map it.

    >>> import tempfile
    >>> from onnx import helper, numpy_helper, TensorProto
    >>> w = numpy_helper.from_array(np.arange(16384, dtype=np.float32).reshape(128, 128), "W")
    >>> g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
    ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 128])],
    ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 128])], [w])
    >>> d = Path(tempfile.mkdtemp())
    >>> files = save(helper.make_model(g), d / "m.onnx", threshold=1000)
    >>> [f["file"] for f in files]
    ['m.onnx', 'm.onnx.data']
    >>> m = open_lazy(d / "m.onnx")
    >>> float(tensor_array(m.graph.initializer[0], d)[1, 0])
    128.0
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

# Largest single protobuf, with a margin for the graph itself.
DEFAULT_THRESHOLD = 2**31 - 2**26
# Tensors at least this big are kept on disk by `open_lazy`; from EXTERNAL_BYTES on (onnx's own
# default) they go to the data file in `save`.
LAZY_BYTES = 1 << 16
EXTERNAL_BYTES = 1024
_ALIGN = 4096


def uses_external(model: onnx.ModelProto) -> bool:
    """Whether any initializer or Constant of any graph keeps its data outside the protobuf."""
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in _tensors(model))


def _tensors(model: onnx.ModelProto):
    from .weights import walk_graphs

    for _, g in walk_graphs(model.graph):
        yield from g.initializer
        for n in g.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    yield a.t


# --- reading: a skeleton, with the weights left on disk ---------------------------------------

def _varint(f) -> int | None:
    shift = result = 0
    while True:
        b = f.read(1)
        if not b:
            return None
        result |= (b[0] & 0x7F) << shift
        if b[0] < 0x80:
            return result
        shift += 7


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _fields(f, end: int):
    """(field number, wire type, start of the field's tag, start of its value, value length) up to `end`."""
    while f.tell() < end:
        start = f.tell()
        tag = _varint(f)
        number, wire = tag >> 3, tag & 7
        if wire == 2:
            length = _varint(f)
        elif wire == 0:
            _varint(f)
            length = 0
        elif wire in (1, 5):
            length = 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} at byte {start}")
        value = f.tell()
        yield number, wire, start, value, length
        f.seek(value + (length if wire != 0 else 0))


def _skeleton_tensor(f, value: int, length: int, file_name: str) -> bytes:
    """One TensorProto without its raw_data, pointing at where raw_data sits in `file_name`."""
    kept, raw = bytearray(), None
    for number, wire, start, val, n in _fields(f, value + length):
        if number == 9 and wire == 2:  # raw_data
            raw = (val, n)
            continue
        f.seek(start)
        kept += f.read(val - start + (n if wire != 0 else 0))
    t = onnx.TensorProto.FromString(bytes(kept))
    if raw is not None:
        t.data_location = onnx.TensorProto.EXTERNAL
        for k, v in (("location", file_name), ("offset", str(raw[0])), ("length", str(raw[1]))):
            t.external_data.add(key=k, value=v)
    return t.SerializeToString()


def open_lazy(path: str | os.PathLike) -> onnx.ModelProto:
    """The model at `path` with its large main-graph initializers (and any external data) left
    on disk: the returned ModelProto's tensors point at their bytes; read them with `tensor_array`
    (base dir: ``path``'s folder)."""
    path = Path(path)
    with open(path, "rb", buffering=1 << 16) as f:
        size = os.fstat(f.fileno()).st_size
        model = bytearray()
        for number, wire, start, value, length in _fields(f, size):
            f.seek(start)
            if number != 7 or wire != 2:  # everything but the graph is small: kept as it is
                model += f.read(value - start + (length if wire != 0 else 0))
                continue
            graph = bytearray()
            f.seek(value)
            for gn, gw, gs, gv, gl in _fields(f, value + length):
                if gn == 5 and gw == 2 and gl >= LAZY_BYTES:  # a large initializer
                    t = _skeleton_tensor(f, gv, gl, path.name)
                    graph += _encode_varint(5 << 3 | 2) + _encode_varint(len(t)) + t
                else:
                    f.seek(gs)
                    graph += f.read(gv - gs + (gl if gw != 0 else 0))
                f.seek(gv + gl)
            model += _encode_varint(7 << 3 | 2) + _encode_varint(len(graph)) + graph
            f.seek(value + length)
    return onnx.ModelProto.FromString(bytes(model))


def _external(t: onnx.TensorProto) -> dict[str, str]:
    return {e.key: e.value for e in t.external_data}


def _located(t: onnx.TensorProto, base_dir: str | os.PathLike) -> tuple[Path, int, int | None]:
    """(file, offset, length or None) of an external tensor's bytes, inside the model's folder."""
    info = _external(t)
    where = (Path(base_dir) / info["location"]).resolve()
    if not where.is_relative_to(Path(base_dir).resolve()):
        raise ValueError(f"tensor {t.name!r}: external data {info['location']!r} points outside the model's folder")
    n = info.get("length")
    return where, int(info.get("offset", 0)), (int(n) if n is not None else None)


def tensor_bytes(t: onnx.TensorProto, base_dir: str | os.PathLike) -> bytes:
    """The raw little-endian bytes of an external tensor, read from its file (not kept in `t`)."""
    where, offset, n = _located(t, base_dir)
    with open(where, "rb") as f:
        f.seek(offset)
        return f.read(n) if n is not None else f.read()


# Read straight into the array's own memory: a large weight is never held twice (bytes + array).
_DIRECT = {onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.FLOAT16: np.float16,
           onnx.TensorProto.DOUBLE: np.float64}


def tensor_array(t: onnx.TensorProto, base_dir: str | os.PathLike) -> np.ndarray:
    """The tensor as a numpy array, reading external data from disk without keeping it in `t`."""
    if t.data_location != onnx.TensorProto.EXTERNAL:
        return numpy_helper.to_array(t)
    if t.data_type in _DIRECT and sys.byteorder == "little":
        where, offset, n = _located(t, base_dir)
        out = np.empty(tuple(t.dims), _DIRECT[t.data_type])
        with open(where, "rb") as f:
            f.seek(offset)
            got = f.readinto(memoryview(out.reshape(-1)).cast("B"))
        if got != out.nbytes or (n is not None and n != out.nbytes):
            raise ValueError(f"tensor {t.name!r}: external data holds {n if n is not None else got} bytes, "
                             f"its shape needs {out.nbytes}")
        return out
    inline = onnx.TensorProto()
    inline.CopyFrom(t)
    del inline.external_data[:]
    inline.data_location = onnx.TensorProto.DEFAULT
    inline.raw_data = tensor_bytes(t, base_dir)
    return numpy_helper.to_array(inline)


def materialize(model: onnx.ModelProto, base_dir: str | os.PathLike) -> None:
    """Bring every external tensor's bytes into the model (in place)."""
    for t in _tensors(model):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            data = tensor_bytes(t, base_dir)
            del t.external_data[:]
            t.data_location = onnx.TensorProto.DEFAULT
            t.raw_data = data


# --- writing ---------------------------------------------------------------------------------

def save(model: onnx.ModelProto, dst: str | os.PathLike, *, threshold: int = DEFAULT_THRESHOLD,
         data_name: str | None = None, base_dir: str | os.PathLike | None = None) -> list[dict]:
    """Write `model` to `dst` atomically; external data (one file beside `dst`) when the model
    is `threshold` bytes or more. Tensors still on disk are read from `base_dir`.

    Returns ``[{"file", "sha256", "size"}]``: the .onnx first, then the data file if any. The
    model is left with its large tensors pointing at the data file when one was written.
    """
    from ..cache import atomic_path, sha256_file

    dst = Path(dst)
    total = model.ByteSize() + sum(int(_external(t).get("length", 0)) for t in _tensors(model)
                                   if t.data_location == onnx.TensorProto.EXTERNAL)
    files = []
    if total < threshold:
        if base_dir is not None:
            materialize(model, base_dir)
        with atomic_path(dst) as tmp:
            with open(tmp, "wb") as f:
                f.write(model.SerializeToString(deterministic=True))
            files.append({"file": dst.name, "sha256": sha256_file(tmp), "size": tmp.stat().st_size})
        return files
    data_name = data_name or f"{dst.name}.data"
    data_path = dst.parent / data_name
    with atomic_path(data_path) as tmp_data:
        with open(tmp_data, "wb") as f:
            for t in _tensors(model):
                external = t.data_location == onnx.TensorProto.EXTERNAL
                if not external and len(t.raw_data) < EXTERNAL_BYTES:
                    continue
                data = tensor_bytes(t, base_dir) if external else t.raw_data
                offset = -f.tell() % _ALIGN + f.tell()
                f.write(b"\0" * (offset - f.tell()))
                f.write(data)
                t.ClearField("raw_data")
                del t.external_data[:]
                t.data_location = onnx.TensorProto.EXTERNAL
                for k, v in (("location", data_name), ("offset", str(offset)), ("length", str(len(data)))):
                    t.external_data.add(key=k, value=v)
        data_entry = {"file": data_name, "sha256": sha256_file(tmp_data), "size": tmp_data.stat().st_size}
        with atomic_path(dst) as tmp:
            with open(tmp, "wb") as f:
                f.write(model.SerializeToString(deterministic=True))
            files.append({"file": dst.name, "sha256": sha256_file(tmp), "size": tmp.stat().st_size})
    files.append(data_entry)
    return files


