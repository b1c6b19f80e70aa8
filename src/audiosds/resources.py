"""Up-front memory estimates, so a request too big for the machine is refused before it starts.

The estimates are deliberately coarse upper bounds: working memory scales with the number of
rows the prior sees per iteration (renders x noise draws x 2 CFG branches) times the audio and
latent sizes, times a factor covering activations, STFTs and autograd buffers.
"""

from __future__ import annotations

import os

# bytes of working memory per float32 audio sample per row, as a multiple of the sample's 4 bytes:
# a generous allowance for activations, decoded audio, STFTs at four window sizes and gradients.
# It only has to separate "fits" from "cannot possibly fit"; benchmarks/perf.py measures real peaks.
WORKING_FACTOR = 60


class MemoryLimitError(ValueError):
    """A request that would need more memory than the machine has."""


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else None (no check possible)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def estimate_bytes(rows: int, num_samples: int, channels: int, model_bytes: int = 0) -> int:
    """Coarse peak working memory of one iteration over ``rows`` prior rows of audio."""
    return int(model_bytes + rows * num_samples * channels * 4 * WORKING_FACTOR)


def check_memory(needed: int, what: str) -> None:
    """Raise MemoryLimitError naming the estimate when ``needed`` exceeds available memory."""
    if os.environ.get("AUDIOSDS_SKIP_MEMORY_CHECK") == "1":
        return
    available = available_memory_bytes()
    if available is not None and needed > available:
        raise MemoryLimitError(
            f"{what} would need about {needed / 2**30:.1f} GiB of memory; this machine has "
            f"{available / 2**30:.1f} GiB available (use fewer draws, sources or seconds)"
        )
