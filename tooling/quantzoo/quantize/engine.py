"""quantize_weights / quantize_file: load, select, encode (in parallel when it pays), write."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import onnx

from ..errors import QuantzooError, UsageError
from .artifact import opset_of, write_compressed
from . import external
from .external import materialize, open_lazy, save, tensor_array, uses_external
from .legacy import modernize
from .modes import CHUNK as _CHUNK
from .modes import DEFAULT_GROUP_SIZE, MODES, Encoded, Layout, decode, decoded_slabs, load_lut_function
from .modes import _TooManyValues
from .native import AUTO_MIN_ELEMENTS, DEFAULT_REPRESENTATION, REPRESENTATIONS, auto_native, matmul_only
from .native import native_form, write_native
from .portable import inline_decode
from .recipe import Recipe, split_selected
from .report import QuantizeReport, TensorRow
from .weights import FLOAT_TYPES, Selected, select

# Tensors are spread over processes only when there is enough k-means work to pay for them.
_PARALLEL_MIN_ELEMENTS = 4_000_000
_SELECTOR_KEYS = ("min_elements", "op_types", "exclude")


# What a recipe's artifact records as its configuration: the schemes are per tensor (recipe.py).
RECIPE_CONFIG = {"mode": "auto", "nbits": None, "granularity": "mixed", "block_size": None, "group_size": None,
                 "lut_function": None}


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


def load_model(model) -> tuple[onnx.ModelProto, str, int, str, Path | None]:
    """(a private copy of the model, its sha256, its size in bytes, a label for messages, the
    folder its external data is read from).

    A path is opened lazily (`external.open_lazy`): its large weights stay on disk, in the
    ``.onnx`` itself or in the data files it names beside it, and are read one at a time when
    they are encoded, so a model is never held twice (ARCHITECTURE.md, "Large models").
    """
    base_dir = None
    if isinstance(model, onnx.ModelProto):
        data = model.SerializeToString(deterministic=True)
        label = f"model {model.graph.name or '(unnamed)'}"
        sha, size = hashlib.sha256(data).hexdigest(), len(data)
        parse = lambda: onnx.load_from_string(data)  # noqa: E731
    else:
        from ..cache import sha256_file

        path = Path(model)
        label = str(path)
        if not path.is_file():
            raise QuantzooError(f"{path}: no such file; expected an ONNX model (.onnx)")
        with open(path, "rb") as f:
            data = f.read(16)
        sha, size, base_dir = sha256_file(path), path.stat().st_size, path.parent
        parse = lambda: open_lazy(path)  # noqa: E731
    try:
        proto = parse()
    except Exception as e:  # protobuf raises DecodeError and friends
        raise QuantzooError(f"{label} is not an ONNX model: protobuf could not parse it ({e.__class__.__name__}); "
                            f"expected a .onnx file, found {size} bytes starting {data[:16]!r}") from None
    if not proto.graph.node and not proto.graph.initializer:
        raise QuantzooError(f"{label} is not an ONNX model: it parsed as an empty ModelProto "
                            f"(no graph nodes); expected a .onnx file, found {size} bytes starting {data[:16]!r}")
    if base_dir is None and uses_external(proto):
        raise QuantzooError(f"{label} keeps tensor data in external files, which a ModelProto cannot carry "
                            "the location of; pass the model's path instead (its data files beside it)")
    return proto, sha, size, label, base_dir


def _encode_task(task) -> tuple[Encoded, float]:
    mode, array, nbits, layout = task
    if layout.lut_function is None and layout.lut_function_name and MODES[mode].takes_lut_function:
        func, _ = load_lut_function(layout.lut_function_name)
        layout = Layout(**{**layout.__dict__, "lut_function": func})
    # float16 and bfloat16 weights are encoded as float32; the artifact casts the decode back.
    enc = MODES[mode].encode(array if array.dtype == np.float32 else array.astype(np.float32), nbits, layout)
    if array.size <= _CHUNK:
        approx = decode(enc).astype(array.dtype).astype(np.float64)
        ref = array.astype(np.float64)
        num = float(np.linalg.norm((ref - approx).ravel()))
        den = float(np.linalg.norm(ref.ravel()))
    else:  # a large tensor: the norms a slab at a time, never a decoded or float64 copy of the whole weight
        ref = array.reshape(-1)
        num = den = 0.0
        for i, part in decoded_slabs(enc):
            r = ref[i:i + part.size].astype(np.float64)
            num += float(np.sum(np.square(r - part.astype(array.dtype, copy=False).astype(np.float64))))
            den += float(np.sum(np.square(r)))
        num, den = float(np.sqrt(num)), float(np.sqrt(den))
    return enc, (num / den if den > 0 else (0.0 if num == 0 else float("inf")))


def _encode_all(cfgs: list[dict], chosen: list[Selected], jobs: int | None, label: str,
                base_dir: Path | None = None) -> list[tuple[Encoded, float]]:
    """Encode every chosen tensor with its configuration (`cfgs`, one per tensor: a uniform
    variant repeats one, a recipe gives each its own)."""
    cfg = cfgs[0] if cfgs else {"lut_function": None, "mode": "fp16"}
    func, func_name = (None, None)
    if cfg["lut_function"] is not None:
        func, func_name = load_lut_function(cfg["lut_function"])
    total = sum(s.tensor.elements for s in chosen)
    if jobs is None:
        heavy = any(MODES[c["mode"]].heavy for c in cfgs) and total >= _PARALLEL_MIN_ELEMENTS
        jobs = min(os.cpu_count() or 1, 4) if heavy else 1
    by_tensor = {id(s): c for s, c in zip(chosen, cfgs)}

    def task(s: Selected):  # each weight is read from disk when it is encoded, not before
        c = by_tensor[id(s)]
        layout = Layout(c["granularity"], s.channel_axis, s.block_axis, c["block_size"], c["group_size"],
                        func, func_name)
        return c["mode"], tensor_array(s.tensor.proto, base_dir), c["nbits"], layout

    # A callable given directly may not survive pickling: only a "module:function" travels.
    if jobs > 1 and len(chosen) > 1 and (func is None or isinstance(cfg["lut_function"], str)):
        tasks = [task(s) for s in chosen]
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        sendable = [(m, a, n, Layout(**{**lay.__dict__, "lut_function": None})) for m, a, n, lay in tasks]
        # Biggest first so that one large tensor does not start last.
        order = sorted(range(len(tasks)), key=lambda i: -tasks[i][1].size)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as ex:
            done = dict(zip(order, ex.map(_encode_guarded, [sendable[i] for i in order])))
        results = [done[i] for i in range(len(tasks))]
    else:
        results = [_encode_guarded(task(s)) for s in chosen]
    out = []
    for s, r in zip(chosen, results):
        if isinstance(r, _TooManyValues):
            c = by_tensor[id(s)]
            raise QuantzooError(
                f"{label}: tensor {s.tensor.name!r} has {r.count} distinct values; "
                f"{c['mode']} at nbits={c['nbits']} "
                f"holds at most {1 << c['nbits']}; use nbits >= {r.need}, kmeans_lut, or --exclude it")
        out.append(r)
    return out


def _encode_guarded(task):
    try:
        return _encode_task(task)
    except _TooManyValues as e:
        return e


def _quantize(model, cfg: dict, *, min_elements=2048, op_types=None, exclude=(), jobs=None,
              source_sha256=None, representation=DEFAULT_REPRESENTATION, recipe=None
              ) -> tuple[onnx.ModelProto, QuantizeReport, Path | None]:
    from .. import __version__

    if representation not in REPRESENTATIONS:
        raise UsageError(f"representation must be one of {', '.join(REPRESENTATIONS)}, found {representation!r}")
    proto, sha, size, label, base_dir = load_model(model)
    notes = modernize(proto, label, base_dir)  # old opsets upgraded, initializers out of the inputs
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
    cfgs = [cfg] * len(chosen)
    if recipe is not None:  # one configuration per tensor (recipe.py); the rest stay float
        chosen, skipped, cfgs = split_selected(chosen, skipped, recipe, label)
    encoded = _encode_all(cfgs, chosen, jobs, label, base_dir)
    bits = encoded[0][0].nbits if encoded else None  # bits per stored weight: nbits, or 16 for fp16
    source_sha256 = source_sha256 or sha
    meta = {
        "quantzoo.mode": cfg["mode"],
        "quantzoo.nbits": str(bits) if recipe is None else "mixed",
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
    if recipe is not None:
        meta.update(recipe.metadata())
    forms = _native_forms(proto, chosen, encoded, representation)
    if forms or representation == "native":
        meta["quantzoo.representation"] = representation
    if forms:  # the per-tensor choice: which tensors are DequantizeLinear
        meta["quantzoo.native_tensors"] = json.dumps(sorted(chosen[i].tensor.name for i in forms))
    stored = write_compressed(proto, [(s.tensor, e) for i, (s, (e, _)) in enumerate(zip(chosen, encoded))
                                      if i not in forms], meta)
    stored.update(write_native(proto, [(chosen[i].tensor, f, ir) for i, (f, ir) in forms.items()]))
    proto = inline_decode(proto)  # standard ONNX ops only, so every runtime reads it
    report = QuantizeReport(cfg["mode"], cfg["nbits"], cfg["granularity"], cfg["block_size"], cfg["group_size"],
                            lut_name, source_sha256, source_bytes=size)
    for i, (s, (enc, err)) in enumerate(zip(chosen, encoded)):
        n = s.tensor.elements
        report.tensors.append(TensorRow(
            s.tensor.name, s.tensor.scope, s.op, list(s.tensor.shape), n, enc.nbits, enc.granularity,
            stored[s.tensor.name], n * enc.nbits / 8 + 4 * enc.param_count, err, enc.note,
            FLOAT_TYPES[s.tensor.dtype], s.channel_axis, s.block_axis, "native" if i in forms else "decode"))
    report.skipped = skipped
    report.notes = notes
    return proto, report, base_dir


def _native_forms(proto: onnx.ModelProto, chosen: list[Selected], encoded: list, representation: str) -> dict:
    """index in `chosen` -> (DequantizeLinear form, IR version) of the tensors written natively."""
    forms = {}
    if representation == "decode":
        return forms
    opset = opset_of(proto)
    for i, (s, (enc, _)) in enumerate(zip(chosen, encoded)):
        if representation == "auto" and (s.op != "MatMul" or s.tensor.elements < AUTO_MIN_ELEMENTS):
            continue  # not a candidate: skip the work of building its form
        direct = matmul_only(s.tensor.graph, s.tensor.name)
        found = native_form(enc, s.channel_axis, opset, pad=direct)
        if found is not None and (representation == "native"
                                  or auto_native(found[0], direct, s.tensor.elements, s.tensor.dtype)):
            forms[i] = (found[0], found[2])
    return forms


def quantize_weights(model, nbits=None, mode="linear", *, granularity=None, block_size=None, group_size=None,
                     lut_function=None, min_elements=2048, op_types=None, exclude=(), jobs=None,
                     source_sha256=None, representation=DEFAULT_REPRESENTATION) -> onnx.ModelProto:
    """Compress the weights of an ONNX model (a path or a ModelProto); return the new ModelProto.

    The result runs in stock onnxruntime and decodes to exactly `modes.decode` of each tensor.
    A path may keep its data in external files beside it; the returned model holds all its data.
    `representation`: ``"auto"`` (DequantizeLinear for the large MatMul weights onnxruntime
    fuses into its n-bit kernel, the decode for the rest: `native.auto_native`), ``"decode"``
    (every tensor decoded in the graph) or ``"native"`` (DequantizeLinear wherever it can state
    the encoding exactly).

    >>> import numpy as np
    >>> from onnx import helper, numpy_helper, TensorProto
    >>> w = numpy_helper.from_array(np.linspace(-1, 1, 4096, dtype=np.float32).reshape(64, 64), "W")
    >>> g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
    ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
    ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], [w])
    >>> m = quantize_weights(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), 4, "kmeans_lut")
    >>> sorted({n.op_type for n in m.graph.node})[:4], m.graph.node[-1].op_type
    (['Cast', 'Constant', 'Div', 'Gather'], 'MatMul')
    """
    cfg = check_config(mode, nbits, granularity, block_size, group_size, lut_function)
    proto, _, base_dir = _quantize(model, cfg, min_elements=min_elements, op_types=op_types, exclude=exclude,
                                   jobs=jobs, source_sha256=source_sha256, representation=representation)
    if base_dir is not None:
        materialize(proto, base_dir)
    return proto


def quantize_file(src, dst, *, mode=None, nbits=None, granularity=None, block_size=None, group_size=None,
                  lut_function=None, source_sha256=None, jobs=None, representation=DEFAULT_REPRESENTATION,
                  external_threshold=None, data_name=None, recipe: Recipe | None = None,
                  **selector) -> QuantizeReport:
    """Compress `src` into `dst` (written atomically, byte-identical for the same inputs).

    `selector` takes ``min_elements``, ``op_types`` and ``exclude``. Nothing is written when
    anything fails. An artifact of `external_threshold` bytes or more (default
    `external.DEFAULT_THRESHOLD`, just under protobuf's 2 GB) is written as `dst` plus
    its data file `data_name` (default ``<dst name>.data``) beside it; ``report.artifact_files``
    then lists both, and ``report.artifact_bytes`` is their total.
    `recipe` (`recipe.Recipe`): one scheme per tensor instead of `mode`; its own selector and
    representation are used, and the same recipe gives the same bytes (ARCHITECTURE.md,
    "Automatic mixed precision").
    """
    unknown = sorted(set(selector) - set(_SELECTOR_KEYS))
    if unknown:
        raise UsageError(f"unknown selector option(s) {', '.join(unknown)}; expected {', '.join(_SELECTOR_KEYS)}")
    if recipe is not None:
        cfg = dict(RECIPE_CONFIG)
        selector, representation = recipe.selector(), recipe.representation
    else:
        if mode is None:
            raise UsageError("quantize_file needs mode= (or recipe=)")
        cfg = check_config(mode, nbits, granularity, block_size, group_size, lut_function)
    proto, report, base_dir = _quantize(src, cfg, jobs=jobs, source_sha256=source_sha256,
                                        representation=representation, recipe=recipe, **selector)
    try:
        files = save(proto, dst, threshold=external_threshold or external.DEFAULT_THRESHOLD, data_name=data_name,
                     base_dir=base_dir)
    except ValueError as e:
        raise QuantzooError(f"{src}: the compressed model cannot be serialized ({e})") from None
    report.artifact_bytes = sum(f["size"] for f in files)
    report.artifact_sha256 = files[0]["sha256"]
    report.artifact_files = files if len(files) > 1 else []
    return report
