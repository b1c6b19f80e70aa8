"""The work ``perf`` times: the priors it loads, the real task loops, the floor (the prior's own
work in one SDS iteration, timed alone) and the plan of configurations."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ... import renderers
from ...priors import prior_defaults
from ...priors.base import Prior, expand_rows
from ...sds import SDSConfig
from ...tasks.separate import SeparateConfig, separate, separation_sds
from ...tasks.synthesize import SynthesizeConfig, synthesis_sds, synthesize
from ..sao import SaoShapedConfig, build_sao_shaped
from .measure import PeakRSS, iteration_times, median_time
from .shaped import SHAPED, load_shaped

PRIORS = ("embedded-mel", "analytic", "sao-shaped", *SHAPED)
TASKS = ("fm", "impact", "separate")
# separation's loops here run one member (one SDS step per iteration, the floor's work): the first of the
# prior's default SDS modes (SeparateConfig.sds_modes, or the prior's own), each such a step


def task_sds(prior: Prior, task: str, draws: int, steps: int) -> tuple[SDSConfig, str]:
    """The SDS settings a task runs with on ``prior`` by default (the prior's own preferences
    included), with ``draws`` and ``steps``; and the SDS mode of its (first) member."""
    if task == "separate":
        modes = prior_defaults(prior, "separation", "separate").get("sds_modes", SeparateConfig.sds_modes)
        return separation_sds(prior, num_steps=steps, num_draws=draws), modes[0]
    sds = synthesis_sds(prior, num_steps=steps, num_draws=draws)
    return sds, sds.mode


SYNTH_PROMPT = "a bright metallic bell ringing"
# the paper's prompts (DESIGN.md): one per source, up to the 8 sources separation allows
SOURCE_PROMPTS = (
    "bongo drum playing a rhythmic beat",
    "waves crashing on a rocky shore",
    "saxophone playing melody, jazzy, modal interchange, post bop",
    "cars passing by on a busy street, traffic, road noise",
    "clanging metal pipes dropping on concrete",
    "glass breaking and shattering",
    "rhythmic ticking of an old grandfather clock",
    "gentle rustling of leaves in the wind",
)


@dataclass
class PriorSetup:
    """A loaded prior and how the CLI selects the same one."""

    prior: Prior
    cli_args: list[str]
    notes: list[str] = field(default_factory=list)


def load_prior(name: str, workdir: Path, weights: str | None) -> PriorSetup:
    """Build the prior named on the command line (``workdir`` holds the sao-shaped folder)."""
    if name == "analytic":
        from audiosds.priors.analytic import AnalyticPrior

        return PriorSetup(AnalyticPrior().freeze(), ["--prior", "analytic"])
    if name == "embedded-mel":
        from audiosds.models.weights import EmbeddedWeightsError
        from audiosds.priors.embedded_mel import EmbeddedMelConfig, EmbeddedMelPrior

        try:
            prior = EmbeddedMelPrior(EmbeddedMelConfig(weights_dir=weights)).freeze()
        except EmbeddedWeightsError as err:
            raise SystemExit(f"perf.py: --prior embedded-mel: {err}") from None
        notes = [f"embedded-mel weights: {prior.weights_dir}"]
        if weights is not None:
            notes.append("the CLI section uses the installed weights (the CLI has no weights option)")
        return PriorSetup(prior, ["--prior", "embedded-mel"], notes)
    if name in SHAPED:
        return PriorSetup(*load_shaped(name, workdir))
    from audiosds.priors.stable_audio import StableAudioConfig, StableAudioPrior

    folder = build_sao_shaped(workdir / "sao-shaped", SaoShapedConfig())
    prior = StableAudioPrior.from_config(StableAudioConfig(model=str(folder))).freeze()
    return PriorSetup(prior, ["--prior", "stable-audio-open", "--model", str(folder)])


def make_mixture(num_sources: int, num_samples: int, sample_rate: int, seed: int = 0) -> np.ndarray:
    """A seeded mono mixture of ``num_sources`` distinct sources (decaying harmonic tones and
    noise bursts at different rates), peak 0.5.

    Shape:
        -> (1, num_samples) float32
    """
    rng = np.random.default_rng(seed)
    t = np.arange(num_samples) / sample_rate
    mix = np.zeros(num_samples)
    for k in range(num_sources):
        period = 0.25 + 0.15 * k  # seconds between onsets
        env = np.exp(-(t % period) / (0.05 + 0.03 * k))
        if k % 2 == 0:
            f0 = 110.0 * 2 ** (k / 3)
            src = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6))
        else:
            src = rng.standard_normal(num_samples)
        mix += env * src / np.abs(src).max()
    return (0.5 * mix / np.abs(mix).max()).astype(np.float32)[None]


def run_task(
    prior: Prior,
    task: str,
    draws: int,
    steps: int,
    seconds: float,
    num_sources: int,
    iters: int,
) -> list[float]:
    """Run a real task loop of ``iters`` iterations; the perf_counter time at which each ended.

    ``fm`` / ``impact``: ``tasks.synthesize`` on a renderer of ``seconds``; ``separate``:
    ``tasks.separate`` of a ``num_sources`` mixture of ``seconds`` in one window. Everything
    else at its default.
    """
    stamps: list[float] = []

    def on_step(it: int, row: dict[str, float]) -> None:
        stamps.append(time.perf_counter())

    sds, mode = task_sds(prior, task, draws, steps)
    if task in ("fm", "impact"):
        renderer = renderers.build(task, sample_rate=prior.sample_rate, seconds=seconds)
        synthesize(renderer, prior, SYNTH_PROMPT, SynthesizeConfig(iters=iters), sds, progress=on_step)
    elif task == "separate":
        mixture = make_mixture(num_sources, round(seconds * prior.sample_rate), prior.sample_rate)
        config = SeparateConfig(
            iters=iters, max_seconds=max(SeparateConfig.max_seconds, seconds), sds_modes=(mode,)
        )
        prompts = list(SOURCE_PROMPTS[:num_sources])
        separate(mixture, prior.sample_rate, prior, prompts, config, sds, progress=on_step)
    else:
        raise ValueError(f"task: expected one of {TASKS}, got {task!r}")
    return stamps


def floor_call(
    prior: Prior,
    renders: int,
    num_samples: int,
    draws: int,
    steps: int,
    prompts: Sequence[str],
    decode: bool = True,
    encode_backward: bool = False,
) -> Callable[[], None]:
    """The prior's irreducible work in one SDS iteration, as a call.

    One encode of the R renders, K denoiser forwards of the 2 * R * B rows (conditional and
    unconditional halves of classifier-free guidance in one batch, as ``Prior.denoise`` runs
    them) and, with ``decode`` (every SDS mode but classic latent SDS), one decode of the R * B
    draws, all without autograd: the network evaluations of Audio-SDS eqs. 4-6 and nothing else.
    With ``encode_backward`` the encode runs with autograd and backpropagates a fixed cotangent to
    the renders, as classic latent SDS must each iteration (its gradient reaches the parameters
    through the encoder): the floor counting the encoder's backward. Inputs are built beforehand.

    Shape:
        renders R with prompts (1 or R of them), audio of num_samples -> () (returns None)
    """
    if len(prompts) not in (1, renders):
        raise ValueError(f"prompts: expected 1 or {renders}, got {len(prompts)}")
    g = torch.Generator().manual_seed(0)
    x = 0.1 * torch.randn(renders, prior.channels, num_samples, generator=g)
    rows = renders * draws
    frames = prior.latent_frames(num_samples)
    z_rows = torch.randn(rows, prior.latent_channels, frames, generator=g)
    cond = prior.embed(list(prompts))
    both = {
        k: torch.cat([v, expand_rows(cond.uncond, rows)[k]]) for k, v in expand_rows(cond.cond, rows).items()
    }
    z_both = torch.cat([z_rows, z_rows])  # (2 R B, D, T)
    sigma = torch.ones(2 * rows)
    x.requires_grad_(encode_backward)
    cotangent = torch.randn(renders, prior.latent_channels, frames, generator=g) if encode_backward else None

    def run() -> None:
        if encode_backward:
            prior.encode(x).backward(cotangent)
            x.grad = None
        with torch.no_grad():
            if not encode_backward:
                prior.encode(x)
            for _ in range(steps):
                prior._denoise_batch(z_both, sigma, both)
            if decode:
                prior.decode(z_rows)

    return run


def source_decode_call(prior: Prior, num_sources: int, num_samples: int) -> Callable[[], None]:
    """What separation's latent-parametrised sources ("latent", "remasked": the default) add to
    the prior's work: decoding the K source latents with autograd and backpropagating through
    the decoder (the prior's own network, queried by the renderer), as a call.

    Shape:
        K latents (K, D, ceil(num_samples / downsampling)) -> () (returns None)
    """
    g = torch.Generator().manual_seed(0)
    frames = prior.latent_frames(num_samples)
    z = torch.randn(num_sources, prior.latent_channels, frames, generator=g).requires_grad_(True)

    def run() -> None:
        prior.decode(z).sum().backward()
        z.grad = None

    return run


def _task_shape(task: str, num_sources: int) -> tuple[int, list[str]]:
    """(renders R, prompts) of a task's SDS step: one render and prompt for synthesis, one per source."""
    if task == "separate":
        return num_sources, list(SOURCE_PROMPTS[:num_sources])
    return 1, [SYNTH_PROMPT]


@dataclass
class Measurement:
    """One configuration: median iteration and floor times (s) and their peak RSS (bytes).

    ``outside_s`` is prior work the iteration must do that the floor leaves out: separation's
    latent sources decoded and backpropagated (:func:`source_decode_call`), or, for synthesis by
    classic latent SDS, the encoder's backward (the floor with ``encode_backward`` minus the floor).
    """

    iteration_s: float
    floor_s: float
    iteration_rss: int
    floor_rss: int
    outside_s: float | None = None

    @property
    def ratio(self) -> float:
        return self.iteration_s / self.floor_s

    @property
    def ratio_with_outside(self) -> float | None:
        """Iteration over floor + the prior work outside it (None where there is none)."""
        if self.outside_s is None:
            return None
        return self.iteration_s / (self.floor_s + self.outside_s)


def measure(
    prior: Prior,
    task: str,
    draws: int,
    steps: int,
    seconds: float,
    num_sources: int,
    warmup: int,
    repeats: int,
) -> Measurement:
    """Iteration time of the real loop and its floor for one configuration (module docstring)."""
    with PeakRSS() as loop_mem:
        stamps = run_task(prior, task, draws, steps, seconds, num_sources, 1 + warmup + repeats)
    iteration = statistics.median(iteration_times(stamps, warmup))
    renders, prompts = _task_shape(task, num_sources)
    _, mode = task_sds(prior, task, draws, steps)
    samples = round(seconds * prior.sample_rate)
    run = floor_call(prior, renders, samples, draws, steps, prompts, decode=mode != "latent")
    with PeakRSS() as floor_mem:
        floor = median_time(run, warmup, repeats)
    outside_s = None
    if task == "separate" and SeparateConfig.parametrization != "masks":
        decode = source_decode_call(prior, num_sources, round(seconds * prior.sample_rate))
        outside_s = median_time(decode, warmup, repeats)
    elif task != "separate" and mode == "latent":
        backward = floor_call(prior, renders, samples, draws, steps, prompts, False, encode_backward=True)
        outside_s = max(0.0, median_time(backward, warmup, repeats) - floor)
    return Measurement(iteration, floor, loop_mem.peak_bytes, floor_mem.peak_bytes, outside_s)


# -- the plan --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What one run measures; :func:`make_plan` picks it from the prior and ``--quick``."""

    draws: tuple[int, ...]
    steps: tuple[int, ...]
    warmup: int
    repeats: int
    synth_seconds: float  # fm / impact clip in the iteration table (the CLI default)
    sep_seconds: float  # separation clip in the iteration table
    lengths: tuple[float, ...]  # clip lengths of the scaling section
    sources: tuple[int, ...]  # source counts of the scaling section
    sources_seconds: float  # separation clip when scaling the source count
    stft_seconds: float
    cli_iters: int | None  # None: the commands' defaults (fm --iters 200, separate default)
    profile_iters: int


def make_plan(prior: str, quick: bool) -> Plan:
    """Full: every configuration the issue names. Quick: a subset for smoke runs on a busy machine."""
    if prior not in PRIORS:
        raise ValueError(f"prior: expected one of {PRIORS}, got {prior!r}")
    sao = prior in ("sao-shaped", *SHAPED)  # the diffusers-shaped priors: shorter clips
    if quick:
        return Plan(
            draws=(1, 4),
            steps=(1, 4),
            warmup=1,
            repeats=3,
            synth_seconds=1.0,
            sep_seconds=1.0 if sao else 2.0,
            lengths=(1.0, 2.0, 4.0),
            sources=(2, 4),
            sources_seconds=1.0,
            stft_seconds=30.0,
            cli_iters=20,
            profile_iters=3,
        )
    return Plan(
        draws=(1, 4, 8),
        steps=(1, 2, 4, 8),
        warmup=2,
        repeats=5,
        synth_seconds=1.0,
        sep_seconds=4.0,
        lengths=(1.0, 2.0, 4.0, 8.0) if sao else (1.0, 2.0, 4.0, 8.0, 16.0, 30.0),
        sources=(2, 3, 4, 6, 8),
        sources_seconds=2.0 if sao else 4.0,
        stft_seconds=30.0,
        cli_iters=None,
        profile_iters=5,
    )
