"""The vocoder's waveform discriminators (models/discriminator.py): one output per branch, samples
judged independently, the least-squares losses vanish exactly at their targets, and a frozen call
sends gradients to the audio only."""

from __future__ import annotations

import pytest
import torch

from audiosds.models.discriminator import (
    DiscriminatorConfig,
    Discriminators,
    discriminator_loss,
    frozen_call,
    generator_losses,
)

SMALL = DiscriminatorConfig(
    periods=(2, 3), period_channels=(4, 8), scales=2, scale_channels=(4, 8, 8), scale_groups=2
)


def small_discriminators(seed: int = 0) -> Discriminators:
    torch.manual_seed(seed)
    return Discriminators(SMALL)


def audio(batch: int = 3, n: int = 1001) -> torch.Tensor:
    return 0.1 * torch.randn(batch, n, generator=torch.Generator().manual_seed(2))


def test_one_output_per_branch_and_each_sample_judged_alone() -> None:
    disc = small_discriminators()
    x = audio()
    out = disc(x)
    assert len(out) == len(SMALL.periods) + SMALL.scales
    for logits, features in out:
        assert logits.shape[0] == 3 and logits.dim() == 2 and logits.shape[1] > 0
        assert all(f.shape[0] == 3 for f in features) and features[-1].flatten(1).shape == logits.shape
    single = disc(x[1:2])
    for (batched, _), (alone, _) in zip(out, single, strict=True):
        assert torch.allclose(batched[1:2], alone, atol=1e-6)  # no batch statistics
    folded = out[1][1][0]  # period 3: (B, C, ceil(N / 3) / 3, 3)
    assert folded.shape[-1] == 3


def test_bad_audio_and_configs_are_refused() -> None:
    with pytest.raises(ValueError, match=r"expected audio \(B, N\) or \(B, 1, N\), got \(2, 2, 100\)"):
        small_discriminators()(torch.zeros(2, 2, 100))
    with pytest.raises(ValueError, match="periods"):
        DiscriminatorConfig(periods=(1, 2))
    with pytest.raises(ValueError, match="not a multiple of scale_groups"):
        DiscriminatorConfig(scale_channels=(4, 6), scale_groups=4)


def test_least_squares_losses_vanish_at_their_targets() -> None:
    feats = [torch.randn(2, 3, 5)]
    real = [(torch.ones(2, 4), feats), (torch.ones(2, 2), feats)]
    fake = [(torch.zeros(2, 4), feats), (torch.zeros(2, 2), feats)]
    assert float(discriminator_loss(real, fake)) == 0.0
    assert float(discriminator_loss(fake, real)) == pytest.approx(
        4.0
    )  # every logit off by 1, 2 branches x 2 terms
    fooled = [(torch.ones(2, 4), feats), (torch.ones(2, 2), feats)]
    adversarial, matching = generator_losses(real, fooled)
    assert float(adversarial) == 0.0 and float(matching) == 0.0
    shifted = [(torch.zeros(2, 4), [feats[0] + 0.5]), (torch.zeros(2, 2), [feats[0] - 0.5])]
    adversarial, matching = generator_losses(real, shifted)
    assert float(adversarial) == pytest.approx(2.0) and float(matching) == pytest.approx(1.0)


def test_a_frozen_call_sends_gradients_to_the_audio_only() -> None:
    disc = small_discriminators()
    x = audio().requires_grad_(True)
    sum(logits.square().mean() for logits, _ in frozen_call(disc, x)).backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert all(p.grad is None for p in disc.parameters())
    plain = disc(x.detach())
    for (a, _), (b, _) in zip(frozen_call(disc, x.detach()), plain, strict=True):
        assert torch.equal(a, b)  # the same function, only the gradients differ
