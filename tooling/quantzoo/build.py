"""`quantzoo build`: fetch → quantize → compare for every model × variant, then publish the site.

Every result is content-addressed in the cache, so a rerun with nothing changed does no
quantize or compare work (and says so):

    derived/artifacts/<key>.onnx (+ .json)   key = source sha256 + variant spec + quantzoo version
    derived/comparisons/<key>.json           key = artifact sha256 + evaluation data + version
    derived/previews/<key>.png               output maps on one input (map-output models)
    derived/graph-info/<key>.json            parameter count and operator histogram of a float model

Model × variant jobs run in worker processes (``--jobs``, default: the number of cores). A job
that fails is reported with its stage and its message; the other models still publish, and the
command exits 1 at the end. The site is built next to its target and swapped in only when the
MkDocs build succeeded.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .cache import Cache, atomic_path, key_of, sha256_file, write_json
from .errors import QuantzooError, UsageError

PREVIEW_MAX_SIDE = 320


# --- keys (pure) ----------------------------------------------------------------------------

def artifact_key(source_sha256: str, spec: dict, version: str = __version__) -> str:
    """The cache key of a quantized artifact: source bytes, variant settings, tool version and
    the engine's own revision (so changed quantize code never serves an old artifact).

    >>> artifact_key("ab" * 32, {"mode": "fp16"}) == artifact_key("ab" * 32, {"mode": "fp16"})
    True
    >>> artifact_key("ab" * 32, {"mode": "fp16"}) == artifact_key("ab" * 32, {"mode": "fp16"}, "9.9")
    False
    """
    from .quantize import ENGINE_REVISION

    return key_of("artifact", source_sha256, spec, version, ENGINE_REVISION)


def evaluation_identity(model, dataset) -> dict:
    """Everything besides the two models that decides a comparison's numbers (pure)."""
    ds = None
    if dataset is not None:
        ds = {"id": dataset.id, "source": dataset.source, "adapter": dataset.adapter,
              "params": dataset.params or {}, "labels": dataset.labels}
    return {"task": model.task, "preprocessing": model.preprocessing, "labels": model.labels,
            "label_map": model.label_map, "dataset": ds}


def comparison_key(artifact_sha256: str, float_sha256: str, identity: dict, version: str = __version__) -> str:
    """The cache key of a comparison: artifact bytes, float bytes, evaluation data, tool version
    and the metrics' own revision (so a changed metric definition is never served from cache)."""
    from .compare.metrics import REVISION

    return key_of("comparison", artifact_sha256, float_sha256, identity, version, REVISION)


def preview_key(model_sha256: str, float_sha256: str, identity: dict, version: str = __version__,
                samples: list | None = None) -> str:
    """The cache key of an output-map preview of one model file (the float one or an artifact);
    `samples` (the manifest's, which pick the input shown) matter here and not to comparisons."""
    return key_of("preview", model_sha256, float_sha256, identity, version, samples or [])


def map_output(model) -> dict | None:
    """The first output that is an image or a map ([N, C, H, W]), or None."""
    for o in model.outputs:
        if len(o.get("shape") or []) == 4:
            return o
    return None


# --- the paths of stored results ------------------------------------------------------------

def artifact_paths(cache: Cache, key: str) -> tuple[Path, Path]:
    return cache.derived("artifacts", key, ".onnx"), cache.derived("artifacts", key, ".json")


def read_artifact(cache: Cache, key: str) -> dict | None:
    """The stored artifact's record ({"sha256", "size", ...}) when the artifact is complete."""
    onnx_path, meta_path = artifact_paths(cache, key)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not onnx_path.is_file() or onnx_path.stat().st_size != meta.get("size"):
        return None
    return meta


def comparison_path(cache: Cache, key: str) -> Path:
    return cache.derived("comparisons", key, ".json")


def preview_path(cache: Cache, key: str, part: str = "") -> Path:
    return cache.derived("previews", key + (f"-{part}" if part else ""), ".png")


# --- graph facts of the float model --------------------------------------------------------

_FLOAT_TYPES = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


def graph_info(path: Path) -> dict:
    """Parameter count (float elements in initializers and Constant nodes, subgraphs included),
    operator histogram, opset and producer of an ONNX file."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    ops: dict[str, int] = {}
    params = 0

    def tensor_elems(t) -> int:
        n = 1
        for d in t.dims:
            n *= d
        return n if t.data_type in _FLOAT_TYPES else 0

    def walk(graph):
        nonlocal params
        for init in graph.initializer:
            params += tensor_elems(init)
        for node in graph.node:
            key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
            ops[key] = ops.get(key, 0) + 1
            for attr in node.attribute:
                if node.op_type == "Constant" and attr.name == "value" and attr.HasField("t"):
                    params += tensor_elems(attr.t)
                if attr.HasField("g"):
                    walk(attr.g)
                for g in attr.graphs:
                    walk(g)

    walk(model.graph)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return {"parameters": params, "ops": dict(sorted(ops.items())), "opset": opset,
            "producer": f"{model.producer_name} {model.producer_version}".strip() or None}


def cached_graph_info(cache: Cache, path: Path, sha256: str) -> dict:
    target = cache.derived("graph-info", key_of("graph-info", sha256, __version__), ".json")
    try:
        return json.loads(target.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    info = graph_info(path)
    write_json(target, info)
    return info


# --- the worker: one model × variant --------------------------------------------------------

_STATE: dict[str, dict] = {"registries": {}, "evaluations": {}}
_KEEP_EVALUATIONS = 4


def _registry(root: str):
    from .registry import load_registry

    reg = _STATE["registries"].get(root)
    if reg is None:
        reg = _STATE["registries"][root] = load_registry(root)
    return reg


def _evaluation(model, float_path: Path, float_sha: str, reg, cache: Cache):
    """The prepared comparison data of a model, kept for the life of the worker process."""
    from .compare import prepare

    key = (model.id, float_sha, key_of(evaluation_identity(model, reg.datasets.get(model.dataset))))
    evs = _STATE["evaluations"]
    ev = evs.pop(key, None)
    if ev is None:
        ev = prepare(float_path, None, model=model, registry=reg, cache=cache)
    evs[key] = ev  # most recently used last
    while len(evs) > _KEEP_EVALUATIONS:  # evaluations hold preprocessed batches: keep a few
        evs.pop(next(iter(evs)))
    return ev


def _quantize(model, variant, float_path: Path, float_sha: str, cache: Cache, key: str) -> dict:
    from .quantize import quantize_file

    onnx_path, meta_path = artifact_paths(cache, key)
    with cache.lock(f"artifact-{key[:24]}"):
        meta = read_artifact(cache, key)
        if meta is not None:
            return meta
        with atomic_path(onnx_path) as tmp:
            report = quantize_file(float_path, tmp, mode=variant.mode, nbits=variant.nbits,
                                   granularity=variant.granularity, block_size=variant.block_size,
                                   group_size=variant.group_size, lut_function=variant.lut_function,
                                   source_sha256=float_sha, jobs=1)
            sha, size = sha256_file(tmp), tmp.stat().st_size
        meta = {"sha256": sha, "size": size, "model": model.id, "variant": variant.id, "spec": variant.spec(),
                "source_sha256": float_sha, "quantzoo": __version__,
                "report": report.to_dict() if hasattr(report, "to_dict") else None}
        write_json(meta_path, meta)
    return meta


def _preview_sample(ev, model, out_index: int) -> int:
    """Which sample the output grid shows: the first of the manifest's `samples` found in the
    data, else the one whose float output map has the largest mean (the most 'text' or signal)."""
    import numpy as np

    keys = [s.key for s in ev.data.samples]
    for name in model.samples or []:
        for i, k in enumerate(keys):
            if k == name or k.endswith("/" + name):
                return i
    best, best_v, i = 0, None, 0
    for batch in ev.reference[out_index]:
        for row in batch:
            v = float(np.mean(np.abs(row)))
            if best_v is None or v > best_v:
                best, best_v = i, v
            i += 1
    return best


def _sample_feed(ev, index: int) -> dict:
    start = 0
    for batch in ev.batches:
        n = len(next(iter(batch.values())))
        if index < start + n:
            return {k: v[index - start:index - start + 1] for k, v in batch.items()}
        start += n
    raise IndexError(index)


def map_png(y, lo: float, hi: float) -> bytes:
    """One [C, H, W] output map as PNG bytes, values lo..hi to black..white (C 3: colour)."""
    import numpy as np
    from PIL import Image

    a = np.asarray(y, dtype=np.float64)
    if a.ndim == 3:
        a = a if a.shape[0] == 3 else a[:1]
        a = np.transpose(a, (1, 2, 0))
        a = a[:, :, 0] if a.shape[2] == 1 else a
    span = hi - lo if hi > lo else 1.0
    img = Image.fromarray(np.clip((a - lo) / span * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return _png_bytes(img)


def input_png(x, preprocessing: dict) -> bytes | None:
    """The image a preprocessed input tensor ([1, C, H, W] or [1, H, W, C]) came from, as PNG bytes.

    Image preprocessing (``(pixel · scale − mean) / std``, then the colour order) is undone; any
    other 1- or 3-channel input is scaled min..max. None when the input is not an image.
    """
    import numpy as np
    from PIL import Image

    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 4:
        return None
    a = a[0]
    params = preprocessing.get("params") or {}
    layout = str(params.get("layout") or ("NCHW" if a.shape[0] in (1, 3) else "NHWC")).upper()
    if layout == "NCHW":
        a = np.transpose(a, (1, 2, 0))
    if a.shape[2] not in (1, 3):
        return None
    if preprocessing.get("adapter") in ("image", "text-line-image"):
        if a.shape[2] == 3 and str(params.get("channel_order", "RGB")).upper() == "BGR":
            a = a[..., ::-1]
        scale = float(params.get("scale", 1.0 / 255.0))
        a = (a * np.asarray(params.get("std", 1.0), dtype=np.float64)
             + np.asarray(params.get("mean", 0.0), dtype=np.float64)) / scale
    else:
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) / (hi - lo if hi > lo else 1.0) * 255.0
    a = np.clip(a + 0.5, 0, 255).astype(np.uint8)
    return _png_bytes(Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a))


def _png_bytes(img) -> bytes:
    import io

    from PIL import Image

    w, h = img.size
    scale = PREVIEW_MAX_SIDE / max(w, h)
    if scale < 1:
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _previews(model, ev, float_sha: str, identity: dict, artifact_path: Path, artifact_sha: str,
              cache: Cache) -> None:
    import numpy as np
    import onnxruntime as ort

    out = map_output(model)
    j = ev.output_names.index(out["name"]) if out["name"] in ev.output_names else 0
    idx = _preview_sample(ev, model, j)
    start = 0
    ref = None
    for batch in ev.reference[j]:
        if idx < start + len(batch):
            ref = np.asarray(batch[idx - start])
            break
        start += len(batch)
    lo, hi = (0.0, 1.0) if ref.min() >= 0 and ref.max() <= 1 else (float(ref.min()), float(ref.max()))
    feed = _sample_feed(ev, idx)
    fkey = preview_key(float_sha, float_sha, identity, samples=model.samples)
    if not preview_path(cache, fkey).is_file():
        if len(feed) == 1:
            png = input_png(next(iter(feed.values())), model.preprocessing)
            if png is not None:
                with atomic_path(preview_path(cache, fkey, "input")) as tmp:
                    tmp.write_bytes(png)
        with atomic_path(preview_path(cache, fkey)) as tmp:
            tmp.write_bytes(map_png(ref, lo, hi))
    sess = ort.InferenceSession(str(artifact_path), providers=["CPUExecutionProvider"])
    y = sess.run([ev.output_names[j]], feed)[0][0]
    pkey = preview_key(artifact_sha, float_sha, identity, samples=model.samples)
    with atomic_path(preview_path(cache, pkey)) as tmp:
        tmp.write_bytes(map_png(y, lo, hi))


def _worker_init() -> None:
    """Workers leave Ctrl-C to the main process, which stops them (a terminal sends SIGINT to all)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_job(job: dict) -> dict:
    """Worker: make sure one model × variant has its artifact, comparison and preview in the cache.

    `job` is plain data (it crosses a process boundary): zoo, cache, model, variant, float_path,
    float_sha256. Returns {"model", "variant", "did": [stages that ran], "error", "stage"}.
    """
    result: dict[str, Any] = {"model": job["model"], "variant": job["variant"], "did": [], "error": None,
                              "stage": None, "seconds": {}}
    stage = "load"
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        result["seconds"][name] = round(result["seconds"].get(name, 0.0) + now - clock, 3)
        clock = now

    try:
        reg = _registry(job["zoo"])
        model = reg.model(job["model"])
        variant = next(v for v in model.variants if v.id == job["variant"])
        cache = Cache(job["cache"])
        float_path, float_sha = Path(job["float_path"]), job["float_sha256"]
        identity = evaluation_identity(model, reg.datasets.get(model.dataset))
        lap("load")

        stage = "quantize"
        key = artifact_key(float_sha, variant.spec())
        meta = read_artifact(cache, key)
        if meta is None:
            meta = _quantize(model, variant, float_path, float_sha, cache, key)
            result["did"].append("quantize")
        art_path = artifact_paths(cache, key)[0]
        lap("quantize")

        stage = "compare"
        ckey = comparison_key(meta["sha256"], float_sha, identity)
        cpath = comparison_path(cache, ckey)
        ev = None
        if not cpath.is_file():
            ev = _evaluation(model, float_path, float_sha, reg, cache)
            comparison = ev.compare(art_path)
            write_json(cpath, comparison.to_dict())
            result["did"].append("compare")
        lap("compare")

        if map_output(model) is not None:
            stage = "preview"
            pkey = preview_key(meta["sha256"], float_sha, identity, samples=model.samples)
            fkey = preview_key(float_sha, float_sha, identity, samples=model.samples)
            if not (preview_path(cache, pkey).is_file() and preview_path(cache, fkey).is_file()):
                ev = ev or _evaluation(model, float_path, float_sha, reg, cache)
                _previews(model, ev, float_sha, identity, art_path, meta["sha256"], cache)
                result["did"].append("preview")
            lap("preview")
    except QuantzooError as e:
        result.update(error=str(e), stage=stage)
    except Exception as e:  # a bug or an unexpected library error: report it, keep building the rest
        result.update(error=f"{type(e).__name__}: {e}", stage=stage)
    return result


# --- planning and collecting (main process) -------------------------------------------------

@dataclass
class ModelState:
    model: Any
    float_path: Path | None = None
    float_sha256: str | None = None
    info: dict | None = None
    error: tuple[str, str] | None = None     # (stage, message) when the model cannot build at all
    jobs: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)


def job_is_done(cache: Cache, model, variant, float_sha: str, identity: dict) -> bool:
    """Whether every stored result of one model × variant is already in the cache."""
    meta = read_artifact(cache, artifact_key(float_sha, variant.spec()))
    if meta is None:
        return False
    if not comparison_path(cache, comparison_key(meta["sha256"], float_sha, identity)).is_file():
        return False
    if map_output(model) is not None:
        if not preview_path(cache, preview_key(meta["sha256"], float_sha, identity, samples=model.samples)).is_file():
            return False
        if not preview_path(cache, preview_key(float_sha, float_sha, identity, samples=model.samples)).is_file():
            return False
    return True


def collect(state: ModelState, reg, cache: Cache):
    """The BuiltModel of one model, read back from the cache (None when nothing usable)."""
    from .publish import BuiltModel, BuiltVariant

    model = state.model
    ds = reg.datasets.get(model.dataset)
    identity = evaluation_identity(model, ds)
    failed = {f["variant"] for f in state.failures}
    variants = []
    fkey = preview_key(state.float_sha256, state.float_sha256, identity, samples=model.samples)
    for var in model.variants:
        if var.id in failed:
            continue
        key = artifact_key(state.float_sha256, var.spec())
        meta = read_artifact(cache, key)
        cpath = comparison_path(cache, comparison_key(meta["sha256"], state.float_sha256, identity)) if meta else None
        if meta is None or cpath is None or not cpath.is_file():
            state.failures.append({"variant": var.id, "stage": "collect",
                                   "error": "its results are missing from the cache after the build"})
            continue
        comparison = json.loads(cpath.read_text(encoding="utf-8"))
        pv = preview_path(cache, preview_key(meta["sha256"], state.float_sha256, identity, samples=model.samples))
        variants.append(BuiltVariant(var, artifact_paths(cache, key)[0], meta["sha256"], meta["size"], comparison,
                                     pv if pv.is_file() else None))
    if not variants:
        return None
    pin, pfl = preview_path(cache, fkey, "input"), preview_path(cache, fkey)
    named = None
    if model.task == "classification" and model.samples:  # top labels on the manifest's named photos
        from .compare.named import named_predictions

        try:
            named = named_predictions(model, state.float_path, {v.variant.id: v.path for v in variants}, reg, cache)
        except Exception as e:  # the page still publishes without the table
            state.failures.append({"variant": None, "stage": "named samples",
                                   "error": str(e) if isinstance(e, QuantzooError) else f"{type(e).__name__}: {e}"})
    return BuiltModel(model=model, float_path=state.float_path, float_sha256=state.float_sha256,
                      float_size=state.float_path.stat().st_size, info=state.info or {}, variants=variants,
                      failures=list(state.failures), preview_input=pin if pin.is_file() else None,
                      preview_float=pfl if pfl.is_file() else None, dataset=ds, named=named)


@dataclass
class BuildResult:
    built: list                     # publish.BuiltModel
    failed_models: list[dict]       # {"model", "stage", "error"}: not published
    failures: list[dict]            # every failure: {"model", "variant", "stage", "error"}
    counts: dict                    # jobs, reused, quantized, compared, previews
    seconds: float
    stage_seconds: dict = field(default_factory=dict)  # worker seconds per stage (load, quantize, ...)


def _fetch_all(reg, models, cache: Cache, jobs: int, progress, states: dict[str, ModelState]) -> None:
    from .fetch import fetch_source, registry_sources

    items = registry_sources(reg, models, [])
    task = progress.add_task("fetch", total=len(items))
    errors: dict[str, str] = {}
    paths: dict[str, Path] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, 4))) as pool:
        futs = {pool.submit(fetch_source, src, cache, base_dir=base): ident for ident, src, base in items}
        for fut in as_completed(futs):
            ident = futs[fut]
            try:
                paths[ident] = fut.result()
            except QuantzooError as e:
                errors[ident] = str(e)
            except Exception as e:
                errors[ident] = f"{type(e).__name__}: {e}"
            progress.advance(task)
    for m in models:
        st = states[m.id]
        for ident, what in ((m.id, "the model"), (f"{m.id} labels", "its labels"), (m.dataset, "its dataset")):
            if ident in errors and st.error is None:
                st.error = ("fetch", f"{what} ({ident}): {errors[ident]}")
        if st.error is None:
            st.float_path = paths[m.id]


def run_pipeline(reg, models: list, cache: Cache, *, jobs: int | None = None, console=None) -> BuildResult:
    """Fetch, quantize and compare every model × variant (incrementally, in parallel)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    t0 = time.perf_counter()
    console = console or Console(stderr=True, soft_wrap=True)
    jobs = max(1, jobs or os.cpu_count() or 1)
    states = {m.id: ModelState(m) for m in models}
    # in-process jobs (--jobs 1) must see this build's manifests, not an earlier build's
    _STATE["registries"].clear()
    _STATE["evaluations"].clear()
    counts = {"jobs": 0, "reused": 0, "quantized": 0, "compared": 0, "previews": 0}
    seconds: dict[str, float] = {}  # worker time per stage, summed over jobs
    columns = (TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        _fetch_all(reg, models, cache, jobs, progress, states)

        todo: list[dict] = []
        for m in models:
            st = states[m.id]
            if st.error:
                continue
            try:
                st.float_sha256 = sha256_file(st.float_path)
                st.info = cached_graph_info(cache, st.float_path, st.float_sha256)
            except Exception as e:  # an unreadable float model fails that model only
                st.error = ("inspect", f"{type(e).__name__}: {e}" if not isinstance(e, QuantzooError) else str(e))
                continue
            identity = evaluation_identity(m, reg.datasets.get(m.dataset))
            for var in m.variants:
                counts["jobs"] += 1
                if job_is_done(cache, m, var, st.float_sha256, identity):
                    counts["reused"] += 1
                    continue
                todo.append({"zoo": str(reg.root), "cache": str(cache.root), "model": m.id, "variant": var.id,
                             "float_path": str(st.float_path), "float_sha256": st.float_sha256})
        # interleave models so parallel workers start on different models (each prepares its own data)
        rank: dict[str, int] = {}
        keyed = []
        for i, t in enumerate(todo):
            rank[t["model"]] = rank.get(t["model"], -1) + 1
            keyed.append((rank[t["model"]], i, t))
        todo = [t for _, _, t in sorted(keyed, key=lambda x: x[:2])]

        task = progress.add_task("quantize + compare", total=counts["jobs"], completed=counts["reused"])
        if not todo:
            progress.console.print(f"nothing changed: all {counts['jobs']} artifacts and comparisons reused "
                                   "from the cache (no quantize or compare work)")

        def record(r: dict) -> None:
            if r["error"]:
                states[r["model"]].failures.append({"variant": r["variant"], "stage": r["stage"], "error": r["error"]})
                first = r["error"].splitlines()[0][:300] if r["error"].strip() else r["error"]
                progress.console.print(f"[red]FAILED[/] {escape(r['model'])} {escape(r['variant'])} ({r['stage']}): "
                                       f"{escape(first)}", highlight=False)
            did = r["did"]
            if did and not r["error"]:
                done = {"quantize": "quantized", "compare": "compared", "preview": "preview drawn"}
                progress.console.print(f"  {r['model']} {r['variant']}: {', '.join(done[d] for d in did)}",
                                       highlight=False, markup=False)
            for name, sec in (r.get("seconds") or {}).items():
                seconds[name] = seconds.get(name, 0.0) + sec
            counts["quantized"] += "quantize" in did
            counts["compared"] += "compare" in did
            counts["previews"] += "preview" in did
            progress.advance(task)

        if todo and jobs == 1:
            for job in todo:
                record(run_job(job))
        elif todo:
            import multiprocessing

            ctx = multiprocessing.get_context("spawn")  # workers import onnxruntime fresh; no forked threads
            pool = ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx,
                                       initializer=_worker_init)
            try:
                futs = {pool.submit(run_job, job): job for job in todo}
                for fut in as_completed(futs):
                    job = futs[fut]
                    try:
                        r = fut.result()
                    except Exception as e:  # the worker died (out of memory, killed): report, go on
                        r = {"model": job["model"], "variant": job["variant"], "did": [], "stage": "worker",
                             "error": f"the worker process died: {type(e).__name__}: {e}"}
                    record(r)
            except BaseException:  # Ctrl-C: stop the workers now instead of letting them drain the queue
                for proc in list(getattr(pool, "_processes", {}).values()):
                    proc.terminate()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            pool.shutdown(wait=True)

    built, failed_models, failures = [], [], []
    for m in models:
        st = states[m.id]
        bm = None if st.error else collect(st, reg, cache)
        for f in st.failures:
            failures.append({"model": m.id, **f})
        if st.error:
            failures.append({"model": m.id, "variant": None, "stage": st.error[0], "error": st.error[1]})
            failed_models.append({"model": m.id, "stage": st.error[0], "error": st.error[1]})
        elif bm is None:
            failed_models.append({"model": m.id, "stage": "variants", "error": "no variant could be built"})
        else:
            built.append(bm)
    return BuildResult(built=built, failed_models=failed_models, failures=failures, counts=counts,
                       seconds=time.perf_counter() - t0, stage_seconds={k: round(v, 1) for k, v in seconds.items()})


# --- the command ----------------------------------------------------------------------------

def cli_build(args) -> int:
    """``quantzoo build [ID ...] [--zoo DIR] [--cache DIR] [--site-dir DIR] [--jobs N] [--artifact-base-url URL]``."""
    from rich.console import Console

    from .publish import publish_site
    from .registry import load_registry

    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, found {args.jobs}")
    base = args.artifact_base_url
    if base is not None and not base.lower().startswith(("https://", "http://")):
        raise UsageError(f"--artifact-base-url must be an http(s) URL, found {base!r}")
    reg = load_registry(args.zoo)
    models, datasets = reg.select(args.ids)
    if args.ids and datasets:
        raise UsageError(f"quantzoo build takes model ids; {', '.join(d.id for d in datasets)} "
                         f"{'is a dataset' if len(datasets) == 1 else 'are datasets'} (use quantzoo fetch for those)")
    if not models:
        raise QuantzooError(f"no models in {reg.root / 'models'}; add a model manifest first")
    cache = Cache(args.cache)
    console = Console(stderr=True, soft_wrap=True)
    result = run_pipeline(reg, models, cache, jobs=args.jobs, console=console)
    c = result.counts
    console.print(f"{c['jobs']} model × variant results: {c['reused']} reused from the cache, "
                  f"{c['quantized']} quantized, {c['compared']} compared, {c['previews']} previews drawn "
                  f"({result.seconds:.1f} s)", highlight=False)
    if result.stage_seconds:
        console.print("worker time by stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.stage_seconds.items()),
                      highlight=False)
    if not result.built:
        for f in result.failures:
            console.print(f"  {f['model']} {f['variant'] or ''} ({f['stage']}): {f['error']}", highlight=False)
        raise QuantzooError(f"no model could be built, so the site at {args.site_dir} was left as it was; "
                            "fix the failures above and run quantzoo build again")
    with console.status("publishing the site (pages, MkDocs, files, viewer)"):
        report = publish_site(result.built, args.site_dir, registry=reg, artifact_base_url=base,
                              failed=result.failed_models)
    n_var = sum(len(b.variants) for b in result.built)
    console.print(f"site: {report.site_dir / 'index.html'}  ({len(result.built)} models, {n_var} variants, "
                  f"{report.pages} pages, published in {report.seconds.get('total', 0):.1f} s)", highlight=False)
    if result.failures:
        console.print(f"[red]{len(result.failures)} failure{'s' if len(result.failures) != 1 else ''}:[/]")
        for f in result.failures:
            what = f"{f['model']} {f['variant']}" if f["variant"] else f["model"]
            console.print(f"  {what} ({f['stage']}): {f['error']}", highlight=False, markup=False)
        return 1
    return 0
