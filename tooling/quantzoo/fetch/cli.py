"""`quantzoo fetch`: every source the named models and datasets need, fetched in parallel."""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from ..cache import Cache, key_of
from ..errors import QuantzooError
from ..units import human_size
from .kinds import action, describe, fetch_source


def fetch_all(items: list[tuple[str, dict, Path | None]], cache: Cache, jobs: int | None = None,
              echo: Callable[[str], None] = print) -> tuple[dict[str, Path], dict[str, str]]:
    """Fetch (id, source, base_dir) items in parallel; return (paths by id, errors by id)."""
    jobs = max(1, jobs or os.cpu_count() or 1)
    paths: dict[str, Path] = {}
    failures: dict[str, str] = {}

    def one(item):
        ident, source, base = item
        hit = action(source, cache) == "hit"
        path = fetch_source(source, cache, base_dir=base)
        return ident, path, hit

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(one, it): it for it in items}
        for fut, (ident, source, _) in futures.items():
            try:
                ident, path, hit = fut.result()
            except QuantzooError as e:
                failures[ident] = str(e)
                echo(f"FAILED  {ident}: {e}")
                continue
            paths[ident] = path
            echo(f"{'cached ' if hit else 'fetched'} {ident}  {describe(source)}  ({human_size(source.get('size'))})")
    return paths, failures


def registry_sources(reg, models, datasets) -> list[tuple[str, dict, Path | None]]:
    """Every source the named models and datasets need: the model, its label file, its judge's
    float model and labels, its dataset."""
    from ..compare.judge import judge_model

    items: list[tuple[str, dict, Path | None]] = []
    seen = set()

    def add(ident, source, base):
        key = (source.get("kind"), source.get("sha256") or key_of(source), str(source.get("path")))
        if key not in seen:
            seen.add(key)
            items.append((ident, source, base))

    for m in models:
        source = m.source
        if source.get("kind") == "pytorch" and getattr(m, "custom_ops", None):
            source = {**source, "custom_ops": m.custom_ops}  # the conversion's check runs its custom layers
        add(m.id, source, m.path.parent if m.path else None)
        if isinstance(m.labels, dict) and "file" in m.labels:
            add(f"{m.id} labels", m.labels["file"], m.path.parent if m.path else None)
    # judges after every model's own entries: a judge that is also built keeps its own id (the
    # build looks its float file up by it); the same source is fetched once
    for m in models:
        try:  # another model's float model reads this one's outputs (compare/judge.py)
            judge = judge_model(m, reg)
        except QuantzooError:  # reported for that model when the build plans it (pipeline.run.judged)
            judge = None
        if judge is not None:
            add(f"{m.id} judge {judge.id}", judge.source, judge.path.parent if judge.path else None)
            if isinstance(judge.labels, dict) and "file" in judge.labels:
                add(f"{m.id} judge {judge.id} labels", judge.labels["file"], judge.path.parent if judge.path else None)
    wanted = list(datasets)
    for m in models:
        ds = reg.datasets.get(m.dataset)
        if ds is not None and ds not in wanted:
            wanted.append(ds)
    for d in wanted:
        add(d.id, d.source, d.path.parent if d.path else None)
    return items


def cli_fetch(args) -> int:
    import time

    from ..registry import load_registry  # here, not at the top: the registry imports this package's records

    reg = load_registry(args.zoo)
    models, datasets = reg.select(args.ids)
    cache = Cache(args.cache)
    items = registry_sources(reg, models, datasets)
    t0 = time.monotonic()
    paths, failures = fetch_all(items, cache, args.jobs)
    took = time.monotonic() - t0
    if failures:
        print(f"{len(failures)} of {len(items)} sources failed (cache: {cache.root}); see the messages above.",
              file=sys.stderr)
        return 1
    print(f"ok: {len(paths)} sources in {cache.root} ({took:.1f} s)")
    return 0
