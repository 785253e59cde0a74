"""The image and mask output kinds: their per-sample metrics on hand-made batches."""

import numpy as np
import pytest

from quantzoo.compare import imagemetrics as IM
from quantzoo.compare.kinds import KINDS, compare_batch
from quantzoo.compare.summary import summarize
from quantzoo.compare.tasks import TASKS


def test_tasks_give_their_outputs_the_new_kinds():
    assert TASKS["image-to-image"].output_kind(4) == "image"
    assert TASKS["salient-object-segmentation"].output_kind(4) == "mask"
    assert TASKS["image-to-image"].preview == TASKS["salient-object-segmentation"].preview == "grid"


def test_image_kind_reports_psnr_and_ssim():
    ref = np.full((2, 3, 16, 16), 0.5, np.float32)
    test = ref.copy()
    test[1] += 0.1                                    # sample 1: off by 0.1 everywhere
    out = compare_batch("image", ref, test, {})
    assert out["ssim"][0] == 1.0 and out["ssim"][1] < 1.0
    assert out["max_abs_error"][1] == pytest.approx(0.1, rel=1e-5)
    # pooled PSNR: peak 0.25 (max ref²), MSE over both samples 0.01 / 2
    psnr = summarize("psnr_db", out["psnr_db"])["mean"]
    assert psnr == pytest.approx(10 * np.log10(0.25 / 0.005), rel=1e-5)


def test_mask_kind_against_float_and_reference():
    ref = np.zeros((2, 1, 4, 4), np.float32); ref[:, 0, :2] = 0.9
    test = np.zeros((2, 1, 4, 4), np.float32); test[:, 0, :, :2] = 0.9
    matte = np.zeros((8, 8), bool); matte[:4] = True   # the same top half, at twice the size
    ctx = {"labels": [IM.encode_mask(matte), None], **KINDS["mask"].context(None, [IM.encode_mask(matte), None], None)}
    out = compare_batch("mask", ref, test, ctx)
    assert out["mask_iou"] == [pytest.approx(4 / 12)] * 2
    assert out["matte_iou_float"] == [1.0, None] and out["matte_iou"] == [pytest.approx(4 / 12), None]
    s = summarize("matte_iou", out["matte_iou"])
    assert s["n"] == 1 and s["excluded"] == 1


def test_mask_context_only_when_a_label_is_a_mask():
    assert KINDS["mask"].context(None, ["cat", None], None) == {"all_labels": None}
