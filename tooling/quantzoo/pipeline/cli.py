"""`quantzoo build`: check the command line, run the pipeline, publish the site, report."""

from __future__ import annotations

import os

from ..errors import QuantzooError, UsageError


def cli_build(args) -> int:
    """``quantzoo build [ID ...] [--zoo DIR] [--cache DIR] [--site-dir DIR] [--jobs N] [--artifact-base-url URL]
    [--sign-key PATH]
    [--executor local|ray] [--address ADDR] [--shared-cache]``.

    Exits 1 when anything failed (the rest is still published), 2 on a wrong command line.
    """
    from rich.console import Console

    from ..cache import Cache
    from ..publish import publish_site
    from ..registry import load_registry
    from .execute import make_executor
    from .run import run_pipeline

    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, found {args.jobs}")
    executor = make_executor(getattr(args, "executor", "local"), args.jobs or os.cpu_count() or 1,
                             address=getattr(args, "address", None), shared_cache=getattr(args, "shared_cache", False))
    base = args.artifact_base_url
    if base is not None and not base.lower().startswith(("https://", "http://")):
        raise UsageError(f"--artifact-base-url must be an http(s) URL, found {base!r}")
    sign_key = getattr(args, "sign_key", None)
    if sign_key:
        from ..signing import check_signing_key

        check_signing_key(sign_key)
    reg = load_registry(args.zoo)
    models, datasets = reg.select(args.ids)
    if args.ids and datasets:
        raise UsageError(f"quantzoo build takes model ids; {', '.join(d.id for d in datasets)} "
                         f"{'is a dataset' if len(datasets) == 1 else 'are datasets'} (use quantzoo fetch for those)")
    if not models:
        raise QuantzooError(f"no models in {reg.root / 'models'}; add a model manifest first")
    cache = Cache(args.cache)
    console = Console(stderr=True, soft_wrap=True)
    result = run_pipeline(reg, models, cache, jobs=args.jobs, console=console, executor=executor)
    c = result.counts
    console.print(f"{c.jobs} model × variant results: {c.reused} reused from the cache, "
                  f"{c.quantized} quantized, {c.compared} compared, {c.previews} previews drawn "
                  f"({result.seconds:.1f} s)", highlight=False)
    if result.stage_seconds:
        console.print("worker time by stage: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.stage_seconds.items()),
                      highlight=False)
    for model, stages in result.model_seconds.items():  # costliest first: where a build's time goes
        console.print(f"  {model}: {sum(stages.values()):.1f} s (" + ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
                      + ")", highlight=False)
    if not result.built:
        for f in result.failures:
            console.print(f"  {f.model} {f.variant or ''} ({f.stage}): {f.error}", highlight=False)
        raise QuantzooError(f"no model could be built, so the site at {args.site_dir} was left as it was; "
                            "fix the failures above and run quantzoo build again")
    with console.status("publishing the site (pages, MkDocs, files, viewer)"):
        report = publish_site(result.built, args.site_dir, registry=reg, artifact_base_url=base,
                              failed=result.failed_models, sign_key=sign_key)
    n_var = sum(len(b.variants) for b in result.built)
    console.print(f"site: {report.site_dir / 'index.html'}  ({len(result.built)} models, {n_var} variants, "
                  f"{report.pages} pages, published in {report.seconds.get('total', 0):.1f} s)", highlight=False)
    if result.failures:
        console.print(f"[red]{len(result.failures)} failure{'s' if len(result.failures) != 1 else ''}:[/]")
        for f in result.failures:
            console.print(f"  {f.what} ({f.stage}): {f.error}", highlight=False, markup=False)
        return 1
    return 0
