"""quantize_weights / quantize_file: load, select, encode (in parallel when it pays), write."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import onnx

from ..errors import QuantzooError, UsageError
from .artifact import MIN_OPSET, opset_of, write_compressed
from .modes import DEFAULT_GROUP_SIZE, MODES, Encoded, Layout, decode, load_lut_function
from .modes import _TooManyValues
from .report import QuantizeReport, TensorRow
from .weights import Selected, select

# Tensors are spread over processes only when there is enough k-means work to pay for them.
_PARALLEL_MIN_ELEMENTS = 4_000_000
_SELECTOR_KEYS = ("min_elements", "op_types", "exclude")


def check_config(mode, nbits, granularity, block_size, group_size, lut_function) -> dict:
    """Validate a quantize configuration; return it normalised, or raise UsageError."""
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    spec = MODES[mode]
    if spec.nbits is None:
        if nbits not in (None, 16):
            raise UsageError(f"mode {mode} takes no nbits (it stores {spec.label}), found nbits={nbits!r}; "
                             "drop --nbits")
        nbits = None
    elif isinstance(nbits, bool) or not isinstance(nbits, (int, np.integer)) \
            or not spec.nbits[0] <= nbits <= spec.nbits[1]:
        raise UsageError(f"nbits must be an integer from {spec.nbits[0]} to {spec.nbits[1]} for mode {mode}, "
                         f"found {nbits!r}")
    else:
        nbits = int(nbits)
    granularity = granularity or spec.default_granularity
    if granularity not in spec.granularities:
        raise UsageError(f"granularity {granularity!r} does not apply to mode {mode}; "
                         f"expected one of {', '.join(spec.granularities)}")
    if granularity == "per_block":
        if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
            raise UsageError(f"granularity per_block needs a positive integer block_size, found {block_size!r}; "
                             "e.g. --block-size 32")
        block_size = int(block_size)
    elif block_size is not None:
        raise UsageError(f"block_size applies only to granularity per_block, not {granularity}")
    if granularity == "per_grouped_channel":
        group_size = DEFAULT_GROUP_SIZE if group_size is None else group_size
        if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)) or group_size < 1:
            raise UsageError(f"group_size must be a positive integer, found {group_size!r}")
        group_size = int(group_size)
    elif group_size is not None:
        raise UsageError(f"group_size applies only to granularity per_grouped_channel, not {granularity}")
    if spec.takes_lut_function and lut_function is None:
        raise UsageError(f"mode {mode} needs a lut_function: a callable f(weights, nbits) -> (lut, codes) "
                         "or 'module:function' (--lut-function)")
    if not spec.takes_lut_function and lut_function is not None:
        takers = [m.name for m in MODES.values() if m.takes_lut_function]
        raise UsageError(f"lut_function applies only to mode {' or '.join(takers)}, not {mode}")
    return {"mode": mode, "nbits": nbits, "granularity": granularity, "block_size": block_size,
            "group_size": group_size, "lut_function": lut_function}


def load_model(model) -> tuple[onnx.ModelProto, str, int, str]:
    """(a private copy of the model, its sha256, its size in bytes, a label for messages)."""
    if isinstance(model, onnx.ModelProto):
        data = model.SerializeToString(deterministic=True)
        label = f"model {model.graph.name or '(unnamed)'}"
    else:
        path = Path(model)
        label = str(path)
        if not path.is_file():
            raise QuantzooError(f"{path}: no such file; expected an ONNX model (.onnx)")
        data = path.read_bytes()
    try:
        proto = onnx.load_from_string(data)
    except Exception as e:  # protobuf raises DecodeError and friends
        raise QuantzooError(f"{label} is not an ONNX model: protobuf could not parse it ({e.__class__.__name__}); "
                            f"expected a .onnx file, found {len(data)} bytes starting {data[:16]!r}") from None
    if not proto.graph.node and not proto.graph.initializer:
        raise QuantzooError(f"{label} is not an ONNX model: it parsed as an empty ModelProto "
                            f"(no graph nodes); expected a .onnx file, found {len(data)} bytes starting {data[:16]!r}")
    for _, t in _all_tensors(proto):
        if t.data_location == onnx.TensorProto.EXTERNAL:
            raise QuantzooError(f"{label}: tensor {t.name!r} keeps its data in an external file; "
                                "load it with onnx.load(path) and pass the ModelProto, or save it without external data")
    if opset_of(proto) < MIN_OPSET:
        raise QuantzooError(f"{label}: opset {opset_of(proto)} is older than {MIN_OPSET}, which the in-graph "
                            "decode needs; upgrade it with onnx.version_converter.convert_version(model, 13)")
    return proto, hashlib.sha256(data).hexdigest(), len(data), label


def _all_tensors(proto):
    from .weights import walk_graphs

    for scope, g in walk_graphs(proto.graph):
        for t in g.initializer:
            yield scope, t
        for n in g.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    yield scope, a.t


def _encode_task(task) -> tuple[Encoded, float]:
    mode, array, nbits, layout = task
    if layout.lut_function is None and layout.lut_function_name and MODES[mode].takes_lut_function:
        func, _ = load_lut_function(layout.lut_function_name)
        layout = Layout(**{**layout.__dict__, "lut_function": func})
    enc = MODES[mode].encode(array, nbits, layout)
    approx = decode(enc).astype(np.float64)
    ref = array.astype(np.float64)
    num = float(np.linalg.norm((ref - approx).ravel()))
    den = float(np.linalg.norm(ref.ravel()))
    return enc, (num / den if den > 0 else (0.0 if num == 0 else float("inf")))


def _encode_all(cfg: dict, chosen: list[Selected], jobs: int | None, label: str) -> list[tuple[Encoded, float]]:
    func, func_name = (None, None)
    if cfg["lut_function"] is not None:
        func, func_name = load_lut_function(cfg["lut_function"])
    tasks = []
    for s in chosen:
        layout = Layout(cfg["granularity"], s.channel_axis, s.block_axis, cfg["block_size"], cfg["group_size"],
                        func, func_name)
        tasks.append((cfg["mode"], s.tensor.array(), cfg["nbits"], layout))
    total = sum(s.tensor.elements for s in chosen)
    if jobs is None:
        heavy = MODES[cfg["mode"]].heavy and total >= _PARALLEL_MIN_ELEMENTS
        jobs = min(os.cpu_count() or 1, 4) if heavy else 1
    # A callable given directly may not survive pickling: only a "module:function" travels.
    if jobs > 1 and len(tasks) > 1 and (func is None or isinstance(cfg["lut_function"], str)):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        sendable = [(m, a, n, Layout(**{**lay.__dict__, "lut_function": None})) for m, a, n, lay in tasks]
        # Biggest first so that one large tensor does not start last.
        order = sorted(range(len(tasks)), key=lambda i: -tasks[i][1].size)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as ex:
            done = dict(zip(order, ex.map(_encode_guarded, [sendable[i] for i in order])))
        results = [done[i] for i in range(len(tasks))]
    else:
        results = [_encode_guarded(t) for t in tasks]
    out = []
    for s, r in zip(chosen, results):
        if isinstance(r, _TooManyValues):
            raise QuantzooError(
                f"{label}: tensor {s.tensor.name!r} has {r.count} distinct values; "
                f"{cfg['mode']} at nbits={cfg['nbits']} "
                f"holds at most {1 << cfg['nbits']}; use nbits >= {r.need}, kmeans_lut, or --exclude it")
        out.append(r)
    return out


def _encode_guarded(task):
    try:
        return _encode_task(task)
    except _TooManyValues as e:
        return e


def _quantize(model, cfg: dict, *, min_elements=2048, op_types=None, exclude=(), jobs=None,
              source_sha256=None) -> tuple[onnx.ModelProto, QuantizeReport]:
    from .. import __version__

    proto, sha, size, label = load_model(model)
    if isinstance(op_types, str):
        op_types = [o.strip() for o in op_types.split(",") if o.strip()]
    if isinstance(exclude, str):
        exclude = (exclude,)
    if isinstance(min_elements, bool) or not isinstance(min_elements, (int, np.integer)) or min_elements < 0:
        raise UsageError(f"min_elements must be a non-negative integer, found {min_elements!r}")
    chosen, skipped = select(proto, min_elements=int(min_elements), op_types=op_types, exclude=tuple(exclude))
    if not chosen:
        reasons = sorted({s.reason for s in skipped})[:4]
        raise QuantzooError(
            f"{label}: no tensor selected for compression ({len(skipped)} constant tensors, all skipped: "
            + ("; ".join(reasons) or "the model has no constant tensors")
            + "); lower --min-elements, widen --op-types or loosen --exclude")
    encoded = _encode_all(cfg, chosen, jobs, label)
    bits = encoded[0][0].nbits  # bits per stored weight: nbits, or 16 for fp16
    source_sha256 = source_sha256 or sha
    meta = {
        "quantzoo.mode": cfg["mode"],
        "quantzoo.nbits": str(bits),
        "quantzoo.granularity": cfg["granularity"],
        "quantzoo.tool_version": __version__,
        "quantzoo.source_sha256": source_sha256,
        "quantzoo.compressed_tensors": str(len(chosen)),
    }
    lut_name = None
    if cfg["lut_function"] is not None:
        lut_name = load_lut_function(cfg["lut_function"])[1]
        meta["quantzoo.lut_function"] = lut_name
    for key in ("block_size", "group_size"):
        if cfg[key] is not None:
            meta[f"quantzoo.{key}"] = str(cfg[key])
    stored = write_compressed(proto, [(s.tensor, e) for s, (e, _) in zip(chosen, encoded)], meta)
    report = QuantizeReport(cfg["mode"], cfg["nbits"], cfg["granularity"], cfg["block_size"], cfg["group_size"],
                            lut_name, source_sha256, source_bytes=size)
    for s, (enc, err) in zip(chosen, encoded):
        n = s.tensor.elements
        report.tensors.append(TensorRow(
            s.tensor.name, s.tensor.scope, s.op, list(s.tensor.shape), n, bits, enc.granularity,
            stored[s.tensor.name], n * bits / 8 + 4 * enc.param_count, err, enc.note))
    report.skipped = skipped
    return proto, report


def quantize_weights(model, nbits=None, mode="linear", *, granularity=None, block_size=None, group_size=None,
                     lut_function=None, min_elements=2048, op_types=None, exclude=(), jobs=None,
                     source_sha256=None) -> onnx.ModelProto:
    """Compress the weights of an ONNX model (a path or a ModelProto); return the new ModelProto.

    The result runs in stock onnxruntime and decodes to exactly `modes.decode` of each tensor.

    >>> import numpy as np
    >>> from onnx import helper, numpy_helper, TensorProto
    >>> w = numpy_helper.from_array(np.linspace(-1, 1, 4096, dtype=np.float32).reshape(64, 64), "W")
    >>> g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
    ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
    ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [w])
    >>> m = quantize_weights(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), 4, "kmeans_lut")
    >>> [n.op_type for n in m.graph.node]
    ['DecodeLut4', 'MatMul']
    """
    cfg = check_config(mode, nbits, granularity, block_size, group_size, lut_function)
    proto, _ = _quantize(model, cfg, min_elements=min_elements, op_types=op_types, exclude=exclude,
                         jobs=jobs, source_sha256=source_sha256)
    return proto


def quantize_file(src, dst, *, mode, nbits=None, granularity=None, block_size=None, group_size=None,
                  lut_function=None, source_sha256=None, jobs=None, **selector) -> QuantizeReport:
    """Compress `src` into `dst` (written atomically, byte-identical for the same inputs).

    `selector` takes ``min_elements``, ``op_types`` and ``exclude``. Nothing is written when
    anything fails.
    """
    unknown = sorted(set(selector) - set(_SELECTOR_KEYS))
    if unknown:
        raise UsageError(f"unknown selector option(s) {', '.join(unknown)}; expected {', '.join(_SELECTOR_KEYS)}")
    from ..cache import atomic_write_bytes, sha256_bytes

    cfg = check_config(mode, nbits, granularity, block_size, group_size, lut_function)
    proto, report = _quantize(src, cfg, jobs=jobs, source_sha256=source_sha256, **selector)
    try:
        data = proto.SerializeToString(deterministic=True)
    except ValueError as e:
        raise QuantzooError(f"{src}: the compressed model cannot be serialized ({e})") from None
    atomic_write_bytes(dst, data)
    report.artifact_bytes = len(data)
    report.artifact_sha256 = sha256_bytes(data)
    return report
