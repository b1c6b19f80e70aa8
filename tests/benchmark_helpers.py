"""Helpers shared by the tests of the benchmarks that run as batches (separation, synthesis curves)."""

from __future__ import annotations

import re


def report_tables(text: str) -> list[str]:
    """A report without what may differ between runs: the command, plot path and timing lines."""
    return [
        re.sub(r"Command: `[^`]*`|Plot: `[^`]*`", "", line)
        for line in text.splitlines()
        if not line.startswith(("Job time:", "Total time:"))
    ]


class CallCounter:
    """Wraps a function, counting calls; raises KeyboardInterrupt (a kill) on call ``kill_at``."""

    def __init__(self, fn, kill_at: int | None = None) -> None:
        self.fn, self.kill_at, self.calls = fn, kill_at, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.kill_at:
            raise KeyboardInterrupt
        return self.fn(*args, **kwargs)
