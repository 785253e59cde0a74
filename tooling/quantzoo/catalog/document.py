"""The whole index.json: `ModelEntry` per model and `CatalogIndex`, its exact bytes and its reader."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import QuantzooError
from .customops import CustomOpEntry, parse_custom_ops
from .fields import Entry, FileEntry, kind_of, malformed
from .shapes import ShapesEntry, parse_shapes_fields, shapes_json
from .variants import RuntimeResult, VariantEntry, parse_runtimes, runtimes_json

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (1,)
FLOAT_VARIANT = "float"


@dataclass(frozen=True)
class Source:
    """Where the float model came from: its upstream sha256 and URL (either may be None)."""

    sha256: str | None
    url: str | None

    def to_json(self) -> dict:
        return {"sha256": self.sha256, "url": self.url}


@dataclass(frozen=True)
class ModelEntry(Entry):
    """One model of the catalog: its facts, its float file, its variants and the recommended one."""

    id: str
    name: Any = None
    task: Any = None
    license: Any = None
    parameters: Any = None
    source: Source | None = None
    float: FileEntry | None = None
    recommended: str | None = None
    variants: tuple[VariantEntry, ...] = ()
    float_runtimes: dict[str, RuntimeResult] = field(default_factory=dict)  # written inside "float"
    custom_ops: tuple[CustomOpEntry, ...] = ()  # written only when the model has custom ops
    float_shapes: ShapesEntry | None = None  # written inside "float", for a model with `shapes`
    float_throughput: dict[str, float] = field(default_factory=dict)  # written inside "float"

    def variant(self, variant_id: str) -> VariantEntry | None:
        return next((v for v in self.variants if v.id == variant_id), None)

    def float_variant(self) -> VariantEntry | None:
        """The float original as a pseudo-variant named `FLOAT_VARIANT` (no metrics), if published.

        >>> ModelEntry("m", float=FileEntry("files/m/m-float.onnx", 9, "0" * 64)).float_variant().nbits
        32
        """
        f = self.float
        if f is None:
            return None
        return VariantEntry(FLOAT_VARIANT, "float", 32, None, f.file, f.size, f.sha256, {}, self.float_runtimes,
                            shapes=self.float_shapes, throughput=self.float_throughput)

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "task": self.task, "license": self.license,
                "parameters": self.parameters, "source": self.source.to_json() if self.source else None,
                "float": self.float.to_json() | runtimes_json(self.float_runtimes)
                | shapes_json(self.float_shapes, self.float_throughput) if self.float else None,
                "recommended": self.recommended,
                "variants": [v.to_json() for v in self.variants]
                } | ({"custom_ops": [c.to_json() for c in self.custom_ops]} if self.custom_ops else {})

    @classmethod
    def _parse(cls, doc: Any, key: str, problems: list[str], seen: set[str] | None = None) -> ModelEntry | None:
        if not isinstance(doc, dict):
            problems.append(f"{key}: expected an object, found {kind_of(doc)}")
            return None
        mid = doc.get("id")
        ok = True
        if not isinstance(mid, str) or not mid:
            problems.append(f"{key}.id: expected a non-empty string, found {kind_of(mid)}")
            ok = False
        elif seen is not None and mid in seen:
            problems.append(f"{key}.id: {mid!r} appears twice")
            ok = False
        else:
            if seen is not None:
                seen.add(mid)
            key = f"{key} ({mid})"
        flt = FileEntry._parse(doc["float"], f"{key}.float", problems) if doc.get("float") is not None else None
        float_runtimes = parse_runtimes(doc["float"].get("runtimes", {}), f"{key}.float.runtimes", problems) \
            if isinstance(doc.get("float"), dict) else {}
        float_shapes, float_throughput = parse_shapes_fields(doc["float"], f"{key}.float", problems) \
            if isinstance(doc.get("float"), dict) else (None, {})
        raw = doc.get("variants")
        if not isinstance(raw, list):
            problems.append(f"{key}.variants: expected a list, found {kind_of(raw)}")
            return None
        n = len(problems)
        variants = [VariantEntry._parse(v, f"{key}.variants[{j}]", problems) for j, v in enumerate(raw)]
        ids = {v.get("id") for v in raw if isinstance(v, dict) and isinstance(v.get("id"), str) and v.get("id")}
        rec = doc.get("recommended")
        if rec is not None and rec not in ids:
            problems.append(f"{key}.recommended: {rec!r} is not one of its variants ({', '.join(sorted(ids)) or 'none'})")
        custom_ops = parse_custom_ops(doc.get("custom_ops", []), f"{key}.custom_ops", problems)
        src = doc.get("source")
        source = Source(src.get("sha256"), src.get("url")) if isinstance(src, dict) else None
        if not ok or len(problems) > n:
            return None
        return cls(mid, doc.get("name"), doc.get("task"), doc.get("license"), doc.get("parameters"), source, flt,
                   rec, tuple(variants), float_runtimes, custom_ops, float_shapes, float_throughput)


@dataclass(frozen=True)
class CatalogIndex:
    """The whole index.json.

    >>> CatalogIndex.from_json({"schema_version": 1, "models": []}, "index.json").models
    ()
    >>> CatalogIndex.from_json({"schema_version": 7, "models": []}, "x/index.json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    quantzoo.errors.QuantzooError: x/index.json has schema_version 7, but this quantzoo (...) reads schema_version 1 only. ...
    """

    models: tuple[ModelEntry, ...]
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> dict:
        return {"schema_version": self.schema_version, "models": [m.to_json() for m in self.models]}

    def to_bytes(self) -> bytes:
        return index_json_bytes(self.to_json())

    @classmethod
    def from_json(cls, doc: Any, where: str) -> CatalogIndex:
        """Check a parsed index.json against the contract; every problem is reported at once."""
        from .. import __version__

        if not isinstance(doc, dict):
            raise QuantzooError(f"{where} is malformed: expected a JSON object with 'schema_version' and 'models', "
                                f"found {type(doc).__name__}. Check that the catalog address points at a quantzoo site.")
        version = doc.get("schema_version")
        if version not in SUPPORTED_SCHEMA_VERSIONS or isinstance(version, bool):
            supported = ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)
            found = "no schema_version" if "schema_version" not in doc else f"schema_version {version!r}"
            raise QuantzooError(
                f"{where} has {found}, but this quantzoo ({__version__}) reads schema_version {supported} only. "
                f"Upgrade quantzoo (pip install -U quantzoo) or use a catalog built for schema_version {supported}.")
        problems: list[str] = []
        raw = doc.get("models")
        if not isinstance(raw, list):
            problems.append(f"models: expected a list, found {kind_of(raw)}")
            raw = []
        seen: set[str] = set()
        models = [ModelEntry._parse(m, f"models[{i}]", problems, seen) for i, m in enumerate(raw)]
        if problems:
            raise malformed(where, problems)
        return cls(tuple(models), version)

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> CatalogIndex:
        """index.json bytes -> the checked index.

        >>> len(CatalogIndex.from_bytes(b'{"schema_version": 1, "models": []}', "index.json").models)
        0
        """
        try:
            doc = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise QuantzooError(f"{where} is malformed: not UTF-8 text ({e}). "
                                "Check that the catalog address points at a quantzoo site.") from None
        except json.JSONDecodeError as e:
            head = data[:60].decode("utf-8", "replace").strip().replace("\n", " ")
            raise QuantzooError(f"{where} is malformed: not valid JSON ({e.msg} at line {e.lineno} column {e.colno}; "
                                f"it starts with {head!r}). Check that the catalog address points at a quantzoo site."
                                ) from None
        return cls.from_json(doc, where)


def index_json_bytes(doc: dict) -> bytes:
    """index.json bytes: sorted keys, two-space indent, no NaN, trailing newline.

    >>> index_json_bytes({"models": [], "schema_version": 1}).decode()
    '{\\n  "models": [],\\n  "schema_version": 1\\n}\\n'
    """
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
