"""The manifest schema as plain data, and the checker that walks a manifest against it.

A field spec is ``(type checker name, required)``; the types are the ``_<name>`` methods of
`Checker` (str, int, num, fraction, list, map, sha, id, source, tensors, labels, variants,
threshold, ...) or a tuple of allowed literal values. Everything that names a concept with
records — source kinds, preprocessors, dataset adapters, tasks, metrics, variants — is checked
against those records at check time, so a new record needs no edit here. The checker collects
every problem as ``<file>: <key.path>: <what>``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .compare.metrics import METRICS
from .compare.preprocess import PREPROCESSORS
from .compare.tasks import TASKS
from .errors import QuantzooError
from .fetch.kinds import ARCHITECTURE_FIELDS, SOURCE_KINDS
from .quantize.variants import parse_variant

ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

DTYPES = ("float32", "float16", "float64", "int64", "int32", "int8", "uint8", "bool", "string")

# --- the schema as data ---------------------------------------------------------------------
# A field spec: (type checker name, required). Types: str, int, num, list, map, sha, id, any,
# task and metric (the names of compare's Task and Metric records), or a tuple of allowed
# literal values.


TENSOR_FIELDS = {"name": ("str", True), "dtype": (DTYPES, True), "shape": ("list", True),
                 "meaning": ("str", False)}

MODEL_SCHEMA = {
    "id": ("id", True),
    "name": ("str", True),
    "task": ("task", True),
    "description": ("str", True),
    "license": ("license", True),
    "authors": ("strlist", True),
    "citation": ("str", False),
    "homepage": ("str", False),
    "source": ("source", True),
    "inputs": ("tensors", True),
    "outputs": ("tensors", True),
    "preprocessing": ("adapter", True),
    "labels": ("labels", False),
    "label_map": ("map", False),
    "dataset": ("id", True),
    "variants": ("variants", False),
    "threshold": ("threshold", True),
    "tags": ("strlist", False),
    "samples": ("strlist", False),
    "custom_ops": ("custom_ops", False),  # {domain.OpType: {class: module:Class, source}}, see customops
    "shapes": ("shapes", False),  # ["NAME=SPEC", ...] as `quantzoo shapes --input` takes them
    "keep_float": ("strlist", False),  # tensor-name globs no variant compresses (quantize --exclude)
}

DATASET_SCHEMA = {
    "id": ("id", True),
    "name": ("str", False),
    "description": ("str", True),
    "license": ("license", True),
    "source": ("source", True),
    "adapter": ("str", True),
    "params": ("map", False),
    "labels": ("labels", False),
    "notes": ("str", False),
    "calibration": ("fraction", False),
}


# --- validation -----------------------------------------------------------------------------

def is_todo(v: Any) -> bool:
    """A value `quantzoo add` left for the maintainer: a string starting with ``TODO``.

    >>> is_todo("TODO: a dataset id"), is_todo("todo list"), is_todo(3)
    (True, False, False)
    """
    return isinstance(v, str) and v.startswith("TODO")


def todo_problem(v: str) -> str:
    """How `quantzoo check` reports a TODO value.

    >>> todo_problem("TODO: a dataset id from zoo/datasets"), todo_problem("TODO")
    ('TODO: fill in a dataset id from zoo/datasets', 'TODO: fill in this value')
    """
    what = v[4:].lstrip(" :")
    return f"TODO: fill in {what or 'this value'}"


class Checker:
    """Walks one manifest against a schema, collecting problems as ``file: key: message``."""

    def __init__(self, file: Path, root: Path):
        self.file = file
        try:
            self.where = str(file.relative_to(root.parent))
        except ValueError:
            self.where = str(file)
        self.problems: list[str] = []

    def bad(self, key: str, msg: str) -> None:
        self.problems.append(f"{self.where}: {key}: {msg}" if key else f"{self.where}: {msg}")

    def mapping(self, obj: Any, schema: dict, key: str = "") -> None:
        if not isinstance(obj, dict):
            self.bad(key or "(top level)", f"expected a mapping, found {type(obj).__name__}")
            return
        for name, (kind, required) in schema.items():
            k = f"{key}.{name}" if key else name
            if name not in obj or obj[name] is None:
                if required:
                    self.bad(k, "missing (required)")
                continue
            self.value(obj[name], kind, k)
        for name in obj:
            if name not in schema:
                k = f"{key}.{name}" if key else str(name)
                self.bad(k, f"unknown key; allowed here: {', '.join(schema)}")

    def value(self, v: Any, kind: Any, k: str) -> None:
        if is_todo(v):  # left for the maintainer by `quantzoo add` (scaffold.py)
            self.bad(k, todo_problem(v))
            return
        if isinstance(kind, tuple):
            if v not in kind:
                self.bad(k, f"expected one of {', '.join(map(str, kind))}, found {v!r}")
            return
        check = getattr(self, f"_{kind}")
        check(v, k)

    def _str(self, v, k):
        if not isinstance(v, str) or not v.strip():
            self.bad(k, f"expected a non-empty string, found {v!r}")

    def _int(self, v, k):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            self.bad(k, f"expected a non-negative integer, found {v!r}")

    def _num(self, v, k):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.bad(k, f"expected a number, found {v!r}")

    def _list(self, v, k):
        if not isinstance(v, list):
            self.bad(k, f"expected a list, found {type(v).__name__}")

    def _fraction(self, v, k):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
            self.bad(k, f"expected a fraction from 0 up to (not including) 1, found {v!r}")

    def _map(self, v, k):
        if not isinstance(v, dict):
            self.bad(k, f"expected a mapping, found {type(v).__name__}")

    def _any(self, v, k):
        pass

    def _strlist(self, v, k):
        if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
            self.bad(k, f"expected a non-empty list of strings, found {v!r}")

    def _sha(self, v, k):
        if not isinstance(v, str) or not SHA256_RE.match(v):
            self.bad(k, f"expected 64 lowercase hex digits (a sha256), found {v!r}")

    def _id(self, v, k):
        if not isinstance(v, str) or not ID_RE.match(v):
            self.bad(k, f"expected an id of lowercase letters, digits and dashes, found {v!r}")

    def _license(self, v, k):
        self.mapping(v, {"spdx": ("str", True), "url": ("str", True)}, k)

    def _source(self, v, k):
        if not isinstance(v, dict):
            self.bad(k, f"expected a mapping with 'kind', found {type(v).__name__}")
            return
        kind = v.get("kind")
        if kind not in SOURCE_KINDS:  # read at check time: a kind added in-process is known
            self.bad(f"{k}.kind", f"expected one of {', '.join(SOURCE_KINDS)}, found {kind!r}")
            return
        self.mapping({x: y for x, y in v.items() if x != "kind"}, SOURCE_KINDS[kind].fields, k)

    def _architecture(self, v, k):
        self.mapping(v, ARCHITECTURE_FIELDS, k)
        if isinstance(v, dict) and isinstance(v.get("builder"), str) and ":" not in v["builder"]:
            self.bad(f"{k}.builder", f"expected 'module:callable', found {v['builder']!r}")

    def _parts(self, v, k):
        if not isinstance(v, list) or not v:
            self.bad(k, "expected a non-empty list of parts, each with name and source")
            return
        for i, part in enumerate(v):
            self.mapping(part, {"name": ("str", True), "source": ("source", True)}, f"{k}[{i}]")

    def _tensors(self, v, k):
        if not isinstance(v, list) or not v:
            self.bad(k, "expected a non-empty list of tensors (name, dtype, shape, meaning)")
            return
        for i, t in enumerate(v):
            self.mapping(t, TENSOR_FIELDS, f"{k}[{i}]")

    def _adapter(self, v, k):
        self.mapping(v, {"adapter": ("str", True), "params": ("map", False)}, k)
        if isinstance(v, dict):
            self.named(v.get("adapter"), PREPROCESSORS, f"{k}.adapter")

    def named(self, name, known: dict, k: str) -> None:
        """Check an adapter name against its records (compare's PREPROCESSORS or DATASET_ADAPTERS)."""
        if isinstance(name, str) and name not in known and not is_todo(name):
            self.bad(k, f"unknown adapter {name!r}; expected one of {', '.join(sorted(known))}")

    def _labels(self, v, k):
        if isinstance(v, list):
            if not v or not all(isinstance(x, str) for x in v):
                self.bad(k, "expected a non-empty list of label strings")
            return
        if isinstance(v, dict):
            if "file" in v:
                self.mapping(v, {"file": ("source", True), "key": ("str", False)}, k)
            elif "metadata" in v:
                self.mapping(v, {"metadata": ("str", True), "append": ("strlist", False),
                                 "prepend": ("strlist", False)}, k)
            elif "from" in v:
                self.mapping(v, {"from": (("folder", "adapter", "filename"), True)}, k)
            else:
                self.bad(k, "expected a list, or a mapping with 'file' (+ 'key'), 'metadata' or 'from'")
            return
        self.bad(k, f"expected a list or a mapping, found {type(v).__name__}")

    def _variants(self, v, k):
        if not isinstance(v, list) or not v:
            self.bad(k, "expected a non-empty list of variant ids or mappings")
            return
        seen = set()
        for i, entry in enumerate(v):
            try:
                var = parse_variant(entry)
            except ValueError as e:
                self.bad(f"{k}[{i}]", str(e))
                continue
            if var.id in seen:
                self.bad(f"{k}[{i}]", f"duplicate variant id {var.id!r}")
            seen.add(var.id)

    def _custom_ops(self, v, k):
        if not isinstance(v, dict) or not v:
            self.bad(k, "expected a mapping of 'domain.OpType' to {class: module:Class, source: ...}")
            return
        for op, entry in v.items():
            if not isinstance(op, str) or not re.match(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+$", op):
                self.bad(f"{k}.{op}", "expected an op written 'domain.OpType', e.g. ai.example.GridSampler")
            self.mapping(entry, {"class": ("str", True), "source": ("source", False)}, f"{k}.{op}")
            if isinstance(entry, dict) and isinstance(entry.get("class"), str) and ":" not in entry["class"]:
                self.bad(f"{k}.{op}.class", f"expected 'module:Class', found {entry['class']!r}")

    def _shapes(self, v, k):
        from .shapes import parse_spec  # the grammar of `quantzoo shapes --input` (ARCHITECTURE.md, "Flexible shapes")

        if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
            self.bad(k, f"expected a non-empty list of 'NAME=SPEC' strings (e.g. x=1..32,3,224,224), found {v!r}")
            return
        names = []
        for i, text in enumerate(v):
            try:
                names.append(parse_spec(text).name)
            except QuantzooError as e:
                self.bad(f"{k}[{i}]", str(e).splitlines()[0])
        if len(set(names)) < len(names):
            self.bad(k, "an input is named twice")

    def _task(self, v, k):
        self.value(v, tuple(TASKS), k)  # the Task records of quantzoo.compare.tasks

    def _metric(self, v, k):
        self.value(v, tuple(METRICS), k)  # the Metric records of quantzoo.compare.metrics

    def _threshold(self, v, k):
        self.mapping(v, {"output": ("str", True), "metric": ("metric", True), "min": ("num", False),
                         "max": ("num", False)}, k)
        if isinstance(v, dict) and ("min" in v) == ("max" in v):
            self.bad(k, "give exactly one of 'min' (higher is better) or 'max' (lower is better)")


def read_yaml(file: Path, checker: Checker) -> Any:
    import yaml

    try:
        return yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        checker.bad("", f"not valid YAML: {str(e).splitlines()[0]} ({e.__class__.__name__})")
    except UnicodeDecodeError as e:
        checker.bad("", f"not UTF-8 text: {e}")
    return None
