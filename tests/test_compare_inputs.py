"""compare/inputs.py: a model input's numpy dtype and the one input a single-input adapter feeds."""

import numpy as np
import pytest

from quantzoo.compare.inputs import InputSpec, np_dtype, single_input
from quantzoo.errors import QuantzooError


def test_each_onnx_tensor_type_maps_to_its_numpy_dtype():
    assert np_dtype(InputSpec("ids", "tensor(int64)", (None, 7))) is np.int64
    assert np_dtype(InputSpec("x", "tensor(float16)", (1,))) is np.float16
    assert InputSpec("x", "tensor(float)", (1, 3, None)).rank == 3


def test_a_type_compare_cannot_feed_is_named_with_what_is_supported():
    with pytest.raises(QuantzooError, match=r"'s' has type tensor\(string\).*supported: tensor\(float\)"):
        np_dtype(InputSpec("s", "tensor(string)", (1,)))


def test_a_single_input_adapter_refuses_a_model_with_two_inputs_and_names_them():
    a, b = InputSpec("a", "tensor(float)", (1,)), InputSpec("b", "tensor(float)", (1,))
    assert single_input([a], "audio") is a
    with pytest.raises(QuantzooError, match=r"'audio' feeds one input, but the model has 2: a, b; use the 'arrays'"):
        single_input([a, b], "audio")
