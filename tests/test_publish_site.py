"""publish.site: whole sites from the synthetic zoo with the real Jinja2 templates, MkDocs build
and Netron bundle; the swap into place."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from publishzoo import synthetic
from quantzoo.errors import QuantzooError
from quantzoo.publish import publish_site


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return synthetic(tmp_path_factory.mktemp("synth"))


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


def _tree(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_builds_of_the_same_inputs_on_different_days_give_byte_identical_trees(synth, tmp_path, monkeypatch):
    from quantzoo.publish.site import project_root

    reg, built = synth
    # with a site_url MkDocs writes a <lastmod> per page into the sitemap: the dated case
    config = tmp_path / "mkdocs.yml"
    config.write_text((project_root() / "mkdocs.yml").read_text() + "site_url: https://zoo.example/\n")
    trees = []
    for day, out in (("1700000000", tmp_path / "a"), ("1800000000", tmp_path / "b")):
        monkeypatch.setenv("SOURCE_DATE_EPOCH", day)   # MkDocs' build date
        publish_site(built, out, registry=reg, config_file=config)
        trees.append(_tree(out))
    assert trees[0] == trees[1]
    sitemap = (tmp_path / "a" / "sitemap.xml").read_text()
    assert "<loc>https://zoo.example/models/" in sitemap and "lastmod" not in sitemap
    assert (tmp_path / "a" / "sitemap.xml.gz").read_bytes()[4:8] == b"\0\0\0\0"   # gzip mtime 0
