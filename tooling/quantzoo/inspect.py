"""`quantzoo inspect MODEL.onnx`: what an ONNX file holds, read without running it.

IR version, opset imports, producer, inputs and outputs, the operator histogram (subgraphs
included), where the weights live (initializers, `Constant` nodes, `If`/`Loop`/`Scan` bodies,
external data files, which are never read), custom-domain nodes, and what `quantize` would
compress and leave alone with its reasons: `quantize.weights.select` itself decides, so the
answer is the engine's own (ARCHITECTURE.md, "Where weights live in real models").

`inspect_model` gives the whole report as JSON-ready data; `graph_summary` the page's short form.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

from .errors import QuantzooError
from .units import human_count, human_size

STANDARD_DOMAINS = ("", "ai.onnx")  # ops counted by bare name; every other domain is "domain.Op"
ONNX_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview.training")  # not custom
_FLOAT_NAMES = {"float32", "float16", "float64", "bfloat16"}  # what counts as a parameter


def _load(path: Path):
    import onnx

    if not path.is_file():
        raise QuantzooError(f"{path}: {'not a file' if path.exists() else 'no such file'}; "
                            "expected an ONNX model (.onnx)")
    found = f"found {path.stat().st_size} bytes starting {path.open('rb').read(16)!r}"
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # protobuf raises DecodeError and friends
        raise QuantzooError(f"{path} is not an ONNX model: protobuf could not parse it ({e.__class__.__name__}); "
                            f"{found}") from None
    if not model.graph.node and not model.graph.initializer:
        raise QuantzooError(f"{path} is not an ONNX model: it parsed as an empty ModelProto (no graph nodes); {found}")
    return model


def dtype_name(data_type: int) -> str:
    """A tensor element type as people name it.

    >>> dtype_name(1), dtype_name(10), dtype_name(7), dtype_name(11)
    ('float32', 'float16', 'int64', 'float64')
    """
    import onnx

    name = onnx.TensorProto.DataType.Name(data_type).lower()
    return {"float": "float32", "double": "float64"}.get(name, name)


def _type_text(tp) -> str:
    kind = tp.WhichOneof("value")
    if kind in ("tensor_type", "sparse_tensor_type"):
        inner = dtype_name(getattr(tp, kind).elem_type)
        return inner if kind == "tensor_type" else f"sparse {inner}"
    if kind == "sequence_type":
        return f"sequence<{_type_text(tp.sequence_type.elem_type)}>"
    if kind == "optional_type":
        return f"optional<{_type_text(tp.optional_type.elem_type)}>"
    if kind == "map_type":
        return f"map<{dtype_name(tp.map_type.key_type)}, {_type_text(tp.map_type.value_type)}>"
    return kind or "unknown"


def _value_info(vi) -> dict:
    """{name, dtype, shape}: shape dims are ints, symbolic names, or None (unknown); shape None: unknown rank."""
    tp = vi.type
    kind = tp.WhichOneof("value")
    shape = None
    if kind in ("tensor_type", "sparse_tensor_type") and getattr(tp, kind).HasField("shape"):
        shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                 for d in getattr(tp, kind).shape.dim]
    return {"name": vi.name, "dtype": _type_text(tp), "shape": shape}


def _tensor_bytes(t, elements: int) -> int:
    """The bytes of a tensor's data: its raw bytes, its external length, else elements × width."""
    import onnx

    if t.raw_data:
        return len(t.raw_data)
    if t.data_location == onnx.TensorProto.EXTERNAL:
        length = {e.key: e.value for e in t.external_data}.get("length")
        if length is not None:
            return int(length)
    if t.data_type == onnx.TensorProto.STRING:
        return sum(len(s) for s in t.string_data)
    name = onnx.TensorProto.DataType.Name(t.data_type)
    bits = 4 if name in ("INT4", "UINT4", "FLOAT4E2M1") else 2 if name in ("INT2", "UINT2") else \
        8 * onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
    return math.ceil(elements * bits / 8)


def _external_file(t) -> str | None:
    import onnx

    if t.data_location != onnx.TensorProto.EXTERNAL:
        return None
    return {e.key: e.value for e in t.external_data}.get("location", "")


def _attr_value(a):
    """An attribute as JSON: numbers, strings and lists as they are; tensors and graphs described."""
    import onnx

    v = onnx.helper.get_attribute_value(a)

    def one(x):
        if isinstance(x, bytes):
            return x.decode("utf-8", "replace")
        if isinstance(x, onnx.TensorProto):
            return f"tensor {dtype_name(x.data_type)} {list(x.dims)}"
        if isinstance(x, onnx.GraphProto):
            return f"graph {x.name} ({len(x.node)} nodes)"
        if isinstance(x, (int, float, str)) or x is None:
            return x
        return str(x)

    return [one(x) for x in v] if isinstance(v, (list, tuple)) else one(v)


def reason_group(reason: str) -> str:
    """A skip reason without the per-tensor details, so equal reasons add up.

    >>> reason_group("120 elements < min_elements 2048")
    'fewer than 2048 elements'
    >>> reason_group("not a weight of Conv/MatMul (read by Add:1, Mul:0)")
    'not a weight of Conv/MatMul'
    >>> reason_group("int64: only float32 tensors are compressed")
    'int64: only float32 tensors are compressed'
    """
    reason = re.sub(r"^\d+ elements < min_elements (\d+)$", r"fewer than \1 elements", reason)
    return re.sub(r"^(not a weight of \S+) \(read by .*\)$", r"\1", reason)


def inspect_model(path, *, min_elements: int | None = None, op_types=None, exclude=()) -> dict:
    """Everything `quantzoo inspect` reports about an ONNX file, as JSON-ready data.

    The selection options are `quantize`'s (its defaults when not given). External data files
    are named and sized from the model's own records, never read.

    >>> import numpy as np, onnx, tempfile, os
    >>> from onnx import helper, numpy_helper, TensorProto
    >>> g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"]),
    ...     helper.make_node("Add", ["y", "b"], ["z"])], "g",
    ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
    ...     [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", 64])],
    ...     [numpy_helper.from_array(np.ones((64, 64), np.float32), "W"),
    ...      numpy_helper.from_array(np.ones(64, np.float32), "b")])
    >>> path = os.path.join(tempfile.mkdtemp(), "m.onnx")
    >>> onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    >>> r = inspect_model(path)
    >>> r["opsets"], r["inputs"][0]["shape"], r["ops"], r["parameters"]
    ({'ai.onnx': 17}, ['batch', 64], {'Add': 1, 'MatMul': 1}, 4160)
    >>> [(s["name"], s["op"]) for s in r["selected"]], [(s["name"], s["reason"][:15]) for s in r["skipped"]]
    ([('W', 'MatMul')], [('b', 'not a weight of')])
    """
    from .quantize.weights import find_tensors, select, walk_graphs

    path = Path(path)
    model = _load(path)
    ops: dict[str, int] = {}
    subgraphs, custom = [], []
    local_functions = {(f.domain, f.name) for f in model.functions}
    for scope, g in walk_graphs(model.graph):
        if scope:
            subgraphs.append({"scope": scope, "nodes": len(g.node)})
        for node in g.node:
            key = node.op_type if node.domain in STANDARD_DOMAINS else f"{node.domain}.{node.op_type}"
            ops[key] = ops.get(key, 0) + 1
            if node.domain not in ONNX_DOMAINS:
                custom.append({"domain": node.domain, "op_type": node.op_type, "name": node.name, "scope": scope,
                               "local_function": (node.domain, node.op_type) in local_functions,
                               "attributes": {a.name: _attr_value(a) for a in node.attribute}})

    tensors, by_id = [], {}
    for t in find_tensors(model):
        row = {"name": t.name, "scope": t.scope, "holder": "Constant" if t.constant_node is not None else "initializer",
               "dtype": dtype_name(t.dtype), "shape": list(t.shape), "elements": t.elements,
               "bytes": _tensor_bytes(t.proto, t.elements), "file": _external_file(t.proto)}
        tensors.append(row)
        by_id[(t.scope, t.name)] = row
    locations: dict[tuple, dict] = {}
    files: dict[str, dict] = {}
    for row in tensors:
        loc = locations.setdefault((row["holder"], row["scope"], row["file"]), {
            "holder": row["holder"], "scope": row["scope"], "file": row["file"],
            "tensors": 0, "elements": 0, "bytes": 0, "dtypes": {}})
        loc["tensors"] += 1
        loc["elements"] += row["elements"]
        loc["bytes"] += row["bytes"]
        loc["dtypes"][row["dtype"]] = loc["dtypes"].get(row["dtype"], 0) + 1
        if row["file"] is not None:
            f = files.setdefault(row["file"], {"file": row["file"], "tensors": 0, "bytes": 0,
                                               "exists": (path.parent / row["file"]).is_file()})
            f["tensors"] += 1
            f["bytes"] += row["bytes"]

    options = {"exclude": tuple(exclude or ())}
    if min_elements is not None:
        options["min_elements"] = min_elements
    if op_types:
        options["op_types"] = op_types
    chosen, skipped = select(_as_quantize_sees(model), **options)
    selected = [{**_pick(by_id, s.tensor.scope, s.tensor.name), "op": s.op, "channel_axis": s.channel_axis}
                for s in chosen]
    left = [{**_pick(by_id, s.scope, s.name), "reason": s.reason} for s in skipped]
    init_names = {t.name for t in model.graph.initializer}
    return {
        "path": str(path), "file_bytes": path.stat().st_size,
        "ir_version": model.ir_version,
        "opsets": {o.domain or "ai.onnx": o.version for o in model.opset_import},
        "producer": f"{model.producer_name} {model.producer_version}".strip() or None,
        "graph_name": model.graph.name,
        "inputs": [_value_info(v) for v in model.graph.input if v.name not in init_names],
        "initializer_inputs": [v.name for v in model.graph.input if v.name in init_names],
        "outputs": [_value_info(v) for v in model.graph.output],
        "ops": dict(sorted(ops.items())), "nodes": sum(ops.values()), "subgraphs": subgraphs,
        "parameters": sum(r["elements"] for r in tensors if r["dtype"] in _FLOAT_NAMES),
        "tensors": tensors, "locations": list(locations.values()), "external_files": list(files.values()),
        "selected": selected, "skipped": left,
        "custom_nodes": custom,
        "functions": [{"domain": f.domain, "name": f.name, "nodes": len(f.node)} for f in model.functions],
    }



def _as_quantize_sees(model):
    """The model as quantize selects from it (`quantize.legacy.strip_initializer_inputs` first)."""
    import onnx

    from .quantize.legacy import strip_initializer_inputs

    inits = {t.name for t in model.graph.initializer}
    if not any(v.name in inits for v in model.graph.input):
        return model  # the usual case: no copy
    view = onnx.ModelProto()
    view.CopyFrom(model)  # old models (initializers as inputs) are small
    strip_initializer_inputs(view)
    return view


def _pick(by_id: dict, scope: str, name: str) -> dict:
    row = by_id.get((scope, name)) or {"name": name, "scope": scope}
    return {k: row.get(k) for k in ("name", "scope", "holder", "dtype", "shape", "elements", "bytes", "file")}


def _total(rows: list[dict]) -> dict:
    return {"tensors": len(rows), "elements": sum(r.get("elements") or 0 for r in rows),
            "bytes": sum(r.get("bytes") or 0 for r in rows)}


def skip_reasons(skipped: list[dict]) -> list[dict]:
    """The skipped tensors grouped by `reason_group`, most elements first."""
    groups: dict[str, dict] = {}
    for s in skipped:
        g = groups.setdefault(reason_group(s["reason"]), {"reason": reason_group(s["reason"]), "tensors": 0,
                                                          "elements": 0, "bytes": 0, "examples": []})
        g["tensors"] += 1
        g["elements"] += s.get("elements") or 0
        g["bytes"] += s.get("bytes") or 0
        if len(g["examples"]) < 3:
            g["examples"].append(s["name"])
    return sorted(groups.values(), key=lambda g: (-g["elements"], g["reason"]))


def graph_summary(report: dict) -> dict:
    """The short form of an `inspect_model` report that the model page shows (no per-tensor rows)."""
    customs: dict[tuple, int] = {}
    for n in report["custom_nodes"]:
        customs[(n["domain"], n["op_type"])] = customs.get((n["domain"], n["op_type"]), 0) + 1
    return {
        "ir_version": report["ir_version"], "opsets": report["opsets"], "producer": report["producer"],
        "inputs": report["inputs"], "outputs": report["outputs"],
        "initializer_inputs": len(report["initializer_inputs"]),
        "locations": report["locations"], "external_files": report["external_files"],
        "selected": _total(report["selected"]),
        "skipped": {**_total(report["skipped"]), "reasons": skip_reasons(report["skipped"])},
        "custom_ops": [{"domain": d, "op_type": o, "count": c} for (d, o), c in sorted(customs.items())],
    }


def count_text(n: int, noun: str) -> str:
    """A count with its noun, singular or plural.

    >>> count_text(1, "tensor"), count_text(3, "tensor")
    ('1 tensor', '3 tensors')
    """
    return f"{n} {noun}{'' if n == 1 else 's'}"


def shape_text(shape) -> str:
    """A shape for people: symbolic dims by name, '?' for unknown ones.

    >>> shape_text(["batch", 3, None]), shape_text(None), shape_text([])
    ('[batch, 3, ?]', 'unknown', '[]')
    """
    if shape is None:
        return "unknown"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def where_text(loc: dict) -> str:
    """Where one group of tensors lives, for people.

    >>> where_text({"holder": "Constant", "scope": "If_0/then_branch", "file": None})
    'Constant nodes in If_0/then_branch'
    >>> where_text({"holder": "initializer", "scope": "", "file": "w.bin"})
    'initializers, data in external file w.bin'
    """
    text = "initializers" if loc["holder"] == "initializer" else "Constant nodes"
    if loc["scope"]:
        text += f" in {loc['scope']}"
    if loc["file"] is not None:
        text += f", data in external file {loc['file'] or '(unnamed)'}"
    return text


def cli_inspect(args) -> int:
    """`quantzoo inspect MODEL.onnx [--json]`: print the report (rich tables, or sorted JSON)."""
    ops = [o.strip() for o in args.op_types.split(",") if o.strip()] if args.op_types else None
    report = inspect_model(args.model, min_elements=args.min_elements, op_types=ops, exclude=args.exclude or ())
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        _print(report)
    return 0


def _print(r: dict) -> None:
    from rich.console import Console
    from rich.markup import escape as e
    from rich.table import Table

    con = Console(width=None if sys.stdout.isatty() else 160, highlight=False, soft_wrap=False)

    def table(title: str, *cols: str) -> Table:
        t = Table(title=e(title), title_justify="left", min_width=len(title))
        for c in cols:
            t.add_column(c.lstrip(">"), justify="right" if c.startswith(">") else "left")
        return t

    con.print(f"[bold]{e(r['path'])}[/bold]  {human_size(r['file_bytes'])}", markup=True)
    opsets = ", ".join(f"{d} {v}" for d, v in r["opsets"].items())
    nodes = f"{r['nodes']} ({count_text(len(r['subgraphs']), 'subgraph')})" if r["subgraphs"] else r["nodes"]
    for label, value in (("IR version", r["ir_version"]), ("opsets", opsets), ("producer", r["producer"]),
                         ("graph", r["graph_name"]), ("parameters", f"{r['parameters']:,}"), ("nodes", nodes)):
        if value not in (None, ""):
            con.print(f"  {label + ':':13}{value}", markup=False)
    if r["initializer_inputs"]:
        con.print(f"  {len(r['initializer_inputs'])} initializers are also listed as graph inputs (IR < 4 style)",
                  markup=False)
    io = table("Inputs and outputs", "", "name", "dtype", "shape")
    for kind, rows in (("input", r["inputs"]), ("output", r["outputs"])):
        for v in rows:
            io.add_row(kind, e(v["name"]), e(v["dtype"]), e(shape_text(v["shape"])))
    con.print(io)
    ops = table(f"{r['nodes']} nodes, {len(r['ops'])} operator types", "operator", ">count")
    for op, n in sorted(r["ops"].items(), key=lambda kv: (-kv[1], kv[0])):
        ops.add_row(e(op), str(n))
    con.print(ops)
    where = table("Where the weights live", "where", ">tensors", ">elements", ">bytes", "dtypes")
    for loc in r["locations"]:
        where.add_row(e(where_text(loc)), str(loc["tensors"]), human_count(loc["elements"]), human_size(loc["bytes"]),
                      e(", ".join(f"{d} ×{n}" for d, n in sorted(loc["dtypes"].items()))))
    con.print(where)
    for f in r["external_files"]:
        state = "present" if f["exists"] else "MISSING"
        con.print(f"  external data file {f['file']}: {f['tensors']} tensors, {human_size(f['bytes'])} "
                  f"({state} beside the model, not read)", markup=False)
    def amount(rows: list[dict]) -> str:
        t = _total(rows)
        return f"{count_text(t['tensors'], 'tensor')} ({human_count(t['elements'])} elements, {human_size(t['bytes'])})"

    sel = table(f"quantize would compress {amount(r['selected'])}", "tensor", "where", "op", "dtype", "shape",
                ">elements")
    for s in r["selected"]:
        where_one = s["holder"] + (f" in {s['scope']}" if s["scope"] else "") + (f", {s['file']}" if s["file"] else "")
        sel.add_row(e(s["name"]), e(where_one), e(s["op"]), e(str(s["dtype"])), e(shape_text(s["shape"])),
                    human_count(s["elements"]))
    con.print(sel if r["selected"] else sel.title)
    skip = table(f"and leave {amount(r['skipped'])} alone", "reason", ">tensors", ">elements", "for example")
    for g in skip_reasons(r["skipped"]):
        skip.add_row(e(g["reason"]), str(g["tensors"]), human_count(g["elements"]), e(", ".join(g["examples"])))
    con.print(skip if r["skipped"] else skip.title)
    if r["custom_nodes"]:
        cus = table(count_text(len(r["custom_nodes"]), "custom-domain node"), "domain", "op", "node", "where",
                    "attributes")
        for n in r["custom_nodes"]:
            op = n["op_type"] + (" (local function)" if n["local_function"] else "")
            cus.add_row(e(n["domain"]), e(op), e(n["name"]), e(n["scope"] or "main graph"),
                        e(json.dumps(n["attributes"], sort_keys=True, ensure_ascii=False)))
        con.print(cus)
    con.print("`--json` lists every tensor with its reason.", markup=False)
