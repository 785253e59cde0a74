"""The augmented-images dataset adapter: a fixed grid of views of each photograph."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from quantzoo.compare.augment import augment, crop_box, inscribed_box
from quantzoo.compare.datasets import DATASET_ADAPTERS

GRID = {"crops": [[1.0, "center"], [0.8, "top-left"], [0.6, "center"]], "flips": [False, True],
        "rotations": [0, -8, 8], "classes": {"b.png": "espresso"}}


@pytest.fixture
def photos(tmp_path):
    rng = np.random.default_rng(0)
    for name, size in (("a.png", (96, 64)), ("b.png", (50, 80))):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(tmp_path / name)
    (tmp_path / "README.txt").write_text("not a photo")
    return tmp_path


def test_every_photo_gets_every_view_with_stable_keys_and_its_label(photos):
    skipped = []
    samples = DATASET_ADAPTERS["augmented-images"].read(photos, GRID, skipped)
    assert len(samples) == 2 * 3 * 2 * 3
    assert [k for k, _ in skipped] == ["README.txt"]
    keys = [s.key for s in samples]
    assert keys[:4] == ["a.png", "a.png#rot-8", "a.png#rot+8", "a.png#flip"]
    assert "b.png#crop0.8-top-left+flip+rot+8" in keys and len(set(keys)) == len(keys)
    assert {s.label for s in samples if s.key.startswith("a.png")} == {None}
    assert {s.label for s in samples if s.key.startswith("b.png")} == {"espresso"}


def test_the_views_are_the_same_pixels_on_every_run(photos):
    one = DATASET_ADAPTERS["augmented-images"].read(photos, GRID, [])
    two = DATASET_ADAPTERS["augmented-images"].read(photos, GRID, [])
    assert [(s.key, s.data.tobytes()) for s in one] == [(s.key, s.data.tobytes()) for s in two]


def test_a_flip_mirrors_and_a_crop_keeps_the_anchored_corner(photos):
    img = Image.open(photos / "a.png")
    a = np.asarray(img)
    assert np.array_equal(np.asarray(augment(img, flip=True)), a[:, ::-1])
    assert crop_box(96, 64, 0.5, "top-left") == (0, 0, 48, 32)
    assert np.array_equal(np.asarray(augment(img, 0.5, "bottom-right")), a[32:, 48:])


def test_rotated_views_have_no_blank_corners():
    white = Image.new("RGB", (300, 200), "white")
    for angle in (-8, 8, 15):
        view = np.asarray(augment(white, angle=angle))
        assert view.min() == 255, angle
        left, top, right, bottom = inscribed_box(300, 200, angle)
        assert (right - left) * (bottom - top) > 0.6 * 300 * 200


def test_views_shrink_to_the_shorter_side_and_limit_thins_them_evenly(photos):
    samples = DATASET_ADAPTERS["augmented-images"].read(photos, {**GRID, "max_shorter_side": 32}, [])
    assert all(min(s.data.size) <= 32 for s in samples)
    thinned = DATASET_ADAPTERS["augmented-images"].read(photos, {**GRID, "limit": 6}, [])
    assert len(thinned) == 6 and {s.key.split("#")[0] for s in thinned} == {"a.png", "b.png"}


def test_an_unknown_anchor_is_an_error_naming_the_choices(photos):
    from quantzoo.errors import QuantzooError

    with pytest.raises(QuantzooError, match="unknown crop anchor 'middle'; expected one of center, top-left"):
        DATASET_ADAPTERS["augmented-images"].read(photos, {"crops": [[0.8, "middle"]]}, [])
