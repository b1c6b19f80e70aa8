"""A batch's jobs: JOBS.yaml read into command lines, each with a stable id.

A job is one ``audiosds`` command line, written as a mapping of the command's long options without
their dashes (``prompt``, ``iters``, ``noise-source`` or ``noise_source``, ...), plus ``command``,
its input file (``mixture``, ``dry`` or ``noisy``) and optionally ``config``: a mapping in the
layout of a run's config.yaml (``sds: {cfg_scale: 8}``), passed as ``--config``. JOBS.yaml holds

    defaults:  {prior: embedded-mel, iters: 200}   # under every job that takes them; its own keys win
    jobs:                                         # runs listed one by one
      - {command: separate, mixture: mix.wav, prompt: [saxophone, traffic]}
    grid:                                         # every combination of the values listed
      command: [fm, impact]
      prompt: [a warm bass note, a glass bell]
      seed: [0, 1, 2, 3]

(``grid`` may also be a list of such grids.) In a grid every value is a list of choices; a choice
may itself be a list (``prompt: [[sax, traffic], [sax, rain]]``). Relative input paths are read
from JOBS.yaml's folder. A job's id is its command and prompt, readable, plus a hash of everything
that defines it, so the same job always lands in the same run folder.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..options import UsageError, build_parser, options
from ..runfolder import GENERATED, slug

INPUTS = ("mixture", "dry", "noisy")  # the positional input of separate / suggest, reverb, enhance
BATCH_COMMANDS = ("fm", "impact", "separate", "generate", "reverb", "enhance")
NOT_IN_JOBS = ("out", "resume", "force", "progress-log", "quiet", "debug")  # the batch sets these
TOP_KEYS = ("defaults", "jobs", "grid")


class JobsFileError(ValueError):
    """JOBS.yaml cannot be read into jobs; the message is one line."""


@dataclass(frozen=True)
class Job:
    """One command line of a batch."""

    id: str
    command: str
    options: dict[str, Any]  # option name (dashes) -> value, inputs resolved to absolute paths
    config: dict[str, Any] | None  # the --config mapping, or None
    error: str | None = None  # the CLI parser's one line for a command line it refuses: never run

    @property
    def label(self) -> str:
        prompt = self.options.get("prompt")
        if isinstance(prompt, list):
            return " + ".join(map(str, prompt))
        if prompt is not None:
            return str(prompt)
        source = next((self.options[k] for k in INPUTS if k in self.options), "")
        return Path(str(source)).name

    @property
    def device(self) -> str:
        return str(self.options.get("device") or (self.config or {}).get("device") or "cpu")

    def argv(self, folder: Path, config_file: Path | None, threads: int | None) -> list[str]:
        """The command line that writes this job's run folder ``folder``."""
        table = _flags(self.command)
        argv = [self.command]
        for key in INPUTS:
            if key in self.options:
                argv.append(str(self.options[key]))
        for name, value in self.options.items():
            if name in INPUTS:
                continue
            argv += _flag_args(table[name], value)
        if config_file is not None:
            argv += ["--config", str(config_file)]
        if threads is not None and "threads" not in self.options:
            argv += ["--threads", str(threads)]
        out = folder / GENERATED if self.command == "generate" else folder
        return [*argv, "-o", str(out)]


def _flags(command: str) -> dict[str, Any]:
    """option name (the long flag without dashes) -> its row, for ``command``."""
    table = {}
    for option in options():
        if command in option.keys and option.flags[0].startswith("-"):
            long = next(f for f in option.flags if f.startswith("--"))
            table[long[2:]] = option
    return table


def _flag_args(option: Any, value: Any) -> list[str]:
    """The argv pieces for ``value`` of a table row (booleans, lists and plain values)."""
    flag = next(f for f in option.flags if f.startswith("--"))
    action = option.argparse.get("action")
    if action in ("store_true", "store_const"):
        return [flag] if value else []
    if action is argparse.BooleanOptionalAction:
        return [flag] if value else ["--no-" + flag[2:]]
    if action == "append":
        values = value if isinstance(value, list) else [value]
        return [piece for v in values for piece in (flag, _text(v))]
    if option.argparse.get("nargs") == "+":
        return [flag, *map(_text, value if isinstance(value, list) else [value])]
    return [flag, _text(value)]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _normalise(raw: dict[str, Any], base: Path, where: str) -> tuple[str, dict[str, Any], dict | None]:
    """(command, options, config) of one job mapping; JobsFileError names ``where`` it went wrong."""
    if not isinstance(raw, dict):
        raise JobsFileError(f"{where}: expected a mapping of options, got {type(raw).__name__}")
    command = raw.get("command")
    if command not in BATCH_COMMANDS:
        raise JobsFileError(f"{where}: command: expected one of {', '.join(BATCH_COMMANDS)}, got {command!r}")
    table = _flags(command)
    opts: dict[str, Any] = {}
    config = None
    for key, value in raw.items():
        name = str(key).replace("_", "-")
        if name == "command":
            continue
        if name == "config":
            if not isinstance(value, dict):
                raise JobsFileError(f"{where}: config: expected a mapping (a config.yaml's layout)")
            config = value
        elif name in INPUTS:
            path = Path(str(value)).expanduser()
            opts[name] = str(path if path.is_absolute() else (base / path).resolve())
        elif name in NOT_IN_JOBS:
            raise JobsFileError(f"{where}: {key}: set by the batch, not by a job")
        elif name not in table:
            known = ", ".join(sorted(set(table) - set(NOT_IN_JOBS)))
            raise JobsFileError(f"{where}: {key}: not an option of {command} (it takes {known})")
        else:
            opts[name] = value
    return command, opts, config


def _defaults_for(defaults: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """The defaults a job's command takes (``iters`` reaches fm and separate, not generate)."""
    command = raw.get("command", defaults.get("command"))
    if command not in BATCH_COMMANDS:
        return defaults
    table = _flags(command)
    return {k: v for k, v in defaults.items() if str(k).replace("_", "-") in (*table, *INPUTS, "command")}


def job_id(command: str, opts: dict[str, Any], config: dict | None) -> str:
    """``COMMAND-PROMPT-HASH``: the hash is of the canonical JSON of everything that defines the job."""
    canonical = json.dumps(
        {"command": command, "options": opts, "config": config}, sort_keys=True, default=str
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:10]
    prompt = opts.get("prompt")
    words = " ".join(map(str, prompt)) if isinstance(prompt, list) else str(prompt or "")
    return "-".join(part for part in (command, slug(words), digest) if part)


def _grid(grid: Any, where: str) -> Iterator[dict[str, Any]]:
    if not isinstance(grid, dict) or not grid:
        raise JobsFileError(f"{where}: expected a mapping of option -> list of values")
    keys = list(grid)
    choices = []
    for key in keys:
        value = grid[key]
        if key == "config":
            value = value if isinstance(value, list) else [value]
        elif not isinstance(value, list) or not value:
            raise JobsFileError(f"{where}: {key}: expected a non-empty list of values, got {value!r}")
        choices.append(value)
    for combo in itertools.product(*choices):
        yield dict(zip(keys, combo, strict=True))


def read_jobs(path: Path) -> list[Job]:
    """The jobs of JOBS.yaml, in file order, each once. A job whose command line the CLI's parser
    refuses carries its one-line ``error`` (reported as failed, while the others run).

    Raises:
        JobsFileError: a file that is not a jobs file at all (unreadable, bad YAML, unknown keys,
            no jobs, a malformed job).
    """
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise JobsFileError(f"{path}: cannot read ({err.strerror})") from err
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise JobsFileError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from err
    if not isinstance(data, dict) or not set(data) <= set(TOP_KEYS):
        raise JobsFileError(f"{path}: expected a mapping with some of: {', '.join(TOP_KEYS)}")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise JobsFileError(f"{path}: defaults: expected a mapping of options")
    listed = data.get("jobs") or []
    grids = data.get("grid") or []
    if not isinstance(listed, list):
        raise JobsFileError(f"{path}: jobs: expected a list of mappings")
    grids = grids if isinstance(grids, list) else [grids]
    raws: list[tuple[str, Any]] = [(f"jobs[{i}]", raw) for i, raw in enumerate(listed)]
    for g, grid in enumerate(grids):
        raws += [(f"grid[{g}] #{n}", raw) for n, raw in enumerate(_grid(grid, f"grid[{g}]"))]
    if not raws:
        raise JobsFileError(f"{path}: no jobs (list them under jobs:, or sweep them under grid:)")
    base = path.resolve().parent
    out: list[Job] = []
    seen: set[str] = set()
    parser = build_parser()
    for where, raw in raws:
        merged = {**_defaults_for(defaults, raw), **raw} if isinstance(raw, dict) else raw
        command, opts, config = _normalise(merged, base, where)
        job = Job(job_id(command, opts, config), command, opts, config)
        if job.id in seen:
            continue  # the same job twice runs once
        seen.add(job.id)
        try:
            parser.parse_args(job.argv(Path("OUT"), None, None))
        except UsageError as err:
            job = Job(job.id, command, opts, config, error=f"{where}: {err}")
        out.append(job)
    return out
