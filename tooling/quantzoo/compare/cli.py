"""``quantzoo compare ORIGINAL.onnx QUANTIZED.onnx [--model ID] [--dataset ID | --data PATH] [--json OUT]
[--custom-op domain.OpType=module:Class ...]``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..errors import UsageError


class _Progress:
    """A one-line progress display on a terminal (stderr); silent when stderr is not a TTY."""

    def __init__(self, stream=None, every_s: float = 0.2):
        self.stream = stream or sys.stderr  # read at call time: a replaced sys.stderr is the one used
        self.tty = self.stream.isatty()
        self.every_s = every_s
        self.last = 0.0

    def __call__(self, label: str, done: int, total: int) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if done < total and now - self.last < self.every_s:
            return
        self.last = now
        end = "\n" if done >= total else ""
        self.stream.write(f"\r{label}: {done}/{total} samples{end}")
        self.stream.flush()


def cli_compare(args) -> int:
    from ..cache import Cache, write_json
    from ..customops import parse_cli
    from .core import compare_models

    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, found {args.batch_size}")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, found {args.limit}")
    sample_data = args.data or args.dataset
    if sample_data is None and not args.model:
        raise UsageError("no sample data: give --data PATH or --dataset ID, or --model ID to use that "
                         "model's evaluation dataset")
    registry = None
    if args.model or args.dataset or not Path(sample_data).exists():  # ids to look up
        from ..registry import load_registry

        registry = load_registry(args.zoo)
    custom_ops = parse_cli(getattr(args, "custom_op", None))  # --custom-op domain.OpType=module:Class
    comp = compare_models(args.original, args.quantized, sample_data, model=args.model, registry=registry,
                          cache=Cache(args.cache), batch_size=args.batch_size, limit=args.limit,
                          progress=_Progress(), custom_ops=custom_ops)
    d = comp.dataset
    where = d.get("id") or d.get("path") or f"{d.get('inputs')} input dicts"
    skipped = f", {d['skipped']} skipped" if d["skipped"] else ""
    print(f"{comp.model or args.original}: {args.quantized} vs {args.original} on {where} "
          f"({d['n']} samples{skipped}; task {comp.task or 'auto'})")
    for row in d["skipped_files"][:10]:
        print(f"warning: skipped {row['key']}: {row['reason']}", file=sys.stderr)
    if d["skipped"] > 10:
        print(f"warning: ... and {d['skipped'] - 10} more skipped", file=sys.stderr)
    print(comp.table())
    s = comp.sizes
    print(f"size: {s['quantized_bytes']:,} bytes vs {s['original_bytes']:,} ({s['ratio']:.3f}x)")
    if args.json:
        write_json(args.json, comp.to_dict())
        print(f"wrote {args.json}")
    return 0
