"""A statistical estimate of a recording's foreground against its stationary noise floor.

Speech enhancement's start (``SeparateConfig.start = "noise_floor"``): before any SDS step the two
sources are the mixture split by a classic single-channel suppression gain, so the prior refines an
estimate instead of an even split. Two textbook parts:

- the noise power per frequency bin is a low quantile over time of the recursively smoothed power
  (quantile-based noise estimation, Stahl, Fischer and Bippus, ICASSP 2000): speech is sparse in
  time-frequency, so in most frames of a bin only the noise floor is left;
- the gain is the Wiener gain of the "decision-directed" a-priori SNR (Ephraim and Malah, 1984),
  which trades musical noise against speech distortion through ``decision``, floored at ``floor``.

The settings were picked on held-out development mixtures (benchmarks/enhance.py's mixtures 24-47 at
``--seed 1``: speech plus real ESC-10 noise at 0 and 5 dB SNR) from quantiles 0.1-0.4, noise
over-estimates 1-1.5 and floors 0.03-0.1: quantile 0.3, no over-estimate and floor 0.05 gave the best
mean SI-SDR gain (+4.49 dB; RESULTS.md, "Speech enhancement").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .config import is_number


@dataclass(frozen=True)
class NoiseFloorConfig:
    quantile: float = 0.3  # of the smoothed power over time: the noise floor per bin
    smoothing: float = 0.7  # recursive smoothing of the power before the quantile (per frame)
    decision: float = 0.98  # decision-directed weight of the previous frame's clean estimate
    floor: float = 0.05  # least gain: how much of the noise is left, against musical noise

    def __post_init__(self) -> None:
        for name in ("quantile", "smoothing", "decision", "floor"):
            value = getattr(self, name)
            if not is_number(value) or not 0 <= value < 1:
                raise ValueError(f"NoiseFloorConfig.{name}: expected a number in [0, 1), got {value!r}")


def noise_floor(power: Tensor, config: NoiseFloorConfig) -> Tensor:
    """The noise power per bin: a low quantile over time of the smoothed power.

    Shape:
        power (..., F, T) -> (..., F, 1)
    """
    smoothed = power.clone()
    for t in range(1, power.shape[-1]):
        smoothed[..., t] = config.smoothing * smoothed[..., t - 1] + (1 - config.smoothing) * power[..., t]
    return torch.quantile(smoothed, config.quantile, dim=-1, keepdim=True)


def suppression_gain(spec: Tensor, config: NoiseFloorConfig | None = None) -> Tensor:
    """The foreground's gain in [floor, 1] over a (multichannel) STFT, shared by its channels.

    Shape:
        spec (C, F, T) complex -> (F, T) real
    """
    config = config or NoiseFloorConfig()
    power = spec.abs().square().mean(dim=0).double()  # (F, T)
    noise = noise_floor(power, config).clamp_min(1e-20)  # (F, 1)
    gains = torch.empty_like(power)
    clean = torch.zeros_like(power[:, 0])  # the previous frame's clean power estimate
    for t in range(power.shape[-1]):
        posterior = power[:, t] / noise[:, 0]
        instant = (posterior - 1).clamp_min(0)  # this frame's own SNR estimate
        prior_snr = config.decision * clean / noise[:, 0] + (1 - config.decision) * instant
        gain = (prior_snr / (1 + prior_snr)).clamp_min(config.floor)
        gains[:, t] = gain
        clean = gain.square() * power[:, t]
    return gains.to(spec.real.dtype)


__all__ = ["NoiseFloorConfig", "noise_floor", "suppression_gain"]
