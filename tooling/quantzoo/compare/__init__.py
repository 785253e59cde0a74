"""Compare: how well a compressed model agrees with its original, on real sample data.

The public API:

- `compare_models(original, quantized, sample_data, *, task, batch_size, model, registry, cache,
  limit) -> Comparison` — one comparison; ``.metrics`` is ``{output: {metric: {mean, std, n}}}``
  and ``.to_dict()`` the JSON document (``schema_version`` 1).
- `prepare(original, sample_data, ...) -> Evaluation` — preprocess once and get the float
  outputs (cached), then ``Evaluation.compare(quantized)`` per variant.
- `cli_compare(args)` — ``quantzoo compare``.

Dataset adapters and preprocessors live in `adapters` (`DATASET_ADAPTERS`, `PREPROCESSORS`),
metrics in `metrics` (`KINDS`, one entry per kind of output).
"""

from __future__ import annotations

from .adapters import DATASET_ADAPTERS, PREPROCESSORS
from .cli import cli_compare
from .core import Comparison, Evaluation, compare_models, prepare

__all__ = ["compare_models", "prepare", "Comparison", "Evaluation", "cli_compare", "DATASET_ADAPTERS",
           "PREPROCESSORS"]
