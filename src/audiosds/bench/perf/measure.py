"""Timing and memory measurements of ``perf``: iteration gaps, medians, log-log slopes, peak RSS
of a block or of a whole command, and the machine they ran on."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

MIB = 2**20


def iteration_times(stamps: Sequence[float], warmup: int) -> list[float]:
    """Per-iteration durations from the times at which iterations 0, 1, ... ended.

    Iteration i > 0 lasted ``stamps[i] - stamps[i - 1]``; iteration 0 (whose start is not
    stamped) and the next ``warmup`` iterations are dropped.

    Shape:
        stamps (I,) -> (I - 1 - warmup,)
    """
    if warmup < 0:
        raise ValueError(f"warmup: expected >= 0, got {warmup}")
    if len(stamps) < warmup + 2:
        raise ValueError(f"stamps: expected at least warmup + 2 = {warmup + 2} stamps, got {len(stamps)}")
    gaps = [b - a for a, b in zip(stamps[:-1], stamps[1:], strict=True)]
    if any(g < 0 for g in gaps):
        raise ValueError("stamps: expected non-decreasing times")
    return gaps[warmup:]


def median_time(fn: Callable[[], object], warmup: int, repeats: int) -> float:
    """Median wall time in seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    if repeats < 1:
        raise ValueError(f"repeats: expected >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares exponent a of y = c * x^a (the slope in log-log): 1 is linear growth.

    Shape:
        xs (M,), ys (M,) with M >= 2 distinct positive xs and positive ys -> float
    """
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError(f"xs, ys: expected equal lengths >= 2, got {len(xs)}, {len(ys)}")
    if min(xs) <= 0 or min(ys) <= 0:
        raise ValueError("xs, ys: expected positive values")
    lx, ly = np.log(np.asarray(xs, dtype=float)), np.log(np.asarray(ys, dtype=float))
    if np.ptp(lx) == 0:
        raise ValueError("xs: expected at least two distinct values")
    return float(np.polyfit(lx, ly, 1)[0])


def status_kib(field_name: str) -> int | None:
    """A ``VmRSS``-style field of /proc/self/status in KiB, or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return status_kib("VmHWM") is not None


_LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if ctypes.util.find_library("c") else None


def release_free_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``)."""
    gc.collect()
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


def _max_rss_kib() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux


@dataclass
class PeakRSS:
    """Peak RSS above the level at entry, in bytes, of the code inside ``with PeakRSS() as m:``.

    ``method`` says how it was measured: "VmHWM reset" (exact peak of this block) or
    "ru_maxrss delta" (a lower bound: 0 unless the block beats the process's earlier peak).
    """

    peak_bytes: int = 0
    method: str = ""
    start_bytes: int = 0  # RSS at entry (exact method) or the process's max RSS so far
    exact: bool = False

    def __enter__(self) -> PeakRSS:
        release_free_memory()
        self.exact = _reset_peak_rss()
        if self.exact:
            self.start_bytes = 1024 * (status_kib("VmRSS") or 0)
            self.method = "VmHWM reset"
        else:
            self.start_bytes = 1024 * _max_rss_kib()
            self.method = "ru_maxrss delta"
        return self

    def __exit__(self, *exc: object) -> None:
        end = 1024 * ((status_kib("VmHWM") or 0) if self.exact else _max_rss_kib())
        self.peak_bytes = max(0, end - self.start_bytes)


def rss_method() -> str:
    """How :class:`PeakRSS` measures on this machine."""
    return "VmHWM reset" if _reset_peak_rss() else "ru_maxrss delta"


def machine_info(threads: int) -> dict[str, str]:
    """CPU model, cores, load, torch version and threads: the context every number needs."""
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return {
        "cpu": model,
        "cores": f"{os.cpu_count()} ({usable} usable)",
        "load average at start (1/5/15 min)": load,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch threads (intra-op)": str(threads),
        "peak RSS method": rss_method(),
    }


# Runs the command given as arguments with stdout discarded and prints "wall_s exit_status max_rss_kib".
# A small go-between: a child's ru_maxrss counts the peak RSS of whoever forked it (Linux copies the
# high-water mark across fork and exec), so the benchmark process itself must not be the parent.
_SPAWN = """
import os, sys, time
null = os.open(os.devnull, os.O_WRONLY)
start = time.perf_counter()
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, null, 1)])
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - start, os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def run_command(argv: list[str], env: dict[str, str]) -> tuple[float, int, int, str]:
    """Wall time (s, start-up included), exit status and peak RSS (bytes) of one command, and
    the last line it wrote to stderr. ``argv[0]`` must be a path to an executable."""
    with tempfile.TemporaryFile() as err:
        done = subprocess.run(
            [sys.executable, "-c", _SPAWN, *argv], stdout=subprocess.PIPE, stderr=err, env=env, check=True
        )
        err.seek(0)
        lines = [ln for ln in err.read().decode(errors="replace").splitlines() if ln.strip()]
    wall, code, rss_kib = done.stdout.split()
    return float(wall), int(code), int(rss_kib) * 1024, lines[-1] if lines else ""


def ms(seconds: float) -> str:
    return f"{1000 * seconds:.1f}"


def mib(num_bytes: int) -> str:
    return f"{num_bytes / MIB:.0f}"
