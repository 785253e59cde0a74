"""What compare knows about a model's inputs: `InputSpec` (one input as onnxruntime reports it),
its numpy dtype, and the one input a single-input preprocessor feeds.

A leaf module: the preprocessors' registry (`preprocess`) and the modules that hold preprocessors
of their kind (`speech`, `asr`, `music`, `speaker`, …) import it, so none of them imports the
registry back (ARCHITECTURE.md, "One record per concept").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import QuantzooError


@dataclass(frozen=True)
class InputSpec:
    """One model input as onnxruntime reports it: dims are ints, or None where dynamic."""

    name: str
    dtype: str
    shape: tuple

    @property
    def rank(self) -> int:
        return len(self.shape)


_NP_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
              "tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(int8)": np.int8,
              "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}


def np_dtype(spec: InputSpec):
    """The numpy dtype that feeds `spec`.

    >>> np_dtype(InputSpec("x", "tensor(float)", (1, 3))).__name__
    'float32'
    """
    try:
        return _NP_DTYPES[spec.dtype]
    except KeyError:
        raise QuantzooError(f"model input {spec.name!r} has type {spec.dtype}, which compare cannot feed; "
                            f"supported: {', '.join(_NP_DTYPES)}") from None


def single_input(inputs: list[InputSpec], adapter: str) -> InputSpec:
    """The model's one input, for a preprocessing adapter that feeds exactly one."""
    if len(inputs) != 1:
        raise QuantzooError(f"preprocessing adapter {adapter!r} feeds one input, but the model has "
                            f"{len(inputs)}: {', '.join(i.name for i in inputs)}; use the 'arrays' adapter "
                            "with .npz files naming each input")
    return inputs[0]
