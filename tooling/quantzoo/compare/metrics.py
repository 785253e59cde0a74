"""Metrics: one `Metric` record per metric name, and the pure functions that compute them.

`METRICS` is the one table of metrics: the registry's threshold check, the site's columns and
legend, and the client's formatting and ranking are all read from it. The per-sample functions
below are what the output kinds (`kinds.KINDS`) call; which kind an output gets is its task's
business (`tasks.TASKS`).

The metric names are the records' names in `METRICS` below (every output reports the pooled
``snr_db``; which others an output gets is its output kind's business, `kinds.KINDS`); the methodology page
lists them with their meanings.

A per-sample value is None where the figure is undefined on that sample (cosine with an all-zero
output, IoU of two empty maps, accuracy of an unlabelled sample); the summary leaves such samples
out and counts them (``excluded``, `summary.summarize`).

SNR and PSNR are pooled (`pooled_snr_db`, `pooled_psnr_db`): energies are summed over every
element of every sample before the ratio is taken. They cannot exceed what float32 can resolve:
the noise power is floored at ``FLOAT32_EPS**2 * signal power``, so identical outputs score
`SNR_CEILING_DB` (138.5 dB) instead of infinity (and a zero reference against a non-zero output
scores its negative), so JSON stays finite.

This module needs numpy only (no onnxruntime): the publisher and the client import it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

# The pure per-sample functions live in measures.py; these names stay importable from here.
from .measures import (  # noqa: E402,F401
    dense_components,
    _ratio_db,
    pooled_snr_db,
    pooled_psnr_db,
    dense_stats,
    snr_db,
    psnr_db,
    cosine,
    max_abs_error,
    iou,
    pooled_f1,
    pooled_precision,
    pooled_recall,
    f1_units,
    precision_units,
    recall_units,
    top1_agreement,
    top5_agreement,
    accuracy,
    DENSE_COMPONENTS,
    _sig,
    FLOAT32_EPS,
    SNR_CEILING_DB,
    DET_THRESHOLD,
)

# Bump when a metric's definition changes: cached comparisons are keyed by it.
# 2: iou leaves out samples where both maps are empty.
# 3: SNR and PSNR pooled over the dataset, snr_db on every output (logits, CTC probabilities),
#    cosine/iou/accuracy count undefined samples as `excluded`, every summary has `ci95`.
# 4: no interval from fewer than two values (or clusters); detection, picture, audio metrics added.
# 5: count ratios (detection and note F1/precision/recall, balanced speaker agreement/accuracy) are pooled over
#    their counted items, and their interval is never narrower than Wilson's at that many items (`Metric.units`).
# 6: word error rates (`wer*`, `asr_wer*`) are count ratios over the reference words while they are at most 1.
REVISION = 6




# --- the records ----------------------------------------------------------------------------

# unit -> how a finite value is written in a table cell
UNITS: dict[str, Callable[[float], str]] = {
    "fraction": lambda v: f"{v * 100:.2f} %",
    "db": lambda v: f"{v:.1f} dB",
    "ratio": lambda v: f"{v:.5f}",
    "abs": lambda v: f"{v:.3g}",
}


@dataclass(frozen=True)
class Metric:
    """Everything the program knows about one metric.

    `unit` picks the formatting (`UNITS`); `proportion` marks a share of samples (each sample
    scores 0 or 1); `primary` ranks the metrics a client orders a model's variants by (lower
    first; None: never primary). `kinds` are the output kinds (`kinds.KINDS`) that report it.
    `compute`, when given, is ``fn(reference batch, test batch, context) -> per-sample values``,
    run on every output of those kinds; when None the kind's own ``compare`` computes it
    (several metrics in one pass over the outputs). A per-sample value is None where the metric
    is undefined on that sample. `pool`, when given, makes the metric pooled: its per-sample
    values are component rows and ``pool(rows [..., n, k]) -> value(s)`` computes the figure over
    the whole dataset (the summary's mean; the bootstrap resamples rows and pools again).
    `units`, when given, marks a count ratio — a pooled share of counted items (boxes, notes,
    utterance pairs) — and ``units(rows [n, k]) -> U`` says how many items the pooled figure is a
    share of: its interval is never narrower than the Wilson score interval of figure · U
    successes in U trials (`summary.summarize`; ARCHITECTURE.md, "Uncertainty and splits").
    Proportions (shares of samples) get Wilson's interval at the samples itself.
    """

    name: str
    label: str
    unit: str
    higher_is_better: bool
    proportion: bool
    meaning: str
    primary: int | None = None
    kinds: tuple[str, ...] = ()
    compute: Callable[[np.ndarray, np.ndarray, dict], list] | None = None
    pool: Callable[[np.ndarray], Any] | None = None
    units: Callable[[np.ndarray], float] | None = None

    def format(self, value: Any) -> str:
        """`value` for a table cell: '99.53 %', '31.2 dB', '∞ dB', '–' for None.

        >>> METRICS["iou"].format(1.0), METRICS["snr_db"].format(float("-inf")), METRICS["cer"].format(None)
        ('100.00 %', '−∞ dB', '–')
        """
        if value is None:
            return "–"
        try:
            v = float(value)
        except (TypeError, ValueError):
            return "–"
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return ("∞" if v > 0 else "−∞") + (" dB" if self.unit == "db" else "")
        return UNITS.get(self.unit, UNITS["abs"])(v)


_CLS, _DENSE, _DET, _CTC = ("classification",), ("dense", "detection", "image", "mask", "boxes", "notes"), ("detection",), ("ctc",)
_IMG, _MASK = ("image",), ("mask",)  # image-to-image and salient-object masks (imagemetrics.py)
_BOX, _LMK = ("boxes", "detection"), ("boxes",)  # decoded detections (decoders.py, detection.py)
_VAD, _PITCH = ("speech-frames",), ("pitch",)  # voice activity and pitch (audiometrics.py)
_NOTES = ("notes",)  # music transcription (music.py)
_WAKE = ("wake-score",)  # keyword spotting (wakeword.py)
_WAVE = ("waveform",)  # speech synthesis (melmetrics.py)
_SEN = ("sentence-embedding",)  # sentence embeddings (sentences.py)
_SPK = ("speaker-embedding",)  # speaker embeddings (speakermetrics.py)
_ASR = ("transcript",)  # greedy-decoded transcripts (asr.py, seq2seq.py)
_WER = {"pool": lambda rows: _wer_pool(rows), "units": lambda rows: _wer_units(rows)}  # rows: errors, words (asr.py)
_ALL = ("classification", "dense", "detection", "ctc", "image", "mask", "boxes", "speech-frames", "pitch", "notes", "wake-score",
        "waveform", "speaker-embedding", "transcript", "sentence-embedding")

METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("top1_agreement", "top-1 agreement", "fraction", True, True,
           "share of samples where the compressed model's top class equals the float model's", 10, _CLS),
    Metric("top5_agreement", "top-5 agreement", "fraction", True, True,
           "share of samples where the float model's top class is among the compressed model's top 5", None, _CLS),
    Metric("accuracy_float", "float accuracy", "fraction", True, True,
           "top-1 accuracy of the float model against the labels, over the labelled samples", None, _CLS),
    Metric("accuracy_quantized", "accuracy", "fraction", True, True,
           "top-1 accuracy of the compressed model against the labels, over the labelled samples", None, _CLS),
    Metric("snr_db", "SNR", "db", True, False,
           "signal-to-noise ratio pooled over the dataset: 10·log10 of the float outputs' total energy "
           "over the total energy of the difference, summed over every element of every sample "
           "(CTC probabilities: over the float model's 16 most probable classes at each step)",
           None, _ALL, pool=lambda rows: pooled_snr_db(rows)),
    Metric("psnr_db", "PSNR", "db", True, False,
           "peak signal-to-noise ratio pooled over the dataset: the float output's largest squared value "
           "over the mean squared difference of every element of every sample, in dB",
           None, _DENSE, pool=lambda rows: pooled_psnr_db(rows)),
    Metric("cosine", "cosine", "ratio", True, False,
           "cosine similarity of the flattened outputs, averaged over the samples where neither output "
           "is all zero", 40, _DENSE),
    Metric("max_abs_error", "max abs error", "abs", False, False,
           "largest absolute difference of any output element of a sample, averaged over the samples", None, _DENSE),
    Metric("iou", "IoU", "fraction", True, False,
           "intersection over union of the binarized maps (text detection threshold), averaged over the "
           "samples where either map has text", 30, _DET),
    Metric("string_agreement", "string agreement", "fraction", True, True,
           "share of samples whose decoded strings are identical", 20, _CTC),
    Metric("cer", "CER vs float", "fraction", False, False,
           "character error rate of the compressed model's strings against the float model's strings", None, _CTC),
    Metric("cer_labels", "CER vs labels", "fraction", False, False,
           "character error rate of the compressed model's strings against the labels", None, _CTC),
    Metric("ssim", "SSIM", "ratio", True, False,
           "structural similarity of the compressed model's image with the float model's (Wang et al. 2004: "
           "11×11 Gaussian window of σ 1.5, K1 0.01, K2 0.03, data range 1, valid positions), the mean over "
           "the channels, averaged over the samples", 35, _IMG),
    Metric("mask_iou", "mask IoU", "fraction", True, False,
           "intersection over union of the compressed and float models' masks binarised at 0.5, averaged "
           "over the samples where either mask has an object", 32, _MASK),
    Metric("matte_iou_float", "float IoU vs matte", "fraction", True, False,
           "intersection over union of the float model's mask (binarised at 0.5) with the reference matte "
           "(binarised at 0.5), over the samples that have one", None, _MASK),
    Metric("matte_iou", "IoU vs matte", "fraction", True, False,
           "intersection over union of the compressed model's mask (binarised at 0.5) with the reference "
           "matte (binarised at 0.5), over the samples that have one", None, _MASK),
    Metric("detection_f1", "detection F1", "fraction", True, False,
           "F1 of the compressed model's decoded detections against the float model's: boxes matched one to one "
           "at IoU ≥ 0.5 in each sample, 2·matches / (float boxes + compressed boxes) pooled over the boxes of "
           "every sample (n: samples where either model detects something; the interval resamples samples and "
           "is never narrower than Wilson's at (float + compressed boxes) / 2)", 25, _BOX,
           pool=pooled_f1, units=f1_units),
    Metric("detection_precision", "detection precision", "fraction", True, False,
           "share of the compressed model's detections, over every sample, that match a float detection "
           "at IoU ≥ 0.5 (n: samples where the compressed model detects something; the interval is never narrower "
           "than Wilson's at the compressed boxes)", None, _BOX, pool=pooled_precision, units=precision_units),
    Metric("detection_recall", "detection recall", "fraction", True, False,
           "share of the float model's detections, over every sample, that a compressed detection matches "
           "at IoU ≥ 0.5 (n: samples where the float model detects something; the interval is never narrower "
           "than Wilson's at the float boxes)", None, _BOX, pool=pooled_recall, units=recall_units),
    Metric("landmark_error", "landmark error", "fraction", False, False,
           "mean distance between the landmarks of matched detections, divided by the float box's size "
           "√(width·height), averaged over the samples with a match", None, _LMK),
    Metric("vad_agreement", "frame agreement", "fraction", True, True, "share of frames where the compressed model's "
           "speech/non-speech decision equals the float model's (n: recordings)", None, _VAD),
    Metric("vad_accuracy_float", "float frame accuracy", "fraction", True, True,
           "share of frames where the float model's decision matches the known speech extents (n: recordings)", None, _VAD),
    Metric("vad_accuracy", "frame accuracy", "fraction", True, True,
           "share of frames where the compressed model's decision matches the known speech extents (n: recordings)", None, _VAD),
    Metric("pitch_agreement", "pitch agreement", "fraction", True, True, "share of windows where the compressed "
           "model's pitch is within 50 cents of the float model's, where the float model is confident", None, _PITCH),
    Metric("pitch_cents_vs_float", "cents vs float", "abs", False, False,
           "absolute pitch difference from the float model in cents, where the float model is confident", None, _PITCH),
    Metric("pitch_error_cents", "cents error", "abs", False, False,
           "absolute error of the compressed model's pitch against the known frequency, in cents", None, _PITCH),
    Metric("pitch_error_cents_float", "float cents error", "abs", False, False,
           "absolute error of the float model's pitch against the known frequency, in cents", None, _PITCH),
    Metric("raw_pitch_accuracy", "raw pitch accuracy", "fraction", True, True,
           "share of labelled windows where the compressed model's pitch is within 50 cents of the truth", None, _PITCH),
    Metric("raw_pitch_accuracy_float", "float raw pitch accuracy", "fraction", True, True,
           "share of labelled windows where the float model's pitch is within 50 cents of the truth", None, _PITCH),
    Metric("note_f1", "note F1", "fraction", True, False,
           "F1 of the compressed model's notes against the float model's (notes decoded from the onset and note maps; "
           "matched one to one with equal pitch and onsets within 50 ms in each clip), 2·matches / (float notes + "
           "compressed notes) pooled over the notes of every clip (n: clips where either model finds a note; the "
           "interval resamples clips and is never narrower than Wilson's at (float + compressed notes) / 2)",
           None, _NOTES, pool=pooled_f1, units=f1_units),
    Metric("note_f1_truth_float", "float note F1 vs truth", "fraction", True, False,
           "F1 of the float model's notes against the notes synthesised (equal pitch, onset within 50 ms), pooled "
           "over the notes of every clip (n: clips)", None, _NOTES, pool=pooled_f1, units=f1_units),
    Metric("note_f1_truth", "note F1 vs truth", "fraction", True, False,
           "F1 of the compressed model's notes against the notes synthesised (equal pitch, onset within 50 ms), "
           "pooled over the notes of every clip (n: clips)", None, _NOTES, pool=pooled_f1, units=f1_units),
    Metric("wake_agreement", "wake agreement", "fraction", True, True, "share of recordings where the compressed "
           "model's wake/no-wake decision (score at the model's trigger threshold) equals the float model's", None, _WAKE),
    Metric("wake_accuracy_float", "float wake accuracy", "fraction", True, True,
           "share of labelled recordings where the float model's decision matches the label (wake phrase or not)",
           None, _WAKE),
    Metric("wake_accuracy", "wake accuracy", "fraction", True, True,
           "share of labelled recordings where the compressed model's decision matches the label (wake phrase or not)",
           None, _WAKE),
    Metric("wake_recall_float", "float wake recall", "fraction", True, True,
           "share of the recordings holding the wake phrase where the float model fires", None, _WAKE),
    Metric("wake_recall", "wake recall", "fraction", True, True,
           "share of the recordings holding the wake phrase where the compressed model fires", None, _WAKE),
    Metric("false_wake_float", "float false wakes", "fraction", False, True,
           "share of the recordings without the wake phrase where the float model fires", None, _WAKE),
    Metric("false_wake", "false wakes", "fraction", False, True,
           "share of the recordings without the wake phrase where the compressed model fires", None, _WAKE),
    Metric("mel_snr_db", "mel SNR", "db", True, False,
           "SNR of the compressed model's mel spectrogram (VITS's: STFT 1024 every 256 samples, 80 Slaney mel bands, "
           "magnitudes) against the float model's, over the frames both recordings have, pooled over every frame "
           "and band of every recording", None, _WAVE, pool=lambda rows: pooled_snr_db(rows)),
    Metric("mel_snr_aligned_db", "aligned mel SNR", "db", True, False,
           "mel SNR (as mel_snr_db) after matching the two recordings' frames by dynamic time warping on their log "
           "mels, so a phoneme that got a frame longer does not count every later frame as error; pooled over the "
           "matched frames of every recording", None, _WAVE, pool=lambda rows: pooled_snr_db(rows)),
    Metric("duration_diff_s", "duration difference", "abs", False, False,
           "absolute difference between the compressed and the float model's audio lengths in seconds (durations "
           "are predicted), averaged over the recordings", None, _WAVE),
    # intelligibility: the manifest's judge (a speech recogniser's float model, judge.py) transcribes the audio
    Metric("asr_wer", "ASR WER vs text", "fraction", False, False,
           "word error rate of the judge's transcripts of the compressed model's audio (the manifest's metrics.judge: "
           "a speech recogniser's float model) against the text that was spoken, pooled over the recordings (the "
           "interval resamples recordings)", None, _WAVE, **_WER),
    Metric("asr_wer_float", "float ASR WER vs text", "fraction", False, False,
           "word error rate of the judge's transcripts of the float model's audio against the text that was spoken, "
           "pooled over the recordings", None, _WAVE, **_WER),
    Metric("asr_wer_vs_float", "ASR WER vs float", "fraction", False, False,
           "word error rate of the judge's transcripts of the compressed model's audio against its transcripts of the "
           "float model's audio, pooled over the recordings", None, _WAVE, **_WER),
    # sentence embeddings (sentences.py): rows [doc, R, ratings, embedding(s)], pooled over document pairs
    Metric("spearman", "Spearman vs humans", "ratio", True, False,
           "Spearman correlation of the compressed model's cosine similarities with the human similarity ratings, "
           "over every rated pair of the evaluated documents (n: documents; the interval resamples documents)",
           None, _SEN, pool=lambda rows: _spearman_pool(rows, 1)),
    Metric("spearman_float", "float Spearman vs humans", "ratio", True, False,
           "Spearman correlation of the float model's cosine similarities with the human similarity ratings, over "
           "every rated pair of the evaluated documents (n: documents)", None, _SEN,
           pool=lambda rows: _spearman_pool(rows, 1)),
    Metric("spearman_delta", "Spearman change", "ratio", True, False,
           "the compressed model's Spearman correlation with the human ratings minus the float model's, on the same "
           "pairs (n: documents; the interval resamples documents, paired)", None, _SEN,
           pool=lambda rows: _spearman_pool(rows, 2)),
    # speaker embeddings (speakermetrics.py): rows [id, voice, threshold, embeddings], pooled over utterance pairs
    Metric("speaker_agreement", "same-speaker agreement", "fraction", True, False,
           "share of utterance pairs where the compressed model's same/different-voice decision (cosine at the "
           "threshold fixed on the float model's calibration utterances) equals the float model's, balanced over the "
           "float model's two decisions (n: utterances; the interval resamples voices and is never narrower than "
           "Wilson's at the pairs of the smaller of the two decisions)", None, _SPK,
           pool=lambda rows: _speaker_pool(rows, "agreement"), units=lambda rows: _speaker_units(rows, "agreement")),
    Metric("speaker_accuracy_float", "float same-speaker accuracy", "fraction", True, False,
           "balanced accuracy of the float model's same/different-voice decisions on utterance pairs against the true "
           "voices (n: utterances; the interval is never narrower than Wilson's at the same-voice or the "
           "different-voice pairs, whichever are fewer)", None, _SPK,
           pool=lambda rows: _speaker_pool(rows, "accuracy_float"),
           units=lambda rows: _speaker_units(rows, "accuracy")),
    Metric("speaker_accuracy", "same-speaker accuracy", "fraction", True, False,
           "balanced accuracy of the compressed model's same/different-voice decisions on utterance pairs against the "
           "true voices (n: utterances; the interval resamples voices and is never narrower than Wilson's at the "
           "same-voice or the different-voice pairs, whichever are fewer)", None, _SPK,
           pool=lambda rows: _speaker_pool(rows, "accuracy"), units=lambda rows: _speaker_units(rows, "accuracy")),
    # speech recognition (asr.py): rows (word errors, reference words) per utterance, pooled
    Metric("transcript_agreement", "transcript agreement", "fraction", True, True,
           "share of utterances whose greedy transcript is identical to the float model's", None, _ASR),
    Metric("wer", "WER vs float", "fraction", False, False,
           "word error rate of the compressed model's transcripts against the float model's: word substitutions, "
           "deletions and insertions over the float transcripts' words (lower-cased, punctuation removed), pooled "
           "over the utterances (the interval resamples utterances)", None, _ASR, **_WER),
    Metric("wer_labels", "WER vs text", "fraction", False, False,
           "word error rate of the compressed model's transcripts against the text that was spoken, pooled over "
           "the utterances", None, _ASR, **_WER),
    Metric("wer_labels_float", "float WER vs text", "fraction", False, False,
           "word error rate of the float model's transcripts against the text that was spoken, pooled over the "
           "utterances", None, _ASR, **_WER),
)}


def _wer_pool(rows):
    from .asr import pooled_wer  # here: asr reads the samples module, which the publisher need not load

    return pooled_wer(rows)


def _wer_units(rows) -> float:
    """The reference words a pooled WER is over (rows: word errors, reference words)."""
    return float(np.asarray(rows, dtype=np.float64)[..., 1].sum())


def _speaker_pool(rows, which: str):
    from . import speakermetrics  # here: only the speaker metrics need it

    return getattr(speakermetrics, "pooled_" + which)(rows)


def _speaker_units(rows, which: str) -> float:
    from . import speakermetrics

    return getattr(speakermetrics, "units_" + which)(rows)


def _spearman_pool(rows, parts: int):
    from .sentences import pool_spearman  # here: sentences reads the samples module, which the publisher need not load

    return pool_spearman(rows, parts)


def metric(name: str) -> Metric:
    """The record of `name`; an unknown name gets a plain one (its own label, higher is better).

    >>> metric("cer").higher_is_better, metric("made_up").label, metric("made_up").format(0.5)
    (False, 'made_up', '0.5')
    """
    return METRICS.get(name) or Metric(name, name, "abs", True, False, name)


def format_metric(name: str, value: Any) -> str:
    """A metric value for a table cell, by the metric's unit.

    >>> format_metric("top1_agreement", 0.99531), format_metric("snr_db", 31.234), format_metric("snr_db", float("inf"))
    ('99.53 %', '31.2 dB', '∞ dB')
    >>> format_metric("max_abs_error", 0.000123), format_metric("cosine", 0.9999871)
    ('0.000123', '0.99999')
    """
    return metric(name).format(value)


def metric_label(name: str) -> str:
    """The column label of `name` ('top-1 agreement'); an unknown name is its own label."""
    return metric(name).label


def higher_is_better(name: str) -> bool:
    """Whether a larger value of `name` means closer agreement (unknown names: True)."""
    return metric(name).higher_is_better


def primary_metrics() -> tuple[str, ...]:
    """The metrics that rank a model's variants, best first, from the records' `primary`.

    >>> primary_metrics()
    ('top1_agreement', 'string_agreement', 'detection_f1', 'iou', 'mask_iou', 'ssim', 'cosine')
    """
    ranked = sorted((m.primary, m.name) for m in METRICS.values() if m.primary is not None)
    return tuple(name for _, name in ranked)


def __getattr__(name: str):
    # PRIMARY_METRICS is read from METRICS on each access, so a metric added later counts too
    if name == "PRIMARY_METRICS":
        return primary_metrics()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
