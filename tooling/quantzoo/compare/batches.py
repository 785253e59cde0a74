"""Preprocessed batches and the float model's outputs: the state every variant is compared
against, and its cache file (``derived/float-outputs/<key>.npz``)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import QuantzooError
from .datasets import Sample
from .inputs import InputSpec
from .preprocess import PREPROCESSORS
from .sources import Source


@dataclass
class Prepared:
    """Everything a variant is compared against: input batches, sample keys/labels, float outputs."""

    batches: list[dict]
    keys: list[str]
    labels: list[str | None]
    skipped: list[tuple[str, str]]
    reference: list[list[np.ndarray]]  # [output][batch] -> reduced float output


def check_feed(feed: dict, specs: list[InputSpec], key: str, model_file: str, unbatched=()) -> None:
    """Raise a clear error when a preprocessed sample does not fit the model's inputs. An input
    named in `unbatched` has no batch axis: the sample's value is its whole shape.

    >>> check_feed({"x": np.zeros((3, 8))}, [InputSpec("x", "tensor(float)", (None, 3, 9))], "s", "m.onnx")
    Traceback (most recent call last):
    quantzoo.errors.QuantzooError: input 'x' of m.onnx takes shape [N, 3, 9] but sample 's' was preprocessed to [N, 3, 8]; check the preprocessing adapter and its params (size, height/width, layout) against the model's input
    """
    for spec in specs:
        a = feed.get(spec.name)
        if a is None:
            raise QuantzooError(f"sample {key!r} gives no value for input {spec.name!r} of {model_file}")
        want = spec.shape if spec.name in unbatched else spec.shape[1:]
        ok = a.ndim == len(want) and all(w is None or w == d for w, d in zip(want, a.shape))
        if not ok:
            shown = ["N", *("?" if d is None else d for d in want)]
            raise QuantzooError(
                f"input {spec.name!r} of {model_file} takes shape [{', '.join(map(str, shown))}] but sample "
                f"{key!r} was preprocessed to [N, {', '.join(map(str, a.shape))}]; check the preprocessing "
                "adapter and its params (size, height/width, layout) against the model's input")


def stack(feeds: list[dict], batch_size: int) -> list[dict]:
    """Consecutive feeds stacked into batches of at most `batch_size`, a new batch wherever the
    shapes change (so variable-size images batch one by one).

    >>> [b["x"].shape for b in stack([{"x": np.zeros(2)}] * 3 + [{"x": np.zeros(5)}], 2)]
    [(2, 2), (1, 2), (1, 5)]
    """
    out, run = [], []

    def flush():
        if run:
            out.append({k: np.stack([f[k] for f in run]) for k in run[0]})
            run.clear()

    for f in feeds:
        if run and (len(run) >= batch_size or any(f[k].shape != run[0][k].shape for k in f)):
            flush()
        run.append(f)
    flush()
    return out


def unbatched_inputs(params: dict, specs: list[InputSpec], model_file: str) -> tuple[str, ...]:
    """The inputs a preprocessing's ``unbatched`` param names: inputs without a batch axis (a
    style vector ``[26]`` beside an image ``[1, 3, H, W]``). They are stored in the batches with
    a sample axis like every input, and fed without it (`model_feed`); the batch size is then 1.

    >>> unbatched_inputs({"unbatched": ["w"]}, [InputSpec("w", "tensor(float)", (26,))], "m.onnx")
    ('w',)
    """
    names = tuple(params.get("unbatched") or ())
    known = {s.name for s in specs}
    for n in names:
        if n not in known:
            raise QuantzooError(f"preprocessing params.unbatched names {n!r}, which is not an input of {model_file}; "
                                f"its inputs are {', '.join(sorted(known))}")
    return names


def model_feed(batch: dict, unbatched=()) -> dict:
    """What a session is fed for one stored batch: inputs in `unbatched` lose their sample axis
    (their batch holds one sample).

    >>> {k: v.shape for k, v in model_feed({"x": np.zeros((1, 3)), "w": np.zeros((1, 26))}, ("w",)).items()}
    {'x': (1, 3), 'w': (26,)}
    """
    return {k: (v[0] if k in unbatched else v) for k, v in batch.items()} if unbatched else batch


def preprocess_source(source: Source, adapter: str, params: dict, specs: list[InputSpec], model_file: str,
                      batch_size: int, unbatched=()) -> tuple[list[dict], list[Sample], list]:
    """Read the samples of `source`, preprocess each with `adapter` and stack them into batches."""
    samples, skipped = source.load()
    if not samples:
        first = f" ({len(skipped)} skipped, first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise QuantzooError(f"no usable samples in {source.describe}{first}; check the data and the "
                            "dataset's include/exclude params")
    fn = PREPROCESSORS[adapter].preprocess
    feeds = []
    for s in samples:
        feed = fn(s.data, params, specs)
        check_feed(feed, specs, s.key, model_file, unbatched)
        feeds.append(feed)
    return stack(feeds, batch_size), samples, skipped


def save_prepared(path: Path, p: Prepared, input_names: list[str]) -> None:
    from ..cache import atomic_path

    arrays = {f"in{k}_b{i}": b[name] for i, b in enumerate(p.batches) for k, name in enumerate(input_names)}
    arrays.update({f"out{j}_b{i}": a for j, per in enumerate(p.reference) for i, a in enumerate(per)})
    meta = {"keys": p.keys, "labels": p.labels, "skipped": [list(x) for x in p.skipped],
            "batches": len(p.batches), "inputs": input_names, "outputs": len(p.reference)}
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.getvalue())


def load_prepared(path: Path, input_names: list[str], n_outputs: int) -> Prepared | None:
    """The state saved by `save_prepared`, or None when unreadable or of another layout."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta["inputs"] != input_names or meta["outputs"] != n_outputs:
                return None
            nb = meta["batches"]
            batches = [{name: z[f"in{k}_b{i}"] for k, name in enumerate(input_names)} for i in range(nb)]
            ref = [[z[f"out{j}_b{i}"] for i in range(nb)] for j in range(n_outputs)]
    except (OSError, KeyError, ValueError):
        return None  # unreadable or another layout: recompute and overwrite
    return Prepared(batches, meta["keys"], meta["labels"], [tuple(x) for x in meta["skipped"]], ref)
