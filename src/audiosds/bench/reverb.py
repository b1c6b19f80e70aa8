"""Reverb benchmarks (issue 30, "Must show": reverb).

    python benchmarks/reverb.py plates [--iters 300] [--seconds 1.0] [--irs 15]
    python benchmarks/reverb.py prompts [--seeds 3] [--iters 150] [--particles 1] [--weights DIR]

``plates``: can the room represent real reverbs? Each plate impulse response of the sounds folder
(EMT 140, 15 responses) is convolved with a dry clip (a held-out world snare hit, ``--seconds``
long, then silence for the response's tail), and the room is fitted to the result by plain
multiscale-STFT matching (Adam on the raw parameters, linear and log magnitudes; no prompt). The
fitted mid-band RT60 (mean of the 500 Hz and 1 kHz octaves of the fitted response, by Schroeder
integration) is compared with the response's own; the target is within 20%.

``prompts``: does SDS order rooms as words do? For each pair of contrasting prompts (the smaller
room first) and seed, ``fit_room`` tunes the room on a dry clip (a held-out world clip, seed-drawn
family among ``DRY_FAMILIES``) for each prompt of the pair; the pair is ordered right when the
larger room's fitted mid-band RT60 (parameters, mean of the 500 Hz and 1 kHz bands) is the longer.
Each run's mid RT60 is recorded per particle after every iteration, so one run counts several
ways of choosing the room (``RULES``): the reported room (the best-scoring iterate), particle 0's
last iterate, the particles' last iterates averaged, and the same averaged over the last third of
the iterations (geometric means). Target: 90%. With ``--out``, the traces go beside the report
(``.json``).
Prints markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..acoustics import mid_rt60
from ..audio import load_audio, resample
from ..priors import build
from ..renderers.reverb import ReverbConfig, ReverbRenderer
from ..scorer import build_scorer
from ..sds import SDSConfig
from ..spectral import multiscale_spectral_loss
from ..tasks.reverb import room_renderer
from ..tasks.synthesize import SynthesizeConfig, synthesis_sds, synthesize
from ..world import render_clip
from ..world.real import impulse_response_paths
from . import log
from .keys import overrides, prior_options

SOUNDS_DIR = (
    Path(__file__).resolve().parents[4] / "shared/data/sounds"
)  # <repo>/src/audiosds/bench/ -> <repo>/..
PAIRS = (  # (smaller / drier room, larger / more reverberant room)
    ("in a small dry room", "in a huge cathedral"),
    ("in an open field", "in a tiled bathroom"),
    ("recorded close in a dry studio", "in a large concert hall"),
    ("in a tiny bedroom", "in a vast stone hall"),
    ("completely dry, no reverb", "with a long reverb"),
)
DRY_FAMILIES = ("snare", "pluck", "wood", "bell", "clock")
FIT_RATE = 16000  # plates: the fitting rate (every octave to 4 kHz)


def mid_band(values: torch.Tensor, centres: tuple[float, ...]) -> float:
    """The mean RT60 of the 500 Hz and 1 kHz bands of a (nb,) RT60 vector."""
    return float(np.mean([float(values[centres.index(c)]) for c in (500.0, 1000.0)]))


# -- plates ----------------------------------------------------------------------------------------


def fit_plate(ir: np.ndarray, dry: np.ndarray, args: argparse.Namespace) -> tuple[float, float, float]:
    """Fit the room to ``dry`` through ``ir`` by multiscale-STFT matching.

    Returns:
        (the response's measured mid RT60, the fitted room's mid RT60 parameter, the fitted
        response's measured mid RT60), seconds.
    """
    n = dry.shape[0] + ir.shape[0]
    target = np.pad(np.convolve(dry, ir), (0, 1))[:n]
    padded = np.pad(dry, (0, n - dry.shape[0]))
    target = target * np.sqrt(np.mean(padded**2) / np.mean(target**2))
    config = ReverbConfig(
        sample_rate=FIT_RATE, seconds=n / FIT_RATE, ir_seconds=ir.shape[0] / FIT_RATE, seed=args.seed
    )
    renderer = ReverbRenderer(config, torch.from_numpy(padded.astype(np.float32)))
    reference = torch.from_numpy(target.astype(np.float32))[None, None]
    opt = torch.optim.Adam(renderer.parameters(), lr=args.lr)
    for _ in range(args.iters):
        opt.zero_grad()
        loss = multiscale_spectral_loss(renderer(), reference, log_weight=1.0)
        loss.backward()
        opt.step()
    with torch.no_grad():
        params = renderer.params()
        fitted = renderer.impulse_response(params)[0].numpy()
    centres = config.band_centres_hz
    return mid_rt60(ir, FIT_RATE), mid_band(params["rt60_s"][0], centres), mid_rt60(fitted, FIT_RATE)


def plates(args: argparse.Namespace) -> list[str]:
    paths = impulse_response_paths(args.sounds)[: args.irs]
    clip = render_clip("snare", 7, max(0.5, args.seconds), FIT_RATE, split="heldout").audio
    dry = clip[: round(args.seconds * FIT_RATE)]
    lines = [
        "| impulse response | measured mid RT60 (s) | fitted (parameter) | fitted (measured) | error |",
        "|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    errors = []
    for path in paths:
        audio, sr = load_audio(path)
        ir = resample(audio, sr, FIT_RATE).mean(axis=0)
        started = time.perf_counter()
        truth, param, measured = fit_plate(ir, dry, args)
        errors.append(param / truth - 1)
        row = f"| {path.stem} | {truth:.2f} | {param:.2f} | {measured:.2f} | {100 * errors[-1]:+.0f}% |"
        print(row, flush=True)
        log.info(f"{path.stem}: {time.perf_counter() - started:.0f} s")
        lines.append(row)
    within = sum(abs(e) <= 0.2 for e in errors)
    lines += [
        "",
        f"Within 20% of the measured mid-band RT60: {within} of {len(errors)}; "
        f"mean |error| {100 * np.mean(np.abs(errors)):.1f}%.",
    ]
    return lines


# -- prompts ---------------------------------------------------------------------------------------


# how the room a run reports can be chosen from one run: name -> (mid RT60 per iteration per
# particle (T, B), the scorer's best iterate's mid RT60) -> mid RT60
TAIL = 1 / 3  # the tail averages: the last third of the iterations


def _tail(trace: np.ndarray) -> np.ndarray:
    return trace[-max(1, round(TAIL * trace.shape[0])) :]


RULES = {
    "reported": lambda trace, best: best,
    "last, particle 0": lambda trace, best: float(trace[-1, 0]),
    "last, mean of particles": lambda trace, best: float(np.exp(np.log(trace[-1]).mean())),
    "tail mean, particle 0": lambda trace, best: float(np.exp(np.log(_tail(trace)[:, 0]).mean())),
    "tail mean of particles": lambda trace, best: float(np.exp(np.log(_tail(trace)).mean())),
}


def prompts(args: argparse.Namespace) -> list[str]:
    prior = build(args.prior, **prior_options(args.prior, args.model))
    scorer = build_scorer("embedded")
    synth = SynthesizeConfig(iters=args.iters)
    sds = synthesis_sds(prior, **overrides(args.sds, SDSConfig, "--sds"))
    lines = [
        "| pair (small, large) | seed | dry | mid RT60 small (s) | large | ordered | last iterates "
        "| ordered |",
        "|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    right = dict.fromkeys(RULES, 0)
    total = 0
    traces = []
    for small, large in PAIRS[: args.pairs]:
        for seed in range(args.seed, args.seed + args.seeds):
            family = DRY_FAMILIES[seed % len(DRY_FAMILIES)]
            dry = render_clip(family, 100 + seed, args.seconds, prior.sample_rate, split="heldout").audio
            fitted = {}
            for words in (small, large):
                started = time.perf_counter()
                renderer = room_renderer(
                    dry[None],
                    prior.sample_rate,
                    prior.sample_rate,
                    {"batch_size": args.particles, "seed": seed},
                    args.seconds,
                )
                centres = renderer.config.band_centres_hz
                trace: list[list[float]] = []

                def record(it: int, row: dict, renderer=renderer, centres=centres, trace=trace) -> None:
                    rt60 = renderer.params()["rt60_s"].detach()
                    trace.append([mid_band(r, centres) for r in rt60])

                result = synthesize(
                    renderer,
                    prior,
                    f"{family.replace('_', ' ')} {words}",
                    replace(synth, seed=seed),
                    sds,
                    negative=family.replace("_", " ") if args.negative_source else None,
                    scorer=scorer,
                    progress=record,
                )
                best = mid_band(torch.tensor(result.params["rt60_s"]["value"][0]), centres)
                per_iteration = np.array(trace)  # (iterations, particles)
                fitted[words] = {name: rule(per_iteration, best) for name, rule in RULES.items()}
                traces.append(
                    {"prompt": words, "seed": seed, "family": family, "reported": best, "mid_rt60": trace}
                )
                log.info(f"{words!r} seed {seed}: {time.perf_counter() - started:.0f} s")
            ok = {name: fitted[large][name] > fitted[small][name] for name in RULES}
            right = {name: right[name] + ok[name] for name in RULES}
            total += 1
            first, last = "reported", "last, particle 0"
            row = (
                f"| {small} / {large} | {seed} | {family} | {fitted[small][first]:.2f} | "
                f"{fitted[large][first]:.2f} | {'yes' if ok[first] else 'no'} | "
                f"{fitted[small][last]:.2f} / {fitted[large][last]:.2f} | {'yes' if ok[last] else 'no'} |"
            )
            print(row, flush=True)
            lines.append(row)
    lines += ["", "| the room counted | ordered as expected |", "|---|---|"]
    lines += [f"| {name} | {n} of {total} ({100 * n / total:.0f}%) |" for name, n in right.items()]
    lines.append("")
    print("\n".join(lines[-len(RULES) - 4 :]), flush=True)
    if args.out is not None:
        args.out.with_suffix(".json").write_text(json.dumps(traces))
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("section", choices=("plates", "prompts"))
    parser.add_argument("--prior", default="embedded-mel")
    parser.add_argument(
        "--weights", "--model", dest="model", default=None, help="prompts: the prior's weights / model"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iters", type=int, default=None, help="plates: 300; prompts: 150")
    parser.add_argument("--lr", type=float, default=0.05, help="plates: Adam step size")
    parser.add_argument("--seconds", type=float, default=None, help="dry clip length (plates 0.5, prompts 2)")
    parser.add_argument("--irs", type=int, default=15, help="plates: how many responses")
    parser.add_argument("--seeds", type=int, default=3, help="prompts: seeds per pair")
    parser.add_argument("--pairs", type=int, default=len(PAIRS), help="prompts: how many pairs")
    parser.add_argument("--particles", type=int, default=1, help="prompts: rooms tuned side by side")
    parser.add_argument("--sds", nargs="+", metavar="NAME=VALUE", help="prompts: SDSConfig fields")
    parser.add_argument(
        "--negative-source",
        action="store_true",
        help="prompts: the dry sound's name (the prompt without its room words) as the negative prompt",
    )
    parser.add_argument("--sounds", type=Path, default=SOUNDS_DIR, help="plates: the sounds folder")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.iters is None:
        args.iters = 300 if args.section == "plates" else 150
    if args.seconds is None:
        args.seconds = 0.5 if args.section == "plates" else 2.0
    if args.section == "plates" and not (args.sounds / "manifest.csv").is_file():
        parser.error(f"--sounds {args.sounds}: no manifest.csv there")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    cmd = "python benchmarks/reverb.py " + " ".join(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    title = "Reverb: fitted to plate responses" if args.section == "plates" else "Reverb: contrasting prompts"
    print(f"## {title}\n\nCommand: `{cmd}`; {args.threads} thread(s).\n", flush=True)
    lines = plates(args) if args.section == "plates" else prompts(args)
    lines.append(f"Time: {time.perf_counter() - started:.0f} s.")
    print(lines[-1])
    if args.out is not None:
        args.out.write_text("\n".join([f"## {title}", "", f"Command: `{cmd}`.", "", *lines]) + "\n")
