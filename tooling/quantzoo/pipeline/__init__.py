"""The build pipeline behind `quantzoo build`, one module per stage:

    plan      the jobs (one per model × variant) and their cache keys, computed once (pure)
    keys      the cache key of each stage's results; store: where they live in the cache
    execute   the Executor interface and the local process pool (`LocalExecutor`)
    rayexec   the jobs as Ray tasks (`RayExecutor`, quantzoo[ray]); jobfiles: their files shipped and committed
    worker    one job: quantize, compare, previews
    previews  output-map PNGs; graphinfo: facts about a float model's graph
    collect   finished results read back as `publish.BuiltModel`
    run       fetch → inspect → plan → execute → collect; cli: the command, which then publishes

See ARCHITECTURE.md, "The pipeline".
"""

from __future__ import annotations

from .execute import Executor, LocalExecutor
from .plan import Failure, Job, JobKeys, JobResult
from .run import BuildResult, run_pipeline

__all__ = ["BuildResult", "Executor", "Failure", "Job", "JobKeys", "JobResult", "LocalExecutor", "run_pipeline"]
