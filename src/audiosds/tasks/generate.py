"""Text-to-audio generation from any prior with the deterministic samplers."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..priors import Prior
from ..sampling import GENERATION_METHODS, karras_sigmas, sample


@dataclass(frozen=True)
class GenerateConfig:
    """Settings for :func:`generate`."""

    seconds: float = 2.0
    steps: int = 30  # denoiser evaluations per CFG branch (Heun uses about twice as many)
    cfg_scale: float = 4.0
    # "ddim", "heun", "dpmpp_2m" (deterministic) or "euler_ancestral" (stochastic, seeded by ``seed``)
    method: str = "dpmpp_2m"
    seed: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.seconds) and 0 < self.seconds <= 600):
            raise ValueError(f"seconds: expected a duration in (0, 600], got {self.seconds!r}")
        if not (isinstance(self.steps, int) and 1 <= self.steps <= 1000):
            raise ValueError(f"steps: expected an integer in [1, 1000], got {self.steps!r}")
        if not (math.isfinite(self.cfg_scale) and 0 <= self.cfg_scale <= 100):
            raise ValueError(f"cfg: expected a scale in [0, 100], got {self.cfg_scale!r}")
        if self.method not in GENERATION_METHODS:
            raise ValueError(f"method: expected one of {GENERATION_METHODS}, got {self.method!r}")


def generate(
    prior: Prior,
    prompt: str,
    config: GenerateConfig | None = None,
    negative: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Tensor:
    """Sample audio for ``prompt``: noise at sigma_max -> deterministic ODE solve -> decode.

    Returns:
        Audio (C, N) at ``prior.sample_rate``, N = round(seconds * sample_rate).
    """
    config = config or GenerateConfig()
    if not prompt or not prompt.strip():
        raise ValueError("prompt: expected non-empty text, got an empty prompt")
    num_samples = round(config.seconds * prior.sample_rate)
    frames = prior.latent_frames(num_samples)
    device = prior.device
    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    cond = prior.embed([prompt], negative=None if negative is None else [negative])
    noise = torch.randn((1, prior.latent_channels, frames), generator=generator).to(device)
    sigmas = karras_sigmas(config.steps, prior.sigma_min, prior.sigma_max).to(device)
    step_cb = None if progress is None else (lambda i, sigma, z, x0_hat: progress(i))
    with torch.inference_mode():
        z = sample(
            prior,
            noise * sigmas[0],
            sigmas,
            cond,
            config.cfg_scale,
            method=config.method,
            callback=step_cb,
            generator=generator,  # after the start noise: the stochastic samplers' own draws
        )
        audio = prior.decode_generated(z)[0, :, :num_samples]
    return audio.float().cpu()
