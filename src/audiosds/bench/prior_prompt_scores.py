"""The prompt scorer's verdict on a prior's own generations, beside the renderers' initial renders.

SDS pulls a render toward what the prior generates for the prompt, so the score of the prior's
generations is a reference point for the synthesis curves: a prompt whose generations score below
the renderers' starting renders leaves SDS little room to raise the score. It is not a bound (a
renderer can land on something the scorer likes better than the prior's average). This script generates
``--clips`` clips per prompt (deterministic sampler, seeds ``--seed``...) and reports their mean
score beside the scores of the renderers' initial renders (FM and impact, seeds as in
``synthesis_curves``), so the synthesis curves can be read against it.

    python benchmarks/prior_prompt_scores.py --prior embedded-mel --clips 4 --seed 0 [--out FILE.md]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Sequence

import numpy as np
import torch

from ..priors import build
from ..renderers import build as build_renderer
from ..scorer import build_scorer
from ..tasks.generate import GenerateConfig, generate
from .keys import add_prior_scorer_options, prior_options
from .report import emit
from .synthesis_curves import PROMPTS, RENDERERS


def scores(scorer, clips: list[torch.Tensor], prompt: str, sample_rate: int) -> list[float]:  # noqa: ANN001
    """The cosine of each mono clip (N,) with ``prompt``, by ``score_pairs`` as in the synthesis curves."""
    with torch.no_grad():
        return scorer.score_pairs(torch.stack(clips), [prompt] * len(clips), sample_rate).tolist()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_prior_scorer_options(parser)
    parser.add_argument(
        "--prompts", nargs="+", default=list(PROMPTS), help="prompts (default: synthesis's five)"
    )
    parser.add_argument("--clips", type=int, default=4, help="generated clips per prompt")
    parser.add_argument("--renders", type=int, default=5, help="initial renders per renderer (seeds)")
    parser.add_argument("--seconds", type=float, default=1.0, help="clip and render length")
    parser.add_argument("--steps", type=int, default=GenerateConfig.steps, help="sampler steps")
    parser.add_argument("--cfg", type=float, default=GenerateConfig.cfg_scale, help="CFG scale of generation")
    parser.add_argument("--seed", type=int, default=0, help="first seed (generation and renderers)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="also write the markdown here")
    args = parser.parse_args(argv)
    for name in ("clips", "renders", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: expected >= 1, got {getattr(args, name)}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.monotonic()
    try:
        prior = build(args.prior, **prior_options(args.prior, args.model)).freeze()
        scorer = build_scorer(
            args.scorer, **({} if args.scorer_weights is None else {"weights_dir": args.scorer_weights})
        )
        sample_rate = prior.sample_rate
    except (OSError, ValueError) as err:
        sys.exit(f"error: {err}")
    initial = {}  # (renderer, prompt) -> scores of the initial renders
    for renderer in RENDERERS:
        renders = []
        for seed in range(args.seed, args.seed + args.renders):
            module = build_renderer(renderer, sample_rate=sample_rate, seconds=args.seconds, seed=seed)
            with torch.no_grad():
                renders.append(module()[0, 0])
        for prompt in args.prompts:
            initial[renderer, prompt] = scores(scorer, renders, prompt, sample_rate)
    command = "python benchmarks/prior_prompt_scores.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    lines = [
        "## Prompt scores of the prior's own generations vs the renderers' initial renders\n",
        f"`{command.strip()}`; prior {args.prior}, {args.clips} generated clips per prompt ({args.steps} "
        f"steps, CFG {args.cfg:g}, seeds {args.seed}..{args.seed + args.clips - 1}), {args.renders} initial "
        f"renders per renderer; {args.seconds:g} s; scorer {args.scorer}.\n",
        "| prompt | generated: mean score (min-max) | "
        + " | ".join(f"{r} init: mean" for r in RENDERERS)
        + " |",
        "|---|---|" + "---|" * len(RENDERERS),
    ]
    for prompt in args.prompts:
        clips = [
            generate(prior, prompt, GenerateConfig(args.seconds, args.steps, args.cfg, "dpmpp_2m", seed))[0]
            for seed in range(args.seed, args.seed + args.clips)
        ]
        got = scores(scorer, clips, prompt, sample_rate)
        init = " | ".join(f"{np.mean(initial[r, prompt]):.3f}" for r in RENDERERS)
        lines.append(f"| {prompt} | {np.mean(got):.3f} ({min(got):.3f}-{max(got):.3f}) | {init} |")
    lines += ["", f"Total time {time.monotonic() - start:.0f} s."]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
