"""A judge: another catalog model's float model that reads a compressed model's outputs, so its
readings can be scored against the labels (ARCHITECTURE.md, "Speech synthesis", "A judge model").

A speech synthesiser's audio says little by itself; whether it is still intelligible is what a
speech recogniser hears in it. A manifest names the recogniser in its metric options:

```yaml
preprocessing:
  params:
    metrics:
      judge:
        model: whisper-tiny-en      # a model of the registry: its FLOAT model, never an artifact
        params: {frames: 1000}      # laid over the judge's own preprocessing params
```

The judge is run as its own manifest says (its preprocessor, its runner — `seq2seq.Decode` for a
transcriber —, its labels as the vocabulary), on its float file as `quantzoo fetch` lands it
(a pytorch source converted once, content-addressed in the cache), on one thread like every
session. What enters the judged model's comparison key (`identity`, keyed by the pipeline in
`plan.JobKeys`) is the judge's float sha256, its manifest's preprocessing, labels and task, and
the judging params; so a changed judge recompares and nothing depends on a quantized artifact.

One `Judging` record per output kind that can be judged (`JUDGINGS`): the judge's task, how one
output becomes the judge's sample, how the judge's outputs are read, and the metrics. The float
model's readings are made once per evaluation; each variant's once per comparison.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import QuantzooError
from .asr import token_text, wer_row
from .inputs import InputSpec

SESSIONS: dict[str, Any] = {}  # per process: the judge's onnxruntime session, by float file


# --- the judgings (one record per judged output kind) ------------------------------------------

def _recordings(batch: np.ndarray, options: dict) -> list:
    """A batch of generated audio ([N, ..., S]) as N recordings at the judged model's
    ``sample_rate`` (metric options, default 22050 Hz)."""
    from .speech import Audio

    rate = int(options.get("sample_rate", 22050))
    a = np.asarray(batch, dtype=np.float32)
    return [Audio(np.ascontiguousarray(a[i].reshape(-1)), rate) for i in range(a.shape[0])]


def _transcripts(outputs: list[np.ndarray], judge: Judge) -> list[str]:
    """A transcriber's generated ids (its first compared output) as text through its vocabulary."""
    y = np.asarray(outputs[0])
    ids = y["ids"] if y.dtype.names else y
    special = int((judge.params.get("metrics") or {}).get("special_from", len(judge.vocab)))
    return [token_text(r, judge.vocab, special) for r in ids]


def wer_metrics(float_texts: list, test_texts: list, labels: list) -> dict[str, list]:
    """Per recording, the pooled-WER rows (errors, reference words; `asr.wer_row`) of the judge's
    transcript of the compressed audio against the spoken text (``asr_wer``) and against its
    transcript of the float audio (``asr_wer_vs_float``), and of the float audio against the text
    (``asr_wer_float``). None where a text is missing or has no words, or a transcript failed.

    >>> out = wer_metrics(["the cat sat"], ["the dog sat"], ["The cat sat."])
    >>> out["asr_wer"], out["asr_wer_float"], out["asr_wer_vs_float"]
    ([(1.0, 3.0)], [(0.0, 3.0)], [(1.0, 3.0)])
    >>> wer_metrics(["a b"], [None], [None])["asr_wer_vs_float"]
    [None]
    """
    def row(hyp, ref):
        return wer_row(hyp, ref) if isinstance(hyp, str) and isinstance(ref, str) else None

    return {"asr_wer": [row(t, y) for t, y in zip(test_texts, labels)],
            "asr_wer_float": [row(f, y) for f, y in zip(float_texts, labels)],
            "asr_wer_vs_float": [row(t, f) for f, t in zip(float_texts, test_texts)]}


@dataclass(frozen=True)
class Judging:
    """How outputs of one kind are judged: the task the judge must have, one output batch as the
    judge's samples, the judge's outputs of a batch as readings, and the per-sample metrics from
    the float readings, the compressed readings and the labels (`metrics.METRICS` describes them)."""

    kind: str
    task: str
    samples: Callable[[np.ndarray, dict], list]
    read: Callable[[list[np.ndarray], Judge], list]
    score: Callable[[list, list, list], dict[str, list]]


JUDGINGS: dict[str, Judging] = {j.kind: j for j in (
    # generated speech transcribed by a speech recogniser: intelligibility as word error rates
    Judging("waveform", "speech-recognition", _recordings, _transcripts, wer_metrics),
)}


# --- the manifest param -----------------------------------------------------------------------

def judge_spec(preprocessing: dict | None) -> dict | None:
    """The ``judge`` of a manifest's preprocessing (``params.metrics.judge``), or None.

    >>> judge_spec({"params": {"metrics": {"judge": {"model": "w"}}}}), judge_spec({"params": {}})
    ({'model': 'w'}, None)
    """
    params = (preprocessing or {}).get("params") or {}
    spec = (params.get("metrics") or {}).get("judge") if isinstance(params, dict) else None
    return spec if spec else None


def judge_id(preprocessing: dict | None, where: str = "preprocessing.params.metrics.judge") -> str | None:
    """The registry model id a manifest's judge names (None: no judge); a malformed judge is an error.

    >>> judge_id({"params": {"metrics": {"judge": {"model": "whisper-tiny-en"}}}})
    'whisper-tiny-en'
    >>> try:
    ...     judge_id({"params": {"metrics": {"judge": "whisper"}}})
    ... except QuantzooError as e:
    ...     print(str(e)[:70])
    preprocessing.params.metrics.judge must be a mapping {model: ID, param
    """
    spec = judge_spec(preprocessing)
    if spec is None:
        return None
    if not isinstance(spec, dict) or not isinstance(spec.get("model"), str) \
            or not isinstance(spec.get("params") or {}, dict) or set(spec) - {"model", "params"}:
        raise QuantzooError(f"{where} must be a mapping {{model: ID, params: {{...}}}} naming a model of the "
                            f"registry, found {spec!r}; see ARCHITECTURE.md, 'A judge model'")
    return spec["model"]


def judge_model(model: Any, registry: Any):
    """The registry model that `model`'s manifest names as its judge (None: none), checked: it
    exists, it is not `model` itself, and its task can judge every output kind of `model`'s task."""
    ident = judge_id(getattr(model, "preprocessing", None))
    if ident is None:
        return None
    where = f"{getattr(model, 'path', None) or model.id}: preprocessing.params.metrics.judge.model"
    models = getattr(registry, "models", None)
    if models is None or ident not in models:
        known = ", ".join(sorted(models or {})) or "none (pass registry=)"
        raise QuantzooError(f"{where}: no model {ident!r} in the registry; known: {known}")
    if ident == model.id:
        raise QuantzooError(f"{where}: a model cannot judge itself ({ident!r}); name another model")
    judge = models[ident]
    tasks = {j.task for j in JUDGINGS.values()}
    if judge.task not in tasks:
        raise QuantzooError(f"{where}: {ident!r} is a {judge.task} model; a judge must be one of: "
                            f"{', '.join(sorted(tasks))} (compare/judge.py JUDGINGS)")
    return judge


def judge_params(judge, spec: dict) -> dict:
    """The judge's own preprocessing params with the judging manifest's ``params`` laid over them.

    >>> from types import SimpleNamespace as N
    >>> judge_params(N(preprocessing={"params": {"frames": 600, "decode": {}}}), {"params": {"frames": 1000}})
    {'frames': 1000, 'decode': {}}
    """
    return {**((judge.preprocessing or {}).get("params") or {}), **(spec.get("params") or {})}


def identity(judge, float_sha256: str, spec: dict) -> dict:
    """What of a judge decides the judged model's numbers: its float file's sha256, task,
    preprocessing and labels, and the judging params (part of the comparison key).

    >>> from types import SimpleNamespace as N
    >>> j = N(id="w", task="speech-recognition", preprocessing={}, labels=None)
    >>> identity(j, "a" * 64, {"model": "w"}) == identity(j, "b" * 64, {"model": "w"})
    False
    """
    return {"model": judge.id, "float_sha256": float_sha256, "task": judge.task,
            "preprocessing": judge.preprocessing, "labels": judge.labels, "params": spec.get("params") or {}}


# --- running the judge ------------------------------------------------------------------------

@dataclass
class Judge:
    """A judge ready to run: its registry model, float file, params (with the judging params laid
    over) and vocabulary; readings of audio it has already judged are kept by content."""

    model: Any
    path: Path
    params: dict
    cache: Any
    readings: dict = field(default_factory=dict)  # the float outputs' readings, by their content's sha256
    class_names: list[str] | None = None           # the judge's class names, read with its session

    @property
    def vocab(self) -> list[str]:
        """The judge's class names (a transcriber's token strings), from its manifest's labels."""
        if self.class_names is None:
            from .sources import model_labels

            self.class_names = model_labels(self.model, self.session(), self.cache) or []
        return self.class_names

    def session(self):
        """The judge's session, one per process and file, on the build's thread count."""
        key = str(self.path)
        if key not in SESSIONS:
            import onnxruntime as ort

            from ..threads import ort_options

            so = ort_options()
            so.log_severity_level = 3
            SESSIONS.clear()  # one judge at a time: a 150 MB session is not kept beside another
            SESSIONS[key] = ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
        return SESSIONS[key]

    def read(self, judging: Judging, batches: list[np.ndarray], options: dict, strict: bool = False) -> list:
        """The judge's reading of every sample of `batches` (one model's outputs of one kind), in
        order: preprocessed by the judge's preprocessor, run in batches of its ``batch_size`` by its
        runner, read by `judging`. A sample the judge's preprocessor refuses (a compressed model's
        audio longer than the judge's window) reads as None; with `strict` (the float model's
        outputs, which the judge must be set up to read) it is an error."""
        from ..customops import run
        from .batches import stack
        from .preprocess import PREPROCESSORS
        from .stream import compared_outputs, fed_specs, run_batch, runner_of

        sess = self.session()
        specs = [InputSpec(i.name, i.type, tuple(d if isinstance(d, int) else None for d in i.shape))
                 for i in sess.get_inputs()]
        outputs = [o.name for o in sess.get_outputs()]
        runner = runner_of(self.params, specs, outputs, self.path.name)
        names = compared_outputs(outputs, runner)
        fed = fed_specs(specs, runner)
        adapter = (self.model.preprocessing or {}).get("adapter")
        samples = [s for b in batches for s in judging.samples(b, options)]
        feeds, where = [], []
        for i, s in enumerate(samples):
            try:
                feeds.append(PREPROCESSORS[adapter].preprocess(s, self.params, fed))
                where.append(i)
            except QuantzooError as e:
                if strict:
                    raise QuantzooError(f"the judge {self.model.id} cannot read the float model's output {i}: {e}; "
                                        "check the judge's params (preprocessing.params.metrics.judge)") from None
        out: list = [None] * len(samples)
        done = 0
        for feed in stack(feeds, int(self.params.get("batch_size") or 1)):
            texts = judging.read(run_batch(run, sess, names, feed, runner, specs), self)
            for t in texts:
                out[where[done]] = t
                done += 1
        return out

    def metrics(self, kind: str, reference: list[np.ndarray], test: list[np.ndarray], labels: list,
                options: dict) -> dict[str, list]:
        """Per-sample metric values of one output of `kind` (empty when the kind is not judged):
        the judge reads the float outputs (once per content) and the compressed ones."""
        judging = JUDGINGS.get(kind)
        if judging is None:
            return {}
        digest = hashlib.sha256(b"".join(np.ascontiguousarray(b).tobytes() for b in reference)).hexdigest()
        if digest not in self.readings:
            self.readings[digest] = self.read(judging, reference, options, strict=True)
        return judging.score(self.readings[digest], self.read(judging, test, options), list(labels))


def _float_file(judge, cache) -> Path:
    """The judge's float file as `quantzoo fetch` lands it (a cache hit once fetched)."""
    from ..fetch import fetch_source  # here, as in sources.py: fetch sits beside compare

    return Path(fetch_source(judge.source, cache, base_dir=judge.path.parent if judge.path else None))


def judge_of(model: Any, registry: Any, cache) -> Judge | None:
    """The `Judge` `model`'s manifest names (None: none), its float file fetched into `cache`."""
    judge = judge_model(model, registry)
    if judge is None:
        return None
    if getattr(judge, "custom_ops", None):
        raise QuantzooError(f"{model.path}: preprocessing.params.metrics.judge.model: {judge.id!r} has custom ops; "
                            "a judge runs plain onnxruntime sessions only")
    return Judge(judge, _float_file(judge, cache), judge_params(judge, judge_spec(model.preprocessing)), cache)


def judge_identity(model: Any, registry: Any, cache) -> dict | None:
    """`identity` of the judge `model`'s manifest names (None: none), its float file fetched and
    hashed: what the pipeline adds to the judged model's comparison keys."""
    from ..cache import sha256_file

    judge = judge_model(model, registry)
    if judge is None:
        return None
    return identity(judge, sha256_file(_float_file(judge, cache)), judge_spec(model.preprocessing))
