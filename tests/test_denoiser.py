"""The EDM denoiser: its preconditioning and loss, and its U-Net in both forms, 1-D over time (D bins as
channels) and 2-D over (D, T)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from audiosds.models.denoiser import DenoiserConfig, EDMDenoiser, UNet, edm_coefficients, edm_loss
from audiosds.models.text import EMBED_DIM
from audiosds.models.weights import load_denoiser
from fake_text import FakeText

ONE_D = DenoiserConfig(latent_channels=16, channels=(16, 32), attention_levels=(1,), emb_dim=32, cond_dim=8)
TWO_D = replace(ONE_D, dims=2, channels=(8, 16, 32), attention_levels=(2,))
# conditioned on MiniLM-sized text, as the shipped prior
TEXT = replace(
    ONE_D, latent_channels=4, channels=(8, 16), groups=4, emb_dim=16, cond_dim=EMBED_DIM, sigma_data=0.7
)


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


def test_edm_coefficient_identities() -> None:
    sd = 0.7
    sigma = torch.tensor([0.0, 1e-3, 0.1, 0.7, 3.0, 80.0], dtype=torch.float64)
    c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, sd)
    assert c_skip[0] == 1 and c_out[0] == 0 and math.isclose(float(c_in[0]), 1 / sd)
    # Unit-variance network input for data of std sd: c_in^2 (sigma^2 + sd^2) = 1.
    torch.testing.assert_close(c_in.square() * (sigma.square() + sd**2), torch.ones_like(sigma))
    # Unit-variance training target (z - c_skip (z + sigma eps)) / c_out for z ~ N(0, sd^2).
    s = sigma[1:]
    target_var = ((1 - c_skip[1:]).square() * sd**2 + c_skip[1:].square() * s.square()) / c_out[1:].square()
    torch.testing.assert_close(target_var, torch.ones_like(s))
    # At sigma = sd: c_skip = 1/2 and c_out = sd / sqrt(2).
    assert math.isclose(float(c_skip[3]), 0.5) and math.isclose(float(c_out[3]), sd / math.sqrt(2))
    torch.testing.assert_close(c_noise[1:], s.log() / 4)


def test_the_output_approaches_the_input_as_sigma_goes_to_zero() -> None:
    model = _randomised(TEXT)
    z = torch.randn(2, 4, 37, generator=torch.Generator().manual_seed(5))
    cond = model.null_embedding(2)
    with torch.no_grad():
        previous = math.inf
        for sigma in (1e-1, 1e-2, 1e-3, 1e-4):
            err = float((model(z, torch.full((2,), sigma), cond) - z).abs().max())
            assert err < previous  # shrinks with sigma (c_out ~ sigma)
            previous = err
        assert previous < 1e-2


def test_a_batch_equals_its_singles() -> None:
    model = _randomised(TEXT)
    g = torch.Generator().manual_seed(6)
    z = torch.randn(3, 4, 50, generator=g)
    sigma = torch.tensor([0.05, 1.0, 20.0])
    cond = torch.randn(3, EMBED_DIM, generator=g)
    with torch.no_grad():
        batch = model(z, sigma, cond)
        singles = torch.cat([model(z[i : i + 1], sigma[i : i + 1], cond[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, singles, atol=1e-5, rtol=1e-5)


def test_standardised_condition_is_scaled_by_the_caption_statistics() -> None:
    net = UNet(replace(TEXT, cond_standardize=True))
    torch.manual_seed(3)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.2 * torch.randn_like(p))
    embeddings = FakeText()([f"caption {i}" for i in range(20)])
    net.set_cond_statistics(embeddings)
    x, c_noise = torch.randn(2, 4, 8), torch.zeros(2)
    standardised = (embeddings[:2] - embeddings.mean(0)) / embeddings.std(0)
    plain = UNet(replace(TEXT, cond_standardize=False))
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if k not in ("cond_mean", "cond_std")})
    torch.testing.assert_close(net(x, c_noise, embeddings[:2]), plain(x, c_noise, standardised))
    with pytest.raises(ValueError, match="cond_standardize=False"):
        plain.set_cond_statistics(embeddings)


def test_edm_loss_is_seeded_and_drops_conditions() -> None:
    model = _randomised(replace(TEXT, cond_dropout=0.5), seed=9).train()
    z = torch.randn(8, 4, 24, generator=torch.Generator().manual_seed(10))
    cond = torch.randn(8, EMBED_DIM, generator=torch.Generator().manual_seed(11))
    a = edm_loss(model, z, cond, torch.Generator().manual_seed(12))
    b = edm_loss(model, z, cond, torch.Generator().manual_seed(12))
    c = edm_loss(model, z, cond, torch.Generator().manual_seed(13))
    assert a.item() == b.item() and a.item() != c.item()
    # Dropout reaches the null embedding: its gradient is non-zero.
    a.backward()
    assert model.null_cond.grad.abs().sum() > 0


def test_bfloat16_loss_draws_the_same_noise_and_stays_close_to_float32() -> None:
    model = _randomised(TEXT, seed=9).train()
    z = torch.randn(8, 4, 24, generator=torch.Generator().manual_seed(10))
    cond = torch.randn(8, EMBED_DIM, generator=torch.Generator().manual_seed(11))
    grads = []
    for dtype in (None, torch.bfloat16):
        model.zero_grad()
        loss = edm_loss(model, z, cond, torch.Generator().manual_seed(12), compute_dtype=dtype)
        assert loss.dtype == torch.float32
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
        assert all(p.dtype == torch.float32 for p in model.parameters())
        if dtype is None:
            full = loss.item()
    # bfloat16 keeps 8 mantissa bits: about 0.4% per operation, a few % through the network.
    assert loss.item() == pytest.approx(full, rel=0.05)
    cosine = torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0)
    assert cosine > 0.98, cosine
    assert not torch.equal(grads[0], grads[1])  # the autocast did run in bfloat16
