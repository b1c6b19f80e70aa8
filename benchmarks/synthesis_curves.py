"""Synthesis curves: prompt score over SDS iterations (Audio-SDS arXiv 2505.04621 sec. 4.1, eqs. 5-6).

For the FM and impact renderers, the paper's prompts ("kick drum, bass, reverb", "hitting pot
with wooden spoon", "bass drum, low pitched") and two more ("sharp metallic clang", "a warm bass
note"), over ``--seeds`` seeds (renderer init and SDS noise): the prompt score (cosine in the
scorer's audio-text space) at initialisation and at the end of each run, the fraction of runs
where it rose (target >= 80%), and a PNG of every curve.

    python benchmarks/synthesis_curves.py --prior embedded --seeds 5 --out synthesis.md --plot synthesis.png

Prints markdown (timings included) and writes it to ``--out``; a progress bar goes to stderr.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from audiosds.priors import MODEL_FIELD, Prior, build
from audiosds.renderers import build as build_renderer
from audiosds.scorer import PromptScorer, build_scorer
from audiosds.sds import SDSConfig
from audiosds.tasks.synthesize import SynthesizeConfig, synthesize

RENDERERS = ("fm", "impact")
PROMPTS = (
    "kick drum, bass, reverb",
    "hitting pot with wooden spoon",
    "bass drum, low pitched",
    "sharp metallic clang",
    "a warm bass note",
)
TARGET_RISE = 0.8  # the target: the score rises in at least 80% of runs


@dataclass(frozen=True)
class Run:
    """One synthesis run: its curve (iteration, score) and the scores of the initial and final audio."""

    renderer: str
    prompt: str
    seed: int
    iters: list[int]
    scores: list[float]
    init: float
    end: float
    seconds: float


def run_one(
    prior: Prior, scorer: PromptScorer, renderer: str, prompt: str, seed: int, args: argparse.Namespace
) -> Run:
    """Synthesize once; the curve comes from the run's history, init/end from its first and last audio."""
    start = time.perf_counter()
    synth = build_renderer(renderer, sample_rate=prior.sample_rate, seconds=args.seconds, seed=seed)
    cfg = SynthesizeConfig(iters=args.iters, lr=args.lr, seed=seed, score_every=args.score_every)
    result = synthesize(synth, prior, prompt, cfg, SDSConfig(), scorer=scorer)
    rows = [r for r in result.history if not math.isnan(r.get("score", math.nan))]
    init, end = (
        float(v)
        for v in scorer.score_pairs(
            torch.cat([result.initial_audio[:1], result.audio[:1]]), [prompt, prompt], prior.sample_rate
        )
    )
    return Run(
        renderer,
        prompt,
        seed,
        [int(r["iter"]) for r in rows],
        [float(r["score"]) for r in rows],
        init,
        end,
        time.perf_counter() - start,
    )


def plot(runs: list[Run], path: Path) -> None:
    """One panel per renderer, one colour per prompt, one line per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(RENDERERS), figsize=(6 * len(RENDERERS), 4), sharey=True, squeeze=False)
    colours = {p: f"C{i}" for i, p in enumerate(PROMPTS)}
    for ax, renderer in zip(axes[0], RENDERERS, strict=True):
        seen: set[str] = set()
        for run in (r for r in runs if r.renderer == renderer):
            label = None if run.prompt in seen else run.prompt
            seen.add(run.prompt)
            ax.plot(run.iters, run.scores, color=colours[run.prompt], alpha=0.7, label=label)
        ax.set_title(f"{renderer} renderer")
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("prompt score (cosine)")
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(runs: list[Run]) -> list[str]:
    """Markdown: per-run init/end, per (renderer, prompt) means and the fraction of runs that rose."""
    lines = ["| renderer | prompt | seed | score at init | score at end | change | rose |", "|---" * 7 + "|"]
    for r in runs:
        rose = "yes" if r.end > r.init else "no"
        scores = f"{r.init:.3f} | {r.end:.3f} | {r.end - r.init:+.3f}"
        lines.append(f"| {r.renderer} | {r.prompt} | {r.seed} | {scores} | {rose} |")
    lines += ["", "| renderer | prompt | mean init | mean end | runs that rose |", "|---" * 5 + "|"]
    for renderer in RENDERERS:
        for prompt in PROMPTS:
            group = [r for r in runs if r.renderer == renderer and r.prompt == prompt]
            if group:
                rose = sum(r.end > r.init for r in group)
                lines.append(
                    f"| {renderer} | {prompt} | {np.mean([r.init for r in group]):.3f} | "
                    f"{np.mean([r.end for r in group]):.3f} | {rose}/{len(group)} |"
                )
    frac = sum(r.end > r.init for r in runs) / len(runs)
    verdict = "met" if frac >= TARGET_RISE else "not met"
    lines += [
        "",
        f"Score rose in {frac:.0%} of {len(runs)} runs (target >= {TARGET_RISE:.0%}: {verdict}).",
        "",
    ]
    return lines


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prior", default="embedded", help="prior registry name")
    parser.add_argument(
        "--weights", "--model", dest="model", default=None, help="the prior's weights / model"
    )
    parser.add_argument("--scorer", default="embedded", help="prompt scorer registry name")
    parser.add_argument(
        "--scorer-weights", default=None, help="the scorer's weights folder (default: shipped)"
    )
    parser.add_argument("--seeds", type=int, default=5, help="runs per renderer and prompt")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--iters", type=int, default=SynthesizeConfig.iters)
    parser.add_argument("--lr", type=float, default=SynthesizeConfig.lr)
    parser.add_argument("--score-every", type=int, default=10, help="iterations between curve points")
    parser.add_argument("--seconds", type=float, default=1.0, help="rendered length")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="write the markdown here too")
    parser.add_argument("--plot", type=Path, default=Path("synthesis_curves.png"), help="PNG of the curves")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds: expected >= 1, got {args.seeds}")
    if args.score_every < 1:
        parser.error(f"--score-every: expected >= 1, got {args.score_every}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    cfg = (
        {MODEL_FIELD[args.prior]: args.model} if args.model is not None and args.prior in MODEL_FIELD else {}
    )
    prior = build(args.prior, **cfg)
    scorer_cfg = {"weights_dir": args.scorer_weights} if args.scorer_weights is not None else {}
    scorer = build_scorer(args.scorer, **scorer_cfg)
    jobs = [(r, p, args.seed + s) for r in RENDERERS for p in PROMPTS for s in range(args.seeds)]
    runs = []
    for renderer, prompt, seed in tqdm(
        jobs, desc="synthesis", file=sys.stderr, unit="run", dynamic_ncols=True
    ):
        runs.append(run_one(prior, scorer, renderer, prompt, seed, args))
    plot(runs, args.plot)
    cmd = "python benchmarks/synthesis_curves.py " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = [
        "## Synthesis curves (prompt score over SDS iterations)",
        "",
        f"Command: `{cmd}`; seeds {args.seed}..{args.seed + args.seeds - 1}; prior {args.prior} "
        f"({prior.sample_rate} Hz); scorer {args.scorer}; {args.iters} iterations, lr {args.lr}; "
        f"{args.seconds} s renders; {args.threads} thread(s). Plot: `{args.plot}`.",
        "",
        *report(runs),
        f"Total time: {time.perf_counter() - start:.1f} s "
        f"(mean {np.mean([r.seconds for r in runs]):.1f} s per run).",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
