"""The spectrogram discriminator: shapes, which side each loss trains, and that it can learn."""

from __future__ import annotations

import math

import pytest
import torch

from audiosds.training.discriminator import (
    DiscriminatorConfig,
    SpectrogramDiscriminator,
    adversarial_losses,
    spectrogram_channels,
)

TINY = DiscriminatorConfig(windows=(256, 64), channels=4, strided_layers=2)


def _signals(batch: int = 2, n: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.arange(n) / 16000
    real = torch.sin(2 * math.pi * 440 * t).expand(batch, 1, n).clone()
    fake = torch.randn(batch, 1, n, generator=torch.Generator().manual_seed(0)) * 0.3
    return real, fake


def test_shapes_and_loudness_invariance() -> None:
    real, _ = _signals()
    channels = spectrogram_channels(real, 256, TINY)
    assert channels.shape == (2, 3, 129, 2048 // 64 + 1)
    assert float((channels - spectrogram_channels(real * 0.01, 256, TINY)).abs().max()) < 1e-2
    outputs = SpectrogramDiscriminator(TINY)(real)
    assert len(outputs) == 2
    logits, features = outputs[0]
    assert logits.shape[:2] == (2, 1) and len(features) == 1 + TINY.strided_layers + 1
    with pytest.raises(ValueError, match=r"expected \(B, 1, N\)"):
        SpectrogramDiscriminator(TINY)(real[:, 0])
    with pytest.raises(ValueError, match="powers of two"):
        DiscriminatorConfig(windows=(300,))


def test_each_loss_trains_its_own_side() -> None:
    """The discriminator's hinge reaches its parameters only; the generator's terms reach x_hat only,
    and the parameters are trainable again afterwards."""
    torch.manual_seed(0)
    disc = SpectrogramDiscriminator(TINY)
    real, fake = _signals()
    for name, reaches_disc, reaches_signal in (
        ("discriminator", True, False),
        ("generator", False, True),
        ("feature_matching", False, True),
    ):
        x_hat = fake.clone().requires_grad_(True)
        disc.zero_grad(set_to_none=True)
        adversarial_losses(disc, x_hat, real)[name].backward()
        disc_grad = sum(float(p.grad.abs().sum()) for p in disc.parameters() if p.grad is not None)
        assert (disc_grad > 0) == reaches_disc, name
        assert (x_hat.grad is not None and float(x_hat.grad.abs().sum()) > 0) == reaches_signal, name
    assert all(p.requires_grad for p in disc.parameters())


def test_feature_matching_is_zero_for_the_real_clip_and_the_critic_learns() -> None:
    torch.manual_seed(0)
    disc = SpectrogramDiscriminator(TINY)
    real, fake = _signals()
    assert float(adversarial_losses(disc, real, real)["feature_matching"]) == pytest.approx(0.0, abs=1e-6)
    opt = torch.optim.Adam(disc.parameters(), lr=3e-3)
    first = float(adversarial_losses(disc, fake, real)["discriminator"].detach())
    for _ in range(40):
        opt.zero_grad()
        adversarial_losses(disc, fake, real)["discriminator"].backward()
        opt.step()
    terms = {k: v.detach() for k, v in adversarial_losses(disc, fake, real).items()}
    assert first > 1.5 and float(terms["discriminator"]) < 0.5  # a sine told from noise
    assert float(terms["generator"]) > 1.0  # so the generator is told its noise looks fake
