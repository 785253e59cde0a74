"""Facts about a float model's graph for its page: parameter count, operators, opset, producer."""

from __future__ import annotations

import json
from pathlib import Path

from ..cache import Cache, write_json
from .keys import graph_info_key
from .store import graph_info_path

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
    """`graph_info` of the float model with this sha256, read from the cache when it is there."""
    target = graph_info_path(cache, graph_info_key(sha256))
    try:
        return json.loads(target.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    info = graph_info(path)
    write_json(target, info)
    return info
