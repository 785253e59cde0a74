"""The built site in a real browser: Playwright driving Debian's Chromium against 127.0.0.1.

Two sites are built for the module: a small real build (Magika and tiny models) and a 24-model
synthetic catalog for the catalog page at phone, tablet and desktop widths. Every request that
leaves 127.0.0.1 is blocked and recorded (the catalog and the bundled Netron viewer must not phone
home). Screenshots go to test-artifacts/site/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / "test-artifacts" / "site"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
EVIL = ("<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">"
        "[link](javascript:window.__pwned=3)")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A real `quantzoo build`: Magika (3 variants, 250 Pygments files), a tiny conv net with a map
    output, and a tiny classifier whose manifest carries markup. Sources and results are cached in
    the user cache like the other real-model tests, so a rerun only publishes."""
    import shutil

    import yaml

    from quantzoo.cli import main
    from tinyzoo import dataset, model

    root = tmp_path_factory.mktemp("browser")
    zoo = root / "zoo"
    (zoo / "datasets").mkdir(parents=True)
    shutil.copytree(REPO / "zoo" / "models" / "magika-standard-v3", zoo / "models" / "magika-standard-v3")
    manifest = zoo / "models" / "magika-standard-v3" / "model.yaml"
    doc = yaml.safe_load(manifest.read_text())
    manifest.write_text(yaml.safe_dump({**doc, "variants": ["fp16", "linear-8", "kmeans-4"]}, sort_keys=False))
    ds = yaml.safe_load((REPO / "zoo" / "datasets" / "pygments-examplefiles.yaml").read_text())
    # 250 files: with every one agreeing, the lower end of the Wilson interval (0.985) can pass the
    # manifest's 0.98, so a variant can be recommended under the conservative rule (120 could not: 0.969)
    ds["params"] = {**(ds.get("params") or {}), "limit": 250}
    (zoo / "datasets" / "pygments-examplefiles.yaml").write_text(yaml.safe_dump(ds, sort_keys=False))
    dataset(zoo, "vectors", (64,), 40, seed=1)  # 40 of 40 agreeing: Wilson lower end 0.912 >= 0.9
    dataset(zoo, "volumes", (3, 16, 16), 6, seed=2)
    model(zoo, "tiny-mapper", "mapper")
    evil = model(zoo, "tiny-evil", "classifier", description=EVIL)
    doc = yaml.safe_load(evil.read_text())
    evil.write_text(yaml.safe_dump({**doc, "name": "<b>Evil</b> tiny <script>window.__pwned = 4</script>"},
                                   sort_keys=False))
    assert main(["build", "--zoo", str(zoo), "--site-dir", str(root / "site"), "--jobs", "2"]) == 0
    return root / "site"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server(site):
    folder = site
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    outside: list[str] = []

    def route(r):
        if r.request.url.startswith(server):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    ctx.route("**/*", route)
    pg = ctx.new_page()
    pg.outside = outside
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors
    yield pg
    ctx.close()


def shot(pg, name: str, **kw) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    pg.screenshot(path=str(path), **kw)
    return path


def _index(server_folder: Path) -> dict:
    return json.loads((server_folder / "index.json").read_text(encoding="utf-8"))


def _column(pg, table: str, index: int) -> list[str]:
    return [c.strip() for c in pg.locator(f"#{table} tbody tr:not([hidden]) td:nth-child({index})").all_inner_texts()]


def test_catalog_lists_every_model_of_index_json(page, server, site):
    page.goto(server)
    rows = page.locator("#catalog tbody tr")
    models = _index(site)["models"]
    assert [m["id"] for m in models] == ["magika-standard-v3", "tiny-evil", "tiny-mapper"]
    assert rows.count() == len(models)
    for m in models:
        assert page.locator(f'#catalog a[href="models/{m["id"]}.html"]').first.inner_text() == m["name"]
    assert page.locator("[data-qz-count]").inner_text() == f"{len(models)} of {len(models)} models"
    shot(page, "catalog", full_page=True)
    assert page.errors == [] and page.outside == []


def test_clicking_a_header_sorts_the_catalog_and_clicking_again_reverses_it(page, server):
    page.goto(server)
    header = page.locator("#catalog thead th", has_text="its size")
    col = 6
    header.click()
    sizes = [float(x) for x in page.locator(f"#catalog tbody td:nth-child({col})").evaluate_all(
        "cells => cells.map(c => c.dataset.sort)")]
    assert sizes == sorted(sizes) and len(set(sizes)) > 1
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    again = [float(x) for x in page.locator(f"#catalog tbody td:nth-child({col})").evaluate_all(
        "cells => cells.map(c => c.dataset.sort)")]
    assert again == sorted(sizes, reverse=True)
    page.locator("#catalog thead th", has_text="task").click()
    tasks = _column(page, "catalog", 2)
    assert tasks == sorted(tasks)
    shot(page, "catalog-sorted-by-task")


def test_filtering_by_task_and_size_hides_the_other_rows(page, server, site):
    page.goto(server)
    models = _index(site)["models"]
    page.select_option("[data-qz-filter=task]", "dense")
    assert _column(page, "catalog", 2) == ["dense"]
    assert page.locator("[data-qz-count]").inner_text() == f"1 of {len(models)} models"
    page.select_option("[data-qz-filter=task]", "")
    sizes = sorted(next(v["size"] for v in m["variants"] if v["id"] == m["recommended"]) for m in models)
    limit = (sizes[0] + sizes[1]) / 2  # only the smallest recommended file fits
    page.fill("[data-qz-filter=max-size]", f"{limit / 1e6:.6f}")
    assert page.locator("#catalog tbody tr:not([hidden])").count() == 1
    page.fill("[data-qz-filter=text]", "magika")
    assert page.locator("#catalog tbody tr:not([hidden])").count() == 0
    page.fill("[data-qz-filter=max-size]", "")
    assert _column(page, "catalog", 2) == ["classification"]
    shot(page, "catalog-filtered")


def test_model_page_shows_the_variants_table_and_the_chart(page, server, site):
    m = {x["id"]: x for x in _index(site)["models"]}["magika-standard-v3"]
    page.goto(server + "models/magika-standard-v3.html")
    assert page.locator("#variants tbody tr").count() == len(m["variants"]) + 1  # + the float row
    rec = page.locator("#variants tr.qz-rec td").first.inner_text()
    assert rec.split()[0] == m["recommended"]
    # the threshold column (after variant, mode, bits, granularity, size, vs float) shows n beside the share
    assert "n=" in page.locator("#variants tr.qz-rec td").nth(6).inner_text()
    with_interval = sum(1 for v in m["variants"] for ms in v["metrics"].values()
                        if (ms.get("top1_agreement") or {}).get("ci95"))
    assert page.locator("svg.qz-chart path.qz-ci").count() == with_interval
    chart = page.locator("svg.qz-chart")
    assert chart.is_visible()
    box = chart.bounding_box()
    assert box["width"] > 500 and box["height"] > 200
    assert chart.locator("g.qz-point").count() == len(m["variants"])
    labels = chart.locator("text").all_text_contents()
    assert all(any(t.endswith(v["id"]) for t in labels) for v in m["variants"])
    shot(page, "model-magika", full_page=True)
    chart.screenshot(path=str(SHOTS / "model-magika-chart.png"))
    assert page.errors == [] and page.outside == []


def test_a_map_output_model_page_shows_the_output_at_each_variant(page, server, site):
    m = {x["id"]: x for x in _index(site)["models"]}["tiny-mapper"]
    page.goto(server + "models/tiny-mapper.html")
    grid = page.locator(".qz-grid img")
    assert grid.count() == len(m["variants"]) + 2  # the input, the float output, every variant
    assert all(n > 0 for n in grid.evaluate_all("imgs => imgs.map(i => i.naturalWidth)"))
    captions = page.locator(".qz-grid figcaption").all_inner_texts()
    assert captions == ["input", "float", *[v["id"] for v in m["variants"]]]
    page.locator(".qz-grid").screenshot(path=str(SHOTS / "output-grid.png"))
    assert page.errors == [] and page.outside == []


def test_a_download_returns_the_bytes_whose_sha256_the_page_and_index_json_give(page, server, site):
    index = {m["id"]: m for m in _index(site)["models"]}["magika-standard-v3"]
    page.goto(server + "models/magika-standard-v3.html")
    for vid in ("kmeans-4", "fp16"):
        link = page.locator(f"#variant-{vid} a.qz-download")
        shown = page.locator(f"#variant-{vid} code.qz-sha").inner_text().strip()
        with page.expect_download() as dl:
            link.click()
        data = Path(dl.value.path()).read_bytes()
        entry = next(v for v in index["variants"] if v["id"] == vid)
        assert hashlib.sha256(data).hexdigest() == shown == link.get_attribute("data-sha256") == entry["sha256"]
        assert len(data) == entry["size"]
        assert dl.value.suggested_filename == f"magika-standard-v3-{vid}.onnx"


def test_the_graph_view_opens_the_model_in_the_bundled_netron_without_leaving_the_site(page, server, site):
    page.goto(server + "models/magika-standard-v3.html")
    with page.context.expect_page() as new:
        page.locator("#variant-kmeans-4 a.qz-graph").click()
    viewer = new.value
    viewer.wait_for_selector("body.default #canvas g.node", timeout=30_000)  # the graph view, not a dialog
    assert viewer.locator("#canvas g.node").count() >= 20  # magika has ~100 nodes
    viewer.wait_for_timeout(300)
    shot(viewer, "netron-graph")
    assert page.outside == [], f"requests left the site: {page.outside}"


def test_a_script_in_a_manifest_does_not_run(page, server, site):
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    for path in ["", "models/tiny-evil.html", "methodology.html"]:
        page.goto(server + path)
        page.wait_for_load_state("load")
        assert page.evaluate("typeof window.__pwned") == "undefined"
    page.goto(server + "models/tiny-evil.html")
    desc = page.locator(".qz-description").first.inner_text()
    assert desc.startswith("<script>window.__pwned = 1</script>")  # shown as text
    assert page.locator("h1#model").inner_text() == "<b>Evil</b> tiny <script>window.__pwned = 4</script>"
    assert "<b>Evil</b>" in page.title()
    shot(page, "escaped-manifest")
    page.goto(server)
    assert "<b>Evil</b>" in page.locator('#catalog a[href="models/tiny-evil.html"]').inner_text()
    assert dialogs == [] and page.errors == []


# The catalog page at 24 models, on a phone and on a desktop: a synthetic zoo (real manifests and
# tiny real ONNX files, invented metrics) published by the real publisher; no quantize work.

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def catalog_site(tmp_path_factory):
    from publishzoo import catalog_zoo
    from quantzoo.publish.site import publish_site

    root = tmp_path_factory.mktemp("catalog24")
    reg, built = catalog_zoo(root, 24)
    publish_site(built, root / "site", registry=reg)
    return root / "site"


@pytest.fixture(scope="module")
def catalog_server(catalog_site):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(catalog_site)))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


def _open(browser, url: str, viewport: dict, **kw):
    """A page at `url` in a fresh context that may reach only the server; returns (context, page)."""
    ctx = browser.new_context(viewport=viewport, **kw)
    outside: list[str] = []
    ctx.route("**/*", lambda r: r.continue_() if r.request.url.startswith(url)
              else (outside.append(r.request.url), r.abort()))
    pg = ctx.new_page()
    pg.outside, pg.errors = outside, []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.goto(url)
    return ctx, pg


def _visible_ids(pg) -> list[str]:
    return pg.locator("#catalog tbody tr:not([hidden]) code.qz-id").all_inner_texts()


def _download_size(m: dict) -> int:
    rec = next((v for v in m["variants"] if v["id"] == m.get("recommended")), None)
    return rec["size"] if rec else m["float"]["size"]


@pytest.mark.parametrize("width", [390, 820])  # a phone (one card per line), a tablet (a grid of cards)
def test_on_a_phone_or_tablet_every_figure_of_every_model_is_on_screen(browser, catalog_server, catalog_site, width):
    models = _index(catalog_site)["models"]
    assert len(models) == 24
    ctx, pg = _open(browser, catalog_server, {"width": width, "height": 844})
    try:
        assert pg.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
        cards = pg.locator("#catalog tbody tr")
        assert cards.count() == 24
        # every cell, and everything inside it (name, id, chip, links, value, interval), lies within 390 px
        boxes = pg.locator("#catalog tbody td, #catalog tbody td *").evaluate_all(
            "els => els.map(e => { const r = e.getBoundingClientRect();"
            " return [e.className || e.tagName, r.left, r.right, r.width, r.height]; })")
        assert len(boxes) > 24 * 9
        outside = [b for b in boxes if b[3] > 0 and (b[1] < 0 or b[2] > width)]
        assert outside == []
        # no cell collapsed, except the size and ratio of a model without a recommended variant
        empty = pg.locator("#catalog tbody td").evaluate_all(
            "cells => cells.filter(c => c.getBoundingClientRect().height === 0).map(c => c.className)")
        norec = pg.locator("#catalog tbody tr.qz-norec").count()
        assert sorted(empty) == sorted(["qz-c-recommended_size", "qz-c-ratio"] * norec) and norec > 0
        # each figure is labelled with its column's name (the header row is not shown on a phone)
        labels = pg.locator("#catalog tbody tr:first-child td").evaluate_all(
            "cells => cells.map(c => getComputedStyle(c, '::before').content)")
        assert labels == ["none", "none", '"float size"', '"parameters"', '"recommended"', '"its size"',
                          '"vs float"', "none", '"license"']  # name, task chip and metric name speak for themselves
        by_id = {m["id"]: m for m in models}
        for i in range(24):
            card = cards.nth(i)
            m = by_id[card.locator("code.qz-id").inner_text()]
            text = card.inner_text()
            for figure in (m["name"], m["task"], m["license"]):
                assert figure in text, (m["id"], figure)
            if m.get("recommended"):
                assert m["recommended"] in text and "n=" in text and "–" in text  # the value with n and interval
            else:
                assert "none: use the float model" in text
            assert card.bounding_box()["width"] <= width
        assert pg.locator("#catalog thead").bounding_box()["height"] <= 1  # the header row is not shown
        first, second = cards.nth(0).bounding_box(), cards.nth(1).bounding_box()
        side_by_side = first["y"] == second["y"] and first["x"] < second["x"]
        assert side_by_side == (width > 576), (first, second)  # a grid of cards from 576 px, else one per line
        shot(pg, f"catalog-{width}", full_page=True)
        assert pg.errors == [] and pg.outside == []
    finally:
        ctx.close()


def test_filtering_by_task_license_and_size_shows_exactly_the_matching_models(browser, catalog_server, catalog_site):
    models = _index(catalog_site)["models"]
    ctx, pg = _open(browser, catalog_server, PHONE)
    try:
        assert _visible_ids(pg) == [m["id"] for m in models]
        pg.select_option("[data-qz-filter=task]", "classification")
        want = [m["id"] for m in models if m["task"] == "classification"]
        assert _visible_ids(pg) == want and 1 < len(want) < 24
        lic = next(m["license"] for m in models if m["task"] == "classification")
        pg.select_option("[data-qz-filter=license]", lic)
        want = [m["id"] for m in models if m["task"] == "classification" and m["license"] == lic]
        assert _visible_ids(pg) == want and len(want) >= 1
        assert pg.locator("[data-qz-count]").inner_text() == f"{len(want)} of 24 models"
        pg.select_option("[data-qz-filter=license]", "MIT")
        pg.select_option("[data-qz-filter=task]", "")
        want = [m["id"] for m in models if m["license"] == "MIT"]
        assert _visible_ids(pg) == want and len(want) == 6
        sizes = sorted({_download_size(m) for m in models})
        limit = (sizes[0] + sizes[1]) / 2
        pg.fill("[data-qz-filter=max-size]", f"{limit / 1e6:.6f}")
        want = [m["id"] for m in models if m["license"] == "MIT" and _download_size(m) <= limit]
        assert _visible_ids(pg) == want
        assert pg.locator("[data-qz-empty]").is_visible() == (want == [])
        pg.select_option("[data-qz-filter=license]", "")
        want = [m["id"] for m in models if _download_size(m) <= limit]
        assert _visible_ids(pg) == want and 0 < len(want) < 24
        # a hidden card takes no room: the cards shown are the only ones with a box
        assert pg.locator("#catalog tbody tr[hidden]").evaluate_all(
            "rows => rows.every(r => r.getBoundingClientRect().height === 0)")
        assert not pg.locator("[data-qz-empty]").is_visible()
        shot(pg, "catalog-390-filtered", full_page=True)
        pg.fill("[data-qz-filter=text]", "no such model")
        assert _visible_ids(pg) == [] and pg.locator("[data-qz-empty]").is_visible()
        pg.fill("[data-qz-filter=text]", "")
        pg.fill("[data-qz-filter=max-size]", "")
        assert len(_visible_ids(pg)) == 24
        assert pg.errors == [] and pg.outside == []
    finally:
        ctx.close()


def test_on_a_phone_the_cards_sort_by_a_chosen_column(browser, catalog_server, catalog_site):
    ctx, pg = _open(browser, catalog_server, PHONE)
    try:
        sort = pg.locator("[data-qz-sort]")
        assert sort.is_visible()
        sort.select_option(label="its size, largest first")
        sizes = [float(x) for x in pg.locator("#catalog tbody td.qz-c-recommended_size").evaluate_all(
            "cells => cells.map(c => c.dataset.sort).filter(s => s !== '')")]
        assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) > 1
        sort.select_option("")
        assert _visible_ids(pg) == [m["id"] for m in _index(catalog_site)["models"]]  # the catalog order again
    finally:
        ctx.close()


def test_at_desktop_width_the_catalog_is_one_table_row_per_model(browser, catalog_server):
    ctx, pg = _open(browser, catalog_server, {"width": 1280, "height": 900})
    try:
        assert pg.evaluate("document.documentElement.scrollWidth") <= 1280
        heads = pg.locator("#catalog thead th")
        assert heads.count() == 9 and heads.first.is_visible()
        assert not pg.locator("[data-qz-sort]").is_visible()  # the headers sort here
        first = pg.locator("#catalog tbody tr").first
        tops = {round(c["y"]) for c in first.locator("td").evaluate_all(
            "cells => cells.map(c => ({y: c.getBoundingClientRect().top}))")}
        assert len(tops) == 1  # the cells sit side by side in one row
        shot(pg, "catalog-1280", full_page=True)
        assert pg.errors == [] and pg.outside == []
    finally:
        ctx.close()


def test_without_javascript_the_whole_catalog_shows_and_no_dead_filters(browser, catalog_server):
    ctx, pg = _open(browser, catalog_server, PHONE, java_script_enabled=False)
    try:
        assert pg.locator("#catalog tbody tr").count() == 24
        assert all(pg.locator("#catalog tbody tr").nth(i).is_visible() for i in range(24))
        assert not pg.locator(".qz-filters").is_visible()
    finally:
        ctx.close()
