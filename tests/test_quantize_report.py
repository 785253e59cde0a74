"""report: one row per compressed tensor, the skipped tensors with their reasons, the totals."""

from __future__ import annotations

import json

import onnx
from quantize_models import WEIGHTS, make_model

from quantzoo.quantize import quantize_file
from quantzoo.quantize.report import SCHEMA_VERSION, QuantizeReport
from quantzoo.quantize.weights import Skipped


def test_report_lists_compressed_and_skipped_tensors_with_reasons(tmp_path):
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(make_model(), src)
    report = quantize_file(src, dst, mode="kmeans_lut", nbits=4)
    rows = {r.name: r for r in report.tensors}
    assert set(rows) == set(WEIGHTS)
    assert rows["gemm.w"].op == "Gemm" and rows["conv.w"].op == "Conv" and rows["then.w"].scope.endswith("then_branch")
    assert all(0 < r.relative_error < 0.2 and r.bits == 4 for r in rows.values())
    skipped = {s.name: s.reason for s in report.skipped}
    assert skipped["conv.b"].startswith("not a weight") and "Conv:2" in skipped["conv.b"]
    assert skipped["gemm.b"].startswith("not a weight")
    d = report.to_dict()
    assert d["totals"]["compressed_tensors"] == 5 and d["totals"]["artifact_bytes"] == dst.stat().st_size
    json.dumps(d)


def test_skipped_rows_are_the_selectors_own_records(tmp_path):
    src, dst = tmp_path / "f.onnx", tmp_path / "q.onnx"
    onnx.save(make_model(), src)
    report = quantize_file(src, dst, mode="linear", nbits=8)
    assert report.skipped and all(type(s) is Skipped for s in report.skipped)
    assert report.to_dict()["skipped"][0] == {"name": "conv.b", "scope": "", "elements": 32,
                                              "reason": report.skipped[0].reason}


def test_summary_counts_skip_reasons_and_totals():
    report = QuantizeReport("linear", 4, "per_channel", None, None, None, "0" * 64, source_bytes=2_000_000,
                            artifact_bytes=500_000)
    report.skipped = [Skipped("b", "", 10, "2 elements < min_elements 2048"),
                      Skipped("c", "", 10, "3 elements < min_elements 2048"),
                      Skipped("d", "", 10, "excluded by pattern 'd*'")]
    text = report.summary()
    assert text.splitlines()[0] == "linear 4-bit per_channel: 0 tensors compressed, 3 left as they are"
    assert "  skipped    2: smaller than min_elements" in text and "  skipped    1: excluded by pattern 'd*'" in text
    assert text.endswith("file: 2.000 MB -> 0.500 MB (25.0%)")
    assert report.to_dict()["schema_version"] == SCHEMA_VERSION
