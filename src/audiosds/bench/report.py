"""Markdown reports of the benchmarks: printed to stdout as they grow, written to ``--out``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from ..audio import write_text


class Report:
    """Markdown lines, printed as they come and kept for a file (``text()``)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, *lines: str) -> None:
        for line in lines:
            print(line, flush=True)
            self.lines.append(line)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def emit(lines: Sequence[str], out: str | Path | None) -> None:
    """Print a markdown report (lines joined with newlines) and also write it to ``out`` if given."""
    text = "\n".join(lines) + "\n"
    print(text)
    if out is not None:
        write_text(out, text)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table; floats keep the text they are given (format them first)."""
    if not headers:
        raise ValueError("headers: expected at least one column")
    for i, row in enumerate(rows):
        if len(row) != len(headers):
            raise ValueError(f"rows[{i}]: expected {len(headers)} cells, got {len(row)}")
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def progress(total: int, desc: str, unit: str = "clip") -> tqdm:
    """A progress bar on stderr that clears itself when done."""
    return tqdm(total=total, desc=desc, file=sys.stderr, unit=unit, leave=False, dynamic_ncols=True)
