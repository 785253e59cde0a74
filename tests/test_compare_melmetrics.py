"""Mel spectrograms and the waveform kind (compare/melmetrics.py): hand-made signals with known answers."""

import math

import numpy as np
import pytest

from quantzoo.compare import melmetrics as MEL
from quantzoo.compare.mel import hz_to_mel, mel_to_hz
from quantzoo.compare.kinds import compare_batch
from quantzoo.compare.metrics import METRICS, SNR_CEILING_DB, pooled_snr_db
from quantzoo.compare.summary import summarize
from quantzoo.compare.tasks import output_kind

RATE = 22050


def _tone(hz: float, n: int, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * hz * np.arange(n) / RATE)).astype(np.float32)


def _pooled(rows) -> float:
    return float(pooled_snr_db(np.array(rows)))


def test_frames_follow_vits_hop():
    assert MEL.mel_spectrogram(np.zeros(256 * 40), RATE).shape == (40, 80)
    assert MEL.mel_spectrogram(np.zeros(100), RATE).shape == (0, 80)  # shorter than the reflect padding


def test_a_tone_lands_in_its_band():
    # a 1 kHz tone: the loudest band is the one whose centre is nearest 1 kHz
    centres = mel_to_hz(np.linspace(0, hz_to_mel(RATE / 2), 82))[1:-1]
    loudest = int(np.argmax(MEL.mel_spectrogram(_tone(1000.0, 8192), RATE).mean(axis=0)))
    assert loudest == int(np.argmin(np.abs(centres - 1000.0)))


def test_identical_audio_scores_the_ceiling():
    x = _tone(440.0, 256 * 30)
    out = MEL.compare_waveform(x[None, None, None], x[None, None, None], {})
    assert _pooled(out["mel_snr_db"]) == SNR_CEILING_DB
    assert _pooled(out["snr_db"]) == SNR_CEILING_DB
    assert out["duration_diff_s"] == [0.0]


@pytest.mark.parametrize("gain,db", [(0.9, 20.0), (0.5, 20 * math.log10(2)), (0.99, 40.0)])
def test_a_scaled_copy_has_a_known_mel_snr(gain, db):
    # magnitudes scale with the signal: mel(g·x) = g·mel(x), so SNR = −20·log10(1 − g)
    x = (_tone(300.0, 256 * 20) + _tone(2500.0, 256 * 20, 0.2)).astype(np.float64)
    rows = MEL.compare_waveform(x[None], (gain * x)[None], {"options": {"sample_rate": RATE}})["mel_snr_db"]
    assert _pooled(rows) == pytest.approx(db, abs=1e-6)


def test_known_additive_noise_gives_the_known_waveform_snr():
    rng = np.random.default_rng(0)
    x = _tone(200.0, 256 * 20).astype(np.float64)
    e = rng.standard_normal(x.size)
    e *= math.sqrt((x @ x) / 1000.0 / (e @ e))  # noise energy a thousandth of the signal's: 30 dB
    out = MEL.compare_waveform(x[None], (x + e)[None], {})
    assert _pooled(out["snr_db"]) == pytest.approx(30.0, abs=1e-6)
    assert 15.0 < _pooled(out["mel_snr_db"]) < 45.0  # white noise in the mel domain: near, not equal


def test_a_longer_recording_is_truncated_and_its_extra_length_reported():
    # speech then silence; the compressed model adds 512 samples of silence: equal over the common frames
    x = np.concatenate([_tone(500.0, 256 * 20), np.zeros(256 * 6, np.float32)])
    y = np.concatenate([x, np.zeros(512, np.float32)])
    out = MEL.compare_waveform(x[None, None], y[None, None], {})
    assert _pooled(out["mel_snr_db"]) == SNR_CEILING_DB
    assert out["duration_diff_s"] == [pytest.approx(512 / RATE)]
    # and the other way round (the float recording is the longer one)
    back = MEL.compare_waveform(y[None, None], x[None, None], {})
    assert back["duration_diff_s"] == out["duration_diff_s"]


def test_the_speech_synthesis_task_compares_its_first_output_as_waveform():
    assert output_kind("speech-synthesis", 4, 0) == "waveform"
    x = _tone(440.0, 256 * 12)[None, None, None]
    vals = compare_batch("waveform", x, 0.9 * x, {})
    s = summarize("mel_snr_db", vals["mel_snr_db"] * 3)
    assert s["mean"] == pytest.approx(20.0, abs=1e-4) and s["n"] == 3
    assert METRICS["mel_snr_db"].kinds == ("waveform",) and "waveform" in METRICS["snr_db"].kinds


def test_dtw_matches_a_stretched_sequence_frame_for_frame():
    a = np.array([[0.0], [1.0], [2.0], [3.0]])
    b = np.array([[0.0], [1.0], [1.0], [1.0], [2.0], [3.0]])  # frame 1 held for three frames
    i, j = MEL.dtw_path(a, b)
    assert i.tolist() == [0, 1, 1, 1, 2, 3] and j.tolist() == [0, 1, 2, 3, 4, 5]
    assert MEL.dtw_path(a, a)[0].tolist() == [0, 1, 2, 3]


def test_alignment_forgives_a_phoneme_held_longer_and_truncation_does_not():
    # the compressed model holds the first sound for 2 frames more: every later frame is shifted
    n = 256 * 16
    ref = np.concatenate([_tone(300.0, n), _tone(1200.0, n), _tone(3000.0, n)]).astype(np.float64)
    test = np.concatenate([_tone(300.0, n + 512), _tone(1200.0, n), _tone(3000.0, n)]).astype(np.float64)
    # phases: the second and third tones start at the same phase in both (each tone restarts at 0)
    out = MEL.compare_waveform(ref[None], test[None], {})
    truncated, aligned = _pooled(out["mel_snr_db"]), _pooled(out["mel_snr_aligned_db"])
    assert out["duration_diff_s"] == [pytest.approx(512 / RATE)]
    assert truncated < 10.0 and aligned > 25.0
    # a scaled copy: the alignment is the diagonal and the aligned SNR is the truncated one, −20·log10(0.1)
    same = MEL.compare_waveform(ref[None], 0.9 * ref[None], {})
    assert _pooled(same["mel_snr_aligned_db"]) == pytest.approx(20.0, abs=1e-6)
