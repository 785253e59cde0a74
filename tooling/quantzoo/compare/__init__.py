"""Compare: how well a compressed model agrees with its original, on real sample data.

The public API:

- `compare_models(original, quantized, sample_data, *, task, batch_size, model, registry, cache,
  limit) -> Comparison` — one comparison; ``.metrics`` is ``{output: {metric: {mean, std, n}}}``
  and ``.to_dict()`` the JSON document (``schema_version`` 1).
- `prepare(original, sample_data, ...) -> Evaluation` — preprocess once and get the float
  outputs (cached), then ``Evaluation.compare(quantized)`` per variant.
- `cli_compare(args)` — ``quantzoo compare``.

The records, one module each: `metrics.METRICS` (`Metric`), `tasks.TASKS` (`Task`),
`kinds.KINDS` (`OutputKind`), `datasets.DATASET_ADAPTERS` (`DatasetAdapter`) and
`preprocess.PREPROCESSORS` (`Preprocessor`). Names here are imported on first use, so that
``quantzoo.compare.metrics`` (read by the publisher and the client) loads without onnxruntime.
"""

from __future__ import annotations

from ..lazy import lazy_exports

_LAZY = {
    "compare_models": "core", "prepare": "core", "Evaluation": "core", "Comparison": "result",
    "cli_compare": "cli", "DATASET_ADAPTERS": "datasets", "PREPROCESSORS": "preprocess",
}

__all__ = list(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)
