"""pipeline.grid (and publish.grid): the picture grid of a style-transfer-like model, built by a
real worker job from a tiny two-input model (a picture and an unbatched style vector), styled
photos and the styled-image preprocessor; same inputs, same bytes."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
import yaml

from quantzoo.cache import Cache, tree_listing, tree_sha256
from quantzoo.pipeline import grid as G
from quantzoo.pipeline import store, worker
from quantzoo.pipeline.plan import model_jobs
from quantzoo.publish.grid import grid_context, grid_files
from quantzoo.registry import load_registry
from tinyzoo import sha


def styler(path: Path) -> None:
    """image [1, 3, h, w] and style_weights [4] → sigmoid(conv(image) + style bias): a picture."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    w1 = rng.standard_normal((96, 3, 3, 3)).astype(np.float32) * 0.3
    w2 = rng.standard_normal((3, 96, 1, 1)).astype(np.float32) * 0.2
    ws = rng.standard_normal((4, 3)).astype(np.float32)
    g = helper.make_graph(
        [helper.make_node("Conv", ["image", "w1"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
         helper.make_node("Conv", ["r", "w2"], ["m"]),
         helper.make_node("Unsqueeze", ["style_weights", "ax0"], ["s2"]), helper.make_node("MatMul", ["s2", "ws"], ["b"]),
         helper.make_node("Reshape", ["b", "shape"], ["b4"]), helper.make_node("Add", ["m", "b4"], ["a"]),
         helper.make_node("Sigmoid", ["a"], ["stylized"])], "styler",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "h", "w"]),
         helper.make_tensor_value_info("style_weights", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("stylized", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(ws, "ws"),
         numpy_helper.from_array(np.array([0], np.int64), "ax0"),
         numpy_helper.from_array(np.array([1, 3, 1, 1], np.int64), "shape")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, path)


def make_style_zoo(root: Path) -> Path:
    from PIL import Image

    photos = root / "data" / "photos"
    photos.mkdir(parents=True)
    rng = np.random.default_rng(3)
    parts = []
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(photos / name)
        parts.append({"name": name, "source": {"kind": "file", "path": f"../data/photos/{name}",
                                               "sha256": sha(photos / name), "size": (photos / name).stat().st_size}})
    (root / "datasets").mkdir()
    (root / "datasets" / "styled.yaml").write_text(yaml.safe_dump({
        "id": "styled", "description": "Two random photos in two styles.",
        "license": {"spdx": "CC0-1.0", "url": "https://creativecommons.org/publicdomain/zero/1.0/"},
        "source": {"kind": "bundle", "parts": parts, "sha256": tree_sha256(tree_listing(photos))},
        "adapter": "styled-photos", "params": {"styles": [1, 3]}}, sort_keys=False))
    onnx_path = root / "files" / "tiny-styler.onnx"
    onnx_path.parent.mkdir()
    styler(onnx_path)
    (root / "models" / "tiny-styler").mkdir(parents=True)
    (root / "models" / "tiny-styler" / "model.yaml").write_text(yaml.safe_dump({
        "id": "tiny-styler", "name": "Tiny styler", "task": "image-to-image", "description": "A tiny styler.",
        "license": {"spdx": "MIT", "url": "https://opensource.org/license/mit"}, "authors": ["the test"],
        "source": {"kind": "file", "path": "../../files/tiny-styler.onnx", "sha256": sha(onnx_path),
                   "size": onnx_path.stat().st_size},
        "inputs": [{"name": "image", "dtype": "float32", "shape": [1, 3, "h", "w"]},
                   {"name": "style_weights", "dtype": "float32", "shape": [4]}],
        "outputs": [{"name": "stylized", "dtype": "float32", "shape": [1, 3, "h", "w"]}],
        "preprocessing": {"adapter": "styled-image",
                          "params": {"resize": "exact", "size": [16, 16], "unbatched": ["style_weights"]}},
        "dataset": "styled", "variants": ["linear-8", "linear-2"],
        "threshold": {"output": "stylized", "metric": "ssim", "min": 0.9},
        "samples": ["b.png#style-3", "a.png#style-1"]}, sort_keys=False))
    return root


def _build(root: Path):
    reg = load_registry(root)
    m = reg.model("tiny-styler")
    jobs = model_jobs(str(reg.root), str(root / "cache"), m, str(root / "files" / "tiny-styler.onnx"),
                      m.source["sha256"], reg.datasets.get(m.dataset))
    worker.reset()
    results = [worker.run_job(j) for j in jobs]
    return reg, jobs, results


def test_grid_rows_follow_the_manifest_samples_or_take_the_first_few():
    keys = ["a.png#style-1", "a.png#style-3", "b.png#style-1", "d/c.png"]
    assert G.grid_rows(keys, ["b.png#style-1", "c.png", "nope"]) == [2, 3]
    assert G.grid_rows(keys, None) == [0, 1, 2, 3][:G.DEFAULT_ROWS]
    assert G.grid_rows(keys, ["nope"]) == [0, 1, 2, 3][:G.DEFAULT_ROWS]


def test_pictures_are_the_same_png_bytes_every_time_and_map_0_1_to_black_white():
    from PIL import Image

    y = np.zeros((3, 4, 6), np.float32)
    y[:, 0, 0] = 1.0
    png = G.picture_png(y)
    assert png == G.picture_png(y.copy())
    im = Image.open(BytesIO(png))
    assert im.mode == "RGB" and im.size == (6, 4) and im.getpixel((0, 0)) == (255, 255, 255) and im.getpixel((1, 0)) == (0, 0, 0)
    mask = Image.open(BytesIO(G.picture_png(np.full((1, 300, 200), 0.5))))
    assert mask.mode == "L" and mask.size == (round(200 * G.CELL_SIDE / 300), G.CELL_SIDE)


def test_picture_metrics_by_hand():
    ref = np.zeros((1, 4, 4)); ref[0, :2] = 1.0
    test = ref.copy(); test[0, 0, 0] = 0.0                  # one pixel of 16 off by 1
    m = G.picture_metrics("mask", ref, test)
    assert m["mask_iou"] == pytest.approx(7 / 8) and m["psnr_db"] == pytest.approx(10 * np.log10(16), abs=1e-6)
    assert "ssim" in G.picture_metrics("image", np.full((3, 12, 12), 0.5), np.full((3, 12, 12), 0.5))


def test_a_style_model_builds_its_grid_with_an_unbatched_style_input(tmp_path):
    root = make_style_zoo(tmp_path / "zoo")
    reg, jobs, results = _build(root)
    assert [r.failure for r in results] == [None, None]
    assert all("preview" in r.did for r in results)
    cache = Cache(root / "cache")
    assert all(store.is_done(cache, j) for j in jobs)
    comparison = json.loads(store.comparison_path(cache, jobs[0].keys.comparison(
        store.read_artifact(cache, jobs[0].keys.artifact)["sha256"])).read_text())
    ssim = comparison["metrics"]["stylized"]["ssim"] if "metrics" in comparison else comparison["outputs"]["stylized"]["ssim"]
    assert ssim["n"] == 4 and 0.9 < ssim["mean"] <= 1.0          # 2 photos × 2 styles, linear-8 is close

    from quantzoo.publish import BuiltVariant

    variants = []
    for j, v in zip(jobs, reg.model("tiny-styler").variants):
        meta = store.read_artifact(cache, j.keys.artifact)
        variants.append(BuiltVariant(v, store.artifact_paths(cache, j.keys.artifact)[0], meta["sha256"], meta["size"], {}))
    g = G.read_grid(cache, jobs, variants)
    assert g.rows == ("b.png#style-3", "a.png#style-1") and [c.variant for c in g.columns] == ["linear-8", "linear-2"]
    assert all(p is not None and p.is_file() for p in g.inputs) and all(p.is_file() for p in g.floats)
    assert g.columns[0].metrics[0]["ssim"] > g.columns[1].metrics[0]["ssim"]     # 8 bits beat 2 bits
    names = [n for n, _ in grid_files("tiny-styler", g)]
    assert len(names) == 2 * 4 and "files/tiny-styler/grid/linear-2-1.png" in names
    ctx = grid_context("tiny-styler", g, {"float": 1, "linear-8": 2, "linear-2": 3}, {})
    assert [c["label"] for c in ctx["columns"]] == ["input", "float", "linear-8", "linear-2"]
    assert ctx["rows"][0]["label"] == "b.png, style 3" and ctx["rows"][0]["cells"][2]["caption"].startswith("PSNR ")

    # a grid drawn later (the comparison cached: the artifact runs again) has the same bytes
    before = [q.read_bytes() for q in g.columns[1].pictures]
    key = jobs[1].keys.preview(variants[1].sha256)
    for q in store.preview_path(cache, key).parent.glob(key + "*"):
        q.unlink()
    worker.reset()
    assert worker.run_job(jobs[1]).did == ("preview",)
    assert [q.read_bytes() for q in G.read_grid(cache, jobs, variants).columns[1].pictures] == before

    # a second build from nothing gives the same bytes
    root2 = make_style_zoo(tmp_path / "zoo2")
    _, jobs2, _ = _build(root2)
    g2 = G.read_grid(Cache(root2 / "cache"), jobs2, variants)
    for a, b in zip(grid_files("m", g), grid_files("m", g2)):
        assert a[1].read_bytes() == b[1].read_bytes()
