"""SSIM, mask IoU and reference-mask labels on hand-made inputs with known answers."""

import math

import numpy as np
import pytest

from quantzoo.compare import imagemetrics as IM

C1, C2 = (0.01 * 1.0) ** 2, (0.03 * 1.0) ** 2


def test_identical_images_score_one():
    rng = np.random.default_rng(1)
    a = rng.random((3, 32, 40))
    assert IM.ssim(a, a) == 1.0


def test_constant_images_give_the_luminance_term_by_hand():
    # both images flat: every variance and covariance is 0, so SSIM = (2xy + C1) / (x² + y² + C1)
    x, y = 0.5, 0.25
    want = (2 * x * y + C1) / (x * x + y * y + C1)
    got = IM.ssim(np.full((1, 16, 16), x), np.full((1, 16, 16), y))
    assert math.isclose(got, want, rel_tol=1e-9)
    assert math.isclose(want, 0.2501 / 0.3126, rel_tol=1e-12)


def test_shifted_image_keeps_structure_and_contrast():
    # y = x + k: the contrast-structure term is exactly 1; on a flat x only the luminance term remains
    got = IM.ssim(np.full((12, 12), 0.2), np.full((12, 12), 0.3), channel_axis=None)
    assert math.isclose(got, (2 * 0.2 * 0.3 + C1) / (0.04 + 0.09 + C1), rel_tol=1e-9)


def test_inverted_contrast_by_hand():
    # a 11x11 image (one window position) and its negative around its mean: luminance 1 with
    # equal means, contrast-structure (2·cov + C2) / (2·var + C2) with cov = −var (Gaussian weights)
    rng = np.random.default_rng(2)
    x = rng.random((11, 11))
    w = np.outer(IM.gaussian_window(), IM.gaussian_window())
    mu = float((w * x).sum())
    y = 2 * mu - x
    var = float((w * (x - mu) ** 2).sum())
    want = (2 * mu * mu + C1) / (2 * mu * mu + C1) * (-2 * var + C2) / (2 * var + C2)
    assert math.isclose(IM.ssim(x, y, channel_axis=None), want, rel_tol=1e-8)


def _ssim_naive(x, y, L=1.0):
    """An independent reference: every window position, explicit 2-D Gaussian weights."""
    r = np.arange(11) - 5.0
    w = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 1.5 ** 2))
    w /= w.sum()
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    vals = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            a, b = x[i:i + 11, j:j + 11], y[i:i + 11, j:j + 11]
            ma, mb = (w * a).sum(), (w * b).sum()
            va, vb = (w * (a - ma) ** 2).sum(), (w * (b - mb) ** 2).sum()
            cab = (w * (a - ma) * (b - mb)).sum()
            vals.append((2 * ma * mb + c1) * (2 * cab + c2) / ((ma * ma + mb * mb + c1) * (va + vb + c2)))
    return float(np.mean(vals))


def test_matches_a_naive_loop_and_scikit_image():
    rng = np.random.default_rng(0)
    a = rng.random((3, 24, 20))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    want = np.mean([_ssim_naive(a[c], b[c]) for c in range(3)])
    got = IM.ssim(a, b)
    assert math.isclose(got, want, rel_tol=1e-9)
    # scikit-image 0.26.0: structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    # use_sample_covariance=False, data_range=1.0, channel_axis=0) on these arrays
    assert math.isclose(got, 0.948245890888287, rel_tol=1e-9)


def test_ssim_rejects_mismatched_shapes_and_is_undefined_on_tiny_images():
    with pytest.raises(ValueError, match="one shape"):
        IM.ssim(np.zeros((3, 16, 16)), np.zeros((3, 16, 15)))
    assert IM.ssim(np.zeros((3, 10, 40)), np.zeros((3, 10, 40))) is None


def test_mask_iou_by_hand():
    ref = np.zeros((4, 4)); ref[:2, :] = 0.9          # 8 pixels on
    test = np.zeros((4, 4)); test[:, :2] = 0.7        # 8 pixels on, 4 shared
    assert IM.mask_iou(ref, test) == pytest.approx(4 / 12)
    assert IM.mask_iou(ref, ref) == 1.0
    assert IM.mask_iou(ref, np.zeros((4, 4))) == 0.0
    # 0.5 itself is background (strictly above the threshold is the object)
    assert IM.mask_iou(np.full((2, 2), 0.5), np.zeros((2, 2))) is None
    assert IM.mask_iou(ref, test, threshold=0.8) == 0.0


def test_mask_labels_round_trip_and_resize():
    m = np.zeros((6, 9), bool); m[1:5, 2:7] = True
    label = IM.encode_mask(m)
    assert IM.is_mask_label(label) and not IM.is_mask_label("cat") and not IM.is_mask_label(None)
    assert np.array_equal(IM.decode_mask(label), m)
    assert label == IM.encode_mask(m.copy())   # deterministic text
    big = IM.mask_at(label, 12, 18)
    assert big.shape == (12, 18) and big[5, 9] and not big[0, 0]
    with pytest.raises(ValueError, match="not a mask label"):
        IM.decode_mask("cat")
