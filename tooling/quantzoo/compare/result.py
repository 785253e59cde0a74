"""The result of one comparison: per-output metric summaries, sizes, the data, the timings."""

from __future__ import annotations

from dataclasses import dataclass, field

SCHEMA_VERSION = 1


@dataclass
class Comparison:
    """The result of one comparison. `metrics` maps output name -> metric -> its summary
    ``{mean, std, n, ci95, excluded?}`` (`summary.summarize`).

    `to_dict()` is the JSON document (``schema_version`` 1). Everything in it but ``timings``
    is the same, byte for byte, for the same models and data.

    >>> s = {"mean": 0.98, "std": 0.02, "n": 3, "ci95": [0.95, 0.99], "excluded": 1}
    >>> print(Comparison("m", None, {}, {"y": {"cosine": s}}, {}, {}, {}).table())
    output  metric    mean     std  n    95 % interval  excluded
    ------  ------  ------  ------  -  ---------------  --------
    y       cosine  0.9800  0.0200  3  0.9500 – 0.9900         1
    """

    model: str | None
    task: str | None
    dataset: dict
    metrics: dict[str, dict[str, dict]]
    sizes: dict
    original: dict
    quantized: dict
    timings: dict = field(default_factory=dict)
    # the compressed model's reduced outputs ([output][batch]), for a caller that draws them
    # (pipeline.grid); never part of the JSON document
    outputs: list | None = field(default=None, repr=False, compare=False)

    def to_dict(self, timings: bool = True) -> dict:
        doc = {"schema_version": SCHEMA_VERSION, "model": self.model, "task": self.task,
               "dataset": self.dataset, "outputs": self.metrics, "sizes": self.sizes,
               "original": self.original, "quantized": self.quantized}
        if timings:
            doc["timings"] = self.timings
        return doc

    def table(self) -> str:
        """The metrics as an aligned text table: output, metric, mean, std, n, interval, excluded."""
        rows = [("output", "metric", "mean", "std", "n", "95 % interval", "excluded")]
        for out, ms in self.metrics.items():
            for name, s in ms.items():
                ci = s.get("ci95")
                rows.append((out, name, _fmt(s["mean"]), _fmt(s["std"]), str(s["n"]),
                             f"{_fmt(ci[0])} – {_fmt(ci[1])}" if ci else "-", str(s.get("excluded", ""))))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = []
        for j, r in enumerate(rows):
            cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1])] + [c.rjust(w) for c, w in zip(r[2:], widths[2:])]
            lines.append("  ".join(cells).rstrip())
            if j == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)


def _fmt(x) -> str:
    if x is None:
        return "-"
    if x == 0 or 1e-3 <= abs(x) < 1e5:
        return f"{x:.4f}"
    return f"{x:.3e}"
