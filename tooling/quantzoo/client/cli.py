"""The client's commands: `quantzoo list`, `quantzoo info MODEL`, `quantzoo pull MODEL`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..errors import QuantzooError
from ..units import human_size
from .select import agreement, check_constraints, check_shape, primary_metric, select_variant
from .transfer import deliver, deliver_variant, fetch_custom_ops, fetch_variant, open_catalog, resolve


def _console():
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160, highlight=False, soft_wrap=False)


def _count(n: Any) -> str:
    """A parameter count from index.json ('–' when it is not a number).

    >>> _count(784_123), _count(None), _count(True)
    ('784k', '–', '–')
    """
    from ..units import human_count

    if not isinstance(n, int) or isinstance(n, bool):
        return "–"
    return human_count(n)


def custom_op_line(op, cat, delivered: Path | None = None) -> str:
    """What `info` and `pull` say about one custom op the model needs: its class and parameters,
    and where its implementation is (or that the user brings it).

    >>> from quantzoo.catalog import CustomOpEntry, FileEntry
    >>> op = CustomOpEntry("Op", "ai.x", "op_impl:Op", None, {"k": 2}, 1, FileEntry("files/m/op_impl.py", 9, "a" * 64))
    >>> custom_op_line(op, type("C", (), {"base": "https://z.example/"})())
    'custom op ai.x.Op (class op_impl:Op, k=2): implementation https://z.example/files/m/op_impl.py, sha256 aaaaaaaaaaaa…'
    """
    params = "".join(f", {k}={v}" for k, v in op.attributes.items())
    head = f"custom op {op.key} (class {op.cls or 'not given'}{params})"
    if op.implementation is None:
        return f"{head}: the catalog publishes no implementation; run it with your own class (quantzoo.customops)"
    impl = op.implementation
    if delivered is not None:
        return f"{head}: implementation {delivered / impl.name}, sha256 {impl.sha256[:12]}… verified"
    return f"{head}: implementation {resolve(cat.base, impl.file)}, sha256 {impl.sha256[:12]}…"


def cli_list(args) -> int:
    """`quantzoo list`: one row per model of the catalog (optionally of one task)."""
    from rich.markup import escape as e
    from rich.table import Table

    cat = open_catalog(args.catalog, trust_key=args.trust_key)
    models = cat.models
    if args.task:
        models = tuple(m for m in models if m.task == args.task)
        if not models:
            tasks = sorted({str(m.task) for m in cat.models})
            raise QuantzooError(f"no model in {cat.index} has task {args.task!r}; its tasks: "
                                f"{', '.join(tasks) or 'none'}.")
    table = Table(title=e(f"{len(models)} model{'s' if len(models) != 1 else ''} in {cat.index}"),
                  title_justify="left")
    for col, just in (("id", "left"), ("task", "left"), ("parameters", "right"), ("float size", "right"),
                      ("recommended", "left"), ("size", "right"), ("ratio", "right")):
        table.add_column(col, justify=just, no_wrap=col in ("id", "recommended"))
    for m in models:
        rec = m.variant(m.recommended) if m.recommended is not None else None
        fsize = m.float.size if m.float else None
        table.add_row(e(m.id), e(str(m.task or "–")), _count(m.parameters), human_size(fsize),
                      e(rec.id) if rec else "none", human_size(rec.size) if rec else "–",
                      f"{rec.size / fsize:.1%}" if rec and fsize else "–")
    _console().print(table)
    return 0


def cli_info(args) -> int:
    """`quantzoo info MODEL`: the model's facts and every variant with its size and metrics."""
    from rich.markup import escape as e
    from rich.table import Table

    from ..compare.metrics import primary_metrics
    from ..compare.summary import format_summary

    cat = open_catalog(args.catalog, trust_key=args.trust_key)
    m = cat.model(args.model)
    con = _console()
    flt = m.float
    key = primary_metric(m)
    con.print(f"[bold]{e(m.id)}[/bold]  {e(str(m.name or ''))}".rstrip(), markup=True)
    for label, value in (("task", m.task), ("license", m.license),
                         ("parameters", _count(m.parameters) if m.parameters else None),
                         ("source", m.source.url if m.source else None),
                         ("source sha256", m.source.sha256 if m.source else None),
                         ("float", f"{human_size(flt.size)}  sha256 {flt.sha256}" if flt else None),
                         ("shapes", m.float_shapes.describe() if m.float_shapes else None),
                         ("recommended", m.recommended or "none"),
                         ("ranked by", f"{key[1]} ({key[0]})" if key else "no primary metric")):
        if value:
            con.print(f"  {label + ':':15}{value}", markup=False)
    ranked = primary_metrics()
    columns = sorted({(out, met) for v in m.variants for out, ms in v.metrics.items() for met in ms},
                     key=lambda c: (c != key, c[0], ranked.index(c[1]) if c[1] in ranked else len(ranked), c[1]))
    multi = len({c[0] for c in columns}) > 1
    table = Table(title=f"{len(m.variants)} variants", title_justify="left")
    for col, just in (("variant", "left"), ("mode", "left"), ("bits", "right"), ("size", "right"),
                      ("ratio", "right")):
        table.add_column(col, justify=just, no_wrap=col == "variant")
    for out, met in columns:
        table.add_column(e(f"{met} ({out})" if multi else met), justify="right")
    for v in m.variants:
        mark = " *" if v.id == m.recommended else ""
        cells = [format_summary(met, v.metrics.get(out, {}).get(met)) for out, met in columns]
        table.add_row(e(v.id) + mark, e(str(v.mode or "–")), e(str(v.nbits or "–")), human_size(v.size),
                      f"{v.size / flt.size:.1%}" if flt and flt.size else "–", *cells)
    con.print(table)
    for op in m.custom_ops:
        con.print(custom_op_line(op, cat), markup=False, soft_wrap=True)
    con.print("* recommended: the smallest variant whose 95 % interval meets the threshold.  `quantzoo pull "
              + m.id + " --variant V` downloads one.", markup=False)
    return 0


def cli_pull(args) -> int:
    """`quantzoo pull MODEL`: download the chosen variant into DIR and print its path."""
    check_constraints(args.max_size, args.min_agreement)
    cat = open_catalog(args.catalog, trust_key=args.trust_key)
    m = cat.model(args.model)
    entry = select_variant(m, variant=args.variant, max_size=args.max_size, min_agreement=args.min_agreement)
    if getattr(args, "shape", None):
        check_shape(m, entry, args.shape)
    dest = deliver_variant(fetch_variant(cat, entry, args.cache), Path(args.output_dir))
    ops = fetch_custom_ops(cat, m, args.cache)
    for op, blob in ops:
        if blob is not None:
            deliver(blob, Path(args.output_dir) / op.implementation.name)
    key = primary_metric(m)
    value = agreement(entry, key)
    note = f", {key[1]} {value:.4g}" if value is not None else ""
    print(f"{m.id} {entry.id}: {human_size(entry.size)}{note}, sha256 {entry.sha256[:12]}… verified",
          file=sys.stderr)
    for op, blob in ops:  # the model runs only with these registered (quantzoo.customops)
        print("needs " + custom_op_line(op, cat, Path(args.output_dir) if blob is not None else None), file=sys.stderr)
    print(dest.resolve())
    return 0
