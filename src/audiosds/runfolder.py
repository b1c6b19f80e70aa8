"""What a run folder says about its run, read from its files alone (``audiosds ui`` and ``batch``).

A run folder is what a command writes with ``-o DIR`` (generate: ``-o DIR/generated.wav``). Whether
its run finished, stopped with a checkpoint or never got going is read from the files, so any
process, on any machine that sees the folder, reaches the same verdict.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import yaml

GENERATED = "generated.wav"  # generate's OUT.wav when it has a run folder of its own
MAIN_OUTPUT = {  # command -> the file a finished run always has (written last, atomically)
    "fm": "audio.wav",
    "impact": "audio.wav",
    "separate": "mixture_reconstruction.wav",
    "generate": GENERATED,
    "reverb": "wet.wav",
    "enhance": "enhanced.wav",
}
RESUMABLE = ("fm", "impact", "separate")  # the commands that take --resume DIR
SPECTROGRAMS = ("spectrogram.png", "spectrograms.png", "generated.png")


def slug(text: str) -> str:
    """A prompt as a run folder's name part: lower-case words joined by '-', at most 32 characters."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:32]


def error_line(output: str) -> str | None:
    """The CLI's one-line error in what a command printed, without its ``audiosds: error:`` prefix."""
    for line in reversed(output.replace("\r", "\n").splitlines()):
        if line.startswith("audiosds: error:"):
            return line.removeprefix("audiosds: error:").strip()
    return None


def has_checkpoint(folder: Path) -> bool:
    """A checkpoint a --resume would continue from (synthesis: checkpoint.pt; separate: per window)."""
    return any(folder.glob("checkpoint*.pt")) or (folder / "windows.pt").is_file()


def status(folder: Path, command: str) -> str:
    """``completed`` (its main output, and no checkpoint to go on from), ``stopped`` (a checkpoint
    --resume continues), ``incomplete`` (files, but neither) or ``missing`` (no folder or nothing
    in it)."""
    if not folder.is_dir() or not any(folder.iterdir()):
        return "missing"
    if command in RESUMABLE and has_checkpoint(folder) and (folder / "config.yaml").is_file():
        return "stopped"
    if (folder / MAIN_OUTPUT.get(command, "-")).is_file():
        return "completed"
    return "incomplete"


def settings(folder: Path) -> tuple[str, dict[str, Any]]:
    """(the settings file's text, its mapping): config.yaml, or generate's generated.json."""
    path = folder / "config.yaml"
    if not path.is_file():
        path = folder / GENERATED.replace(".wav", ".json")
    text = path.read_text(errors="replace") if path.is_file() else ""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        data = {}
    return text, data if isinstance(data, dict) else {}


def history(folder: Path) -> list[dict[str, float | None]]:
    """history.csv as rows of numbers (a blank cell: None); the headers' notes are dropped."""
    path = folder / "history.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = [h.split(" (")[0] for h in next(reader, [])]
        return [
            {k: (float(v) if v not in ("", "nan") else None) for k, v in zip(header, row, strict=False)}
            for row in reader
        ]


def final_score(folder: Path, command: str) -> float | None:
    """The run's prompt score at the end: the reported iterate's (fm, impact, reverb), or the mean
    over sources of each one's last score (separate, enhance); None where nothing was scored."""
    params_path = folder / "params.json"
    if command in ("fm", "impact", "reverb") and params_path.is_file():
        scores = json.loads(params_path.read_text()).get("scores") or {}
        value = scores.get("reported_score")
        return None if value is None else float(value)
    rows = history(folder)
    last: dict[str, float] = {}
    for row in rows:
        for key, value in row.items():
            if key.startswith("score_") and value is not None:
                last[key] = value
    return sum(last.values()) / len(last) if last else None
