"""The architecture's code: the builder, custom layer classes and their conversion functions,
imported from the fetched ``architecture.source`` folder (or from the running Python).

A ``module:attr`` spec of a `pytorch` source is imported from that folder and nowhere else: a
same-named package already imported from elsewhere is dropped first, so the pinned code runs.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from importlib import metadata
from pathlib import Path

from ..errors import QuantzooError


class ConversionError(QuantzooError):
    """The weights, the architecture or the exported graph did not check out."""


@contextlib.contextmanager
def _import_root(root: Path | None, module_name: str):
    """Import `module_name` from `root` (a fetched architecture tree), not from elsewhere."""
    if root is None:
        yield
        return
    top = module_name.split(".")[0]
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        f = getattr(sys.modules[name], "__file__", None) or ""
        if not Path(f).resolve().is_relative_to(root.resolve()):
            del sys.modules[name]  # a same-named package from elsewhere must not shadow the pinned one
    if not (root / top).is_dir() and not (root / f"{top}.py").is_file() and (root / "__init__.py").is_file():
        # The fetched tree is the package folder itself (a wheel member glob like 'pkg/**'
        # lands the package's files at the top): load it as package `top`.
        import importlib.util

        spec = importlib.util.spec_from_file_location(top, root / "__init__.py",
                                                      submodule_search_locations=[str(root)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[top] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(top, None)
            raise
        yield
        return
    sys.path.insert(0, str(root))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(root))


def load_builder(arch: dict, root: Path | None, spec: str | None = None, what: str = "architecture.builder"):
    """The architecture's builder callable (or another ``module:attr`` `spec` of the architecture,
    such as a custom layer's class), imported from `root` when it was fetched."""
    spec = spec or arch.get("builder", "")
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConversionError(f"{what} must be 'module:callable', found {spec!r}")
    if root is None and arch.get("package") and arch.get("version"):
        try:
            have = metadata.version(arch["package"])
        except metadata.PackageNotFoundError:
            have = None
        if have != str(arch["version"]):
            raise ConversionError(
                f"architecture {spec} needs {arch['package']}=={arch['version']}, found "
                f"{have or 'not installed'}; `pip install {arch['package']}=={arch['version']}` or give "
                "architecture.source so quantzoo fetches the pinned code itself")
    try:
        with _import_root(root, module_name):
            obj = importlib.import_module(module_name)
    except Exception as e:  # ImportError, or whatever the module's own top level raises
        where = f" from {root}" if root else ""
        raise ConversionError(f"cannot import the architecture module {module_name!r}{where}: "
                              f"{type(e).__name__}: {e}. Check {what} (and architecture.source) "
                              "in the manifest.") from None
    if root is not None:
        f = getattr(obj, "__file__", "") or ""
        if not Path(f).resolve().is_relative_to(root.resolve()):
            raise ConversionError(f"architecture module {module_name!r} was imported from {f}, not from the "
                                  f"fetched source {root}; its top-level package is shadowed")
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConversionError(f"{what} {spec!r}: {module_name} has no attribute {attr!r}") from None
    if not callable(obj):
        raise ConversionError(f"{what} {spec!r} is not callable")
    return obj


def load_layers(source: dict, root: Path | None) -> dict:
    """``custom_layers`` as {module class: conversion function}, imported like the builder."""
    arch = source["architecture"]
    return {load_builder(arch, root, cls, f"custom_layers key {cls!r}"):
            load_builder(arch, root, fn, f"custom_layers[{cls!r}]")
            for cls, fn in (source.get("custom_layers") or {}).items()}
