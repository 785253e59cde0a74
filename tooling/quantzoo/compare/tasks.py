"""Tasks: what a model does, and so how its outputs are compared and shown.

One `Task` record per task name in `TASKS`; the registry accepts exactly these names in a
manifest's ``task``. A task decides each output's kind from its rank (`output_kind`; outputs of
other ranks are compared as ``dense``), names the metric a manifest's threshold usually takes,
and says which preview the site draws:

- ``"map"``: the output map of one sample as a picture, for the float model and each variant
  (for models with an [N, C, H, W] output);
- ``"named"``: the top class on the photographs the manifest names (``samples``);
- ``"grid"``: the seed's picture grid: a few samples (the manifest's ``samples``) in rows, the
  float model and each variant in columns, each picture with its own PSNR and SSIM;
- None: no preview.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class Task:
    """One task. `kinds` maps an output's rank (batch axis included) to its output kind
    (`kinds.KINDS`); any other rank is ``dense``. `first`, when given, is the kind of the
    model's first output whatever its rank (a detector: its decoded detections, read from all
    outputs, are compared on that output's row; `decoders.py`)."""

    name: str
    threshold_metric: str
    preview: str | None = None
    kinds: Mapping[int, str] = field(default_factory=dict)
    first: str | None = None

    def output_kind(self, rank: int, index: int | None = None) -> str:
        """The kind of an output of `rank` dimensions (`index`: its position among the outputs).

        >>> TASKS["text-detection"].output_kind(4), TASKS["text-detection"].output_kind(2)
        ('detection', 'dense')
        >>> TASKS["face-detection"].output_kind(4, 0), TASKS["face-detection"].output_kind(4, 1)
        ('boxes', 'dense')
        """
        if index == 0 and self.first is not None:
            return self.first
        return self.kinds.get(rank, "dense")


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("classification", "top1_agreement", "named", {2: "classification"}),
    Task("text-detection", "iou", "map", {4: "detection"}),
    Task("text-recognition", "string_agreement", None, {3: "ctc"}),
    Task("dense", "snr_db", "map"),
    Task("embedding", "cosine"),
    # style transfer and other picture-to-picture models: SSIM and PSNR against the float image,
    # the page shows the grid of photos x variants (pipeline/grid.py)
    Task("image-to-image", "ssim", "grid", {4: "image"}),
    # background removal: mask IoU against the float mask and against reference mattes
    Task("salient-object-segmentation", "mask_iou", "grid", {4: "mask"}),
    # face detectors: boxes and landmarks decoded from all outputs, F1 against the float model's
    Task("face-detection", "detection_f1", None, first="boxes"),
    # voice activity: per-frame speech probability of a streamed model; pitch: CREPE's 360 bins (audiometrics.py)
    Task("voice-activity-detection", "vad_agreement", None, {2: "speech-frames"}),
    Task("pitch-estimation", "pitch_agreement", None, {2: "pitch"}),
    # music transcription (basic-pitch): notes decoded from the onset and note maps, F1 (music.py)
    Task("music-transcription", "note_f1", None, first="notes"),
    # keyword spotting: one score per recording, the wake/no-wake decision at a threshold (wakeword.py)
    Task("keyword-spotting", "wake_agreement", None, {1: "wake-score", 2: "wake-score"}),
    # speech synthesis (Piper's VITS): the audio compared as mel spectrograms, durations may differ (melmetrics.py)
    Task("speech-synthesis", "mel_snr_aligned_db", None, first="waveform"),
    # sentence embeddings: cosine with the float embedding, Spearman against human ratings (sentences.py)
    Task("sentence-embedding", "cosine", None, {2: "sentence-embedding"}),
    # speaker embeddings: cosine and same/different-voice agreement on utterance pairs (speakermetrics.py)
    Task("speaker-embedding", "speaker_agreement", None, {2: "speaker-embedding"}),
    # speech recognition (Whisper): greedy-decoded ids on the next-token scores' output (seq2seq.py, asr.py)
    Task("speech-recognition", "wer", None, {2: "transcript"}),
)}

# a model compared without a task: [N, classes] outputs are scores of classes
GENERIC = Task("generic", "top1_agreement", None, {2: "classification"})


def output_kind(task: str | None, rank: int, index: int | None = None) -> str:
    """Which metrics an output of `rank` dimensions (batch included) gets under `task`
    (None: no task known; a name not in `TASKS` compares every output as dense); `index` is
    the output's position (see `Task.first`).

    >>> output_kind("classification", 2), output_kind("text-recognition", 3), output_kind("text-detection", 4)
    ('classification', 'ctc', 'detection')
    >>> output_kind(None, 2), output_kind(None, 4), output_kind("embedding", 2)
    ('classification', 'dense', 'dense')
    """
    record = GENERIC if task is None else TASKS.get(task)
    return record.output_kind(rank, index) if record is not None else "dense"
