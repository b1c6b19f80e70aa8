"""Deterministic samplers against the analytic prior's closed-form probability-flow ODE."""

from __future__ import annotations

import pytest
import torch

from audiosds.priors import build
from audiosds.priors.analytic import AnalyticPrior
from audiosds.sampling import METHODS, STOCHASTIC, denoise_from, generate_latent, karras_sigmas, sample

PROMPT = "a dog barking"


@pytest.fixture
def prior() -> AnalyticPrior:
    return build("analytic")


def _noisy(prior: AnalyticPrior, sigma: float | torch.Tensor, seed: int = 0, batch: int = 4) -> torch.Tensor:
    """z_sigma = z + sigma eps with z drawn from the prompt's Gaussian, float64."""
    g = torch.Generator().manual_seed(seed)
    mu = prior.prompt_mean(PROMPT).double()[None, :, None]
    z = mu + 0.5 * torch.randn(batch, 8, 16, generator=g, dtype=torch.float64)
    s = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1, 1)
    return z + s * torch.randn(batch, 8, 16, generator=g, dtype=torch.float64)


def test_karras_schedule_shape_endpoints_and_order() -> None:
    s = karras_sigmas(10, 0.002, 80.0)
    assert s.shape == (11,) and s[-1] == 0
    assert s[0].item() == 80.0 and s[-2].item() == pytest.approx(0.002, rel=1e-12)
    assert (s[1:] < s[:-1]).all()
    # uniform in sigma^(1/rho)
    steps = s[:-1] ** (1 / 7)
    torch.testing.assert_close(steps.diff(), steps.diff()[:1].expand(9))
    assert karras_sigmas(1, 0.002, 80.0).tolist() == [80.0, 0.0]


def test_karras_per_row_equals_stacked_rows() -> None:
    lo, hi = torch.tensor([0.01, 0.002, 0.5]), torch.tensor([5.0, 80.0, 0.5])
    per_row = karras_sigmas(6, lo, hi)
    assert per_row.shape == (7, 3)
    for b in range(3):
        torch.testing.assert_close(per_row[:, b], karras_sigmas(6, lo[b].item(), hi[b].item()))


@pytest.mark.parametrize(
    "method, steps, tol",
    # measured max errors: ddim 200 -> 0.012, heun 20 -> 0.020, dpmpp_2m 50 -> 0.003
    [("ddim", 200, 0.03), ("heun", 20, 0.05), ("dpmpp_2m", 50, 0.01)],
)
def test_k_step_denoise_matches_the_closed_form_ode(
    prior: AnalyticPrior, method: str, steps: int, tol: float
) -> None:
    cond = prior.embed([PROMPT])
    z_sigma = _noisy(prior, 5.0)
    exact = prior.ode_solution(z_sigma, 5.0, cond)
    out = denoise_from(prior, z_sigma, 5.0, cond, 1.0, num_steps=steps, method=method)
    assert (out - exact).abs().max() < tol
    # and the one-step answer (the posterior mean) is far from the ODE's endpoint
    assert (denoise_from(prior, z_sigma, 5.0, cond, 1.0) - exact).abs().max() > 20 * tol


@pytest.mark.parametrize("method, min_gain", [("ddim", 1.7), ("heun", 3.0), ("dpmpp_2m", 3.0)])
def test_convergence_order(prior: AnalyticPrior, method: str, min_gain: float) -> None:
    """Doubling the steps halves the error of a first-order method, quarters a second-order one."""
    cond = prior.embed([PROMPT])
    z_sigma = _noisy(prior, 5.0)
    exact = prior.ode_solution(z_sigma, 5.0, cond)
    err = [
        (denoise_from(prior, z_sigma, 5.0, cond, 1.0, num_steps=k, method=method) - exact).abs().max()
        for k in (20, 40)
    ]
    assert err[0] / err[1] > min_gain


@pytest.mark.parametrize("method", METHODS)
def test_one_step_is_the_guided_denoiser(prior: AnalyticPrior, method: str) -> None:
    cond = prior.embed([PROMPT, "rain"], negative=["wind", ""])
    sigma = torch.tensor([0.1, 1.0, 3.0, 30.0], dtype=torch.float64)
    z_sigma = _noisy(prior, sigma)
    out = denoise_from(prior, z_sigma, sigma, cond, 3.0, num_steps=1, method=method)
    torch.testing.assert_close(out, prior.denoise(z_sigma, sigma, cond, 3.0), rtol=0, atol=0)


def test_two_level_schedules_reduce_to_ddim(prior: AnalyticPrior) -> None:
    """Heun's step to 0 is Euler, and DPM++(2M)'s first step and steps to 0 are first order."""
    cond = prior.embed([PROMPT])
    z_sigma = _noisy(prior, 4.0)
    sigmas = torch.tensor([4.0, 0.7, 0.0], dtype=torch.float64)
    ddim = sample(prior, z_sigma, sigmas, cond, 2.0, "ddim")
    torch.testing.assert_close(sample(prior, z_sigma, sigmas, cond, 2.0, "dpmpp_2m"), ddim)
    torch.testing.assert_close(
        sample(prior, z_sigma, sigmas[1:], cond, 2.0, "heun"), prior.denoise(z_sigma, 0.7, cond, 2.0)
    )
    assert (sample(prior, z_sigma, sigmas, cond, 2.0, "heun") - ddim).abs().max() > 1e-3


@pytest.mark.parametrize("method", METHODS)
def test_per_row_sigmas_equal_row_by_row_runs(prior: AnalyticPrior, method: str) -> None:
    cond = prior.embed([PROMPT, "rain"])
    sigma = torch.tensor([0.05, 2.0, 9.0, 60.0], dtype=torch.float64)
    z_sigma = _noisy(prior, sigma)
    batch = denoise_from(prior, z_sigma, sigma, cond, 2.5, num_steps=5, method=method)
    for b in range(4):
        single = denoise_from(
            prior, z_sigma[b : b + 1], sigma[b].item(), cond.select([b // 2]), 2.5, 5, method
        )
        torch.testing.assert_close(batch[b : b + 1], single, rtol=1e-12, atol=1e-12)


def test_sigma_below_the_floor_is_a_constant_schedule(prior: AnalyticPrior) -> None:
    """Rows already under the floor take no-op steps, then the final jump to 0."""
    cond = prior.embed([PROMPT])
    z_sigma = _noisy(prior, 0.001, batch=1)
    for method in METHODS:
        out = denoise_from(prior, z_sigma, 0.001, cond, 1.0, num_steps=4, method=method, sigma_floor=0.01)
        torch.testing.assert_close(out, prior.denoise(z_sigma, 0.001, cond))


def test_generation_matches_the_data_distribution(prior: AnalyticPrior) -> None:
    """From sigma_max = 80 the ODE transports the start noise onto N(mu, 0.5^2) per prompt."""
    cond = prior.embed([PROMPT, ""])
    z = generate_latent(prior, cond, 64, 60, 1.0, "heun", torch.Generator().manual_seed(0), num_per_prompt=16)
    assert z.shape == (32, 8, 64)
    # the closed-form ODE map of the same start noise (measured max error 0.015 at 60 Heun steps)
    start = 80.0 * torch.randn(32, 8, 64, generator=torch.Generator().manual_seed(0))
    exact = prior.ode_solution(start.double(), 80.0, cond).float()
    assert (z - exact).abs().max() < 0.03
    # statistically: 1024 values per dimension, standard error 0.016 on each prompt mean
    first, second = z[:16], z[16:]
    mu = prior.prompt_mean(PROMPT)
    assert (first.mean(dim=(0, 2)) - mu).abs().max() < 0.07
    assert abs((first - mu[None, :, None]).std().item() - 0.5) < 0.02
    assert second.mean().abs() < 0.05 and abs(second.std().item() - 1.0) < 0.03


def test_ancestral_generation_matches_the_data_distribution_but_not_the_ode_map(prior: AnalyticPrior) -> None:
    """The reverse SDE reaches N(mu, 0.5^2) per prompt by another path than the ODE, up to its
    discretisation error."""
    cond = prior.embed([PROMPT, ""])
    z = generate_latent(
        prior, cond, 64, 60, 1.0, "euler_ancestral", torch.Generator().manual_seed(0), num_per_prompt=16
    )
    start = 80.0 * torch.randn(32, 8, 64, generator=torch.Generator().manual_seed(0))
    assert (z - prior.ode_solution(start.double(), 80.0, cond).float()).abs().mean() > 0.1  # noise was added
    # Euler-Maruyama's own error: for data N(mu, 0.5^2) and the exact denoiser, the step maps the
    # variance V -> (a + (down / sigma)(1 - a))^2 V + up^2 with a = 0.25 / (0.25 + sigma^2); at 60 steps
    # that ends at std 0.453, not 0.5 (0.485 at 200 steps, 0.497 at 1,000).
    sigmas = karras_sigmas(60, prior.sigma_min, prior.sigma_max).double()
    var = sigmas[0] ** 2 + 0.25
    for sigma, nxt in zip(sigmas[:-1], sigmas[1:], strict=True):
        a = 0.25 / (0.25 + sigma**2)
        up2 = nxt**2 * (sigma**2 - nxt**2) / sigma**2
        var = (a + (nxt**2 - up2).sqrt() / sigma * (1 - a)) ** 2 * var + up2
    first = z[:16]
    mu = prior.prompt_mean(PROMPT)
    assert (first.mean(dim=(0, 2)) - mu).abs().max() < 0.07
    assert abs((first - mu[None, :, None]).std().item() - var.sqrt().item()) < 0.015
    assert 0.44 < var.sqrt().item() < 0.46


@pytest.mark.parametrize("method", STOCHASTIC)
def test_an_ancestral_step_keeps_the_noise_level_and_ends_exactly_on_the_estimate(method: str) -> None:
    """Against a denoiser that always answers x0: each step's x' - x0 has std sigma', the last is x0."""

    class Fixed:
        def denoise(self, z, sigma, cond, cfg_scale):  # noqa: ANN001, ANN202
            return torch.full_like(z, 0.25)

    sigmas = torch.tensor([10.0, 4.0, 1.0, 0.0])
    z = 0.25 + 10.0 * torch.randn(2, 64, 256, generator=torch.Generator().manual_seed(3))
    seen: list[float] = []
    out = sample(
        Fixed(),
        z,
        sigmas,
        None,
        method=method,
        callback=lambda i, s, x, x0: seen.append(float((x - x0).std())),
        generator=torch.Generator().manual_seed(4),
    )
    assert seen == pytest.approx([10.0, 4.0, 1.0], rel=0.02)
    assert torch.equal(out, torch.full_like(z, 0.25))


def test_generation_is_deterministic_per_seed(prior: AnalyticPrior) -> None:
    cond = prior.embed([PROMPT])

    def run(seed: int) -> torch.Tensor:
        return generate_latent(prior, cond, 8, 6, 3.0, "dpmpp_2m", torch.Generator().manual_seed(seed))

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))

    def ancestral(seed: int) -> torch.Tensor:
        return generate_latent(prior, cond, 8, 6, 3.0, "euler_ancestral", torch.Generator().manual_seed(seed))

    assert torch.equal(ancestral(1), ancestral(1))
    assert not torch.equal(ancestral(1), ancestral(2))


def test_callback_sees_every_step_and_inference_mode_works(prior: AnalyticPrior) -> None:
    cond = prior.embed([PROMPT])
    sigmas = karras_sigmas(5, 0.01, 10.0)
    seen = []
    z_sigma = _noisy(prior, 10.0, batch=2).float()
    with torch.inference_mode():
        out = sample(
            prior, z_sigma, sigmas, cond, 1.0, "heun", lambda i, s, z, x0: seen.append((i, s[0].item()))
        )
    assert [i for i, _ in seen] == list(range(5))
    torch.testing.assert_close(torch.tensor([s for _, s in seen]), sigmas[:-1].float())
    assert out.shape == z_sigma.shape and not out.requires_grad


def test_validation(prior: AnalyticPrior) -> None:
    cond = prior.embed([PROMPT])
    z = torch.zeros(1, 8, 4)
    with pytest.raises(
        ValueError, match=r"method: expected one of \('ddim', 'heun', 'dpmpp_2m', 'euler_ancestral'\)"
    ):
        sample(prior, z, karras_sigmas(2, 0.1, 1.0), cond, method="euler_a")
    with pytest.raises(ValueError, match="'euler_ancestral': expected a torch.Generator"):
        sample(prior, z, karras_sigmas(2, 0.1, 1.0), cond, method="euler_ancestral")
    with pytest.raises(ValueError, match=r"method: expected one of \('ddim', 'heun', 'dpmpp_2m'\)"):
        denoise_from(
            prior, z + 1.0, 1.0, cond, 1.0, num_steps=3, method="euler_ancestral"
        )  # SDS: deterministic
    with pytest.raises(ValueError, match="non-increasing"):
        sample(prior, z, torch.tensor([1.0, 2.0, 0.0]), cond)
    with pytest.raises(ValueError, match="last entry"):
        sample(prior, z, torch.tensor([1.0, 0.0, 0.0]), cond)
    with pytest.raises(ValueError, match=r"sigmas: expected \(S\+1,\) or \(S\+1, 1\)"):
        sample(prior, z, torch.ones(3, 2), cond)
    with pytest.raises(ValueError, match="num_steps"):
        karras_sigmas(0, 0.1, 1.0)
    with pytest.raises(ValueError, match="sigma_min, sigma_max"):
        karras_sigmas(3, 1.0, 0.1)
    with pytest.raises(ValueError, match="sigma: expected values > 0"):
        denoise_from(prior, z, 0.0, cond, 1.0)
