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
from torch import Tensor, nn

from ..audio import match_channels
from ..priors import Prior, prior_defaults
from ..renderers import Renderer
from ..scorer import PromptScorer
from ..sds import SDSConfig, sds_step
from .loop import LoopConfig, load_checkpoint, run_loop
from .scoring import PromptTracker

# Synthesis' own SDS defaults, chosen by benchmarks/synthesis_curves.py on the earlier waveform-latent prior
# (docs/experiments.md, "Synthesis SDS defaults" and "FM synthesis, one-factor sweeps"): with SDSConfig's
# plain defaults (Decoder-SDS, t in [0.02, 0.98], CFG 3) the prompt score rose in 8 of 50 runs;
# spectral, t in [0.15, 0.6] with CFG 7.5 in 33 of 50, with CFG 12 in 42 of 50 (FM 21/25: weaker
# guidance let FM collapse to noise bursts). The magnitude-only update ignores the renderer's
# arbitrary phases (an FM or modal render never matches the decoder's phase), and the moderate t
# range with strong guidance is where the prior tells one prompt from another.
SYNTHESIS_SDS: dict[str, object] = {"mode": "spectral", "t_min": 0.15, "t_max": 0.6, "cfg_scale": 12.0}


def synthesis_sds(prior: str | Prior | None = None, **overrides: object) -> SDSConfig:
    """The SDS settings ``synthesize`` uses by default: ``SYNTHESIS_SDS`` over ``SDSConfig``'s
    defaults, then what ``prior`` (a registry name or a built prior) prefers, then ``overrides``."""
    return SDSConfig(**{**SYNTHESIS_SDS, **prior_defaults(prior, "synthesis"), **overrides})


@dataclass(frozen=True)
class SynthesizeConfig:
    """Optimisation settings for :func:`synthesize`."""

    iters: int = 300
    lr: float = 0.05  # Adam on raw (sigmoid-domain) parameters: crosses a range in ~100 steps
    seed: int = 0  # drives noise levels and noise draws; the renderer has its own init seed
    grad_clip: float = 0.0  # max global norm of raw-parameter gradients; 0 disables
    score_every: int = 10  # prompt-score interval in iterations when a scorer is given; 0 disables
    # with a scorer, report the best-scoring iterate of any particle (the initial renders and the
    # final one included) instead of the last: SDS can wander off, and a run then still never ends
    # worse than it started (by the scorer's measure)
    keep_best: bool = True

    def __post_init__(self) -> None:
        if not (isinstance(self.iters, int) and 1 <= self.iters <= 1_000_000):
            raise ValueError(f"iters: expected an integer in [1, 1000000], got {self.iters!r}")
        if not (math.isfinite(self.lr) and 0 < self.lr <= 10):
            raise ValueError(f"lr: expected a number in (0, 10], got {self.lr!r}")
        if not (math.isfinite(self.grad_clip) and self.grad_clip >= 0):
            raise ValueError(f"grad_clip: expected a number >= 0, got {self.grad_clip!r}")
        if not (isinstance(self.score_every, int) and self.score_every >= 0):
            raise ValueError(f"score_every: expected an integer >= 0, got {self.score_every!r}")
        if not isinstance(self.keep_best, bool):
            raise ValueError(f"keep_best: expected true or false, got {self.keep_best!r}")


@dataclass
class SynthesisResult:
    """What a synthesis run produced.

    The renderer's B instances are *particles*: independent starts optimised side by side. The
    reported render is the best-scoring iterate over every particle when a scorer is given and
    ``keep_best`` is on, else the last iterate of particle 0.

    Attributes:
        audio: the reported render, (1, 1, N) at the prior's sample rate.
        initial_audio: the reported particle's render before optimisation, same shape.
        params: the reported render's parameters, ``renderer.to_dict()`` format with one instance.
        history: one dict per iteration (iter, loss, update_norm, sigma, skipped, and with a scorer
            ``score`` (best particle now) and ``best_score`` (best so far); None where not computed).
        status: "completed", "stopped" (``should_stop``) or "diverged" (too many non-finite
            steps; the parameters are the last good ones).
        message: why the run ended early, if it did.
        scores: with a scorer: ``reported`` ("best" or "final"), ``particle`` and ``iteration`` of
            the reported render (iteration ``iters``: after the last update), and the scores
            ``initial`` (reported particle's start), ``reported_score``, ``final`` (reported
            particle's last iterate), ``initial_particles`` and ``final_particles`` (one per
            particle). Empty without.
        final_audio: every particle's last iterate, (B, 1, N).
    """

    audio: Tensor
    initial_audio: Tensor
    params: dict[str, object]
    history: list[dict[str, float | None]] = field(default_factory=list)
    status: str = "completed"
    message: str = ""
    scores: dict[str, object] = field(default_factory=dict)
    final_audio: Tensor | None = None


class BestIterate(nn.Module):
    """Per particle, the best prompt score so far, the iteration it came at and the raw
    parameters then; buffers, so a checkpoint of the run carries them.

    Args:
        renderer: the renderer whose raw parameters are tracked (B particles).
    """

    def __init__(self, renderer: Renderer) -> None:
        super().__init__()
        self.names = list(renderer.raw)
        self.register_buffer("score", torch.full((renderer.batch_size,), -math.inf, dtype=torch.float64))
        self.register_buffer("iteration", torch.full((renderer.batch_size,), -1, dtype=torch.long))
        for name in self.names:
            self.register_buffer(f"raw_{name}", renderer.raw[name].detach().clone())

    @torch.no_grad()
    def update(self, renderer: Renderer, scores: list[float], it: int) -> None:
        """Keep row b of the renderer's raw parameters where ``scores[b]`` beats the best so far."""
        for b, value in enumerate(scores):
            if value > float(self.score[b]):
                self.score[b], self.iteration[b] = value, it
                for name in self.names:
                    getattr(self, f"raw_{name}")[b] = renderer.raw[name][b]

    @torch.no_grad()
    def render(self, renderer: Renderer, particle: int) -> tuple[Tensor, dict[str, object]]:
        """The kept iterate of ``particle``: its audio (1, C, N) and parameters (one instance),
        rendered by ``renderer`` (whose own parameters are left as they were)."""
        current = {name: renderer.raw[name].detach().clone() for name in self.names}
        for name in self.names:
            renderer.raw[name].copy_(getattr(self, f"raw_{name}"))
        audio = renderer()[particle : particle + 1].detach().clone()
        params = one_instance(renderer.to_dict(), particle)
        for name in self.names:
            renderer.raw[name].copy_(current[name])
        return audio, params


def one_instance(params: dict[str, object], row: int) -> dict[str, object]:
    """``Renderer.to_dict()`` output cut to instance ``row`` (values keep their leading axis)."""
    return {name: {**entry, "value": entry["value"][row : row + 1]} for name, entry in params.items()}


def synthesize(
    renderer: Renderer,
    prior: Prior,
    prompt: str,
    config: SynthesizeConfig | None = None,
    sds: SDSConfig | None = None,
    negative: str | None = None,
    progress: Callable[[int, dict[str, float | None]], None] | None = None,
    loop: LoopConfig | None = None,
    checkpoint: Path | None = None,
    resume: bool = False,
    should_stop: Callable[[], bool] | None = None,
    scorer: PromptScorer | None = None,
) -> SynthesisResult:
    """Optimise ``renderer`` so its audio matches ``prompt`` under ``prior``.

    Args:
        renderer: any Renderer rendering at ``prior.sample_rate``, freshly built from its
            config (a resumed run rebuilds it the same way, then loads the checkpoint). Its B
            instances are particles: independent starts, each with its own SDS update.
        prior: a frozen Prior.
        prompt: the text prompt.
        config: optimisation settings.
        sds: the SDS update rule settings (default: :func:`synthesis_sds` of ``prior``).
        negative: optional negative prompt (replaces the unconditional CFG branch).
        progress: called after each iteration with (iteration, history row).
        loop: checkpoint interval and numeric-guard settings.
        checkpoint: checkpoint file path; None disables checkpoints.
        resume: continue from ``checkpoint`` instead of starting afresh.
        should_stop: polled between iterations; True ends the run with status "stopped".
        scorer: if given, every ``config.score_every`` iterations (and on the last) each particle's
            render is scored against the prompt; history rows get ``score`` (the best particle's)
            and ``best_score`` (the best so far), None between; with ``config.keep_best`` the best
            iterate is the one reported.

    Returns:
        SynthesisResult with the reported and initial audio, parameters, scores and history.
    """
    config = config or SynthesizeConfig()
    sds = sds or synthesis_sds(prior)
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
    best = BestIterate(renderer).to(device)
    run_state = nn.ModuleDict({"renderer": renderer, "best": best})  # what a checkpoint holds
    cond = prior.embed([prompt], negative=None if negative is None else [negative])
    generator = torch.Generator(device=device).manual_seed(config.seed)
    optimizer = torch.optim.Adam(renderer.parameters(), lr=config.lr)
    with torch.no_grad():
        initial = renderer().detach().clone()  # (B, 1, N)
    state = load_checkpoint(checkpoint, run_state, optimizer, generator) if resume else None
    tracker = (
        None if scorer is None else PromptTracker(scorer, [prompt], prior.sample_rate, config.score_every)
    )

    def step(it: int) -> tuple[Tensor, dict[str, float | None]]:
        # 1. render and bring to the prior's format
        x = match_channels(renderer(), prior.channels)  # (B, C, N)
        # 2. the SDS update as a surrogate loss whose gradient w.r.t. x is the update
        result = sds_step(prior, x, cond, sds, progress=it / max(config.iters - 1, 1), generator=generator)
        row: dict[str, float | None] = {
            "iter": float(it),
            "loss": float(result.loss.detach()),
            "update_norm": float(result.update_norm),
            "sigma": float(result.sigma.mean()),
        }
        if tracker is not None:
            # 3. score the render the update was computed on (the parameters before this step)
            scores = tracker(x) if tracker.due(it, config.iters) else None
            if scores is not None:
                best.update(renderer, scores, it)
            row["score"] = None if scores is None else max(scores)
            row["best_score"] = None if scores is None else float(best.score.max())
        return result.loss, row

    outcome = run_loop(
        run_state,
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
        final = renderer().detach().clone()  # (B, 1, N)
    if tracker is None or not tracker.every:
        return SynthesisResult(
            final[:1],
            initial[:1],
            one_instance(renderer.to_dict(), 0),
            outcome.state.history,
            outcome.status,
            outcome.message,
            final_audio=final,
        )
    # 4. the last iterate is a candidate too; then the best particle's best iterate, or its last
    final_scores = tracker(match_channels(final, prior.channels))
    best.update(renderer, final_scores, outcome.state.iteration)
    initial_scores = tracker(match_channels(initial, prior.channels))
    if config.keep_best:
        particle = int(best.score.argmax())
        audio, params = best.render(renderer, particle)
        reported, iteration, score = "best", int(best.iteration[particle]), float(best.score[particle])
    else:
        particle = 0
        audio, params = final[:1], one_instance(renderer.to_dict(), 0)
        reported, iteration, score = "final", outcome.state.iteration, final_scores[0]
    scores = {
        "reported": reported,
        "particle": particle,
        "iteration": iteration,
        "initial": initial_scores[particle],
        "reported_score": score,
        "final": final_scores[particle],
        "initial_particles": initial_scores,
        "final_particles": final_scores,
    }
    return SynthesisResult(
        audio,
        initial[particle : particle + 1],
        params,
        outcome.state.history,
        outcome.status,
        outcome.message,
        scores,
        final,
    )
