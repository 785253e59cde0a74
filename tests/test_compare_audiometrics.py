"""Audio metrics: pitch decoded in cents, and voice activity per frame, on inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from quantzoo.compare import audiometrics as A
from quantzoo.compare.kinds import compare_batch
from quantzoo.compare.summary import summarize


def _crepe_like(cents: float) -> np.ndarray:
    """CREPE's target for a pitch: a Gaussian over the bins' cents (σ 25 cents), as it was trained."""
    bins = A.CENTS_BIN0 + A.CENTS_PER_BIN * np.arange(360)
    return np.exp(-((bins - cents) ** 2) / (2 * 25.0 ** 2))[None]


def test_a_tone_of_known_pitch_decodes_to_zero_cents_error():
    for hz in (110.0, 220.0, 440.0, 880.0):
        truth = A.hz_to_cents(hz)
        out = A.compare_pitch(_crepe_like(truth), _crepe_like(truth), {"labels": [f"{hz:.4f}"]})
        # the double sigmoid of torchcrepe's decoder pulls towards the argmax bin: under half a bin
        assert out["pitch_error_cents"][0] < 10.0 and out["raw_pitch_accuracy"] == [1.0]
    on_bin = A.CENTS_BIN0 + 150 * A.CENTS_PER_BIN
    assert A.decode_cents(_crepe_like(on_bin))[0] == pytest.approx(on_bin, abs=1e-9)


def test_hz_and_cents_follow_torchcrepe():
    assert A.hz_to_cents(10.0) == 0.0 and A.hz_to_cents(440.0) == pytest.approx(6551.3179, abs=1e-3)


def test_pitch_off_by_a_semitone_disagrees_and_unconfident_windows_are_left_out():
    c = A.hz_to_cents(300.0)
    ref = np.concatenate([_crepe_like(c), 0.1 * _crepe_like(c)])  # the second window: float unsure
    test = np.concatenate([_crepe_like(c + 100.0), _crepe_like(c)])
    out = compare_batch("pitch", ref, test, {"labels": ["300.0", None]})
    assert out["pitch_agreement"] == [0.0, None]
    assert out["pitch_cents_vs_float"][0] == pytest.approx(100.0, abs=12.0) and out["pitch_cents_vs_float"][1] is None
    assert out["raw_pitch_accuracy"] == [0.0, None] and out["raw_pitch_accuracy_float"] == [1.0, None]
    assert summarize("pitch_agreement", out["pitch_agreement"])["excluded"] == 1


def test_voice_activity_frames_against_the_float_model_and_the_known_boundary():
    # one recording of 8 frames of 4 samples at 4 Hz (1 s per frame): speech from 2 s to 6 s
    ref = np.array([0.1, 0.2, 0.9, 0.9, 0.8, 0.7, 0.2, 0.1])[None, :, None]
    test = np.array([0.1, 0.6, 0.9, 0.9, 0.8, 0.4, 0.2, 0.1])[None, :, None]
    ctx = {"options": {"frame": 4, "sample_rate": 4, "threshold": 0.5}, "labels": ["2.00000-6.00000"]}
    out = compare_batch("speech-frames", ref, test, ctx)
    assert out["vad_agreement"] == [0.75]
    assert out["vad_accuracy_float"] == [1.0] and out["vad_accuracy"] == [0.75]
    assert compare_batch("speech-frames", ref, ref, {"options": ctx["options"]})["vad_agreement"] == [1.0]


def test_frame_agreement_interval_counts_recordings_not_frames():
    # 20 recordings, each with 95 % of its frames agreeing: Wilson with n = 20, not n = frames
    s = summarize("vad_agreement", [0.95] * 20)
    assert s["n"] == 20 and s["mean"] == 0.95 and s["ci95"][0] < 0.77


@pytest.mark.slow
@pytest.mark.skipif(__import__("shutil").which("espeak-ng") is None,
                    reason="espeak-ng is not installed (make test installs Debian's espeak-ng)")
def test_crepe_tiny_finds_the_pitch_of_generated_tones(catalog_model, registry):
    from quantzoo.compare.core import prepare

    orig = catalog_model("crepe-tiny")  # converted from torchcrepe's state dict
    m = prepare(orig, model="crepe-tiny", registry=registry, cache=False, limit=24).compare(orig).metrics["probabilities"]
    assert m["pitch_error_cents_float"]["n"] > 0 and m["pitch_error_cents_float"]["mean"] < 20.0
    assert m["raw_pitch_accuracy_float"]["mean"] == 1.0 and m["pitch_agreement"]["mean"] == 1.0
