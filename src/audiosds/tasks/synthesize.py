"""Synthesis by SDS: tune any renderer's parameters toward a text prompt (Audio-SDS sec. 4.1).

The renderer renders at the prior's sample rate; mono output is duplicated to the prior's
channel count. Each iteration: render -> one SDS step (``sds.sds_step``) -> Adam step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..audio import match_channels
from ..priors import Prior
from ..renderers import Renderer
from ..sds import SDSConfig, sds_step


@dataclass(frozen=True)
class SynthesizeConfig:
    """Optimisation settings for :func:`synthesize`."""

    iters: int = 300
    lr: float = 0.05  # Adam on raw (sigmoid-domain) parameters: crosses a range in ~100 steps
    seed: int = 0  # drives noise levels and noise draws; the renderer has its own init seed
    grad_clip: float = 0.0  # max global norm of raw-parameter gradients; 0 disables

    def __post_init__(self) -> None:
        if not (isinstance(self.iters, int) and 1 <= self.iters <= 1_000_000):
            raise ValueError(f"iters: expected an integer in [1, 1000000], got {self.iters!r}")
        if not (math.isfinite(self.lr) and 0 < self.lr <= 10):
            raise ValueError(f"lr: expected a number in (0, 10], got {self.lr!r}")
        if not (math.isfinite(self.grad_clip) and self.grad_clip >= 0):
            raise ValueError(f"grad_clip: expected a number >= 0, got {self.grad_clip!r}")


@dataclass
class SynthesisResult:
    """What a synthesis run produced.

    Attributes:
        audio: final render, (B, 1, N) at the prior's sample rate.
        initial_audio: the render before optimisation, same shape.
        params: ``renderer.to_dict()`` at the end (human units).
        history: one dict per iteration (iter, loss, update_norm, sigma, and any extra scores).
    """

    audio: Tensor
    initial_audio: Tensor
    params: dict[str, object]
    history: list[dict[str, float]] = field(default_factory=list)


def synthesize(
    renderer: Renderer,
    prior: Prior,
    prompt: str,
    config: SynthesizeConfig | None = None,
    sds: SDSConfig | None = None,
    negative: str | None = None,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> SynthesisResult:
    """Optimise ``renderer`` so its audio matches ``prompt`` under ``prior``.

    Args:
        renderer: any Renderer rendering at ``prior.sample_rate``.
        prior: a frozen Prior.
        prompt: the text prompt.
        config: optimisation settings.
        sds: the SDS update rule settings.
        negative: optional negative prompt (replaces the unconditional CFG branch).
        progress: called after each iteration with (iteration, history row).

    Returns:
        SynthesisResult with the final and initial audio, parameters and per-iteration history.
    """
    config = config or SynthesizeConfig()
    sds = sds or SDSConfig()
    if renderer.sample_rate != prior.sample_rate:
        raise ValueError(
            f"renderer sample rate: expected {prior.sample_rate} Hz, got {renderer.sample_rate} Hz"
        )
    if not prompt or not prompt.strip():
        raise ValueError("prompt: expected non-empty text, got an empty prompt")
    device = prior.device
    renderer.to(device)
    cond = prior.embed([prompt], negative=None if negative is None else [negative])
    generator = torch.Generator(device=device).manual_seed(config.seed)
    optimizer = torch.optim.Adam(renderer.parameters(), lr=config.lr)

    with torch.no_grad():
        initial = renderer().detach().clone()
    history: list[dict[str, float]] = []
    for it in range(config.iters):
        optimizer.zero_grad(set_to_none=True)
        # 1. render and bring to the prior's format
        x = match_channels(renderer(), prior.channels)  # (B, C, N)
        # 2. the SDS update as a surrogate loss whose gradient w.r.t. x is the update
        step = sds_step(prior, x, cond, sds, progress=it / max(config.iters - 1, 1), generator=generator)
        step.loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(renderer.parameters(), config.grad_clip)
        # 3. Adam on the renderer's raw parameters
        optimizer.step()
        row = {
            "iter": float(it),
            "loss": float(step.loss.detach()),
            "update_norm": float(step.update_norm),
            "sigma": float(step.sigma.mean()),
        }
        history.append(row)
        if progress is not None:
            progress(it, row)

    with torch.no_grad():
        final = renderer().detach().clone()
    return SynthesisResult(final, initial, renderer.to_dict(), history)
