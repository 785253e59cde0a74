"""The model page's "Automatic mixed precision" section: for each auto variant, what was chosen
for every tensor and why (the sensitivity table), and a picture of bits per layer along the
network (ARCHITECTURE.md, "Automatic mixed precision")."""

from __future__ import annotations

import math
from html import escape

from ..units import human_size
from .data import BuiltModel

BAR_W, BAR_H, PAD = 760, 150, 30


def _bits(scheme: str) -> float:
    """Bits per stored weight of a scheme (32 for float, 16 for fp16).

    >>> _bits("kmeans-3-g8"), _bits("fp16"), _bits("float"), _bits("linear-8")
    (3.0, 16.0, 32.0, 8.0)
    """
    if scheme == "float":
        return 32.0
    if scheme == "fp16":
        return 16.0
    parts = scheme.split("-")
    nums = [p for p in parts if p.isdigit()]
    return float(nums[0]) if nums else 32.0


def _height(bits: float) -> float:
    """Bar height of `bits` on a log scale where 1 bit is a sixth of the chart and 32 all of it."""
    return BAR_H * (math.log2(bits) + 1) / 6


def bits_svg(rows: list[dict], title: str) -> str:
    """Bars of bits per weight, one per tensor in graph order (width ∝ log of its elements)."""
    if not rows:
        return ""
    weights = [math.log2(max(r["elements"], 2)) for r in rows]
    total = sum(weights)
    x = PAD
    scale = (BAR_W - 2 * PAD) / total
    out = [f'<svg class="qz-bits" xmlns="http://www.w3.org/2000/svg" viewBox="0 -10 {BAR_W} {BAR_H + 50}" role="img" '
           f'aria-label="{escape(title)}" font-family="sans-serif" font-size="10"><title>{escape(title)}</title>']
    for b in (1, 2, 4, 8, 16, 32):
        y = BAR_H - _height(b)
        out.append(f'<line x1="{PAD}" x2="{BAR_W - PAD}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e4e7"/>'
                   f'<text x="{PAD - 4}" y="{y + 3:.1f}" text-anchor="end" fill="#3f3f46">{b}</text>')
    for r, w in zip(rows, weights):
        bits = _bits(r["chosen"])
        h = _height(bits)
        colour = "#a1a1aa" if r["chosen"] == "float" else "#be123c" if bits <= 4 else "#ea580c" if bits <= 8 else "#6b7280"
        out.append(f'<rect x="{x:.1f}" y="{BAR_H - h:.1f}" width="{max(w * scale - 1, 1):.1f}" height="{h:.1f}" '
                   f'fill="{colour}"><title>{escape(r["tensor"])}: {escape(r["chosen"])} ({r["elements"]} '
                   f'weights)</title></rect>')
        x += w * scale
    out.append(f'<text x="{BAR_W / 2}" y="{BAR_H + 18}" text-anchor="middle" fill="#18181b">tensors in graph order '
               f'(bar width ∝ log of the tensor\'s size); height: bits per weight, log scale</text></svg>')
    return "".join(out)


def recipe_file_name(model_id: str, variant_id: str) -> str:
    """The published recipe of an auto variant, beside its artifact.

    >>> recipe_file_name("magika", "auto-0.99")
    'magika-auto-0.99.recipe.json'
    """
    return f"{model_id}-{variant_id}.recipe.json"


def write_recipe_file(model_id: str, v, base) -> int:
    """Write an auto variant's recipe JSON into the model's files folder; files written (0 or 1)."""
    from ..quantize.recipe import Recipe, write_recipe

    if not (v.auto or {}).get("recipe"):
        return 0
    base.mkdir(parents=True, exist_ok=True)
    write_recipe(base / recipe_file_name(model_id, v.variant.id), Recipe.from_dict(v.auto["recipe"]))
    return 1


def auto_context(bm: BuiltModel) -> list[dict]:
    """One block per auto variant of the model: its requirement, cost, per-tensor rows and picture."""
    out = []
    for v in bm.variants:
        auto = getattr(v, "auto", None)
        if not auto or not auto.get("recipe") or not auto.get("sensitivity"):
            continue
        recipe, table = auto["recipe"], auto["sensitivity"]
        chosen = {t["tensor"]: t["scheme"] for t in recipe["tensors"]}
        stored = {r["name"] if not r.get("scope") else f'{r["scope"]}/{r["name"]}': r["stored_bytes"]
                  for r in (auto.get("report") or {}).get("tensors", [])}
        schemes = sorted({s for t in table["tensors"] for s in t["cells"]}, key=lambda s: (-_bits(s), s))
        rows = []
        for t in table["tensors"]:
            pick = chosen.get(t["key"], "float")
            cells = [{"text": f'{"~" if not c["measured"] else ""}{c["snr_db"]:.0f}', "chosen": s == pick,
                      "title": ("predicted from the weight error" if not c["measured"] else "measured")
                      + f', {human_size(c["bytes"])}'} if c else
                     {"text": "–", "chosen": False, "title": "not tried: the table would outweigh the codes"}
                     for s in schemes for c in [t["cells"].get(s)]]
            nbytes = stored.get(t["key"], t["float_bytes"])
            rows.append({"tensor": t["key"], "op": t["op"], "elements": t["elements"], "cells": cells,
                         "chosen": pick, "bytes": nbytes, "bytes_text": human_size(nbytes)})
        m = recipe.get("measured") or {}
        req = m.get("requirement") or {}
        target = recipe.get("target") or {}
        is_min = target.get("min") is not None
        target_text = (f'{target.get("metric")} {"≥" if is_min else "≤"} {target.get("min" if is_min else "max")}'
                       if target else "the threshold")
        need = req.get("calibration_mean_at_least", req.get("calibration_mean_at_most"))
        req_text = (f'a mean of {"at least" if is_min else "at most"} {need}: what the published rule needs on '
                    f'{req.get("n_eval")} evaluation samples' if need is not None else None)
        out.append({"id": v.variant.id, "schemes": schemes, "rows": rows,
                    "recipe": recipe_file_name(bm.model.id, v.variant.id),
                    "recipe_href": f"../files/{bm.model.id}/{recipe_file_name(bm.model.id, v.variant.id)}",
                    "svg": bits_svg(rows, f"bits per weight of {v.variant.id}, tensor by tensor"),
                    "samples": table.get("samples"), "calibration_samples": m.get("calibration_samples"),
                    "passes": m.get("passes"), "target_text": target_text, "requirement_text": req_text,
                    "seconds": round(sum((m.get("seconds") or {}).get(k, 0.0) for k in ("session_s", "total_s", "search_s")), 1)})
    return out
