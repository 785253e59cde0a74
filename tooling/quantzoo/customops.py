"""Custom ops: a model's own operators, run in stock onnxruntime by Python classes.

A custom op is a node whose domain is neither ONNX's nor onnxruntime's and that is not a call
of a model-local function. Its implementation is a class with three methods::

    class GridSampler:
        def __init__(self, output_height, output_width):   # the node's attributes, by name
            ...
        def evaluate(self, image, theta):                   # numpy arrays in, numpy array(s) out
            ...
        def output_shapes(self, image_shape, theta_shape):  # the shapes evaluate returns
            return [(image_shape[0], image_shape[1], self.output_height, self.output_width)]

`session_options(custom_ops, model)` registers each class with onnxruntime through
onnxruntime-extensions' Python ops (``@onnx_op``) and returns session options that load that
library. Registration is process-wide and final for an op's signature (its inputs, outputs and
attribute types: registering one op twice makes every later session fail), so each op is
registered once, with a function that looks its class up at call time. An op of the model with
no class is an error naming it before any session is made. See ARCHITECTURE.md, "Custom layers".
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import QuantzooError
from .threads import ort_options

# Domains whose operators onnxruntime (or onnxruntime-extensions' own library) provides.
STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "ai.onnx.preview.training",
                              "com.microsoft", "com.microsoft.nchwc", "com.microsoft.experimental",
                              "com.ms.internal.nhwc", "ai.onnx.contrib"})
# onnx TensorProto element type -> PyCustomOpDef type name (onnxruntime-extensions)
_ELEM_TYPES = {1: "dt_float", 2: "dt_uint8", 3: "dt_int8", 5: "dt_int16", 6: "dt_int32", 7: "dt_int64",
               8: "dt_string", 9: "dt_bool", 10: "dt_float16", 11: "dt_double"}
_NP_TYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64, 9: np.bool_,
             10: np.float16, 11: np.float64}
_ATTR_TYPES = {1: ("dt_float", "f"), 2: ("dt_int64", "i"), 3: ("dt_string", "s")}  # AttributeProto FLOAT, INT, STRING


class CustomOpError(QuantzooError):
    """A custom op without an implementation, or an implementation that does not load or fit."""


def split_key(key: str) -> tuple[str, str]:
    """``"domain.OpType"`` -> (domain, op type): the op type is the part after the last dot.

    >>> split_key("ai.quantzoo.seed.GridSampler")
    ('ai.quantzoo.seed', 'GridSampler')
    """
    domain, _, op_type = str(key).rpartition(".")
    if not domain or not op_type:
        raise CustomOpError(f"custom op {key!r} must be written 'domain.OpType' (e.g. ai.example.GridSampler)")
    return domain, op_type


@dataclass(frozen=True)
class CustomNode:
    """One custom-domain node of a model: its op, attributes and the types it reads and writes."""

    domain: str
    op_type: str
    name: str
    attributes: dict            # name -> int | float | str | other (lists, tensors: not readable by Python ops)
    attribute_types: dict       # name -> onnx AttributeProto type
    input_types: tuple          # onnx element types (0 = unknown)
    output_types: tuple
    description: str = ""

    @property
    def key(self) -> str:
        return f"{self.domain}.{self.op_type}"


def _load(model) -> Any:
    import onnx

    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray)):
        return onnx.load_from_string(bytes(model))
    return onnx.load(str(model), load_external_data=False)


def _graphs(g):
    yield g
    for n in g.node:
        for a in n.attribute:
            if a.g.node or a.g.input:
                yield from _graphs(a.g)
            for sub in a.graphs:
                yield from _graphs(sub)


def custom_nodes(model) -> list[CustomNode]:
    """Every custom-domain node of `model` (a path, bytes or ModelProto), in graph order,
    subgraphs and model-local function bodies included.

    >>> from onnx import helper, TensorProto as T
    >>> n = helper.make_node("Scale", ["x"], ["y"], domain="ai.example", factor=2.0)
    >>> g = helper.make_graph([n], "g", [helper.make_tensor_value_info("x", T.FLOAT, [1])],
    ...                       [helper.make_tensor_value_info("y", T.FLOAT, [1])])
    >>> [(c.key, c.attributes) for c in custom_nodes(helper.make_model(g))]
    [('ai.example.Scale', {'factor': 2.0})]
    """
    import onnx
    from onnx import helper

    m = _load(model)
    local = {(f.domain, f.name) for f in m.functions}
    graphs = list(_graphs(m.graph))
    bodies = [n for f in m.functions for n in f.node]
    found = [n for n in [*(n for g in graphs for n in g.node), *bodies]
             if n.domain not in STANDARD_DOMAINS and (n.domain, n.op_type) not in local]
    if not found:
        return []
    types: dict[str, int] = {}
    try:
        inferred = onnx.shape_inference.infer_shapes(m)
        graphs = list(_graphs(inferred.graph))
    except Exception:  # inference is a help for the types, never a requirement
        pass
    for g in graphs:
        for v in [*g.input, *g.output, *g.value_info]:
            types[v.name] = v.type.tensor_type.elem_type
        for t in g.initializer:
            types[t.name] = t.data_type
    return [CustomNode(n.domain, n.op_type, n.name,
                       {a.name: helper.get_attribute_value(a) for a in n.attribute},
                       {a.name: a.type for a in n.attribute},
                       tuple(types.get(i, 0) for i in n.input), tuple(types.get(o, 0) for o in n.output),
                       n.doc_string)
            for n in found]


# --- loading implementation classes --------------------------------------------------------------

def _module_from(module_name: str, path: Path):
    """Import `module_name` from a fetched file (any file name) or a folder holding it."""
    if path.is_dir():
        sys.modules.pop(module_name, None)  # a same-named module from elsewhere must not shadow this one
        sys.path.insert(0, str(path))
        try:
            return importlib.import_module(module_name)
        finally:
            with contextlib.suppress(ValueError):
                sys.path.remove(str(path))
    loader = importlib.machinery.SourceFileLoader(module_name, str(path))
    spec = importlib.util.spec_from_file_location(module_name, str(path), loader=loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def import_class(spec: str, path: Path | None = None) -> type:
    """The class named by ``module:Class`` (dotted attributes allowed), imported from `path` (a
    fetched file or folder) when given, else from the running Python or the current folder."""
    module_name, _, attr = str(spec).partition(":")
    if not module_name or not attr:
        raise CustomOpError(f"a custom op class must be written 'module:Class', found {spec!r}")
    try:
        if path is None and importlib.util.find_spec(module_name.split(".")[0]) is None:
            path = Path(os.getcwd())  # like `python -m`: a module beside the command line
        obj = _module_from(module_name, Path(path)) if path is not None else importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as e:  # ImportError, AttributeError, or whatever the module's top level raises
        where = f" from {path}" if path is not None else ""
        raise CustomOpError(f"cannot load the custom op class {spec}{where}: {type(e).__name__}: {e}") from None
    return obj


def load_classes(custom_ops: dict | None, fetch: Callable[[dict], Path] | None = None) -> dict[str, type]:
    """``{"domain.OpType": class}`` from values that are a class, ``"module:Class"``, or a
    manifest entry ``{"class": "module:Class", "source": {...}}`` whose source `fetch` brings in.

    >>> class Twice:
    ...     def __init__(self): pass
    ...     def evaluate(self, x): return 2 * x
    ...     def output_shapes(self, shape): return [shape]
    >>> load_classes({"ai.example.Twice": Twice})
    {'ai.example.Twice': <class 'quantzoo.customops.Twice'>}
    """
    out: dict[str, type] = {}
    for key, spec in (custom_ops or {}).items():
        split_key(key)
        if isinstance(spec, dict):
            path = None
            if spec.get("source"):
                if fetch is None:
                    raise CustomOpError(f"custom op {key}: its implementation has a source, but nothing to fetch it with")
                path = fetch(spec["source"])
            cls = import_class(spec.get("class", ""), path)
        elif isinstance(spec, str):
            cls = import_class(spec)
        else:
            cls = spec
        missing = [m for m in ("evaluate", "output_shapes") if not callable(getattr(cls, m, None))]
        if not callable(cls) or missing:
            raise CustomOpError(f"custom op {key}: {getattr(cls, '__name__', cls)!r} is not an implementation class; "
                                f"it needs __init__(**attributes), evaluate(*inputs) and output_shapes(*input_shapes) "
                                f"(missing: {', '.join(missing) or 'a constructor'})")
        out[key] = cls
    return out


def identity(classes: dict) -> dict:
    """What cached outputs computed with `classes` depend on: each class's name and the sha256 of
    its source code (its name alone when the source cannot be read).

    >>> identity({"ai.example.Op": CustomOpError})["ai.example.Op"]["class"]
    'quantzoo.customops:CustomOpError'
    """
    import hashlib
    import inspect

    out = {}
    for key, cls in sorted(classes.items()):
        try:
            code = hashlib.sha256(inspect.getsource(cls).encode("utf-8")).hexdigest()
        except (OSError, TypeError):
            code = None
        out[key] = {"class": f"{cls.__module__}:{cls.__qualname__}", "source_sha256": code}
    return out


def check(model, classes: dict) -> list[CustomNode]:
    """The model's custom nodes; an error naming every op that has no class in `classes`."""
    nodes = custom_nodes(model)
    missing = sorted({n.key for n in nodes} - set(classes))
    if missing:
        listed = ", ".join(missing)
        raise CustomOpError(
            f"the model uses custom op{'s' if len(missing) > 1 else ''} {listed} with no implementation. Give one "
            f"class per op: compare_models(..., custom_ops={{{missing[0]!r}: Class}}), `quantzoo compare ... "
            f"--custom-op {missing[0]}=module:Class`, or in the model manifest custom_ops: {{{missing[0]}: "
            "{class: module:Class, source: ...}}. The class has __init__(**attributes), evaluate(*inputs) "
            "and output_shapes(*input_shapes).")
    return nodes


# --- registration with onnxruntime-extensions ------------------------------------------------------

_LOCK = threading.Lock()
_SIGNATURES: dict[str, tuple] = {}   # op key -> the signature it was registered with (final)
_CLASSES: dict[str, type] = {}       # op key -> the class that runs it now
_INSTANCES: dict[tuple, Any] = {}
_PENDING: list[Exception] = []      # errors raised by classes during the current `run`


def _signature(node: CustomNode) -> tuple:
    attrs = []
    for name, t in sorted(node.attribute_types.items()):
        if t not in _ATTR_TYPES:
            raise CustomOpError(f"custom op {node.key}: attribute {name!r} is not an int, float or string; "
                                "onnxruntime-extensions' Python ops read only those")
        attrs.append((name, _ATTR_TYPES[t][0]))
    return (tuple(_ELEM_TYPES.get(t or 1, "dt_float") for t in node.input_types),
            tuple(_ELEM_TYPES.get(t or 1, "dt_float") for t in node.output_types), tuple(attrs))


def _body(key: str, out_types: tuple, inputs: tuple, attrs: dict):
    """The registered function. A Python exception escaping a Python op aborts the whole process
    (onnxruntime-extensions 0.15), so an error is kept for `run` to raise and zeros go back."""
    try:
        return _run(key, out_types, inputs, attrs)
    except Exception as e:
        _PENDING.append(e if isinstance(e, CustomOpError) else
                        CustomOpError(f"custom op {key}: {type(e).__name__}: {e}"))
        shape = tuple(np.shape(inputs[0])) if inputs else ()
        outs = [np.zeros(shape, dtype=_NP_TYPES.get(t, np.float32)) for t in out_types]
        return tuple(outs) if len(outs) > 1 else outs[0]


def run(sess, names, feed: dict) -> list:
    """``sess.run(names, feed)``, raising the first error a custom op's class raised during it."""
    _PENDING.clear()
    try:
        out = sess.run(names, feed)
    except Exception:
        if _PENDING:
            raise _PENDING[0] from None
        raise
    if _PENDING:
        raise _PENDING[0]
    return out


def _run(key: str, out_types: tuple, inputs: tuple, attrs: dict):
    cls = _CLASSES[key]
    ident = (key, cls, tuple(sorted(attrs.items())))
    inst = _INSTANCES.get(ident)
    if inst is None:
        inst = _INSTANCES[ident] = cls(**attrs)
    outs = inst.evaluate(*inputs)
    outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    shapes = [tuple(s) for s in inst.output_shapes(*[tuple(np.shape(x)) for x in inputs])]
    got = [tuple(np.shape(o)) for o in outs]
    if len(outs) != len(out_types) or got != shapes:
        raise CustomOpError(f"custom op {key}: {cls.__name__}.evaluate returned shapes {got}, but the model has "
                            f"{len(out_types)} output(s) and output_shapes says {shapes}")
    outs = [np.asarray(o, dtype=_NP_TYPES.get(t, np.float32)) for o, t in zip(outs, out_types)]
    return tuple(outs) if len(outs) > 1 else outs[0]


def register(classes: dict, nodes: list[CustomNode]) -> None:
    """Register every op of `nodes` (once per process) and point it at its class in `classes`."""
    from onnxruntime_extensions import PyCustomOpDef, onnx_op

    with _LOCK:
        for node in nodes:
            sig = _signature(node)
            key = node.key
            if key in _SIGNATURES and _SIGNATURES[key] != sig:
                raise CustomOpError(f"custom op {key} was registered in this process with (inputs, outputs, "
                                    f"attributes) {_SIGNATURES[key]}, and this model needs {sig}; onnxruntime "
                                    "cannot change a registered op: run this model in a new process")
            _CLASSES[key] = classes[key]
            if key in _SIGNATURES:
                continue
            ins, outs, attrs = sig
            out_types = tuple(t or 1 for t in node.output_types)

            def body(*feed, _key=key, _out=out_types, **kw):
                return _body(_key, _out, feed, kw)

            onnx_op(op_type=f"{node.domain}::{node.op_type}",
                    inputs=[getattr(PyCustomOpDef, t) for t in ins], outputs=[getattr(PyCustomOpDef, t) for t in outs],
                    attrs={name: getattr(PyCustomOpDef, t) for name, t in attrs})(body)
            _SIGNATURES[key] = sig


def session_options(custom_ops: dict | None, model=None, options=None):
    """onnxruntime session options that run `model`'s custom ops with the classes of
    `custom_ops` (see `load_classes`); an op of `model` with no class is an error naming it.

    >>> import numpy as np, onnxruntime as ort
    >>> from onnx import helper, TensorProto as T
    >>> class Scale:
    ...     def __init__(self, factor): self.factor = factor
    ...     def evaluate(self, x): return x * self.factor
    ...     def output_shapes(self, shape): return [shape]
    >>> n = helper.make_node("Scale", ["x"], ["y"], domain="ai.example.doc", factor=3.0)
    >>> g = helper.make_graph([n], "g", [helper.make_tensor_value_info("x", T.FLOAT, [2])],
    ...                       [helper.make_tensor_value_info("y", T.FLOAT, [2])])
    >>> m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.example.doc", 1)])
    >>> so = session_options({"ai.example.doc.Scale": Scale}, m)
    >>> ort.InferenceSession(m.SerializeToString(), so).run(None, {"x": np.ones(2, np.float32)})[0].tolist()
    [3.0, 3.0]
    """
    so = options if options is not None else ort_options()
    classes = load_classes(custom_ops) if custom_ops else {}
    nodes = check(model, classes) if model is not None else []
    if nodes:
        from onnxruntime_extensions import get_library_path

        register(classes, nodes)
        so.register_custom_ops_library(get_library_path())
    return so


def parse_cli(values: list[str] | None) -> dict[str, str]:
    """``--custom-op domain.OpType=module:Class`` values -> ``{"domain.OpType": "module:Class"}``.

    >>> parse_cli(["ai.example.GridSampler=stn_ops:GridSampler"])
    {'ai.example.GridSampler': 'stn_ops:GridSampler'}
    """
    out = {}
    for v in values or []:
        key, sep, cls = str(v).partition("=")
        if not sep or ":" not in cls:
            raise CustomOpError(f"--custom-op expects domain.OpType=module:Class, found {v!r}")
        split_key(key)
        out[key.strip()] = cls.strip()
    return out

