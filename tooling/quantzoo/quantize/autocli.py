"""``quantzoo quantize IN.onnx -o OUT.onnx --auto [--target X] (--model ID | --calibration DIR)``
and ``--recipe R.json``: automatic mixed precision from the command line (`allocate.py`).

With ``--model ID`` the manifest gives the preprocessing, the dataset (its calibration split
chooses every scheme), the threshold (``--target`` replaces its value), and the evaluation split
passes or fails whole artifacts as in the build (`pipeline.autovariant`). With ``--calibration DIR`` every file of
DIR is calibration data, read with the input's default preprocessing; the threshold is
``--metric`` (default snr_db) of the first output at ``--target``.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError


def cli_recipe(args) -> int:
    from .engine import quantize_file
    from .recipe import read_recipe

    report = quantize_file(args.input, args.output, recipe=read_recipe(args.recipe), jobs=args.jobs)
    print(report.summary())
    print(f"wrote {args.output} from the recipe {args.recipe}")
    return 0


def cli_auto(args) -> int:
    from ..cache import Cache
    from ..units import human_size
    from ..compare import prepare
    from .allocate import auto_quantize
    from .requirement import independent_n
    from .recipe import write_recipe

    if bool(args.model) == bool(args.calibration):
        raise UsageError("--auto needs calibration data: --model ID (its dataset's calibration split) "
                         "or --calibration DIR")
    cache = Cache(args.cache)
    selector = {"exclude": list(args.exclude or [])}
    if args.min_elements is not None:
        selector["min_elements"] = args.min_elements
    if args.op_types:
        selector["op_types"] = [o.strip() for o in args.op_types.split(",") if o.strip()]
    if args.model:
        from ..registry import load_registry

        reg = load_registry(args.zoo)
        model = reg.model(args.model)
        threshold = dict(model.threshold)
        cal = prepare(Path(args.input), None, model=model, registry=reg, cache=cache, part="calibration")
        ev = prepare(Path(args.input), None, model=model, registry=reg, cache=cache)
        n_eval = independent_n(ev)
    else:
        cal = prepare(Path(args.input), args.calibration, cache=cache)
        if args.target is None:
            raise UsageError("--calibration DIR needs --target X (the value of --metric to meet)")
        threshold = {"output": cal.output_names[0], "metric": args.metric or "snr_db"}
        n_eval, ev = None, None
    if args.target is not None:
        bound = "max" if threshold.get("max") is not None else "min"
        threshold = {k: v for k, v in threshold.items() if k not in ("min", "max")} | {bound: args.target}
    gate = None
    if ev is not None:  # as in the build: the evaluation split passes or fails whole artifacts
        from ..pipeline.autovariant import gate_on

        gate = lambda p: gate_on(ev, p, threshold)  # noqa: E731
    report, recipe, table = auto_quantize(args.input, args.output, cal, threshold, n_eval, selector=selector,
                                          representation=args.representation or "auto", gate=gate,
                                          gate_samples=ev.n if ev is not None else None)
    out = Path(args.recipe_out or str(Path(args.output).with_suffix("")) + ".recipe.json")
    write_recipe(out, recipe)
    print(report.summary())
    m = recipe.measured
    print(f"auto: {threshold['metric']} {'>=' if 'min' in threshold else '<='} "
          f"{threshold.get('min', threshold.get('max'))} on {m['calibration_samples']} calibration samples: "
          f"{'met' if m['passed_on_calibration'] else 'NOT met (most accurate schemes written)'}; "
          f"{m['passes']} passes, {m['seconds']}")
    for g in m.get("gate", []):
        print(f"evaluation split ({ev.n} samples, {n_eval} independent, the published rule): {human_size(g['bytes'])} "
              f"{'meets' if g['passed'] else 'misses'} the threshold")
    print(f"wrote {args.output} and its recipe {out}")
    return 0
