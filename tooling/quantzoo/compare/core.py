"""Run an original and a compressed model on the same samples and measure how well they agree.

`prepare` does everything that does not depend on the compressed model once: resolve the data
(a dataset id, a folder, or a list of input dicts), preprocess every sample into batches, and
get the float model's outputs — from the cache when this model, data, preprocessing and tool
version were seen before (``derived/float-outputs/<key>.npz``), else by running it and caching
them. `Evaluation.compare` then runs one compressed model and computes the metrics; the
pipeline calls it once per variant. `compare_models` is both steps in one call.

The float and quantized models run with the same session options and the same batches, so a
difference is the compression's, not the runtime's (DESIGN.md: kernels differ by ~6e-6 between
optimization levels and can differ between batch sizes).
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..cache import Cache, key_of, sha256_bytes, sha256_file, tree_listing, tree_sha256
from ..errors import QuantzooError, UsageError
from . import adapters as A
from . import metrics as M

SCHEMA_VERSION = 1
DEFAULT_BATCH_SIZE = 32

Progress = Callable[[str, int, int], None]


# --- results --------------------------------------------------------------------------------

@dataclass
class Comparison:
    """The result of one comparison. `metrics` maps output name -> metric -> {mean, std, n}.

    `to_dict()` is the JSON document (``schema_version`` 1). Everything in it but ``timings``
    is the same, byte for byte, for the same models and data.
    """

    model: str | None
    task: str | None
    dataset: dict
    metrics: dict[str, dict[str, dict]]
    sizes: dict
    original: dict
    quantized: dict
    timings: dict = field(default_factory=dict)

    def to_dict(self, timings: bool = True) -> dict:
        doc = {"schema_version": SCHEMA_VERSION, "model": self.model, "task": self.task,
               "dataset": self.dataset, "outputs": self.metrics, "sizes": self.sizes,
               "original": self.original, "quantized": self.quantized}
        if timings:
            doc["timings"] = self.timings
        return doc

    def table(self) -> str:
        """The metrics as an aligned text table: output, metric, mean, std, n."""
        rows = [("output", "metric", "mean", "std", "n")]
        for out, ms in self.metrics.items():
            for name, s in ms.items():
                rows.append((out, name, _fmt(s["mean"]), _fmt(s["std"]), str(s["n"])))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = []
        for j, r in enumerate(rows):
            cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1])] + [c.rjust(w) for c, w in zip(r[2:], widths[2:])]
            lines.append("  ".join(cells).rstrip())
            if j == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)


def _fmt(x) -> str:
    if x is None:
        return "-"
    if x == 0 or 1e-3 <= abs(x) < 1e5:
        return f"{x:.4f}"
    return f"{x:.3e}"


# --- sessions ---------------------------------------------------------------------------------

def _session(path: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
        raise QuantzooError(f"onnxruntime cannot load {path}: {str(e).splitlines()[0][:300]}; "
                            "check that the file is an ONNX model (quantzoo fetch re-verifies cached models)") from None


def _input_specs(sess) -> list[A.InputSpec]:
    return [A.InputSpec(i.name, i.type, tuple(d if isinstance(d, int) else None for d in i.shape))
            for i in sess.get_inputs()]


def _signature(sess) -> tuple:
    return (tuple((i.name, i.type, len(i.shape)) for i in sess.get_inputs()),
            tuple(o.name for o in sess.get_outputs()))


def _model_info(path: Path) -> dict:
    return {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}


# --- data ---------------------------------------------------------------------------------------

@dataclass
class _Source:
    """Where the samples come from, known before any sample is read: an identity for the cache
    key, a description for the result, and `load` to read the samples (only on a cache miss)."""

    identity: dict
    describe: dict
    load: Callable[[], tuple[list[A.Sample], list[tuple[str, str]]]]


def _resolve_registry(registry):
    from ..registry import Registry, load_registry

    if isinstance(registry, Registry):
        return registry
    return load_registry(registry)


def _dataset_source(ds, cache: Cache, limit: int | None) -> _Source:
    if ds.adapter not in A.DATASET_ADAPTERS:
        raise QuantzooError(f"{ds.path}: adapter: unknown dataset adapter {ds.adapter!r}; "
                            f"known: {', '.join(A.DATASET_ADAPTERS)}")
    params = {**(ds.params or {}), "labels": ds.labels}
    if limit:
        params["limit"] = min(limit, params.get("limit") or limit)

    def load():
        from ..fetch import fetch_source

        root = fetch_source(ds.source, cache, base_dir=ds.path.parent if ds.path else None)
        skipped: list = []
        return A.thin(A.DATASET_ADAPTERS[ds.adapter](root, params, skipped), limit), skipped

    identity = {"dataset": ds.id, "source": ds.source, "adapter": ds.adapter, "params": params}
    return _Source(identity, {"id": ds.id}, load)


def _folder_source(folder: Path, adapter: str, labels: Any, limit: int | None) -> _Source:
    if not folder.exists():
        raise UsageError(f"no such file or folder: {folder}; --data takes a folder of samples")
    params = {"labels": labels}
    if limit:
        params["limit"] = limit

    def load():
        skipped: list = []
        return A.thin(A.DATASET_ADAPTERS[adapter](folder, params, skipped), limit), skipped

    listing = tree_listing(folder) if folder.is_dir() else [(folder.name, sha256_file(folder), 0)]
    identity = {"folder": tree_sha256(listing), "adapter": adapter, "params": params}
    return _Source(identity, {"path": str(folder)}, load)


def _is_id(text: str) -> bool:
    from ..registry import ID_RE

    return bool(ID_RE.match(text))


def _list_source(items: list) -> _Source:
    samples, h = [], []
    for i, d in enumerate(items):
        if not isinstance(d, dict):
            raise QuantzooError(f"sample_data[{i}] is a {type(d).__name__}; a list of samples must hold "
                                "dicts of input name -> array")
        arrays = {k: np.asarray(v) for k, v in d.items()}
        samples.append(A.Sample(f"input-{i:05d}", arrays))
        for k in sorted(arrays, key=str):
            a = np.ascontiguousarray(arrays[k])
            h.append(f"{k}:{a.dtype.str}:{a.shape}:{sha256_bytes(a.tobytes())}")
    return _Source({"inputs": sha256_bytes("\n".join(h).encode())}, {"inputs": len(items)}, lambda: (samples, []))


# --- labels ---------------------------------------------------------------------------------------

def model_labels(model, sess, cache: Cache) -> list[str] | None:
    """A manifest's ``labels`` as the model's class names (index -> name), or None."""
    spec = getattr(model, "labels", None) if model is not None else None
    if spec is None:
        return None
    if isinstance(spec, list):
        return [str(x) for x in spec]
    if "metadata" in spec:
        meta = sess.get_modelmeta().custom_metadata_map
        if spec["metadata"] not in meta:
            raise QuantzooError(f"{model.path}: labels.metadata: the model has no metadata_props key "
                                f"{spec['metadata']!r}; found: {', '.join(sorted(meta)) or 'none'}")
        names = meta[spec["metadata"]].splitlines()
        return list(spec.get("prepend") or []) + names + list(spec.get("append") or [])
    if "file" in spec:
        import json

        from ..fetch import fetch_source

        path = fetch_source(spec["file"], cache, base_dir=model.path.parent if model.path else None)
        text = path.read_text(encoding="utf-8")
        if spec.get("key"):
            try:
                value = json.loads(text)
                for part in spec["key"].split("."):
                    value = value[part]
            except (ValueError, KeyError, TypeError) as e:
                raise QuantzooError(f"{model.path}: labels: cannot read key {spec['key']!r} from the labels file "
                                    f"({type(e).__name__}: {e}); expected a JSON object holding a list") from None
            return [str(x) for x in value]
        try:
            value = json.loads(text)
        except ValueError:
            return [line for line in text.splitlines() if line.strip()]
        if isinstance(value, dict):  # {"0": "tench", ...}: index -> name
            value = [value[k] for k in sorted(value, key=lambda k: int(k) if str(k).isdigit() else k)]
        if not isinstance(value, list):
            raise QuantzooError(f"{model.path}: labels.file: expected a JSON list of class names (or give "
                                f"labels.key), found a {type(value).__name__}")
        return [str(x) for x in value]
    return None


def label_indices(samples: list[A.Sample], names: list[str] | None, label_map: dict | None) -> list[int | None] | None:
    """Each sample's label as a class index (through `label_map`), None where it has none or the
    model does not know it; None overall when nothing is labelled.

    >>> s = [A.Sample("a", 0, "py"), A.Sample("b", 0, "c"), A.Sample("c", 0, "abnf"), A.Sample("d", 0)]
    >>> label_indices(s, ["c", "python"], {"py": "python"})
    [1, 0, None, None]
    """
    if not any(s.label is not None for s in samples):
        return None
    label_map = label_map or {}
    index = {n: i for i, n in enumerate(names)} if names else None
    out: list[int | None] = []
    for s in samples:
        y = s.label
        if y is not None and y in label_map:
            y = label_map[y]
        if y is None:
            out.append(None)
        elif index is not None:
            out.append(index.get(str(y)))
        else:
            out.append(int(y) if str(y).isdigit() else None)
    return out


# --- batches --------------------------------------------------------------------------------------

def _check_feed(feed: dict, specs: list[A.InputSpec], key: str, model_file: str) -> None:
    for spec in specs:
        a = feed.get(spec.name)
        if a is None:
            raise QuantzooError(f"sample {key!r} gives no value for input {spec.name!r} of {model_file}")
        want = spec.shape[1:]
        ok = a.ndim == len(want) and all(w is None or w == d for w, d in zip(want, a.shape))
        if not ok:
            shown = ["N", *("?" if d is None else d for d in want)]
            raise QuantzooError(
                f"input {spec.name!r} of {model_file} takes shape [{', '.join(map(str, shown))}] but sample "
                f"{key!r} was preprocessed to [N, {', '.join(map(str, a.shape))}]; check the preprocessing "
                "adapter and its params (size, height/width, layout) against the model's input")


def _batches(feeds: list[dict], batch_size: int) -> list[dict]:
    """Consecutive feeds stacked into batches of at most `batch_size`, a new batch wherever the
    shapes change (so variable-size images batch one by one)."""
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


# --- the prepared state and its cache file ----------------------------------------------------------

@dataclass
class _Prepared:
    """Everything a variant is compared against: input batches, sample keys/labels, float outputs."""

    batches: list[dict]
    keys: list[str]
    labels: list[str | None]
    skipped: list[tuple[str, str]]
    reference: list[list[np.ndarray]]  # [output][batch] -> reduced float output


def _save_prepared(path: Path, p: _Prepared, input_names: list[str]) -> None:
    import json

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


def _load_prepared(path: Path, input_names: list[str], n_outputs: int) -> _Prepared | None:
    import json

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
    return _Prepared(batches, meta["keys"], meta["labels"], [tuple(x) for x in meta["skipped"]], ref)


# --- the evaluation ------------------------------------------------------------------------------

@dataclass
class Evaluation:
    """Preprocessed batches plus the float model's (reduced) outputs, ready to compare variants.

    >>> ev = prepare("magika.onnx", "pygments-examplefiles", model="magika-standard-v3")  # doctest: +SKIP
    >>> [ev.compare(p).metrics for p in ("m-kmeans4.onnx", "m-linear8.onnx")]  # doctest: +SKIP
    """

    original: Path
    original_info: dict
    model_id: str | None
    task: str | None
    describe: dict
    prepared: _Prepared
    output_names: list[str]
    kinds: list[str]
    contexts: list[dict]
    signature: tuple
    batch_size: int
    cache_hit: bool
    timings: dict

    @property
    def n(self) -> int:
        return len(self.prepared.keys)

    @property
    def batches(self) -> list[dict]:
        return self.prepared.batches

    @property
    def samples(self) -> list[A.Sample]:
        """Every sample's key and label, in batch order (``data`` is None: the batches hold the inputs)."""
        return [A.Sample(k, None, y) for k, y in zip(self.prepared.keys, self.prepared.labels)]

    @property
    def data(self):
        """``.samples``, ``.skipped`` and ``.describe`` of the evaluated data, in one object."""
        from types import SimpleNamespace

        return SimpleNamespace(samples=self.samples, skipped=list(self.prepared.skipped), describe=self.describe)

    @property
    def reference(self) -> list[list[np.ndarray]]:
        return self.prepared.reference

    def run(self, sess, progress: Progress | None = None, label: str = "quantized") -> list[list[np.ndarray]]:
        """Run `sess` on every batch; return reduced outputs per output, per batch."""
        return _run(sess, self.batches, self.output_names, self.kinds, self.contexts, progress, label)

    def compare(self, quantized_model: str | os.PathLike, *, progress: Progress | None = None) -> Comparison:
        """Run `quantized_model` on the prepared batches and measure it against the float outputs."""
        qpath = Path(quantized_model)
        if not qpath.is_file():
            raise QuantzooError(f"no such model file: {qpath}")
        t0 = time.perf_counter()
        sess = _session(qpath)
        t1 = time.perf_counter()
        if _signature(sess) != self.signature:
            raise QuantzooError(
                f"{qpath.name} does not have the same inputs and outputs as {self.original.name}: "
                f"expected {self.signature}, found {_signature(sess)}; compare a variant with its own original")
        outs = self.run(sess, progress)
        t2 = time.perf_counter()
        metrics: dict[str, dict[str, dict]] = {}
        for j, name in enumerate(self.output_names):
            per: dict[str, list[float]] = {}
            ctx = dict(self.contexts[j])
            start = 0
            for ref_b, q_b in zip(self.reference[j], outs[j]):
                n_b = len(ref_b)
                if ctx.get("all_labels") is not None:
                    ctx["labels"] = ctx["all_labels"][start:start + n_b]
                for m, vals in M.KINDS[self.kinds[j]][1](ref_b, q_b, ctx).items():
                    per.setdefault(m, []).extend(vals)
                start += n_b
            metrics[name] = {m: M.summarize(v) for m, v in per.items()}
        t3 = time.perf_counter()
        qinfo = _model_info(qpath)
        sizes = {"original_bytes": self.original_info["bytes"], "quantized_bytes": qinfo["bytes"],
                 "ratio": round(qinfo["bytes"] / self.original_info["bytes"], 6) if self.original_info["bytes"] else None}
        timings = {**self.timings, "quantized_session_s": round(t1 - t0, 4),
                   "quantized_inference_s": round(t2 - t1, 4), "metrics_s": round(t3 - t2, 4)}
        skipped = self.prepared.skipped
        dataset = {**self.describe, "n": self.n, "skipped": len(skipped),
                   "skipped_files": [{"key": k, "reason": r} for k, r in skipped], "batch_size": self.batch_size}
        return Comparison(model=self.model_id, task=self.task, dataset=dataset, metrics=metrics, sizes=sizes,
                          original=self.original_info, quantized=qinfo, timings=timings)


def _run(sess, batches, names, kinds, contexts, progress, label) -> list[list[np.ndarray]]:
    outs: list[list[np.ndarray]] = [[] for _ in names]
    total = sum(len(next(iter(b.values()))) for b in batches)
    done = 0
    for b in batches:
        ys = sess.run(names, b)
        for j, y in enumerate(ys):
            outs[j].append(M.KINDS[kinds[j]][0](np.asarray(y), contexts[j]))
        done += len(next(iter(b.values())))
        if progress:
            progress(label, done, total)
    return outs


def _versions() -> dict:
    from importlib import metadata

    from .. import __version__

    out = {"quantzoo": __version__}
    for pkg in ("onnxruntime", "numpy", "pillow"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _as_cache(cache) -> Cache | None:
    if cache is False:
        return None
    return cache if isinstance(cache, Cache) else Cache(cache)


def _preprocess(source: _Source, adapter: str, params: dict, specs: list[A.InputSpec], model_file: str,
                batch_size: int) -> tuple[list[dict], list[A.Sample], list]:
    samples, skipped = source.load()
    if not samples:
        first = f" ({len(skipped)} skipped, first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise QuantzooError(f"no usable samples in {source.describe}{first}; check the data and the "
                            "dataset's include/exclude params")
    fn = A.PREPROCESSORS[adapter]
    feeds = []
    for s in samples:
        feed = fn(s.data, params, specs)
        _check_feed(feed, specs, s.key, model_file)
        feeds.append(feed)
    return _batches(feeds, batch_size), samples, skipped


def prepare(full_precision_model: str | os.PathLike, sample_data: Any = None, *, task: str | None = None,
            batch_size: int | None = None, model: Any = None, registry: Any = None, cache: Any = None,
            limit: int | None = None, progress: Progress | None = None) -> Evaluation:
    """Preprocess `sample_data` for `full_precision_model` and get its outputs (cached).

    `sample_data`: a dataset id, a folder (or file) path, a list of ``{input name: array}``
    dicts, or None for the dataset of `model` (a `registry.Model` or a model id). `cache`: a
    `Cache`, a folder, None (the default cache) or False (no cache). The cache entry
    (``derived/float-outputs/<key>.npz``) holds the preprocessed batches, the sample keys and
    labels and the float outputs, keyed by the model's sha256, the data's identity (dataset
    manifest or folder hash), the preprocessing, task, batch size and tool versions; on a hit
    no sample is read, preprocessed or run through the float model again.

    >>> ev = prepare("ppocr-det.onnx", model="ppocr-v4-det", registry="zoo")  # doctest: +SKIP
    >>> ev.compare("ppocr-det-linear-4.onnx").metrics["sigmoid_0.tmp_0"]["iou"]  # doctest: +SKIP
    {'mean': 0.97, 'std': 0.02, 'n': 20}
    """
    t_start = time.perf_counter()
    path = Path(full_precision_model)
    if not path.is_file():
        raise QuantzooError(f"no such model file: {path}")
    store = _as_cache(cache)
    fetch_cache = store or Cache()
    regs: list = []

    def reg():
        if not regs:
            regs.append(_resolve_registry(registry))
        return regs[0]

    if isinstance(model, str):
        model = reg().model(model)
    task = task or (model.task if model is not None else None)

    sess = _session(path)
    specs = _input_specs(sess)
    pre = model.preprocessing if model is not None else A.default_preprocessing(specs)
    adapter = pre.get("adapter")
    if adapter not in A.PREPROCESSORS:
        where = f"{model.path}: preprocessing.adapter: " if model is not None else ""
        raise QuantzooError(f"{where}unknown preprocessing adapter {adapter!r}; known: {', '.join(A.PREPROCESSORS)}")
    params = dict(pre.get("params") or {})

    # where the samples come from (nothing is read yet)
    if sample_data is None:
        if model is None:
            raise UsageError("no sample data: pass a dataset id, a folder, or a model whose manifest names a dataset")
        source = _dataset_source(reg().dataset(model.dataset), fetch_cache, limit)
    elif isinstance(sample_data, list):
        source = _list_source(sample_data[:limit] if limit else sample_data)
        adapter, params = "arrays", {}
    elif isinstance(sample_data, os.PathLike) or (isinstance(sample_data, str) and Path(sample_data).exists()):
        labels = None
        if model is not None and (registry is not None or regs):
            ds = reg().datasets.get(model.dataset)
            labels = ds.labels if ds is not None else None
        source = _folder_source(Path(sample_data), A.FOLDER_ADAPTER.get(adapter, "arrays"), labels, limit)
    elif isinstance(sample_data, str) and _is_id(sample_data):
        source = _dataset_source(reg().dataset(sample_data), fetch_cache, limit)
    elif isinstance(sample_data, str):
        raise UsageError(f"no such file or folder: {sample_data} (and it is not a dataset id); "
                         "pass an existing folder of samples or a dataset id from the registry")
    else:
        raise UsageError(f"sample_data must be a dataset id, a path or a list of input dicts, "
                         f"found {type(sample_data).__name__}")

    fixed_batch = [s.shape[0] for s in specs if s.rank and s.shape[0] is not None]
    bs = fixed_batch[0] if fixed_batch else int(batch_size or params.get("batch_size") or DEFAULT_BATCH_SIZE)
    outs = sess.get_outputs()
    names = [o.name for o in outs]
    kinds = [M.output_kind(task, len(o.shape)) for o in outs]
    input_names = [s.name for s in specs]
    info = _model_info(path)
    key = key_of("float-outputs", info["sha256"], source.identity, {"adapter": adapter, "params": params},
                 task, kinds, bs, _versions())

    computed: list[bool] = []

    def compute() -> _Prepared:
        computed.append(True)
        batches, samples, skipped = _preprocess(source, adapter, params, specs, path.name, bs)
        ctxs = [{} for _ in kinds]  # reductions need no labels
        ref = _run(sess, batches, names, kinds, ctxs, progress, "float")
        return _Prepared(batches, [s.key for s in samples], [s.label for s in samples], skipped, ref)

    prepared = None
    if store is None:
        prepared = compute()
    else:
        target = store.derived("float-outputs", key, ".npz")
        if target.is_file():
            prepared = _load_prepared(target, input_names, len(names))
        if prepared is None:
            with store.lock(f"float-outputs-{key[:16]}"):
                if target.is_file():
                    prepared = _load_prepared(target, input_names, len(names))
                if prepared is None:
                    prepared = compute()
                    _save_prepared(target, prepared, input_names)
    hit = not computed
    t_ref = time.perf_counter()

    # metric contexts: class names, label indices, CTC vocabulary
    class_names = model_labels(model, sess, fetch_cache)
    samples = [A.Sample(k, None, y) for k, y in zip(prepared.keys, prepared.labels)]
    contexts = []
    for k in kinds:
        ctx: dict = {"options": dict(params.get("metrics") or {})}
        if k == "ctc":
            ctx["vocab"] = class_names
            ctx["all_labels"] = prepared.labels if any(y is not None for y in prepared.labels) else None
        elif k == "classification":
            ctx["all_labels"] = label_indices(samples, class_names, getattr(model, "label_map", None) if model else None)
        contexts.append(ctx)
    timings = {"prepare_s": round(t_ref - t_start, 4), "float_cached": hit}
    return Evaluation(original=path, original_info=info, model_id=model.id if model is not None else None,
                      task=task, describe=source.describe, prepared=prepared, output_names=names, kinds=kinds,
                      contexts=contexts, signature=_signature(sess), batch_size=bs, cache_hit=hit, timings=timings)


def compare_models(full_precision_model: str | os.PathLike, quantized_model: str | os.PathLike,
                   sample_data: Any = None, *, task: str | None = None, batch_size: int | None = None,
                   model: Any = None, registry: Any = None, cache: Any = None, limit: int | None = None,
                   progress: Progress | None = None) -> Comparison:
    """Run both models on the same samples and return task-aware agreement metrics.

    `sample_data` is a dataset id, a folder, a list of ``{input name: array}`` dicts, or None
    for `model`'s own dataset. The float model's outputs are cached and reused for every
    variant; to compare many variants, `prepare` once and call `Evaluation.compare` per variant.

    >>> import numpy as np, onnx
    >>> from onnx import helper, TensorProto
    >>> g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
    ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
    ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])])
    >>> import tempfile, pathlib; d = pathlib.Path(tempfile.mkdtemp()); onnx.save(helper.make_model(g), d / "m.onnx")
    >>> c = compare_models(d / "m.onnx", d / "m.onnx", [{"x": np.arange(4, dtype=np.float32)}], cache=False)
    >>> c.metrics["y"]["top1_agreement"]
    {'mean': 1.0, 'std': 0.0, 'n': 1}
    """
    ev = prepare(full_precision_model, sample_data, task=task, batch_size=batch_size, model=model,
                 registry=registry, cache=cache, limit=limit, progress=progress)
    return ev.compare(quantized_model, progress=progress)
