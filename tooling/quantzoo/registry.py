"""The registry: one YAML manifest per model and per dataset, validated against a typed schema.

    zoo/models/<id>/model.yaml   (+ optional card.md, the long description)
    zoo/datasets/<id>.yaml

Validation collects every problem, each as ``<file>: <key.path>: <what>``, and raises one
`ManifestError` at the end, so a maintainer fixes a manifest in one pass. Unknown keys are
errors. The schema is plain data (`MODEL_SCHEMA`, `DATASET_SCHEMA`, `SOURCE_FIELDS`): adding a
field is adding one entry.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .compare.datasets import DATASET_ADAPTERS
from .compare.metrics import METRICS
from .compare.preprocess import PREPROCESSORS
from .compare.tasks import TASKS
from .errors import ManifestError, QuantzooError
from .fetch.kinds import ARCHITECTURE_FIELDS, SOURCE_KINDS
from .quantize.variants import DEFAULT_VARIANTS, Variant, parse_variant

ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

DTYPES = ("float32", "float16", "float64", "int64", "int32", "int8", "uint8", "bool", "string")

# --- the schema as data ---------------------------------------------------------------------
# A field spec: (type checker name, required). Types: str, int, num, list, map, sha, id, any,
# task and metric (the names of compare's Task and Metric records), or a tuple of allowed
# literal values.

# a source's fields per kind, and a pytorch source's architecture: from the SourceKind records
SOURCE_FIELDS: dict[str, dict[str, tuple[Any, bool]]] = {k.name: k.fields for k in SOURCE_KINDS.values()}

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


# --- loaded manifests -----------------------------------------------------------------------

@dataclass
class Dataset:
    id: str
    description: str
    license: dict
    source: dict
    adapter: str
    params: dict = field(default_factory=dict)
    labels: Any = None
    name: str | None = None
    notes: str | None = None
    calibration: float | None = None   # the fraction held out for calibration (compare.split)
    path: Path | None = None


@dataclass
class Model:
    id: str
    name: str
    task: str
    description: str
    license: dict
    authors: list[str]
    source: dict
    inputs: list[dict]
    outputs: list[dict]
    preprocessing: dict
    dataset: str
    threshold: dict
    variants: list[Variant]
    labels: Any = None
    label_map: dict | None = None
    citation: str | None = None
    homepage: str | None = None
    tags: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    card: str | None = None
    path: Path | None = None


@dataclass
class Registry:
    root: Path
    models: dict[str, Model]
    datasets: dict[str, Dataset]

    def model(self, model_id: str) -> Model:
        try:
            return self.models[model_id]
        except KeyError:
            raise QuantzooError(
                f"unknown model {model_id!r} in {self.root}; known models: {', '.join(sorted(self.models)) or 'none'}"
            ) from None

    def dataset(self, dataset_id: str) -> Dataset:
        try:
            return self.datasets[dataset_id]
        except KeyError:
            raise QuantzooError(
                f"unknown dataset {dataset_id!r} in {self.root}; known datasets: "
                f"{', '.join(sorted(self.datasets)) or 'none'}"
            ) from None

    def select(self, ids: list[str] | None) -> tuple[list[Model], list[Dataset]]:
        """The models and datasets named by `ids` (all when empty); unknown ids are one error."""
        if not ids:
            return list(self.models.values()), list(self.datasets.values())
        unknown = [i for i in ids if i not in self.models and i not in self.datasets]
        if unknown:
            raise QuantzooError(
                f"unknown id{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} in {self.root}; "
                f"known: {', '.join(sorted([*self.models, *self.datasets]))}")
        return ([self.models[i] for i in ids if i in self.models],
                [self.datasets[i] for i in ids if i in self.datasets])


# --- validation -----------------------------------------------------------------------------

class _Checker:
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
        if kind not in SOURCE_FIELDS:
            self.bad(f"{k}.kind", f"expected one of {', '.join(SOURCE_FIELDS)}, found {kind!r}")
            return
        self.mapping({x: y for x, y in v.items() if x != "kind"}, SOURCE_FIELDS[kind], k)

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
        if isinstance(name, str) and name not in known:
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

    def _task(self, v, k):
        self.value(v, tuple(TASKS), k)  # the Task records of quantzoo.compare.tasks

    def _metric(self, v, k):
        self.value(v, tuple(METRICS), k)  # the Metric records of quantzoo.compare.metrics

    def _threshold(self, v, k):
        self.mapping(v, {"output": ("str", True), "metric": ("metric", True), "min": ("num", False),
                         "max": ("num", False)}, k)
        if isinstance(v, dict) and ("min" in v) == ("max" in v):
            self.bad(k, "give exactly one of 'min' (higher is better) or 'max' (lower is better)")


def _read_yaml(file: Path, checker: _Checker) -> Any:
    import yaml

    try:
        return yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        checker.bad("", f"not valid YAML: {str(e).splitlines()[0]} ({e.__class__.__name__})")
    except UnicodeDecodeError as e:
        checker.bad("", f"not UTF-8 text: {e}")
    return None


def zoo_root(override: str | os.PathLike | None = None) -> Path:
    """The registry folder: `override`, else ``$QUANTZOO_ZOO``, else ``./zoo``."""
    return Path(override or os.environ.get("QUANTZOO_ZOO") or "zoo").resolve()


def load_registry(root: str | os.PathLike | None = None) -> Registry:
    """Load and validate every manifest under `root`; raise one ManifestError listing all problems.

    >>> reg = load_registry("zoo")  # doctest: +SKIP
    >>> sorted(reg.models)  # doctest: +SKIP
    ['magika-standard-v3', 'ppocr-mobile-v2-cls', 'ppocr-v4-det', 'ppocr-v4-rec']
    """
    root = zoo_root(root)
    if not root.is_dir():
        raise QuantzooError(f"no registry folder at {root}: expected a folder with models/ and datasets/; "
                            "pass --zoo DIR or run from the repository root")
    problems: list[str] = []
    models: dict[str, Model] = {}
    datasets: dict[str, Dataset] = {}

    for file in sorted((root / "datasets").glob("*.yaml")) + sorted((root / "datasets").glob("*.yml")):
        c = _Checker(file, root)
        doc = _read_yaml(file, c)
        if doc is not None or not c.problems:
            c.mapping(doc, DATASET_SCHEMA)
            if isinstance(doc, dict):
                c.named(doc.get("adapter"), DATASET_ADAPTERS, "adapter")
            if isinstance(doc, dict) and doc.get("id") and doc["id"] != file.stem:
                c.bad("id", f"must match the file name {file.stem!r}, found {doc['id']!r}")
        problems += c.problems
        if not c.problems:
            datasets[doc["id"]] = Dataset(path=file, **{k: v for k, v in doc.items()})

    model_dir = root / "models"
    entries = sorted(model_dir.iterdir()) if model_dir.is_dir() else []
    for folder in entries:
        if not folder.is_dir():
            continue
        file = folder / "model.yaml"
        c = _Checker(file, root)
        if not file.is_file():
            c.bad("", "missing: every folder under models/ needs a model.yaml")
            problems += c.problems
            continue
        doc = _read_yaml(file, c)
        if doc is not None or not c.problems:
            c.mapping(doc, MODEL_SCHEMA)
        if isinstance(doc, dict):
            if doc.get("id") and doc["id"] != folder.name:
                c.bad("id", f"must match the folder name {folder.name!r}, found {doc['id']!r}")
            ds = doc.get("dataset")
            if isinstance(ds, str) and ID_RE.match(ds) and ds not in datasets \
                    and not (root / "datasets" / f"{ds}.yaml").exists():
                c.bad("dataset", f"no dataset {ds!r} in {root / 'datasets'}; "
                                 f"known: {', '.join(sorted(datasets)) or 'none'}")
            outs = [o.get("name") for o in doc.get("outputs") or [] if isinstance(o, dict)]
            thr = doc.get("threshold")
            if isinstance(thr, dict) and isinstance(thr.get("output"), str) and outs and thr["output"] not in outs:
                c.bad("threshold.output", f"expected one of the model's outputs {outs}, found {thr['output']!r}")
        problems += c.problems
        if not c.problems:
            card = folder / "card.md"
            fields = dict(doc)
            fields["variants"] = [parse_variant(v) for v in doc.get("variants") or DEFAULT_VARIANTS]
            models[doc["id"]] = Model(path=file, card=card.read_text(encoding="utf-8") if card.is_file() else None,
                                      **fields)
    if problems:
        raise ManifestError(problems)
    return Registry(root=root, models=models, datasets=datasets)


def cli_check(args) -> int:
    reg = load_registry(args.zoo)
    n_var = sum(len(m.variants) for m in reg.models.values())
    print(f"ok: {len(reg.models)} models ({n_var} variants) and {len(reg.datasets)} datasets in {reg.root}")
    return 0
