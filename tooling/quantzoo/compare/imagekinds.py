"""The comparisons of the ``image`` and ``mask`` output kinds (their records are in `kinds.KINDS`).

- ``image`` (an image-to-image model's [N, C, H, W] picture, e.g. style transfer): the dense
  metrics (pooled SNR and PSNR, cosine, max abs error) plus `imagemetrics.ssim` per sample.
  Option (preprocessing ``params.metrics``): ``data_range`` (1.0: pictures in 0..1).
- ``mask`` (a salient-object model's [N, 1, H, W] probability map): the dense metrics plus
  `imagemetrics.mask_iou` against the float model's mask and, for samples whose label is a
  reference mask (`imagemetrics.encode_mask`), the IoU of the float and of the compressed
  model's masks with it (``matte_iou_float``, ``matte_iou``; None elsewhere: excluded).
  Option: ``mask_threshold`` (0.5).

ARCHITECTURE.md, "How to add a task".
"""

from __future__ import annotations

import numpy as np

from . import imagemetrics as IM
from . import metrics as M


def _dense(ref: np.ndarray, test: np.ndarray) -> dict[str, list]:
    rows = [M.dense_stats(r, t) for r, t in zip(ref, test)]
    return {k: [row[k] for row in rows] for k in ("snr_db", "psnr_db", "cosine", "max_abs_error")}


def compare_image(ref: np.ndarray, test: np.ndarray, ctx: dict) -> dict[str, list]:
    """Dense metrics plus SSIM of each sample's [C, H, W] picture.

    >>> out = compare_image(np.full((1, 3, 12, 12), 0.5), np.full((1, 3, 12, 12), 0.5), {})
    >>> out["ssim"], out["max_abs_error"]
    ([1.0], [0.0])
    """
    data_range = float(ctx.get("options", {}).get("data_range", 1.0))
    out = _dense(ref, test)
    out["ssim"] = [IM.ssim(r, t, data_range, channel_axis=0 if np.ndim(r) == 3 else None) for r, t in zip(ref, test)]
    return out


def _plane(a: np.ndarray) -> np.ndarray | None:
    """One sample's mask as [H, W] (a [1, H, W] map loses its channel axis); None if it has several."""
    a = np.asarray(a)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    return a if a.ndim == 2 else None


def compare_mask(ref: np.ndarray, test: np.ndarray, ctx: dict) -> dict[str, list]:
    """Dense metrics, mask IoU against the float model's mask, and both models' IoU against the
    reference mask of each sample that carries one (``ctx["labels"]``).

    >>> ref = np.zeros((1, 1, 2, 2)); ref[0, 0, 0] = 0.9
    >>> test = np.zeros((1, 1, 2, 2)); test[0, 0, :, 0] = 0.9
    >>> label = IM.encode_mask(np.array([[True, True], [False, False]]))
    >>> out = compare_mask(ref, test, {"labels": [label]})
    >>> out["mask_iou"], out["matte_iou_float"], out["matte_iou"]
    ([0.3333333333], [1.0], [0.3333333333])
    """
    th = float(ctx.get("options", {}).get("mask_threshold", IM.MASK_THRESHOLD))
    out = _dense(ref, test)
    out["mask_iou"] = [IM.mask_iou(r, t, th) for r, t in zip(ref, test)]
    labels = ctx.get("labels")
    if labels is not None:
        fl, qu = [], []
        for r, t, y in zip(ref, test, labels):
            r2, t2 = _plane(r), _plane(t)
            if not IM.is_mask_label(y) or r2 is None or t2 is None:
                fl.append(None)
                qu.append(None)
                continue
            matte = IM.mask_at(y, *r2.shape).astype(np.float64)
            fl.append(IM.mask_iou(matte, r2, th))
            qu.append(IM.mask_iou(matte, t2, th))
        out["matte_iou_float"], out["matte_iou"] = fl, qu
    return out


def mask_context(names, labels, label_map) -> dict:
    """The mask kind's context: the samples' labels when any is a reference mask."""
    return {"all_labels": list(labels) if any(IM.is_mask_label(y) for y in labels) else None}
