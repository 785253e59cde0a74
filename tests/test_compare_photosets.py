"""compare.photosets: photos × styles and photos with reference mattes, as plain rows."""

import numpy as np
import pytest
from PIL import Image

from quantzoo.compare import photosets as PS
from quantzoo.compare.imagemetrics import decode_mask
from quantzoo.errors import QuantzooError


def test_styled_rows_in_photo_then_style_order_default_style_zero():
    rows = PS.styled_rows([("x.png", "X"), ("y.png", "Y")], {"styles": [5, 1]})
    assert [(k, d["image"], d["style"], y) for k, d, y in rows] == [
        ("x.png#style-5", "X", 5, None), ("x.png#style-1", "X", 1, None),
        ("y.png#style-5", "Y", 5, None), ("y.png#style-1", "Y", 1, None)]
    assert [k for k, _, _ in PS.styled_rows([("x.png", None)], {})] == ["x.png#style-0"]
    for bad in ([], [-1], [1.5]):
        with pytest.raises(QuantzooError, match="styles"):
            PS.styled_rows([("x.png", None)], {"styles": bad})


def test_a_matte_is_binarised_at_half(tmp_path):
    Image.fromarray(np.array([[0, 127, 128, 255]], np.uint8)).save(tmp_path / "m.png")
    assert decode_mask(PS.matte_label(tmp_path / "m.png")).tolist() == [[False, False, True, True]]
    # an RGBA or colour matte is read as grey
    Image.fromarray(np.array([[[255, 255, 255], [0, 0, 0]]], np.uint8)).save(tmp_path / "c.png")
    assert decode_mask(PS.matte_label(tmp_path / "c.png")).tolist() == [[True, False]]
