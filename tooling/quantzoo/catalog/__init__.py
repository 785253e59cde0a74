"""The catalog contract: ``index.json`` as typed entries, written by `publish` and read by the client.

    {"schema_version": 1, "models": [{"id", "name", "task", "license", "parameters",
      "source": {"sha256", "url"}, "float": {"file", "size", "sha256"}, "recommended": "<variant id>",
      "variants": [{"id", "mode", "nbits", "granularity", "file", "size", "sha256",
                    "metrics": {"<output>": {"<metric>": {"mean", "std", "n", "ci95", "excluded"?}}},
                    "runtimes"?: {"<runtime>": {"runs", "max_abs_diff", "error"?}},
                    "files"?: [{"file", "size", "sha256"}],
                    "shapes"?: {"accepted", "verified"}, "throughput"?: {"<batch>": samples/s}}],
      "custom_ops"?: [{"op", "domain", "class", "description", "attributes", "nodes",
                       "implementation": {"file", "size", "sha256"} | null}]}]}

``files`` (absent for a variant that is one file) lists the files a variant's ``.onnx`` reads
beside it (external data): a client fetches and verifies them all and puts them in the same
folder under their published names.

``runtimes`` (on a variant and on ``float``; absent when not measured) is the runtime
compatibility matrix: whether each ONNX runtime runs the file and the largest absolute
difference of its outputs from onnxruntime's on the same evaluation samples (null for
onnxruntime itself or when not measured); ``error`` says why it does not run or was skipped.

``shapes`` and ``throughput`` (on a variant and on ``float``; absent when the model promises no
shapes) are the accepted input shapes, where they were verified, and samples/s by batch size
(`catalog.shapes`).

``custom_ops`` (absent for a model without them) lists the custom-domain ops the model's files
need and where their Python implementation is in the site (`catalog.customops`).

A metric's ``ci95`` is its 95 % interval ``[lo, hi]`` (null when it was not computed: older
catalogs); ``excluded``, present only when above 0, counts the samples where the metric is
undefined and left out (``n`` counts the others).

``file`` is relative to the site root or an absolute URL. Every entry has ``to_json()`` (the
exact dict the writer emits) and ``from_json(doc, where)``, which checks what a reader relies on
and raises one `QuantzooError` listing every problem with its key. Fields the reader does not
rely on (name, task, mode, ...) are taken as they are, so older and newer writers stay readable.
The package: `fields` (what every entry shares, published files), `summaries` (a metric's
summary), `variants`, `customops`,
`document` (model entries, the whole index, its bytes). See ARCHITECTURE.md, "Formats".
"""

from .customops import CustomOpEntry
from .document import (FLOAT_VARIANT, SCHEMA_VERSION, SUPPORTED_SCHEMA_VERSIONS, CatalogIndex, ModelEntry, Source,
                       index_json_bytes)
from .fields import FileEntry, file_name, is_url
from .shapes import ShapeCheck, ShapeEvaluation, ShapesEntry
from .variants import MetricSummary, RuntimeResult, VariantEntry

__all__ = ["FLOAT_VARIANT", "SCHEMA_VERSION", "SUPPORTED_SCHEMA_VERSIONS", "CatalogIndex", "CustomOpEntry", "FileEntry",
           "MetricSummary", "ModelEntry", "RuntimeResult", "ShapeCheck", "ShapeEvaluation", "ShapesEntry", "Source", "VariantEntry", "file_name", "index_json_bytes", "is_url"]
