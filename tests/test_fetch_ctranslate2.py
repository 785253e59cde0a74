"""CTranslate2 model.bin: parsed from files written here byte by byte, and converted through a
`weights_reader` with several inputs (fetch/convert.py)."""

from __future__ import annotations

import struct
import textwrap

import numpy as np
import pytest

from quantzoo.errors import QuantzooError
from quantzoo.fetch import ctranslate2 as C


def _name(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def test_parse_reads_a_file_written_by_hand():
    # version 6, spec "WhisperSpec", revision 3; one fp16 [2, 2] variable, one int8 scalar, one alias
    data = (struct.pack("<I", 6) + _name("WhisperSpec") + struct.pack("<I", 3) + struct.pack("<I", 2)
            + _name("enc/w") + struct.pack("<B", 2) + struct.pack("<2I", 2, 2) + struct.pack("<B", 4)
            + struct.pack("<I", 8) + np.array([1.5, -2, 0.25, 65504], "<f2").tobytes()
            + _name("dec/flag") + struct.pack("<B", 0) + struct.pack("<B", 1) + struct.pack("<I", 1) + b"\x03"
            + struct.pack("<I", 1) + _name("dec/proj") + _name("enc/w"))
    m = C.parse(data)
    assert (m.version, m.spec, m.revision) == (6, "WhisperSpec", 3)
    assert m.variables["enc/w"].dtype == np.float16 and m.variables["enc/w"].tolist() == [[1.5, -2.0], [0.25, 65504.0]]
    assert m.variables["dec/flag"].shape == () and int(m.variables["dec/flag"]) == 3
    sd = C.state_dict(m)
    assert sorted(sd) == ["dec.flag", "dec.proj", "enc.w"] and sd["dec.proj"] is sd["enc.w"]


def test_version_3_files_have_no_dtype_code_and_are_float32():
    data = (struct.pack("<I", 3) + _name("S") + struct.pack("<I", 1) + struct.pack("<I", 1) + _name("x")
            + struct.pack("<B", 1) + struct.pack("<I", 2) + struct.pack("<I", 8) + np.array([1, 2], "<f4").tobytes()
            + struct.pack("<I", 0))
    assert C.parse(data).variables["x"].tolist() == [1.0, 2.0]


def test_round_trip_and_bad_bytes_are_named():
    blob = C.write_model({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([7], np.int32)})
    m = C.parse(blob)
    assert m.variables["a"].tolist() == [[0, 1, 2], [3, 4, 5]] and m.variables["b"].tolist() == [7]
    with pytest.raises(QuantzooError, match="truncated CTranslate2 file"):
        C.parse(blob[:-3], "model.bin")
    with pytest.raises(QuantzooError, match="unread bytes"):
        C.parse(blob + b"\0")
    with pytest.raises(QuantzooError, match="format version 99"):
        C.parse(struct.pack("<I", 99) + blob[4:])
    bad = bytearray(blob)
    at = blob.index(b"a\0") + 2 + 1 + 8  # name, rank, two dims -> the dtype code
    bad[at] = 9
    with pytest.raises(QuantzooError, match="dtype code 9"):
        C.parse(bytes(bad))


def test_a_weights_reader_and_several_inputs_convert_and_check(tmp_path):
    torch = pytest.importorskip("torch")
    from quantzoo.fetch.convert import convert

    # a two-path network (x -> 2x + w·x; ids -> table lookup): its weights in a CTranslate2 file
    (tmp_path / "twopath.py").write_text(textwrap.dedent('''
        import numpy as np, torch
        from quantzoo.fetch.ctranslate2 import read_model

        class TwoPath(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = torch.nn.Linear(3, 3)
                self.table = torch.nn.Parameter(torch.zeros(5, 3))

            def forward(self, x, ids):
                return self.lin(x), self.table[ids].sum(dim=1)

        def build():
            return TwoPath().eval()

        def read(path):
            return {k.replace("/", "."): torch.from_numpy(v.astype(np.float32))
                    for k, v in read_model(path).variables.items()}
    '''))
    rng = np.random.default_rng(0)
    weights = {"lin/weight": rng.normal(size=(3, 3)).astype(np.float16), "lin/bias": np.ones(3, np.float16),
               "table": rng.normal(size=(5, 3)).astype(np.float16)}
    (tmp_path / "model.bin").write_bytes(C.write_model(weights))
    src = {"kind": "pytorch", "weights": {"sha256": "0" * 64},
           "architecture": {"builder": "twopath:build", "weights_reader": "twopath:read"},
           "input_shape": [1, 3], "inputs": [{"name": "x", "shape": [1, 3]},
                                             {"name": "ids", "shape": [1, 4], "dtype": "int64", "high": 5}],
           "dynamic_axes": {"ids": {1: "L"}}, "output_names": ["y", "z"]}
    onnx_bytes, report = convert(src, tmp_path / "model.bin", tmp_path)
    assert report["parameters"] == 9 + 3 + 15 and report["input_names"] == ["x", "ids"]
    assert max(report["check"]["max_abs_diff"].values()) < 1e-5

    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    ids = np.array([[0, 4, 4, 1, 2, 2]], np.int64)  # another length than the export's 4: L is dynamic
    y, z = sess.run(None, {"x": np.ones((1, 3), np.float32), "ids": ids})
    table = weights["table"].astype(np.float32)
    assert np.allclose(z[0], table[ids[0]].sum(axis=0), atol=1e-5)
    assert np.allclose(y[0], weights["lin/weight"].astype(np.float32).sum(axis=1) + 1, atol=1e-5)


def test_a_failing_weights_reader_is_named(tmp_path):
    pytest.importorskip("torch")
    from quantzoo.fetch.convert import ConversionError
    from quantzoo.fetch.torchload import read_weights

    (tmp_path / "badreader.py").write_text("def read(path):\n    raise ValueError('not mine')\n")
    src = {"architecture": {"builder": "badreader:read", "weights_reader": "badreader:read"}}
    with pytest.raises(ConversionError, match="weights_reader badreader:read failed on w.bin: ValueError: not mine"):
        read_weights(src, tmp_path / "w.bin", tmp_path, "w.bin")
