"""The client for people who use a published catalog: `list`, `info`, `pull` and `quantzoo.load`.

A catalog is a quantzoo site (an http(s) URL or a local folder) whose root holds ``index.json``::

    {"schema_version": 1, "models": [{"id", "name", "task", "license", "parameters",
      "source": {"sha256", "url"}, "float": {"file", "size", "sha256"}, "recommended": "<variant id>",
      "variants": [{"id", "mode", "nbits", "granularity", "file", "size", "sha256",
                    "metrics": {"<output>": {"<metric>": {"mean", "std", "n"}}}}]}]}

``file`` is relative to the site root or an absolute URL. Choosing a variant is pure
(`select_variant` over the parsed document); fetching goes through `quantzoo.download` into the
content-addressed cache (``blobs/<sha256>``), then a copy lands atomically in the output folder
under the published file name. Bytes that do not match index.json never reach either place.

The *primary metric* of a model is the first of `PRIMARY_METRICS` that any of its variants
reports (on the first output, by name, that reports it). ``--max-size`` and ``--min-agreement``
rank variants by it.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlparse

from .errors import FetchError, QuantzooError, UsageError
from .units import human_size

SUPPORTED_SCHEMA_VERSIONS = (1,)
PRIMARY_METRICS = ("top1_agreement", "string_agreement", "iou", "cosine")
FLOAT_VARIANT = "float"
ENV_CATALOG = "QUANTZOO_CATALOG"

_SHA = re.compile(r"^[0-9a-f]{64}$")


# --- reading and checking index.json (pure) -------------------------------------------------

def validate_index(doc: Any, where: str) -> dict:
    """Check an index.json document against the contract; return it or raise with every problem.

    >>> validate_index({"schema_version": 1, "models": []}, "index.json")["models"]
    []
    >>> try:
    ...     validate_index({"schema_version": 7, "models": []}, "x/index.json")
    ... except QuantzooError as e:
    ...     print(str(e)[:57])
    x/index.json has schema_version 7, but this quantzoo (0.1
    """
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
    models = doc.get("models")
    if not isinstance(models, list):
        problems.append(f"models: expected a list, found {_kind(models)}")
        models = []
    seen: set[str] = set()
    for i, m in enumerate(models):
        key = f"models[{i}]"
        if not isinstance(m, dict):
            problems.append(f"{key}: expected an object, found {_kind(m)}")
            continue
        if not isinstance(m.get("id"), str) or not m.get("id"):
            problems.append(f"{key}.id: expected a non-empty string, found {_kind(m.get('id'))}")
        elif m["id"] in seen:
            problems.append(f"{key}.id: {m['id']!r} appears twice")
        else:
            seen.add(m["id"])
            key = f"models[{i}] ({m['id']})"
        if m.get("float") is not None:
            _check_file(m["float"], f"{key}.float", problems)
        variants = m.get("variants")
        if not isinstance(variants, list):
            problems.append(f"{key}.variants: expected a list, found {_kind(variants)}")
            continue
        ids = set()
        for j, v in enumerate(variants):
            vkey = f"{key}.variants[{j}]"
            if not isinstance(v, dict):
                problems.append(f"{vkey}: expected an object, found {_kind(v)}")
                continue
            if not isinstance(v.get("id"), str) or not v.get("id"):
                problems.append(f"{vkey}.id: expected a non-empty string, found {_kind(v.get('id'))}")
            else:
                ids.add(v["id"])
            _check_file(v, vkey, problems)
            metrics = v.get("metrics", {})
            if not isinstance(metrics, dict) or not all(
                    isinstance(ms, dict) and all(isinstance(x, dict) for x in ms.values()) for ms in metrics.values()):
                problems.append(f"{vkey}.metrics: expected {{output: {{metric: {{mean, std, n}}}}}}, found "
                                f"{json.dumps(metrics)[:80]}")
        rec = m.get("recommended")
        if rec is not None and rec not in ids:
            problems.append(f"{key}.recommended: {rec!r} is not one of its variants ({', '.join(sorted(ids)) or 'none'})")
    if problems:
        n = len(problems)
        raise QuantzooError(f"{where} is malformed ({n} problem{'s' if n != 1 else ''}):\n"
                            + "\n".join(f"  {p}" for p in problems)
                            + "\nThe site's index.json does not follow the quantzoo catalog contract; rebuild the "
                              "site with `quantzoo build` or report it to the catalog's maintainers.")
    return doc


def _check_file(entry: Any, key: str, problems: list[str]) -> None:
    if not isinstance(entry, dict):
        problems.append(f"{key}: expected an object with file, size and sha256, found {_kind(entry)}")
        return
    if not isinstance(entry.get("file"), str) or not entry.get("file"):
        problems.append(f"{key}.file: expected a path or URL, found {_kind(entry.get('file'))}")
    else:
        try:
            file_name(entry["file"])
        except QuantzooError as e:
            problems.append(f"{key}.file: {e}")
    size = entry.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        problems.append(f"{key}.size: expected a byte count, found {size!r}")
    sha = entry.get("sha256")
    if not isinstance(sha, str) or not _SHA.match(sha):
        problems.append(f"{key}.sha256: expected 64 lowercase hex digits, found {sha!r}")


def _kind(x: Any) -> str:
    if x is None:
        return "nothing"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(x), type(x).__name__) + (f" {x!r}" if isinstance(x, (str, int, float)) else "")


def parse_index(data: bytes, where: str) -> dict:
    """index.json bytes -> the validated document (see `validate_index`).

    >>> parse_index(b'{"schema_version": 1, "models": []}', "index.json")["schema_version"]
    1
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
    return validate_index(doc, where)


# --- choosing a variant (pure) --------------------------------------------------------------

def find_model(doc: dict, model_id: str, where: str = "the catalog") -> dict:
    """The model entry with this id, or an error listing the ids that exist.

    >>> find_model({"models": [{"id": "a", "variants": []}]}, "a")["id"]
    'a'
    """
    for m in doc["models"]:
        if m["id"] == model_id:
            return m
    ids = [m["id"] for m in doc["models"]]
    hint = _did_you_mean(model_id, ids)
    raise QuantzooError(f"no model {model_id!r} in {where}.{hint} Models there: {', '.join(ids) or 'none'}. "
                        "`quantzoo list` shows them with their tasks.")


def _did_you_mean(name: str, choices: list[str]) -> str:
    """A hint naming the closest choice: one that starts with `name`, else a near spelling.

    >>> _did_you_mean("magika", ["ppocr-v4-det", "magika-standard-v3"]), _did_you_mean("zzz", ["a"])
    (" Did you mean 'magika-standard-v3'?", '')
    """
    starts = [c for c in choices if c.startswith(name)]
    close = starts[:1] if len(starts) == 1 else difflib.get_close_matches(name, choices, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def primary_metric(model: dict) -> tuple[str, str] | None:
    """(output, metric) that ranks this model's variants: the first of `PRIMARY_METRICS` any
    variant reports, on the first output (by name) reporting it; None when it has none of them.

    >>> primary_metric({"variants": [{"metrics": {"map": {"cosine": {"mean": 1}, "iou": {"mean": 1}}}}]})
    ('map', 'iou')
    """
    for metric in PRIMARY_METRICS:
        outputs = sorted({out for v in model.get("variants", [])
                          for out, ms in (v.get("metrics") or {}).items() if metric in ms})
        if outputs:
            return outputs[0], metric
    return None


def agreement(variant: dict, key: tuple[str, str] | None) -> float | None:
    """The mean of the (output, metric) `key` for a variant, or None when it was not measured.

    >>> agreement({"metrics": {"y": {"iou": {"mean": 0.9}}}}, ("y", "iou"))
    0.9
    """
    if key is None:
        return None
    try:
        value = variant["metrics"][key[0]][key[1]]["mean"]
    except (KeyError, TypeError):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return float(value)


def float_entry(model: dict) -> dict | None:
    """The float original as a pseudo-variant named `FLOAT_VARIANT` (no metrics), if published."""
    f = model.get("float")
    if not f:
        return None
    return {"id": FLOAT_VARIANT, "mode": "float", "nbits": 32, "granularity": None, "metrics": {}, **f}


def select_variant(model: dict, *, variant: str | None = None, max_size: int | None = None,
                   min_agreement: float | None = None) -> dict:
    """The variant entry `pull` takes for these choices (at most one of them is given):

    - nothing: the model's recommended variant;
    - `variant`: that id (``float`` is the original, unless a variant has that id);
    - `max_size`: the most agreeing variant of at most that many bytes (ties: the smaller file);
    - `min_agreement`: the smallest variant whose primary metric is at least that (ties: the more
      agreeing one).

    Variants without a measured primary metric are never chosen by a constraint. Ties left after
    that go to the variant listed first.

    >>> m = {"id": "m", "recommended": "b", "variants": [
    ...     {"id": "a", "size": 100, "metrics": {"y": {"top1_agreement": {"mean": 1.0}}}},
    ...     {"id": "b", "size": 30, "metrics": {"y": {"top1_agreement": {"mean": 0.99}}}},
    ...     {"id": "c", "size": 20, "metrics": {"y": {"top1_agreement": {"mean": 0.9}}}}]}
    >>> [select_variant(m)["id"], select_variant(m, max_size=50)["id"], select_variant(m, min_agreement=0.95)["id"]]
    ['b', 'b', 'b']
    """
    chosen = [name for name, value in (("variant", variant), ("max_size", max_size),
                                        ("min_agreement", min_agreement)) if value is not None]
    if len(chosen) > 1:
        raise UsageError(f"choose a variant one way only; got {' and '.join(chosen)}.")
    variants = model.get("variants", [])
    mid = model["id"]
    listing = ", ".join(v["id"] for v in variants) or "none"
    if variant is not None:
        for v in variants:
            if v["id"] == variant:
                return v
        if variant == FLOAT_VARIANT and float_entry(model):
            return float_entry(model)
        hint = _did_you_mean(variant, [v["id"] for v in variants])
        extra = f" (or {FLOAT_VARIANT!r} for the original)" if float_entry(model) else ""
        raise QuantzooError(f"model {mid!r} has no variant {variant!r}.{hint} Its variants: {listing}{extra}.")
    if max_size is None and min_agreement is None:
        rec = model.get("recommended")
        for v in variants:
            if v["id"] == rec:
                return v
        raise QuantzooError(
            f"model {mid!r} has no recommended variant (none met the catalog's agreement threshold). "
            f"Choose one with --variant (its variants: {listing}), --max-size or --min-agreement; "
            f"`quantzoo info {mid}` shows their sizes and metrics.")

    key = primary_metric(model)
    if key is None:
        raise QuantzooError(
            f"model {mid!r} reports none of the metrics --max-size and --min-agreement rank by "
            f"({', '.join(PRIMARY_METRICS)}). Choose with --variant (its variants: {listing}).")
    label = _metric_label(key)
    measured = [(i, v, agreement(v, key)) for i, v in enumerate(variants)]
    measured = [(i, v, a) for i, v, a in measured if a is not None]
    if max_size is not None:
        fits = [(i, v, a) for i, v, a in measured if v["size"] <= max_size]
        if not fits:
            smallest = min(measured, key=lambda t: (t[1]["size"], t[0]))[1]
            raise QuantzooError(
                f"no variant of {mid!r} is at most {max_size} bytes ({human_size(max_size)}); the smallest is "
                f"{smallest['id']!r} at {smallest['size']} bytes ({human_size(smallest['size'])}) with {label} "
                f"{_fmt(agreement(smallest, key))}. Raise --max-size to at least {smallest['size']}.")
        return min(fits, key=lambda t: (-t[2], t[1]["size"], t[0]))[1]
    meets = [(i, v, a) for i, v, a in measured if a >= min_agreement]
    if not meets:
        best = min(measured, key=lambda t: (-t[2], t[1]["size"], t[0]))
        raise QuantzooError(
            f"no variant of {mid!r} reaches {label} >= {min_agreement:g}; the best is {best[1]['id']!r} with "
            f"{_fmt(best[2])} ({best[1]['size']} bytes). Lower --min-agreement to at most {best[2]:g}.")
    return min(meets, key=lambda t: (t[1]["size"], -t[2], t[0]))[1]


def _metric_label(key: tuple[str, str]) -> str:
    return f"{key[1]} of output {key[0]!r}"


def _fmt(value: float | None) -> str:
    return "unmeasured" if value is None else f"{value:.6g}"


def file_name(file: str) -> str:
    """The published file name: the last path segment of `file` (a site path or a URL).

    >>> file_name("files/m/m-kmeans-4.onnx"), file_name("https://cdn.example/zoo/m/m%20x.onnx?sig=1")
    ('m-kmeans-4.onnx', 'm x.onnx')
    >>> file_name("files/m/")
    Traceback (most recent call last):
    ...
    quantzoo.errors.QuantzooError: 'files/m/' does not end in a file name
    """
    path = urlparse(file).path if _is_url(file) else file
    name = unquote(path.rsplit("/", 1)[-1])
    if not name or name in (".", "..") or any(c in name for c in "/\\\x00"):
        raise QuantzooError(f"{file!r} does not end in a file name")
    return name


def _is_url(s: str) -> bool:
    return urlparse(str(s)).scheme.lower() in ("http", "https")


def resolve(base: str | Path, file: str) -> str | Path:
    """Where a `file` of index.json lives: an absolute URL as is, else joined to the site root.

    >>> resolve("http://h/zoo/", "files/m/a.onnx"), resolve("http://h/zoo/", "https://cdn/a.onnx")
    ('http://h/zoo/files/m/a.onnx', 'https://cdn/a.onnx')
    >>> resolve(Path("/srv/site"), "files/m/a.onnx").as_posix()
    '/srv/site/files/m/a.onnx'
    """
    if _is_url(file):
        return file
    if isinstance(base, Path):
        target = (base / file).resolve()
        try:
            target.relative_to(base.resolve())
        except ValueError:
            raise QuantzooError(f"{file!r} points outside the catalog folder {base}; refusing to read it.") from None
        return target
    return urljoin(base, file)


# --- I/O: opening a catalog -----------------------------------------------------------------

@dataclass(frozen=True)
class Catalog:
    """A parsed catalog: where it is (`base`: a URL ending in / or a folder) and its index.json."""

    base: str | Path
    index: str
    doc: dict

    @property
    def models(self) -> list[dict]:
        return self.doc["models"]

    def model(self, model_id: str) -> dict:
        return find_model(self.doc, model_id, self.index)


def catalog_location(catalog: str | os.PathLike | None) -> str | Path:
    """The catalog to read: the argument, else ``$QUANTZOO_CATALOG``; a URL (str) or a folder (Path)."""
    value = catalog if catalog not in (None, "") else os.environ.get(ENV_CATALOG)
    if not value:
        raise UsageError(f"no catalog given: pass --catalog URL (an http(s) address or a local site folder) "
                         f"or set {ENV_CATALOG}.")
    value = os.fspath(value)
    scheme = urlparse(value).scheme.lower()
    if scheme in ("http", "https"):
        return value
    if scheme == "file":
        return Path(unquote(urlparse(value).path))
    if scheme and len(scheme) > 1:  # one letter is a Windows drive
        raise UsageError(f"catalog {value!r}: expected an http(s) URL or a local folder, found a {scheme}: address.")
    return Path(value).expanduser()


def open_catalog(catalog: str | os.PathLike | None = None, *, timeout: float = 30.0, retries: int = 2) -> Catalog:
    """Read and check a catalog's index.json (see `catalog_location` for what `catalog` may be)."""
    loc = catalog_location(catalog)
    if isinstance(loc, Path):
        index = loc if loc.is_file() else loc / "index.json"
        if not loc.exists():
            raise QuantzooError(f"catalog folder {loc} does not exist. Pass the folder of a built site "
                                f"(the one holding index.json) or its http(s) URL.")
        if not index.is_file():
            raise QuantzooError(f"{loc} has no index.json: expected {index}. Is it a quantzoo site "
                                "(built with `quantzoo build`)?")
        return Catalog(base=index.parent, index=str(index), doc=parse_index(index.read_bytes(), str(index)))
    if urlparse(loc).path.endswith("/index.json"):
        index = loc
        base = loc[: -len("index.json")]
    else:
        base = loc if loc.endswith("/") else loc + "/"
        index = urljoin(base, "index.json")
    return Catalog(base=base, index=index, doc=parse_index(_get(index, timeout, retries), index))


def _get(url: str, timeout: float, retries: int) -> bytes:
    import time

    import requests

    from .download import RETRY_STATUS

    last = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(0.5 * 2 ** (attempt - 1))
        try:
            r = requests.get(url, timeout=timeout, headers={"Accept": "application/json"})
        except (requests.ConnectionError, requests.Timeout) as e:
            last = f"cannot reach {url}: {e.__class__.__name__}: {e}"
            continue
        except requests.RequestException as e:
            raise QuantzooError(f"cannot read {url}: {e}") from None
        if r.status_code in RETRY_STATUS:
            last = f"HTTP {r.status_code} {r.reason} from {url}"
            continue
        if r.status_code == 404:
            raise QuantzooError(f"no index.json at {url} (HTTP 404). Is the catalog URL the root of a quantzoo "
                                "site (the folder that holds index.json)?")
        if r.status_code >= 400:
            raise QuantzooError(f"HTTP {r.status_code} {r.reason} from {url}: the catalog's index.json "
                                "could not be read.")
        return r.content
    raise QuantzooError(f"{last} (after {retries + 1} attempts). Check the catalog URL and your connection.")


# --- I/O: fetching a variant ----------------------------------------------------------------

def fetch_entry(cat: Catalog, entry: dict, cache=None, *, progress: bool | None = None) -> Path:
    """The verified bytes of one index.json file entry in the cache (``blobs/<sha256>``)."""
    from .cache import Cache, atomic_path, sha256_file
    from .download import download

    cache = cache if isinstance(cache, Cache) else Cache(cache)
    sha, size = entry["sha256"], entry["size"]
    blob = cache.blob(sha)
    where = resolve(cat.base, entry["file"])
    with cache.lock(f"blob-{sha}"):
        if blob.is_file() and blob.stat().st_size == size:
            return blob
        if isinstance(where, Path):
            if not where.is_file():
                raise QuantzooError(f"{where} is listed in {cat.index} but is missing from the catalog folder.")
            with atomic_path(blob) as tmp:
                shutil.copyfile(where, tmp)
                got, got_size = sha256_file(tmp), tmp.stat().st_size
                if got != sha or got_size != size:
                    raise _mismatch(str(where), sha, size, got, got_size)
            return blob
        try:
            return download(where, blob, sha, size, progress=progress)
        except FetchError as e:
            raise type(e)(f"{e}\n(listed in {cat.index})") from None


def _mismatch(where: str, sha: str, size: int, got: str, got_size: int) -> QuantzooError:
    from .errors import ChecksumError

    return ChecksumError(
        f"{where} does not match index.json: expected sha256 {sha} ({size} bytes) but got {got} "
        f"({got_size} bytes). Nothing was kept. The catalog's file is damaged or was replaced: tell its "
        "maintainers, or rebuild the site.")


def deliver(blob: Path, dest: Path) -> Path:
    """Put a copy of a cached blob at `dest` atomically (kept as is when it already matches)."""
    from .cache import atomic_path, sha256_file

    if dest.is_file() and dest.stat().st_size == blob.stat().st_size and sha256_file(dest) == blob.name:
        return dest
    with atomic_path(dest) as tmp:
        shutil.copyfile(blob, tmp)
    return dest


def pull(model: str, variant: str | None = None, *, max_size: int | None = None,
         min_agreement: float | None = None, catalog: str | os.PathLike | None = None,
         output_dir: str | os.PathLike | None = None, cache=None, progress: bool | None = None) -> Path:
    """Fetch one variant of `model` (chosen by `select_variant`) and return its local path.

    With `output_dir` the file lands there under its published name; without, the path is the
    verified blob in the cache. Example (needs a catalog)::

        path = pull("magika-standard-v3", max_size=500_000, catalog="https://example.org/zoo/", output_dir=".")
    """
    _check_constraints(max_size, min_agreement)
    cat = open_catalog(catalog)
    entry = select_variant(cat.model(model), variant=variant, max_size=max_size, min_agreement=min_agreement)
    blob = fetch_entry(cat, entry, cache, progress=progress)
    if output_dir is None:
        return blob
    return deliver(blob, Path(output_dir) / file_name(entry["file"]))


def _check_constraints(max_size: int | None, min_agreement: float | None) -> None:
    if max_size is not None and max_size < 0:
        raise UsageError(f"--max-size must be a byte count >= 0, got {max_size}.")
    if min_agreement is not None and not -1.0 <= min_agreement <= 1.0:
        raise UsageError(f"--min-agreement is a fraction such as 0.99 (metrics range over [-1, 1]), "
                         f"got {min_agreement:g}{'; write percentages as fractions' if min_agreement > 1 else ''}.")


def load(model: str, variant: str | None = None, *, catalog: str | os.PathLike | None = None,
         session: bool = False, max_size: int | None = None, min_agreement: float | None = None,
         cache=None, output_dir: str | os.PathLike | None = None):
    """A verified variant of `model` from a catalog: its local path, or an onnxruntime session.

    Without `variant` (or a constraint) it is the recommended one; `catalog` defaults to
    ``$QUANTZOO_CATALOG``. The path is the content-addressed file in the cache unless
    `output_dir` is given. Example (needs a catalog)::

        import quantzoo
        sess = quantzoo.load("magika-standard-v3", "kmeans-4", catalog="https://example.org/zoo/", session=True)
        sess.run(None, {"bytes": x})
    """
    path = pull(model, variant, max_size=max_size, min_agreement=min_agreement, catalog=catalog,
                output_dir=output_dir, cache=cache, progress=False)
    if not session:
        return path
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


# --- the commands ---------------------------------------------------------------------------

def _console():
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160, highlight=False, soft_wrap=False)


def _model_size_text(m: dict) -> str:
    return human_size((m.get("float") or {}).get("size"))


def cli_list(args) -> int:
    """`quantzoo list`: one row per model of the catalog (optionally of one task)."""
    from rich.markup import escape as e
    from rich.table import Table

    cat = open_catalog(args.catalog)
    models = cat.models
    if args.task:
        models = [m for m in models if m.get("task") == args.task]
        if not models:
            tasks = sorted({str(m.get("task")) for m in cat.models})
            raise QuantzooError(f"no model in {cat.index} has task {args.task!r}; its tasks: "
                                f"{', '.join(tasks) or 'none'}.")
    table = Table(title=e(f"{len(models)} model{'s' if len(models) != 1 else ''} in {cat.index}"),
                  title_justify="left")
    for col, just in (("id", "left"), ("task", "left"), ("parameters", "right"), ("float size", "right"),
                      ("recommended", "left"), ("size", "right"), ("ratio", "right")):
        table.add_column(col, justify=just, no_wrap=col in ("id", "recommended"))
    for m in models:
        rec = next((v for v in m["variants"] if v["id"] == m.get("recommended")), None)
        fsize = (m.get("float") or {}).get("size")
        table.add_row(e(m["id"]), e(str(m.get("task") or "–")), _count(m.get("parameters")), _model_size_text(m),
                      e(rec["id"]) if rec else "none", human_size(rec["size"]) if rec else "–",
                      f"{rec['size'] / fsize:.1%}" if rec and fsize else "–")
    _console().print(table)
    return 0


def _count(n: Any) -> str:
    if not isinstance(n, int) or isinstance(n, bool):
        return "–"
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.3g}k"
    return f"{n / 1e6:.3g}M"


def _metric_text(metric: str, value: float | None) -> str:
    if value is None:
        return "–"
    if metric.endswith("_db"):
        return f"{value:.1f} dB" if value != float("inf") else "∞ dB"
    if metric in ("top1_agreement", "top5_agreement", "string_agreement", "iou", "accuracy_quantized",
                  "accuracy_float", "cer", "cer_labels"):
        return f"{value * 100:.2f} %"
    return f"{value:.5g}"


def cli_info(args) -> int:
    """`quantzoo info MODEL`: the model's facts and every variant with its size and metrics."""
    from rich.markup import escape as e
    from rich.table import Table

    cat = open_catalog(args.catalog)
    m = cat.model(args.model)
    con = _console()
    src = m.get("source") or {}
    flt = m.get("float") or {}
    key = primary_metric(m)
    con.print(f"[bold]{e(m['id'])}[/bold]  {e(str(m.get('name') or ''))}".rstrip(), markup=True)
    for label, value in (("task", m.get("task")), ("license", m.get("license")),
                         ("parameters", _count(m.get("parameters")) if m.get("parameters") else None),
                         ("source", src.get("url")), ("source sha256", src.get("sha256")),
                         ("float", f"{human_size(flt.get('size'))}  sha256 {flt.get('sha256')}" if flt else None),
                         ("recommended", m.get("recommended") or "none"),
                         ("ranked by", f"{key[1]} ({key[0]})" if key else "no primary metric")):
        if value:
            con.print(f"  {label + ':':15}{value}", markup=False)
    columns = sorted({(out, met) for v in m["variants"] for out, ms in (v.get("metrics") or {}).items()
                      for met in ms},
                     key=lambda c: (c != key, c[0], PRIMARY_METRICS.index(c[1]) if c[1] in PRIMARY_METRICS
                                    else len(PRIMARY_METRICS), c[1]))
    multi = len({c[0] for c in columns}) > 1
    table = Table(title=f"{len(m['variants'])} variants", title_justify="left")
    for col, just in (("variant", "left"), ("mode", "left"), ("bits", "right"), ("size", "right"),
                      ("ratio", "right")):
        table.add_column(col, justify=just, no_wrap=col == "variant")
    for out, met in columns:
        table.add_column(e(f"{met} ({out})" if multi else met), justify="right")
    for v in m["variants"]:
        mark = " *" if v["id"] == m.get("recommended") else ""
        cells = [_metric_text(met, agreement(v, (out, met))) for out, met in columns]
        table.add_row(e(v["id"]) + mark, e(str(v.get("mode") or "–")), e(str(v.get("nbits") or "–")), human_size(v["size"]),
                      f"{v['size'] / flt['size']:.1%}" if flt.get("size") else "–", *cells)
    con.print(table)
    con.print("* recommended.  `quantzoo pull " + m["id"] + " --variant V` downloads one.", markup=False)
    return 0


def cli_pull(args) -> int:
    """`quantzoo pull MODEL`: download the chosen variant into DIR and print its path."""
    _check_constraints(args.max_size, args.min_agreement)
    cat = open_catalog(args.catalog)
    m = cat.model(args.model)
    entry = select_variant(m, variant=args.variant, max_size=args.max_size, min_agreement=args.min_agreement)
    blob = fetch_entry(cat, entry, args.cache)
    dest = deliver(blob, Path(args.output_dir) / file_name(entry["file"]))
    key = primary_metric(m)
    value = agreement(entry, key)
    note = f", {key[1]} {value:.4g}" if value is not None else ""
    print(f"{m['id']} {entry['id']}: {human_size(entry['size'])}{note}, sha256 {entry['sha256'][:12]}… verified",
          file=sys.stderr)
    print(dest.resolve())
    return 0
