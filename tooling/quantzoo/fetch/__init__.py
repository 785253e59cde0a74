"""Fetch: bring a manifest's `source` into the content-addressed cache and return its path.

The public API:

- `fetch_source(source, cache, *, base_dir) -> Path` — the verified local file or folder.
- `describe(source)`, `upstream_url(source)`, `is_tree(source)`, `action(source, cache)`.
- `registry_sources(reg, models, datasets)`, `fetch_all(items, cache, jobs)`, `cli_fetch(args)`
  — ``quantzoo fetch``.
- `SOURCE_KINDS` — one `SourceKind` record per kind (`quantzoo.fetch.kinds`); `pytorch` sources
  are converted to ONNX by `quantzoo.fetch.convert`.

Names are imported on first use, so that the registry can read `SOURCE_KINDS` without loading
the command. See ARCHITECTURE.md, "Fetch".
"""

from __future__ import annotations

from ..lazy import lazy_exports

_LAZY = {
    "SOURCE_KINDS": "kinds", "SourceKind": "kinds", "action": "kinds", "describe": "kinds",
    "fetch_source": "kinds", "is_tree": "kinds", "upstream_url": "kinds",
    "cli_fetch": "cli", "fetch_all": "cli", "registry_sources": "cli",
}

__all__ = list(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)
