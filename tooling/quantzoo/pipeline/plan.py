"""The build plan (pure): one `Job` per model × variant, its cache keys computed once.

Jobs, their results and failures are plain frozen dataclasses of strings, numbers and dicts, so
an executor can send them to another process or machine (ARCHITECTURE.md, "The pipeline").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .keys import artifact_key, auto_spec, comparison_key, evaluation_identity, preview_key


@dataclass(frozen=True)
class JobKeys:
    """Every cache key of one model × variant.

    The comparison and the artifact's preview hash the artifact's bytes, which exist only once
    it is quantized, so those two are methods of this value rather than fields.

    >>> from types import SimpleNamespace as N
    >>> m = N(task="dense", preprocessing={}, labels=None, label_map=None, samples=None)
    >>> k = JobKeys.of(m, N(spec=lambda: {"mode": "fp16"}), "f" * 64, None)
    >>> k.artifact == artifact_key("f" * 64, {"mode": "fp16"}), k.comparison("a" * 64) == k.comparison("b" * 64)
    (True, False)
    """

    float_sha256: str
    identity: dict               # keys.evaluation_identity: everything that decides the numbers
    samples: tuple[str, ...]     # the manifest's preview samples
    artifact: str
    float_preview: str           # the float model's output map (shared by every variant)
    judge: dict | None = None    # compare.judge.identity of the model's judge (comparisons only)

    @classmethod
    def of(cls, model, variant, float_sha256: str, dataset, judge: dict | None = None) -> JobKeys:
        identity = evaluation_identity(model, dataset)
        samples = tuple(model.samples or ())
        spec = auto_spec(variant, model, identity) if getattr(variant, "auto", False) else variant.spec()
        if getattr(model, "keep_float", None):  # part of what the artifact is (absent: keys unchanged)
            spec = {**spec, "keep_float": list(model.keep_float)}
        return cls(float_sha256=float_sha256, identity=identity, samples=samples,
                   artifact=artifact_key(float_sha256, spec),
                   float_preview=preview_key(float_sha256, float_sha256, identity, samples=samples), judge=judge)

    def comparison(self, artifact_sha256: str) -> str:
        return comparison_key(artifact_sha256, self.float_sha256, self.identity, judge=self.judge)

    def preview(self, artifact_sha256: str) -> str:
        return preview_key(artifact_sha256, self.float_sha256, self.identity, samples=self.samples)


@dataclass(frozen=True)
class Job:
    """One model × variant to bring into the cache: its artifact, comparison and previews."""

    zoo: str              # registry root the worker loads the manifests from
    cache: str            # cache root
    model: str
    variant: str
    float_path: str
    keys: JobKeys
    previews: bool        # the model has a map output: draw output previews
    shapes: tuple[str, ...] = ()  # the manifest's promised shapes: check them, time batches

    @property
    def float_sha256(self) -> str:
        return self.keys.float_sha256


@dataclass(frozen=True)
class Failure:
    """Something that did not build: one variant, or the whole model when `variant` is None."""

    model: str
    variant: str | None
    stage: str            # fetch, inspect, load, quantize, compare, preview, worker, collect, ...
    error: str

    @property
    def what(self) -> str:
        """``model variant``, or the model alone.

        >>> Failure("m", None, "fetch", "gone").what, Failure("m", "fp16", "compare", "x").what
        ('m', 'm fp16')
        """
        return f"{self.model} {self.variant}" if self.variant else self.model


@dataclass(frozen=True)
class JobResult:
    """What a worker did for one job: the stages that ran, or the failure that stopped it."""

    model: str
    variant: str
    did: tuple[str, ...] = ()                       # of "quantize", "compare", "runtimes", "shapes", "preview"
    failure: Failure | None = None
    seconds: dict[str, float] = field(default_factory=dict)   # worker time per stage

    @classmethod
    def lost(cls, job: Job, error: BaseException) -> JobResult:
        """The result of a job whose worker died (out of memory, killed) before it answered."""
        return cls(job.model, job.variant, failure=Failure(
            job.model, job.variant, "worker", f"the worker process died: {type(error).__name__}: {error}"))


@dataclass
class ModelState:
    """One model on its way through a build (main process): its float file and what went wrong."""

    model: Any                                  # registry.Model
    float_path: Path | None = None
    float_sha256: str | None = None
    info: dict | None = None                    # graphinfo.graph_info of the float model
    error: Failure | None = None                # set when the model cannot build at all
    failures: list[Failure] = field(default_factory=list)   # variants (and extras) that failed


@dataclass(frozen=True)
class Plan:
    """Every job of a build, in model order."""

    jobs: tuple[Job, ...]

    def of(self, model_id: str) -> list[Job]:
        return [j for j in self.jobs if j.model == model_id]


def map_output(model) -> dict | None:
    """The first output that is an image or a map ([N, C, H, W]), or None.

    >>> from types import SimpleNamespace as N
    >>> map_output(N(outputs=[{"name": "y", "shape": ["N", 10]}, {"name": "m", "shape": ["N", 1, 8, 8]}]))["name"]
    'm'
    """
    for o in model.outputs:
        if len(o.get("shape") or []) == 4:
            return o
    return None


def model_jobs(zoo: str, cache: str, model, float_path: str, float_sha256: str, dataset,
               judge: dict | None = None) -> list[Job]:
    """The jobs of one model, one per variant, in manifest order; auto variants only where the
    dataset holds calibration data out (they choose from it). `judge`: the identity of the model's
    judge (`compare.judge.judge_identity`), part of its comparison keys."""
    previews = map_output(model) is not None
    return [Job(zoo=zoo, cache=cache, model=model.id, variant=v.id, float_path=float_path,
                keys=JobKeys.of(model, v, float_sha256, dataset, judge), previews=previews,
                shapes=tuple(getattr(model, "shapes", None) or ()))
            for v in model.variants if not (getattr(v, "auto", False) and not getattr(dataset, "calibration", None))]


def interleave(jobs: list[Job]) -> list[Job]:
    """The jobs reordered round-robin over models, so parallel workers start on different models
    (each prepares its own evaluation data); the order within a model is kept.

    >>> from types import SimpleNamespace as J
    >>> [j.model + j.variant for j in interleave([J(model="a", variant="1"), J(model="a", variant="2"),
    ...                                           J(model="b", variant="1")])]
    ['a1', 'b1', 'a2']
    """
    rank: dict[str, int] = {}
    keyed = []
    for i, job in enumerate(jobs):
        rank[job.model] = rank.get(job.model, -1) + 1
        keyed.append((rank[job.model], i, job))
    return [job for _, _, job in sorted(keyed, key=lambda x: x[:2])]

