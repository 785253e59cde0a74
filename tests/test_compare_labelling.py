"""Labels by construction: photos labelled by the class index in their file names, pages by the
quarter turn that made them; and the two dataset adapters that use them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from quantzoo.compare import labelling as L
from quantzoo.compare.datasets import DATASET_ADAPTERS
from quantzoo.compare.summary import summarize
from quantzoo.errors import QuantzooError


def _photos(root, names):
    (root / "foolbox").mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.new("RGB", (40, 30), (10 * i, 0, 0)).save(root / name)


def test_class_index_views_label_every_view_by_the_index_in_its_photos_file_name(tmp_path):
    _photos(tmp_path, ["foolbox/imagenet_00_2.jpg", "foolbox/imagenet_01_0.jpg", "coffee.png", "cat.png"])
    (tmp_path / "names.json").write_text(json.dumps(["tench", "goldfish", "great white shark"]))
    params = {"flips": [False, True], "classes": {"coffee.png": "espresso"}, "class_names": "names.json",
              "class_pattern": r"^imagenet_\d+_(\d+)\.jpg$", "exclude": ["*.json"]}
    skipped: list = []
    views = DATASET_ADAPTERS["class-index-views"].read(tmp_path, params, skipped)
    assert skipped == []
    assert [(v.key, v.label) for v in views] == [
        ("cat.png", None), ("cat.png#flip", None),
        ("coffee.png", "espresso"), ("coffee.png#flip", "espresso"),
        ("foolbox/imagenet_00_2.jpg", "great white shark"), ("foolbox/imagenet_00_2.jpg#flip", "great white shark"),
        ("foolbox/imagenet_01_0.jpg", "tench"), ("foolbox/imagenet_01_0.jpg#flip", "tench")]
    # without class names the label is the index, which label_indices reads as a class index
    plain = DATASET_ADAPTERS["class-index-views"].read(tmp_path, {"exclude": ["*.json"]}, [])
    assert [v.label for v in plain if v.key.startswith("foolbox")] == ["2", "0"]


def test_a_class_index_outside_the_names_or_with_a_shared_name_is_an_error(tmp_path):
    _photos(tmp_path, ["imagenet_00_5.jpg"])
    (tmp_path / "names.txt").write_text("a\nb\n")
    with pytest.raises(QuantzooError, match="class index 5 is outside the 2 class names"):
        DATASET_ADAPTERS["class-index-views"].read(tmp_path, {"class_names": "names.txt", "include": ["*.jpg"]}, [])
    (tmp_path / "names.txt").write_text("\n".join(["x"] * 4 + ["missile", "missile"]))
    with pytest.raises(QuantzooError, match="'missile' is shared by classes \\[4, 5\\]"):
        DATASET_ADAPTERS["class-index-views"].read(tmp_path, {"class_names": "names.txt", "include": ["*.jpg"]}, [])
    with pytest.raises(QuantzooError, match="no file 'gone.json'"):
        DATASET_ADAPTERS["class-index-views"].read(tmp_path, {"class_names": "gone.json", "include": ["*.jpg"]}, [])


def test_class_names_files_are_read_as_a_json_list_a_json_object_or_lines(tmp_path):
    (tmp_path / "a.json").write_text('["x", "y"]')
    (tmp_path / "b.json").write_text('{"1": "y", "0": "x", "10": "z"}')
    (tmp_path / "c.txt").write_text("x\n\ny\n")
    assert L.read_class_names(tmp_path, "a.json") == ["x", "y"]
    assert L.read_class_names(tmp_path, "b.json") == ["x", "y", "z"]
    assert L.read_class_names(tmp_path, "c.txt") == ["x", "y"]


def _arrow_page(root):
    """A 4×2 page whose only white pixel is at its top-left corner."""
    a = np.zeros((2, 4, 3), np.uint8)
    a[0, 0] = 255
    Image.fromarray(a).save(root / "page.png")


def test_quarter_turns_turn_every_page_clockwise_and_label_it_with_the_angle(tmp_path):
    _arrow_page(tmp_path)
    samples = DATASET_ADAPTERS["quarter-turns"].read(tmp_path, {}, [])
    assert [(s.key, s.label, s.data.size) for s in samples] == [
        ("page.png", "0", (4, 2)), ("page.png#turn90", "90", (2, 4)),
        ("page.png#turn180", "180", (4, 2)), ("page.png#turn270", "270", (2, 4))]
    white = {s.label: tuple(int(v) for v in np.argwhere(np.asarray(s.data)[..., 0] == 255)[0]) for s in samples}
    # (row, column) of the top-left pixel after each clockwise turn: top-right, bottom-right, bottom-left
    assert white == {"0": (0, 0), "90": (0, 1), "180": (1, 3), "270": (3, 0)}
    ccw = DATASET_ADAPTERS["quarter-turns"].read(tmp_path, {"clockwise": False, "angles": [90]}, [])
    assert np.array_equal(np.asarray(ccw[0].data), np.asarray(samples[3].data))
    # exact turns: four quarter turns give the page back, byte for byte
    img = samples[0].data
    for _ in range(4):
        img = L.quarter_turn(img, 90)
    assert img.tobytes() == samples[0].data.tobytes()


def test_quarter_turns_shrink_pages_and_refuse_angles_that_are_not_quarter_turns(tmp_path):
    Image.new("P", (400, 100)).save(tmp_path / "wide.png")
    s = DATASET_ADAPTERS["quarter-turns"].read(tmp_path, {"max_side": 100, "angles": [0, 90]}, [])
    assert [x.data.size for x in s] == [(100, 25), (25, 100)] and s[0].data.mode == "RGB"
    with pytest.raises(QuantzooError, match="not a multiple of 90"):
        DATASET_ADAPTERS["quarter-turns"].read(tmp_path, {"angles": [45]}, [])


def test_intervals_count_pages_not_turns(tmp_path):
    for name in ["a.png", "b.png", "c.png"]:
        _arrow_page(tmp_path)
        (tmp_path / "page.png").rename(tmp_path / name)
    samples = DATASET_ADAPTERS["quarter-turns"].read(tmp_path, {}, [])
    cluster = DATASET_ADAPTERS["quarter-turns"].cluster
    pages = [cluster(s.key) for s in samples]
    assert len(samples) == 12 and sorted(set(pages)) == ["a.png", "b.png", "c.png"]
    by_page = summarize("accuracy_float", [1.0] * 12, pages)
    by_sample = summarize("accuracy_float", [1.0] * 12)
    assert by_page["ci95"][0] < by_sample["ci95"][0]  # Wilson with n = 3 pages, not 12 samples
    assert by_page["ci95"] == summarize("accuracy_float", [1.0] * 3)["ci95"]
