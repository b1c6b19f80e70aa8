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
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from . import __version__

EXIT_RUNTIME = 1
EXIT_USAGE = 2

SYNTH_OUTPUTS = ("audio.wav", "params.json", "config.yaml", "history.csv", "spectrogram.png", "checkpoint.pt")


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


def _add_common(p: argparse.ArgumentParser, one_prompt: bool = True) -> None:
    from .priors import PRIORS

    if one_prompt:
        p.add_argument("--prompt", help="text prompt the result should match")
        p.add_argument("--negative", help="negative prompt (replaces the unconditional CFG branch)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--prior", choices=sorted(PRIORS), help="diffusion prior backend")
    p.add_argument("--model", help="model folder or Hugging Face id (stable-audio-open)")
    p.add_argument("--cfg", type=_finite_float, help="classifier-free guidance scale")
    p.add_argument(
        "--device", choices=("cpu", "cuda"), help="device for the prior and renderer (default cpu)"
    )
    p.add_argument("--config", type=Path, help="YAML config (e.g. a previous run's config.yaml)")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    p.add_argument("--no-score", action="store_true", help="skip the prompt score in history.csv")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="audiosds", description="Score Distillation Sampling for audio.")
    parser.add_argument("--version", action="version", version=f"audiosds {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name, what in (("fm", "an FM synthesizer"), ("impact", "a modal impact model")):
        p = sub.add_parser(name, help=f"tune {what} toward a prompt", description=f"Tune {what} by SDS.")
        _add_common(p)
        p.add_argument("--iters", type=_positive_int, help="optimisation steps (default 300)")
        p.add_argument("--lr", type=_finite_float, help="Adam learning rate on raw parameters")
        p.add_argument("--seconds", type=_finite_float, help="length of the sound in seconds (default 1)")
        p.add_argument("--mode", choices=("decoder", "spectral", "latent"), help="SDS update rule")
        p.add_argument("--steps", type=_positive_int, help="K denoising steps per SDS iteration")
        p.add_argument("--draws", type=_positive_int, help="independent noise draws per iteration")
        p.add_argument("-o", "--out", type=Path, help="output folder")
        p.add_argument("--force", action="store_true", help="replace this tool's files in an existing folder")
        p.add_argument("--resume", type=Path, metavar="DIR", help="continue an interrupted run in its folder")
        p.add_argument(
            "--checkpoint-every", type=int, metavar="N", help="iterations between checkpoints (50)"
        )
    p = sub.add_parser(
        "separate",
        help="split a recording into prompt-named sources",
        description="Separate by SDS (eq. 13).",
    )
    p.add_argument("mixture", type=Path, nargs="?", help="audio file (WAV, FLAC, OGG, ...)")
    _add_common(p, one_prompt=False)
    p.add_argument(
        "--prompt", action="append", dest="prompts", help="one per source, 2 to 8 (repeat the flag)"
    )
    p.add_argument(
        "--negative", action="append", dest="negatives", help="per-source negative prompts (0 or K)"
    )
    p.add_argument("--iters", type=_positive_int, help="iterations per window (default 100)")
    p.add_argument("--lr", type=_finite_float, help="Adam learning rate")
    p.add_argument("--gamma", type=_finite_float, help="SDS weight against the reconstruction loss")
    p.add_argument(
        "--sources",
        choices=("latent", "remasked", "masks"),
        help="source parametrization (default: remasked)",
    )
    p.add_argument("--noise-source", action="store_true", default=None, help="add a catch-all 'noise' source")
    p.add_argument(
        "--contrast",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a source without --negative uses the other sources' prompts as its negative prompt",
    )
    p.add_argument(
        "--sds-modes",
        nargs="+",
        choices=("decoder", "spectral", "latent"),
        help="one set of sources per SDS mode, averaged (default: decoder latent)",
    )
    p.add_argument("--steps", type=_positive_int, help="K denoising steps per SDS iteration")
    p.add_argument("-o", "--out", type=Path, help="output folder")
    p.add_argument("--force", action="store_true", help="replace this tool's files in an existing folder")
    p.add_argument("--resume", type=Path, metavar="DIR", help="continue an interrupted run in its folder")
    p.add_argument("--checkpoint-every", type=int, metavar="N", help="iterations between checkpoints (50)")
    p = sub.add_parser("generate", help="text-to-audio with the prior alone", description="Generate audio.")
    _add_common(p)
    p.add_argument("--seconds", type=_finite_float, help="length in seconds (default 2)")
    p.add_argument("--steps", type=_positive_int, help="sampler steps (default 30)")
    p.add_argument("--method", choices=("ddim", "heun", "dpmpp_2m"), help="deterministic sampler")
    p.add_argument("-o", "--out", type=Path, help="output WAV file")
    p.add_argument("--force", action="store_true", help="replace an existing output file")
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
        "prior": {"name": DEFAULT_PRIOR},
        "renderer": {},
        "synthesize": {},
        "sds": dict(SYNTHESIS_SDS),
        "loop": {},
    }
    flags = {
        ("prompt",): args.prompt,
        ("negative",): args.negative,
        ("seconds",): args.seconds,
        ("device",): args.device,
        ("prior", "name"): args.prior,
        ("prior", "model"): args.model,
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
    if out.exists() and not force:
        raise UsageError(f"-o {out}: already exists; use --force to replace it")
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


def _progress_bar(total: int, desc: str, quiet: bool):  # noqa: ANN202
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, unit="it", file=sys.stderr, disable=quiet, dynamic_ncols=True, leave=False
    )


# -- writing results --------------------------------------------------------------------


def _history_csv(history: list[dict[str, float]]) -> str:
    buf = io.StringIO()
    if history:
        writer = csv.DictWriter(buf, fieldnames=list(history[0]), lineterminator="\n")
        writer.writeheader()
        for row in history:
            writer.writerow({k: (int(v) if k == "iter" else f"{v:.6g}") for k, v in row.items()})
    return buf.getvalue()


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
    try:
        sds_cfg = from_dict(SDSConfig, cfg["sds"], "sds")
        synth_cfg = from_dict(SynthesizeConfig, cfg["synthesize"], "synthesize")
        loop_cfg = from_dict(LoopConfig, cfg["loop"], "loop")
    except ValueError as err:
        raise UsageError(str(err)) from err
    prior = _build_prior(cfg["prior"], cfg["device"])
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

    def on_step(it: int, row: dict[str, float]) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{row['loss']:.3g}", sigma=f"{row['sigma']:.2g}")

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

    audio = result.audio[0]  # (1, N): the first (only) instance
    save_wav(out / "audio.wav", audio, prior.sample_rate)
    params = {
        "renderer": args.command,
        "prompt": cfg["prompt"],
        "sample_rate": prior.sample_rate,
        "iterations": len(result.history),
        "params": result.params,
    }
    write_text(out / "params.json", json.dumps(params, indent=2) + "\n")
    write_text(out / "history.csv", _history_csv(result.history))
    save_spectrograms(
        out / "spectrogram.png",
        [("before", result.initial_audio[0].numpy()), (f"after: {cfg['prompt'][:40]}", audio.numpy())],
        prior.sample_rate,
    )
    return _finish(args, result.status, result.message, stop.signal, out, elapsed, len(result.history))


def _finish(
    args: argparse.Namespace,
    status: str,
    message: str,
    signum: int | None,
    out: Path,
    elapsed: float,
    done: int,
) -> int:
    """Report how a run ended; the exit status follows it."""
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
        print(f"audiosds {args.command}: {done} iterations in {elapsed:.1f} s -> {out}", file=sys.stderr)
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
    try:
        mixture, sample_rate = load_audio(mixture_path)  # (C, N)
    except AudioError as err:
        raise UsageError(str(err)) from err
    if float(np.abs(mixture).max()) == 0.0:
        print(
            f"audiosds: warning: {mixture_path} is silent; every source will be silent too", file=sys.stderr
        )
    prior = _build_prior(cfg["prior"], cfg["device"])
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
        "prior": cfg["prior"],
        "separate": to_dict(sep_cfg),
        "sds": to_dict(sds_cfg),
        "loop": to_dict(loop_cfg),
    }
    scorer = _build_scorer(args)
    write_text(out / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
    total = num_windows(mixture.shape[1], sample_rate, prior, sep_cfg) * sep_cfg.iters
    bar = _progress_bar(total, "separate", args.quiet)

    def on_step(step: int, row: dict[str, float]) -> None:
        bar.n = step + 1  # global step: a resumed run starts part-way
        bar.set_postfix(rec=f"{row['rec_loss']:.3g}", sds=f"{row['sds_norm']:.2g}")

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
    if result.status == "completed":
        for stale in (out / WINDOWS_NAME, *out.glob("checkpoint_window*.pt")):
            stale.unlink(missing_ok=True)
    return _finish(args, result.status, result.message, stop.signal, out, elapsed, len(result.history))


def _run_generate(args: argparse.Namespace) -> int:
    from .audio import save_wav
    from .priors import DEFAULT_PRIOR
    from .resources import check_memory, estimate_bytes
    from .tasks.generate import GenerateConfig, generate

    if args.config is not None:
        raise UsageError("--config: not supported by 'generate'; pass options as flags")
    if not args.prompt or not args.prompt.strip():
        raise UsageError("--prompt: expected non-empty text")
    if args.negative is not None and not args.negative.strip():
        raise UsageError("--negative: expected non-empty text when given")
    seconds = 2.0 if args.seconds is None else args.seconds
    if not 0.05 <= seconds <= 60:
        raise UsageError(f"--seconds: expected a length in [0.05, 60] s, got {seconds!r}")
    options: dict[str, Any] = {"seconds": seconds}
    for key, value in (
        ("steps", args.steps),
        ("cfg_scale", args.cfg),
        ("method", args.method),
        ("seed", args.seed),
    ):
        if value is not None:
            options[key] = value
    try:
        gen_cfg = GenerateConfig(**options)
    except ValueError as err:
        raise UsageError(str(err)) from err
    out = _prepare_out_file(args.out, args.force)
    device = args.device or "cpu"
    _check_device(device)
    prior_cfg: dict[str, Any] = {"name": args.prior or DEFAULT_PRIOR}
    if args.model is not None:
        prior_cfg["model"] = args.model
    prior = _build_prior(prior_cfg, device)
    check_memory(estimate_bytes(2, round(seconds * prior.sample_rate), prior.channels), "this generation")
    bar = _progress_bar(gen_cfg.steps, "generate", args.quiet)
    audio = generate(prior, args.prompt, gen_cfg, negative=args.negative, progress=lambda i: bar.update(1))
    bar.close()
    save_wav(out, audio, prior.sample_rate)
    if not args.quiet:
        print(f"audiosds generate: {seconds:g} s at {prior.sample_rate} Hz -> {out}", file=sys.stderr)
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
