"""Deterministic samplers over any :class:`~audiosds.priors.base.Prior` on the sigma axis.

The probability-flow ODE in variance-exploding form (Karras et al. 2022, eq. 3 with s(t) = 1)::

    dz / dsigma = (z - x0_hat(z, sigma)) / sigma

is integrated through a descending schedule ``sigmas`` whose last entry may be 0. The same
code serves generation and SDS's K-step partial denoise (Audio-SDS arXiv 2505.04621 Sec. 3,
"multistep denoising"). The samplers of ``METHODS`` are deterministic: no noise is injected after
the start. ``euler_ancestral`` (generation only) solves the reverse SDE instead: each step
denoises to a lower level than the next and adds fresh noise from a seeded generator back up to
it, which lets later steps correct what earlier ones got wrong.

Notation:
    z         the current latent (B, D, T), at noise level sigma
    x0_hat    the guided denoiser's output D_u + cfg_scale * (D_c - D_u)
    sigma, sigma_next   consecutive schedule entries, (B,) per row

Nothing here turns gradients on or off: call under ``torch.no_grad()`` /
``torch.inference_mode()`` when no graph is wanted.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .priors.base import Conditioning, Prior, sigma_vector

METHODS = ("ddim", "heun", "dpmpp_2m")  # deterministic: SDS's partial denoise and generation
STOCHASTIC = ("euler_ancestral",)  # generation only: needs a generator for the noise it adds
GENERATION_METHODS = METHODS + STOCHASTIC

# callback(step index, sigma (B,), z before the step (B, D, T), x0_hat (B, D, T))
Callback = Callable[[int, Tensor, Tensor, Tensor], None]


def _check_method(method: str, allowed: tuple[str, ...] = METHODS) -> None:
    if method not in allowed:
        raise ValueError(f"method: expected one of {allowed}, got {method!r}")


def karras_sigmas(
    num_steps: int, sigma_min: float | Tensor, sigma_max: float | Tensor, rho: float = 7.0
) -> Tensor:
    """Karras et al. (2022) eq. 5 schedule: num_steps levels from sigma_max down to sigma_min
    spaced uniformly in sigma^(1/rho), then a final 0.

    ``sigma_min`` / ``sigma_max`` may be (B,) tensors for one schedule per row
    (equal values give a constant run of no-op steps). Computed in float64; the samplers cast
    to the latent's dtype.

    Shape:
        scalars -> (num_steps + 1,); (B,) tensors -> (num_steps + 1, B)
    """
    if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 1:
        raise ValueError(f"num_steps: expected an int >= 1, got {num_steps!r}")
    if not rho > 0:
        raise ValueError(f"rho: expected > 0, got {rho}")
    lo = torch.as_tensor(sigma_min, dtype=torch.float64)
    hi = torch.as_tensor(sigma_max, dtype=torch.float64)
    if not torch.isfinite(lo).all() or not torch.isfinite(hi).all() or (lo <= 0).any() or (hi < lo).any():
        raise ValueError(
            f"sigma_min, sigma_max: expected 0 < sigma_min <= sigma_max, got {sigma_min}, {sigma_max}"
        )
    lo, hi = torch.broadcast_tensors(lo, hi)
    ramp = torch.linspace(0, 1, num_steps, dtype=torch.float64, device=hi.device)
    ramp = ramp.reshape(num_steps, *([1] * hi.ndim))
    sigmas = (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho  # (S, ...)
    sigmas = torch.minimum(torch.maximum(sigmas, lo), hi)  # no round-trip overshoot past the ends
    sigmas[-1] = lo  # exact endpoints despite the power round trip
    sigmas[0] = hi
    return torch.cat([sigmas, torch.zeros_like(sigmas[:1])])


def _schedule(sigmas: Tensor, z: Tensor) -> Tensor:
    """Validate and broadcast a schedule to (S+1, B) in z's dtype and device."""
    batch = z.shape[0]
    s = torch.as_tensor(sigmas).to(device=z.device, dtype=z.dtype)
    if s.ndim == 1:
        s = s[:, None].expand(-1, batch)
    if s.ndim != 2 or s.shape[1] != batch or s.shape[0] < 2:
        raise ValueError(f"sigmas: expected (S+1,) or (S+1, {batch}) with S >= 1, got {tuple(s.shape)}")
    if not torch.isfinite(s).all() or (s[:-1] <= 0).any() or (s[-1] < 0).any():
        raise ValueError("sigmas: expected finite values, > 0 except the last entry which may be 0")
    if (s[1:] > s[:-1]).any():
        raise ValueError("sigmas: expected a non-increasing schedule")
    return s


def sample(
    prior: Prior,
    z: Tensor,
    sigmas: Tensor,
    cond: Conditioning,
    cfg_scale: float = 1.0,
    method: str = "ddim",
    callback: Callback | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Integrate the probability-flow ODE (``euler_ancestral``: the reverse SDE) from ``z`` (already at
    noise level sigmas[0]).

    Methods:
        "ddim": DDIM / Euler, x' = x0_hat + (sigma'/sigma) (z - x0_hat). One call per step.
        "heun": Euler predictor, trapezoidal corrector (Karras 2022 Alg. 1); first order on a
            step to sigma' = 0. Two calls per step.
        "dpmpp_2m": DPM-Solver++(2M) (Lu et al. 2022), multistep data prediction in
            lambda = -log sigma; first order on the first step and on steps to 0. One call per step.
        "euler_ancestral": reverse-SDE Euler steps. From sigma to sigma' the step splits sigma'^2
            into sigma_up^2 = sigma'^2 (sigma^2 - sigma'^2) / sigma^2, fresh noise, and
            sigma_down^2 = sigma'^2 - sigma_up^2: x' = x0_hat + (sigma_down / sigma) (z - x0_hat)
            + sigma_up eps, so x' has the marginal noise level sigma'. Stochastic (``generator``);
            the step to 0 is exact. One call per step.

    Args:
        prior: any prior.
        z: noisy latents at sigmas[0].
        sigmas: schedule shared by every row, or one column per row.
        cond: conditioning, prompt-major over the batch.
        cfg_scale: classifier-free guidance scale.
        method: one of GENERATION_METHODS.
        callback: called before each step as callback(i, sigma, z, x0_hat).
        generator: the noise of a stochastic method (required for those; drawn on its device).

    Returns:
        z at sigmas[-1].

    Shape:
        z (B, D, T), sigmas (S+1,) or (S+1, B) -> (B, D, T)
    """
    _check_method(method, GENERATION_METHODS)
    if method in STOCHASTIC and generator is None:
        raise ValueError(f"method {method!r}: expected a torch.Generator for its noise")
    if z.ndim != 3:
        raise ValueError(f"z: expected (B, D, T), got {tuple(z.shape)}")
    s = _schedule(sigmas, z)
    x = z
    old_x0 = None
    h_last = None
    for i in range(s.shape[0] - 1):
        sigma, sigma_next = s[i], s[i + 1]  # (B,)
        x0 = prior.denoise(x, sigma, cond, cfg_scale)
        if callback is not None:
            callback(i, sigma, x, x0)
        ratio = (sigma_next / sigma)[:, None, None]  # (B, 1, 1)
        if method == "ddim":
            x = x0 + ratio * (x - x0)
        elif method == "heun":
            x = _heun_step(prior, x, x0, sigma, sigma_next, cond, cfg_scale)
        elif method == "euler_ancestral":
            x = _ancestral_step(x, x0, sigma, sigma_next, generator)
        else:
            # h = log(sigma / sigma'); the 2M correction extrapolates x0 linearly in lambda:
            # x0_d = x0 + h / (2 h_last) * (x0 - x0_prev); first order where undefined.
            last = sigma_next == 0
            h = torch.log(sigma / torch.where(last, sigma, sigma_next))  # (B,), 0 on steps to 0
            x0_d = x0
            if old_x0 is not None:
                valid = (~last) & (h_last > 0)
                c = torch.where(valid, h / torch.where(valid, 2 * h_last, torch.ones_like(h)), 0.0)
                x0_d = x0 + c[:, None, None] * (x0 - old_x0)
            x = ratio * x + (1 - ratio) * x0_d
            old_x0, h_last = x0, h
    return x


def _ancestral_step(
    x: Tensor, x0: Tensor, sigma: Tensor, sigma_next: Tensor, generator: torch.Generator
) -> Tensor:
    """One reverse-SDE Euler step from sigma to sigma' (see :func:`sample`), per row."""
    up = torch.sqrt((sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2).clamp_min(0))  # (B,)
    down = torch.sqrt((sigma_next**2 - up**2).clamp_min(0))  # (B,)
    eps = torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)
    return x0 + (down / sigma)[:, None, None] * (x - x0) + up[:, None, None] * eps


def _heun_step(
    prior: Prior,
    x: Tensor,
    x0: Tensor,
    sigma: Tensor,
    sigma_next: Tensor,
    cond: Conditioning,
    cfg_scale: float,
) -> Tensor:
    """One Heun step; rows stepping to sigma' = 0 keep the Euler result."""
    d = (x - x0) / sigma[:, None, None]  # dz/dsigma
    dt = (sigma_next - sigma)[:, None, None]
    euler = x + dt * d
    last = sigma_next == 0
    if last.all():
        return euler
    safe_next = torch.where(last, sigma, sigma_next)  # any positive level for rows that use Euler
    x0_next = prior.denoise(euler, safe_next, cond, cfg_scale)
    d_next = (euler - x0_next) / safe_next[:, None, None]
    heun = x + dt * 0.5 * (d + d_next)
    return torch.where(last[:, None, None], euler, heun)


def denoise_from(
    prior: Prior,
    z_sigma: Tensor,
    sigma: Tensor | float,
    cond: Conditioning,
    cfg_scale: float,
    num_steps: int = 1,
    method: str = "ddim",
    sigma_floor: float | None = None,
) -> Tensor:
    """SDS's K-step deterministic partial denoise from per-row sigma down to 0.

    K = 1 is one guided denoiser call (x0_hat). K > 1 runs ``method`` on a per-row Karras
    schedule of K levels from sigma down to ``min(sigma_floor, sigma)`` followed by 0
    (Audio-SDS multistep denoising, 2-10 steps).

    Args:
        prior: any prior.
        z_sigma: latents noised at ``sigma``.
        sigma: per-row noise level, or one for all rows.
        cond: conditioning, prompt-major over the batch.
        cfg_scale: classifier-free guidance scale.
        num_steps: K >= 1.
        method: one of METHODS.
        sigma_floor: lowest nonzero level of the schedule (default ``prior.sigma_min``).

    Shape:
        z_sigma (B, D, T), sigma () or (B,) -> (B, D, T)
    """
    _check_method(method)
    if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 1:
        raise ValueError(f"num_steps: expected an int >= 1, got {num_steps!r}")
    if z_sigma.ndim != 3:
        raise ValueError(f"z_sigma: expected (B, D, T), got {tuple(z_sigma.shape)}")
    s = sigma_vector(sigma, z_sigma.shape[0], z_sigma)
    if (s <= 0).any():
        raise ValueError("sigma: expected values > 0")
    if num_steps == 1:
        return prior.denoise(z_sigma, s, cond, cfg_scale)
    floor = float(prior.sigma_min if sigma_floor is None else sigma_floor)
    if not floor > 0:
        raise ValueError(f"sigma_floor: expected > 0, got {sigma_floor}")
    s64 = s.double()
    sigmas = karras_sigmas(num_steps, torch.clamp(s64, max=floor), s64)  # (K+1, B)
    return sample(prior, z_sigma, sigmas, cond, cfg_scale, method)


def generate_latent(
    prior: Prior,
    cond: Conditioning,
    num_frames: int,
    num_steps: int,
    cfg_scale: float,
    method: str,
    generator: torch.Generator,
    sigma_max: float | None = None,
    sigma_min: float | None = None,
    num_per_prompt: int = 1,
) -> Tensor:
    """Generate latents: noise at sigma_max from ``generator``, then :func:`sample` on a
    Karras schedule down to sigma_min and 0.

    Args:
        prior: any prior.
        cond: P prompts; the batch is prompt-major with ``num_per_prompt`` rows each.
        num_frames: latent frames T.
        num_steps: sampler steps.
        cfg_scale: classifier-free guidance scale.
        method: one of GENERATION_METHODS.
        generator: the only source of randomness (noise drawn on its device).
        sigma_max: start level (default ``prior.sigma_max``).
        sigma_min: last nonzero level (default ``prior.sigma_min``).
        num_per_prompt: rows per prompt.

    Shape:
        -> (P * num_per_prompt, D, num_frames)
    """
    _check_method(method, GENERATION_METHODS)
    if not isinstance(num_frames, int) or isinstance(num_frames, bool) or num_frames < 1:
        raise ValueError(f"num_frames: expected an int >= 1, got {num_frames!r}")
    if not isinstance(num_per_prompt, int) or isinstance(num_per_prompt, bool) or num_per_prompt < 1:
        raise ValueError(f"num_per_prompt: expected an int >= 1, got {num_per_prompt!r}")
    hi = float(prior.sigma_max if sigma_max is None else sigma_max)
    lo = float(prior.sigma_min if sigma_min is None else sigma_min)
    sigmas = karras_sigmas(num_steps, lo, hi)
    shape = (cond.num_prompts * num_per_prompt, prior.latent_channels, num_frames)
    noise = torch.randn(shape, generator=generator, device=generator.device)
    z = noise.to(prior.device) * hi
    return sample(prior, z, sigmas, cond, cfg_scale, method, generator=generator)
