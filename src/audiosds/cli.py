"""The ``audiosds`` command.

    audiosds fm       --prompt TEXT [options] -o DIR    tune an FM synthesizer toward a prompt
    audiosds impact   --prompt TEXT [options] -o DIR    tune a modal impact model toward a prompt
    audiosds separate MIX --prompt TEXT --prompt TEXT [options] -o DIR    split a recording by prompts
    audiosds generate --prompt TEXT [options] -o OUT.wav  text-to-audio with the prior alone
    audiosds suggest  MIX [--top N]                     prompts for what is audible in a recording
    audiosds reverb   DRY --prompt TEXT [options] -o DIR  tune a room's reverb toward a prompt
    audiosds enhance  NOISY [--prompt TEXT] [options] -o DIR  keep the prompted sound, remove the noise

The options and the settings they set are declared once, in :mod:`audiosds.options`. Every
command runs the same steps around its task (:func:`_start`, :func:`_write_config`,
:func:`_optimise`, :func:`_finish`). Errors are one line on stderr and a non-zero exit (2: usage,
1: runtime); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import __version__
from .config import from_dict, to_dict
from .options import (
    GENERATE_KEYS,
    Section,
    UsageError,
    build_parser,
    default_threads,
    layered_config,
    schema,
)

EXIT_RUNTIME = 1
EXIT_USAGE = 2

SYNTH_OUTPUTS = (
    "audio.wav",
    "initial.wav",
    "params.json",
    "config.yaml",
    "history.csv",
    "spectrogram.png",
    "checkpoint.pt",
)
REVERB_OUTPUTS = (
    "wet.wav",
    "impulse_response.wav",
    "params.json",
    "config.yaml",
    "history.csv",
    "spectrogram.png",
)
ENHANCE_OUTPUTS = (
    "enhanced.wav",
    "noise.wav",
    "params.json",
    "config.yaml",
    "history.csv",
    "spectrograms.png",
)
SEPARATE_OUTPUTS = (
    "mixture_reconstruction.wav",
    "params.json",
    "config.yaml",
    "history.csv",
    "spectrograms.png",
)

# -- the steps every command shares -----------------------------------------------------


@dataclass
class _Run:
    """What every command sets up the same way before its task runs."""

    cfg: dict[str, Any]  # the layered settings (options.layered_config)
    sections: dict[str, Any]  # the dataclasses built from its typed sections ("sds": SDSConfig, ...)
    out: Path  # the run folder, or generate's OUT.wav
    threads: int
    resumed: bool


def _start(
    args: argparse.Namespace,
    check: Callable[[dict[str, Any]], None],
    outputs: Callable[[dict[str, Any], dict[str, Any]], tuple[str, ...]] | None = None,
    resume_needs: tuple[str, ...] = ("config.yaml",),
) -> _Run:
    """The steps before any work, each a usage error when it fails: ``--resume`` (the folder's own
    config.yaml, holding ``resume_needs``), the layered config and its ``check``, the dataclass
    sections, the output check (a run folder's ``outputs``, or generate's OUT.wav/.json/.png),
    the device and the thread count. Nothing is written."""
    resumed = getattr(args, "resume", None) is not None
    if resumed:
        args.config, args.out = _resume_config(args, resume_needs)
    cfg = layered_config(args)
    check(cfg)
    try:
        sections = {
            key: from_dict(spec.cls, cfg[key], key)
            for key, spec in schema(args.command).items()
            if isinstance(spec, Section) and spec.cls is not None
        }
    except ValueError as err:
        raise UsageError(str(err)) from err
    if resumed:
        out = args.out
    elif outputs is not None:
        out = _prepare_out_dir(args.out, outputs(cfg, sections), args.force)
    else:
        out = _prepare_out_file(args.out, args.force)
    _check_device(cfg["device"])
    return _Run(cfg, sections, out, _use_threads(cfg["threads"]), resumed)


def _write_config(run: _Run, path: Path, **recorded: Any) -> None:
    """Write the settings a run used, in its config's order: the layered config, each typed
    section as built (every default spelled out), the thread count used and ``recorded`` over
    them. A .json path gets JSON (generate's sidecar), any other YAML; either reruns with --config."""
    from .audio import write_text

    resolved = {
        **run.cfg,
        **{key: to_dict(section) for key, section in run.sections.items()},
        "threads": run.threads,
        **recorded,
    }
    if path.suffix == ".json":
        write_text(path, json.dumps(resolved, indent=2) + "\n")
    else:
        write_text(path, yaml.safe_dump(resolved, sort_keys=False))


def _optimise(
    args: argparse.Namespace, total: int, shown: dict[str, tuple[str, str]], task: Callable[..., Any]
) -> tuple[Any, int | None, float]:
    """``task(progress=, should_stop=)`` under a progress bar showing ``shown`` (name -> (history
    key, format)), with SIGINT / SIGTERM turned into a clean stop; returns (its result, the stopping
    signal or None, seconds taken)."""
    bar = _progress_bar(total, args.command, args.quiet)
    last = _LastValues(shown)

    with _progress_log(args) as record, _stop_on_signals() as stop:

        def on_step(step: int, row: dict[str, float | None]) -> None:
            bar.n = step + 1  # the global step: a resumed run starts part-way
            bar.set_postfix(last.update(row))
            record(step + 1, total, row)

        started = time.perf_counter()
        result = task(progress=on_step, should_stop=stop.is_set)
    bar.close()
    return result, stop.signal, time.perf_counter() - started


@contextlib.contextmanager
def _progress_log(args: argparse.Namespace) -> Iterator[Callable[..., None]]:
    """``record(step, total, row)``: with --progress-log FILE, appends one JSON object per step
    ({"step", "total", and the history row, non-finite values as null}) and flushes it, for a
    dashboard that follows the run (``audiosds ui`` does); without it, does nothing."""
    path = getattr(args, "progress_log", None)
    if path is None:
        yield lambda step, total, row=None: None
        return
    try:
        stream = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed below)
    except OSError as err:
        raise UsageError(f"--progress-log {path}: cannot write ({err.strerror})") from err

    def record(step: int, total: int, row: dict[str, float | None] | None = None) -> None:
        values = {
            k: v if not isinstance(v, float) or math.isfinite(v) else None for k, v in (row or {}).items()
        }
        stream.write(json.dumps({"step": step, "total": total, **values}) + "\n")
        stream.flush()

    try:
        yield record
    finally:
        stream.close()


def _finish(
    args: argparse.Namespace,
    run: _Run,
    result: Any,
    signum: int | None,
    elapsed: float,
    checkpoints: list[Path],
    summary: str = "",
) -> int:
    """Report how a run ended (``result.status``: completed, stopped or diverged; ``summary``: the
    prompt scores at start and end) and remove the ``checkpoints`` of a completed run unless
    --keep-checkpoint; the exit status follows the ending."""
    out, done = run.out, len(result.history)
    if result.status == "completed" and not getattr(args, "keep_checkpoint", False):
        for path in checkpoints:
            path.unlink(missing_ok=True)
    if result.status == "stopped":
        name = signal.Signals(signum).name if signum else "a stop request"
        log.info(
            f"audiosds: interrupted by {name} after {done} iterations; outputs and a checkpoint are in "
            f"{out}; resume with: audiosds {args.command} --resume {out}"
        )
        return 128 + (signum or 2)
    if result.status == "diverged":
        log.error(f"run abandoned: {result.message}; the last good outputs are in {out}")
        return EXIT_RUNTIME
    if not args.quiet:
        log.info(f"audiosds {args.command}: {done} iterations in {elapsed:.1f} s{summary} -> {out}")
    return 0


def _resume_config(args: argparse.Namespace, needs: tuple[str, ...]) -> tuple[Path, Path]:
    """--resume DIR: the run's own config.yaml and folder; other run options are refused, and the
    folder must hold ``needs`` (a checkpoint among them must load)."""
    from .tasks.loop import CHECKPOINT_NAME

    folder: Path = args.resume
    if getattr(args, "mixture", None) is not None:
        raise UsageError("--resume: cannot be combined with a MIXTURE argument (the run folder names it)")
    clashes = [flag for flag, value in (("--config", args.config), ("-o", args.out)) if value is not None]
    if clashes:
        raise UsageError(f"--resume: cannot be combined with {', '.join(clashes)} (the run folder has both)")
    for name in needs:
        if not (folder / name).is_file():
            raise UsageError(f"--resume {folder}: no {name} there (not a run folder, or nothing to resume)")
    if CHECKPOINT_NAME in needs:
        _check_checkpoint(folder / CHECKPOINT_NAME)
    return folder / "config.yaml", folder


def _check_checkpoint(path: Path) -> None:
    import torch

    try:
        int(torch.load(path, map_location="cpu", weights_only=True)["iteration"])
    except (RuntimeError, KeyError, TypeError, EOFError, OSError, ValueError) as err:
        raise UsageError(f"--resume: {path} is not a usable checkpoint") from err


def _check_prompt(cfg: dict[str, Any]) -> None:
    """fm, impact, generate: one non-empty prompt, an optional negative one, a sane length."""
    if not isinstance(cfg["prompt"], str) or not cfg["prompt"].strip():
        raise UsageError("--prompt: expected non-empty text")
    if cfg["negative"] is not None and (not isinstance(cfg["negative"], str) or not cfg["negative"].strip()):
        raise UsageError("--negative: expected non-empty text when given")
    seconds = cfg["seconds"]
    if not (isinstance(seconds, int | float) and math.isfinite(seconds) and 0.05 <= seconds <= 60):
        raise UsageError(f"--seconds: expected a length in [0.05, 60] s, got {seconds!r}")


def _use_threads(value: object) -> int:
    """Set torch's thread count from a config's ``threads`` (None: :func:`default_threads`)."""
    import torch

    if value is None:
        value = default_threads()
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"--threads: expected a positive integer, got {value!r}")
    torch.set_num_threads(value)
    return value


# -- output folders ---------------------------------------------------------------------


def _writable_folder(folder: Path, flag: str) -> None:
    """UsageError unless ``folder`` exists as a writable folder or could be created (its nearest
    existing ancestor is a writable folder). Creates nothing: a failed run leaves no trace."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"{flag} {folder}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {folder}: {probe} is not writable")


def _prepare_out_dir(out: Path | None, outputs: tuple[str, ...], force: bool) -> Path:
    """Check the output folder before any work: writable, and not holding our files unless --force."""
    if out is None:
        raise UsageError("-o/--out: an output folder is required")
    if out.exists() and not out.is_dir():
        raise UsageError(f"-o {out}: exists and is not a folder")
    clash = [name for name in outputs if (out / name).exists()]
    if clash and not force:
        raise UsageError(f"-o {out}: already holds {', '.join(clash)}; use --force to replace them")
    _writable_folder(out, "-o")
    return out


def _prepare_out_file(out: Path | None, force: bool) -> Path:
    if out is None:
        raise UsageError("-o/--out: an output WAV path is required")
    if out.suffix.lower() != ".wav":
        raise UsageError(f"-o {out}: expected a .wav file name")
    if out.is_dir():
        raise UsageError(f"-o {out}: is a folder, expected a .wav file name")
    clash = [p.name for p in (out, out.with_suffix(".json"), out.with_suffix(".png")) if p.exists()]
    if clash and not force:
        raise UsageError(f"-o {out}: {', '.join(clash)} already exist(s); use --force to replace them")
    _writable_folder(out.parent, "-o")
    return out


# -- building parts ---------------------------------------------------------------------


def _check_device(device: str) -> None:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available on this machine")


def _build_prior(prior_cfg: dict[str, Any], device: str):  # noqa: ANN202 (lazy import of Prior)
    from .config import ConfigError
    from .priors import MODEL_FIELD, PRIORS, build

    options = dict(prior_cfg)
    name = options.pop("name", None)
    if name not in PRIORS:
        raise UsageError(f"--prior: unknown prior {name!r}; expected one of {sorted(PRIORS)}")
    if "model" in options:
        if name not in MODEL_FIELD:
            raise UsageError(f"--model: the {name} prior loads no model; drop --model")
        options[MODEL_FIELD[name]] = options.pop("model")
    try:
        prior = build(name, **options)
    except ConfigError as err:
        raise UsageError(str(err)) from err
    return prior.to(device)


def _build_scorer(args: argparse.Namespace):  # noqa: ANN202 (lazy import of PromptScorer)
    """The shipped prompt scorer for history.csv, unless --no-score."""
    if args.no_score:
        return None
    from .scorer import build_scorer

    return build_scorer("embedded")


def _warn_uncovered(prior: object, prompts: list[str], prior_name: str) -> None:
    """One warning line per prompt the prior was not trained on anything like (see coverage.py)."""
    from .coverage import coverage_warnings

    for line in coverage_warnings(prior, prompts, prior_name):
        log.warning(line)


def _progress_bar(total: int, desc: str, quiet: bool):  # noqa: ANN202
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, unit="it", file=sys.stderr, disable=quiet, dynamic_ncols=True, leave=False
    )


# -- writing results --------------------------------------------------------------------


NOT_COMPUTED = " (blank: not computed)"  # header suffix of a column that some rows leave empty


def _history_csv(history: list[dict[str, float | None]]) -> str:
    """One row per iteration; a value not computed that iteration is an empty cell, and its
    column's header says so (never NaN; NaN means the value was computed and not finite)."""
    buf = io.StringIO()
    if history:
        names = list(history[0])
        sparse = {k for k in names if any(row.get(k) is None for row in history)}
        header = [k + NOT_COMPUTED if k in sparse else k for k in names]
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        for row in history:
            writer.writerow(
                ["" if row[k] is None else int(row[k]) if k == "iter" else f"{row[k]:.6g}" for k in names]
            )
    return buf.getvalue()


class _LastValues:
    """The progress bar's numbers: each the last one computed (a row may leave some out)."""

    def __init__(self, formats: dict[str, tuple[str, str]]) -> None:
        self.formats = formats  # shown name -> (history key, format spec)
        self.values: dict[str, str] = {}

    def update(self, row: dict[str, float | None]) -> dict[str, str]:
        for shown, (key, spec) in self.formats.items():
            if row.get(key) is not None:
                self.values[shown] = format(row[key], spec)
        return dict(self.values)


def _score_change(first: float, last: float) -> str:
    return f"{first:.3f} -> {last:.3f}"


# -- clean stops ----------------------------------------------------------------------


class _StopFlag:
    """Set by SIGINT / SIGTERM; remembers which signal."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def is_set(self) -> bool:
        return self.signal is not None


def heed_sigint() -> None:
    """Make SIGINT stop this process again where it was started ignoring it.

    A shell starts a background job (``cmd &`` in a script) with SIGINT ignored, and an ignored
    signal stays ignored across exec: such a process would never hear Ctrl-C, nor a UI job the
    UI's Cancel (each job is an ``audiosds`` process, so it calls this itself). Only the main thread
    may set a handler; elsewhere this does nothing.
    """
    if (
        signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        and threading.current_thread() is threading.main_thread()
    ):
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[_StopFlag]:
    """Turn SIGINT / SIGTERM into a polite stop request for the duration of a run; a second
    signal of the same kind falls back to the previous handler (e.g. KeyboardInterrupt)."""
    flag = _StopFlag()
    previous = {}

    def handler(signum: int, frame: object) -> None:
        if flag.signal is not None:
            signal.signal(signum, previous[signum])
            signal.raise_signal(signum)
            return
        flag.signal = signum

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, handler)
    try:
        yield flag
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# -- commands ---------------------------------------------------------------------------


def _run_synth(args: argparse.Namespace) -> int:
    from . import renderers
    from .audio import save_wav, write_text
    from .plots import save_spectrograms
    from .resources import check_memory, estimate_bytes
    from .tasks.loop import CHECKPOINT_NAME
    from .tasks.synthesize import synthesize

    run = _start(args, _check_prompt, lambda cfg, sections: SYNTH_OUTPUTS, ("config.yaml", CHECKPOINT_NAME))
    cfg, out, sds_cfg, synth_cfg = run.cfg, run.out, run.sections["sds"], run.sections["synthesize"]
    prior = _build_prior(cfg["prior"], cfg["device"])
    _warn_uncovered(prior, [cfg["prompt"]], cfg["prior"]["name"])
    renderer_opts = dict(cfg["renderer"])
    renderer_opts.update(sample_rate=prior.sample_rate, seconds=float(cfg["seconds"]))
    try:
        renderer = renderers.build(args.command, **renderer_opts)
    except ValueError as err:
        raise UsageError(str(err)) from err
    renderer_opts.pop("sample_rate")  # follows the prior; not a user setting
    rows = renderer.batch_size * sds_cfg.num_draws * 2  # renders x draws x CFG branches
    check_memory(estimate_bytes(rows, renderer.num_samples, prior.channels), f"this {args.command} run")
    scorer = _build_scorer(args)
    # written first, so an interrupted run can always be resumed from its folder
    _write_config(run, out / "config.yaml", seconds=float(cfg["seconds"]), renderer=renderer_opts)

    shown = {"loss": ("loss", ".3g"), "sigma": ("sigma", ".2g"), "score": ("score", ".3f")}
    result, signum, elapsed = _optimise(
        args,
        synth_cfg.iters,
        shown,
        lambda **hooks: synthesize(
            renderer,
            prior,
            cfg["prompt"],
            synth_cfg,
            sds_cfg,
            negative=cfg["negative"],
            loop=run.sections["loop"],
            checkpoint=out / CHECKPOINT_NAME,
            resume=run.resumed,
            scorer=scorer,
            **hooks,
        ),
    )

    audio = result.audio[0]  # (1, N): the reported render
    save_wav(out / "audio.wav", audio, prior.sample_rate)
    save_wav(out / "initial.wav", result.initial_audio[0], prior.sample_rate)
    params = {
        "renderer": args.command,
        "prompt": cfg["prompt"],
        "sample_rate": prior.sample_rate,
        "iterations": len(result.history),
        **({"scores": result.scores} if result.scores else {}),
        "params": result.params,
    }
    write_text(out / "params.json", json.dumps(params, indent=2) + "\n")
    write_text(out / "history.csv", _history_csv(result.history))
    after = "best" if result.scores.get("reported") == "best" else "after"
    save_spectrograms(
        out / "spectrogram.png",
        [("before", result.initial_audio[0].numpy()), (f"{after}: {cfg['prompt'][:40]}", audio.numpy())],
        prior.sample_rate,
    )
    summary = ""
    if result.scores:
        sc = result.scores
        summary = f"; prompt score {_score_change(sc['initial'], sc['reported_score'])}"
        if sc["reported"] == "best":
            summary += f" (best iterate, {int(sc['iteration'])}; last iterate {sc['final']:.3f})"
    return _finish(args, run, result, signum, elapsed, [out / CHECKPOINT_NAME], summary)


def _auto_count(prompts: object) -> int | None:
    """N of ``--prompt auto[:N]`` (None: the prompts are given); a bad N is a usage error."""
    from .tasks.suggest import parse_auto

    if not isinstance(prompts, list):
        return None
    try:
        return parse_auto(prompts)
    except ValueError as err:
        raise UsageError(str(err)) from err


def _check_separate(cfg: dict[str, Any]) -> None:
    """separate: 2 to 8 non-empty prompts (or ``auto[:N]``), none or one negative prompt each, a
    mixture file."""
    count = _auto_count(cfg["prompts"])
    if count is not None:
        if cfg["negative"] is not None:
            raise UsageError(
                "--negative: cannot be combined with --prompt auto (the prompts are not known yet)"
            )
        if cfg["mixture"] is None:
            raise UsageError("MIXTURE: an input audio file is required")
        return
    prompts = cfg["prompts"]
    if not isinstance(prompts, list) or not 2 <= len(prompts) <= 8:
        got = len(prompts) if isinstance(prompts, list) else 0
        raise UsageError(f"--prompt: expected 2 to 8 prompts (one per source), got {got}")
    if not all(isinstance(p, str) and p.strip() for p in prompts):
        raise UsageError("--prompt: expected non-empty text for every source")
    negative = cfg["negative"]
    if negative is not None:
        if not isinstance(negative, list) or len(negative) != len(prompts):
            got = len(negative) if isinstance(negative, list) else negative
            raise UsageError(f"--negative: expected none or one per --prompt ({len(prompts)}), got {got}")
        cfg["negative"] = [n if isinstance(n, str) and n.strip() else None for n in negative]
    if cfg["mixture"] is None:
        raise UsageError("MIXTURE: an input audio file is required")


def _source_names(num_prompts: int, noise_source: bool) -> list[str]:
    names = [f"source_{k + 1}.wav" for k in range(num_prompts)]
    return [*names, "source_noise.wav"] if noise_source else names


def _separate_outputs(cfg: dict[str, Any], sections: dict[str, Any]) -> tuple[str, ...]:
    count = _auto_count(cfg["prompts"]) or len(cfg["prompts"])
    return (*SEPARATE_OUTPUTS, *_source_names(count, sections["separate"].noise_source))


def _suggested_prompts(mixture: Any, sample_rate: int, count: int, quiet: bool) -> list[str]:
    """``--prompt auto:N``: the N prompts :func:`audiosds.tasks.suggest.suggest` ranks first."""
    from .tasks.suggest import SuggestConfig, suggest

    found = suggest(mixture, sample_rate, SuggestConfig(top=count)).overall
    if not quiet:
        shown = "; ".join(f"{s.prompt} ({s.score:.3f})" for s in found)
        log.info(f"audiosds separate: suggested prompts: {shown}")
    return [s.prompt for s in found]


def _read_input(path: Path) -> tuple[Any, int]:
    """``load_audio(path)`` (C, N) and its rate; an unreadable file is a usage error (one line, exit 2)."""
    from .audio import AudioError, load_audio

    try:
        return load_audio(path)
    except AudioError as err:
        raise UsageError(str(err)) from err


def _check_member(sds_cfg: Any) -> None:
    """Separation's SDS section sets no mode of its own (``check_member_sds``), as a usage error."""
    from .tasks.separate import check_member_sds

    try:
        check_member_sds(sds_cfg)
    except ValueError as err:
        raise UsageError(str(err)) from err


def _run_separate(args: argparse.Namespace) -> int:
    import numpy as np

    from .audio import save_wav, write_text
    from .plots import save_spectrograms
    from .resources import check_memory, estimate_bytes
    from .tasks.separate import WINDOWS_NAME, num_windows, separate

    run = _start(args, _check_separate, _separate_outputs)
    cfg, out, sep_cfg, sds_cfg = run.cfg, run.out, run.sections["separate"], run.sections["sds"]
    _check_member(sds_cfg)
    if sep_cfg.start == "noise_floor":
        wanted = (_auto_count(cfg["prompts"]) or len(cfg["prompts"])) + int(sep_cfg.noise_source)
        if wanted != 2:
            raise UsageError(
                f"--start noise_floor: expected 2 sources (a sound and a catch-all), got {wanted}"
            )
    mixture_path = Path(cfg["mixture"])
    mixture, sample_rate = _read_input(mixture_path)  # (C, N)
    if float(np.abs(mixture).max()) == 0.0:
        log.warning(f"{mixture_path} is silent; every source will be silent too")
    count = _auto_count(cfg["prompts"])
    if count is not None:  # config.yaml records the prompts used: a rerun needs no suggestion
        cfg["prompts"] = _suggested_prompts(mixture, sample_rate, count, args.quiet)
    prior = _build_prior(cfg["prior"], cfg["device"])
    _warn_uncovered(prior, cfg["prompts"], cfg["prior"]["name"])
    sources = len(cfg["prompts"]) + int(sep_cfg.noise_source)
    window = min(
        round(sep_cfg.max_seconds * prior.sample_rate),
        round(mixture.shape[1] * prior.sample_rate / sample_rate),
    )
    # every member's graph lives until the backward pass
    rows = sources * sds_cfg.num_draws * 2 * len(sep_cfg.sds_modes)
    check_memory(estimate_bytes(rows, window, prior.channels), "this separation")
    scorer = _build_scorer(args)
    _write_config(run, out / "config.yaml", mixture=str(mixture_path.resolve()))

    result, signum, elapsed = _optimise(
        args,
        num_windows(mixture.shape[1], sample_rate, prior, sep_cfg) * sep_cfg.iters,
        {"rec": ("rec_loss", ".3g"), "sds": ("sds_norm", ".2g")},
        lambda **hooks: separate(
            mixture,
            sample_rate,
            prior,
            cfg["prompts"],
            sep_cfg,
            sds_cfg,
            negative=cfg["negative"],
            loop=run.sections["loop"],
            checkpoint_dir=out,
            resume=run.resumed,
            scorer=scorer,
            **hooks,
        ),
    )

    names = _source_names(len(cfg["prompts"]), sep_cfg.noise_source)
    for name, source in zip(names, result.sources, strict=True):
        save_wav(out / name, source, sample_rate)
    save_wav(out / "mixture_reconstruction.wav", result.mixture_reconstruction, sample_rate)
    params = {
        "mixture": str(mixture_path),
        "files": dict(zip(names, result.prompts, strict=True)),
        **result.params,
    }
    write_text(out / "params.json", json.dumps(params, indent=2) + "\n")
    write_text(out / "history.csv", _history_csv(result.history))
    panels = [("mixture", mixture)] + [
        (f"{name[:-4]}: {prompt[:32]}", source)
        for name, prompt, source in zip(names, result.prompts, result.sources, strict=True)
    ]
    save_spectrograms(out / "spectrograms.png", panels, sample_rate)
    checkpoints = [out / WINDOWS_NAME, *out.glob("checkpoint_window*.pt")]
    summary = _separation_scores(result.history, len(result.prompts))
    return _finish(args, run, result, signum, elapsed, checkpoints, summary)


def _separation_scores(history: list[dict[str, float | None]], sources: int) -> str:
    """'; prompt scores a -> b, c -> d': per source, the first and last score of each window,
    averaged over the windows ('' without scores); '; the sources as they start' without iterations."""
    if not history:
        return "; the sources as they start (--iters 0)"
    changes = []
    for k in range(1, sources + 1):
        key = f"score_{k}"
        windows: dict[float, list[float]] = {}
        for row in history:
            if row.get(key) is not None:
                windows.setdefault(row["window"], []).append(row[key])
        if not windows:
            return ""
        first = sum(v[0] for v in windows.values()) / len(windows)
        last = sum(v[-1] for v in windows.values()) / len(windows)
        changes.append(_score_change(first, last))
    return "; prompt scores " + ", ".join(changes)


def _run_generate(args: argparse.Namespace) -> int:
    from .audio import save_wav
    from .plots import save_spectrograms
    from .resources import check_memory, estimate_bytes
    from .tasks.generate import GenerateConfig, generate

    run = _start(args, _check_prompt)
    cfg, out = run.cfg, run.out
    try:
        values = {name: cfg[key] for key, name in GENERATE_KEYS.items()}
        gen_cfg = GenerateConfig(
            **{**values, "seconds": float(values["seconds"]), "cfg_scale": float(values["cfg_scale"])}
        )
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from err
    prior = _build_prior(cfg["prior"], cfg["device"])
    _warn_uncovered(prior, [cfg["prompt"]], cfg["prior"]["name"])
    check_memory(
        estimate_bytes(2, round(gen_cfg.seconds * prior.sample_rate), prior.channels), "this generation"
    )
    bar = _progress_bar(gen_cfg.steps, "generate", args.quiet)
    with _progress_log(args) as record:

        def on_step(step: int) -> None:
            bar.update(1)
            record(bar.n, gen_cfg.steps)

        audio = generate(prior, cfg["prompt"], gen_cfg, negative=cfg["negative"], progress=on_step)
    bar.close()
    save_wav(out, audio, prior.sample_rate)
    used = {key: getattr(gen_cfg, name) for key, name in GENERATE_KEYS.items()}
    _write_config(run, out.with_suffix(".json"), **used, version=__version__, sample_rate=prior.sample_rate)
    save_spectrograms(out.with_suffix(".png"), [(cfg["prompt"][:60], audio.numpy())], prior.sample_rate)
    if not args.quiet:
        log.info(
            f"audiosds generate: {gen_cfg.seconds:g} s at {prior.sample_rate} Hz -> {out} "
            f"(settings: {out.with_suffix('.json')}, spectrogram: {out.with_suffix('.png')})"
        )
    return 0


def _check_reverb(cfg: dict[str, Any]) -> None:
    """reverb: a dry recording, one non-empty prompt, a sane excerpt length."""
    if cfg["dry"] is None:
        raise UsageError("DRY: an input audio file is required")
    _check_prompt(cfg)


def _run_reverb(args: argparse.Namespace) -> int:
    import numpy as np

    from .acoustics import band_rt60
    from .audio import save_wav, write_text
    from .plots import save_spectrograms
    from .resources import check_memory, estimate_bytes
    from .tasks.reverb import fit_room, room_at

    run = _start(args, _check_reverb, lambda cfg, sections: REVERB_OUTPUTS)
    cfg, out, sds_cfg, synth_cfg = run.cfg, run.out, run.sections["sds"], run.sections["synthesize"]
    dry_path = Path(cfg["dry"])
    dry, sample_rate = _read_input(dry_path)  # (C, N)
    if float(np.abs(dry).max()) == 0.0:
        raise UsageError(f"DRY {dry_path}: is silent; a room needs a sound to reverberate")
    room = dict(cfg["renderer"])
    try:
        from .renderers.reverb import ReverbConfig

        ReverbConfig(**{**room, "sample_rate": sample_rate})
    except (TypeError, ValueError) as err:
        raise UsageError(f"renderer: {err}") from err
    prior = _build_prior(cfg["prior"], cfg["device"])
    _warn_uncovered(prior, [cfg["prompt"]], cfg["prior"]["name"])
    rows = int(room.get("batch_size", 1)) * sds_cfg.num_draws * 2
    fit = min(float(cfg["seconds"]), dry.shape[1] / sample_rate)
    check_memory(estimate_bytes(rows, round(fit * prior.sample_rate), prior.channels), "this reverb run")
    scorer = _build_scorer(args)
    _write_config(run, out / "config.yaml", dry=str(dry_path.resolve()))

    shown = {"loss": ("loss", ".3g"), "sigma": ("sigma", ".2g"), "score": ("score", ".3f")}
    (renderer, result), signum, elapsed = _optimise(
        args,
        synth_cfg.iters,
        shown,
        lambda **hooks: fit_room(
            dry,
            sample_rate,
            prior,
            cfg["prompt"],
            room,
            synth_cfg,
            sds_cfg,
            negative=cfg["negative"],
            fit_seconds=float(cfg["seconds"]),
            loop=run.sections["loop"],
            scorer=scorer,
            **hooks,
        ),
    )

    tuned = room_at(result.params, {k: v for k, v in room.items() if k != "batch_size"}, sample_rate)
    wet = tuned.apply(dry)  # (C, N + tail)
    peak = float(np.abs(wet).max())
    save_wav(out / "wet.wav", wet * (0.99 / peak) if peak > 0.99 else wet, sample_rate)
    response = tuned.with_predelay().numpy()
    save_wav(
        out / "impulse_response.wav", response[None] * (0.9 / float(np.abs(response).max())), sample_rate
    )
    measured = band_rt60(response, sample_rate)
    params = {
        "renderer": "reverb",
        "prompt": cfg["prompt"],
        "dry": str(dry_path),
        "sample_rate": sample_rate,
        "iterations": len(result.history),
        **({"scores": result.scores} if result.scores else {}),
        "rt60_s": {
            f"{c:g} Hz": float(v) for c, v in zip(tuned.band_centres_hz, tuned.values["rt60_s"], strict=True)
        },
        "measured_rt60_s": {f"{c:g} Hz": round(v, 4) for c, v in measured.items()},
        "predelay_s": float(tuned.values["predelay_s"]),
        "early_density_per_s": float(tuned.values["early_density"]),
        "early_level_db": float(tuned.values["early_level_db"]),
        "wet": float(tuned.values["wet"]),
        "params": result.params,
    }
    write_text(out / "params.json", json.dumps(params, indent=2) + "\n")
    write_text(out / "history.csv", _history_csv(result.history))
    after = "best" if result.scores.get("reported") == "best" else "after"
    save_spectrograms(
        out / "spectrogram.png",
        [
            ("dry", renderer.dry[None].numpy()),
            ("before", result.initial_audio[0].numpy()),
            (f"{after}: {cfg['prompt'][:40]}", result.audio[0].numpy()),
        ],
        prior.sample_rate,
    )
    summary = ""
    if result.scores:
        summary = f"; prompt score {_score_change(result.scores['initial'], result.scores['reported_score'])}"
    mid = [v for c, v in measured.items() if c in (500.0, 1000.0)]
    if mid:
        summary += f"; mid-band RT60 {sum(mid) / len(mid):.2f} s"
    return _finish(args, run, result, signum, elapsed, [], summary)


def _check_enhance(cfg: dict[str, Any]) -> None:
    """enhance: a noisy recording, non-empty prompts."""
    if cfg["noisy"] is None:
        raise UsageError("NOISY: an input audio file is required")
    for flag, key in (("--prompt", "prompt"), ("--noise-prompt", "noise_prompt")):
        if not isinstance(cfg[key], str) or not cfg[key].strip():
            raise UsageError(f"{flag}: expected non-empty text")


def _run_enhance(args: argparse.Namespace) -> int:
    import numpy as np

    from .audio import save_wav, write_text
    from .plots import save_spectrograms
    from .resources import check_memory, estimate_bytes
    from .tasks.enhance import enhance
    from .tasks.separate import num_windows

    run = _start(args, _check_enhance, lambda cfg, sections: ENHANCE_OUTPUTS)
    cfg, out, sep_cfg, sds_cfg = run.cfg, run.out, run.sections["separate"], run.sections["sds"]
    if sep_cfg.noise_source:
        raise UsageError("separate.noise_source: enhance's catch-all is --noise-prompt; leave it off")
    _check_member(sds_cfg)
    noisy_path = Path(cfg["noisy"])
    noisy, sample_rate = _read_input(noisy_path)  # (C, N)
    if float(np.abs(noisy).max()) == 0.0:
        log.warning(f"{noisy_path} is silent; both outputs will be silent too")
    prior = _build_prior(cfg["prior"], cfg["device"])
    named = [cfg["prompt"]] + ([] if cfg["noise_prompt"].strip() == "auto" else [cfg["noise_prompt"]])
    _warn_uncovered(prior, named, cfg["prior"]["name"])
    window = min(
        round(sep_cfg.max_seconds * prior.sample_rate),
        round(noisy.shape[1] * prior.sample_rate / sample_rate),
    )
    check_memory(
        estimate_bytes(2 * sds_cfg.num_draws * 2 * len(sep_cfg.sds_modes), window, prior.channels), "this run"
    )
    scorer = _build_scorer(args)
    _write_config(run, out / "config.yaml", noisy=str(noisy_path.resolve()))

    result, signum, elapsed = _optimise(
        args,
        num_windows(noisy.shape[1], sample_rate, prior, sep_cfg) * sep_cfg.iters,
        {"rec": ("rec_loss", ".3g"), "sds": ("sds_norm", ".2g")},
        lambda **hooks: enhance(
            noisy,
            sample_rate,
            prior,
            cfg["prompt"],
            cfg["noise_prompt"],
            sep_cfg,
            sds_cfg,
            loop=run.sections["loop"],
            scorer=scorer,
            **hooks,
        ),
    )

    save_wav(out / "enhanced.wav", result.enhanced, sample_rate)
    save_wav(out / "noise.wav", result.noise, sample_rate)
    separation = result.separation
    params = {
        "noisy": str(noisy_path),
        "files": dict(zip(("enhanced.wav", "noise.wav"), separation.prompts, strict=True)),
        **separation.params,
    }
    write_text(out / "params.json", json.dumps(params, indent=2) + "\n")
    write_text(out / "history.csv", _history_csv(separation.history))
    panels = [
        ("noisy", noisy),
        (f"enhanced: {cfg['prompt'][:32]}", result.enhanced),
        (f"noise: {separation.prompts[1][:32]}", result.noise),
    ]
    save_spectrograms(out / "spectrograms.png", panels, sample_rate)
    summary = _separation_scores(separation.history, 2)
    return _finish(args, run, separation, signum, elapsed, [], summary)


def _run_suggest(args: argparse.Namespace) -> int:
    """Print the ranked prompts, overall and per window; write nothing."""
    from .config import ConfigError, from_dict
    from .tasks.suggest import SuggestConfig, suggest

    cfg = layered_config(args)
    try:
        config = from_dict(SuggestConfig, cfg["suggest"], "suggest")
    except ConfigError as err:
        raise UsageError(str(err)) from err
    if cfg["mixture"] is None:
        raise UsageError("MIXTURE: an input audio file is required")
    mixture, sample_rate = _read_input(Path(cfg["mixture"]))  # (C, N)
    _use_threads(cfg["threads"])
    result = suggest(mixture, sample_rate, config)
    if args.json:
        item = lambda s: {"prompt": s.prompt, "name": s.name, "score": round(float(s.score), 4)}  # noqa: E731
        windows = [
            {"start_s": start, "end_s": end, "top": [item(s) for s in top]}
            for (start, end), top in result.windows
        ]
        print(json.dumps({"overall": [item(s) for s in result.overall], "windows": windows}, indent=2))
        return 0
    width = max(len(s.prompt) for s in result.overall)
    print(f"overall ({mixture.shape[1] / sample_rate:.2f} s, best window per prompt):")
    for rank, s in enumerate(result.overall, start=1):
        print(f"  {rank}. {s.score:6.3f}  {s.prompt:<{width}}  [{s.name}]")
    print(f"per window ({config.window_seconds:g} s):")
    for (start, end), top in result.windows:
        shown = "  |  ".join(f"{s.score:.3f} {s.prompt}" for s in top)
        print(f"  {start:6.2f}-{end:6.2f} s  {shown}")
    return 0


def _run_ui(args: argparse.Namespace) -> int:
    """Serve the page until Ctrl-C."""
    from .ui import UiConfig, serve
    from .ui.server import check_config

    cfg = layered_config(args)
    config = UiConfig(
        runs=Path(cfg["runs"]),
        prior=cfg["prior"]["name"],
        model=cfg["prior"].get("model"),
        host=cfg["host"],
        port=int(cfg["port"]),
        jobs=int(cfg["jobs"]),
        threads=cfg["threads"],
        device=cfg["device"],
        allow_remote=bool(cfg["allow_remote"]),
        max_seconds=float(cfg["max_seconds"]),
    )
    try:
        check_config(config)
    except ValueError as err:
        raise UsageError(str(err)) from err
    _writable_folder(config.runs, "--runs")
    return serve(config)


def _run_batch(args: argparse.Namespace) -> int:
    """Run a jobs file; exit 0 when every job finished, 1 when one failed, 130 on Ctrl-C."""
    from .batch import BatchConfig, JobsFileError, read_jobs, run_batch

    cfg = layered_config(args)
    if cfg["jobs_file"] is None:
        raise UsageError("JOBS.yaml: a jobs file is required")
    if args.out is None:
        raise UsageError("-o/--out: an output folder is required")
    try:
        jobs = read_jobs(Path(cfg["jobs_file"]))
    except JobsFileError as err:
        raise UsageError(str(err)) from err
    _writable_folder(args.out, "-o")
    config = BatchConfig(
        out=args.out,
        workers=cfg["workers"] or default_threads(),
        threads=cfg["threads"],
        address=cfg["address"] or os.environ.get("RAY_ADDRESS") or None,
    )
    bar = _progress_bar(len(jobs), "batch", args.quiet)
    counts: dict[str, int] = {}

    def progress(outcome: Any) -> None:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
        bar.update(1)
        bar.set_postfix(counts)
        if outcome.status == "failed":
            log.warning(f"{outcome.job.id}: {outcome.error}")

    try:
        outcomes = run_batch(config, jobs, progress)
    except KeyboardInterrupt:
        bar.close()
        log.info(
            f"audiosds batch: interrupted; the running jobs kept their checkpoints; rerun the same "
            f"command to go on ({args.out / 'summary.csv'})"
        )
        return 130
    bar.close()
    shown = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    if not args.quiet:
        log.info(f"audiosds batch: {len(outcomes)} jobs ({shown}) -> {args.out / 'index.html'}")
    return EXIT_RUNTIME if any(o.status == "failed" for o in outcomes) else 0


COMMANDS = {
    "batch": _run_batch,
    "ui": _run_ui,
    "fm": _run_synth,
    "impact": _run_synth,
    "separate": _run_separate,
    "generate": _run_generate,
    "suggest": _run_suggest,
    "reverb": _run_reverb,
    "enhance": _run_enhance,
}


log = logging.getLogger("audiosds")


class _CliFormatter(logging.Formatter):
    """``audiosds: warning: ...`` and ``audiosds: error: ...``; notices (INFO) carry their own prefix."""

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno >= logging.WARNING:
            return f"audiosds: {record.levelname.lower()}: {record.getMessage()}"
        return record.getMessage()


def _setup_logging() -> None:
    """One stderr handler on the package logger (replaced on every call, so each run writes to the
    sys.stderr of its own time); library modules log under ``audiosds.*`` and reach it."""
    for handler in list(log.handlers):
        log.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_CliFormatter())
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 runtime failure, 2 usage error)."""
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    heed_sigint()  # Ctrl-C / SIGINT stops a run cleanly even when a script started it in the background
    # model-loading progress bars and notices from the Hugging Face libraries would bury ours
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    _setup_logging()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return COMMANDS[args.command](args)
    except UsageError as err:
        if debug:
            raise
        log.error(err)
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.info("audiosds: interrupted")
        return 130
    except (ValueError, OSError, RuntimeError, MemoryError) as err:
        if debug:
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        log.error(message)
        return EXIT_RUNTIME


if __name__ == "__main__":
    sys.exit(main())
