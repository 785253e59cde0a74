"""Named samples: a classifier's top label and probability on a few photographs the manifest
names (``samples: [coffee.png, …]``), for the float model and every variant, side by side.

Aggregate agreement says how often a variant changes its mind; this says what it says on one
photograph a reader can look at. `top_label` is the pure core; `named_predictions` runs the
models on only the named samples (the unchanged view of each photo) and caches the result.

    {"output": "logits", "samples": ["coffee.png", …],
     "models": {"float": {"coffee.png": {"index": 967, "label": "espresso", "probability": 0.96}, …},
                "kmeans-4": {…}, …}}
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..cache import Cache, key_of, sha256_file, write_json
from ..errors import QuantzooError
from .datasets import DATASET_ADAPTERS
from .inputs import InputSpec
from .preprocess import PREPROCESSORS
from .tasks import TASKS

VERSION = 1


def probabilities(row: np.ndarray) -> np.ndarray:
    """`row` as probabilities: kept when it already is a distribution, else a softmax of it.

    >>> probabilities(np.array([0.25, 0.75])).tolist()
    [0.25, 0.75]
    >>> [round(p, 4) for p in probabilities(np.array([0.0, np.log(3.0)])).tolist()]
    [0.25, 0.75]
    """
    r = np.asarray(row, dtype=np.float64).ravel()
    if r.size and r.min() >= 0 and abs(r.sum() - 1.0) < 1e-3:
        return r
    e = np.exp(r - r.max())
    return e / e.sum()


def top_label(row: np.ndarray, names: list[str] | None) -> dict:
    """The top class of one output row: index, label (when the model has names) and probability.

    >>> top_label(np.array([1.0, 3.0, 0.0]), ["cat", "dog", "fox"])
    {'index': 1, 'label': 'dog', 'probability': 0.8438}
    """
    p = probabilities(row)
    i = int(np.argmax(p))
    label = names[i] if names and i < len(names) else str(i)
    return {"index": i, "label": label, "probability": round(float(p[i]), 4)}


def find_named(keys: list[str], names: list[str]) -> list[tuple[str, int]]:
    """(name, sample index) for each name that is a sample's key, or the key's last path part.

    >>> find_named(["a/coffee.png", "coffee.png#flip", "cat.png"], ["coffee.png", "dog.png", "cat.png"])
    [('coffee.png', 0), ('cat.png', 2)]
    """
    out = []
    for name in names:
        for i, k in enumerate(keys):
            if k == name or k.endswith("/" + name):
                out.append((name, i))
                break
    return out


def _feeds(model, registry, cache: Cache, specs: list[InputSpec]) -> tuple[list[str], list[dict]]:
    """The names found among the dataset's samples, and each one's feed (a batch of one)."""
    from ..fetch import fetch_source

    ds = registry.dataset(model.dataset)
    root = fetch_source(ds.source, cache, base_dir=ds.path.parent if ds.path else None)
    params = {**(ds.params or {}), "labels": ds.labels}
    samples = DATASET_ADAPTERS[ds.adapter].read(root, params, [])
    found = find_named([s.key for s in samples], list(model.samples or []))
    if not found:
        raise QuantzooError(f"{model.path}: samples: none of {model.samples} is a sample of dataset {ds.id!r}; "
                            f"name photographs by their key (e.g. {samples[0].key if samples else 'file.png'})")
    pre = model.preprocessing
    fn = PREPROCESSORS[pre["adapter"]].preprocess
    feeds = [fn(samples[i].data, pre.get("params") or {}, specs) for _, i in found]
    return [n for n, _ in found], [{k: v[None] for k, v in f.items()} for f in feeds]


def named_predictions(model, float_path: Path, variant_paths: dict[str, Path], registry,
                      cache: Cache | None = None) -> dict | None:
    """Top label + probability of the float model and each variant on `model.samples` (cached).

    None for models whose task has no named preview (`tasks.Task.preview`) or that name no samples.

    >>> named_predictions(m, float_path, {"kmeans-4": art}, reg)["models"]["float"]["coffee.png"]  # doctest: +SKIP
    {'index': 967, 'label': 'espresso', 'probability': 0.96}
    """
    import onnxruntime as ort

    from .sources import model_labels

    task = TASKS.get(model.task)
    if task is None or task.preview != "named" or not model.samples:
        return None
    cache = cache if isinstance(cache, Cache) else Cache(cache)
    output = model.threshold["output"]
    shas = {"float": sha256_file(float_path), **{vid: sha256_file(p) for vid, p in sorted(variant_paths.items())}}
    key = key_of("named", VERSION, shas, list(model.samples), model.preprocessing, model.labels, output,
                 model.dataset, registry.dataset(model.dataset).source.get("sha256"))
    dest = cache.derived("named", key, ".json")
    if dest.is_file():
        import json

        return json.loads(dest.read_text(encoding="utf-8"))
    from ..customops import run, session_options
    from .core import model_custom_ops

    ops = model_custom_ops(model, cache)

    def session(path):
        return ort.InferenceSession(str(path), session_options(ops, path) if ops else None,
                                    providers=["CPUExecutionProvider"])

    sess = session(float_path)
    specs = [InputSpec(i.name, i.type, tuple(d if isinstance(d, int) else None for d in i.shape))
             for i in sess.get_inputs()]
    names, feeds = _feeds(model, registry, cache, specs)
    labels = model_labels(model, sess, cache)
    result: dict = {"output": output, "samples": names, "models": {}}
    paths = {"float": float_path, **dict(sorted(variant_paths.items()))}
    for vid, path in paths.items():
        s = sess if vid == "float" else session(path)
        result["models"][vid] = {n: top_label(run(s, [output], f)[0][0], labels) for n, f in zip(names, feeds)}
    write_json(dest, result)
    return result
