"""The embedded prior's waveform <-> latent autoencoder (a small convolutional VAE).

16 kHz mono audio is folded into ``patch`` polyphase channels (a learned filterbank at
``sample_rate / patch`` frames/s), processed by dilated residual units, downsampled by a
strided convolution to the latent rate ``sample_rate / downsampling`` and projected to a
Gaussian posterior (mean, log std) over ``latent_channels`` channels. The decoder mirrors it
with sub-pixel (conv + channel-to-time shuffle) upsampling, so every layer is an ordinary
``Conv1d`` and any length works (the input is zero-padded to a multiple of ``downsampling``).

The latent is what the denoiser diffuses and what Decoder-SDS decodes (Audio-SDS arXiv
2505.04621 eqs. 5-6); classic SDS (eq. 4) differentiates :meth:`Autoencoder.encode`.

This module imports only torch: the Prior backend loads it at run time.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _positive_int(owner: str, name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{owner}.{name}: expected a positive int, got {value!r}")


@dataclass(frozen=True)
class AutoencoderConfig:
    sample_rate: int = 16000
    # D: 16 channels at 250 frames/s = 4000 numbers/s for 16000 samples/s. After 1000 steps 32 channels
    # reconstructed only ~1 dB better (held-out SI-SDR) and doubled what the denoiser must model.
    latent_channels: int = 16
    patch: int = 16  # samples folded into channels at the input: the "high" rate is 1000 frames/s
    down: int = 4  # strided conv from the high rate to the latent rate; downsampling = patch * down
    high_channels: int = 64  # width at the high rate
    low_channels: int = 192  # width at the latent rate
    high_dilations: tuple[int, ...] = (1, 3)  # one residual unit per dilation at the high rate
    low_dilations: tuple[int, ...] = (1, 3, 9)  # one residual unit per dilation at the latent rate
    kernel: int = 7  # kernel of the dilated convs (odd)
    # Audio is multiplied by this before the encoder and the decoder's output divided by it, so world
    # clips (RMS ~0.02-0.1) enter the network near unit scale: at raw scale training crawls.
    input_gain: float = 16.0
    # log std of the posterior is clamped to this range before sampling; the prior uses the mean.
    min_log_std: float = -9.0
    max_log_std: float = 2.0

    def __post_init__(self) -> None:
        for name in ("sample_rate", "latent_channels", "patch", "down", "high_channels", "low_channels"):
            _positive_int("AutoencoderConfig", name, getattr(self, name))
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"AutoencoderConfig.kernel: expected an odd positive int, got {self.kernel!r}")
        for name in ("high_dilations", "low_dilations"):
            value = tuple(getattr(self, name))
            for d in value:
                _positive_int("AutoencoderConfig", name, d)
            object.__setattr__(self, name, value)  # JSON gives lists; keep the dataclass hashable
        if not self.input_gain > 0:
            raise ValueError(f"AutoencoderConfig.input_gain: expected > 0, got {self.input_gain!r}")
        if not self.min_log_std < self.max_log_std:
            raise ValueError(
                f"AutoencoderConfig.max_log_std: expected > min_log_std = {self.min_log_std}, "
                f"got {self.max_log_std}"
            )

    @property
    def downsampling(self) -> int:
        """Audio samples per latent frame."""
        return self.patch * self.down

    def to_dict(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> AutoencoderConfig:
        """``AutoencoderConfig(**d)``: an unknown key is a TypeError naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(
                f"AutoencoderConfig: unknown keys {unknown}; expected a subset of {sorted(known)}"
            )
        return cls(**d)


class Snake(nn.Module):
    """Snake activation x + sin^2(alpha x) / alpha with a learned alpha per channel (periodic bias
    that suits tonal audio).

    Shape:
        (B, C, T) -> (B, C, T)
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.log_alpha = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        alpha = self.log_alpha.exp()
        return x + torch.sin(alpha * x).square() / alpha


class ResidualUnit(nn.Module):
    """x + conv1x1(snake(conv_k,dilated(snake(x)))): a dilated residual unit.

    Shape:
        (B, C, T) -> (B, C, T)
    """

    def __init__(self, channels: int, dilation: int, kernel: int) -> None:
        super().__init__()
        self.act1 = Snake(channels)
        self.conv1 = nn.Conv1d(
            channels, channels, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2
        )
        self.act2 = Snake(channels)
        self.conv2 = nn.Conv1d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.act2(self.conv1(self.act1(x))))


def fold(x: Tensor, factor: int) -> Tensor:
    """Polyphase fold: time to channels. ``fold(x, f)[:, c * f + r, t] = x[:, c, t * f + r]``.

    Shape:
        (B, C, T * factor) -> (B, C * factor, T)
    """
    batch, channels, n = x.shape
    return (
        x.reshape(batch, channels, n // factor, factor).transpose(2, 3).reshape(batch, channels * factor, -1)
    )


def unfold(x: Tensor, factor: int) -> Tensor:
    """Inverse of :func:`fold` (a 1-D pixel shuffle).

    Shape:
        (B, C * factor, T) -> (B, C, T * factor)
    """
    batch, cf, frames = x.shape
    return x.reshape(batch, cf // factor, factor, frames).transpose(2, 3).reshape(batch, cf // factor, -1)


class Encoder(nn.Module):
    """Waveform -> (mean, log std) of the latent posterior.

    Shape:
        (B, 1, T * downsampling) -> two (B, D, T)
    """

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        k = cfg.kernel
        self.inp = nn.Conv1d(cfg.patch, cfg.high_channels, k, padding=k // 2)
        self.high = nn.Sequential(*(ResidualUnit(cfg.high_channels, d, k) for d in cfg.high_dilations))
        self.act_high = Snake(cfg.high_channels)
        self.down = nn.Conv1d(cfg.high_channels * cfg.down, cfg.low_channels, 3, padding=1)
        self.low = nn.Sequential(*(ResidualUnit(cfg.low_channels, d, k) for d in cfg.low_dilations))
        self.act_low = Snake(cfg.low_channels)
        self.out = nn.Conv1d(cfg.low_channels, 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.high(self.inp(fold(x * self.cfg.input_gain, self.cfg.patch)))  # (B, Ch, T * down)
        h = self.low(self.down(fold(self.act_high(h), self.cfg.down)))  # (B, Cl, T)
        mean, log_std = self.out(self.act_low(h)).chunk(2, dim=1)
        return mean, log_std.clamp(self.cfg.min_log_std, self.cfg.max_log_std)


class Decoder(nn.Module):
    """Latent -> waveform.

    Shape:
        (B, D, T) -> (B, 1, T * downsampling)
    """

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        k = cfg.kernel
        self.inp = nn.Conv1d(cfg.latent_channels, cfg.low_channels, k, padding=k // 2)
        self.low = nn.Sequential(*(ResidualUnit(cfg.low_channels, d, k) for d in cfg.low_dilations))
        self.act_low = Snake(cfg.low_channels)
        self.up = nn.Conv1d(cfg.low_channels, cfg.high_channels * cfg.down, 3, padding=1)
        self.high = nn.Sequential(*(ResidualUnit(cfg.high_channels, d, k) for d in cfg.high_dilations))
        self.act_high = Snake(cfg.high_channels)
        self.out = nn.Conv1d(cfg.high_channels, cfg.patch, k, padding=k // 2)

    def forward(self, z: Tensor) -> Tensor:
        h = self.low(self.inp(z))  # (B, Cl, T)
        h = self.high(unfold(self.up(self.act_low(h)), self.cfg.down))  # (B, Ch, T * down)
        y = unfold(self.out(self.act_high(h)), self.cfg.patch)  # (B, 1, T * downsampling)
        return y / self.cfg.input_gain


class Autoencoder(nn.Module):
    """Convolutional VAE between 16 kHz mono audio and latents at ``sample_rate / downsampling``
    frames/s (64x time compression by default).

    Args:
        config: the architecture; see :class:`AutoencoderConfig`.
    """

    def __init__(self, config: AutoencoderConfig | None = None) -> None:
        super().__init__()
        self.config = config = AutoencoderConfig() if config is None else config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    @property
    def downsampling(self) -> int:
        return self.config.downsampling

    @property
    def latent_channels(self) -> int:
        return self.config.latent_channels

    def latent_frames(self, num_samples: int) -> int:
        """T = ceil(N / downsampling)."""
        return math.ceil(num_samples / self.downsampling)

    def _check_audio(self, x: Tensor) -> None:
        if x.ndim != 3 or x.shape[1] != 1:
            raise ValueError(
                f"x: expected (B, 1, N) audio at {self.config.sample_rate} Hz, got {tuple(x.shape)}"
            )

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log std of q(z | x); the tail is zero-padded to a whole latent frame.

        Shape:
            x (B, 1, N) -> mean (B, D, T), log_std (B, D, T) with T = ceil(N / downsampling)
        """
        self._check_audio(x)
        n = x.shape[-1]
        x = F.pad(x, (0, self.latent_frames(n) * self.downsampling - n))
        return self.encoder(x)

    def encode(self, x: Tensor) -> Tensor:
        """The posterior mean: the deterministic latent the prior diffuses.

        Shape:
            x (B, 1, N) -> z (B, D, ceil(N / downsampling))
        """
        return self.posterior(x)[0]

    def decode(self, z: Tensor) -> Tensor:
        """Latent -> audio.

        Shape:
            z (B, D, T) -> x (B, 1, T * downsampling)
        """
        if z.ndim != 3 or z.shape[1] != self.latent_channels:
            raise ValueError(f"z: expected (B, {self.latent_channels}, T), got {tuple(z.shape)}")
        return self.decoder(z)

    def forward(
        self, x: Tensor, generator: torch.Generator | None = None, latent_noise: float = 0.0
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Training pass: sample z ~ q(z | x) with ``generator`` and decode it. ``latent_noise`` > 0
        adds Gaussian noise of that many latent stds (of the batch) to z first, drawn after the
        posterior noise, so 0 leaves the generator's stream as it was.

        Returns:
            (x_hat cropped to N samples, mean, log_std).

        Shape:
            x (B, 1, N) -> x_hat (B, 1, N), mean (B, D, T), log_std (B, D, T)
        """
        mean, log_std = self.posterior(x)
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        z = mean + log_std.exp() * eps
        if latent_noise > 0:
            extra = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
            z = z + latent_noise * mean.detach().std() * extra
        x_hat = self.decode(z)
        return x_hat[..., : x.shape[-1]], mean, log_std


def kl_divergence(mean: Tensor, log_std: Tensor) -> Tensor:
    """Mean over elements of KL(N(mean, std^2) || N(0, 1)) = 0.5 (mean^2 + std^2 - 1) - log std.

    Shape:
        (B, D, T), (B, D, T) -> ()
    """
    return (0.5 * (mean.square() + (2 * log_std).exp() - 1.0) - log_std).mean()


__all__ = [
    "AutoencoderConfig",
    "Autoencoder",
    "Encoder",
    "Decoder",
    "ResidualUnit",
    "Snake",
    "fold",
    "unfold",
    "kl_divergence",
]
