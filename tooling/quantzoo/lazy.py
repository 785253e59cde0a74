"""Lazy package attributes: a package names what it exports and the module each comes from, and
the module is imported on first use (so `import quantzoo` and the client stay cheap)."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, table: dict[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for `package` that imports ``table[name]`` on first use.

    Table values are module names relative to `package` (``"core"``) or absolute (``"quantzoo.x"``).

    >>> getattr_ = lazy_exports("quantzoo", {"human_size": "units"})
    >>> getattr_("human_size")(2048)
    '2.05 kB'
    """
    def __getattr__(name: str) -> Any:
        if name in table:
            target = table[name]
            module = target if target.startswith("quantzoo") else f"{package}.{target}"
            return getattr(importlib.import_module(module), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
