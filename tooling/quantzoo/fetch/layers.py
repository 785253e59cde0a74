"""Custom layers: PyTorch modules exported as one custom-domain ONNX node each.

A `pytorch` source may name conversion functions for module classes the exporter cannot handle
(or that should stay opaque)::

    custom_layers:
      stn:GridSampler: stn:convert_grid_sampler      # module class -> conversion function

The function gets the module instance and returns what the node says about it::

    {"op_type": "GridSampler", "domain": "ai.quantzoo.seed",
     "attributes": {"output_height": 16, "output_width": 16},   # int, float or str values
     "description": "bilinear sampling of the input on an affine grid"}

During export every instance of such a class runs through a `torch.autograd.Function` whose
``symbolic`` writes that node (TorchScript exporter), so the exported graph holds exactly one
node per instance, with the attributes and the description in its ``doc_string``. The check
against PyTorch then needs the op's implementation (`quantzoo.customops`). A module the
exporter cannot handle and that has no conversion function is named in the error, with how to
add one. See ARCHITECTURE.md, "Custom layers".
"""

from __future__ import annotations

import contextlib
import re
import warnings
from typing import Callable, Iterator

from .architecture import ConversionError

MARKER = "quantzoo_instance"   # a temporary attribute that ties a node to its module instance
OP_TYPE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class LayerError(ConversionError):
    """A conversion function, or the layer it converts, did not check out."""


def class_name(cls: type) -> str:
    """A class as the manifest writes it, ``module:Qualname``.

    >>> class_name(LayerError)
    'quantzoo.fetch.layers:LayerError'
    """
    return f"{cls.__module__}:{cls.__qualname__}"


def node_spec(spec, where: str) -> dict:
    """A conversion function's result, checked: op_type, domain, attributes, description.

    >>> node_spec({"op_type": "Warp", "domain": "ai.example", "attributes": {"h": 16}}, "f")["attributes"]
    {'h': 16}
    >>> node_spec({"op_type": "Warp", "domain": ""}, "f")
    Traceback (most recent call last):
    ...
    quantzoo.fetch.layers.LayerError: f: 'domain' must be a custom domain such as 'ai.example', found ''
    """
    from ..customops import STANDARD_DOMAINS

    if not isinstance(spec, dict):
        raise LayerError(f"{where}: a conversion function returns a dict with op_type, domain, attributes and "
                         f"description, found {type(spec).__name__}")
    unknown = sorted(set(spec) - {"op_type", "domain", "attributes", "description"})
    if unknown:
        raise LayerError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: op_type, domain, attributes, description")
    op_type, domain = spec.get("op_type"), spec.get("domain")
    if not isinstance(op_type, str) or not OP_TYPE_RE.match(op_type):
        raise LayerError(f"{where}: 'op_type' must be an identifier such as 'GridSampler', found {op_type!r}")
    if not isinstance(domain, str) or domain in STANDARD_DOMAINS or not re.match(r"^[A-Za-z0-9_.]+$", domain):
        raise LayerError(f"{where}: 'domain' must be a custom domain such as 'ai.example', found {domain!r}")
    attrs = spec.get("attributes") or {}
    bad = {k: v for k, v in attrs.items() if not isinstance(k, str) or isinstance(v, bool)
           or not isinstance(v, (int, float, str))} if isinstance(attrs, dict) else {"attributes": attrs}
    if bad:
        raise LayerError(f"{where}: attributes must map names to an int, float or str (what onnxruntime-extensions' "
                         f"Python ops read), found {bad!r}")
    desc = spec.get("description") or ""
    if not isinstance(desc, str):
        raise LayerError(f"{where}: 'description' must be a string, found {type(desc).__name__}")
    return {"op_type": op_type, "domain": domain, "attributes": dict(attrs), "description": desc}


def _autograd_function(torch, original: Callable, spec: dict, index: int):
    """A Function that runs the module's own forward, and exports as one custom node."""
    suffix = {int: "i", float: "f", str: "s"}
    attrs = {f"{k}_{suffix[type(v)]}": v for k, v in spec["attributes"].items()}
    attrs[f"{MARKER}_i"] = index
    types: list = []  # each output's (dtype, shape), seen when the module runs during export

    class CustomLayer(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *args):
            out = original(*args)
            outs = [out] if isinstance(out, torch.Tensor) else list(out)
            types[:] = [(o.dtype, [None, *o.shape[1:]]) for o in outs]  # axis 0 is the dynamic batch
            return out

        @staticmethod
        def symbolic(g, *args):
            nodes = g.op(f"{spec['domain']}::{spec['op_type']}", *args, outputs=len(types), **attrs)
            for value, (dtype, shape) in zip([nodes] if len(types) == 1 else nodes, types):
                value.setType(args[0].type().with_dtype(dtype).with_sizes(shape))  # shape inference cannot see inside
            return nodes

    return CustomLayer


@contextlib.contextmanager
def opaque(model, layers: dict[type, Callable]) -> Iterator[list[dict]]:
    """While active, every instance of a class in `layers` runs (and exports) as one custom node;
    yields one spec per instance (module path, class, op, attributes, description)."""
    import torch

    specs: list[dict] = []
    patched = []
    try:
        for path, module in model.named_modules():
            fn = layers.get(type(module))
            if fn is None or any(not s["module"] or path.startswith(s["module"] + ".") for s in specs):
                continue
            where = f"custom layer {class_name(type(module))} (module {path or 'the model itself'!r})"
            try:
                result = fn(module)
            except Exception as e:
                raise LayerError(f"{where}: its conversion function failed: {type(e).__name__}: {e}") from None
            spec = {"module": path, "class": class_name(type(module)), **node_spec(result, where)}
            fn_cls = _autograd_function(torch, module.forward, spec, len(specs))

            def forward(*args, _fn=fn_cls, _where=where, **kwargs):
                if kwargs or not all(isinstance(a, torch.Tensor) for a in args):
                    raise LayerError(f"{_where}: a custom layer's forward must take tensors as positional arguments")
                return _fn.apply(*args)

            module.forward = forward  # an instance attribute: shadows the class's forward until restored
            patched.append(module)
            specs.append(spec)
        yield specs
    finally:
        for module in patched:
            del module.forward


def finish(onnx_bytes: bytes, specs: list[dict]) -> bytes:
    """Take the instance marker off every custom node, put the description in its doc_string,
    and check that each instance became exactly one node."""
    import onnx

    m = onnx.load_from_string(onnx_bytes)
    count = [0] * len(specs)
    for node in m.graph.node:
        marks = [a for a in node.attribute if a.name == MARKER]
        if not marks:
            continue
        index = marks[0].i
        node.attribute.remove(marks[0])
        node.doc_string = specs[index]["description"]
        count[index] += 1
    wrong = [f"{s['class']} (module {s['module']!r}) became {c} nodes" for s, c in zip(specs, count) if c != 1]
    if wrong:
        raise LayerError("each custom layer must run exactly once in forward: " + "; ".join(wrong))
    return m.SerializeToString()


def failed_module(model, example, error: Exception) -> tuple[str, str, str] | None:
    """(aten op, module path, module class) of the operator an export failed on, found by
    tracing the model and reading the failing op's scope; None when it cannot be told."""
    import torch

    found = re.search(r"operator '([\w:.]+)'", str(error))
    if not found:
        return None
    op = found.group(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(model, (example,), check_trace=False)
        scopes = [n.scopeName() for n in traced.inlined_graph.nodes() if n.kind() == op]
    except Exception:  # the message still names the op
        return op, "", ""
    if not scopes:
        return op, "", ""
    path = scopes[0].removeprefix("__module").lstrip(".")
    try:
        module = model.get_submodule(path)
    except AttributeError:
        return op, path, ""
    return op, path, class_name(type(module))


def unsupported_message(op: str, path: str, cls: str, opset: int, first_line: str) -> str:
    """The export error for an operator without an ONNX form, saying how to make it a custom layer.

    >>> print(unsupported_message("aten::grid_sampler", "sampler", "stn:GridSampler", 17, "…"))  # doctest: +ELLIPSIS
    torch.onnx.export at opset 17 cannot export aten::grid_sampler, used by module 'sampler' (class stn:GridSampler). ...
    """
    where = f", used by module {path!r} (class {cls})" if cls else ""
    name = cls or "module:Class"
    return (f"torch.onnx.export at opset {opset} cannot export {op}{where}. Export it as a custom layer: add "
            f"`custom_layers: {{\"{name}\": \"module:function\"}}` to the manifest's pytorch source, where "
            "function(module) returns {op_type, domain, attributes, description}, and give the op's implementation "
            "under the model's custom_ops: {\"domain.OpType\": {class: module:Class, source: ...}} "
            f"(ARCHITECTURE.md, \"Custom layers\"). The exporter said: {first_line}")
