"""Run an original and a compressed model on the same samples and measure how well they agree.

`prepare` does everything that does not depend on the compressed model once: resolve the data
(`sources`), preprocess every sample into batches (`batches`), and get the float model's
outputs — from the cache when this model, data, preprocessing and tool version were seen before
(``derived/float-outputs/<key>.npz``), else by running it and caching them.
`Evaluation.compare` then runs one compressed model and computes the metrics; the pipeline
calls it once per variant. `compare_models` is both steps in one call.

The float and quantized models run with the same session options and the same batches, so a
difference is the compression's, not the runtime's: onnxruntime's kernels give results that
differ by about 6e-6 between graph optimization levels, and can differ between batch sizes
(ARCHITECTURE.md, "Comparing at one optimization level"). A model with custom ops runs them
with the classes of ``custom_ops`` (or the registry model's own ``custom_ops``), registered
through `quantzoo.customops` for both models.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..cache import Cache, key_of, sha256_file
from ..customops import check, identity, load_classes, session_options
from ..customops import run as run_session
from ..errors import QuantzooError
from .batches import Prepared, load_prepared, model_feed, preprocess_source, save_prepared, unbatched_inputs
from .datasets import DATASET_ADAPTERS, Sample
from .kinds import KINDS, REDUCE_REVISION, compare_batch
from .judge import Judge, judge_of
from .inputs import InputSpec
from .preprocess import PREPROCESSORS, default_preprocessing
from .result import Comparison
from .stream import Stream, compared_outputs, fed_specs, first_step, run_batch, runner_of
from .sources import fetched_params, find_source, model_labels, need_registry
from .summary import summarize
from .tasks import output_kind
from ..threads import ort_options

DEFAULT_BATCH_SIZE = 32

Progress = Callable[[str, int, int], None]


# --- sessions ---------------------------------------------------------------------------------

def _session(path: Path, custom_ops: dict | None = None):
    import onnxruntime as ort

    # with custom ops, their nodes are checked (each has a class) and registered first; without,
    # the model is read in Python only when onnxruntime fails on an unregistered op, to name it
    so = session_options(custom_ops, path) if custom_ops else ort_options()
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
        if "is not a registered function/op" in str(e):
            check(path, custom_ops or {})
        raise QuantzooError(f"onnxruntime cannot load {path}: {str(e).splitlines()[0][:300]}; "
                            "check that the file is an ONNX model (quantzoo fetch re-verifies cached models)") from None


def _input_specs(sess) -> list[InputSpec]:
    return [InputSpec(i.name, i.type, tuple(d if isinstance(d, int) else None for d in i.shape))
            for i in sess.get_inputs()]


def _signature(sess) -> tuple:
    return (tuple((i.name, i.type, len(i.shape)) for i in sess.get_inputs()),
            tuple(o.name for o in sess.get_outputs()))


def _model_info(path: Path) -> dict:
    return {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}


# --- the evaluation ------------------------------------------------------------------------------

@dataclass
class Evaluation:
    """Preprocessed batches plus the float model's (reduced) outputs, ready to compare variants.

    >>> reg = load_registry("zoo")  # doctest: +SKIP
    >>> ev = prepare("magika.onnx", "pygments-examplefiles", model="magika-standard-v3", registry=reg)  # doctest: +SKIP
    >>> [ev.compare(p).metrics for p in ("m-kmeans4.onnx", "m-linear8.onnx")]  # doctest: +SKIP
    """

    original: Path
    original_info: dict
    model_id: str | None
    task: str | None
    describe: dict
    prepared: Prepared
    output_names: list[str]
    kinds: list[str]
    contexts: list[dict]
    signature: tuple
    batch_size: int
    cache_hit: bool
    timings: dict
    clusters: list[str] | None = None  # each sample's photo, when samples are views of photos
    custom_ops: dict | None = None     # {"domain.OpType": class} for models with custom ops
    unbatched: tuple = ()              # inputs fed without a batch axis (`batches.model_feed`)
    stream: Stream | None = None       # the runner: a streamed model's windows and state, a decoder (`stream`)
    specs: tuple = ()                  # the model's inputs (a streamed model's state and constants)
    judge: Judge | None = None         # another model's float model that reads the outputs (`judge`)

    @property
    def n(self) -> int:
        return len(self.prepared.keys)

    @property
    def batches(self) -> list[dict]:
        return self.prepared.batches

    @property
    def samples(self) -> list[Sample]:
        """Every sample's key and label, in batch order (``data`` is None: the batches hold the inputs)."""
        return [Sample(k, None, y) for k, y in zip(self.prepared.keys, self.prepared.labels)]

    @property
    def data(self):
        """``.samples``, ``.skipped`` and ``.describe`` of the evaluated data, in one object."""
        from types import SimpleNamespace

        return SimpleNamespace(samples=self.samples, skipped=list(self.prepared.skipped), describe=self.describe)

    @property
    def reference(self) -> list[list[np.ndarray]]:
        return self.prepared.reference

    def run(self, sess, progress: Progress | None = None, label: str = "quantized") -> list[list[np.ndarray]]:
        """Run `sess` on every batch; return reduced outputs per output, per batch (each reduced
        beside the float model's reduced batch)."""
        return _run(sess, self.batches, self.output_names, self.kinds, self.contexts, progress, label, self.reference,
                    self.unbatched, self.stream, self.specs)

    def feed(self, batch: dict) -> dict:
        """What a session is fed for one of the prepared batches (or a slice of one)."""
        return first_step(model_feed(batch, self.unbatched), self.stream, list(self.specs))

    def compare(self, quantized_model: str | os.PathLike, *, progress: Progress | None = None) -> Comparison:
        """Run `quantized_model` on the prepared batches and measure it against the float outputs."""
        qpath = Path(quantized_model)
        if not qpath.is_file():
            raise QuantzooError(f"no such model file: {qpath}")
        t0 = time.perf_counter()
        sess = _session(qpath, self.custom_ops)
        t1 = time.perf_counter()
        if _signature(sess) != self.signature:
            raise QuantzooError(
                f"{qpath.name} does not have the same inputs and outputs as {self.original.name}: "
                f"expected {self.signature}, found {_signature(sess)}; compare a variant with its own original")
        outs = self.run(sess, progress)
        t2 = time.perf_counter()
        metrics: dict[str, dict[str, dict]] = {}
        for j, name in enumerate(self.output_names):
            per: dict[str, list] = {}
            ctx = dict(self.contexts[j])
            start = 0
            for ref_b, q_b in zip(self.reference[j], outs[j]):
                n_b = len(ref_b)
                if ctx.get("all_labels") is not None:
                    ctx["labels"] = ctx["all_labels"][start:start + n_b]
                for m, vals in compare_batch(self.kinds[j], ref_b, q_b, ctx).items():
                    per.setdefault(m, []).extend(vals)
                start += n_b
            if self.judge is not None:  # over every batch at once: the judge runs its own batches
                per.update(self.judge.metrics(self.kinds[j], self.reference[j], outs[j], self.prepared.labels,
                                              self.contexts[j]["options"]))
            metrics[name] = {m: summarize(m, v, self.clusters) for m, v in per.items()}
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
                          original=self.original_info, quantized=qinfo, timings=timings, outputs=outs)


def _run(sess, batches, names, kinds, contexts, progress, label, reference=None, unbatched=(), stream=None,
         specs=()) -> list[list[np.ndarray]]:
    outs: list[list[np.ndarray]] = [[] for _ in names]
    total = sum(len(next(iter(b.values()))) for b in batches)
    done = 0
    for i, b in enumerate(batches):
        ys = run_batch(run_session, sess, names, model_feed(b, unbatched), stream, list(specs))
        for j, y in enumerate(ys):
            # every output of the batch too: a detector's decoder reads them all (compare/decoders.py)
            ctx = {**contexts[j], "outputs": ys}
            if reference is not None:
                ctx["reference"] = reference[j][i]
            outs[j].append(KINDS[kinds[j]].reduce(np.asarray(y), ctx))
        done += len(next(iter(b.values())))
        if progress:
            progress(label, done, total)
    return outs


def _chosen_outputs(params: dict, names: list[str], model_file: str) -> list[str]:
    """The outputs a preprocessing's ``compared_outputs`` param names (default: all), e.g. only
    the final mask of a network that also returns its deep-supervision side outputs.

    >>> _chosen_outputs({"compared_outputs": ["y"]}, ["y", "side"], "m.onnx"), _chosen_outputs({}, ["y"], "m")
    (['y'], ['y'])
    """
    chosen = params.get("compared_outputs")
    if not chosen:
        return names
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise QuantzooError(f"preprocessing params.compared_outputs names {', '.join(map(repr, unknown))}, not an "
                            f"output of {model_file}; its outputs are {', '.join(names)}")
    return [n for n in names if n in chosen]


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


def model_custom_ops(model: Any, cache: Cache) -> dict:
    """The classes of a registry model's ``custom_ops``, their sources fetched into `cache`."""
    if model is None or not getattr(model, "custom_ops", None):
        return {}
    from ..fetch import fetch_source  # here: compare's evaluation takes Model values, fetch sits beside it

    base = model.path.parent if model.path else None
    return load_classes(model.custom_ops, lambda s: fetch_source(s, cache, base_dir=base))


def _as_cache(cache) -> Cache | None:
    if cache is False:
        return None
    return cache if isinstance(cache, Cache) else Cache(cache)


def prepare(full_precision_model: str | os.PathLike, sample_data: Any = None, *, task: str | None = None,
            batch_size: int | None = None, model: Any = None, registry: Any = None, cache: Any = None,
            limit: int | None = None, progress: Progress | None = None, part: str = "evaluation",
            custom_ops: dict | None = None) -> Evaluation:
    """Preprocess `sample_data` for `full_precision_model` and get its outputs (cached).

    `sample_data`: a dataset id, a folder (or file) path, a list of ``{input name: array}``
    dicts, or None for the dataset of `model` (a `registry.Model`, or a model id of `registry`, a
    loaded registry: `quantzoo.load_registry`). `cache`: a
    `Cache`, a folder, None (the default cache) or False (no cache). The cache entry
    (``derived/float-outputs/<key>.npz``) holds the preprocessed batches, the sample keys and
    labels and the float outputs, keyed by the model's sha256, the data's identity (dataset
    manifest or folder hash), the preprocessing, task, batch size, tool versions and
    `kinds.REDUCE_REVISION`; on a hit
    no sample is read, preprocessed or run through the float model again. `part`: which part of a
    registry dataset to use, ``"evaluation"`` (what published figures use) or ``"calibration"``
    (for choices made from data; `split`). `custom_ops`: ``{"domain.OpType": class or
    "module:Class"}``, the implementations of the model's custom ops (`quantzoo.customops`); a
    registry model's own ``custom_ops`` are used for the ops not given.

    >>> ev = prepare("ppocr-det.onnx", model="ppocr-v4-det", registry=load_registry("zoo"))  # doctest: +SKIP
    >>> ev.compare("ppocr-det-linear-4.onnx").metrics["sigmoid_0.tmp_0"]["iou"]  # doctest: +SKIP
    {'mean': 0.97, 'std': 0.02, 'n': 20, 'ci95': [0.95, 0.98]}
    """
    t_start = time.perf_counter()
    path = Path(full_precision_model)
    if not path.is_file():
        raise QuantzooError(f"no such model file: {path}")
    store = _as_cache(cache)
    fetch_cache = store or Cache()
    if isinstance(model, str):
        model = need_registry(registry, f"model id {model!r}").model(model)
    task = task or (model.task if model is not None else None)
    ops = {**model_custom_ops(model, fetch_cache), **load_classes(custom_ops)}

    sess = _session(path, ops)
    specs = _input_specs(sess)
    pre = model.preprocessing if model is not None else default_preprocessing(specs)
    adapter = pre.get("adapter")
    if adapter not in PREPROCESSORS:
        where = f"{model.path}: preprocessing.adapter: " if model is not None else ""
        raise QuantzooError(f"{where}unknown preprocessing adapter {adapter!r}; known: {', '.join(PREPROCESSORS)}")
    params = dict(pre.get("params") or {})

    # where the samples come from (nothing is read yet)
    source = find_source(sample_data, model=model, registry=registry, folder_adapter=PREPROCESSORS[adapter].read,
                         cache=fetch_cache, limit=limit, part=part)
    if isinstance(sample_data, list):
        adapter, params = "arrays", {}

    # a property of the model (inputs without a batch axis), whatever the sample data
    unbatched = unbatched_inputs(dict(pre.get("params") or {}), specs, path.name)
    all_specs = specs
    # a model not run in one call: streamed window by window, or decoded token by token (stream.py)
    stream = runner_of(params, specs, [o.name for o in sess.get_outputs()], path.name)
    specs = fed_specs(specs, stream)  # a streamed model's state and constants are not in the samples
    fixed_batch = [s.shape[0] for s in specs if s.rank and s.shape[0] is not None and s.name not in unbatched]
    bs = 1 if unbatched else fixed_batch[0] if fixed_batch else int(batch_size or params.get("batch_size") or DEFAULT_BATCH_SIZE)
    outs = sess.get_outputs()
    outs = [o for o in outs if o.name in compared_outputs([o.name for o in outs], stream)]
    outs = [o for o in outs if o.name in _chosen_outputs(params, [o.name for o in outs], path.name)]
    names = [o.name for o in outs]
    kinds = [output_kind(task, len(o.shape), i) for i, o in enumerate(outs)]
    input_names = [s.name for s in specs]
    info = _model_info(path)
    key = key_of("float-outputs", info["sha256"], source.identity, {"adapter": adapter, "params": params},
                 task, kinds, bs, _versions(), REDUCE_REVISION, *([identity(ops)] if ops else []))

    computed: list[bool] = []

    def compute() -> Prepared:
        computed.append(True)
        fed = fetched_params(params, fetch_cache, model.path.parent if model is not None and model.path else None)
        batches, samples, skipped = preprocess_source(source, adapter, fed, specs, path.name, bs, unbatched)
        # reductions need no labels, only the metric options (a detector's decoder and its thresholds)
        ctxs = [{"options": dict(params.get("metrics") or {})} for _ in kinds]
        ref = _run(sess, batches, names, kinds, ctxs, progress, "float", None, unbatched, stream, all_specs)
        return Prepared(batches, [s.key for s in samples], [s.label for s in samples], skipped, ref)

    prepared = None
    if store is None:
        prepared = compute()
    else:
        target = store.derived("float-outputs", key, ".npz")
        if target.is_file():
            prepared = load_prepared(target, input_names, len(names))
        if prepared is None:
            with store.lock(f"float-outputs-{key[:16]}"):
                if target.is_file():
                    prepared = load_prepared(target, input_names, len(names))
                if prepared is None:
                    prepared = compute()
                    save_prepared(target, prepared, input_names)
    hit = not computed
    t_ref = time.perf_counter()

    # metric contexts: what each output kind's comparison reads besides the outputs
    class_names = model_labels(model, sess, fetch_cache)
    label_map = getattr(model, "label_map", None) if model is not None else None
    contexts = []
    for k in kinds:
        ctx: dict = {"options": dict(params.get("metrics") or {})}
        if KINDS[k].context is not None:
            ctx.update(KINDS[k].context(class_names, prepared.labels, label_map))
        contexts.append(ctx)
    timings = {"prepare_s": round(t_ref - t_start, 4), "float_cached": hit}
    reader = DATASET_ADAPTERS.get(str(source.identity.get("adapter")))
    cluster = reader.cluster if reader is not None else None
    return Evaluation(original=path, original_info=info, model_id=model.id if model is not None else None,
                      task=task, describe=source.describe, prepared=prepared, output_names=names, kinds=kinds,
                      contexts=contexts, signature=_signature(sess), batch_size=bs, cache_hit=hit, timings=timings,
                      clusters=[cluster(k) for k in prepared.keys] if cluster is not None else None,
                      custom_ops=ops or None, unbatched=unbatched, stream=stream, specs=tuple(all_specs),
                      judge=judge_of(model, registry, fetch_cache) if model is not None else None)


def compare_models(full_precision_model: str | os.PathLike, quantized_model: str | os.PathLike,
                   sample_data: Any = None, *, task: str | None = None, batch_size: int | None = None,
                   model: Any = None, registry: Any = None, cache: Any = None, limit: int | None = None,
                   progress: Progress | None = None, custom_ops: dict | None = None) -> Comparison:
    """Run both models on the same samples and return task-aware agreement metrics.

    `sample_data` is a dataset id, a folder, a list of ``{input name: array}`` dicts, or None
    for `model`'s own dataset. The float model's outputs are cached and reused for every
    variant; to compare many variants, `prepare` once and call `Evaluation.compare` per variant.
    `custom_ops` (``{"domain.OpType": class}``) run the models' custom ops (see `prepare`).

    >>> import numpy as np, onnx
    >>> from onnx import helper, TensorProto
    >>> g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
    ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
    ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])])
    >>> import tempfile, pathlib; d = pathlib.Path(tempfile.mkdtemp()); onnx.save(helper.make_model(g), d / "m.onnx")
    >>> c = compare_models(d / "m.onnx", d / "m.onnx", [{"x": np.arange(4, dtype=np.float32)}], cache=False)
    >>> c.metrics["y"]["top1_agreement"]
    {'mean': 1.0, 'std': 0.0, 'n': 1, 'ci95': [0.2065493, 1.0]}
    """
    ev = prepare(full_precision_model, sample_data, task=task, batch_size=batch_size, model=model,
                 registry=registry, cache=cache, limit=limit, progress=progress, custom_ops=custom_ops)
    return ev.compare(quantized_model, progress=progress)
