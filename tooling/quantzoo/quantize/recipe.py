"""A recipe: the compression scheme of every selected tensor, as data (ARCHITECTURE.md, "Automatic
mixed precision").

An auto variant (`allocate.py`) chooses one scheme per tensor; the choice is a `Recipe`, written
as JSON next to the artifact and recorded in its ``metadata_props`` (``quantzoo.recipe``).
``quantzoo quantize --recipe R.json`` (`engine.quantize_file(..., recipe=R)`) applies it and
writes the same bytes: the artifact depends on the recipe's tensors, selector and
representation only, never on how they were found.

A scheme is a variant id (`variants.parse_variant`: ``fp16``, ``linear-8``, ``kmeans-4``,
``kmeans-3-g8``) or ``float`` (the tensor stays as it is). A tensor is named by `tensor_key`:
its name, prefixed by its subgraph scope when it lives in one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import QuantzooError
from .variants import Variant, parse_variant

SCHEMA_VERSION = 1
KIND = "quantzoo.recipe"
FLOAT = "float"  # the scheme that leaves a tensor uncompressed


def tensor_key(name: str, scope: str = "") -> str:
    """How a recipe names a tensor: ``scope/name`` in a subgraph, ``name`` in the main graph.

    >>> tensor_key("W"), tensor_key("W", "If_0/then_branch")
    ('W', 'If_0/then_branch/W')
    """
    return f"{scope}/{name}" if scope else name


def scheme_config(scheme: str) -> dict | None:
    """The quantize configuration of one scheme (engine.check_config's keys), None for ``float``.

    >>> scheme_config("kmeans-3-g8")["group_size"], scheme_config("float")
    (8, None)
    """
    if scheme == FLOAT:
        return None
    try:
        v: Variant = parse_variant(scheme)
    except ValueError as e:
        raise QuantzooError(f"recipe scheme {scheme!r}: {e}") from None
    if v.auto or v.lut_function or v.mode not in _PLAIN_MODES:
        raise QuantzooError(f"recipe scheme {scheme!r}: expected float, fp16, linear-<n>, lut-<n> or "
                            "kmeans-<n>[-g<G>]")
    return {"mode": v.mode, "nbits": v.nbits, "granularity": v.granularity, "block_size": v.block_size,
            "group_size": v.group_size, "lut_function": None}


_PLAIN_MODES = ("fp16", "linear", "linear_symmetric", "linear_lut", "kmeans_lut")


@dataclass
class Recipe:
    """One scheme per tensor, and what selects the tensors (the engine's selector and representation).

    `target` and `measured` describe how the recipe was found (informational: the artifact's bytes
    depend on `target` only through the metadata it is recorded in, never on `measured`).
    """

    schemes: dict[str, str]                  # tensor_key -> scheme
    min_elements: int = 2048
    op_types: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    representation: str = "auto"
    source_sha256: str | None = None
    target: dict | None = None               # {"output", "metric", "min"|"max"}
    measured: dict = field(default_factory=dict)

    def selector(self) -> dict:
        return {"min_elements": self.min_elements, "op_types": self.op_types, "exclude": list(self.exclude)}

    def metadata(self) -> dict[str, str]:
        """The ``metadata_props`` that record the recipe in the artifact (sorted, compact JSON).

        >>> Recipe({"b": "kmeans-4", "a": "fp16"}).metadata()["quantzoo.recipe"]
        '{"a":"fp16","b":"kmeans-4"}'
        """
        meta = {"quantzoo.recipe": json.dumps(self.schemes, sort_keys=True, separators=(",", ":"))}
        if self.target:
            meta["quantzoo.target"] = json.dumps(self.target, sort_keys=True, separators=(",", ":"))
        return meta

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "kind": KIND, "source_sha256": self.source_sha256,
                "selector": self.selector(), "representation": self.representation, "target": self.target,
                "tensors": [{"tensor": k, "scheme": self.schemes[k]} for k in sorted(self.schemes)],
                "measured": self.measured}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, doc, where: str = "recipe") -> Recipe:
        if not isinstance(doc, dict) or doc.get("kind") != KIND:
            raise QuantzooError(f"{where}: not a quantzoo recipe (expected a JSON object with kind {KIND!r}); "
                                "write one with quantzoo quantize --auto --recipe-out")
        if doc.get("schema_version") != SCHEMA_VERSION:
            raise QuantzooError(f"{where}: schema_version {doc.get('schema_version')!r}, expected {SCHEMA_VERSION}")
        tensors = doc.get("tensors")
        if not isinstance(tensors, list) or not all(isinstance(t, dict) and isinstance(t.get("tensor"), str)
                                                     and isinstance(t.get("scheme"), str) for t in tensors):
            raise QuantzooError(f"{where}: tensors must be a list of {{tensor, scheme}} objects")
        schemes = {t["tensor"]: t["scheme"] for t in tensors}
        if len(schemes) != len(tensors):
            raise QuantzooError(f"{where}: a tensor is listed twice")
        for s in set(schemes.values()):
            scheme_config(s)
        sel = doc.get("selector") or {}
        return cls(schemes, min_elements=int(sel.get("min_elements", 2048)), op_types=sel.get("op_types"),
                   exclude=list(sel.get("exclude") or []), representation=doc.get("representation") or "auto",
                   source_sha256=doc.get("source_sha256"), target=doc.get("target"),
                   measured=doc.get("measured") or {})


def read_recipe(path) -> Recipe:
    """A recipe from its JSON file."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QuantzooError(f"{p}: no such recipe file; write one with quantzoo quantize --auto") from None
    except ValueError as e:
        raise QuantzooError(f"{p}: not JSON ({e}); expected a quantzoo recipe") from None
    return Recipe.from_dict(doc, str(p))


def write_recipe(path, recipe: Recipe) -> None:
    """Write `recipe` atomically (sorted keys: the same recipe gives the same bytes)."""
    from ..cache import atomic_path

    p = Path(path)
    with atomic_path(p) as tmp:
        tmp.write_text(recipe.to_json(), encoding="utf-8")


def split_selected(chosen: list, skipped: list, recipe: Recipe, label: str):
    """(the selected tensors the recipe compresses, skipped + the ones it keeps in float, their
    configurations in order). A recipe tensor the selector did not choose is an error."""
    from .weights import Skipped

    by_key = {tensor_key(s.tensor.name, s.tensor.scope): s for s in chosen}
    missing = sorted(set(recipe.schemes) - set(by_key))
    if missing:
        raise QuantzooError(f"{label}: the recipe names tensors the selector does not choose: {', '.join(missing[:5])}"
                            f"{' …' if len(missing) > 5 else ''}; is it the recipe of this model "
                            f"(source sha256 {recipe.source_sha256})?")
    kept, cfgs, skipped = [], [], list(skipped)
    for s in chosen:
        key = tensor_key(s.tensor.name, s.tensor.scope)
        cfg = scheme_config(recipe.schemes.get(key, FLOAT))
        if cfg is None:
            skipped.append(Skipped(s.tensor.name, s.tensor.scope, s.tensor.elements, "kept in float by the recipe"))
            continue
        kept.append(s)
        cfgs.append(cfg)
    return kept, skipped, cfgs
