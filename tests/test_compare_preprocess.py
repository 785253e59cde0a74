"""Preprocessors: from one sample to a model's input tensors, and back to a picture for previews."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from quantzoo.compare import preprocess as P
from quantzoo.compare.datasets import DATASET_ADAPTERS
from quantzoo.errors import QuantzooError

MAGIKA_IN = [P.InputSpec("bytes", "tensor(int32)", (None, 2048))]


def _write(root: Path, rel: str, data: bytes) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_magika_features_strip_whitespace_and_pad_each_end():
    feed = P.magika_bytes(b"\n\t  abc  \n", {}, MAGIKA_IN)["bytes"]
    assert feed.dtype == np.int32 and feed.shape == (2048,)
    # beg: leading whitespace stripped, trailing kept, then padding
    assert feed[:6].tolist() == list(b"abc  \n") and (feed[6:1024] == 256).all()
    # end: padding, then the bytes with trailing whitespace stripped, leading kept
    assert (feed[1024:2041] == 256).all() and feed[2041:].tolist() == list(b"\n\t  abc")


def test_magika_reads_only_the_first_and_last_block_of_a_large_file(tmp_path):
    body = b"A" * 4096 + b"middle bytes are never read" * 1000 + b"Z" * 4096
    p = _write(tmp_path, "big.bin", body)
    feed = P.magika_bytes(p, {}, MAGIKA_IN)["bytes"]
    assert (feed[:1024] == ord("A")).all() and (feed[1024:] == ord("Z")).all()
    assert np.array_equal(feed, P.magika_bytes(body, {}, MAGIKA_IN)["bytes"])


def test_magika_strips_within_the_block_only():
    # 5000 spaces then text: the first 4096-byte block is all whitespace, so beg is all padding
    feed = P.magika_bytes(b" " * 5000 + b"x", {}, MAGIKA_IN)["bytes"]
    assert (feed[:1024] == 256).all() and feed[-1] == ord("x")


def test_image_preprocessing_resizes_to_the_model_input_and_normalises_nchw():
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    spec = [P.InputSpec("x", "tensor(float)", (None, 3, 8, 16))]
    x = P.image(img, {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}, spec)["x"]
    assert x.shape == (3, 8, 16) and x.dtype == np.float32
    assert np.allclose(x[0], 1.0) and np.allclose(x[1:], -1.0)


def test_image_preprocessing_honours_bgr_and_nhwc():
    img = Image.new("RGB", (4, 4), (255, 0, 0))
    spec = [P.InputSpec("x", "tensor(float)", (None, 4, 4, 3))]
    x = P.image(img, {"channel_order": "BGR"}, spec)["x"]
    assert x.shape == (4, 4, 3)
    assert np.allclose(x[..., 2], 1.0) and np.allclose(x[..., :2], 0.0)


def test_image_preprocessing_limits_the_longer_side_and_rounds_to_multiples_of_32():
    img = Image.new("RGB", (1000, 700))
    spec = [P.InputSpec("x", "tensor(float)", (None, 3, None, None))]
    x = P.image(img, {"resize": "limit", "limit_type": "max", "limit_side_len": 640}, spec)["x"]
    assert x.shape == (3, 448, 640)


def test_image_preprocessing_resizes_the_shorter_side_then_crops_the_centre():
    a = np.zeros((300, 400, 3), np.uint8)
    a[:, 200:] = 255  # right half white
    spec = [P.InputSpec("x", "tensor(float)", (None, 3, 224, 224))]
    x = P.image(Image.fromarray(a), {"resize": "shorter", "shorter_side": 256, "crop": [224, 224]}, spec)["x"]
    assert x.shape == (3, 224, 224)
    assert np.allclose(x[:, :, :100], 0.0) and np.allclose(x[:, :, 124:], 1.0)


def test_grey_models_get_one_channel():
    spec = [P.InputSpec("x", "tensor(float)", (None, 1, 4, 4))]
    x = P.image(Image.new("RGB", (4, 4), (255, 255, 255)), {}, spec)["x"]
    assert x.shape == (1, 4, 4) and np.allclose(x, 1.0)


def test_text_line_preprocessing_keeps_the_aspect_and_pads_with_white():
    line = Image.new("L", (96, 48), 0)  # a black 2:1 line
    spec = [P.InputSpec("x", "tensor(float)", (None, 3, 48, None))]
    x = P.text_line_image(line, {"width": 320}, spec)["x"]
    assert x.shape == (3, 48, 320)
    assert np.allclose(x[:, :, :96], -1.0) and np.allclose(x[:, :, 96:], 1.0)


def test_text_line_preprocessing_squeezes_lines_wider_than_the_input():
    line = Image.new("L", (960, 48), 0)
    spec = [P.InputSpec("x", "tensor(float)", (None, 3, 48, 192))]
    x = P.text_line_image(line, {}, spec)["x"]
    assert x.shape == (3, 48, 192) and np.allclose(x, -1.0)


def test_arrays_preprocessing_names_inputs_and_drops_a_batch_axis_of_one():
    spec = [P.InputSpec("ids", "tensor(int64)", (None, 3))]
    feed = P.arrays({None: np.array([[1, 2, 3]], np.int32)}, {}, spec)
    assert feed["ids"].dtype == np.int64 and feed["ids"].shape == (3,)
    with pytest.raises(QuantzooError, match="does not name a model input"):
        P.arrays({"tokens": np.zeros(3)}, {}, spec)


def test_a_preprocessor_for_one_input_refuses_a_model_with_two():
    specs = [P.InputSpec("a", "tensor(float)", (None, 3, 8, 8)), P.InputSpec("b", "tensor(float)", (None, 1))]
    with pytest.raises(QuantzooError, match="feeds one input, but the model has 2: a, b"):
        P.image(Image.new("RGB", (8, 8)), {}, specs)


def test_default_preprocessing_is_image_for_one_image_input_else_arrays():
    assert P.default_preprocessing([P.InputSpec("x", "tensor(float)", (None, 224, 224, 3))])["adapter"] == "image"
    assert P.default_preprocessing([P.InputSpec("x", "tensor(float)", (None, 7, 5, 5))])["adapter"] == "arrays"
    assert P.default_preprocessing(MAGIKA_IN)["adapter"] == "arrays"


# --- the records and the inverse ------------------------------------------------------------------

def test_every_preprocessor_reads_plain_folders_with_a_known_dataset_adapter():
    assert {n: p.read for n, p in P.PREPROCESSORS.items()} == {
        "magika-bytes": "files", "image": "images", "text-line-image": "images", "arrays": "arrays",
        "styled-image": "styled-photos", "audio": "wav-files", "audio-frame": "wav-files",
        "audio-window": "wav-files", "wordpiece": "files", "phoneme-ids": "piper-sentences",
        "speaker-mels": "wav-files", "whisper-mel": "wav-files"}
    assert all(p.read in DATASET_ADAPTERS and p.name == n for n, p in P.PREPROCESSORS.items())


@pytest.mark.parametrize("params", [{}, {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
                                    {"channel_order": "BGR", "scale": 1.0}])
def test_the_image_inverse_gives_back_the_pixels_the_preprocessor_read(params):
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    spec = [P.InputSpec("x", "tensor(float)", (None, 3, 6, 8))]
    x = P.image(img, params, spec)["x"][None]
    back = P.input_image(x, {"adapter": "image", "params": params})
    assert back.dtype == np.uint8 and np.array_equal(back, np.asarray(img))


def test_the_text_line_inverse_undoes_the_text_line_defaults_not_the_image_ones():
    line = Image.new("L", (96, 48), 0)  # black text area, padded with white
    spec = [P.InputSpec("x", "tensor(float)", (None, 3, 48, None))]
    x = P.text_line_image(line, {"width": 320}, spec)["x"][None]
    back = P.input_image(x, {"adapter": "text-line-image", "params": {"width": 320}})
    assert back.shape == (48, 320, 3)
    assert (back[:, :96] == 0).all() and (back[:, 96:] == 255).all()


def test_inputs_of_other_preprocessors_are_scaled_min_to_max_and_non_images_give_none():
    nhwc = np.arange(12.0).reshape(1, 2, 2, 3)
    grey = P.input_image(np.array([[[[0.0, 2.0], [4.0, 8.0]]]]), {"adapter": "arrays"})
    assert grey.tolist() == [[0, 64], [128, 255]]
    assert P.input_image(nhwc, {"adapter": "arrays"}).shape == (2, 2, 3)
    assert P.input_image(np.zeros((1, 5, 4, 4)), {"adapter": "arrays"}) is None
    assert P.input_image(np.zeros((1, 2048)), {"adapter": "magika-bytes"}) is None


def test_styled_image_feeds_the_picture_and_a_one_hot_style_vector():
    specs = [P.InputSpec("image", "tensor(float)", (1, 3, None, None)), P.InputSpec("style_weights", "tensor(float)", (5,))]
    photo = Image.fromarray(np.full((10, 12, 3), 255, np.uint8))
    feed = P.PREPROCESSORS["styled-image"].preprocess({"image": photo, "style": 3},
                                                     {"resize": "exact", "size": [8, 8]}, specs)
    assert feed["image"].shape == (3, 8, 8) and float(feed["image"].max()) == 1.0
    assert feed["style_weights"].tolist() == [0, 0, 0, 1, 0] and feed["style_weights"].dtype == np.float32
    with pytest.raises(QuantzooError, match="out of range"):
        P.styled_image({"image": photo, "style": 5}, {"size": [8, 8]}, specs)
    with pytest.raises(QuantzooError, match="styled-photos"):
        P.styled_image(photo, {"size": [8, 8]}, specs)
    with pytest.raises(QuantzooError, match="one 1-D style input"):
        P.styled_image({"image": photo, "style": 0}, {"size": [8, 8]}, specs[:1])
