"""Synthesis by SDS: tune any renderer's parameters toward a text prompt (Audio-SDS sec. 4.1).

The renderer renders at the prior's sample rate; mono output is duplicated to the prior's
channel count. Each iteration: render -> one SDS step (``sds.sds_step``) -> Adam step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from ..audio import match_channels
from ..priors import Prior
from ..renderers import Renderer
from ..scorer import PromptScorer
from ..sds import SDSConfig, sds_step
from .loop import LoopConfig, load_checkpoint, run_loop
from .scoring import PromptTracker

# Synthesis' own SDS defaults, chosen by benchmarks/synthesis_curves.py on the embedded prior
# (RESULTS.md, "Synthesis SDS defaults" and "FM synthesis, one-factor sweeps"): with SDSConfig's
# plain defaults (Decoder-SDS, t in [0.02, 0.98], CFG 3) the prompt score rose in 8 of 50 runs;
# spectral, t in [0.15, 0.6] with CFG 7.5 in 33 of 50, with CFG 12 in 42 of 50 (FM 21/25: weaker
# guidance let FM collapse to noise bursts). The magnitude-only update ignores the renderer's
# arbitrary phases (an FM or modal render never matches the decoder's phase), and the moderate t
# range with strong guidance is where the prior tells one prompt from another.
SYNTHESIS_SDS: dict[str, object] = {"mode": "spectral", "t_min": 0.15, "t_max": 0.6, "cfg_scale": 12.0}


def synthesis_sds(**overrides: object) -> SDSConfig:
    """The SDS settings ``synthesize`` uses by default: ``SYNTHESIS_SDS`` over ``SDSConfig``'s
    defaults, then ``overrides``."""
    return SDSConfig(**{**SYNTHESIS_SDS, **overrides})


@dataclass(frozen=True)
class SynthesizeConfig:
    """Optimisation settings for :func:`synthesize`."""

    iters: int = 300
    lr: float = 0.05  # Adam on raw (sigmoid-domain) parameters: crosses a range in ~100 steps
    seed: int = 0  # drives noise levels and noise draws; the renderer has its own init seed
    grad_clip: float = 0.0  # max global norm of raw-parameter gradients; 0 disables
    score_every: int = 10  # prompt-score interval in iterations when a scorer is given; 0 disables

    def __post_init__(self) -> None:
        if not (isinstance(self.iters, int) and 1 <= self.iters <= 1_000_000):
            raise ValueError(f"iters: expected an integer in [1, 1000000], got {self.iters!r}")
        if not (math.isfinite(self.lr) and 0 < self.lr <= 10):
            raise ValueError(f"lr: expected a number in (0, 10], got {self.lr!r}")
        if not (math.isfinite(self.grad_clip) and self.grad_clip >= 0):
            raise ValueError(f"grad_clip: expected a number >= 0, got {self.grad_clip!r}")
        if not (isinstance(self.score_every, int) and self.score_every >= 0):
            raise ValueError(f"score_every: expected an integer >= 0, got {self.score_every!r}")


@dataclass
class SynthesisResult:
    """What a synthesis run produced.

    Attributes:
        audio: final render, (B, 1, N) at the prior's sample rate.
        initial_audio: the render before optimisation, same shape.
        params: ``renderer.to_dict()`` at the end (human units).
        history: one dict per iteration (iter, loss, update_norm, sigma, skipped, ...).
        status: "completed", "stopped" (``should_stop``) or "diverged" (too many non-finite
            steps; the parameters are the last good ones).
        message: why the run ended early, if it did.
    """

    audio: Tensor
    initial_audio: Tensor
    params: dict[str, object]
    history: list[dict[str, float]] = field(default_factory=list)
    status: str = "completed"
    message: str = ""


def synthesize(
    renderer: Renderer,
    prior: Prior,
    prompt: str,
    config: SynthesizeConfig | None = None,
    sds: SDSConfig | None = None,
    negative: str | None = None,
    progress: Callable[[int, dict[str, float]], None] | None = None,
    loop: LoopConfig | None = None,
    checkpoint: Path | None = None,
    resume: bool = False,
    should_stop: Callable[[], bool] | None = None,
    scorer: PromptScorer | None = None,
) -> SynthesisResult:
    """Optimise ``renderer`` so its audio matches ``prompt`` under ``prior``.

    Args:
        renderer: any Renderer rendering at ``prior.sample_rate``, freshly built from its
            config (a resumed run rebuilds it the same way, then loads the checkpoint).
        prior: a frozen Prior.
        prompt: the text prompt.
        config: optimisation settings.
        sds: the SDS update rule settings (default: :func:`synthesis_sds`).
        negative: optional negative prompt (replaces the unconditional CFG branch).
        progress: called after each iteration with (iteration, history row).
        loop: checkpoint interval and numeric-guard settings.
        checkpoint: checkpoint file path; None disables checkpoints.
        resume: continue from ``checkpoint`` instead of starting afresh.
        should_stop: polled between iterations; True ends the run with status "stopped".
        scorer: if given, history rows get a ``score`` column (prompt alignment of the current
            render, mean over instances) every ``config.score_every`` iterations, NaN between.

    Returns:
        SynthesisResult with the final and initial audio, parameters and per-iteration history.
    """
    config = config or SynthesizeConfig()
    sds = sds or synthesis_sds()
    if renderer.sample_rate != prior.sample_rate:
        raise ValueError(
            f"renderer sample rate: expected {prior.sample_rate} Hz, got {renderer.sample_rate} Hz"
        )
    if not prompt or not prompt.strip():
        raise ValueError("prompt: expected non-empty text, got an empty prompt")
    if resume and checkpoint is None:
        raise ValueError("resume: expected a checkpoint path to resume from, got None")
    device = prior.device
    renderer.to(device)
    cond = prior.embed([prompt], negative=None if negative is None else [negative])
    generator = torch.Generator(device=device).manual_seed(config.seed)
    optimizer = torch.optim.Adam(renderer.parameters(), lr=config.lr)
    with torch.no_grad():
        initial = renderer().detach().clone()
    state = load_checkpoint(checkpoint, renderer, optimizer, generator) if resume else None
    tracker = (
        None if scorer is None else PromptTracker(scorer, [prompt], prior.sample_rate, config.score_every)
    )

    def step(it: int) -> tuple[Tensor, dict[str, float]]:
        # 1. render and bring to the prior's format
        x = match_channels(renderer(), prior.channels)  # (B, C, N)
        # 2. the SDS update as a surrogate loss whose gradient w.r.t. x is the update
        result = sds_step(prior, x, cond, sds, progress=it / max(config.iters - 1, 1), generator=generator)
        row = {
            "iter": float(it),
            "loss": float(result.loss.detach()),
            "update_norm": float(result.update_norm),
            "sigma": float(result.sigma.mean()),
        }
        if tracker is not None:
            due = tracker.due(it, config.iters)
            row["score"] = sum(tracker(x)) / x.shape[0] if due else float("nan")
        return result.loss, row

    outcome = run_loop(
        renderer,
        optimizer,
        generator,
        config.iters,
        step,
        loop,
        checkpoint,
        state,
        should_stop,
        progress,
        grad_clip=config.grad_clip,
    )
    with torch.no_grad():
        final = renderer().detach().clone()
    return SynthesisResult(
        final, initial, renderer.to_dict(), outcome.state.history, outcome.status, outcome.message
    )
