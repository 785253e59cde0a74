"""compare/music.py: the synthesised notes, the note decoder and note F1, on inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from quantzoo.compare import music as MU
from quantzoo.compare.datasets import DATASET_ADAPTERS
from quantzoo.compare.intervals import wilson
from quantzoo.compare.kinds import KINDS, compare_batch
from quantzoo.compare.preprocess import PREPROCESSORS, InputSpec
from quantzoo.compare.split import select
from quantzoo.compare.summary import summarize
from quantzoo.compare.tasks import TASKS
from quantzoo.errors import QuantzooError

CONSTANTS = """AUDIO_SAMPLE_RATE = 22050
AUDIO_WINDOW_LENGTH = 2  # seconds
FFT_HOP = 256
ANNOTATIONS_FPS = AUDIO_SAMPLE_RATE // FFT_HOP
"""


@pytest.fixture
def constants(tmp_path):
    f = tmp_path / "constants.py"
    f.write_text(CONSTANTS)
    return f


def _maps(notes, frames=172):
    """Onset and note maps [1, T, 88] holding `notes` = [(midi, start frame, end frame)]."""
    onset, note = np.zeros((1, frames, 88), np.float32), np.zeros((1, frames, 88), np.float32)
    for p, a, b in notes:
        note[0, a:b, p - MU.MIDI_OFFSET] = 0.8
        onset[0, a, p - MU.MIDI_OFFSET] = 0.9
        onset[0, a + 1, p - MU.MIDI_OFFSET] = 0.4  # a peak, not a plateau
    return onset, note


def test_clip_format_reads_the_package_constants(constants, tmp_path):
    assert MU.clip_format(constants) == (22050, 43844)
    assert MU.clip_format(tmp_path) == (22050, 43844)  # a folder: its constants.py
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "constants.py").write_text("AUDIO_SAMPLE_RATE = 22050\n")
    with pytest.raises(QuantzooError, match="AUDIO_WINDOW_LENGTH, FFT_HOP"):
        MU.clip_format(tmp_path / "bad")


def test_generated_note_has_its_pitch_at_the_fft_peak():
    rate = 22050
    for midi in (45, 60, 69, 81):
        x = MU.harmonic_note(midi, rate, rate, 0.3, 0.3, [0.0] * 6)
        spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        peak_hz = np.argmax(spectrum) * rate / len(x)
        assert abs(peak_hz - MU.midi_hz(midi)) <= 0.5  # the nearest 1 Hz bin
        assert abs(float(np.abs(x).max()) - 0.3) < 1e-9


def test_synthesised_notes_are_labelled_deterministic_and_split(constants):
    params = {"seed": 3, "clips": 12}
    a = MU.synthesised_notes(constants, params, [])
    b = MU.synthesised_notes(constants, params, [])
    assert [s.key for s in a] == [f"clip-{i:04d}" for i in range(12)]
    assert all(np.array_equal(x.data.samples, y.data.samples) and x.label == y.label for x, y in zip(a, b))
    for s in a:
        notes = MU.parse_notes(s.label)
        assert 1 <= len(notes) <= 4 and s.data.rate == 22050 and len(s.data.samples) == 43844
        for p, on, off in notes:
            assert 40 <= p <= 84 and 0.1 <= on < off <= 43844 / 22050 - 0.1 + 1e-9
        first = int(round(notes[0][1] * 22050))  # silence until the first onset, sound right after it
        assert not s.data.samples[:first].any() and np.abs(s.data.samples[first:first + 1000]).max() > 0.01
    assert MU.synthesised_notes(constants, {**params, "seed": 4}, [])[0].label != a[0].label
    keys = [s.key for s in MU.synthesised_notes(constants, {"clips": 40}, [])]
    cal, ev = select(keys, 0.25, "calibration"), select(keys, 0.25, "evaluation")
    assert cal and ev and not set(cal) & set(ev) and len(cal) + len(ev) == 40
    with pytest.raises(QuantzooError, match="set params.rate to 22050"):
        MU.synthesised_notes(constants, {"rate": 16000}, [])
    assert DATASET_ADAPTERS["synthesised-notes"].read is MU.synthesised_notes


def test_audio_window_pads_and_cuts_to_the_input():
    spec = [InputSpec("x", "tensor(float)", (None, 6, 1))]
    pre = PREPROCESSORS["audio-window"].preprocess
    x = pre(MU.Audio(np.arange(1, 9, dtype=np.float32), 22050), {"sample_rate": 22050}, spec)["x"]
    assert x.shape == (6, 1) and x.ravel().tolist() == [1, 2, 3, 4, 5, 6]
    with pytest.raises(QuantzooError, match="fixed"):
        pre(MU.Audio(np.zeros(4, np.float32), 8), {}, [InputSpec("x", "tensor(float)", (None, None, 1))])


def test_decoder_finds_hand_made_notes():
    onset, note = _maps([(60, 10, 40), (64, 10, 30), (60, 80, 120), (72, 150, 170)])
    found = MU.decode_notes(note[0], onset[0])
    assert found == [(60, 10, 40), (64, 10, 30), (60, 80, 120), (72, 150, 170)]
    # too short (11 frames or fewer), an onset below the threshold, a gap shorter than the tolerance
    onset, note = _maps([(50, 10, 20), (55, 30, 60)])
    onset[0, 30, 55 - 21] = 0.45
    assert MU.decode_notes(note[0], onset[0]) == []
    onset, note = _maps([(60, 10, 30)])
    note[0, 35:60, 39] = 0.8  # a gap of 5 frames < 11: the note runs on
    assert MU.decode_notes(note[0], onset[0]) == [(60, 10, 60)]


def test_note_rows_known_answers():
    ref = [(60, 0.10), (64, 0.10), (67, 0.50), (60, 1.00)]
    assert MU.note_row(ref, ref) == [4.0, 4.0, 4.0]
    assert MU.note_row(ref, [(60, 0.149), (64, 0.0), (67, 0.5)]) == [2.0, 4.0, 3.0]  # 64 is 100 ms off
    assert MU.note_row(ref, [(61, 0.10)]) == [0.0, 4.0, 1.0]                          # wrong pitch
    assert MU.note_row([(60, 0.1)], [(60, 0.1), (60, 0.12)]) == [1.0, 1.0, 2.0]       # one to one
    assert MU.note_row([], []) is None


def test_note_f1_is_pooled_over_the_notes_of_every_clip():
    # a clip of 4 notes all found and one of 1 note missed: per clip 1 and 0 would average 0.5;
    # over the notes 2·4 / (5 + 4) = 8/9, its interval at least Wilson's at 4 of 4.5 notes
    rows = [MU.note_row([(60, 0.1), (62, 0.3), (64, 0.5), (65, 0.7)], [(60, 0.1), (62, 0.3), (64, 0.5), (65, 0.7)]),
            MU.note_row([(67, 0.2)], [])]
    s = summarize("note_f1", rows)
    assert s["mean"] == pytest.approx(8 / 9, abs=1e-6) and s["n"] == 2
    lo, _ = wilson(4, 4.5)
    assert s["ci95"][0] <= lo + 1e-6 < 8 / 9


def test_notes_kind_through_the_task():
    task = TASKS["music-transcription"]
    assert task.output_kind(3, 0) == "notes" and task.output_kind(3, 1) == "dense"
    onset, note = _maps([(60, 10, 40), (67, 60, 100)])
    contour = np.zeros((1, 172, 264), np.float32)
    ref = KINDS["notes"].reduce(onset, {"outputs": [onset, note, contour]})
    onset2, note2 = _maps([(60, 11, 40)])
    test = KINDS["notes"].reduce(onset2, {"outputs": [onset2, note2, contour], "reference": ref})
    spf = 256 / 22050
    label = MU.note_label([(60, 10 * spf, 40 * spf), (67, 60 * spf, 100 * spf), (72, 0.5, 1.0)])
    out = compare_batch("notes", ref, test, {"labels": [label]})
    assert out["note_f1"] == [[1.0, 2.0, 1.0]]  # F1 2/3
    assert out["note_f1_truth_float"] == [[2.0, 3.0, 2.0]] and out["note_f1_truth"] == [[1.0, 3.0, 1.0]]  # 0.8, 0.5
    assert len(out["snr_db"]) == 1 and "cosine" in out
    with pytest.raises(QuantzooError, match="onset_output and note_output"):
        KINDS["notes"].reduce(onset, {"outputs": [onset, contour]})


@pytest.mark.slow
def test_basic_pitch_finds_synthesised_notes(catalog_model, catalog_dataset, registry):
    from quantzoo.compare.core import prepare

    assert MU.clip_format(catalog_dataset("synthesised-notes")) == (22050, 43844)  # basic-pitch's constants.py
    orig = catalog_model("basic-pitch")
    ev = prepare(orig, model="basic-pitch", registry=registry, cache=False, limit=12)
    m = ev.compare(orig).metrics["StatefulPartitionedCall:2"]
    assert m["note_f1"]["mean"] == 1.0 and m["note_f1"]["n"] == 12
    assert m["note_f1_truth_float"]["mean"] > 0.7  # 0.88 on the 31 evaluation clips of the build
