"""pipeline.collect with multi-file variants, end to end: an artifact written with external data
(threshold forced small) is recorded, collected, published with its data file listed in
index.json, and pulled and loaded whole by the client; a tampered data file is refused."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from httpserver import LocalServer
from quantzoo.cli import main
from quantzoo.quantize import external
from tinyzoo import make_zoo


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multifile")
    zoo = make_zoo(tmp / "zoo")
    mp = pytest.MonkeyPatch()
    mp.setattr(external, "DEFAULT_THRESHOLD", 4000)  # every artifact over 4 kB gets a data file
    try:
        rc = main(["build", "--zoo", str(zoo), "--cache", str(tmp / "cache"), "--site-dir", str(tmp / "site"),
                   "--jobs", "1"])
    finally:
        mp.undo()
    assert rc == 0
    return tmp


def variant(doc, model_id, variant_id):
    m = next(m for m in doc["models"] if m["id"] == model_id)
    return next(v for v in m["variants"] if v["id"] == variant_id)


def test_index_json_lists_every_file_of_a_variant_and_the_site_holds_them(built):
    site = built / "site"
    doc = json.loads((site / "index.json").read_text())
    v = variant(doc, "tiny-classifier", "fp16")
    assert [f["file"].rsplit("/", 1)[0] for f in v["files"]] == ["files/tiny-classifier"]
    for entry in [v, *v["files"]]:
        data = (site / entry["file"]).read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (entry["sha256"], entry["size"])
    assert v["size"] == (site / v["file"]).stat().st_size  # the .onnx alone; each file has its own size
    records = [json.loads(p.read_text()) for p in (built / "cache" / "derived" / "artifacts").glob("*.json")]
    records = [r for r in records if r["model"] == "tiny-classifier"]
    assert len(records) == 3 and all(r["files"][0]["file"].startswith(f"{r['model']}-{r['variant']}-")
                                     for r in records)


def test_pull_and_load_a_multi_file_variant_from_a_server(built, tmp_path, capsys):
    import quantzoo

    site = built / "site"
    doc = json.loads((site / "index.json").read_text())
    v = variant(doc, "tiny-classifier", "kmeans-4")
    with LocalServer() as srv:
        srv.serve_dir(site)
        rc = main(["pull", "tiny-classifier", "--variant", "kmeans-4", "--catalog", srv.url("/"), "-o",
                   str(tmp_path / "out"), "--cache", str(tmp_path / "c1")])
        out, err = capsys.readouterr()
        assert rc == 0, err
        names = sorted(p.name for p in (tmp_path / "out").iterdir())
        assert names == sorted([v["file"].rsplit("/", 1)[1]] + [f["file"].rsplit("/", 1)[1] for f in v["files"]])
        sess = quantzoo.load("tiny-classifier", "kmeans-4", catalog=srv.url("/"), cache=tmp_path / "c2", session=True)
        x = np.random.default_rng(0).standard_normal((2, 64)).astype(np.float32)
        assert sess.run(None, {"x": x})[0].shape == (2, 10)


def test_a_tampered_data_file_is_refused(built, tmp_path, capsys):
    root = tmp_path / "site"
    shutil.copytree(built / "site", root)
    doc = json.loads((root / "index.json").read_text())
    data = root / variant(doc, "tiny-classifier", "linear-8")["files"][0]["file"]
    raw = bytearray(data.read_bytes())
    raw[-1] ^= 1
    data.write_bytes(bytes(raw))
    with LocalServer() as srv:
        srv.serve_dir(root)
        rc = main(["pull", "tiny-classifier", "--variant", "linear-8", "--catalog", srv.url("/"), "-o",
                   str(tmp_path / "out"), "--cache", str(tmp_path / "c")])
    out, err = capsys.readouterr()
    assert rc != 0 and "sha256" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
