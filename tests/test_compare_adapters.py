"""Dataset adapters and preprocessors: what each turns real files into."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from quantzoo.compare import adapters as A
from quantzoo.errors import QuantzooError

MAGIKA_IN = [A.InputSpec("bytes", "tensor(int32)", (None, 2048))]


def _write(root: Path, rel: str, data: bytes) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


# --- dataset adapters ---------------------------------------------------------------------------

def test_files_adapter_lists_every_file_sorted_with_folder_labels_and_exclusions(tmp_path):
    for rel in ["python/b.py", "python/b.py.output", "c/a.c", "README"]:
        _write(tmp_path, rel, b"x = 1\n")
    samples = A.files_dataset(tmp_path, {"exclude": ["*.output"], "labels": {"from": "folder"}}, [])
    assert [(s.key, s.label) for s in samples] == [("README", None), ("c/a.c", "c"), ("python/b.py", "python")]
    assert all(isinstance(s.data, Path) for s in samples)


def test_limit_spreads_the_chosen_files_over_the_whole_listing(tmp_path):
    for i in range(10):
        _write(tmp_path, f"f{i}.txt", b"1")
    keys = [s.key for s in A.files_dataset(tmp_path, {"limit": 3}, [])]
    assert keys == ["f0.txt", "f3.txt", "f6.txt"]


def test_images_adapter_skips_and_counts_files_that_are_not_images(tmp_path):
    Image.new("RGB", (8, 6), (255, 0, 0)).save(tmp_path / "red.png")
    Image.new("L", (5, 5), 128).save(tmp_path / "grey.jpg")
    _write(tmp_path, "notes.txt", b"not an image")
    good = (tmp_path / "red.png").read_bytes()
    _write(tmp_path, "truncated.png", good[: len(good) // 2])
    skipped: list = []
    samples = A.images_dataset(tmp_path, {}, skipped)
    assert [s.key for s in samples] == ["grey.jpg", "red.png"]
    assert samples[1].data.size == (8, 6)
    assert [k for k, _ in skipped] == ["notes.txt", "truncated.png"]
    assert all("not a readable image" in reason for _, reason in skipped)


def test_arrays_adapter_reads_npy_and_npz_and_skips_other_files(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(4, dtype=np.float32))
    np.savez(tmp_path / "b.npz", x=np.ones(2), y=np.zeros(3))
    _write(tmp_path, "c.txt", b"1 2 3")
    skipped: list = []
    samples = A.arrays_dataset(tmp_path, {}, skipped)
    assert samples[0].data[None].tolist() == [0, 1, 2, 3]
    assert sorted(samples[1].data) == ["x", "y"]
    assert skipped == [("c.txt", "not a .npy or .npz file")]


@pytest.fixture(scope="module")
def font(catalog_dataset):
    return catalog_dataset("rendered-text-lines")


@pytest.mark.slow
def test_rendered_lines_are_the_same_for_the_same_seed_and_labelled_with_their_text(font):
    params = {"seed": 3, "count": 6}
    a = A.rendered_text_lines(font, params, [])
    b = A.rendered_text_lines(font, params, [])
    c = A.rendered_text_lines(font, {"seed": 4, "count": 6}, [])
    assert [s.label for s in a] == [s.label for s in b]
    assert [s.data.tobytes() for s in a] == [s.data.tobytes() for s in b]
    assert [s.label for s in a] != [s.label for s in c]
    for s in a:
        assert s.data.height == 48 and s.data.mode == "L" and s.label.strip() == s.label and s.label
        assert s.data.width <= 320
        assert np.asarray(s.data).min() < 64  # there is dark text on the white line


@pytest.mark.slow
def test_rotated_lines_turn_every_other_line_upside_down_and_label_the_angle(font):
    upright = A.rendered_text_lines(font, {"seed": 5, "count": 4}, [])
    turned = A.rendered_text_lines(font, {"seed": 5, "count": 4, "rotate180": True}, [])
    assert [s.label for s in turned] == ["0", "180", "0", "180"]
    assert turned[0].data.tobytes() == upright[0].data.tobytes()
    assert turned[1].data.tobytes() == upright[1].data.transpose(Image.Transpose.ROTATE_180).tobytes()


def test_augmented_images_give_every_photo_the_same_grid_of_views_labelled_by_file_name(tmp_path):
    a = np.zeros((60, 80, 3), np.uint8)
    a[:, :40] = 255  # left half white
    Image.fromarray(a).save(tmp_path / "half.png")
    Image.new("RGB", (50, 50), (0, 128, 0)).save(tmp_path / "green.png")
    params = {"crops": [[1.0, "center"], [0.5, "top-left"]], "flips": [False, True], "rotations": [0, 8],
              "classes": {"half.png": "half"}}
    views = A.augmented_images(tmp_path, params, [])
    again = A.augmented_images(tmp_path, params, [])
    assert len(views) == 2 * 2 * 2 * 2
    assert [v.key for v in views[:3]] == ["green.png", "green.png#rot+8", "green.png#flip"]
    assert {v.label for v in views if v.key.startswith("half")} == {"half"}
    assert {v.label for v in views if v.key.startswith("green")} == {None}
    assert [v.data.tobytes() for v in views] == [v.data.tobytes() for v in again]
    by_key = {v.key: np.asarray(v.data) for v in views}
    assert by_key["half.png#crop0.5-top-left"].min() == 255  # the top-left quarter is all white
    assert (by_key["half.png#flip"][:, :40] == 0).all()  # mirrored: the white half is now on the right


def test_a_font_that_is_not_a_font_is_a_clear_error(tmp_path):
    bad = _write(tmp_path, "x.ttf", b"nope")
    with pytest.raises(QuantzooError, match="cannot load the font"):
        A.rendered_text_lines(bad, {}, [])


# --- preprocessors --------------------------------------------------------------------------------

def test_magika_features_strip_whitespace_and_pad_each_end():
    feed = A.magika_bytes(b"\n\t  abc  \n", {}, MAGIKA_IN)["bytes"]
    assert feed.dtype == np.int32 and feed.shape == (2048,)
    # beg: leading whitespace stripped, trailing kept, then padding
    assert feed[:6].tolist() == list(b"abc  \n") and (feed[6:1024] == 256).all()
    # end: padding, then the bytes with trailing whitespace stripped, leading kept
    assert (feed[1024:2041] == 256).all() and feed[2041:].tolist() == list(b"\n\t  abc")


def test_magika_reads_only_the_first_and_last_block_of_a_large_file(tmp_path):
    body = b"A" * 4096 + b"middle bytes are never read" * 1000 + b"Z" * 4096
    p = _write(tmp_path, "big.bin", body)
    feed = A.magika_bytes(p, {}, MAGIKA_IN)["bytes"]
    assert (feed[:1024] == ord("A")).all() and (feed[1024:] == ord("Z")).all()
    assert np.array_equal(feed, A.magika_bytes(body, {}, MAGIKA_IN)["bytes"])


def test_magika_strips_within_the_block_only():
    # 5000 spaces then text: the first 4096-byte block is all whitespace, so beg is all padding
    feed = A.magika_bytes(b" " * 5000 + b"x", {}, MAGIKA_IN)["bytes"]
    assert (feed[:1024] == 256).all() and feed[-1] == ord("x")


def test_image_preprocessing_resizes_to_the_model_input_and_normalises_nchw():
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    spec = [A.InputSpec("x", "tensor(float)", (None, 3, 8, 16))]
    x = A.image(img, {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}, spec)["x"]
    assert x.shape == (3, 8, 16) and x.dtype == np.float32
    assert np.allclose(x[0], 1.0) and np.allclose(x[1:], -1.0)


def test_image_preprocessing_honours_bgr_and_nhwc():
    img = Image.new("RGB", (4, 4), (255, 0, 0))
    spec = [A.InputSpec("x", "tensor(float)", (None, 4, 4, 3))]
    x = A.image(img, {"channel_order": "BGR"}, spec)["x"]
    assert x.shape == (4, 4, 3)
    assert np.allclose(x[..., 2], 1.0) and np.allclose(x[..., :2], 0.0)


def test_image_preprocessing_limits_the_longer_side_and_rounds_to_multiples_of_32():
    img = Image.new("RGB", (1000, 700))
    spec = [A.InputSpec("x", "tensor(float)", (None, 3, None, None))]
    x = A.image(img, {"resize": "limit", "limit_type": "max", "limit_side_len": 640}, spec)["x"]
    assert x.shape == (3, 448, 640)


def test_image_preprocessing_resizes_the_shorter_side_then_crops_the_centre():
    a = np.zeros((300, 400, 3), np.uint8)
    a[:, 200:] = 255  # right half white
    spec = [A.InputSpec("x", "tensor(float)", (None, 3, 224, 224))]
    x = A.image(Image.fromarray(a), {"resize": "shorter", "shorter_side": 256, "crop": [224, 224]}, spec)["x"]
    assert x.shape == (3, 224, 224)
    assert np.allclose(x[:, :, :100], 0.0) and np.allclose(x[:, :, 124:], 1.0)


def test_grey_models_get_one_channel():
    spec = [A.InputSpec("x", "tensor(float)", (None, 1, 4, 4))]
    x = A.image(Image.new("RGB", (4, 4), (255, 255, 255)), {}, spec)["x"]
    assert x.shape == (1, 4, 4) and np.allclose(x, 1.0)


def test_text_line_preprocessing_keeps_the_aspect_and_pads_with_white():
    line = Image.new("L", (96, 48), 0)  # a black 2:1 line
    spec = [A.InputSpec("x", "tensor(float)", (None, 3, 48, None))]
    x = A.text_line_image(line, {"width": 320}, spec)["x"]
    assert x.shape == (3, 48, 320)
    assert np.allclose(x[:, :, :96], -1.0) and np.allclose(x[:, :, 96:], 1.0)


def test_text_line_preprocessing_squeezes_lines_wider_than_the_input():
    line = Image.new("L", (960, 48), 0)
    spec = [A.InputSpec("x", "tensor(float)", (None, 3, 48, 192))]
    x = A.text_line_image(line, {}, spec)["x"]
    assert x.shape == (3, 48, 192) and np.allclose(x, -1.0)


def test_arrays_preprocessing_names_inputs_and_drops_a_batch_axis_of_one():
    spec = [A.InputSpec("ids", "tensor(int64)", (None, 3))]
    feed = A.arrays({None: np.array([[1, 2, 3]], np.int32)}, {}, spec)
    assert feed["ids"].dtype == np.int64 and feed["ids"].shape == (3,)
    with pytest.raises(QuantzooError, match="does not name a model input"):
        A.arrays({"tokens": np.zeros(3)}, {}, spec)


def test_a_preprocessor_for_one_input_refuses_a_model_with_two():
    specs = [A.InputSpec("a", "tensor(float)", (None, 3, 8, 8)), A.InputSpec("b", "tensor(float)", (None, 1))]
    with pytest.raises(QuantzooError, match="feeds one input, but the model has 2: a, b"):
        A.image(Image.new("RGB", (8, 8)), {}, specs)


def test_default_preprocessing_is_image_for_one_image_input_else_arrays():
    assert A.default_preprocessing([A.InputSpec("x", "tensor(float)", (None, 224, 224, 3))])["adapter"] == "image"
    assert A.default_preprocessing([A.InputSpec("x", "tensor(float)", (None, 7, 5, 5))])["adapter"] == "arrays"
    assert A.default_preprocessing(MAGIKA_IN)["adapter"] == "arrays"
