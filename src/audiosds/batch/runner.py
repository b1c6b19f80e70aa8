"""Running a batch's jobs: one after another here, or as Ray tasks on this machine or a cluster.

Every job is its command line run in a child process (``python -m audiosds ...``) writing
``DIR/<job id>/``. What to do with a job is read from that folder, so a rerun, a retried Ray task and
a job another machine started all decide alike (:func:`run_job`):

- a finished run folder is skipped (``done``);
- a stopped one (a checkpoint) is resumed with ``--resume``; the CLI makes that bit-identical;
- a partial one without a checkpoint starts again (``--force`` replaces only the tool's files);
- anything else starts fresh.

A Ray task whose worker dies is retried (``max_retries``), and the retry resumes from the last
checkpoint; the child of a dead worker dies with it (Linux: the parent-death signal), so two
processes never write one folder. Ctrl-C stops the running jobs as the CLI's own Ctrl-C does: each
keeps its checkpoint, and the next run of the batch resumes it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import runfolder
from ..runfolder import error_line
from .jobs import Job

STATE = ".batch"  # DIR/.batch: each job's log, --config file and worker pid
RAY_RETRIES = 3
STOP_GRACE_S = 120.0  # after Ctrl-C, how long stopping jobs get to write their checkpoints


@dataclass
class Outcome:
    """How one job ended in this batch run."""

    job: Job
    status: str  # completed, done (finished before), stopped, failed, not run
    wall_s: float | None = None
    error: str | None = None
    score: float | None = None
    outputs: list[str] = field(default_factory=list)  # the run folder's audio files, relative to DIR


def _die_with_parent() -> None:  # pragma: no cover (runs in the child, before exec)
    """Linux: the child gets SIGKILL when the process that started it dies (a killed Ray worker)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _error_line(log: Path) -> str | None:
    """The CLI's one-line error in a job's log, else its last line."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return None
    tail = [line for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return error_line(text) or (tail[-1].strip() if tail else None)


def finished(
    job: Job, out_dir: Path, status: str, wall_s: float | None = None, error: str | None = None
) -> Outcome:
    """An Outcome with what the run folder holds: its audio files and its final prompt score."""
    folder = out_dir / job.id
    outputs, score = [], None
    if folder.is_dir():
        outputs = sorted(f"{job.id}/{p.name}" for p in folder.glob("*.wav"))
        if status in ("completed", "done"):
            score = runfolder.final_score(folder, job.command)
    return Outcome(job, status, wall_s, error, score, outputs)


def run_job(job: Job, out_dir: Path, threads: int | None) -> Outcome:
    """Bring one job's run folder to completion (or as far as a stop allows); see the module doc."""
    if job.error is not None:
        return Outcome(job, "failed", error=job.error)
    folder = out_dir / job.id
    state_dir = out_dir / STATE
    state_dir.mkdir(parents=True, exist_ok=True)
    before = runfolder.status(folder, job.command)
    if before == "completed":
        return finished(job, out_dir, "done")
    if before == "stopped":
        argv = [job.command, "--resume", str(folder)]
    else:
        config_file = None
        if job.config is not None:
            config_file = state_dir / f"{job.id}.config.yaml"
            config_file.write_text(yaml.safe_dump({"command": job.command, **job.config}, sort_keys=False))
        argv = job.argv(folder, config_file, threads) + (["--force"] if before == "incomplete" else [])
    log = state_dir / f"{job.id}.log"
    started = time.perf_counter()
    with open(log, "ab") as stream:
        stream.write(f"\n$ audiosds {' '.join(argv)}\n".encode())
        stream.flush()
        child = subprocess.Popen(
            [sys.executable, "-m", "audiosds", *argv],
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a terminal's Ctrl-C reaches the batch, which passes it on once
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        (state_dir / f"{job.id}.pid").write_text(f"{os.getpid()} {child.pid}\n")
        interrupted = False
        try:
            returncode = child.wait()
        except KeyboardInterrupt:  # Ctrl-C here, or ray.cancel on this task
            interrupted = True
            child.send_signal(signal.SIGINT)
            try:
                returncode = child.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                child.kill()
                returncode = child.wait()
    wall = time.perf_counter() - started
    if returncode == 0:
        return finished(job, out_dir, "completed", wall)
    if interrupted or returncode in (128 + signal.SIGINT, 128 + signal.SIGTERM):
        return finished(job, out_dir, "stopped", wall)
    return finished(job, out_dir, "failed", wall, _error_line(log) or f"exited with status {returncode}")


def run_sequential(
    jobs: Sequence[Job], out_dir: Path, threads: int | None, on_done: Callable[[Outcome], None]
) -> None:
    """Each job in turn in this process; Ctrl-C stops the running one (checkpoint kept) and raises."""
    for job in jobs:
        outcome = run_job(job, out_dir, threads)
        on_done(outcome)
        if outcome.status == "stopped":  # run_job passed the Ctrl-C on to its job; the batch stops too
            raise KeyboardInterrupt


def run_ray(
    jobs: Sequence[Job],
    out_dir: Path,
    threads: int,
    workers: int,
    address: str | None,
    on_done: Callable[[Outcome], None],
) -> None:
    """The jobs as Ray tasks: on a local Ray with ``workers`` CPUs, one per job and ``threads``
    threads each, or on the cluster at ``address`` (each task asks for ``threads`` CPUs, and a GPU
    when its job's device is cuda). Ctrl-C cancels the tasks (each running job stops as with the
    CLI's Ctrl-C), reports what each folder then holds, and raises KeyboardInterrupt."""
    import ray

    local = address is None
    if local:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    else:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    try:
        task = ray.remote(max_retries=RAY_RETRIES)(run_job)
        refs = {}
        for job in jobs:
            cpus = 1 if local else threads
            gpus = 1 if job.device.startswith("cuda") else 0
            refs[task.options(num_cpus=cpus, num_gpus=gpus).remote(job, out_dir, threads)] = job
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    on_done(_result(ray, ref, refs[ref], out_dir))
        except KeyboardInterrupt:
            for ref in pending:
                ray.cancel(ref)
            ray.wait(pending, num_returns=len(pending), timeout=STOP_GRACE_S)
            for ref in pending:
                job = refs[ref]
                state = runfolder.status(out_dir / job.id, job.command)
                on_done(finished(job, out_dir, "stopped" if state == "stopped" else "not run"))
            raise
    finally:
        ray.shutdown()


def _result(ray, ref, job: Job, out_dir: Path) -> Outcome:  # noqa: ANN001 (ray is imported lazily)
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as err:  # the task failed past its retries
        message = " ".join(str(err).split())[:300]
        return finished(job, out_dir, "failed", error=f"ray: {message}")
