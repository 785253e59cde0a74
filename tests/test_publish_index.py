"""publish.index: index.json, the catalog contract, written through `quantzoo.catalog`."""

from __future__ import annotations

import json

import pytest

from publishzoo import synthetic, with_metric
from quantzoo.catalog import CatalogIndex
from quantzoo.publish import index_document, index_json_bytes, recommend
from quantzoo.quantize.variants import DEFAULT_VARIANTS


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return synthetic(tmp_path_factory.mktemp("synth"))


def test_no_variant_meeting_the_threshold_gives_null(synth):
    _, built = synth
    bm = next(b for b in built if b.model.task == "classification")
    bm = with_metric(bm, {v.variant.id: 0.2 for v in bm.variants})
    assert recommend(bm) is None
    assert index_document([bm])["models"][0]["recommended"] is None


def test_index_json_is_byte_identical_whatever_the_order_of_the_models(synth):
    _, built = synth
    a = index_json_bytes(index_document(built))
    b = index_json_bytes(index_document(list(reversed(built))))
    assert a == b
    doc = json.loads(a)
    assert [m["id"] for m in doc["models"]] == sorted(m["id"] for m in doc["models"])
    assert a.decode() == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_index_json_has_exactly_the_contract_fields(synth):
    _, built = synth
    doc = index_document(built)
    assert set(doc) == {"schema_version", "models"} and doc["schema_version"] == 1
    m = doc["models"][0]
    assert set(m) == {"id", "name", "task", "license", "parameters", "source", "float", "recommended", "variants"}
    assert set(m["source"]) == {"sha256", "url"} and set(m["float"]) == {"file", "size", "sha256"}
    v = m["variants"][0]
    assert set(v) == {"id", "mode", "nbits", "granularity", "file", "size", "sha256", "metrics"}
    out, metrics = next(iter(v["metrics"].items()))
    assert all(set(x) == {"mean", "std", "n", "ci95"} for x in metrics.values())
    assert [x["id"] for x in m["variants"]] == list(DEFAULT_VARIANTS)


def test_what_the_writer_emits_the_reader_reads_back_unchanged(synth):
    _, built = synth
    raw = index_json_bytes(index_document(built, "https://cdn.example.org/zoo/"))
    index = CatalogIndex.from_bytes(raw, "index.json")
    assert index.to_bytes() == raw
    assert [m.id for m in index.models] == sorted(b.model.id for b in built)


def test_non_finite_metrics_become_null_in_index_json(synth):
    _, built = synth
    bm = next(b for b in built if b.model.task == "dense")  # snr_db
    bm = with_metric(bm, {"fp16": float("inf")})
    raw = index_json_bytes(index_document([bm]))
    fp16 = json.loads(raw)["models"][0]["variants"][0]
    assert fp16["id"] == "fp16" and fp16["metrics"]["out"]["snr_db"]["mean"] is None


def test_files_are_relative_to_the_site_root_or_absolute_under_the_artifact_base_url(synth):
    _, built = synth
    rel = index_document(built[:1])["models"][0]
    absolute = index_document(built[:1], "https://cdn.example.org/zoo/")["models"][0]
    mid = rel["id"]
    assert rel["float"]["file"] == f"files/{mid}/{mid}-float.onnx"
    assert rel["variants"][1]["file"] == f"files/{mid}/{mid}-linear-8.onnx"
    assert absolute["variants"][1]["file"] == f"https://cdn.example.org/zoo/{mid}/{mid}-linear-8.onnx"


def test_custom_ops_are_listed_with_their_implementation_file_only_for_models_that_have_them(synth, tmp_path):
    import dataclasses

    from quantzoo.publish import BuiltCustomOp

    _, built = synth
    plain = index_json_bytes(index_document(built))
    op = BuiltCustomOp("ai.test.tiny", "Affine", "affine_impl:Affine", "d", {"scale": 0.5}, 2,
                       tmp_path / "blob", "cd" * 32, 12)
    first = dataclasses.replace(built[0], custom_ops=(op,))
    doc = index_document([first, *built[1:]])
    by_id = {m["id"]: m for m in doc["models"]}
    assert by_id[first.model.id]["custom_ops"] == [{
        "attributes": {"scale": 0.5}, "class": "affine_impl:Affine", "description": "d", "domain": "ai.test.tiny",
        "implementation": {"file": f"files/{first.model.id}/affine_impl.py", "sha256": "cd" * 32, "size": 12},
        "nodes": 2, "op": "Affine"}]
    assert all("custom_ops" not in m for m in doc["models"] if m["id"] != first.model.id)
    assert CatalogIndex.from_bytes(index_json_bytes(doc), "i").models[0].to_json() == doc["models"][0]
    assert index_json_bytes(index_document(built)) == plain
