"""publish: page data, the recommended variant, index.json, escaping, the chart, Netron, the swap.

Sites here are built from a small synthetic zoo (real manifests through the real registry, real
tiny ONNX files, invented metrics) with the real Jinja2 templates, MkDocs build and Netron bundle.
"""

from __future__ import annotations

import dataclasses
import doctest
import hashlib
import importlib
import json
import re

import pytest

from quantzoo.errors import QuantzooError
from quantzoo.registry import DEFAULT_VARIANTS
from quantzoo.publish import data as D
from quantzoo.publish import index_document, index_json_bytes, publish_site, recommend
from quantzoo.publish.charts import Point, size_agreement_svg
from quantzoo.publish.netron import patch_index_html
from quantzoo.publish.synthetic import synthetic_results, write_synthetic_zoo

EVIL = ('<script>window.__pwned = 1</script> <img src=x onerror="window.__pwned=2"> '
        '[click](javascript:window.__pwned=3) **bold**')


@pytest.mark.parametrize("name", ["quantzoo.publish.data", "quantzoo.publish.charts", "quantzoo.publish.render",
                                  "quantzoo.publish.netron", "quantzoo.build"])
def test_docstring_examples_in_publish_modules_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


# --- pure data ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    reg = write_synthetic_zoo(root / "zoo", 5, description=EVIL)
    return reg, synthetic_results(reg, root / "work")


def _with_metric(bm, values: dict[str, float | None]):
    """A copy of `bm` whose threshold metric takes `values[variant id]`."""
    thr = bm.model.threshold
    variants = []
    for v in bm.variants:
        comp = json.loads(json.dumps(v.comparison))
        if v.variant.id in values:
            comp["outputs"][thr["output"]][thr["metric"]]["mean"] = values[v.variant.id]
        variants.append(dataclasses.replace(v, comparison=comp))
    return dataclasses.replace(bm, variants=variants)


def test_recommended_is_the_smallest_variant_meeting_a_min_threshold(synth):
    _, built = synth
    bm = next(b for b in built if b.model.task == "classification")  # top1_agreement >= 0.99
    ids = [v.variant.id for v in bm.variants]
    bm = _with_metric(bm, {i: 0.5 for i in ids} | {"fp16": 1.0, "linear-8": 0.995, "kmeans-4": 0.991,
                                                    "kmeans-2": 0.98})
    assert recommend(bm).variant.id == "kmeans-4"
    assert index_document([bm])["models"][0]["recommended"] == "kmeans-4"


def test_recommended_respects_a_max_threshold_for_lower_is_better_metrics(synth):
    _, built = synth
    bm = next(b for b in built if b.model.task == "text-recognition")  # cer <= 0.01
    ids = [v.variant.id for v in bm.variants]
    bm = _with_metric(bm, {i: 0.5 for i in ids} | {"linear-6": 0.004, "kmeans-3": 0.0101})
    assert recommend(bm).variant.id == "linear-6"


def test_no_variant_meeting_the_threshold_gives_null_and_the_page_says_use_float(synth, tmp_path):
    reg, built = synth
    bm = next(b for b in built if b.model.task == "classification")
    bm = _with_metric(bm, {v.variant.id: 0.2 for v in bm.variants})
    assert recommend(bm) is None
    assert index_document([bm])["models"][0]["recommended"] is None
    from quantzoo.publish import render
    from quantzoo.publish.site import project_root

    page = render.model_page(render.environment(project_root() / "site_src" / "templates"), bm, None, "0")
    assert "use the float model" in page


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
    assert all(set(x) == {"mean", "std", "n"} for x in metrics.values())
    assert [x["id"] for x in m["variants"]] == list(DEFAULT_VARIANTS)


def test_non_finite_metrics_become_null_in_index_json_and_infinity_on_the_page(synth):
    _, built = synth
    bm = next(b for b in built if b.model.task == "dense")  # snr_db
    bm = _with_metric(bm, {"fp16": float("inf")})
    raw = index_json_bytes(index_document([bm]))
    fp16 = json.loads(raw)["models"][0]["variants"][0]
    assert fp16["id"] == "fp16" and fp16["metrics"]["out"]["snr_db"]["mean"] is None
    ctx = D.model_context(bm)
    assert ctx["variants"][0]["cells"][0]["text"] == "∞ dB"


def test_files_are_relative_to_the_site_root_or_absolute_under_the_artifact_base_url(synth):
    _, built = synth
    rel = index_document(built[:1])["models"][0]
    absolute = index_document(built[:1], "https://cdn.example.org/zoo/")["models"][0]
    mid = rel["id"]
    assert rel["float"]["file"] == f"files/{mid}/{mid}-float.onnx"
    assert rel["variants"][1]["file"] == f"files/{mid}/{mid}-linear-8.onnx"
    assert absolute["variants"][1]["file"] == f"https://cdn.example.org/zoo/{mid}/{mid}-linear-8.onnx"


def test_only_http_links_survive_from_manifests():
    assert D.safe_href("javascript:alert(1)") is None
    assert D.safe_href("data:text/html,<script>") is None
    assert D.safe_href('https://x.org/" onmouseover="x') is None
    assert D.safe_href("https://pypi.org/project/magika/1.0.3/") == "https://pypi.org/project/magika/1.0.3/"


def test_metric_formatting_by_kind():
    assert D.format_metric("top1_agreement", 0.987654) == "98.77 %"
    assert D.format_metric("iou", 1.0) == "100.00 %"
    assert D.format_metric("psnr_db", 48.04) == "48.0 dB"
    assert D.format_metric("cer", None) == "–"
    assert D.human_size(4_745_517) == "4.75 MB" and D.human_size(1_173_000_000) == "1.17 GB"


# --- the chart ------------------------------------------------------------------------------------

def test_chart_labels_every_variant_and_marks_threshold_and_recommendation():
    pts = [Point("fp16", 500, 1.0, "fp16"), Point("linear-8", 250, 0.999, "linear"),
           Point("kmeans-4", 130, 0.993, "kmeans_lut", recommended=True), Point("kmeans-1", 40, 0.31, "kmeans_lut"),
           Point("linear-2", 70, None, "linear")]
    svg = size_agreement_svg(pts, float_size=1000, metric="top1_agreement", metric_label="top-1 agreement",
                             threshold=0.99)
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    for label in ("fp16", "linear-8", "★ kmeans-4", "kmeans-1", "threshold ≥ 99.00 %", "float", "1/16"):
        assert label in texts, label
    assert "linear-2" not in texts  # not measured: not drawn
    assert svg.count('class="qz-point"') == 4
    assert 'stroke-dasharray="6 4"' in svg  # the threshold line
    assert svg == size_agreement_svg(pts, float_size=1000, metric="top1_agreement",
                                     metric_label="top-1 agreement", threshold=0.99)


def test_chart_labels_do_not_overlap_when_points_are_apart():
    pts = [Point(f"v{i}", 1000 // 2 ** i, 1 - 0.1 * i, "linear") for i in range(6)]
    svg = size_agreement_svg(pts, float_size=1000, metric="top1_agreement", metric_label="agreement")
    boxes = []
    for x, y, anchor, text in re.findall(r'<text x="([\d.]+)" y="([\d.]+)" text-anchor="(\w+)" fill="#27272a"[^>]*>'
                                         r"(v\d)</text>", svg):
        x, y, w = float(x), float(y), len(text) * 6.6
        x0 = x - w if anchor == "end" else x - w / 2 if anchor == "middle" else x
        boxes.append((x0, y - 10, x0 + w, y + 2))
    assert len(boxes) == 6
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])


# --- Netron ----------------------------------------------------------------------------------------

def test_netron_index_html_is_patched_for_a_static_offline_site():
    from quantzoo.publish.netron import netron_dir

    html = (netron_dir() / "index.html").read_text(encoding="utf-8")
    assert '<meta name="date"' in html and '<meta name="version" content="0.0.0">' not in html
    out = patch_index_html(html)
    assert '<meta name="date"' not in out
    assert re.search(r'<meta name="version" content="0\.0\.0">', out)
    assert out.index('src="consent.js"') < out.index('src="index.js"')


def test_netron_patch_refuses_an_index_html_it_does_not_recognise():
    with pytest.raises(QuantzooError, match="no longer has the expected"):
        patch_index_html("<html><head><title>Netron</title></head></html>")


# --- whole sites ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site(synth, tmp_path_factory):
    reg, built = synth
    out = tmp_path_factory.mktemp("pub") / "site"
    report = publish_site(built, out, registry=reg)
    return out, report, built


def test_site_has_catalog_methodology_model_pages_files_viewer_and_index(site):
    out, report, built = site
    for rel in ("index.html", "methodology.html", "index.json", "netron/index.html", "netron/consent.js",
                "assets/quantzoo.js", "assets/quantzoo.css", ".quantzoo-site"):
        assert (out / rel).is_file(), rel
    assert report.pages == 2 + len(built)
    catalog = (out / "index.html").read_text(encoding="utf-8")
    for bm in built:
        assert f'href="models/{bm.model.id}.html"' in catalog
        assert (out / "models" / f"{bm.model.id}.html").is_file()


def test_every_file_in_index_json_is_in_the_site_with_its_sha256(site):
    out, report, _ = site
    raw = (out / "index.json").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == report.index_sha256
    for m in json.loads(raw)["models"]:
        for entry in [m["float"], *m["variants"]]:
            data = (out / entry["file"]).read_bytes()
            assert len(data) == entry["size"] and hashlib.sha256(data).hexdigest() == entry["sha256"]


def test_model_page_shows_variants_table_chart_grid_usage_and_sha256(site):
    out, _, built = site
    bm = next(b for b in built if b.model.task == "text-detection")
    page = (out / "models" / f"{bm.model.id}.html").read_text(encoding="utf-8")
    assert 'id="variants"' in page and "<svg" in page and 'class="qz-grid"' in page
    for v in bm.variants:
        assert f'id="variant-{v.variant.id}"' in page and v.sha256 in page
        assert f'../files/{bm.model.id}/preview/{v.variant.id}.png' in page
        assert (out / "files" / bm.model.id / "preview" / f"{v.variant.id}.png").is_file()
    assert "onnxruntime" in page and f"quantzoo pull {bm.model.id}" in page
    assert f"../netron/index.html?url=../files/{bm.model.id}/" in page


def test_markup_from_a_manifest_is_escaped_everywhere_in_the_site(site):
    out, _, _ = site
    pages = [p for p in out.rglob("*.html") if "netron" not in p.parts]
    assert len(pages) > 5
    seen_text = False
    for p in pages:
        html = p.read_text(encoding="utf-8")
        assert "<script>window.__pwned" not in html
        assert "<img src=x" not in html and 'href="javascript:' not in html.lower()
        seen_text |= "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert seen_text


def test_a_model_card_renders_markdown_but_not_raw_html(synth, tmp_path):
    reg, built = synth
    bm = built[0]
    card = "# About\n\nSome **bold** text.\n\n<script>window.__pwned=4</script>\n\n[x](javascript:alert(1))\n"
    bm = dataclasses.replace(bm, model=dataclasses.replace(bm.model, card=card))
    publish_site([bm], tmp_path / "s", registry=reg)
    html = (tmp_path / "s" / "models" / f"{bm.model.id}.html").read_text(encoding="utf-8")
    assert "<strong>bold</strong>" in html
    assert "<script>window.__pwned" not in html and "&lt;script&gt;window.__pwned=4" in html
    assert 'href="javascript:' not in html


def test_a_failed_mkdocs_build_leaves_the_previous_site_untouched(synth, tmp_path):
    import shutil

    from quantzoo.publish.site import project_root

    reg, built = synth
    target = tmp_path / "site"
    publish_site(built[:2], target, registry=reg)
    before = sorted((p.relative_to(target).as_posix(), p.stat().st_size) for p in target.rglob("*"))
    broken = tmp_path / "site_src"
    shutil.copytree(project_root() / "site_src", broken)
    page = broken / "templates" / "methodology.md.j2"
    page.write_text(page.read_text(encoding="utf-8") + "\nSee [the missing page](missing.md).\n", encoding="utf-8")
    with pytest.raises(QuantzooError, match="the MkDocs build failed") as e:
        publish_site(built, target, registry=reg, src=broken)
    assert "missing.md" in str(e.value) and "previous site was left as it was" in str(e.value)
    after = sorted((p.relative_to(target).as_posix(), p.stat().st_size) for p in target.rglob("*"))
    assert after == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".site.build-")] == []


def test_publishing_again_replaces_the_site_and_drops_removed_models(synth, tmp_path):
    reg, built = synth
    target = tmp_path / "site"
    publish_site(built, target, registry=reg)
    publish_site(built[:1], target, registry=reg)
    assert [m["id"] for m in json.loads((target / "index.json").read_text())["models"]] == [built[0].model.id]
    assert not (target / "models" / f"{built[1].model.id}.html").exists()
    assert not (target / "files" / built[1].model.id).exists()


def test_a_folder_that_is_not_a_quantzoo_site_is_never_replaced(synth, tmp_path):
    reg, built = synth
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(QuantzooError, match="is not a site quantzoo built"):
        publish_site(built[:1], precious, registry=reg)
    assert (precious / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in precious.iterdir()) == ["thesis.tex"]
