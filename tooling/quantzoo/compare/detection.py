"""Detections: boxes, their overlap, non-maximum suppression, and how two models' detections agree.

Pure numpy functions used by the detection decoders (`decoders.py`) and the ``boxes`` and
``detection`` output kinds (`kinds.KINDS`). A box is ``[x1, y1, x2, y2]`` in the pixels of the
model's input; landmarks are ``[P, 2]`` points (x, y) per box.

Agreement of a compressed model with the float model (ARCHITECTURE.md, "Detection agreement"):
the float model's detections are the reference; a pair of boxes is a match when their IoU is at
least 0.5, each box matched at most once, pairs taken greedily by IoU (highest first; ties by
position, so the result is deterministic). Then

- precision, recall and F1 are pooled over the boxes of every sample (micro-averages): a sample
  gives the row [matches, float boxes, compressed boxes] (`measures.match_row`), and precision =
  Σ matches / Σ compressed boxes, recall = Σ matches / Σ float boxes, F1 = 2 · Σ matches /
  (Σ float boxes + Σ compressed boxes) (`measures.pooled_f1` …);
- landmark error = the mean distance between matched boxes' landmarks divided by the float
  box's size √(width · height), averaged over the matched pairs, per sample.

A sample a figure says nothing about is None (no boxes in either model: F1; no compressed boxes:
precision; no float boxes: recall; no match: landmark error) and is left out and counted by the
summary, like the IoU of two empty maps (it would add nothing to the pooled sums anyway).
"""

from __future__ import annotations

import numpy as np

from .measures import match_row

MATCH_IOU = 0.5


def _sig(x: float) -> float:
    return float(f"{x:.10g}")


def as_boxes(boxes) -> np.ndarray:
    """Any sequence of boxes as a float64 [K, 4] array (K may be 0).

    >>> as_boxes([]).shape, as_boxes([[0, 0, 1, 1]]).dtype
    ((0, 4), dtype('float64'))
    """
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def areas(boxes) -> np.ndarray:
    """Area of each box (0 for an empty or inverted box).

    >>> areas([[0, 0, 2, 3], [5, 5, 4, 4]]).tolist()
    [6.0, 0.0]
    """
    b = as_boxes(boxes)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def iou_matrix(a, b) -> np.ndarray:
    """IoU of every box of `a` [K, 4] with every box of `b` [L, 4]: a [K, L] array.

    >>> iou_matrix([[0, 0, 2, 2]], [[1, 0, 3, 2], [0, 0, 2, 2], [5, 5, 6, 6]]).round(4).tolist()
    [[0.3333, 1.0, 0.0]]
    """
    a, b = as_boxes(a), as_boxes(b)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = areas(a)[:, None] + areas(b)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _order(scores) -> np.ndarray:
    """Indices by score, highest first; equal scores keep their order (a stable sort)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def nms(boxes, scores, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the boxes kept, highest score first. A box is
    suppressed when its IoU with a kept box is at least `iou_threshold`.

    >>> nms([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], [0.9, 0.8, 0.7], 0.3).tolist()
    [0, 2]
    >>> nms([[0, 0, 10, 10], [1, 1, 10, 10]], [0.5, 0.9], 0.3).tolist()
    [1]
    """
    b = as_boxes(boxes)
    order = _order(scores)
    iou = iou_matrix(b, b)
    suppressed = np.zeros(len(b), dtype=bool)
    keep = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(int(i))
        suppressed |= iou[i] >= iou_threshold
    return np.asarray(keep, dtype=np.int64)


def weighted_nms(boxes, scores, points, iou_threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's blending suppression (BlazeFace): take the best remaining box, average it with
    every remaining box whose IoU with it is at least `iou_threshold` (weights: their scores;
    landmarks averaged the same way), keep the best score, repeat. Returns (boxes, scores, points).

    >>> b, s, p = weighted_nms([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60]], [0.75, 0.25, 0.5],
    ...                        np.zeros((3, 1, 2)), 0.3)
    >>> b.tolist(), s.tolist()
    ([[0.5, 0.0, 10.5, 10.0], [50.0, 50.0, 60.0, 60.0]], [0.75, 0.5])
    """
    b = as_boxes(boxes)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 3:  # [K, P*2] -> [K, P, 2]
        p = p.reshape(len(b), -1, 2)
    iou = iou_matrix(b, b)
    left = np.ones(len(b), dtype=bool)
    out_b, out_s, out_p = [], [], []
    for i in _order(s):
        if not left[i]:
            continue
        group = left & (iou[i] >= iou_threshold)
        group[i] = True
        w = s[group] / s[group].sum() if s[group].sum() > 0 else np.full(int(group.sum()), 1.0 / group.sum())
        out_b.append(w @ b[group])
        out_p.append(np.tensordot(w, p[group], axes=1))
        out_s.append(float(s[i]))
        left &= ~group
    n = len(out_b)
    return (np.asarray(out_b).reshape(n, 4), np.asarray(out_s, dtype=np.float64),
            np.asarray(out_p).reshape(n, p.shape[1], 2))


def match(ref_boxes, test_boxes, iou_threshold: float = MATCH_IOU) -> list[tuple[int, int]]:
    """Pairs (float index, compressed index) with IoU ≥ `iou_threshold`, each box used once,
    taken greedily from the highest IoU down (ties: lower float index, then lower compressed index).

    >>> match([[0, 0, 10, 10], [20, 0, 30, 10]], [[21, 0, 30, 10], [0, 0, 9, 10], [0, 0, 10, 10]])
    [(0, 2), (1, 0)]
    >>> match([[0, 0, 10, 10]], [[5, 0, 15, 10]])
    []
    """
    iou = iou_matrix(ref_boxes, test_boxes)
    if iou.size == 0:
        return []
    i, j = np.nonzero(iou >= iou_threshold)
    order = np.lexsort((j, i, -iou[i, j]))
    used_r, used_t, pairs = set(), set(), []
    for k in order:
        r, t = int(i[k]), int(j[k])
        if r in used_r or t in used_t:
            continue
        used_r.add(r)
        used_t.add(t)
        pairs.append((r, t))
    return sorted(pairs)


def agreement(n_ref: int, n_test: int, n_match: int) -> dict[str, list[float] | None]:
    """The rows [matches, float boxes, compressed boxes] that precision, recall and F1 pool over
    the dataset, for `n_match` matched boxes out of `n_ref` float and `n_test` compressed ones;
    None where the sample says nothing about the figure (no compressed boxes: precision; no float
    boxes: recall; neither: F1).

    >>> agreement(4, 2, 2)
    {'detection_precision': [2.0, 4.0, 2.0], 'detection_recall': [2.0, 4.0, 2.0], 'detection_f1': [2.0, 4.0, 2.0]}
    >>> agreement(0, 0, 0)
    {'detection_precision': None, 'detection_recall': None, 'detection_f1': None}
    >>> agreement(0, 3, 0)["detection_f1"], agreement(2, 0, 0)["detection_precision"]
    ([0.0, 0.0, 3.0], None)
    """
    row = match_row(n_match, n_ref, n_test)
    return {"detection_precision": row if n_test else None,
            "detection_recall": row if n_ref else None,
            "detection_f1": row if n_ref + n_test else None}


def landmark_error(ref_boxes, ref_points, test_points, pairs: list[tuple[int, int]]) -> float | None:
    """Mean over matched `pairs` of the mean landmark distance divided by the float box's size
    √(width · height); None when nothing matched or the boxes have no landmarks.

    >>> landmark_error([[0, 0, 10, 10]], [[[2, 2], [8, 2]]], [[[2, 2], [8, 5]]], [(0, 0)])
    0.15
    """
    rp = np.asarray(ref_points, dtype=np.float64)
    tp = np.asarray(test_points, dtype=np.float64)
    if not pairs or rp.ndim != 3 or rp.shape[1] == 0:
        return None
    rb = as_boxes(ref_boxes)
    errs = []
    for r, t in pairs:
        size = float(np.sqrt(areas(rb[r:r + 1])[0]))
        if size <= 0:
            continue
        errs.append(float(np.linalg.norm(rp[r] - tp[t], axis=-1).mean()) / size)
    return _sig(float(np.mean(errs))) if errs else None


def sample_agreement(ref: dict, test: dict, iou_threshold: float = MATCH_IOU) -> dict[str, float | None]:
    """Every per-sample detection value of two samples' detections (``boxes`` [K, 4] and
    optional ``points`` [K, P, 2]): the rows of precision, recall and F1 (`agreement`) and, when
    both have landmarks, the landmark error.

    >>> a = {"boxes": [[0, 0, 10, 10], [20, 20, 30, 30]], "points": [[[5, 5]], [[25, 25]]]}
    >>> b = {"boxes": [[0, 0, 10, 11]], "points": [[[6, 5]]]}
    >>> out = sample_agreement(a, b); out["detection_f1"], out["landmark_error"]
    ([1.0, 2.0, 1.0], 0.1)
    """
    rb, tb = as_boxes(ref["boxes"]), as_boxes(test["boxes"])
    pairs = match(rb, tb, iou_threshold)
    out = agreement(len(rb), len(tb), len(pairs))
    if ref.get("points") is not None and test.get("points") is not None:
        out["landmark_error"] = landmark_error(rb, ref["points"], test["points"], pairs)
    return out


# --- connected components (text boxes from score maps) ------------------------------------------

def components(mask: np.ndarray) -> np.ndarray:
    """Labels of the 4-connected components of a boolean [H, W] mask: 0 for background, and for
    each component the same positive label (the largest flat index + 1 of its pixels), found by
    propagating the maximum to the neighbours with pointer jumping (numpy only).

    >>> m = np.array([[1, 1, 0, 1], [0, 1, 0, 1], [1, 0, 0, 0]], bool)
    >>> components(m).tolist()
    [[6, 6, 0, 8], [0, 6, 0, 8], [9, 0, 0, 0]]
    """
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    lab = np.where(mask, np.arange(1, h * w + 1, dtype=np.int64).reshape(h, w), 0)
    while True:
        new = lab.copy()
        np.maximum(new[1:], lab[:-1], out=new[1:])
        np.maximum(new[:-1], lab[1:], out=new[:-1])
        np.maximum(new[:, 1:], lab[:, :-1], out=new[:, 1:])
        np.maximum(new[:, :-1], lab[:, 1:], out=new[:, :-1])
        new = np.where(mask, new, 0)
        flat = new.ravel()
        jumped = np.where(mask, flat[np.maximum(new, 1) - 1].reshape(h, w), 0)  # the label's own label
        new = np.maximum(new, jumped)
        if np.array_equal(new, lab):
            return lab
        lab = new


def component_boxes(labels: np.ndarray, min_size: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Per component of `labels` (`components`) with at least `min_size` pixels: its bounding box
    ``[x1, y1, x2, y2]`` (pixel edges, so a single pixel at (x, y) is [x, y, x+1, y+1]) and its
    label, sorted by label.

    >>> b, l = component_boxes(np.array([[6, 6, 0, 8], [0, 6, 0, 8], [9, 0, 0, 0]]))
    >>> b.tolist(), l.tolist()
    ([[0.0, 0.0, 2.0, 2.0], [3.0, 0.0, 4.0, 2.0], [0.0, 2.0, 1.0, 3.0]], [6, 8, 9])
    """
    ys, xs = np.nonzero(labels)
    if len(ys) == 0:
        return np.zeros((0, 4)), np.zeros(0, dtype=np.int64)
    lab = labels[ys, xs]
    uniq, inv, counts = np.unique(lab, return_inverse=True, return_counts=True)
    x1 = np.full(len(uniq), np.inf)
    y1 = np.full(len(uniq), np.inf)
    x2 = np.full(len(uniq), -np.inf)
    y2 = np.full(len(uniq), -np.inf)
    np.minimum.at(x1, inv, xs)
    np.minimum.at(y1, inv, ys)
    np.maximum.at(x2, inv, xs + 1)
    np.maximum.at(y2, inv, ys + 1)
    keep = counts >= min_size
    return np.stack([x1, y1, x2, y2], axis=1)[keep].astype(np.float64), uniq[keep]
