"""Prompt-suggestion benchmark (issue 30, "Must show": suggest).

    python benchmarks/suggest.py [--world 30] [--esc 30] [--seed 0] [--separate 0]

Mixtures, each two sources at equal RMS:

- world: two distinct held-out world families (``render_clip(..., split="heldout")``, 4 s), the
  families drawn from the seed;
- esc: two held-out ESC-10 clips (fold 5) of distinct classes, their first 5 s (needs the sounds
  folder; skipped without it).

For each mixture ``suggest`` ranks every class (:func:`audiosds.tasks.suggest.candidates`); a
mixture counts when both true classes are among the top 3 (ESC classes through ``SAME_AS``, e.g.
fire_crackling is the world's fire). Also reported: either class in the top 3, and the true
classes' mean rank. Target: both in the top 3 for >= 80% of the mixtures.

``--separate K``: the first K mixtures of each kind are also separated (the prior's default
separation) with the true prompts and with ``auto:2`` (the top 2 suggestions), mean SI-SDR
improvement over the mixture of each. Target: suggested within 1 dB of true.
Prints markdown.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..audio import load_audio, resample
from ..metrics import si_sdr
from ..priors import build
from ..scorer import build_scorer
from ..tasks.separate import separate
from ..tasks.suggest import SAME_AS, SuggestConfig, Suggester
from ..world import FAMILIES, render_clip
from ..world.real import load_catalogue
from . import log

SOUNDS_DIR = (
    Path(__file__).resolve().parents[4] / "shared/data/sounds"
)  # <repo>/src/audiosds/bench/ -> <repo>/..
WORLD_SECONDS, ESC_SECONDS = 4.0, 5.0
RATE = 16000  # the scorer's rate


def equal_rms(sources: list[np.ndarray]) -> np.ndarray:
    return np.stack([s * (0.1 / (np.sqrt(np.mean(s**2)) + 1e-9)) for s in sources]).astype(np.float32)


def world_mixtures(count: int, seed: int, sample_rate: int) -> list[tuple[tuple[str, str], np.ndarray]]:
    rng = np.random.default_rng(seed)
    families = sorted(FAMILIES)
    out = []
    for i in range(count):
        pair = tuple(str(f) for f in rng.choice(families, 2, replace=False))
        clips = [
            render_clip(f, 5000 + 2 * i + k, WORLD_SECONDS, sample_rate, split="heldout").audio
            for k, f in enumerate(pair)
        ]
        out.append((pair, equal_rms(clips)))
    return out


def esc_mixtures(
    count: int, seed: int, sample_rate: int, data: Path
) -> list[tuple[tuple[str, str], np.ndarray]]:
    clips: dict[str, list[Path]] = {}
    for clip in load_catalogue(data):
        if clip.split == "heldout" and clip.path.parts[-3] == "esc10":
            clips.setdefault(clip.cls, []).append(clip.path)
    classes = sorted(clips)
    rng = np.random.default_rng(seed + 1)
    n = round(ESC_SECONDS * sample_rate)
    out = []
    for _ in range(count):
        pair = tuple(str(c) for c in rng.choice(classes, 2, replace=False))
        sources = []
        for cls in pair:
            path = sorted(clips[cls])[int(rng.integers(len(clips[cls])))]
            audio, sr = load_audio(path)
            mono = resample(audio, sr, sample_rate).mean(axis=0)
            sources.append(np.pad(mono[:n], (0, max(0, n - mono.shape[0]))))
        out.append((tuple(SAME_AS.get(c, c) for c in pair), equal_rms(sources)))
    return out


def rank_section(
    suggester: Suggester, title: str, mixtures: list, window: float = SuggestConfig.window_seconds
) -> tuple[list[str], list[dict]]:
    names = [c.name for c in suggester.classes]
    rows, lines = (
        [],
        [f"### {title}", "", "| true classes | top 3 suggested | both in top 3 |", "|---|---|---|"],
    )
    for pair, sources in mixtures:
        result = suggester(sources.sum(axis=0), RATE, SuggestConfig(top=len(names), window_seconds=window))
        order = [s.name for s in result.overall]
        top = order[:3]
        both = all(c in top for c in pair)
        rows.append(
            {"both": both, "either": any(c in top for c in pair), "ranks": [order.index(c) + 1 for c in pair]}
        )
        lines.append(f"| {' + '.join(pair)} | {', '.join(top)} | {'yes' if both else 'no'} |")
    n = len(rows)
    both = sum(r["both"] for r in rows)
    lines += [
        "",
        f"Both true classes in the top 3: {both} of {n} ({100 * both / n:.0f}%); either: "
        f"{sum(r['either'] for r in rows)} of {n}; mean rank of a true class "
        f"{np.mean([k for r in rows for k in r['ranks']]):.1f} of {len(names)}.",
        "",
    ]
    return lines, rows


def separation_section(args: argparse.Namespace, suggester: Suggester, mixtures: list) -> list[str]:
    prior = build(args.prior)
    lines = [
        "### Separation with suggested vs true prompts",
        "",
        "| mixture | true prompts | gain (dB) | suggested | gain (dB) |",
        "|---|---|---|---|---|",
    ]
    prompt_of = {c.name: c.prompt for c in suggester.classes}
    gains = {"true": [], "suggested": []}
    for pair, sources in mixtures:
        sources = np.stack([resample(s[None], RATE, prior.sample_rate)[0] for s in sources])
        mixture = sources.sum(axis=0, keepdims=True)
        found = suggester(mixture[0], prior.sample_rate, SuggestConfig(top=2, window_seconds=args.window))
        suggested = [s.prompt for s in found.overall]
        row = []
        for label, prompts in (("true", [prompt_of[c] for c in pair]), ("suggested", suggested)):
            result = separate(mixture, prior.sample_rate, prior, prompts)
            est = result.sources[:, 0, :]
            # suggested prompts come in any order: the true sources against the estimates in the
            # order (permutation) that scores best
            scores = np.array([[float(si_sdr(e, s)) for e in est] for s in sources])
            base = np.array([float(si_sdr(mixture[0], s)) for s in sources])
            best = max(
                itertools.permutations(range(len(est)), len(sources)),
                key=lambda o: scores[range(len(sources)), o].sum(),
            )
            gain = float(np.mean(scores[range(len(sources)), best] - base))
            gains[label].append(gain)
            row += [" / ".join(prompts), f"{gain:+.2f}"]
        lines.append(f"| {' + '.join(pair)} | " + " | ".join(row) + " |")
        print(lines[-1], flush=True)
    t, s = np.mean(gains["true"]), np.mean(gains["suggested"])
    diff = np.subtract(gains["suggested"], gains["true"])
    lines += [
        "",
        f"Mean SI-SDR gain: true prompts {t:+.2f} dB, suggested {s:+.2f} dB (difference {s - t:+.2f} dB); "
        f"medians {np.median(gains['true']):+.2f} and {np.median(gains['suggested']):+.2f} dB; suggested "
        f"within 1 dB of true or better for {int(np.sum(diff >= -1.0))} of {len(diff)} mixtures.",
        "",
    ]
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", type=int, default=30, help="world mixtures")
    parser.add_argument("--esc", type=int, default=30, help="ESC-10 fold-5 mixtures (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--window", type=float, default=SuggestConfig.window_seconds, help="suggest's window length (s)"
    )
    parser.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="scorer weights folder that ranks the classes (default: the shipped suggestion model)",
    )
    parser.add_argument("--separate", type=int, default=0, help="mixtures of each kind also separated")
    parser.add_argument("--prior", default="embedded-mel", help="the prior of --separate")
    parser.add_argument("--sounds", type=Path, default=SOUNDS_DIR)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    cmd = "python benchmarks/suggest.py " + " ".join(sys.argv[1:] if argv is None else argv)
    suggester = Suggester(
        None if args.weights is None else build_scorer("embedded", weights_dir=str(args.weights))
    )
    lines = ["## Prompt suggestion", "", f"Command: `{cmd}`; {args.threads} thread(s).", ""]
    kinds = [("World pairs (held-out clips)", world_mixtures(args.world, args.seed, RATE))]
    if args.esc and (args.sounds / "manifest.csv").is_file():
        kinds.append(("ESC-10 fold-5 pairs", esc_mixtures(args.esc, args.seed, RATE, args.sounds)))
    elif args.esc:
        log.warning(f"ESC-10 pairs skipped: no {args.sounds / 'manifest.csv'}")
    total = both = 0
    for title, mixtures in kinds:
        section, rows = rank_section(suggester, title, mixtures, args.window)
        lines += section
        print("\n".join(section), flush=True)
        total, both = total + len(rows), both + sum(r["both"] for r in rows)
    lines.append(
        f"All: both true classes in the top 3 for {both} of {total} mixtures "
        f"({100 * both / max(total, 1):.0f}%)."
    )
    print(lines[-1], flush=True)
    if args.separate:
        picked = [m for _, mixtures in kinds for m in mixtures[: args.separate]]
        lines += ["", *separation_section(args, suggester, picked)]
    lines.append(f"Time: {time.perf_counter() - started:.0f} s.")
    print(lines[-1])
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")
