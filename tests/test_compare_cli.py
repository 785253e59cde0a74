"""`quantzoo compare`: the table it prints, the JSON it writes, and its usage errors."""

from __future__ import annotations

import json

import numpy as np

from quantzoo.cli import main
from tinymodels import rows, scale_model


def test_cli_prints_a_table_and_writes_the_json(tmp_path, capsys):
    a = scale_model(tmp_path / "a.onnx", 1.0)
    b = scale_model(tmp_path / "b.onnx", 1.1)
    d = tmp_path / "arrays"
    d.mkdir()
    for i, r in enumerate(rows(3)):
        np.save(d / f"s{i}.npy", r["x"])
    out = tmp_path / "r.json"
    assert main(["compare", str(a), str(b), "--data", str(d), "--json", str(out), "--cache", str(tmp_path / "c")]) == 0
    text = capsys.readouterr().out
    assert "(3 samples; task auto)" in text
    assert "y       top1_agreement" in text or "top1_agreement" in text
    doc = json.loads(out.read_text())
    assert doc["schema_version"] == 1 and doc["outputs"]["y"]["top1_agreement"]["n"] == 3
    assert set(doc) >= {"model", "dataset", "outputs", "sizes", "timings"}


def test_cli_without_any_data_is_a_usage_error(tmp_path, capsys):
    a = scale_model(tmp_path / "a.onnx", 1.0)
    assert main(["compare", str(a), str(a)]) == 2
    assert "no sample data" in capsys.readouterr().err
