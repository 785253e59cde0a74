"""compare.tiles: pictures tiled from an image stack, and augmented-images reading them as photos."""

import numpy as np
import pytest
from PIL import Image

from quantzoo.compare.datasets import DATASET_ADAPTERS
from quantzoo.compare.tiles import tile, tiled_pictures
from quantzoo.errors import QuantzooError


@pytest.fixture
def stack_dir(tmp_path):
    # 5 grey 3×3 crops, crop i filled with the value i / 4 (floats in [0, 1], as scikit-image ships LFW)
    np.save(tmp_path / "crops.npy", np.stack([np.full((3, 3), i / 4) for i in range(5)]))
    Image.new("RGB", (40, 30), (10, 20, 30)).save(tmp_path / "photo.png")
    return tmp_path


def test_each_picture_holds_its_crops_in_order_enlarged_on_grey(stack_dir):
    spec = {"stack": "crops.npy", "take": 5, "grid": [1, 2], "scale": 2, "gap": 1}
    pics = tiled_pictures(stack_dir, [spec])
    assert [k for k, _ in pics] == ["crops.npy/000-001", "crops.npy/002-003", "crops.npy/004-004"]
    first = np.asarray(pics[0][1])
    assert first.shape == (1 * 6 + 2, 2 * 6 + 3, 3)  # one row of two 6×6 tiles, 1 px of grey around
    assert (first[0] == 128).all() and (first[:, 7] == 128).all()  # border and the gap between tiles
    assert (first[1:7, 1:7] == 0).all() and (first[1:7, 8:14] == 64).all()  # crops 0 and 1 (1/4 → 64)
    last = np.asarray(pics[2][1])
    assert last.shape == first.shape and (last[1:7, 1:7] == 255).all() and (last[1:7, 8:14] == 128).all()


def test_take_reads_the_first_images_only_and_the_default_is_one_per_picture(stack_dir):
    assert [k for k, _ in tiled_pictures(stack_dir, [{"stack": "crops.npy", "take": 2}])] == [
        "crops.npy/000-000", "crops.npy/001-001"]


def test_augmented_images_views_tiles_as_photos_and_skips_the_stack_file(stack_dir):
    adapter = DATASET_ADAPTERS["augmented-images"]
    skipped = []
    params = {"flips": [False, True], "tiles": [{"stack": "crops.npy", "grid": [2, 2], "scale": 4}]}
    samples = adapter.read(stack_dir, params, skipped)
    assert [s.key for s in samples] == ["photo.png", "photo.png#flip", "crops.npy/000-003",
                                        "crops.npy/000-003#flip", "crops.npy/004-004", "crops.npy/004-004#flip"]
    assert skipped == []  # the .npy is the tiles' source, not an unreadable photo
    # each picture is its own cluster: the intervals count pictures, not views
    assert len({adapter.cluster(s.key) for s in samples}) == 3
    assert samples[2].data.size == (24, 24) and samples[4].data.size == (24, 12)  # a last, short row: the grid's width


@pytest.mark.parametrize("spec, match", [
    ({"stack": "missing.npy"}, r"stack 'missing.npy' is not a file of the dataset at .* \(found \['crops.npy', 'photo.png'"),
    ({"stack": "crops.npy", "grid": [0, 2]}, r"grid must be \[rows, cols\] of positive integers, found \[0, 2\]"),
    ({"stack": "crops.npy", "grid": "2x2"}, r"grid must be \[rows, cols\]"),
])
def test_a_bad_tiles_entry_is_an_error_naming_what_was_found(stack_dir, spec, match):
    with pytest.raises(QuantzooError, match=match):
        tiled_pictures(stack_dir, [spec])


def test_a_stack_that_is_not_images_is_an_error_naming_its_shape(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((4, 9)))
    with pytest.raises(QuantzooError, match=r"flat.npy must hold images \[N, H, W\] .* found shape \[4, 9\]"):
        tiled_pictures(tmp_path, [{"stack": "flat.npy"}])


def test_rgb_uint8_tiles_keep_their_colours():
    pic = tile(np.full((1, 2, 2, 3), (200, 10, 50), np.uint8), cols=1, scale=3)
    assert pic.size == (6, 6) and pic.getpixel((3, 3)) == (200, 10, 50)
