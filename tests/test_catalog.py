"""quantzoo.catalog: the index.json contract, read with every problem reported at once."""

from __future__ import annotations

import json

import pytest

from quantzoo.catalog import CatalogIndex, FileEntry, MetricSummary, ModelEntry, Source, VariantEntry, file_name
from quantzoo.errors import QuantzooError


def test_an_unknown_schema_version_says_which_versions_are_supported():
    with pytest.raises(QuantzooError) as e:
        CatalogIndex.from_bytes(b'{"schema_version": 2, "models": []}', "http://x/index.json")
    assert "http://x/index.json has schema_version 2, but this quantzoo" in str(e.value)
    assert "reads schema_version 1 only" in str(e.value)
    with pytest.raises(QuantzooError, match="has no schema_version"):
        CatalogIndex.from_bytes(b'{"models": []}', "index.json")


def test_a_malformed_index_reports_every_problem_with_its_key():
    doc = {"schema_version": 1, "models": [
        {"id": "a", "recommended": "zz", "variants": [
            {"id": "v", "file": "files/a/v.onnx", "size": -1, "sha256": "abc", "metrics": {}},
            {"id": "w", "file": "files/a/", "size": 3, "sha256": "a" * 64, "metrics": {"y": 1}}]},
        {"variants": None}]}
    with pytest.raises(QuantzooError) as e:
        CatalogIndex.from_json(doc, "site/index.json")
    lines = str(e.value).splitlines()
    assert lines[0] == "site/index.json is malformed (7 problems):"
    assert lines[1:8] == [
        "  models[0] (a).variants[0].size: expected a byte count, found -1",
        "  models[0] (a).variants[0].sha256: expected 64 lowercase hex digits, found 'abc'",
        "  models[0] (a).variants[1].file: 'files/a/' does not end in a file name",
        "  models[0] (a).variants[1].metrics: expected {output: {metric: {mean, std, n}}}, found {\"y\": 1}",
        "  models[0] (a).recommended: 'zz' is not one of its variants (v, w)",
        "  models[1].id: expected a non-empty string, found nothing",
        "  models[1].variants: expected a list, found nothing",
    ]


def test_a_repeated_model_id_a_bad_float_and_a_document_that_is_not_an_object_are_problems():
    v = {"id": "v", "file": "files/a/v.onnx", "size": 1, "sha256": "a" * 64}
    doc = {"schema_version": 1, "models": [{"id": "a", "variants": [v]},
                                           {"id": "a", "float": "files/a/f.onnx", "variants": [v]}]}
    with pytest.raises(QuantzooError) as e:
        CatalogIndex.from_json(doc, "index.json")
    assert str(e.value).splitlines()[1:3] == [
        "  models[1].id: 'a' appears twice",
        "  models[1].float: expected an object with file, size and sha256, found a string 'files/a/f.onnx'"]
    with pytest.raises(QuantzooError, match="expected a JSON object with 'schema_version' and 'models', found list"):
        CatalogIndex.from_json([], "index.json")


def test_invalid_json_is_reported_with_where_it_broke():
    with pytest.raises(QuantzooError) as e:
        CatalogIndex.from_bytes(b"<!DOCTYPE html><html>Not found</html>", "http://x/index.json")
    assert "http://x/index.json is malformed: not valid JSON (Expecting value at line 1 column 1" in str(e.value)


def test_a_file_entry_must_end_in_a_file_name():
    with pytest.raises(QuantzooError, match="does not end in a file name"):
        file_name("files/m/..")
    with pytest.raises(QuantzooError, match=r"float is malformed \(1 problem\):\n  float.size: expected a byte count"):
        FileEntry.from_json({"file": "f.onnx", "size": "3", "sha256": "a" * 64}, "float")


def test_metrics_that_are_not_finite_numbers_read_as_unmeasured():
    v = VariantEntry.from_json({"id": "v", "file": "v.onnx", "size": 1, "sha256": "a" * 64, "metrics": {
        "y": {"iou": {"mean": None}, "cosine": {"mean": True}, "cer": {"mean": "0.1"}, "snr_db": {"mean": 30}}}}, "v")
    assert [v.metric("y", m) for m in ("iou", "cosine", "cer", "snr_db", "psnr_db")] == [None, None, None, 30.0, None]


def test_entries_write_exactly_the_contract_and_read_back_equal():
    model = ModelEntry("m", "M", "dense", "MIT", 12, Source("a" * 64, None), FileEntry("files/m/m-float.onnx", 9, "b" * 64),
                       "fp16", (VariantEntry("fp16", "fp16", None, "per_tensor", "files/m/m-fp16.onnx", 5, "c" * 64,
                                             {"y": {"snr_db": MetricSummary(40.0, 1.5, 6)}}),))
    index = CatalogIndex((model,))
    doc = json.loads(index.to_bytes())
    assert doc["models"][0]["variants"][0]["metrics"] == {
        "y": {"snr_db": {"mean": 40.0, "std": 1.5, "n": 6, "ci95": None}}}
    assert CatalogIndex.from_json(doc, "index.json") == index


def test_an_interval_and_excluded_samples_round_trip_with_sorted_keys():
    s = MetricSummary(0.97, 0.17, 100, (0.915, 0.99), excluded=3)
    v = VariantEntry("lut-4", "linear_lut", 4, "per_tensor", "files/m/m-lut-4.onnx", 5, "c" * 64, {"y": {"iou": s}})
    index = CatalogIndex((ModelEntry("m", variants=(v,)),))
    data = index.to_bytes()
    assert b'"iou": {\n                "ci95": [\n                  0.915,\n                  0.99\n                ],\n' \
           b'                "excluded": 3,\n                "mean": 0.97,' in data
    back = CatalogIndex.from_bytes(data, "index.json")
    assert back == index and back.to_bytes() == data
    assert back.models[0].variants[0].summary("y", "iou").bound(True) == 0.915


def test_a_summary_without_an_interval_still_reads():
    doc = {"schema_version": 1, "models": [{"id": "m", "variants": [
        {"id": "a", "file": "a.onnx", "size": 1, "sha256": "0" * 64,
         "metrics": {"y": {"iou": {"mean": 0.9, "std": 0.1, "n": 30}}}}]}]}
    s = CatalogIndex.from_json(doc, "index.json").models[0].variants[0].summary("y", "iou")
    assert s == MetricSummary(0.9, 0.1, 30) and s.ci95 is None and s.excluded == 0 and s.bound(True) == 0.9


def test_a_bad_interval_or_excluded_count_is_reported_with_its_key():
    def metrics(**summary):
        return {"schema_version": 1, "models": [{"id": "m", "variants": [
            {"id": "a", "file": "a.onnx", "size": 1, "sha256": "0" * 64,
             "metrics": {"y": {"iou": {"mean": 0.9, "std": 0.1, "n": 30, **summary}}}}]}]}

    for summary, message in [
            ({"ci95": [0.95, 0.99]}, "models[0] (m).variants[0].metrics.y.iou.ci95: expected lo <= mean <= hi, "
                                     "found [0.95, 0.99] around mean 0.9"),
            ({"ci95": [0.92, 0.85]}, "expected lo <= mean <= hi, found [0.92, 0.85]"),
            ({"ci95": [0.8]}, "ci95: expected [lo, hi] (two numbers) or null, found [0.8]"),
            ({"ci95": ["a", 1]}, "ci95: expected [lo, hi] (two numbers) or null"),
            ({"excluded": -1}, "iou.excluded: expected a sample count >= 0, found -1")]:
        with pytest.raises(QuantzooError) as e:
            CatalogIndex.from_json(metrics(**summary), "index.json")
        assert message in str(e.value), str(e.value)
    # the last digits a writer rounds away are forgiven
    CatalogIndex.from_json(metrics(ci95=[0.9000000001, 0.95]), "index.json")


def test_runtime_results_round_trip_on_variants_and_the_float_file_and_bad_ones_are_named():
    from quantzoo.catalog import RuntimeResult

    ok = {"openvino": RuntimeResult(True, 2.4e-07), "onnxruntime": RuntimeResult(True)}
    model = ModelEntry("m", float=FileEntry("files/m/m-float.onnx", 9, "b" * 64), float_runtimes=ok,
                       variants=(VariantEntry("fp16", "fp16", None, "per_tensor", "files/m/m-fp16.onnx", 5, "c" * 64,
                                              {}, {"openvino": RuntimeResult(False, None, "too slow")}),))
    index = CatalogIndex((model,))
    doc = json.loads(index.to_bytes())
    assert doc["models"][0]["float"]["runtimes"] == {"onnxruntime": {"max_abs_diff": None, "runs": True},
                                                     "openvino": {"max_abs_diff": 2.4e-07, "runs": True}}
    assert doc["models"][0]["variants"][0]["runtimes"] == {"openvino": {"error": "too slow", "max_abs_diff": None,
                                                                        "runs": False}}
    back = CatalogIndex.from_json(doc, "index.json")
    assert back == index and back.models[0].float_variant().runtimes == ok
    doc["models"][0]["variants"][0]["runtimes"]["openvino"] = {"runs": "yes"}
    with pytest.raises(QuantzooError, match=r"variants\[0\]\.runtimes\.openvino: expected \{runs: true\|false"):
        CatalogIndex.from_json(doc, "index.json")
