"""Held-out zero-shot family retrieval of a prompt scorer (issue 3, "Must show": scorer top-1 >= 90%).

    python benchmarks/scorer_retrieval.py [--scorer embedded] [--clips-per-family 10]
        [--phrasings 4] [--seconds 0.5 2 10] [--seed 1234]

Clips: ``world.sample_clips("heldout", ...)`` (the held-out seed stream), balanced over families.
Prompts: for every family, ``--phrasings`` attribute-free captions in the world's held-out
phrasings (held-out templates and names, never seen in training). A clip is assigned the family
whose prompts have the highest mean cosine score; top-1 is the share assigned to their own family.
Also reported: top-1 with a single phrasing (mean over the phrasings) and per-family accuracy for
each clip length. Prints markdown.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ..scorer import SCORERS, build_scorer
from ..training.train_scorer import class_prompts
from ..world import FAMILIES, sample_clips


def retrieval(
    scorer, seconds: float, clips_per_family: int, prompts: dict[str, list[str]], seed: int
) -> dict:
    """Scores of held-out clips of ``seconds`` against every family's held-out prompts.

    Returns:
        dict with ``truth`` (B,), ``ensemble`` (B,) predicted family index with phrasing-averaged
        scores, ``single`` (B, K) predicted index per phrasing.
    """
    families = list(FAMILIES)
    clips = sample_clips("heldout", clips_per_family * len(families), seconds, scorer.sample_rate, seed=seed)
    audio = torch.from_numpy(np.stack([c.audio for c in clips]))
    truth = np.array([families.index(c.family) for c in clips])
    k = len(next(iter(prompts.values())))
    flat = [p for f in families for p in prompts[f]]
    with torch.no_grad():
        scores = torch.cat([scorer.score(a, flat) for a in audio.split(32)])  # (B, F * K)
    scores = scores.reshape(len(clips), len(families), k)
    return {
        "truth": truth,
        "ensemble": scores.mean(dim=-1).argmax(dim=1).numpy(),
        "single": scores.argmax(dim=1).numpy(),  # (B, K)
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scorer", default="embedded", choices=sorted(SCORERS))
    parser.add_argument(
        "--model-dir", default=None, help="checkpoint folder (clap) or weights folder (embedded)"
    )
    parser.add_argument("--clips-per-family", type=int, default=10)
    parser.add_argument("--phrasings", type=int, default=4)
    parser.add_argument("--seconds", type=float, nargs="+", default=[0.5, 2.0, 10.0])
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.scorer == "clap":
        scorer = build_scorer("clap", model_dir=args.model_dir or "")
    else:
        scorer = build_scorer("embedded", weights_dir=args.model_dir)
    prompts = class_prompts("heldout", args.phrasings, args.seed)
    families = list(FAMILIES)
    t0 = time.monotonic()
    results = {s: retrieval(scorer, s, args.clips_per_family, prompts, args.seed) for s in args.seconds}

    print(f"## Scorer held-out zero-shot family retrieval ({args.scorer})\n")
    print(
        f"`python benchmarks/scorer_retrieval.py --scorer {args.scorer} --clips-per-family "
        f"{args.clips_per_family} --phrasings {args.phrasings} --seconds "
        f"{' '.join(str(s) for s in args.seconds)} --seed {args.seed}`  \n"
        f"{len(families)} families x {args.clips_per_family} held-out clips per length; "
        f"{args.phrasings} held-out phrasings per family; {time.monotonic() - t0:.0f} s on CPU.\n"
    )
    print("| clip length | top-1 (phrasings averaged) | top-1 (single phrasing, mean) |")
    print("|---|---|---|")
    for s, r in results.items():
        ens = (r["ensemble"] == r["truth"]).mean()
        single = (r["single"] == r["truth"][:, None]).mean()
        print(f"| {s:g} s | {100 * ens:.1f}% | {100 * single:.1f}% |")

    print("\n| family | " + " | ".join(f"top-1 @ {s:g} s" for s in args.seconds) + " | most confused with |")
    print("|---|" + "---|" * (len(args.seconds) + 1))
    for i, family in enumerate(families):
        cells, wrong = [], []
        for r in results.values():
            mine = r["truth"] == i
            cells.append(f"{100 * (r['ensemble'][mine] == i).mean():.0f}%")
            wrong.extend(int(p) for p in r["ensemble"][mine] if p != i)
        confused = "" if not wrong else families[np.bincount(wrong).argmax()]
        print(f"| {family} | " + " | ".join(cells) + f" | {confused} |")
    print("\nHeld-out prompts:\n")
    for family in families:
        print(f"- {family}: " + "; ".join(f'"{p}"' for p in prompts[family]))


if __name__ == "__main__":
    main()
