"""publish.charts: the size against agreement chart."""

from __future__ import annotations

import re

from quantzoo.publish.charts import Point, size_agreement_svg


def test_chart_labels_every_variant_and_marks_threshold_and_recommendation():
    pts = [Point("fp16", 500, 1.0, "fp16"), Point("linear-8", 250, 0.999, "linear"),
           Point("kmeans-4", 130, 0.993, "kmeans_lut", recommended=True), Point("kmeans-1", 40, 0.31, "kmeans_lut"),
           Point("linear-2", 70, None, "linear")]
    svg = size_agreement_svg(pts, float_size=1000, metric="top1_agreement", metric_label="top-1 agreement",
                             threshold=0.99)
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    for label in ("fp16", "linear-8", "★ kmeans-4", "kmeans-1", "threshold ≥ 99.00 %", "float", "1/16"):
        assert label in texts, label
    assert "linear-2" not in texts  # not measured: not drawn
    assert svg.count('class="qz-point"') == 4
    assert 'stroke-dasharray="6 4"' in svg  # the threshold line
    assert svg == size_agreement_svg(pts, float_size=1000, metric="top1_agreement",
                                     metric_label="top-1 agreement", threshold=0.99)


def test_chart_labels_do_not_overlap_when_points_are_apart():
    pts = [Point(f"v{i}", 1000 // 2 ** i, 1 - 0.1 * i, "linear") for i in range(6)]
    svg = size_agreement_svg(pts, float_size=1000, metric="top1_agreement", metric_label="agreement")
    boxes = []
    for x, y, anchor, text in re.findall(r'<text x="([\d.]+)" y="([\d.]+)" text-anchor="(\w+)" fill="#27272a"[^>]*>'
                                         r"(v\d)</text>", svg):
        x, y, w = float(x), float(y), len(text) * 6.6
        x0 = x - w if anchor == "end" else x - w / 2 if anchor == "middle" else x
        boxes.append((x0, y - 10, x0 + w, y + 2))
    assert len(boxes) == 6
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])


def test_every_point_with_an_interval_gets_an_error_bar_inside_the_plot():
    pts = [Point("fp16", 500, 0.999, "fp16", interval=(0.995, 1.0), n=100),
           Point("lut-4", 130, 0.97, "linear_lut", True, interval=(0.915, 0.99), n=100),
           Point("old", 70, 0.9, "linear")]
    svg = size_agreement_svg(pts, float_size=1000, metric="top1_agreement", metric_label="top-1 agreement",
                             threshold=0.95)
    bars = re.findall(r'<path class="qz-ci" d="M([\d.]+) ([\d.]+)V([\d.]+)', svg)
    assert len(bars) == 2
    for _, y_lo, y_hi in bars:
        assert 34 <= float(y_hi) < float(y_lo) <= 380 - 58   # drawn upwards, within the plot area
    assert "95 % interval 91.50 % to 99.00 %, n=100" in svg


def test_the_pareto_frontier_is_drawn_through_the_variants_nothing_smaller_beats():
    from quantzoo.publish.charts import pareto

    pts = [Point("kmeans-2", 70, 0.80, "kmeans_lut"), Point("linear-4", 120, 0.78, "linear"),
           Point("auto", 90, 0.99, "auto"), Point("linear-8", 250, 0.999, "linear")]
    assert [p.label for p in pareto(pts)] == ["kmeans-2", "auto", "linear-8"]
    assert [p.label for p in pareto(pts, higher_is_better=False)] == ["kmeans-2", "linear-4"]
    svg = size_agreement_svg(pts, float_size=1000, metric="top1_agreement", metric_label="top-1 agreement")
    assert svg.count('class="qz-pareto"') == 1 and "#be123c" in svg  # auto points have their own style
    one = size_agreement_svg(pts[:1], float_size=1000, metric="top1_agreement", metric_label="top-1 agreement")
    assert "qz-pareto" not in one
