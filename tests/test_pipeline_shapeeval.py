"""pipeline.shapeeval: agreement at each promised shape on the evaluation data re-preprocessed at
that shape, through build, index.json and the model page, on a tiny conv net and real images."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from quantzoo.cli import main
from quantzoo.pipeline.shapeeval import add_evaluations, params_at
from tinyzoo import make_zoo, mapper, sha

SHAPES = ["x=1x3x16x16,1x3x24x24,1x3x32x32"]
N_IMAGES = 5


def _images_dataset(zoo: Path) -> None:
    """Five PNG photos of different sizes and aspect ratios, bundled as dataset `pictures`."""
    from PIL import Image

    from quantzoo.cache import tree_listing, tree_sha256

    folder = zoo / "data" / "pictures"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    parts = []
    for i, (w, h) in enumerate([(40, 30), (20, 50), (64, 64), (33, 17), (90, 45)]):
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 127 // (w + h)], axis=-1)
        pixels = np.clip(base + rng.integers(-40, 40, (h, w, 3)), 0, 255).astype(np.uint8)
        p = folder / f"p{i}.png"
        Image.fromarray(pixels).save(p)
        parts.append({"name": p.name, "source": {"kind": "file", "path": f"../data/pictures/{p.name}",
                                                  "sha256": sha(p), "size": p.stat().st_size}})
    doc = {"id": "pictures", "description": "Five small generated pictures.",
           "license": {"spdx": "CC0-1.0", "url": "https://creativecommons.org/publicdomain/zero/1.0/"},
           "source": {"kind": "bundle", "parts": parts, "sha256": tree_sha256(tree_listing(folder))},
           "adapter": "images"}
    (zoo / "datasets" / "pictures.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def _imager(zoo: Path) -> None:
    """tiny-imager: the conv mapper fed real pictures resized to 16×16, promising 16, 24 and 32 px."""
    onnx_path = zoo / "files" / "tiny-imager.onnx"
    mapper(onnx_path, seed=11)
    doc = {"id": "tiny-imager", "name": "Tiny imager", "task": "dense", "description": "A tiny conv net on pictures.",
           "license": {"spdx": "MIT", "url": "https://opensource.org/license/mit"}, "authors": ["the test"],
           "source": {"kind": "file", "path": "../../files/tiny-imager.onnx", "sha256": sha(onnx_path),
                      "size": onnx_path.stat().st_size},
           "inputs": [{"name": "x", "dtype": "float32", "shape": ["N", 3, 16, 16]}],
           "outputs": [{"name": "map", "dtype": "float32", "shape": ["N", 1, 16, 16]}],
           "preprocessing": {"adapter": "image", "params": {"resize": "exact", "size": [16, 16], "layout": "NCHW"}},
           "dataset": "pictures", "variants": ["fp16", "linear-4"], "shapes": SHAPES,
           "threshold": {"output": "map", "metric": "cosine", "min": 0.5}}
    (zoo / "models" / "tiny-imager").mkdir(parents=True)
    (zoo / "models" / "tiny-imager" / "model.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapeeval")
    zoo = make_zoo(root / "zoo")
    _images_dataset(zoo)
    _imager(zoo)
    code = main(["build", "--zoo", str(zoo), "--cache", str(root / "cache"), "--site-dir", str(root / "site"),
                 "--jobs", "1", "tiny-imager"])
    assert code == 0
    index = json.loads((root / "site" / "index.json").read_text())
    return root, zoo, next(m for m in index["models"] if m["id"] == "tiny-imager")


def test_each_variant_has_agreement_on_the_pictures_preprocessed_at_each_promised_size(built):
    _, _, entry = built
    for v in entry["variants"]:
        own, *resized = v["shapes"]["verified"]
        assert [r["shape"] for r in v["shapes"]["verified"]] == ["1x3x16x16", "1x3x24x24", "1x3x32x32"]
        # at the preprocessing's own size: the variant's comparison itself
        assert own["evaluation"]["resized"] is False and own["evaluation"]["n"] == N_IMAGES
        assert own["evaluation"]["metrics"]["map"]["cosine"] == v["metrics"]["map"]["cosine"]
        for row in resized:
            ev = row["evaluation"]
            assert row["runs"] and ev["resized"] is True and ev["n"] == N_IMAGES and ev["batch"] == 1
            assert sorted(ev["metrics"]["map"]) == ["cosine", "snr_db"]
            lo, hi = ev["metrics"]["map"]["cosine"]["ci95"]
            assert lo <= ev["metrics"]["map"]["cosine"]["mean"] <= hi and ev["metrics"]["map"]["cosine"]["n"] == N_IMAGES
    assert all("evaluation" not in r for r in entry["float"]["shapes"]["verified"])


def test_the_figures_at_a_size_are_the_comparison_of_the_pictures_resized_to_it(built):
    """The same numbers as compare's own API on the pictures preprocessed at 32×32 by hand."""
    from quantzoo.compare import prepare
    from quantzoo.registry import load_registry

    root, zoo, entry = built
    model = load_registry(zoo).model("tiny-imager")
    at32 = dataclasses.replace(model, preprocessing={"adapter": "image", "params": {
        "resize": "exact", "size": [32, 32], "layout": "NCHW"}})
    site = root / "site"
    ev = prepare(site / entry["float"]["file"], None, model=at32, registry=load_registry(zoo), cache=False)
    assert ev.batches[0]["x"].shape[1:] == (3, 32, 32)
    for v in entry["variants"]:
        got = ev.compare(site / v["file"]).metrics["map"]
        row = v["shapes"]["verified"][2]["evaluation"]["metrics"]["map"]
        assert row["cosine"]["mean"] == got["cosine"]["mean"] and row["snr_db"]["mean"] == got["snr_db"]["mean"]
    # and at another size the data, hence the figure, is another one
    v = entry["variants"][-1]["shapes"]["verified"]
    assert v[1]["evaluation"]["metrics"]["map"]["snr_db"] != v[2]["evaluation"]["metrics"]["map"]["snr_db"]


def test_the_index_reader_takes_the_evaluations_and_the_page_shows_them(built):
    from quantzoo.catalog import CatalogIndex

    root, _, _ = built
    index = CatalogIndex.from_json(json.loads((root / "site" / "index.json").read_text()), "index.json")
    model = next(m for m in index.models if m.id == "tiny-imager")
    check = model.variants[0].shapes.verified[2]
    assert check.evaluation.n == N_IMAGES and check.evaluation.metrics["map"]["cosine"].ci95 is not None
    page = (root / "site" / "models" / "tiny-imager.html").read_text()
    assert f"n={N_IMAGES}, 95 %" in page and "re-preprocessed at that size" in page


def test_a_variant_that_fails_on_the_data_at_a_size_is_marked_failed_there(built, tmp_path):
    """A file carrying the promise but fixed at 16×16 runs at its own size and fails at 24 and 32."""
    import onnx

    from quantzoo.cache import Cache
    from quantzoo.compare import prepare
    from quantzoo.registry import load_registry

    root, zoo, entry = built
    float_path = root / "site" / entry["float"]["file"]
    fixed = onnx.load(str(zoo / "files" / "tiny-imager.onnx"))
    fixed.metadata_props.extend(onnx.load(str(float_path)).metadata_props)
    onnx.save(fixed, tmp_path / "fixed.onnx")
    reg = load_registry(zoo)
    model = reg.model("tiny-imager")
    cache = Cache(root / "cache")
    ev = prepare(float_path, None, model=model, registry=reg, cache=cache)
    comparison = ev.compare(tmp_path / "fixed.onnx").to_dict()
    doc = {"verified": [{"shape": s, "runs": True, "max_abs_diff": 0.0, "top1_agreement": None}
                        for s in ("1x3x16x16", "1x3x24x24", "1x3x32x32")]}
    out = add_evaluations(doc, model, reg, cache, float_path, tmp_path / "fixed.onnx", lambda: ev, comparison)
    assert out["verified"][0]["runs"] and out["verified"][0]["evaluation"]["resized"] is False
    for row in out["verified"][1:]:
        assert row["runs"] is False and "on the evaluation data at this size" in row["error"]
        assert "evaluation" not in row


def test_an_image_preprocessor_retargeted_to_two_sizes_gives_those_sizes():
    """EfficientNet's resize-shorter-then-crop at 224×320 and 320×320; a text line at 1280 wide."""
    from PIL import Image

    from quantzoo.compare.preprocess import PREPROCESSORS, InputSpec

    pre = {"adapter": "image", "params": {"resize": "shorter", "shorter_side": 256, "crop": [224, 224],
                                          "mean": 0.5, "std": 0.5, "layout": "NCHW"}}
    photo = Image.fromarray(np.zeros((300, 500, 3), np.uint8))
    spec = [InputSpec("input", "tensor(float)", (None, 3, None, None))]
    for dims in ([3, 224, 320], [3, 320, 320]):
        params = params_at(pre, dims)
        assert PREPROCESSORS["image"].preprocess(photo, params, spec)["input"].shape == tuple(dims)
    assert params_at(pre, [3, 224, 224]) == pre["params"]  # the own size: nothing to re-preprocess
    line = {"adapter": "text-line-image", "params": {"height": 48, "width": 320}}
    out = PREPROCESSORS["text-line-image"].preprocess(photo, params_at(line, [3, 48, 1280]), spec)
    assert out["input"].shape == (3, 48, 1280)
