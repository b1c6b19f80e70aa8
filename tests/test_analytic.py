"""The analytic prior is an exact oracle: linear autoencoder, Gaussian data, posterior-mean denoiser."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from audiosds.priors import build
from audiosds.priors.analytic import AnalyticConfig, AnalyticPrior


@pytest.fixture
def prior() -> AnalyticPrior:
    return build("analytic")


def test_encoder_rows_orthonormal_and_roundtrip(prior: AnalyticPrior) -> None:
    e = prior.encoder.double()
    torch.testing.assert_close(
        e @ e.T, torch.eye(prior.latent_channels, dtype=torch.float64), atol=1e-6, rtol=0
    )
    z = torch.randn(3, 8, 5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(prior.encode(prior.decode(z)), z, atol=1e-5, rtol=0)


def test_decode_encode_is_an_orthogonal_projection(prior: AnalyticPrior) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 1, 640, generator=g, dtype=torch.float64)
    y = torch.randn(2, 1, 640, generator=g, dtype=torch.float64)

    def proj(a: torch.Tensor) -> torch.Tensor:
        return prior.decode(prior.encode(a))

    torch.testing.assert_close(proj(proj(x)), proj(x))  # idempotent
    torch.testing.assert_close((proj(x) * y).sum(), (x * proj(y)).sum())  # symmetric
    assert proj(x).norm() < 0.5 * x.norm()  # a rank-D projection of white noise keeps little


def test_tail_is_zero_padded(prior: AnalyticPrior) -> None:
    x = torch.randn(1, 1, 1000, generator=torch.Generator().manual_seed(2))
    padded = torch.nn.functional.pad(x, (0, 24))
    assert prior.encode(x).shape == (1, 8, 16)
    torch.testing.assert_close(prior.encode(x), prior.encode(padded))


def test_stereo_frames_are_channel_interleaved() -> None:
    prior = AnalyticPrior(AnalyticConfig(channels=2, downsampling=16, latent_channels=12))
    x = torch.randn(2, 2, 64, generator=torch.Generator().manual_seed(3))
    z = prior.encode(x)
    assert z.shape == (2, 12, 4)
    # frame t of the latent only sees samples [16 t, 16 t + 16) of both channels
    bumped = x.clone()
    bumped[:, 1, 16:32] += 1.0
    changed = (prior.encode(bumped) - z).abs().amax(dim=(0, 1)) > 1e-6
    assert changed.tolist() == [False, True, False, False]
    torch.testing.assert_close(prior.encode(prior.decode(z)), z, atol=1e-5, rtol=0)


def test_prompt_mean_is_a_stable_function_of_the_text(prior: AnalyticPrior) -> None:
    mu = prior.prompt_mean("A dog barking")
    assert mu.shape == (8,)
    torch.testing.assert_close(prior.prompt_mean("  a DOG barking "), mu, rtol=0, atol=0)
    torch.testing.assert_close(build("analytic").prompt_mean("a dog barking"), mu, rtol=0, atol=0)
    assert (prior.prompt_mean("a cat meowing") - mu).abs().max() > 0.1
    assert (build("analytic", seed=1).prompt_mean("a dog barking") - mu).abs().max() > 0.1
    assert torch.equal(prior.prompt_mean("   "), torch.zeros(8))
    # the same numbers in a fresh interpreter with a different string-hash seed
    code = "from audiosds.priors import build; print(build('analytic').prompt_mean('a dog barking').tolist())"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert eval(out.stdout) == mu.tolist()


def test_embed_conditioning_and_negative_prompts(prior: AnalyticPrior) -> None:
    cond = prior.embed(["a dog", "a cat"])
    assert cond.cond["mean"].shape == (2, 8) and cond.cond["std"].tolist() == [0.5, 0.5]
    assert torch.equal(cond.uncond["mean"], torch.zeros(2, 8)) and cond.uncond["std"].tolist() == [1.0, 1.0]
    neg = prior.embed(["a dog", "a cat"], negative=["rain", ""])
    assert torch.equal(neg.uncond["mean"][0], prior.prompt_mean("rain"))
    assert neg.uncond["std"].tolist() == [0.5, 1.0]
    assert torch.equal(neg.uncond["mean"][1], torch.zeros(8))


def test_denoiser_is_the_posterior_mean_by_tweedie(prior: AnalyticPrior) -> None:
    """x0_hat = z_sigma + sigma^2 grad log p_sigma(z_sigma), p_sigma = N(mu, (std^2 + sigma^2) I)."""
    cond = prior.embed(["a dog", ""])
    g = torch.Generator().manual_seed(4)
    z_sigma = torch.randn(4, 8, 3, generator=g, dtype=torch.float64) * 2
    sigma = torch.tensor([0.01, 0.7, 3.0, 50.0], dtype=torch.float64)
    mu = torch.stack([prior.prompt_mean("a dog")] * 2 + [torch.zeros(8)] * 2).double()[:, :, None]
    var = torch.tensor([0.25, 0.25, 1.0, 1.0], dtype=torch.float64)[:, None, None] + sigma[:, None, None] ** 2
    z = z_sigma.clone().requires_grad_(True)
    log_p = (-0.5 * (z - mu) ** 2 / var).sum()
    (score,) = torch.autograd.grad(log_p, z)
    expected = z_sigma + sigma[:, None, None] ** 2 * score
    torch.testing.assert_close(prior.denoise(z_sigma, sigma, cond), expected)
    torch.testing.assert_close(prior.denoise(z_sigma, 0.0, cond), z_sigma)  # sigma = 0: identity


def test_ode_solution_solves_the_probability_flow_ode(prior: AnalyticPrior) -> None:
    """d z / d sigma = (z - D(z, sigma)) / sigma along the closed-form path, by finite differences."""
    cond = prior.embed(["a dog"])
    z1 = torch.randn(2, 8, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    for s in (0.05, 1.0, 20.0):
        h = 1e-5 * s
        z_s = prior.ode_solution(z1, 1.0, cond, sigma_to=s)
        dz = (prior.ode_solution(z1, 1.0, cond, s + h) - prior.ode_solution(z1, 1.0, cond, s - h)) / (2 * h)
        torch.testing.assert_close(dz, (z_s - prior.denoise(z_s, s, cond)) / s, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("negative", [None, ["rain"]])
@pytest.mark.parametrize("cfg_scale", [1.0, 3.0])
def test_cfg_fixed_point_is_a_fixed_point_of_the_guided_denoiser(
    prior: AnalyticPrior, cfg_scale: float, negative: list[str] | None
) -> None:
    """The guided denoiser is affine, so E_eps D(z* + sigma eps) = D(z*) = z*."""
    cond = prior.embed(["a dog"], negative=negative)
    for sigma in (0.1, 1.0, 10.0):
        z_star = prior.cfg_fixed_point(cond, sigma, cfg_scale)  # (1, D)
        z = z_star[:, :, None].expand(1, 8, 4).double()
        torch.testing.assert_close(prior.denoise(z, sigma, cond, cfg_scale), z, rtol=1e-6, atol=1e-6)
    mu = prior.prompt_mean("a dog")
    if cfg_scale == 1.0:
        torch.testing.assert_close(prior.cfg_fixed_point(cond, 2.0, 1.0)[0], mu)
    else:
        assert (prior.cfg_fixed_point(cond, 1.0, cfg_scale)[0] - mu).abs().max() > 0.3


def test_cfg_fixed_point_with_several_sigmas_zeroes_the_weighted_residual(prior: AnalyticPrior) -> None:
    cond = prior.embed(["a dog"])
    sigmas = torch.tensor([0.3, 1.0, 4.0])
    weights = torch.tensor([1.0, 2.0, 0.5])
    z = prior.cfg_fixed_point(cond, sigmas, 3.0, weights)[:, :, None].double()  # (1, D, 1)
    residual = sum(
        w * (z - prior.denoise(z, s.item(), cond, 3.0)) for s, w in zip(sigmas, weights, strict=True)
    )
    torch.testing.assert_close(residual, torch.zeros_like(z), atol=1e-6, rtol=0)


def test_sigma_of_t_is_log_linear_over_the_config_range(prior: AnalyticPrior) -> None:
    t = torch.tensor([0.0, 0.5, 1.0])
    torch.testing.assert_close(prior.sigma_of_t(t), torch.tensor([0.002, (0.002 * 80) ** 0.5, 80.0]).double())
    torch.testing.assert_close(prior.t_of_sigma(prior.sigma_of_t(t)), t.double())


def test_frozen_state_has_no_gradients(prior: AnalyticPrior) -> None:
    assert list(prior.parameters()) == []
    assert all(not b.requires_grad for b in prior.buffers())
    assert prior.device == torch.device("cpu")


def test_config_validation() -> None:
    with pytest.raises(TypeError):
        AnalyticConfig(**{"latent_dim": 4})  # a mistyped key is an error
    with pytest.raises(ValueError, match="latent_channels"):
        AnalyticConfig(latent_channels=65)
    with pytest.raises(ValueError, match="data_std"):
        AnalyticConfig(data_std=0.0)
    with pytest.raises(ValueError, match="sigma_max"):
        AnalyticConfig(sigma_min=1.0, sigma_max=0.5)
    prior = build("analytic")
    with pytest.raises(ValueError, match="prompts"):
        prior.embed("a dog")
    with pytest.raises(ValueError, match="negative"):
        prior.embed(["a", "b"], negative=["c"])
    with pytest.raises(ValueError, match=r"x: expected \(B, 1, N\)"):
        prior.encode(torch.zeros(1, 2, 64))
    with pytest.raises(ValueError, match="z: expected"):
        prior.decode(torch.zeros(1, 4, 2))
