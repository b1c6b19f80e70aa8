"""The UI's job queue: every job is one ``audiosds`` command line, run in a child process.

The page never runs a task itself. A job is the argv a user would type, run as
``python -m audiosds ARGV`` in a child process, so a run started in the browser writes exactly the
run folder the CLI writes (same files, same config.yaml) and can be resumed from the shell, and the
reverse. What the page shows comes from the CLI's own outputs:

- progress: the lines of its ``--progress-log`` file (one JSON object per step);
- messages: its stderr (warnings, the closing line, the one-line error of a failed run);
- results: the files in the run folder.

Cancel sends the child SIGINT, the CLI's own clean stop: a run folder keeps its checkpoint and
resumes. Jobs wait in a first-in-first-out queue and ``workers`` of them run at once (default one:
two runs on a 2-core CPU each go at less than half speed). Jobs live in the server, not in the page,
so a page reload finds them as they are.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..runfolder import error_line

FINISHED = ("completed", "stopped", "failed", "cancelled")
STOP_GRACE_S = 30.0  # a stopping run writes its outputs and checkpoint first; then it is killed


@dataclass
class Job:
    """One queued, running or finished command line."""

    id: str
    task: str  # the CLI command: fm, impact, separate, generate, ...
    argv: list[str]  # after ``audiosds``
    folder: Path  # the run folder (generate: the folder of its OUT.wav)
    label: str  # what the page lists: the prompt(s)
    progress_path: Path
    log_path: Path
    resumable: bool  # a stopped run can go on from its checkpoint (the run-folder commands)
    status: str = "queued"  # queued, running, then one of FINISHED
    created: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    returncode: int | None = None
    error: str | None = None
    cancel_requested: float | None = None  # when Cancel was pressed
    process: subprocess.Popen | None = field(default=None, repr=False)

    def rows(self, since: int = 0) -> list[dict[str, Any]]:
        """The progress rows from number ``since`` on (a row being written is left for later)."""
        try:
            text = self.progress_path.read_text(encoding="utf-8")
        except OSError:
            return []
        lines = text.split("\n")[:-1]  # the last piece has no newline yet, or is empty
        return [json.loads(line) for line in lines[since:] if line.strip()]

    def messages(self) -> list[str]:
        """The CLI's own lines on stderr (``audiosds...``): warnings, notices, the error or closing line."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        lines = (piece.strip() for line in text.split("\n") for piece in line.split("\r"))
        return [line for line in lines if line.startswith("audiosds")]

    def snapshot(self, since: int = 0) -> dict[str, Any]:
        """What the page needs, as JSON: status, timing, the progress rows from ``since`` and messages."""
        return {
            "id": self.id,
            "task": self.task,
            "label": self.label,
            "folder": self.folder.name,
            "status": self.status,
            "resumable": self.resumable,
            "created": self.created,
            "elapsed_s": None if self.started is None else (self.ended or time.time()) - self.started,
            "returncode": self.returncode,
            "error": self.error,
            "since": since,
            "rows": self.rows(since),
            "messages": self.messages(),
            # as a user would retype it: without the page's own --progress-log (the argv's last two)
            "command": "audiosds " + " ".join(_quoted(a) for a in self.argv[:-2]),
        }


def _quoted(arg: str) -> str:
    return arg if arg and all(c.isalnum() or c in "-_./:=," for c in arg) else json.dumps(arg)


class JobQueue:
    """Runs submitted jobs ``workers`` at a time, oldest first, each as ``python -m audiosds ARGV``."""

    def __init__(self, state_dir: Path, workers: int = 1, env: dict[str, str] | None = None) -> None:
        if workers < 1:
            raise ValueError(f"workers: expected at least 1, got {workers}")
        self.state_dir = state_dir
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **(env or {})}
        self._jobs: dict[str, Job] = {}
        self._waiting: deque[Job] = deque()
        self._lock = threading.Condition()
        self._closing = False
        self._count = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"audiosds-ui-worker-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    # -- what the server calls ----------------------------------------------------------

    def submit(self, task: str, argv: list[str], folder: Path, label: str, resumable: bool) -> Job:
        with self._lock:
            self._count += 1
            job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{self._count}"
            progress = self.state_dir / f"{job_id}.progress.jsonl"
            job = Job(
                job_id,
                task,
                [*argv, "--progress-log", str(progress)],
                folder,
                label,
                progress,
                self.state_dir / f"{job_id}.log",
                resumable,
            )
            self._jobs[job_id] = job
            self._waiting.append(job)
            self._lock.notify()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        """Every job of this server, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created, reverse=True)

    def running_folders(self) -> set[Path]:
        with self._lock:
            return {j.folder for j in self._jobs.values() if j.status in ("queued", "running")}

    def cancel(self, job_id: str) -> Job | None:
        """A waiting job leaves the queue; a running one gets SIGINT (the CLI stops cleanly)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status in FINISHED:
                return job
            job.cancel_requested = time.time()
            if job.status == "queued":
                self._waiting.remove(job)
                job.status, job.ended = "cancelled", time.time()
            elif job.process is not None and job.process.poll() is None:
                job.process.send_signal(signal.SIGINT)
            return job

    def close(self, timeout: float = STOP_GRACE_S) -> None:
        """Empty the queue and stop the running jobs as Cancel does (their checkpoints are kept)."""
        with self._lock:
            self._closing = True
            waiting = list(self._waiting)
            self._lock.notify_all()
        for job in waiting:
            self.cancel(job.id)
        for job in self.jobs():
            if job.status == "running":
                self.cancel(job.id)
        for thread in self._threads:
            thread.join(timeout)

    # -- the workers --------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._closing:
                    self._lock.wait()
                if self._closing and not self._waiting:
                    return
                job = self._waiting.popleft()
                job.status, job.started = "running", time.time()
                with open(job.log_path, "wb") as log:
                    job.process = subprocess.Popen(
                        [sys.executable, "-m", "audiosds", *job.argv],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=self.env,
                        start_new_session=True,  # a Ctrl-C meant for the server reaches it alone
                    )
            returncode = _wait(job)
            with self._lock:
                job.returncode, job.ended = returncode, time.time()
                job.status = _status(job)
                if job.status == "failed":
                    job.error = error_line("\n".join(job.messages())) or f"exited with status {returncode}"
                    _remove_if_empty(job.folder)  # a refused run leaves no trace, as in the shell


def _wait(job: Job) -> int:
    """The child's exit status; one asked to stop that has not ended STOP_GRACE_S later is killed."""
    while True:
        try:
            return job.process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            if job.cancel_requested is not None and time.time() - job.cancel_requested > STOP_GRACE_S:
                job.process.kill()


def _status(job: Job) -> str:
    if job.returncode == 0:
        return "completed"
    if job.cancel_requested is not None:  # the CLI's clean stop, or an interrupt before it was set up
        return "stopped" if job.resumable and (job.folder / "config.yaml").is_file() else "cancelled"
    return "failed"


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        shutil.rmtree(folder, ignore_errors=True)
