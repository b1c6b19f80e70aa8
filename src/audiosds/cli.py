"""The ``audiosds`` command.

    audiosds fm       --prompt TEXT [options] -o DIR    tune an FM synthesizer toward a prompt
    audiosds impact   --prompt TEXT [options] -o DIR    tune a modal impact model toward a prompt
    audiosds generate --prompt TEXT [options] -o OUT.wav  text-to-audio with the prior alone

Errors are one line on stderr and a non-zero exit (2: usage, 1: runtime); ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import os
import signal
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from . import __version__

EXIT_RUNTIME = 1
EXIT_USAGE = 2

SYNTH_OUTPUTS = ("audio.wav", "params.json", "config.yaml", "history.csv", "spectrogram.png", "checkpoint.pt")
DEFAULT_PARTICLES = 2  # fm / impact: starts optimised side by side in one batch (1.4-2.1x one's time)


class UsageError(Exception):
    """A bad option, argument or config value: exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


# -- argument parsing -------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from err
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from err
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


PAPER_NOTES = """\
References: Score Distillation Sampling for audio is Audio-SDS (arXiv 2505.04621). The update
modes are its equations: spectral = eq. 7 (spectrogram emphasis), decoder = eqs. 5-6
(Decoder-SDS), latent = eq. 4 (classic SDS); the FM synthesizer is eq. 8, the impact model
eqs. 9-10 and separation eq. 13. Guidance is classifier-free guidance (CFG)."""


def _wrap(text: str) -> str:
    """A help paragraph wrapped to 90 columns (the raw formatter keeps the references' lines)."""
    return textwrap.fill(text, 90)


def default_threads() -> int:
    """CPU threads a run uses unless told: the physical cores this process may run on, less the
    cores other processes keep busy (the 1-minute load average), capped by OMP_NUM_THREADS when
    set; at least 1. Never more threads than free cores: on a busy 2-core machine two threads
    ran 16x slower than one."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cores = _physical_cores(cpus) or len(cpus)
    busy = round(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
    threads = max(1, min(cores, len(cpus) - busy))
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) >= 1:
        threads = min(threads, int(omp))
    return threads


def _physical_cores(cpus: set[int]) -> int:
    """Distinct (package, core) pairs among ``cpus`` from /proc/cpuinfo; 0 when unknown."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return 0
    cores = set()
    for block in text.split("\n\n"):
        fields = dict(
            (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in block.splitlines())
        )
        if "processor" in fields and int(fields["processor"]) in cpus:
            cores.add((fields.get("physical id", "0"), fields.get("core id", fields["processor"])))
    return len(cores)


def _add_common(p: argparse.ArgumentParser, cfg_default: float, one_prompt: bool = True) -> None:
    from .priors import DEFAULT_PRIOR, PRIORS

    if one_prompt:
        p.add_argument("--prompt", help="what the sound should be, in words (required)")
        p.add_argument("--negative", help="what the sound should not be, in words (default: none)")
    p.add_argument("--seed", type=int, help="random seed; the same seed gives the same result (default 0)")
    p.add_argument(
        "--prior",
        choices=sorted(PRIORS),
        help=f"the diffusion model that judges and guides the sound (default {DEFAULT_PRIOR}, shipped "
        "with the package; analytic is a test oracle that knows no sounds)",
    )
    p.add_argument("--model", help="model folder or Hugging Face id, for stable-audio-open (default: none)")
    p.add_argument(
        "--cfg",
        type=_finite_float,
        help=f"prompt strength: higher follows the prompt harder, too high buzzes (default {cfg_default:g})",
    )
    p.add_argument("--device", choices=("cpu", "cuda"), help="where to compute (default cpu)")
    p.add_argument(
        "--threads",
        type=_positive_int,
        metavar="N",
        help=f"CPU threads (default: the free physical cores, {default_threads()} now); a rerun gives "
        "the same bytes only with the same thread count, which config files record",
    )
    p.add_argument(
        "--config",
        type=Path,
        help="settings file to start from, e.g. a previous run's config (default: none)",
    )
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    p.add_argument("--no-score", action="store_true", help="do not score the sound against the prompt")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no closing line")


def _add_run_folder(p: argparse.ArgumentParser) -> None:
    from .tasks.loop import LoopConfig

    p.add_argument("-o", "--out", type=Path, help="output folder (required)")
    p.add_argument("--force", action="store_true", help="replace this tool's files in an existing folder")
    p.add_argument("--resume", type=Path, metavar="DIR", help="continue an interrupted run in its folder")
    p.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="N",
        help=f"iterations between saved checkpoints (default {LoopConfig.checkpoint_every})",
    )
    p.add_argument(
        "--keep-checkpoint",
        action="store_true",
        help="keep the checkpoint file after a run that finished (default: removed)",
    )


def _build_parser() -> argparse.ArgumentParser:
    from .tasks.generate import GenerateConfig
    from .tasks.separate import SEPARATION_SDS, SeparateConfig
    from .tasks.synthesize import SYNTHESIS_SDS, SynthesizeConfig

    parser = _Parser(
        prog="audiosds", description="Score Distillation Sampling for audio.", epilog=PAPER_NOTES
    )
    parser.add_argument("--version", action="version", version=f"audiosds {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    fmt = argparse.RawDescriptionHelpFormatter
    for name, what in (
        ("fm", "a 4-operator FM synthesizer"),
        ("impact", "a modal impact (struck object) model"),
    ):
        p = sub.add_parser(
            name,
            help=f"tune {what} toward a prompt",
            description=_wrap(
                f"Tune {what} so that its sound matches a text prompt. Writes audio.wav (the "
                "best-scoring sound), params.json, config.yaml, history.csv and spectrogram.png into "
                "the output folder."
            ),
            epilog=PAPER_NOTES,
            formatter_class=fmt,
        )
        _add_common(p, float(SYNTHESIS_SDS["cfg_scale"]))
        p.add_argument(
            "--iters", type=_positive_int, help=f"optimisation steps (default {SynthesizeConfig.iters})"
        )
        p.add_argument(
            "--lr",
            type=_finite_float,
            help=f"step size of the parameter updates (Adam learning rate; default {SynthesizeConfig.lr:g})",
        )
        p.add_argument("--seconds", type=_finite_float, help="length of the sound in seconds (default 1)")
        p.add_argument(
            "--mode",
            choices=("decoder", "spectral", "latent"),
            help="how the prior's suggestion is compared with the sound: spectral (magnitude "
            "spectrograms), decoder (waveforms) or latent (the prior's own code) "
            f"(default {SYNTHESIS_SDS['mode']})",
        )
        p.add_argument(
            "--steps", type=_positive_int, help="denoising steps per suggestion from the prior (default 1)"
        )
        p.add_argument(
            "--draws", type=_positive_int, help="noise draws averaged per optimisation step (default 1)"
        )
        p.add_argument(
            "--particles",
            type=_positive_int,
            metavar="N",
            help=f"independent starting sounds tuned side by side, the best-scoring reported "
            f"(default {DEFAULT_PARTICLES}; each costs about one more run's time)",
        )
        p.add_argument(
            "--final",
            action="store_true",
            help="report the last iterate instead of the best-scoring one (default: the best)",
        )
        _add_run_folder(p)
    p = sub.add_parser(
        "separate",
        help="split a recording into prompt-named sources",
        description=_wrap(
            "Split a recording into one source per prompt: the sources add up to the "
            "recording, and each is pushed toward its prompt. Writes source_1.wav, source_2.wav, ..., "
            "mixture_reconstruction.wav, params.json, config.yaml, history.csv and spectrograms.png."
        ),
        epilog=PAPER_NOTES,
        formatter_class=fmt,
    )
    p.add_argument("mixture", type=Path, nargs="?", help="audio file (WAV, FLAC, OGG, ...)")
    _add_common(p, float(SEPARATION_SDS["cfg_scale"]), one_prompt=False)
    p.add_argument(
        "--prompt", action="append", dest="prompts", help="one per source, 2 to 8 (repeat the flag; required)"
    )
    p.add_argument(
        "--negative",
        action="append",
        dest="negatives",
        help="per-source negative prompts, none or one per --prompt (default: none)",
    )
    p.add_argument(
        "--iters", type=_positive_int, help=f"optimisation steps per window (default {SeparateConfig.iters})"
    )
    p.add_argument(
        "--lr",
        type=_finite_float,
        help=f"step size of the updates (Adam learning rate; default {SeparateConfig.lr:g})",
    )
    p.add_argument(
        "--gamma",
        type=_finite_float,
        help=f"weight of the prompts against fitting the recording (default {SeparateConfig.gamma:g})",
    )
    p.add_argument(
        "--sources",
        choices=("latent", "remasked", "masks"),
        help=f"how a source is represented: remasked (the prior's sound turned into a mask over the "
        f"recording), masks (masks over the recording) or latent (the prior's code) "
        f"(default {SeparateConfig.parametrization})",
    )
    p.add_argument(
        "--noise-source",
        action="store_true",
        default=None,
        help="add a catch-all 'noise' source (default: off)",
    )
    p.add_argument(
        "--contrast",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a source without --negative uses the other sources' prompts as its negative prompt "
        "(default: on)",
    )
    p.add_argument(
        "--sds-modes",
        nargs="+",
        choices=("decoder", "spectral", "latent"),
        help="one set of sources per comparison mode, averaged "
        f"(default: {' '.join(SeparateConfig.sds_modes)})",
    )
    p.add_argument(
        "--steps", type=_positive_int, help="denoising steps per suggestion from the prior (default 1)"
    )
    _add_run_folder(p)
    p = sub.add_parser(
        "generate",
        help="text-to-audio with the prior alone",
        description=_wrap(
            "Generate a sound from a text prompt with the prior alone. Writes OUT.wav, "
            "OUT.json (its settings: rerun with --config OUT.json) and OUT.png (its spectrogram)."
        ),
        epilog=PAPER_NOTES,
        formatter_class=fmt,
    )
    _add_common(p, GenerateConfig.cfg_scale)
    p.add_argument(
        "--seconds", type=_finite_float, help=f"length in seconds (default {GenerateConfig.seconds:g})"
    )
    p.add_argument("--steps", type=_positive_int, help=f"sampler steps (default {GenerateConfig.steps})")
    p.add_argument(
        "--method",
        choices=("ddim", "heun", "dpmpp_2m"),
        help=f"deterministic sampler (default {GenerateConfig.method})",
    )
    p.add_argument("-o", "--out", type=Path, help="output WAV file (required)")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    return parser


# -- configuration ----------------------------------------------------------------------


def _read_config_file(path: Path, allowed: set[str]) -> dict[str, Any]:
    if not path.is_file():
        raise UsageError(f"--config {path}: no such file")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UsageError(f"--config {path}: not valid YAML ({str(err).splitlines()[0]})") from err
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: expected a mapping at the top level")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise UsageError(f"--config {path}: unknown key(s) {unknown}; expected some of {sorted(allowed)}")
    return data


def _layered_config(
    args: argparse.Namespace, defaults: dict[str, Any], flags: dict[tuple[str, ...], Any]
) -> dict[str, Any]:
    """Defaults < config file < command-line flags, as one plain dict (what config.yaml holds).

    Mapping-valued defaults are sections (prior, sds, ...): a config file or flag sets keys
    inside them; other defaults are plain values.
    """
    cfg = {k: dict(v) if isinstance(v, dict) else v for k, v in defaults.items()}
    if args.config is not None:
        file_cfg = _read_config_file(args.config, set(defaults))
        if file_cfg.get("command", args.command) != args.command:
            raise UsageError(
                f"--config {args.config}: written for '{file_cfg['command']}', not '{args.command}'"
            )
        for key, value in file_cfg.items():
            if isinstance(defaults[key], dict):
                if not isinstance(value, dict):
                    raise UsageError(f"--config {args.config}: '{key}' must be a mapping")
                cfg[key] = dict(value)
            else:
                cfg[key] = value
    for path, value in flags.items():
        if value is None:
            continue
        if len(path) == 1:
            cfg[path[0]] = value
        else:
            cfg[path[0]][path[1]] = value
    return cfg


def _resolve_synth_config(args: argparse.Namespace) -> dict[str, Any]:
    """The fm / impact run's settings."""
    from .priors import DEFAULT_PRIOR
    from .tasks.synthesize import SYNTHESIS_SDS

    defaults: dict[str, Any] = {
        "command": args.command,
        "prompt": None,
        "negative": None,
        "seconds": 1.0,
        "device": "cpu",
        "threads": None,
        "prior": {"name": DEFAULT_PRIOR},
        "renderer": {"batch_size": DEFAULT_PARTICLES},
        "synthesize": {},
        "sds": dict(SYNTHESIS_SDS),
        "loop": {},
    }
    flags = {
        ("prompt",): args.prompt,
        ("negative",): args.negative,
        ("seconds",): args.seconds,
        ("device",): args.device,
        ("threads",): args.threads,
        ("prior", "name"): args.prior,
        ("prior", "model"): args.model,
        ("renderer", "batch_size"): args.particles,
        ("synthesize", "keep_best"): False if args.final else None,
        ("synthesize", "iters"): args.iters,
        ("synthesize", "lr"): args.lr,
        ("synthesize", "seed"): args.seed,
        ("renderer", "seed"): args.seed,
        ("sds", "cfg_scale"): args.cfg,
        ("sds", "mode"): args.mode,
        ("sds", "num_steps"): args.steps,
        ("sds", "num_draws"): args.draws,
        ("loop", "checkpoint_every"): args.checkpoint_every,
    }
    cfg = _layered_config(args, defaults, flags)
    if not isinstance(cfg["prompt"], str) or not cfg["prompt"].strip():
        raise UsageError("--prompt: expected non-empty text")
    if cfg["negative"] is not None and (not isinstance(cfg["negative"], str) or not cfg["negative"].strip()):
        raise UsageError("--negative: expected non-empty text when given")
    seconds = cfg["seconds"]
    if not (isinstance(seconds, int | float) and math.isfinite(seconds) and 0.05 <= seconds <= 60):
        raise UsageError(f"--seconds: expected a length in [0.05, 60] s, got {seconds!r}")
    return cfg


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
        print(f"audiosds: warning: {line}", file=sys.stderr)


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


# -- commands ---------------------------------------------------------------------------


def _run_synth(args: argparse.Namespace) -> int:
    from . import renderers
    from .audio import save_wav, write_text
    from .config import from_dict, to_dict
    from .plots import save_spectrograms
    from .resources import check_memory, estimate_bytes
    from .sds import SDSConfig
    from .tasks.loop import CHECKPOINT_NAME, LoopConfig
    from .tasks.synthesize import SynthesizeConfig, synthesize

    if args.resume is not None:
        args.config, args.out = _resume_config(args)
    cfg = _resolve_synth_config(args)
    if args.resume is None:
        out = _prepare_out_dir(args.out, SYNTH_OUTPUTS, args.force)
    else:
        out = args.out
    _check_device(cfg["device"])
    threads = _use_threads(cfg["threads"])
    try:
        sds_cfg = from_dict(SDSConfig, cfg["sds"], "sds")
        synth_cfg = from_dict(SynthesizeConfig, cfg["synthesize"], "synthesize")
        loop_cfg = from_dict(LoopConfig, cfg["loop"], "loop")
    except ValueError as err:
        raise UsageError(str(err)) from err
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

    resolved = {
        "command": args.command,
        "prompt": cfg["prompt"],
        "negative": cfg["negative"],
        "seconds": float(cfg["seconds"]),
        "device": cfg["device"],
        "threads": threads,
        "prior": cfg["prior"],
        "renderer": renderer_opts,
        "synthesize": to_dict(synth_cfg),
        "sds": to_dict(sds_cfg),
        "loop": to_dict(loop_cfg),
    }
    scorer = _build_scorer(args)
    # written first, so an interrupted run can always be resumed from its folder
    write_text(out / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
    bar = _progress_bar(synth_cfg.iters, args.command, args.quiet)

    shown = _LastValues({"loss": ("loss", ".3g"), "sigma": ("sigma", ".2g"), "score": ("score", ".3f")})

    def on_step(it: int, row: dict[str, float | None]) -> None:
        bar.update(1)
        bar.set_postfix(shown.update(row))

    started = time.perf_counter()
    with _stop_on_signals() as stop:
        if args.resume is not None:
            bar.update(_checkpoint_iteration(out / CHECKPOINT_NAME))
        result = synthesize(
            renderer,
            prior,
            cfg["prompt"],
            synth_cfg,
            sds_cfg,
            negative=cfg["negative"],
            progress=on_step,
            loop=loop_cfg,
            checkpoint=out / CHECKPOINT_NAME,
            resume=args.resume is not None,
            should_stop=stop.is_set,
            scorer=scorer,
        )
    bar.close()
    elapsed = time.perf_counter() - started

    audio = result.audio[0]  # (1, N): the reported render
    save_wav(out / "audio.wav", audio, prior.sample_rate)
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
    if result.status == "completed" and not args.keep_checkpoint:
        (out / CHECKPOINT_NAME).unlink(missing_ok=True)
    return _finish(
        args, result.status, result.message, stop.signal, out, elapsed, len(result.history), summary
    )


def _finish(
    args: argparse.Namespace,
    status: str,
    message: str,
    signum: int | None,
    out: Path,
    elapsed: float,
    done: int,
    summary: str = "",
) -> int:
    """Report how a run ended (``summary``: the prompt scores at start and end); the exit status
    follows it."""
    if status == "stopped":
        name = signal.Signals(signum).name if signum else "a stop request"
        print(
            f"audiosds: interrupted by {name} after {done} iterations; outputs and a checkpoint are in "
            f"{out}; resume with: audiosds {args.command} --resume {out}",
            file=sys.stderr,
        )
        return 128 + (signum or 2)
    if status == "diverged":
        print(
            f"audiosds: error: run abandoned: {message}; the last good outputs are in {out}", file=sys.stderr
        )
        return EXIT_RUNTIME
    if not args.quiet:
        print(
            f"audiosds {args.command}: {done} iterations in {elapsed:.1f} s{summary} -> {out}",
            file=sys.stderr,
        )
    return 0


def _resume_config(args: argparse.Namespace, needs_checkpoint: bool = True) -> tuple[Path, Path]:
    """--resume DIR: the run's own config.yaml and folder; other run options are refused."""
    from .tasks.loop import CHECKPOINT_NAME

    folder: Path = args.resume
    clashes = [flag for flag, value in (("--config", args.config), ("-o", args.out)) if value is not None]
    if clashes:
        raise UsageError(f"--resume: cannot be combined with {', '.join(clashes)} (the run folder has both)")
    for name in ("config.yaml", CHECKPOINT_NAME) if needs_checkpoint else ("config.yaml",):
        if not (folder / name).is_file():
            raise UsageError(f"--resume {folder}: no {name} there (not a run folder, or nothing to resume)")
    return folder / "config.yaml", folder


def _checkpoint_iteration(path: Path) -> int:
    import torch

    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["iteration"])
    except (RuntimeError, KeyError, TypeError, EOFError, OSError, ValueError) as err:
        raise UsageError(f"--resume: {path} is not a usable checkpoint") from err


class _StopFlag:
    """Set by SIGINT / SIGTERM; remembers which signal."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def is_set(self) -> bool:
        return self.signal is not None


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


SEPARATE_OUTPUTS = (
    "mixture_reconstruction.wav",
    "params.json",
    "config.yaml",
    "history.csv",
    "spectrograms.png",
)


def _source_names(num_prompts: int, noise_source: bool) -> list[str]:
    names = [f"source_{k + 1}.wav" for k in range(num_prompts)]
    return [*names, "source_noise.wav"] if noise_source else names


def _resolve_separate_config(args: argparse.Namespace) -> dict[str, Any]:
    """The separate run's settings."""
    from .priors import DEFAULT_PRIOR
    from .tasks.separate import SEPARATION_SDS

    defaults: dict[str, Any] = {
        "command": "separate",
        "mixture": None,
        "prompts": None,
        "negative": None,
        "device": "cpu",
        "threads": None,
        "prior": {"name": DEFAULT_PRIOR},
        "separate": {},
        "sds": dict(SEPARATION_SDS),
        "loop": {},
    }
    flags = {
        ("mixture",): None if args.mixture is None else str(args.mixture),
        ("prompts",): args.prompts,
        ("negative",): args.negatives,
        ("device",): args.device,
        ("threads",): args.threads,
        ("prior", "name"): args.prior,
        ("prior", "model"): args.model,
        ("separate", "iters"): args.iters,
        ("separate", "lr"): args.lr,
        ("separate", "seed"): args.seed,
        ("separate", "gamma"): args.gamma,
        ("separate", "parametrization"): args.sources,
        ("separate", "noise_source"): args.noise_source,
        ("separate", "contrast"): args.contrast,
        ("separate", "sds_modes"): args.sds_modes,
        ("sds", "cfg_scale"): args.cfg,
        ("sds", "num_steps"): args.steps,
        ("loop", "checkpoint_every"): args.checkpoint_every,
    }
    cfg = _layered_config(args, defaults, flags)
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
    return cfg


def _run_separate(args: argparse.Namespace) -> int:
    import numpy as np

    from .audio import AudioError, load_audio, save_wav, write_text
    from .config import from_dict, to_dict
    from .plots import save_spectrograms
    from .resources import check_memory, estimate_bytes
    from .sds import SDSConfig
    from .tasks.loop import LoopConfig
    from .tasks.separate import WINDOWS_NAME, SeparateConfig, check_member_sds, num_windows, separate

    if args.resume is not None:
        if args.mixture is not None:
            raise UsageError("--resume: cannot be combined with a MIXTURE argument (the run folder names it)")
        args.config, args.out = _resume_config(args, needs_checkpoint=False)
    cfg = _resolve_separate_config(args)
    if cfg["mixture"] is None:
        raise UsageError("MIXTURE: an input audio file is required")
    mixture_path = Path(cfg["mixture"])
    try:
        sep_cfg = from_dict(SeparateConfig, cfg["separate"], "separate")
        sds_cfg = from_dict(SDSConfig, cfg["sds"], "sds")
        check_member_sds(sds_cfg)
        loop_cfg = from_dict(LoopConfig, cfg["loop"], "loop")
    except ValueError as err:
        raise UsageError(str(err)) from err
    outputs = (*SEPARATE_OUTPUTS, *_source_names(len(cfg["prompts"]), sep_cfg.noise_source))
    out = _prepare_out_dir(args.out, outputs, args.force) if args.resume is None else args.out
    _check_device(cfg["device"])
    threads = _use_threads(cfg["threads"])
    try:
        mixture, sample_rate = load_audio(mixture_path)  # (C, N)
    except AudioError as err:
        raise UsageError(str(err)) from err
    if float(np.abs(mixture).max()) == 0.0:
        print(
            f"audiosds: warning: {mixture_path} is silent; every source will be silent too", file=sys.stderr
        )
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
    resolved = {
        "command": "separate",
        "mixture": str(mixture_path.resolve()),
        "prompts": cfg["prompts"],
        "negative": cfg["negative"],
        "device": cfg["device"],
        "threads": threads,
        "prior": cfg["prior"],
        "separate": to_dict(sep_cfg),
        "sds": to_dict(sds_cfg),
        "loop": to_dict(loop_cfg),
    }
    scorer = _build_scorer(args)
    write_text(out / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
    total = num_windows(mixture.shape[1], sample_rate, prior, sep_cfg) * sep_cfg.iters
    bar = _progress_bar(total, "separate", args.quiet)

    shown = _LastValues({"rec": ("rec_loss", ".3g"), "sds": ("sds_norm", ".2g")})

    def on_step(step: int, row: dict[str, float | None]) -> None:
        bar.n = step + 1  # global step: a resumed run starts part-way
        bar.set_postfix(shown.update(row))

    started = time.perf_counter()
    with _stop_on_signals() as stop:
        result = separate(
            mixture,
            sample_rate,
            prior,
            cfg["prompts"],
            sep_cfg,
            sds_cfg,
            negative=cfg["negative"],
            progress=on_step,
            loop=loop_cfg,
            should_stop=stop.is_set,
            checkpoint_dir=out,
            resume=args.resume is not None,
            scorer=scorer,
        )
    bar.close()
    elapsed = time.perf_counter() - started

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
    if result.status == "completed" and not args.keep_checkpoint:
        for stale in (out / WINDOWS_NAME, *out.glob("checkpoint_window*.pt")):
            stale.unlink(missing_ok=True)
    summary = _separation_scores(result.history, len(result.prompts))
    return _finish(
        args, result.status, result.message, stop.signal, out, elapsed, len(result.history), summary
    )


def _separation_scores(history: list[dict[str, float | None]], sources: int) -> str:
    """'; prompt scores a -> b, c -> d': per source, the first and last score of each window,
    averaged over the windows ('' without scores)."""
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


def _resolve_generate_config(args: argparse.Namespace) -> dict[str, Any]:
    """The generate run's settings: defaults < --config (a previous OUT.json) < flags."""
    from .priors import DEFAULT_PRIOR
    from .tasks.generate import GenerateConfig

    defaults: dict[str, Any] = {
        "command": "generate",
        "prompt": None,
        "negative": None,
        "seconds": GenerateConfig.seconds,
        "seed": GenerateConfig.seed,
        "steps": GenerateConfig.steps,
        "cfg": GenerateConfig.cfg_scale,
        "sampler": GenerateConfig.method,
        "device": "cpu",
        "threads": None,
        "prior": {"name": DEFAULT_PRIOR},
        "version": None,  # written for the record; any version's file is read
        "sample_rate": None,  # written for the record; the prior decides it
    }
    flags = {
        ("prompt",): args.prompt,
        ("negative",): args.negative,
        ("seconds",): args.seconds,
        ("seed",): args.seed,
        ("steps",): args.steps,
        ("cfg",): args.cfg,
        ("sampler",): args.method,
        ("device",): args.device,
        ("threads",): args.threads,
        ("prior", "name"): args.prior,
        ("prior", "model"): args.model,
    }
    cfg = _layered_config(args, defaults, flags)
    if not isinstance(cfg["prompt"], str) or not cfg["prompt"].strip():
        raise UsageError("--prompt: expected non-empty text")
    if cfg["negative"] is not None and (not isinstance(cfg["negative"], str) or not cfg["negative"].strip()):
        raise UsageError("--negative: expected non-empty text when given")
    seconds = cfg["seconds"]
    if not (isinstance(seconds, int | float) and math.isfinite(seconds) and 0.05 <= seconds <= 60):
        raise UsageError(f"--seconds: expected a length in [0.05, 60] s, got {seconds!r}")
    return cfg


def _run_generate(args: argparse.Namespace) -> int:
    from .audio import save_wav, write_text
    from .plots import save_spectrograms
    from .resources import check_memory, estimate_bytes
    from .tasks.generate import GenerateConfig, generate

    cfg = _resolve_generate_config(args)
    try:
        gen_cfg = GenerateConfig(
            seconds=float(cfg["seconds"]),
            steps=cfg["steps"],
            cfg_scale=float(cfg["cfg"]),
            method=cfg["sampler"],
            seed=cfg["seed"],
        )
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from err
    out = _prepare_out_file(args.out, args.force)
    _check_device(cfg["device"])
    threads = _use_threads(cfg["threads"])
    prior = _build_prior(cfg["prior"], cfg["device"])
    _warn_uncovered(prior, [cfg["prompt"]], cfg["prior"]["name"])
    check_memory(
        estimate_bytes(2, round(gen_cfg.seconds * prior.sample_rate), prior.channels), "this generation"
    )
    bar = _progress_bar(gen_cfg.steps, "generate", args.quiet)
    audio = generate(
        prior, cfg["prompt"], gen_cfg, negative=cfg["negative"], progress=lambda i: bar.update(1)
    )
    bar.close()
    save_wav(out, audio, prior.sample_rate)
    sidecar = {
        "command": "generate",
        "prompt": cfg["prompt"],
        "negative": cfg["negative"],
        "seconds": gen_cfg.seconds,
        "seed": gen_cfg.seed,
        "steps": gen_cfg.steps,
        "cfg": gen_cfg.cfg_scale,
        "sampler": gen_cfg.method,
        "device": cfg["device"],
        "threads": threads,
        "prior": cfg["prior"],
        "version": __version__,
        "sample_rate": prior.sample_rate,
    }
    write_text(out.with_suffix(".json"), json.dumps(sidecar, indent=2) + "\n")
    save_spectrograms(out.with_suffix(".png"), [(cfg["prompt"][:60], audio.numpy())], prior.sample_rate)
    if not args.quiet:
        print(
            f"audiosds generate: {gen_cfg.seconds:g} s at {prior.sample_rate} Hz -> {out} "
            f"(settings: {out.with_suffix('.json')}, spectrogram: {out.with_suffix('.png')})",
            file=sys.stderr,
        )
    return 0


COMMANDS = {"fm": _run_synth, "impact": _run_synth, "separate": _run_separate, "generate": _run_generate}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 runtime failure, 2 usage error)."""
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    # model-loading progress bars and notices from the Hugging Face libraries would bury ours
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        return COMMANDS[args.command](args)
    except UsageError as err:
        if debug:
            raise
        print(f"audiosds: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("audiosds: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError, MemoryError) as err:
        if debug:
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"audiosds: error: {message}", file=sys.stderr)
        return EXIT_RUNTIME


if __name__ == "__main__":
    sys.exit(main())
