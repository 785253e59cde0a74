"""The catalog contract: ``index.json`` as typed entries, written by `publish` and read by the client.

    {"schema_version": 1, "models": [{"id", "name", "task", "license", "parameters",
      "source": {"sha256", "url"}, "float": {"file", "size", "sha256"}, "recommended": "<variant id>",
      "variants": [{"id", "mode", "nbits", "granularity", "file", "size", "sha256",
                    "metrics": {"<output>": {"<metric>": {"mean", "std", "n", "ci95", "excluded"?}}},
                    "runtimes"?: {"<runtime>": {"runs", "max_abs_diff", "error"?}},
                    "files"?: [{"file", "size", "sha256"}]}]}]}

``files`` (absent for a variant that is one file) lists the files a variant's ``.onnx`` reads
beside it (external data): a client fetches and verifies them all and puts them in the same
folder under their published names.

``runtimes`` (on a variant and on ``float``; absent when not measured) is the runtime
compatibility matrix: whether each ONNX runtime runs the file and the largest absolute
difference of its outputs from onnxruntime's on the same evaluation samples (null for
onnxruntime itself or when not measured); ``error`` says why it does not run or was skipped.

A metric's ``ci95`` is its 95 % interval ``[lo, hi]`` (null when it was not computed: older
catalogs); ``excluded``, present only when above 0, counts the samples where the metric is
undefined and left out (``n`` counts the others).

``file`` is relative to the site root or an absolute URL. Every entry has ``to_json()`` (the
exact dict the writer emits) and ``from_json(doc, where)``, which checks what a reader relies on
and raises one `QuantzooError` listing every problem with its key. Fields the reader does not
rely on (name, task, mode, ...) are taken as they are, so older and newer writers stay readable.
See ARCHITECTURE.md, "Formats".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from .errors import QuantzooError

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (1,)
FLOAT_VARIANT = "float"

_SHA = re.compile(r"^[0-9a-f]{64}$")
_FIX = ("The site's index.json does not follow the quantzoo catalog contract; rebuild the site with "
        "`quantzoo build` or report it to the catalog's maintainers.")


def is_url(s: str) -> bool:
    """Whether `s` is an http(s) URL (else a path relative to the site root).

    >>> is_url("https://cdn.example/a.onnx"), is_url("files/m/a.onnx")
    (True, False)
    """
    return urlparse(str(s)).scheme.lower() in ("http", "https")


def file_name(file: str) -> str:
    """The published file name: the last path segment of `file` (a site path or a URL).

    >>> file_name("files/m/m-kmeans-4.onnx"), file_name("https://cdn.example/zoo/m/m%20x.onnx?sig=1")
    ('m-kmeans-4.onnx', 'm x.onnx')
    >>> file_name("files/m/")
    Traceback (most recent call last):
    ...
    quantzoo.errors.QuantzooError: 'files/m/' does not end in a file name
    """
    path = urlparse(file).path if is_url(file) else file
    name = unquote(path.rsplit("/", 1)[-1])
    if not name or name in (".", "..") or any(c in name for c in "/\\\x00"):
        raise QuantzooError(f"{file!r} does not end in a file name")
    return name


def _kind(x: Any) -> str:
    if x is None:
        return "nothing"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(x), type(x).__name__) + (f" {x!r}" if isinstance(x, (str, int, float)) else "")


def _malformed(where: str, problems: list[str]) -> QuantzooError:
    n = len(problems)
    return QuantzooError(f"{where} is malformed ({n} problem{'s' if n != 1 else ''}):\n"
                         + "\n".join(f"  {p}" for p in problems) + "\n" + _FIX)


def _number(x: Any) -> float | None:
    """A JSON number as a float; None for null, booleans, strings and NaN."""
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x != x:
        return None
    return float(x)


class _Entry:
    """`from_json` for every entry: parse, collecting problems under the key `where`, then raise."""

    @classmethod
    def from_json(cls, doc: Any, where: str):
        problems: list[str] = []
        entry = cls._parse(doc, where, problems)
        if problems:
            raise _malformed(where, problems)
        return entry


@dataclass(frozen=True)
class MetricSummary(_Entry):
    """One metric of one output over the evaluation samples; None where it was not finite.

    `ci95` is the 95 % interval (lo, hi) or None; `excluded` the samples left out (0: none).

    >>> s = MetricSummary.from_json({"mean": 0.97, "std": 0.17, "n": 100, "ci95": [0.915, 0.99]}, "m")
    >>> s.ci95, s.excluded, s.to_json()
    ((0.915, 0.99), 0, {'ci95': [0.915, 0.99], 'mean': 0.97, 'n': 100, 'std': 0.17})
    >>> MetricSummary.from_json({"mean": 0.9, "std": 0, "n": 9}, "m").ci95 is None
    True
    """

    mean: float | None
    std: float | None
    n: int | None
    ci95: tuple[float, float] | None = None
    excluded: int = 0

    def bound(self, higher_is_better: bool) -> float | None:
        """The conservative end: the interval's lower end when higher is better (else the upper
        end); the mean when there is no interval (see ARCHITECTURE.md, "Formats")."""
        if self.ci95 is None:
            return self.mean
        return self.ci95[0] if higher_is_better else self.ci95[1]

    def to_json(self) -> dict:
        doc = {"ci95": list(self.ci95) if self.ci95 is not None else None, "mean": self.mean, "n": self.n,
               "std": self.std}
        return doc | {"excluded": self.excluded} if self.excluded else doc

    @classmethod
    def _parse(cls, doc: dict, key: str, problems: list[str]) -> MetricSummary:
        n, mean = doc.get("n"), _number(doc.get("mean"))
        raw, ci95 = doc.get("ci95"), None
        if raw is not None:
            bounds = [_number(x) for x in raw] if isinstance(raw, list) and len(raw) == 2 else None
            if bounds is None or None in bounds:
                problems.append(f"{key}.ci95: expected [lo, hi] (two numbers) or null, found {json.dumps(raw)[:60]}")
            elif not bounds[0] <= bounds[1] or (mean is not None and not _within(mean, *bounds)):
                around = f" around mean {mean:g}" if mean is not None else ""
                problems.append(f"{key}.ci95: expected lo <= mean <= hi, found {json.dumps(raw)}{around}")
            else:
                ci95 = (bounds[0], bounds[1])
        excluded = doc.get("excluded", 0)
        if not isinstance(excluded, int) or isinstance(excluded, bool) or excluded < 0:
            problems.append(f"{key}.excluded: expected a sample count >= 0, found {excluded!r}")
            excluded = 0
        return cls(mean, _number(doc.get("std")), n if isinstance(n, int) and not isinstance(n, bool) else None,
                   ci95, excluded)


def _within(x: float, lo: float, hi: float) -> bool:
    """lo <= x <= hi, forgiving the last digits the writer rounded away (7 significant digits)."""
    slack = 1e-6 * max(abs(x), abs(lo), abs(hi), 1e-12)
    return lo - slack <= x <= hi + slack


def _parse_metrics(doc: Any, key: str, problems: list[str]) -> dict[str, dict[str, MetricSummary]]:
    if not isinstance(doc, dict) or not all(
            isinstance(ms, dict) and all(isinstance(x, dict) for x in ms.values()) for ms in doc.values()):
        problems.append(f"{key}: expected {{output: {{metric: {{mean, std, n}}}}}}, found {json.dumps(doc)[:80]}")
        return {}
    return {out: {m: MetricSummary._parse(x, f"{key}.{out}.{m}", problems) for m, x in ms.items()}
            for out, ms in doc.items()}


def _check_file(doc: dict, key: str, problems: list[str]) -> bool:
    """Problems of the file, size and sha256 fields; whether there were none."""
    before = len(problems)
    if not isinstance(doc.get("file"), str) or not doc.get("file"):
        problems.append(f"{key}.file: expected a path or URL, found {_kind(doc.get('file'))}")
    else:
        try:
            file_name(doc["file"])
        except QuantzooError as e:
            problems.append(f"{key}.file: {e}")
    size = doc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        problems.append(f"{key}.size: expected a byte count, found {size!r}")
    sha = doc.get("sha256")
    if not isinstance(sha, str) or not _SHA.match(sha):
        problems.append(f"{key}.sha256: expected 64 lowercase hex digits, found {sha!r}")
    return len(problems) == before


@dataclass(frozen=True)
class RuntimeResult(_Entry):
    """Whether one runtime runs a published file, and how far its outputs are from onnxruntime's.

    >>> RuntimeResult.from_json({"runs": False, "max_abs_diff": None, "error": "float model does not run either"},
    ...                         "r").to_json()
    {'error': 'float model does not run either', 'max_abs_diff': None, 'runs': False}
    """

    runs: bool
    max_abs_diff: float | None = None
    error: str | None = None

    def to_json(self) -> dict:
        doc = {"max_abs_diff": self.max_abs_diff, "runs": self.runs}
        return {"error": self.error} | doc if self.error else doc

    @classmethod
    def _parse(cls, doc: Any, key: str, problems: list[str]) -> RuntimeResult | None:
        if not isinstance(doc, dict) or not isinstance(doc.get("runs"), bool):
            problems.append(f"{key}: expected {{runs: true|false, max_abs_diff, error?}}, found {json.dumps(doc)[:60]}")
            return None
        error = doc.get("error")
        return cls(doc["runs"], _number(doc.get("max_abs_diff")), error if isinstance(error, str) else None)


def _parse_runtimes(doc: Any, key: str, problems: list[str]) -> dict[str, RuntimeResult]:
    if not isinstance(doc, dict):
        problems.append(f"{key}: expected {{runtime: {{runs, max_abs_diff}}}}, found {_kind(doc)}")
        return {}
    parsed = {name: RuntimeResult._parse(r, f"{key}.{name}", problems) for name, r in doc.items()}
    return {name: r for name, r in parsed.items() if r is not None}


def _runtimes_json(runtimes: dict[str, RuntimeResult]) -> dict:
    """``{"runtimes": ...}`` to merge into an entry's JSON; nothing when not measured."""
    return {"runtimes": {n: r.to_json() for n, r in sorted(runtimes.items())}} if runtimes else {}


@dataclass(frozen=True)
class FileEntry(_Entry):
    """A published file: where it is (site path or URL), its size and its sha256.

    >>> FileEntry.from_json({"file": "files/m/m-float.onnx", "size": 3, "sha256": "a" * 64}, "float").name
    'm-float.onnx'
    """

    file: str
    size: int
    sha256: str

    @property
    def name(self) -> str:
        return file_name(self.file)

    def to_json(self) -> dict:
        return {"file": self.file, "size": self.size, "sha256": self.sha256}

    @classmethod
    def _parse(cls, doc: Any, key: str, problems: list[str]) -> FileEntry | None:
        if not isinstance(doc, dict):
            problems.append(f"{key}: expected an object with file, size and sha256, found {_kind(doc)}")
            return None
        return cls(doc["file"], doc["size"], doc["sha256"]) if _check_file(doc, key, problems) else None


def _parse_files(doc: Any, key: str, problems: list[str]) -> tuple[FileEntry, ...]:
    """A variant's extra files: each a FileEntry whose name differs from the others'."""
    if not isinstance(doc, list):
        problems.append(f"{key}: expected a list of {{file, size, sha256}}, found {_kind(doc)}")
        return ()
    files = [FileEntry._parse(f, f"{key}[{i}]", problems) for i, f in enumerate(doc)]
    names = [f.name for f in files if f is not None]
    if len(set(names)) != len(names):
        problems.append(f"{key}: two files have the same name ({', '.join(sorted(names))})")
    return tuple(f for f in files if f is not None)


@dataclass(frozen=True)
class VariantEntry(_Entry):
    """One published variant: its settings, its file and its measured metrics."""

    id: str
    mode: Any
    nbits: Any
    granularity: Any
    file: str
    size: int
    sha256: str
    metrics: dict[str, dict[str, MetricSummary]] = field(default_factory=dict)
    runtimes: dict[str, RuntimeResult] = field(default_factory=dict)
    files: tuple[FileEntry, ...] = ()  # files the variant reads beside its .onnx (external data), same folder

    def metric(self, output: str, metric: str) -> float | None:
        """The mean of one metric of one output, or None when it was not measured.

        >>> v = VariantEntry("a", "fp16", 16, "per_tensor", "a.onnx", 1, "0" * 64, {"y": {"iou": MetricSummary(0.9, 0, 3)}})
        >>> v.metric("y", "iou"), v.metric("y", "cosine")
        (0.9, None)
        """
        s = self.summary(output, metric)
        return s.mean if s else None

    def summary(self, output: str, metric: str) -> MetricSummary | None:
        """The whole summary (mean, std, n, ci95, excluded) of one metric of one output, or None."""
        return self.metrics.get(output, {}).get(metric)

    @property
    def name(self) -> str:
        return file_name(self.file)

    def to_json(self) -> dict:
        return {"id": self.id, "mode": self.mode, "nbits": self.nbits, "granularity": self.granularity,
                "file": self.file, "size": self.size, "sha256": self.sha256,
                "metrics": {out: {m: s.to_json() for m, s in ms.items()} for out, ms in self.metrics.items()}
                } | _runtimes_json(self.runtimes) | ({"files": [f.to_json() for f in self.files]} if self.files else {})

    @classmethod
    def _parse(cls, doc: Any, key: str, problems: list[str]) -> VariantEntry | None:
        if not isinstance(doc, dict):
            problems.append(f"{key}: expected an object, found {_kind(doc)}")
            return None
        vid = doc.get("id")
        if not isinstance(vid, str) or not vid:
            problems.append(f"{key}.id: expected a non-empty string, found {_kind(vid)}")
        file_ok = _check_file(doc, key, problems)
        metrics = _parse_metrics(doc.get("metrics", {}), f"{key}.metrics", problems)
        runtimes = _parse_runtimes(doc.get("runtimes", {}), f"{key}.runtimes", problems)
        files = _parse_files(doc.get("files", []), f"{key}.files", problems)
        if not (isinstance(vid, str) and vid and file_ok):
            return None
        return cls(vid, doc.get("mode"), doc.get("nbits"), doc.get("granularity"), doc["file"], doc["size"],
                   doc["sha256"], metrics, runtimes, files)


@dataclass(frozen=True)
class Source:
    """Where the float model came from: its upstream sha256 and URL (either may be None)."""

    sha256: str | None
    url: str | None

    def to_json(self) -> dict:
        return {"sha256": self.sha256, "url": self.url}


@dataclass(frozen=True)
class ModelEntry(_Entry):
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
        return VariantEntry(FLOAT_VARIANT, "float", 32, None, f.file, f.size, f.sha256, {}, self.float_runtimes)

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "task": self.task, "license": self.license,
                "parameters": self.parameters, "source": self.source.to_json() if self.source else None,
                "float": self.float.to_json() | _runtimes_json(self.float_runtimes) if self.float else None,
                "recommended": self.recommended,
                "variants": [v.to_json() for v in self.variants]}

    @classmethod
    def _parse(cls, doc: Any, key: str, problems: list[str], seen: set[str] | None = None) -> ModelEntry | None:
        if not isinstance(doc, dict):
            problems.append(f"{key}: expected an object, found {_kind(doc)}")
            return None
        mid = doc.get("id")
        ok = True
        if not isinstance(mid, str) or not mid:
            problems.append(f"{key}.id: expected a non-empty string, found {_kind(mid)}")
            ok = False
        elif seen is not None and mid in seen:
            problems.append(f"{key}.id: {mid!r} appears twice")
            ok = False
        else:
            if seen is not None:
                seen.add(mid)
            key = f"{key} ({mid})"
        flt = FileEntry._parse(doc["float"], f"{key}.float", problems) if doc.get("float") is not None else None
        float_runtimes = _parse_runtimes(doc["float"].get("runtimes", {}), f"{key}.float.runtimes", problems) \
            if isinstance(doc.get("float"), dict) else {}
        raw = doc.get("variants")
        if not isinstance(raw, list):
            problems.append(f"{key}.variants: expected a list, found {_kind(raw)}")
            return None
        n = len(problems)
        variants = [VariantEntry._parse(v, f"{key}.variants[{j}]", problems) for j, v in enumerate(raw)]
        ids = {v.get("id") for v in raw if isinstance(v, dict) and isinstance(v.get("id"), str) and v.get("id")}
        rec = doc.get("recommended")
        if rec is not None and rec not in ids:
            problems.append(f"{key}.recommended: {rec!r} is not one of its variants ({', '.join(sorted(ids)) or 'none'})")
        src = doc.get("source")
        source = Source(src.get("sha256"), src.get("url")) if isinstance(src, dict) else None
        if not ok or len(problems) > n:
            return None
        return cls(mid, doc.get("name"), doc.get("task"), doc.get("license"), doc.get("parameters"), source, flt,
                   rec, tuple(variants), float_runtimes)


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
        from . import __version__

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
            problems.append(f"models: expected a list, found {_kind(raw)}")
            raw = []
        seen: set[str] = set()
        models = [ModelEntry._parse(m, f"models[{i}]", problems, seen) for i, m in enumerate(raw)]
        if problems:
            raise _malformed(where, problems)
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
