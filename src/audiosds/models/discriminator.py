"""Waveform discriminators for fine-tuning the HiFi-GAN vocoder adversarially (HiFi-GAN, Kong et al.
2020, section 2.2-2.3): a multi-period discriminator (MPD), which folds the waveform into a 2-D
(T / p, p) plane for several periods p and so judges periodic structure, and a multi-scale
discriminator (MSD), which judges the waveform and its 2x and 4x average-pooled versions with
strided, grouped 1-D convolutions.

The layout follows the paper; the widths are this project's (:class:`DiscriminatorConfig`): the
paper's 70 M parameters train too slowly on a 2-core CPU, and no pretrained discriminator ships
with the vocoder's wheel, so these start from random weights. Training only: nothing at run time
imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SLOPE = 0.1  # leaky-ReLU slope between layers


@dataclass(frozen=True)
class DiscriminatorConfig:
    periods: tuple[int, ...] = (2, 3, 5, 7, 11)  # MPD periods: primes, the branches overlap little
    period_channels: tuple[int, ...] = (16, 32, 64, 128)  # MPD widths (the paper: 32, 128, 512, 1024)
    scales: int = 3  # MSD: the waveform, then average-pooled by 2 each time
    scale_channels: tuple[int, ...] = (16, 32, 64, 128, 128)  # MSD widths (the paper: 128 ... 1024)
    scale_groups: int = 4  # grouped convolutions in the MSD's strided layers

    def __post_init__(self) -> None:
        if not self.periods or any(p < 2 for p in self.periods):
            raise ValueError(f"periods: expected integers >= 2, got {self.periods!r}")
        if self.scales < 1:
            raise ValueError(f"scales: expected >= 1, got {self.scales!r}")
        for c in self.scale_channels[1:]:
            if c % self.scale_groups:
                raise ValueError(f"scale_channels: {c} is not a multiple of scale_groups {self.scale_groups}")


def _run(convs: nn.ModuleList, post: nn.Module, x: Tensor) -> tuple[Tensor, list[Tensor]]:
    """A branch's layers in turn: (its flattened logits, every layer's output)."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), SLOPE)
        features.append(x)
    x = post(x)
    features.append(x)
    return x.flatten(1), features


class PeriodDiscriminator(nn.Module):
    """One MPD branch: the waveform folded at ``period`` and judged by (5, 1) convolutions.

    Shape:
        audio (B, 1, N) -> logits (B, L), features [(B, C_i, T_i, period), ...]
    """

    def __init__(self, period: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.period = period
        sizes = (1, *channels)
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, (5, 1), (3, 1), padding=(2, 0))
            for c_in, c_out in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.convs.append(nn.Conv2d(channels[-1], channels[-1], (5, 1), padding=(2, 0)))
        self.post = nn.Conv2d(channels[-1], 1, (3, 1), padding=(1, 0))

    def forward(self, audio: Tensor) -> tuple[Tensor, list[Tensor]]:
        b, c, n = audio.shape
        pad = (-n) % self.period
        x = F.pad(audio, (0, pad), mode="reflect" if pad < n else "constant")
        return _run(self.convs, self.post, x.reshape(b, c, (n + pad) // self.period, self.period))


class ScaleDiscriminator(nn.Module):
    """One MSD branch: strided, grouped 1-D convolutions over the waveform.

    Shape:
        audio (B, 1, N) -> logits (B, L), features [(B, C_i, T_i), ...]
    """

    def __init__(self, channels: tuple[int, ...], groups: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv1d(1, channels[0], 15, padding=7)])
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:], strict=True)):
            stride = 2 if i == 0 else 4
            self.convs.append(nn.Conv1d(c_in, c_out, 41, stride, padding=20, groups=groups))
        self.convs.append(nn.Conv1d(channels[-1], channels[-1], 5, padding=2))
        self.post = nn.Conv1d(channels[-1], 1, 3, padding=1)

    def forward(self, audio: Tensor) -> tuple[Tensor, list[Tensor]]:
        return _run(self.convs, self.post, audio)


class Discriminators(nn.Module):
    """The MPD and MSD branches together: a list of (logits, features), one per branch.

    Shape:
        audio (B, N) or (B, 1, N) -> [((B, L_k), [features]), ...]
    """

    def __init__(self, config: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = DiscriminatorConfig() if config is None else config
        self.periods = nn.ModuleList(PeriodDiscriminator(p, cfg.period_channels) for p in cfg.periods)
        self.scales = nn.ModuleList(
            ScaleDiscriminator(cfg.scale_channels, cfg.scale_groups) for _ in range(cfg.scales)
        )

    def forward(self, audio: Tensor) -> list[tuple[Tensor, list[Tensor]]]:
        if audio.dim() == 2:
            audio = audio[:, None]
        if audio.dim() != 3 or audio.shape[1] != 1:
            raise ValueError(f"expected audio (B, N) or (B, 1, N), got {tuple(audio.shape)}")
        out = [branch(audio) for branch in self.periods]
        x = audio
        for i, branch in enumerate(self.scales):
            if i > 0:
                x = F.avg_pool1d(x, 4, 2, padding=2)
            out.append(branch(x))
        return out


def discriminator_loss(real: list, fake: list) -> Tensor:
    """Least-squares GAN loss of the discriminators: real towards 1, generated towards 0.

    Args:
        real, fake: :class:`Discriminators` outputs on real and on generated (detached) audio.
    """
    return sum(((r - 1) ** 2).mean() + f.square().mean() for (r, _), (f, _) in zip(real, fake, strict=True))


def generator_losses(real: list, fake: list) -> tuple[Tensor, Tensor]:
    """(adversarial, feature-matching) losses of the generator (HiFi-GAN eq. 2 and 3).

    The adversarial term pulls each branch's logits on generated audio towards 1; feature matching is
    the L1 distance between every intermediate feature map of real and generated audio (real ones
    detached), averaged per map and summed over maps.

    Args:
        real: :class:`Discriminators` outputs on real audio.
        fake: outputs on generated audio, computed so gradients reach the generator only.
    """
    adversarial = sum(((f - 1) ** 2).mean() for f, _ in fake)
    matching = sum(
        (a - b.detach()).abs().mean()
        for (_, feats_real), (_, feats_fake) in zip(real, fake, strict=True)
        for a, b in zip(feats_fake, feats_real, strict=True)
    )
    return adversarial, matching


def frozen_call(model: nn.Module, audio: Tensor) -> list[tuple[Tensor, list[Tensor]]]:
    """``model(audio)`` with its parameters detached: gradients reach ``audio`` but not ``model``."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    return torch.func.functional_call(model, params, (audio,))
