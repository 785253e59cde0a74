"""The examples in docstrings are true: run them."""

from __future__ import annotations

import doctest
import importlib

import pytest

# Modules whose docstring examples run without network or models.
MODULES = ["quantzoo", "quantzoo.cache", "quantzoo.registry", "quantzoo.archive", "quantzoo.download",
           "quantzoo.fetch", "quantzoo.units"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
