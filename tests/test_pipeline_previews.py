"""pipeline.previews: output maps and input images become the same PNG bytes every time."""

from __future__ import annotations

from io import BytesIO

import numpy as np

from quantzoo.pipeline import previews as P


def test_output_maps_become_the_same_png_bytes_every_time():
    y = np.linspace(0, 1, 16 * 20, dtype=np.float32).reshape(1, 16, 20)
    png = P.map_png(y, 0.0, 1.0)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png == P.map_png(y.copy(), 0.0, 1.0)
    from PIL import Image

    im = Image.open(BytesIO(png))
    assert im.size == (20, 16) and im.mode == "L"
    assert im.getpixel((0, 0)) == 0 and im.getpixel((19, 15)) == 255


def test_large_maps_are_scaled_down_to_the_preview_size():
    from PIL import Image

    png = P.map_png(np.zeros((1, 100, 1000), np.float32), 0.0, 1.0)
    assert Image.open(BytesIO(png)).size == (P.PREVIEW_MAX_SIDE, 32)


def test_the_preview_input_image_is_the_photo_before_preprocessing():
    from PIL import Image

    photo = np.random.default_rng(0).integers(0, 256, (20, 30, 3)).astype(np.float32)
    pre = {"adapter": "image", "params": {"mean": [0.5, 0.4, 0.3], "std": [0.5, 0.2, 0.25], "channel_order": "BGR",
                                          "layout": "NCHW"}}
    x = ((photo / 255 - [0.5, 0.4, 0.3]) / [0.5, 0.2, 0.25])[..., ::-1].transpose(2, 0, 1)[None]
    back = np.asarray(Image.open(BytesIO(P.input_png(x.astype(np.float32), pre))))
    assert back.shape == (20, 30, 3) and np.abs(back.astype(int) - photo.astype(int)).max() <= 1
    assert P.input_png(np.zeros((1, 64), np.float32), {"adapter": "arrays"}) is None


def test_a_detectors_record_previews_its_output_map_and_picks_the_sample_with_most_signal():
    from types import SimpleNamespace

    rec = np.zeros(2, dtype=[("raw", np.float32, (1, 4, 4)), ("count", np.int32)])
    rec["raw"][1] = 0.5
    ev = SimpleNamespace(reference=[[rec]], samples=[SimpleNamespace(key="a"), SimpleNamespace(key="b")])
    assert P.preview_sample(ev, SimpleNamespace(samples=None), 0) == 1
    assert P.sample_reference(ev, 0, 1).shape == (1, 4, 4) and P.sample_reference(ev, 0, 1).max() == 0.5
