"""quantzoo: a model zoo registry for compressed on-device models.

The public API is what this module exports; everything else is private to the package.

    >>> import quantzoo
    >>> quantzoo.__version__
    '0.1.0'

`quantize_weights`, `compare_models` and `load` are imported on first use, so that importing
quantzoo stays cheap.
"""

from __future__ import annotations

from .lazy import lazy_exports

__version__ = "0.1.0"

from .errors import ChecksumError, FetchError, ManifestError, QuantzooError, UsageError

_LAZY = {
    "quantize_weights": "quantzoo.quantize",
    "compare_models": "quantzoo.compare",
    "Comparison": "quantzoo.compare",
    "load": "quantzoo.client",
    "load_registry": "quantzoo.registry",
    "fetch_source": "quantzoo.fetch",
}

__all__ = [
    "__version__",
    "QuantzooError", "UsageError", "ManifestError", "FetchError", "ChecksumError",
    *_LAZY,
]


__getattr__ = lazy_exports(__name__, _LAZY)
