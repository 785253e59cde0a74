"""Jinja2 rendering of the `site_src/templates` pages into the Markdown docs folder MkDocs reads.

Escaping rule: Markdown passes raw HTML straight through and gives `[text](javascript:…)` a
link, so no string from a manifest or a model ever reaches Markdown syntax. Templates put every
such string inside raw HTML blocks (which Markdown leaves alone), Jinja2 autoescaping turns it
into text there, links only ever carry http(s) URLs (`safe_href`), and a model card (Markdown by
design) is rendered here with raw HTML switched off before it is inserted.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from markupsafe import Markup, escape

from ..compare import intervals
from ..compare.metrics import METRICS, format_metric
from ..units import human_size
from .charts import Point, size_agreement_svg
from .data import BuiltModel, metric_mean, metric_summary
from .pages import catalog_context, model_context

_NP_DTYPES = {"float32": "np.float32", "float16": "np.float16", "float64": "np.float64", "int64": "np.int64",
              "int32": "np.int32", "int8": "np.int8", "uint8": "np.uint8", "bool": "np.bool_", "string": "object"}


def environment(templates: Path):
    """The Jinja2 environment for the site templates: autoescape on, strict undefined."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters["human_size"] = human_size
    env.filters["pct"] = lambda x: "–" if x is None else f"{x * 100:.1f} %"
    env.filters["tojson_attr"] = lambda x: json.dumps(x, sort_keys=True)
    env.filters["sortnum"] = lambda x: "" if x is None else repr(float(x)) if math.isfinite(float(x)) else ""
    # front matter values are inserted into the theme's HTML unescaped: escape, then quote for YAML
    env.filters["yaml_str"] = lambda s: Markup(json.dumps(str(escape(s)), ensure_ascii=False))
    env.filters["short_sha"] = lambda s: (s or "")[:12]
    env.filters["shape"] = lambda shape: "[" + ", ".join(str(d) for d in shape) + "]"
    env.filters["pretty"] = lambda obj: json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False)
    return env


def highlight(code: str, language: str) -> Markup:
    """Syntax-highlighted HTML for a code snippet (Pygments escapes the text)."""
    from pygments import highlight as _hl
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name

    formatter = HtmlFormatter(wrapcode=True, cssclass=f"language-{language} highlight")
    html = _hl(code, get_lexer_by_name(language), formatter)
    return Markup(html.strip())


def card_html(text: str | None) -> Markup | None:
    """A model card (Markdown) as HTML with raw HTML disabled and only safe link schemes.

    >>> str(card_html("**hi** <script>x()</script>"))
    '<p><strong>hi</strong> &lt;script&gt;x()&lt;/script&gt;</p>'
    """
    if not text:
        return None
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    return Markup(md.render(text).strip())


def usage_python(ctx: dict, file_name: str) -> str:
    """A runnable onnxruntime snippet for one artifact, with zero inputs of the right shapes; for
    a model with custom ops, the snippet registers their classes first (`quantzoo.customops`).

    >>> ctx = {"inputs": [{"name": "x", "shape": [1, 4], "dtype": "float32"}], "outputs": [{"name": "y"}],
    ...        "custom_ops": [{"key": "ai.x.Op", "cls": "op_impl:Op", "file": "op_impl.py"}]}
    >>> print(usage_python(ctx, "m.onnx"))  # doctest: +ELLIPSIS
    import numpy as np
    import onnxruntime as ort
    from quantzoo.customops import run, session_options
    <BLANKLINE>
    # the custom ops' classes: op_impl.py (from this page) beside this script
    options = session_options({"ai.x.Op": "op_impl:Op"}, 'm.onnx')
    session = ort.InferenceSession('m.onnx', options)
    ...
    outputs = run(session, None, {'x': x})
    ...
    """
    ops = ctx.get("custom_ops") or []
    if ops:
        files = ", ".join(dict.fromkeys(o["file"] for o in ops if o["file"]))
        classes = ", ".join(f'"{o["key"]}": "{o["cls"]}"' for o in ops)
        lines = ["import numpy as np", "import onnxruntime as ort", "from quantzoo.customops import run, session_options",
                 "", f"# the custom ops' classes: {files or 'your own modules'} (from this page) beside this script",
                 f"options = session_options({{{classes}}}, {file_name!r})",
                 f"session = ort.InferenceSession({file_name!r}, options)"]
    else:
        lines = ["import numpy as np", "import onnxruntime as ort", "",
                 f"session = ort.InferenceSession({file_name!r})"]
    feeds = []
    dynamic = False
    for t in ctx["inputs"]:
        dims = list(t.get("shape") or [])
        shape = tuple(d if isinstance(d, int) and d > 0 else 1 if i == 0 else 64 for i, d in enumerate(dims))
        dynamic |= any(not (isinstance(d, int) and d > 0) for d in dims[1:])
        dt = _NP_DTYPES.get(t.get("dtype"), "np.float32")
        var = _var_name(str(t["name"]))
        meaning = str(t.get("meaning") or "").replace("\n", " ")
        if meaning:
            if len(meaning) > 90:
                meaning = meaning[:88].rsplit(" ", 1)[0] + " …"
            lines.append(f"# {t['name']}: {meaning}")
        lines.append(f"{var} = np.zeros({shape!r}, dtype={dt})")
        feeds.append(f"{t['name']!r}: {var}")
    if dynamic:
        lines.append("# (dynamic sizes are set to 64 here; use your own)")
    run = "run(session, None, " if ops else "session.run(None, "  # run: a custom op's error is raised here
    lines.append(f"outputs = {run}{{{', '.join(feeds)}}})")
    names = ", ".join(repr(o["name"]) for o in ctx["outputs"])
    lines.append(f"# outputs, in order: {names}")
    return "\n".join(lines) + "\n"


def _var_name(name: str) -> str:
    """A Python variable for an input: its own name when that is a plain, harmless identifier.

    >>> _var_name("x"), _var_name("bytes"), _var_name("input.1")
    ('x', 'x_bytes', 'x_input_1')
    """
    import builtins
    import keyword

    taken = {"np", "ort", "session", "outputs"}
    if name.isidentifier() and not keyword.iskeyword(name) and name not in taken and not hasattr(builtins, name):
        return name
    return "x_" + "".join(c if c.isalnum() else "_" for c in name)


def chart(bm: BuiltModel, ctx: dict) -> Markup:
    thr = bm.model.threshold
    rec = ctx["recommended"]
    points = []
    for v in bm.variants:
        s = metric_summary(v.comparison, thr["output"], thr["metric"])
        points.append(Point(v.variant.id, v.size, metric_mean(v.comparison, thr["output"], thr["metric"]),
                            v.variant.mode, v.variant.id == rec, s.ci95 if s else None, s.n if s else None))
    t = ctx["threshold"]
    return Markup(size_agreement_svg(
        points, float_size=bm.float_size, metric=thr["metric"], metric_label=f"{t['label']} ({thr['output']})",
        threshold=thr.get("min", thr.get("max")), threshold_op=t["op"],
        title=f"{bm.model.name}: file size against {t['label']}"))


def model_page(env, bm: BuiltModel, artifact_base_url: str | None, version: str) -> str:
    """The Markdown source of one model page."""
    ctx = model_context(bm, artifact_base_url)
    rec_file = next((r["file"] for r in ctx["variants"] if r["recommended"]), ctx["float_file"])
    ctx.update(
        chart=chart(bm, ctx) if bm.variants else None,
        card_html=card_html(ctx["card"]),
        usage_python=highlight(usage_python(ctx, rec_file), "python"),
        custom_sources={op.key: highlight(op.source.read_text(encoding="utf-8"), "python")
                        for op in bm.custom_ops if op.file},
        rec_file=rec_file, version=version,
        float_ratio_text=None,
    )
    return env.get_template("model.md.j2").render(m=ctx)


def methodology_page(env, models: list[BuiltModel], registry, version: str) -> str:
    from ..quantize.variants import DEFAULT_VARIANTS, MODE_DEFAULT_GRANULARITY

    datasets = []
    if registry is not None:
        for ds in sorted(registry.datasets.values(), key=lambda d: d.id):
            users = sorted(bm.model.id for bm in models if bm.model.dataset == ds.id)
            datasets.append({"id": ds.id, "name": ds.name, "description": ds.description,
                             "license": (ds.license or {}).get("spdx"), "adapter": ds.adapter,
                             "notes": ds.notes, "models": users})
    example = sorted(models, key=lambda b: b.model.id)[0] if models else None
    return env.get_template("methodology.md.j2").render(
        metrics=[{"id": m.name, "label": m.label, "higher": m.higher_is_better, "meaning": m.meaning}
                 for m in METRICS.values()],
        granularity=MODE_DEFAULT_GRANULARITY, default_variants=DEFAULT_VARIANTS, datasets=datasets,
        version=version, example=example.model.id if example else "MODEL",
        format_metric=format_metric,
        bootstrap={"resamples": intervals.BOOTSTRAP_RESAMPLES, "seed": intervals.BOOTSTRAP_SEED})


def catalog_page(env, models: list[BuiltModel], failed: list, version: str) -> str:
    ctx = catalog_context(models, failed)
    return env.get_template("catalog.md.j2").render(c=ctx, version=version)
