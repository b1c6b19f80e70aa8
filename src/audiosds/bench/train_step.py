"""Seconds per training step of the mel prior's denoiser, by net and precision (issue 26's budget).

    python benchmarks/train_step.py [--nets 16,32,64,128 16,32,96,192:3] [--precisions float32 bfloat16]
        [--batch 16] [--frames 128] [--threads 1] [--warmup 2] [--repeats 5]

Each net is the shipped 2-D U-Net (``weights/embedded_mel/denoiser.json``) with its channels per
level replaced, and ``:L`` adds attention at level L. A step is what ``training/train_mel.py`` does
per batch: :func:`~audiosds.models.denoiser.edm_loss` on a random (batch, 80, frames) batch and
random text embeddings, its backward and an AdamW step; the median of ``repeats`` timed steps after
``warmup`` untimed ones. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import replace

import torch

from ..models.denoiser import DenoiserConfig, EDMDenoiser, edm_loss
from ..priors.embedded_mel import default_weights_dir
from ..training.train_mel import PRECISIONS
from . import log
from .report import markdown_table


def parse_net(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``"16,32,64,128"`` or ``"16,32,64,128:3"`` -> (channels, attention levels)."""
    channels, _, attention = text.partition(":")
    try:
        return tuple(int(c) for c in channels.split(",")), tuple(int(a) for a in attention.split(",") if a)
    except ValueError:
        raise ValueError(f"net: expected channels like 16,32,64,128[:3], got {text!r}") from None


def step_seconds(
    config: DenoiserConfig, precision: str, batch: int, frames: int, warmup: int, repeats: int
) -> float:
    """Median seconds of one training step of ``config`` in ``precision``."""
    torch.manual_seed(0)
    model = EDMDenoiser(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    z = torch.randn(batch, config.latent_channels, frames)
    cond = torch.randn(batch, config.cond_dim)
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        edm_loss(model, z, cond, compute_dtype=PRECISIONS[precision]).backward()
        optimizer.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", default=["16,32,64,128"], help="channels per level[:attention]")
    parser.add_argument(
        "--precisions", nargs="+", choices=sorted(PRECISIONS), default=["float32", "bfloat16"]
    )
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    shipped = DenoiserConfig.from_dict(json.loads((default_weights_dir() / "denoiser.json").read_text()))
    try:
        configs = [replace(shipped, channels=c, attention_levels=a) for c, a in map(parse_net, args.nets)]
    except ValueError as exc:
        parser.error(str(exc))
    torch.set_num_threads(args.threads)
    rows = []
    for config in configs:
        channels, attention = config.channels, config.attention_levels
        parameters = sum(p.numel() for p in EDMDenoiser(config).parameters()) / 1e6
        cells = []
        for precision in args.precisions:
            log.info(f"train step: {channels} attention {attention} {precision}")
            seconds = step_seconds(config, precision, args.batch, args.frames, args.warmup, args.repeats)
            cells.append(f"{seconds:.2f}")
        name = "-".join(map(str, channels)) + (f", attention at level {attention}" if attention else "")
        rows.append([name, f"{parameters:.2f} M", *cells])
    headers = ["net (2-D U-Net)", "parameters", *(f"{p} s/step" for p in args.precisions)]
    print(
        f"Training step, batch {args.batch} x {args.frames} frames, {args.threads} thread(s), median of "
        f"{args.repeats} after {args.warmup} untimed:\n"
    )
    print(markdown_table(headers, rows))
    return 0
