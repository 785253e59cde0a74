"""Facts about a float model's graph for its page: parameter count, operators, opset, producer,
and the `quantzoo inspect` summary (IR, opsets, inputs and outputs, where the weights live, what
quantize compresses and leaves alone): one walk, `inspect.inspect_model`, cached per float sha256."""

from __future__ import annotations

import json
from pathlib import Path

from ..cache import Cache, write_json
from .keys import graph_info_key
from .store import graph_info_path


def graph_info(path: Path) -> dict:
    """Parameter count (float elements in initializers and Constant nodes, subgraphs included),
    operator histogram, opset and producer of an ONNX file, and its `inspect.graph_summary`
    under "graph" (which records the quantize engine revision its selection comes from)."""
    from ..inspect import graph_summary, inspect_model
    from ..quantize import ENGINE_REVISION

    report = inspect_model(path)
    return {"parameters": report["parameters"], "ops": report["ops"], "opset": report["opsets"].get("ai.onnx"),
            "producer": report["producer"],
            "graph": {**graph_summary(report), "engine_revision": ENGINE_REVISION}}


def cached_graph_info(cache: Cache, path: Path, sha256: str) -> dict:
    """`graph_info` of the float model with this sha256, read from the cache when it is there and
    its selection summary comes from this quantize engine revision (else computed again)."""
    from ..quantize import ENGINE_REVISION

    target = graph_info_path(cache, graph_info_key(sha256))
    try:
        info = json.loads(target.read_text(encoding="utf-8"))
        if (info.get("graph") or {}).get("engine_revision") == ENGINE_REVISION:
            return info
    except (OSError, ValueError, AttributeError):
        pass
    info = graph_info(path)
    write_json(target, info)
    return info
