"""compare/speaker.py: Resemblyzer's mel frontend on tones of known frequency, the speaker-mels
preprocessor, and the espeak-speakers adapter (voices as speakers, no phrase twice)."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from quantzoo.compare import speaker as SPK
from quantzoo.compare.preprocess import PREPROCESSORS, InputSpec
from quantzoo.compare.speech import Audio
from quantzoo.errors import QuantzooError

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (make test installs Debian's espeak-ng)")

SPEC = [InputSpec("mels", "tensor(float)", (None, None, 40))]


def _band_centre_hz(k: int) -> float:
    """Centre of mel band k (0-based) of 40 between 0 and 8 kHz, by hand from Slaney's scale:
    15 mels per kHz below 1 kHz, then 27 mels per factor 6.4."""
    top = 15.0 + math.log(8000.0 / 1000.0) * 27.0 / math.log(6.4)
    mel = (k + 1) * top / 41.0
    return mel * 200.0 / 3.0 if mel < 15.0 else 1000.0 * math.exp((mel - 15.0) * math.log(6.4) / 27.0)


@pytest.mark.parametrize("band", [5, 20, 33])
def test_a_tone_at_a_bands_centre_lands_in_that_band(band):
    hz = _band_centre_hz(band)
    t = np.arange(16000) / 16000.0
    mel = SPK.mel_spectrogram(0.5 * np.sin(2 * np.pi * hz * t))
    assert mel.shape == (101, 40)  # 1 + 16000 // 160 centred frames
    energy = mel[5:-5].mean(axis=0)
    assert int(np.argmax(energy)) == band
    far = np.abs(np.arange(40) - band) >= 3
    assert energy[far].max() < 1e-3 * energy[band]


def test_the_mel_power_of_a_tone_follows_its_amplitude_squared():
    t = np.arange(8000) / 16000.0
    a = SPK.mel_spectrogram(0.1 * np.sin(2 * np.pi * 700 * t))[10:-10].sum()
    b = SPK.mel_spectrogram(0.3 * np.sin(2 * np.pi * 700 * t))[10:-10].sum()
    assert b / a == pytest.approx(9.0, rel=1e-6)


def test_volume_is_raised_to_minus_30_dbfs_never_lowered():
    quiet = np.full(100, 0.001)
    loud = np.full(100, 0.5)
    raised = SPK.normalize_volume(quiet)
    assert 20 * math.log10(float(np.sqrt(np.mean((raised * SPK.INT16_MAX) ** 2))) / SPK.INT16_MAX) == pytest.approx(-30.0)
    assert SPK.normalize_volume(loud).tolist() == loud.tolist()
    assert SPK.normalize_volume(np.zeros(5)).tolist() == [0.0] * 5


def test_the_preprocessor_keeps_the_middle_partial_and_pads_a_short_one_at_the_end():
    rng = np.random.default_rng(0)
    long = Audio((0.05 * rng.standard_normal(22050 * 3)).astype(np.float32), 22050)  # 3 s: 301 frames at 16 kHz
    x = PREPROCESSORS["speaker-mels"].preprocess(long, {}, SPEC)["mels"]
    assert x.shape == (160, 40) and x.dtype == np.float32 and x.min() > 0
    short = Audio((0.05 * rng.standard_normal(16000)).astype(np.float32), 16000)  # 1 s: 101 frames
    y = SPK.speaker_mels(short, {"frames": 120}, SPEC)["mels"]
    assert y.shape == (120, 40)
    assert (y[:101] > 0).all() and not y[101:].any()
    with pytest.raises(QuantzooError, match="recordings"):
        SPK.speaker_mels(np.zeros(3), {}, SPEC)


def test_resampling_pads_to_a_fast_length_and_keeps_the_exact_rate():
    t = np.arange(22050) / 22050.0
    y = SPK.resampled(np.sin(2 * np.pi * 441 * t).astype(np.float32), 22050, 16000)
    want = np.sin(2 * np.pi * 441 * np.arange(16000) / 16000.0)
    assert len(y) == 16000
    assert np.abs(y[200:-200] - want[200:-200]).max() < 1e-3


def test_phrases_are_disjoint_runs_of_words():
    text = "a b c d e f g h i j"
    assert SPK.phrases(text, 3) == ["a b c", "d e f", "g h i"]
    assert SPK.phrases("one £ two three four", 2) == ["two three"]  # "one £" left out, "four" too short


@needs_espeak
def test_every_voice_speaks_its_own_phrases_labelled_with_the_voice(tmp_path):
    (tmp_path / "t.txt").write_text(" ".join(f"word{i} and more" for i in range(20)))
    params = {"seed": 1, "words": 3, "per_voice": 2, "voices": ["en-us+m2", "en-gb+f3"], "speeds": [175]}
    samples = SPK.espeak_speakers(tmp_path / "t.txt", params, [])
    again = SPK.espeak_speakers(tmp_path / "t.txt", params, [])
    assert [s.key for s in samples] == ["en-us+m2#u00", "en-us+m2#u01", "en-gb+f3#u00", "en-gb+f3#u01"]
    assert [s.label for s in samples] == ["en-us+m2", "en-us+m2", "en-gb+f3", "en-gb+f3"]
    assert [s.data.samples.tobytes() for s in samples] == [s.data.samples.tobytes() for s in again]
    assert len({s.data.samples.tobytes() for s in samples}) == 4
    for s in samples:  # espeak's own silence trimmed at both ends
        assert abs(s.data.samples[0]) > 1e-3 and abs(s.data.samples[-1]) > 1e-3
    with pytest.raises(QuantzooError, match="phrases"):
        SPK.espeak_speakers(tmp_path / "t.txt", {**params, "per_voice": 50}, [])
