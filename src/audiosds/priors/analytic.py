"""The analytic prior: per-prompt Gaussians in a linear latent space, exact denoiser.

The test oracle and a zero-download demo. Every quantity SDS needs is known in closed form:

    encode   z = E frames(x)          E (D, C*L) with orthonormal rows, L = downsampling
    decode   x = E^T z                so encode(decode(z)) == z; decode(encode(x)) is a projection
    data     z ~ N(mu_p, std_p^2 I)   mu_p from the prompt text, broadcast over the T frames;
                                      the empty prompt is N(0, uncond_std^2 I)
    denoiser x0_hat = E[z | z_sigma] = (std^2 * z_sigma + sigma^2 * mu) / (std^2 + sigma^2)
    PF-ODE   z(sigma') = mu + (z(sigma) - mu) * sqrt(std^2 + sigma'^2) / sqrt(std^2 + sigma^2)

Negative prompts are ordinary Gaussians that take the unconditional branch's place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .base import Conditioning, Prior, check_prompts, expand_rows, sigma_vector


@dataclass(frozen=True)
class AnalyticConfig:
    sample_rate: int = 16000
    channels: int = 1
    latent_channels: int = 8  # D; must not exceed channels * downsampling
    downsampling: int = 64  # audio samples per latent frame (per channel)
    data_std: float = 0.5  # std of every prompt's Gaussian around its mean
    uncond_std: float = 1.0  # std of the unconditional (empty prompt) Gaussian, centred at 0
    sigma_min: float = 0.002  # EDM's range
    sigma_max: float = 80.0
    seed: int = 0  # seeds the encoder matrix and, combined with the text, each prompt's mean

    def __post_init__(self) -> None:
        for name in ("sample_rate", "channels", "latent_channels", "downsampling"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"AnalyticConfig.{name}: expected a positive int, got {value!r}")
        if self.latent_channels > self.channels * self.downsampling:
            raise ValueError(
                "AnalyticConfig.latent_channels: expected <= channels * downsampling = "
                f"{self.channels * self.downsampling}, got {self.latent_channels}"
            )
        for name in ("data_std", "uncond_std", "sigma_min", "sigma_max"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"AnalyticConfig.{name}: expected a positive number, got {value!r}")
        if not self.sigma_max > self.sigma_min:
            raise ValueError(
                f"AnalyticConfig.sigma_max: expected > sigma_min = {self.sigma_min}, got {self.sigma_max}"
            )
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"AnalyticConfig.seed: expected an int, got {self.seed!r}")


class AnalyticPrior(Prior):
    """Gaussian-per-prompt prior with a fixed linear autoencoder and an exact denoiser.

    Conditioning tensors: ``mean`` (P, D) and ``std`` (P,).
    """

    name = "analytic"

    def __init__(self, config: AnalyticConfig | None = None) -> None:
        torch.nn.Module.__init__(self)
        self.config = config = AnalyticConfig() if config is None else config
        self.sample_rate = config.sample_rate
        self.channels = config.channels
        self.latent_channels = config.latent_channels
        self.downsampling = config.downsampling
        self.sigma_min = float(config.sigma_min)
        self.sigma_max = float(config.sigma_max)
        self.sigma_data = float(config.data_std)
        width = config.channels * config.downsampling
        g = torch.Generator().manual_seed(config.seed)
        q, r = torch.linalg.qr(torch.randn(width, config.latent_channels, generator=g, dtype=torch.float64))
        q = q * torch.sign(torch.diagonal(r))  # unique QR: positive diagonal of R
        self.register_buffer("encoder", q.T.contiguous().float())  # (D, C*L), orthonormal rows

    # -- audio <-> latent -------------------------------------------------------------
    def encode(self, x: Tensor) -> Tensor:
        """Frame, zero-pad the tail, project: z = E frames(x).

        Shape:
            x (B, C, N) -> z (B, D, ceil(N / downsampling))
        """
        self.check_audio(x, "x")
        batch, channels, n = x.shape
        frames = self.latent_frames(n)
        x = torch.nn.functional.pad(x, (0, frames * self.downsampling - n))
        x = x.reshape(batch, channels, frames, self.downsampling).permute(0, 2, 1, 3)  # (B, T, C, L)
        z = x.reshape(batch, frames, channels * self.downsampling) @ self.encoder.to(x.dtype).T  # (B, T, D)
        return z.transpose(1, 2)

    def decode(self, z: Tensor) -> Tensor:
        """x = E^T z, frames laid back end to end.

        Shape:
            z (B, D, T) -> x (B, C, T * downsampling)
        """
        if z.ndim != 3 or z.shape[1] != self.latent_channels:
            raise ValueError(f"z: expected (B, {self.latent_channels}, T), got {tuple(z.shape)}")
        batch, _, frames = z.shape
        x = z.transpose(1, 2) @ self.encoder.to(z.dtype)  # (B, T, C*L)
        x = x.reshape(batch, frames, self.channels, self.downsampling).permute(0, 2, 1, 3)  # (B, C, T, L)
        return x.reshape(batch, self.channels, frames * self.downsampling)

    # -- text -------------------------------------------------------------------------
    def prompt_mean(self, prompt: str) -> Tensor:
        """mu_p: a deterministic function of the stripped, lower-cased text and the config seed
        (sha256, stable across processes); zeros for the empty prompt.

        Shape:
            -> (D,)
        """
        if not isinstance(prompt, str):
            raise ValueError(f"prompt: expected a str, got {type(prompt).__name__}")
        key = prompt.strip().lower()
        if not key:
            return torch.zeros(self.latent_channels, device=self.device)
        digest = hashlib.sha256(f"{self.config.seed}\x00{key}".encode()).digest()
        g = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
        return torch.randn(self.latent_channels, generator=g, dtype=torch.float64).float().to(self.device)

    def prompt_std(self, prompt: str) -> float:
        """std_p: ``data_std`` for a prompt, ``uncond_std`` for the empty prompt."""
        return float(self.config.uncond_std if not prompt.strip() else self.config.data_std)

    def _gaussians(self, prompts: Sequence[str]) -> dict[str, Tensor]:
        mean = torch.stack([self.prompt_mean(p) for p in prompts])  # (P, D)
        std = torch.tensor([self.prompt_std(p) for p in prompts], device=self.device)  # (P,)
        return {"mean": mean, "std": std}

    def embed(self, prompts: Sequence[str], negative: Sequence[str] | None = None) -> Conditioning:
        """Gaussians for P prompts; negative prompts (P of them) replace the unconditional branch."""
        prompts, negative = check_prompts(prompts, negative)
        uncond = self._gaussians(negative if negative is not None else [""] * len(prompts))
        return Conditioning(self._gaussians(prompts), uncond, prompts, negative)

    # -- the denoiser -----------------------------------------------------------------
    def _denoise_batch(self, z_sigma: Tensor, sigma: Tensor, cond: dict[str, Tensor]) -> Tensor:
        """Exact posterior mean x0_hat = (std^2 z_sigma + sigma^2 mu) / (std^2 + sigma^2)."""
        mu = cond["mean"].to(z_sigma.dtype)[:, :, None]  # (B, D, 1)
        var = cond["std"].to(z_sigma.dtype).square()[:, None, None]  # (B, 1, 1)
        s2 = sigma.to(z_sigma.dtype).square()[:, None, None]  # (B, 1, 1)
        return (var * z_sigma + s2 * mu) / (var + s2)

    # -- closed forms for tests and benchmarks ----------------------------------------
    def ode_solution(
        self, z_sigma: Tensor, sigma: Tensor | float, cond: Conditioning, sigma_to: Tensor | float = 0.0
    ) -> Tensor:
        """Exact probability-flow ODE map (unguided, cfg_scale = 1) from sigma to sigma_to:
        z(sigma_to) = mu + (z_sigma - mu) * sqrt(std^2 + sigma_to^2) / sqrt(std^2 + sigma^2).

        Shape:
            z_sigma (B, D, T), sigma and sigma_to () or (B,) -> (B, D, T)
        """
        if z_sigma.ndim != 3:
            raise ValueError(f"z_sigma: expected (B, D, T), got {tuple(z_sigma.shape)}")
        batch = z_sigma.shape[0]
        c = expand_rows(cond.cond, batch)
        mu = c["mean"].to(z_sigma.dtype)[:, :, None]
        var = c["std"].to(z_sigma.dtype).square()[:, None, None]
        s_from = sigma_vector(sigma, batch, z_sigma)[:, None, None]
        s_to = sigma_vector(sigma_to, batch, z_sigma)[:, None, None]
        return mu + (z_sigma - mu) * torch.sqrt((var + s_to**2) / (var + s_from**2))

    def cfg_fixed_point(
        self,
        cond: Conditioning,
        sigma: Tensor | float,
        cfg_scale: float,
        weights: Tensor | None = None,
    ) -> Tensor:
        """Latent fixed point of the expected Decoder-SDS (or latent-SDS) update under CFG.

        At one sigma both branches are affine in z_sigma, so the guided denoiser is
        D(z_sigma) = a z_sigma + b with a = a_u + s (a_c - a_u), b = b_u + s (b_c - b_u),
        a_k = std_k^2 / (std_k^2 + sigma^2), b_k = (1 - a_k) mu_k. Since E_eps[D(z + sigma eps)]
        = a z + b, the expected residual w (z - a z - b) vanishes at z* = b / (1 - a). With
        several sigmas (weights w_i; latent SDS carries an extra 1/sigma_i), the weighted mean
        residual vanishes at z* = sum_i w_i b_i / sum_i w_i (1 - a_i). With cfg_scale = 1 this
        is mu_c for any sigma.

        Args:
            cond: from :meth:`embed` (negative prompts respected).
            sigma: one noise level or S of them.
            cfg_scale: guidance scale s.
            weights: (S,) weights of the sigmas (default equal).

        Returns:
            z* per prompt (constant over time).

        Shape:
            sigma () or (S,), weights (S,) -> (P, D)
        """
        s = torch.as_tensor(sigma, dtype=torch.float64, device=self.device).reshape(-1)  # (S,)
        if not torch.isfinite(s).all() or (s <= 0).any():
            raise ValueError("sigma: expected finite values > 0")
        w = torch.ones_like(s) if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        if w.shape != s.shape or (w < 0).any():
            raise ValueError(f"weights: expected {tuple(s.shape)} non-negative values, got {tuple(w.shape)}")
        w = w.to(s.device)

        def affine(branch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
            var = branch["std"].double()[:, None, None] ** 2  # (P, 1, 1)
            a = var / (var + s[None, :, None] ** 2)  # (P, S, 1)
            return a, (1 - a) * branch["mean"].double()[:, None, :]  # (P, S, 1), (P, S, D)

        a_c, b_c = affine(cond.cond)
        a_u, b_u = affine(cond.uncond)
        a = a_u + cfg_scale * (a_c - a_u)
        b = b_u + cfg_scale * (b_c - b_u)
        denom = (w[None, :, None] * (1 - a)).sum(dim=1)  # (P, 1)
        if (denom <= 0).any():
            raise ValueError(f"cfg_scale: no stable fixed point at cfg_scale={cfg_scale} (1 - a <= 0)")
        return ((w[None, :, None] * b).sum(dim=1) / denom).float()  # (P, D)


__all__ = ["AnalyticConfig", "AnalyticPrior"]
