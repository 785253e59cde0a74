"""The registry: one YAML manifest per model and per dataset, validated against a typed schema.

    zoo/models/<id>/model.yaml   (+ optional card.md, the long description)
    zoo/datasets/<id>.yaml

Validation collects every problem, each as ``<file>: <key.path>: <what>``, and raises one
`ManifestError` at the end, so a maintainer fixes a manifest in one pass. Unknown keys are
errors. The schema is plain data in `quantzoo.schema`: adding a field is adding one entry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .compare.datasets import DATASET_ADAPTERS
from .errors import ManifestError, QuantzooError
from .quantize.variants import DEFAULT_VARIANTS, Variant, parse_variant
from .schema import DATASET_SCHEMA, ID_RE, MODEL_SCHEMA, Checker, read_yaml

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
    custom_ops: dict = field(default_factory=dict)  # {"domain.OpType": {class, source}}: see customops
    shapes: list[str] = field(default_factory=list)  # promised input shapes, "NAME=SPEC" (quantzoo.shapes)
    keep_float: list[str] = field(default_factory=list)  # tensor-name globs every variant leaves float
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


def zoo_root(override: str | os.PathLike | None = None) -> Path:
    """The registry folder: `override`, else ``$QUANTZOO_ZOO``, else ``./zoo``."""
    return Path(override or os.environ.get("QUANTZOO_ZOO") or "zoo").resolve()


def _check_judge(preprocessing: Any, root: Path, c: Checker) -> None:
    """A judge (``preprocessing.params.metrics.judge``, compare/judge.py) must be well formed and
    name a model folder of this registry."""
    from .compare.judge import judge_id

    where = "preprocessing.params.metrics.judge"
    try:
        ident = judge_id(preprocessing, "the judge") if isinstance(preprocessing, dict) else None
    except (QuantzooError, AttributeError) as e:
        c.bad(where, str(e))
        return
    if ident is not None and not (root / "models" / ident / "model.yaml").is_file():
        known = sorted(p.name for p in (root / "models").iterdir() if (p / "model.yaml").is_file())
        c.bad(f"{where}.model", f"no model {ident!r} in {root / 'models'}; known: {', '.join(known) or 'none'}")


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
        c = Checker(file, root)
        doc = read_yaml(file, c)
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
        c = Checker(file, root)
        if not file.is_file():
            c.bad("", "missing: every folder under models/ needs a model.yaml")
            problems += c.problems
            continue
        doc = read_yaml(file, c)
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
            _check_judge(doc.get("preprocessing"), root, c)
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
