"""The EDM denoiser's U-Net in both forms: 1-D over time (D bins as channels) and 2-D over (D, T)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from audiosds.models.denoiser import DenoiserConfig, EDMDenoiser, edm_loss
from audiosds.models.weights import load_denoiser

ONE_D = DenoiserConfig(latent_channels=16, channels=(16, 32), attention_levels=(1,), emb_dim=32, cond_dim=8)
TWO_D = replace(ONE_D, dims=2, channels=(8, 16, 32), attention_levels=(2,))


def _randomised(config: DenoiserConfig, seed: int = 0) -> EDMDenoiser:
    """A denoiser whose zero-initialised output layers are random too, so every path shows."""
    torch.manual_seed(seed)
    model = EDMDenoiser(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize("config", [ONE_D, TWO_D], ids=["1d", "2d"])
@pytest.mark.parametrize("frames", [1, 7, 32, 45])
def test_any_length_keeps_its_shape_and_sigma_zero_is_identity(config: DenoiserConfig, frames: int) -> None:
    model = _randomised(config)
    z = torch.randn(3, config.latent_channels, frames)
    cond = torch.randn(3, config.cond_dim)
    with torch.no_grad():
        x0 = model(z, torch.tensor([0.5, 2.0, 10.0]), cond)
        same = model(z, torch.zeros(3), cond)
    assert x0.shape == z.shape and torch.isfinite(x0).all()
    assert torch.equal(same, z)


def test_the_two_dimensional_net_sees_neighbouring_bins_not_distant_ones() -> None:
    """A change in one bin moves the 2-D net's output in nearby bins far more than in distant ones.
    The bin-position channel breaks shift equivariance: a pattern moved up in frequency is not
    denoised as a moved copy."""
    model = _randomised(replace(TWO_D, channels=(8,), attention_levels=()))  # one level, no attention
    z = torch.randn(1, 16, 24)
    cond = torch.randn(1, 8)
    sigma = torch.tensor([1.0])
    with torch.no_grad():
        base = model(z, sigma, cond)
        bumped = z.clone()
        bumped[0, 3, 12] += 5.0
        delta = (model(bumped, sigma, cond) - base).abs()[0]
        shifted = model(z.roll(4, dims=1), sigma, cond)
    per_bin = delta.amax(dim=1)
    # 3x3 convs reach a few bins; only GroupNorm's statistics and the bottom attention reach further
    assert per_bin[10:].max() < 0.1 * torch.cat([per_bin[1:3], per_bin[4:6]]).max()
    assert not torch.allclose(shifted[0, 6:14], base.roll(4, dims=1)[0, 6:14], atol=1e-4)


def test_configs_that_cannot_work_are_refused() -> None:
    with pytest.raises(ValueError, match="dims"):
        replace(ONE_D, dims=3)
    with pytest.raises(ValueError, match="multiple of its stride"):
        replace(TWO_D, latent_channels=18)  # three levels: the bins must halve twice


@pytest.mark.parametrize("config", [ONE_D, TWO_D], ids=["1d", "2d"])
def test_a_few_steps_fit_a_fixed_batch(config: DenoiserConfig) -> None:
    """The loss on one fixed batch (same sigmas and noise each step) falls: the net learns."""
    torch.manual_seed(0)
    model = EDMDenoiser(config)
    z = torch.randn(4, config.latent_channels, 16)
    cond = torch.randn(4, config.cond_dim)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss() -> torch.Tensor:
        return edm_loss(model, z, cond, torch.Generator().manual_seed(1))

    with torch.no_grad():
        first = float(loss())
    for _ in range(30):
        opt.zero_grad()
        loss().backward()
        opt.step()
    with torch.no_grad():
        assert float(loss()) < 0.7 * first


def test_a_saved_two_dimensional_denoiser_loads_with_its_form(tmp_path: Path) -> None:
    model = _randomised(TWO_D)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "denoiser.safetensors")
    (tmp_path / "denoiser.json").write_text(json.dumps(TWO_D.to_dict()))
    loaded = load_denoiser(tmp_path)
    assert loaded.config.dims == 2
    z, cond = torch.randn(2, 16, 20), torch.randn(2, 8)
    with torch.no_grad():
        torch.testing.assert_close(
            loaded(z, torch.tensor([0.3, 3.0]), cond), model(z, torch.tensor([0.3, 3.0]), cond)
        )


def test_a_config_without_dims_is_the_one_dimensional_net() -> None:
    """Weights exported before the 2-D form (no ``dims`` in denoiser.json) load as the 1-D net."""
    d = ONE_D.to_dict()
    del d["dims"]
    assert DenoiserConfig.from_dict(d).dims == 1
