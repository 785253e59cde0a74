"""Weight compression: linear and lookup-table quantization at 1-8 bits and fp16, written as true
n-bit ONNX artifacts that stock onnxruntime loads and runs at float speed.

    >>> from quantzoo.quantize import quantize_file  # doctest: +SKIP
    >>> report = quantize_file("model.onnx", "model-kmeans4.onnx", mode="kmeans_lut", nbits=4)  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP

Modules: `weights` (where weights live, which to compress), `modes` (the `Mode` records and the
numpy decode), `variants` (the variant-id grammar), `kmeans` (1-D k-means), `pack` (bit
planes), `artifact` (the ONNX decode), `native` (DequantizeLinear), `engine` (the orchestration), `report`.
"""

from __future__ import annotations

from ..errors import UsageError
from .engine import check_config, quantize_file, quantize_weights
from .modes import MODES, Encoded, Layout, Mode, decode
from .native import DEFAULT_REPRESENTATION
from .report import QuantizeReport, TensorRow
from .weights import Skipped

# Bump when the engine's output for the same input and settings changes (k-means, packing,
# decode graph): the pipeline keys cached artifacts by it, so old artifacts are never reused.
# 2: the decode functions are inlined into plain standard-ONNX nodes (portable.py).
# 3: large fused MatMul weights are written as native DequantizeLinear by default (native.auto_native).
ENGINE_REVISION = 3

__all__ = [
    "quantize_weights", "quantize_file", "QuantizeReport", "TensorRow", "Skipped",
    "MODES", "Mode", "Encoded", "Layout", "decode", "check_config", "cli_quantize",
]


def cli_quantize(args) -> int:
    """`quantzoo quantize IN.onnx -o OUT.onnx --mode MODE [...]`: compress and print the summary."""
    if getattr(args, "auto", False) or getattr(args, "recipe", None):  # one scheme per tensor: autocli.py
        from .autocli import cli_auto, cli_recipe

        if args.mode is not None:
            raise UsageError("--mode applies to every tensor; --auto and --recipe choose per tensor: drop --mode")
        return cli_auto(args) if args.auto else cli_recipe(args)
    if args.mode is None:
        raise UsageError("quantize needs --mode MODE, --auto or --recipe R.json")
    selector = {"exclude": list(args.exclude or [])}
    if args.min_elements is not None:
        selector["min_elements"] = args.min_elements
    if args.op_types:
        selector["op_types"] = args.op_types
    report = quantize_file(
        args.input, args.output, mode=args.mode, nbits=args.nbits, granularity=args.granularity,
        block_size=args.block_size, group_size=args.group_size, lut_function=args.lut_function,
        jobs=args.jobs, representation=args.representation or DEFAULT_REPRESENTATION, **selector)
    print(report.summary())
    print(f"wrote {args.output}")
    return 0
