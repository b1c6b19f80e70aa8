"""``audiosds batch JOBS.yaml -o DIR``: many runs, on this machine or a Ray cluster, resumable.

:mod:`.jobs` reads JOBS.yaml into command lines with stable ids, :mod:`.runner` runs them (one after
another, or as Ray tasks) and :mod:`.report` writes DIR/summary.csv and the gallery DIR/index.html.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

from .jobs import Job, JobsFileError, read_jobs
from .report import previous_wall_times, write_gallery, write_summary
from .runner import Outcome, run_job, run_ray, run_sequential

__all__ = ["BatchConfig", "Job", "JobsFileError", "Outcome", "read_jobs", "run_batch", "run_job"]

log = logging.getLogger("audiosds.batch")


@dataclass(frozen=True)
class BatchConfig:
    """How ``audiosds batch`` runs."""

    out: Path
    workers: int = 1  # jobs at once on this machine (a local Ray), or None-like 1: one after another
    threads: int | None = None  # per job; None: the free cores shared among the workers
    address: str | None = None  # a running Ray cluster's address: run there instead


def ray_available() -> bool:
    return importlib.util.find_spec("ray") is not None


def run_batch(config: BatchConfig, jobs: list[Job], progress=None) -> list[Outcome]:  # noqa: ANN001
    """Run ``jobs`` into ``config.out``; summary.csv is rewritten after every job and index.html at
    the end (also after Ctrl-C, which then propagates as KeyboardInterrupt). ``progress(outcome)``
    is called as each job ends."""
    from ..options import default_threads

    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    earlier = previous_wall_times(out)
    distributed = config.address is not None or config.workers > 1
    if distributed and not ray_available():
        log.info(
            "audiosds batch: Ray is not installed (pip install -e '.[batch]'): "
            "running the jobs one after another"
        )
        distributed = False
    threads = config.threads
    if threads is None and config.address is None:
        threads = max(1, default_threads() // (config.workers if distributed else 1))
    outcomes: dict[str, Outcome] = {}

    def on_done(outcome: Outcome) -> None:
        outcomes[outcome.job.id] = outcome
        write_summary(out, _in_order(jobs, outcomes), earlier)
        if progress is not None:
            progress(outcome)

    try:
        if distributed:
            run_ray(jobs, out, threads or 1, config.workers, config.address, on_done)
        else:
            run_sequential(jobs, out, threads, on_done)
    finally:
        done = _in_order(jobs, outcomes)
        write_summary(out, done, earlier)
        write_gallery(out, done, earlier)
    return done


def _in_order(jobs: list[Job], outcomes: dict[str, Outcome]) -> list[Outcome]:
    return [outcomes[job.id] for job in jobs if job.id in outcomes]
