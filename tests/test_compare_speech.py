"""Generated speech and tones: espeak-ng determinism, known extents, resampling, the preprocessors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from quantzoo.compare import speech as SP
from quantzoo.compare.inputs import InputSpec
from quantzoo.errors import QuantzooError

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (make test installs Debian's espeak-ng)")

TEXT = "The river rose all night. Nobody in the village slept well. Ok."


@needs_espeak
def test_espeak_gives_the_same_samples_every_time_and_voices_differ():
    a = SP.speak("The river rose all night.", "en-us", 175)
    b = SP.speak("The river rose all night.", "en-us", 175)
    c = SP.speak("The river rose all night.", "en-gb-scotland", 175)
    assert a.dtype == np.float32 and len(a) > SP.ESPEAK_RATE // 2
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


@needs_espeak
def test_speech_dataset_is_deterministic_and_labelled_with_the_spliced_extents(tmp_path):
    (tmp_path / "t.txt").write_text(TEXT)
    params = {"seed": 3, "count": 2, "duration": 4.0, "silence": [0.5, 0.5], "min_words": 4, "max_words": 8,
              "voices": ["en-us", "en-gb"], "speeds": [175]}
    s1 = SP.espeak_speech(tmp_path / "t.txt", params, [])
    s2 = SP.espeak_speech(tmp_path / "t.txt", params, [])
    assert [s.key for s in s1] == ["utt-0000", "utt-0001"]
    assert [s.data.samples.tobytes() for s in s1] == [s.data.samples.tobytes() for s in s2]
    for s in s1:
        ext = SP.parse_extents(s.label)
        assert len(s.data.samples) == 4 * SP.ESPEAK_RATE
        assert ext[0][0] == pytest.approx(0.5, abs=1e-4)  # the first silence is exactly 0.5 s
        x = s.data.samples
        for a, b in ext:  # silence outside the extents, espeak's speech at both ends of each
            i, j = round(a * SP.ESPEAK_RATE), round(b * SP.ESPEAK_RATE)
            assert abs(x[i]) > SP.TRIM_LEVEL and abs(x[j - 1]) > SP.TRIM_LEVEL
        inside = np.zeros(len(x), bool)
        for a, b in ext:
            inside[round(a * SP.ESPEAK_RATE):round(b * SP.ESPEAK_RATE)] = True
        assert not np.any(x[~inside])


def test_another_espeak_version_is_refused_with_the_install_command(monkeypatch):
    monkeypatch.setattr(SP, "espeak_version", lambda: "1.50+dfsg-1")
    with pytest.raises(QuantzooError, match=r"apt-get install espeak-ng=1.51\+dfsg-10\+deb12u2"):
        SP.check_espeak("1.51+dfsg-10+deb12u2")
    monkeypatch.setattr(SP, "espeak_version", lambda: None)
    with pytest.raises(QuantzooError, match="espeak-ng is not installed"):
        SP.check_espeak("1.51+dfsg-10+deb12u2")


def test_silence_with_a_known_boundary_gives_the_frame_labels():
    # 1 s of silence then 0.5 s of speech at 16 kHz, frames of 512 samples (32 ms)
    labels = SP.frame_labels([(1.0, 1.5)], 48, 512, 16000)
    assert labels[:31].sum() == 0              # frames 0-30 end before 0.992 s
    assert labels[31] == 1                     # 0.992-1.024 s: 24 of 32 ms are speech
    assert labels[31:46].all() and labels[47] == 0
    assert int(labels.sum()) == 16             # 0.5 s = 15.6 frames, the half-covered last one counts


def test_resampling_keeps_a_tone_and_the_rate():
    t = np.arange(SP.ESPEAK_RATE) / SP.ESPEAK_RATE
    x = np.sin(2 * np.pi * 300.0 * t).astype(np.float32)
    y = SP.resample(x, SP.ESPEAK_RATE, 16000)
    want = np.sin(2 * np.pi * 300.0 * np.arange(16000) / 16000)
    assert len(y) == 16000 and np.abs(y - want).max() < 1e-3


def test_tones_are_labelled_with_their_frequency_and_deterministic(tmp_path):
    params = {"seed": 1, "tones": 5, "rate": 16000, "window": 1024, "min_hz": 100, "max_hz": 200}
    a = SP.pitch_frames(tmp_path, params, [])
    b = SP.pitch_frames(tmp_path, params, [])
    assert [s.label for s in a] == [s.label for s in b] and len(a) == 5
    for s in a:
        f = float(s.label)
        spec = np.abs(np.fft.rfft(s.data.samples * np.hanning(1024), 16384))
        assert 100 <= f <= 200 and abs(np.argmax(spec) * 16000 / 16384 - f) < 1.0


def test_audio_frame_preprocessor_normalises_like_torchcrepe_and_fits_the_input():
    x = SP.tone(440.0, 1500, 16000, 0.3, 0.0) + 0.2
    feed = SP.audio_frame(SP.Audio(x, 16000), {"sample_rate": 16000}, [InputSpec("frames", "tensor(float)", (None, 1024))])
    f = feed["frames"].astype(np.float64)
    assert f.shape == (1024,) and abs(f.mean()) < 1e-6 and f.std(ddof=1) == pytest.approx(1.0, abs=1e-5)
    silent = SP.audio_frame(SP.Audio(np.zeros(1024, np.float32), 16000), {}, [InputSpec("f", "tensor(float)", (None, 1024))])
    assert not silent["f"].any()


def test_audio_preprocessor_resamples_to_the_models_rate():
    a = SP.Audio(np.zeros(22050, np.float32), 22050)
    feed = SP.audio_input(a, {"sample_rate": 16000}, [InputSpec("input", "tensor(float)", (None, None))])
    assert feed["input"].shape == (16000,) and feed["input"].dtype == np.float32
    with pytest.raises(QuantzooError, match="generated recordings"):
        SP.audio_input(np.zeros(3), {}, [InputSpec("input", "tensor(float)", (None, None))])


def test_wav_files_are_read_as_mono_recordings_and_other_files_skipped(tmp_path):
    import wave

    d = tmp_path / "speech"
    d.mkdir()
    with wave.open(str(d / "a.wav"), "wb") as w:
        w.setnchannels(2), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(np.array([[16384, 0], [-16384, -16384]], "<i2").tobytes())
    (d / "notes.txt").write_text("not audio")
    skipped: list = []
    (s,) = SP.wav_files(tmp_path, {"labels": {"from": "folder"}}, skipped)
    assert s.key == "speech/a.wav" and s.label == "speech" and s.data.rate == 8000
    assert s.data.samples.tolist() == [0.25, -0.5] and [k for k, _ in skipped] == ["speech/notes.txt"]
