"""From a form on the page to the ``audiosds`` command line it stands for, checked by the CLI's parser.

Each tab's form is a flat JSON object; :func:`command_line` turns it into the argv the shell would
take. An empty field means "the command's default", so the page and the shell share every default.
The argv is checked by the CLI's own parser before it is queued, so a bad number is refused at once,
in the CLI's words; what only a run can find out (an unreadable file, a value out of range) comes
back from the run as its one-line error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..options import UsageError, build_parser
from ..runfolder import GENERATED, slug

SYNTHESIS = ("fm", "impact")
TASKS = (*SYNTHESIS, "separate", "generate")
MAX_PROMPTS = 8

# form field -> flag, per task; every value is passed as text, as typed
_FLAGS = {
    "fm": {
        "prompt": "--prompt",
        "negative": "--negative",
        "iters": "--iters",
        "seed": "--seed",
        "mode": "--mode",
        "cfg": "--cfg",
        "seconds": "--seconds",
        "particles": "--particles",
    },
    "separate": {"iters": "--iters", "seed": "--seed", "cfg": "--cfg", "sources": "--sources"},
    "generate": {
        "prompt": "--prompt",
        "negative": "--negative",
        "seconds": "--seconds",
        "steps": "--steps",
        "cfg": "--cfg",
        "method": "--method",
        "seed": "--seed",
    },
}
_FLAGS["impact"] = _FLAGS["fm"]


class FormError(ValueError):
    """A form the page sent cannot become a command line; the message is shown in the page."""


@dataclass(frozen=True)
class Settings:
    """What every job of this server shares: the prior, its model, threads per job, the runs folder."""

    runs: Path
    prior: str
    model: str | None = None
    threads: int | None = None
    device: str = "cpu"

    def flags(self) -> list[str]:
        out = ["--prior", self.prior, "--device", self.device]
        if self.model:
            out += ["--model", self.model]
        if self.threads:
            out += ["--threads", str(self.threads)]
        return out


def _text(form: dict[str, Any], key: str) -> str:
    value = form.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise FormError(f"{key}: expected text or a number, got {type(value).__name__}")
    return str(value).strip()


def new_folder(runs: Path, task: str, label: str) -> Path:
    """A fresh run folder name under ``runs``: time, task and prompt, e.g. 20261207-031500-fm-a-bell."""
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{task}-{slug(label) or 'run'}"
    folder, n = runs / stem, 1
    while folder.exists():
        n += 1
        folder = runs / f"{stem}-{n}"
    return folder


def input_file(runs: Path, name: str) -> Path:
    """An uploaded file named by the page: it must be one of the uploads under ``runs``."""
    uploads = (runs / "uploads").resolve()
    path = (uploads / name).resolve()
    if not name or path.parent != uploads or not path.is_file():
        raise FormError("mixture: upload or record a recording first")
    return path


def command_line(task: str, form: dict[str, Any], settings: Settings) -> tuple[list[str], Path, str]:
    """(argv after ``audiosds``, the run folder, the job's label) for a tab's ``form``.

    Raises:
        FormError: an unknown task, a malformed form, or an argv the CLI's parser refuses.
    """
    if task not in TASKS:
        raise FormError(f"task: expected one of {', '.join(TASKS)}, got {task!r}")
    argv = [task]
    for key, flag in _FLAGS[task].items():
        value = _text(form, key)
        if value:
            argv += [flag, value]
    if task == "separate":
        label = _separation_prompts(form, argv)
        if form.get("noise_source"):
            argv.append("--noise-source")
        argv.insert(1, str(input_file(settings.runs, _text(form, "mixture"))))
    else:
        label = _text(form, "prompt")
        if not label:
            raise FormError("prompt: type what the sound should be")
    folder = new_folder(settings.runs, task, label)
    out = folder / GENERATED if task == "generate" else folder
    argv += [*settings.flags(), "-o", str(out)]
    check(argv)
    return argv, folder, label


def _separation_prompts(form: dict[str, Any], argv: list[str]) -> str:
    """Adds separate's --prompt / --negative flags; returns the label."""
    prompts = form.get("prompts") or []
    negatives = form.get("negatives") or []
    if not isinstance(prompts, list) or not isinstance(negatives, list):
        raise FormError("prompts: expected a list")
    prompts = [_text({"p": p}, "p") for p in prompts]
    negatives = [_text({"n": n}, "n") for n in negatives] + [""] * (len(prompts) - len(negatives))
    filled = [(p, n) for p, n in zip(prompts, negatives, strict=False) if p]
    if len(filled) > MAX_PROMPTS:
        raise FormError(f"prompts: at most {MAX_PROMPTS} sources, got {len(filled)}")
    if len(filled) == 1 and filled[0][0].startswith("auto"):
        argv += ["--prompt", filled[0][0]]
        return filled[0][0]
    if len(filled) < 2:
        raise FormError(f"prompts: name at least 2 sources, got {len(filled)}")
    for prompt, _ in filled:
        argv += ["--prompt", prompt]
    if any(n for _, n in filled):  # a blank one keeps its source's default
        for _, negative in filled:
            argv += ["--negative", negative]
    return " + ".join(p for p, _ in filled)


def check(argv: list[str]) -> None:
    """The CLI parser's verdict on ``argv``, as a FormError in its words."""
    try:
        build_parser().parse_args(argv)
    except UsageError as err:
        raise FormError(str(err)) from err
