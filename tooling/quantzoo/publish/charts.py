"""Charts as inline SVG, drawn on the server: readable without hovering, no JavaScript.

`size_agreement_svg` plots each variant's file size (log scale, ticks at halvings of the float
size) against the threshold metric, labels every point with its variant id (moving labels that
would collide), draws each point's 95 % interval as an error bar, draws the manifest threshold as a
dashed line and rings the recommended variant.
Same points in, same bytes out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from ..compare.metrics import METRICS, format_metric
from ..quantize.modes import MODES
from ..quantize.variants import AUTO_MODE
from ..units import human_size

W, H = 760, 380
LEFT, RIGHT, TOP, BOTTOM = 78, 24, 34, 58
CHAR_W = 6.6          # average glyph width at font-size 11, for label boxes
LABEL_H = 12
HALO = 'stroke="#fafafa" stroke-width="3" paint-order="stroke"'  # labels stay legible over grid lines
AUTO_STYLE = ("#be123c", "diamond")  # auto variants: crimson diamonds


def pareto(points: list[Point], higher_is_better: bool = True) -> list[Point]:
    """The points no other point beats on both size and value (smaller and at least as good),
    smallest first: the size-vs-agreement frontier.

    >>> ps = [Point("a", 100, 0.9, "x"), Point("b", 200, 0.8, "x"), Point("c", 300, 0.99, "x"), Point("d", 50, 0.5, "x")]
    >>> [p.label for p in pareto(ps)]
    ['d', 'a', 'c']
    """
    best = None
    out = []
    for p in sorted((p for p in points if p.value is not None and math.isfinite(p.value)),
                    key=lambda p: (p.size, -p.value if higher_is_better else p.value, p.label)):
        if best is None or (p.value > best if higher_is_better else p.value < best):
            out.append(p)
            best = p.value
    return out


@dataclass(frozen=True)
class Point:
    label: str
    size: int
    value: float | None      # None: not measured (listed under the chart, not drawn)
    mode: str
    recommended: bool = False
    interval: tuple[float, float] | None = None  # 95 % interval of `value`: drawn as an error bar
    n: int | None = None                          # samples behind `value` (tooltip)


def _family(mode: str) -> tuple[str, str]:
    """(fill colour, marker) of a mode's points, from its `Mode` record; the auto variants
    (a scheme per tensor, `quantize/allocate.py`) their own; green circles otherwise."""
    if mode == AUTO_MODE:
        return AUTO_STYLE
    m = MODES.get(mode)
    return (m.colour, m.marker) if m else ("#16a34a", "circle")


def _nice_step(span: float, target: int = 5) -> float:
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag  # pragma: no cover


def _y_range(values: list[float], thr: float | None, kind_fraction: bool) -> tuple[float, float, list[float]]:
    pool = [v for v in values if math.isfinite(v)]
    if thr is not None and math.isfinite(thr):
        pool.append(thr)
    if not pool:
        return 0.0, 1.0, [0.0, 0.5, 1.0]
    lo, hi = min(pool), max(pool)
    if kind_fraction:
        hi = max(hi, min(1.0, hi + 0.01))
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5 * (abs(lo) or 1) * 0.01, hi + 0.5 * (abs(hi) or 1) * 0.01
    step = _nice_step(hi - lo)
    lo = math.floor(lo / step) * step
    hi = math.ceil(hi / step) * step
    if kind_fraction:
        lo, hi = max(lo, 0.0), min(hi, 1.0) if hi - 1.0 < step else hi
    ticks = []
    t = lo
    while t <= hi + step * 1e-6:
        ticks.append(round(t, 12))
        t += step
    return lo, hi, ticks


def _marker(shape: str, x: float, y: float, r: float, fill: str, extra: str = "") -> str:
    if shape == "square":
        return f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:.1f}" height="{2 * r:.1f}" fill="{fill}"{extra}/>'
    if shape == "diamond":
        pts = f"{x:.1f},{y - r - 1:.1f} {x + r + 1:.1f},{y:.1f} {x:.1f},{y + r + 1:.1f} {x - r - 1:.1f},{y:.1f}"
        return f'<polygon points="{pts}" fill="{fill}"{extra}/>'
    if shape == "triangle":
        pts = f"{x:.1f},{y - r - 1:.1f} {x + r + 1:.1f},{y + r:.1f} {x - r - 1:.1f},{y + r:.1f}"
        return f'<polygon points="{pts}" fill="{fill}"{extra}/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{fill}"{extra}/>'


def _error_bar(x: float, y_lo: float, y_hi: float, colour: str) -> str:
    """A vertical bar from `y_lo` to `y_hi` at `x` with short caps: a 95 % interval.

    >>> _error_bar(10, 50, 40, "#000")
    '<path class="qz-ci" d="M10.0 50.0V40.0M7.0 50.0H13.0M7.0 40.0H13.0" stroke="#000" stroke-width="1.2" fill="none"/>'
    """
    return (f'<path class="qz-ci" d="M{x:.1f} {y_lo:.1f}V{y_hi:.1f}M{x - 3:.1f} {y_lo:.1f}H{x + 3:.1f}'
            f'M{x - 3:.1f} {y_hi:.1f}H{x + 3:.1f}" stroke="{colour}" stroke-width="1.2" fill="none"/>')


def _overlap(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _place_labels(items: list[tuple[str, float, float, float]], box: tuple[float, float, float, float],
                  lines: tuple[float, ...] = ()):
    """Greedy label placement: for each point the first of eight spots that collides with nothing.

    Returns (x, y, anchor) per item. `items` are (text, px, py) in drawing order.
    """
    offsets = [(8, 4, "start"), (-8, 4, "end"), (0, -9, "middle"), (0, 17, "middle"),
               (8, -7, "start"), (8, 15, "start"), (-8, -7, "end"), (-8, 15, "end"),
               (0, -21, "middle"), (0, 29, "middle"), (14, -17, "start"), (14, 25, "start"),
               (-14, -17, "end"), (-14, 25, "end"),
               # further out, with a leader line
               (0, -34, "middle"), (16, -30, "start"), (-16, -30, "end"), (0, 42, "middle"),
               (0, -47, "middle"), (20, -43, "start"), (-20, -43, "end"), (0, -60, "middle")]
    taken = [(px - r, py - r, px + r, py + r) for _, px, py, r in items]
    taken += [(box[0], y - 1.5, box[2], y + 1.5) for y in lines]  # text across a line reads as struck through
    placed = []
    for text, px, py, r in items:
        w = len(text) * CHAR_W
        grow = r - 6
        best, best_cost = None, None
        for dx, dy, anchor in offsets:
            dx += grow if dx > 0 else -grow if dx < 0 else 0
            dy += grow if dy > 4 else -grow if dy < 0 else 0
            x0 = px + dx - (w if anchor == "end" else w / 2 if anchor == "middle" else 0)
            rect = (x0 - 2, py + dy - LABEL_H + 1, x0 + w + 2, py + dy + 3)  # 2 px of air around the text
            cost = sum(_overlap(rect, t) for t in taken)
            if rect[0] < box[0] - 30 or rect[2] > box[2] + 20 or rect[1] < box[1] - 20 or rect[3] > box[3] + 4:
                cost += 1e6
            if best_cost is None or cost < best_cost:
                best, best_cost = (px + dx, py + dy, anchor, rect), cost
            if cost == 0:
                break
        taken.append(best[3])
        placed.append(best[:3])
    return placed


def size_agreement_svg(points: list[Point], *, float_size: int, metric: str, metric_label: str,
                       threshold: float | None = None, threshold_op: str = "≥", title: str = "") -> str:
    """The size-vs-agreement chart of one model as an inline ``<svg>`` string.

    >>> svg = size_agreement_svg([Point("linear-8", 250, 0.999, "linear"), Point("kmeans-2", 70, 0.8, "kmeans_lut")],
    ...                          float_size=1000, metric="top1_agreement", metric_label="top-1 agreement",
    ...                          threshold=0.99)
    >>> svg.startswith("<svg") and "linear-8" in svg and "kmeans-2" in svg
    True
    >>> "qz-ci" in size_agreement_svg([Point("lut-4", 70, 0.97, "linear_lut", interval=(0.915, 0.99), n=100)],
    ...                               float_size=1000, metric="iou", metric_label="IoU")
    True
    """
    kind = METRICS[metric].unit if metric in METRICS else "abs"
    drawn = [p for p in points if p.value is not None and not math.isnan(p.value)]
    finite_vals = [x for p in drawn for x in (p.value, *(p.interval or ())) if math.isfinite(x)]
    lo, hi, yticks = _y_range(finite_vals, threshold, kind == "fraction")
    x0, x1, y0, y1 = LEFT, W - RIGHT, TOP, H - BOTTOM

    sizes = [p.size for p in points if p.size > 0] + [float_size]
    smin = min(sizes)
    kmax = max(1, math.ceil(math.log2(float_size / smin))) if smin > 0 and float_size > 0 else 1
    lx_lo, lx_hi = math.log2(float_size) - kmax - 0.25, math.log2(float_size) + 0.25

    def X(size: float) -> float:
        return x0 + (math.log2(max(size, 1)) - lx_lo) / (lx_hi - lx_lo) * (x1 - x0)

    def Y(v: float) -> float:
        if not math.isfinite(v):
            return y0 - 8 if v > 0 else y1 + 8
        return y1 - (v - lo) / (hi - lo) * (y1 - y0)

    def ytext(v: float) -> str:
        if kind == "fraction":
            step = yticks[1] - yticks[0] if len(yticks) > 1 else 0.1
            digits = max(0, -math.floor(math.log10(step * 100)) if step * 100 < 1 else 0)
            return f"{v * 100:.{digits}f} %"
        return format_metric(metric, v)

    out = [f'<svg class="qz-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" '
           f'aria-label="{escape(title or "file size against " + metric_label)}" font-family="sans-serif" '
           f'font-size="11">']
    if title:
        out.append(f"<title>{escape(title)}</title>")
    out.append(f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="#fafafa" stroke="#d4d4d8"/>')
    # the region that fails the threshold, shaded
    if threshold is not None and math.isfinite(threshold) and lo <= threshold <= hi:
        ty = Y(threshold)
        if threshold_op == "≥":
            out.append(f'<rect x="{x0}" y="{ty:.1f}" width="{x1 - x0}" height="{y1 - ty:.1f}" fill="#fee2e2" '
                       f'opacity="0.6"/>')
        else:
            out.append(f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{ty - y0:.1f}" fill="#fee2e2" '
                       f'opacity="0.6"/>')
    for t in yticks:
        ty = Y(t)
        out.append(f'<line x1="{x0}" x2="{x1}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#e4e4e7"/>')
        out.append(f'<text x="{x0 - 6}" y="{ty + 4:.1f}" text-anchor="end" fill="#3f3f46">{escape(ytext(t))}</text>')
    for k in range(kmax + 1):
        s = float_size / 2 ** k
        tx = X(s)
        frac = "float" if k == 0 else f"1/{2 ** k}"
        out.append(f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{y0}" y2="{y1}" stroke="#e4e4e7"/>')
        out.append(f'<text x="{tx:.1f}" y="{y1 + 15}" text-anchor="middle" fill="#3f3f46">{escape(human_size(int(s)))}'
                   f'</text>')
        out.append(f'<text x="{tx:.1f}" y="{y1 + 28}" text-anchor="middle" fill="#71717a">{frac}</text>')
    out.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{H - 6}" text-anchor="middle" fill="#18181b">'
               f'file size (log scale; ticks at halvings of the float model)</text>')
    out.append(f'<text x="14" y="{(y0 + y1) / 2:.1f}" text-anchor="middle" fill="#18181b" '
               f'transform="rotate(-90 14 {(y0 + y1) / 2:.1f})">{escape(metric_label)}</text>')
    if threshold is not None and math.isfinite(threshold) and lo <= threshold <= hi:
        ty = Y(threshold)
        out.append(f'<line x1="{x0}" x2="{x1}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="#dc2626" stroke-dasharray="6 4" '
                   f'stroke-width="1.5"/>')
        # at the left: the small variants there usually sit on the failing side, away from the line
        above = threshold_op == "≥"
        out.append(f'<text x="{x0 + 4}" y="{ty - 5 if above else ty + 13:.1f}" text-anchor="start" fill="#b91c1c">'
                   f'threshold {threshold_op} {escape(format_metric(metric, threshold))}</text>')
    # float model reference line
    fx = X(float_size)
    out.append(f'<line x1="{fx:.1f}" x2="{fx:.1f}" y1="{y0}" y2="{y1}" stroke="#a1a1aa" stroke-dasharray="2 3"/>')

    # the Pareto frontier: a step line through the variants nothing smaller beats
    front = pareto(drawn, METRICS[metric].higher_is_better if metric in METRICS else True)
    if len(front) > 1:
        steps = []
        for a, b in zip(front, front[1:]):
            steps += [(X(a.size), Y(a.value)), (X(b.size), Y(a.value))]
        steps.append((X(front[-1].size), Y(front[-1].value)))
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in steps)
        out.append(f'<polyline class="qz-pareto" points="{pts}" fill="none" stroke="#52525b" stroke-width="1.2" '
                   f'stroke-dasharray="1 3" stroke-linecap="round"><title>Pareto frontier: no variant is both '
                   f'smaller and better than these</title></polyline>')
    order = sorted(drawn, key=lambda p: (p.size, p.label))
    pix = [(p.label, X(p.size), Y(p.value)) for p in order]
    th_line = (Y(threshold),) if threshold is not None and math.isfinite(threshold) and lo <= threshold <= hi else ()
    labels = _place_labels([(("★ " if p.recommended else "") + p.label, px, py, 12 if p.recommended else 6)
                            for p, (_, px, py) in zip(order, pix)], (x0, y0, x1, y1), th_line)
    for p, (_, px, py) in zip(order, pix):
        fill, shape = _family(p.mode)
        tip = f"{p.label}: {human_size(p.size)}, {metric_label} {format_metric(metric, p.value)}"
        if p.interval is not None:
            tip += f" (95 % interval {format_metric(metric, p.interval[0])} to {format_metric(metric, p.interval[1])}"
            tip += f", n={p.n})" if p.n is not None else ")"
        out.append(f'<g class="qz-point" data-variant="{escape(p.label)}"><title>{escape(tip)}</title>')
        if p.interval is not None and all(math.isfinite(b) for b in p.interval):
            out.append(_error_bar(px, Y(p.interval[0]), Y(p.interval[1]), fill))
        if p.recommended:
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="9" fill="none" stroke="#16a34a" stroke-width="2.5"/>')
        out.append(_marker(shape, px, py, 4.5, fill, ' stroke="#fff" stroke-width="1"'))
        out.append("</g>")
    for (px, py), (lx, ly, anchor) in zip(((a, b) for _, a, b in pix), labels):
        if abs(ly - py) > 25:  # a far label gets a leader line back to its point
            ty = ly + 3 if ly < py else ly - LABEL_H + 1
            out.append(f'<line x1="{px:.1f}" y1="{py:.1f}" x2="{lx:.1f}" y2="{ty:.1f}" stroke="#a1a1aa" '
                       f'stroke-width="0.8"/>')
    for p, (lx, ly, anchor) in zip(order, labels):
        weight = ' font-weight="bold" fill="#15803d"' if p.recommended else ' fill="#27272a"'
        text = ("★ " if p.recommended else "") + p.label
        out.append(f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}"{weight} {HALO}>{escape(text)}</text>')
    # legend: one entry per family present
    fams = []
    for p in points:
        if p.mode not in fams:
            fams.append(p.mode)
    lx = x0
    for mode in fams:
        fill, shape = _family(mode)
        out.append(_marker(shape, lx + 5, 14, 4.5, fill))
        name = mode.replace("_", " ")
        out.append(f'<text x="{lx + 13}" y="18" fill="#27272a">{escape(name)}</text>')
        lx += 24 + len(name) * CHAR_W
    if any(p.recommended for p in points):
        out.append(f'<circle cx="{lx + 6}" cy="14" r="6" fill="none" stroke="#16a34a" stroke-width="2.5"/>')
        out.append(f'<text x="{lx + 16}" y="18" fill="#15803d">recommended</text>')
    out.append("</svg>")
    return "".join(out)
