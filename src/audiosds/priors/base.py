"""The Prior protocol: every text-to-audio diffusion backend seen on one sigma axis.

Notation (shared with ``sds.py`` and ``sampling.py``):
    x        audio, (B, C, N) at ``prior.sample_rate`` with ``prior.channels`` channels
    z        a clean latent, (B, D, T)
    sigma    noise level on the variance-exploding axis, (B,) or a float
    eps      standard Gaussian noise shaped like z
    z_sigma  z + sigma * eps
    x0_hat   the denoiser's estimate of z given z_sigma
    cfg_scale  classifier-free guidance scale s: D = D_u + s * (D_c - D_u)

A backend implements ``encode``, ``decode``, ``embed`` and ``_denoise_batch`` (one forward
over a batch whose rows each carry their own conditioning). Classifier-free guidance is
written once, here, in :meth:`Prior.denoise`: the conditional and unconditional (or
negative-prompt) halves run in a single batched forward.

Batch convention for conditioning: ``embed(prompts)`` returns one row per prompt (P rows).
A latent batch of B rows is prompt-major: B must be a multiple of P, and rows
``[p * B/P, (p + 1) * B/P)`` use prompt ``p``. With P == 1 every row uses the one prompt.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Conditioning:
    """Embedded prompts for both guidance branches.

    Attributes:
        cond: backend tensors for the prompts, each with leading dim P.
        uncond: the same keys for the unconditional branch (the null prompt) or for the
            negative prompts when those were given; leading dim P.
        prompts: the prompts, for logs and errors.
        negative: the negative prompts, or None.
    """

    cond: dict[str, Tensor]
    uncond: dict[str, Tensor]
    prompts: list[str]
    negative: list[str] | None = None

    @property
    def num_prompts(self) -> int:
        return len(self.prompts)

    def to(self, device: torch.device | str) -> Conditioning:
        return Conditioning(
            {k: v.to(device) for k, v in self.cond.items()},
            {k: v.to(device) for k, v in self.uncond.items()},
            list(self.prompts),
            None if self.negative is None else list(self.negative),
        )

    def select(self, index: Sequence[int]) -> Conditioning:
        """The conditioning of a subset of prompts, in the given order."""
        idx = torch.as_tensor(list(index), dtype=torch.long)
        return Conditioning(
            {k: v[idx.to(v.device)] for k, v in self.cond.items()},
            {k: v[idx.to(v.device)] for k, v in self.uncond.items()},
            [self.prompts[i] for i in idx.tolist()],
            None if self.negative is None else [self.negative[i] for i in idx.tolist()],
        )


def check_prompts(
    prompts: Sequence[str], negative: Sequence[str] | None = None
) -> tuple[list[str], list[str] | None]:
    """Validate :meth:`Prior.embed`'s arguments: P >= 1 prompts, and none or P negative prompts."""
    if isinstance(prompts, str) or len(prompts) == 0 or not all(isinstance(p, str) for p in prompts):
        raise ValueError(f"prompts: expected a non-empty sequence of str, got {prompts!r}")
    if negative is None:
        return list(prompts), None
    if isinstance(negative, str) or not all(isinstance(p, str) for p in negative):
        raise ValueError(f"negative: expected a sequence of str, got {negative!r}")
    if len(negative) != len(prompts):
        raise ValueError(f"negative: expected {len(prompts)} prompts, got {len(negative)}")
    return list(prompts), list(negative)


def expand_rows(tensors: dict[str, Tensor], batch: int) -> dict[str, Tensor]:
    """Repeat P conditioning rows prompt-major to fill a batch of ``batch`` rows."""
    out = {}
    for key, value in tensors.items():
        rows = value.shape[0]
        if batch % rows != 0:
            raise ValueError(
                f"latent batch {batch} is not a multiple of the {rows} prompts in the conditioning"
            )
        out[key] = value.repeat_interleave(batch // rows, dim=0)
    return out


def sigma_vector(sigma: Tensor | float, batch: int, like: Tensor) -> Tensor:
    """Sigma as a (B,) tensor on ``like``'s device and dtype; checks positivity and shape."""
    s = torch.as_tensor(sigma, dtype=like.dtype, device=like.device)
    if s.ndim == 0:
        s = s.expand(batch)
    if s.shape != (batch,):
        raise ValueError(f"sigma: expected a scalar or shape ({batch},), got {tuple(s.shape)}")
    if not torch.isfinite(s).all() or (s < 0).any():
        raise ValueError("sigma: expected finite values >= 0")
    return s


class Prior(abc.ABC, torch.nn.Module):
    """A frozen text-conditioned audio diffusion model on the sigma axis.

    Subclasses set ``sample_rate``, ``channels``, ``latent_channels``, ``downsampling``
    (audio samples per latent frame), ``sigma_min`` / ``sigma_max`` (the range the model was
    trained on) and ``sigma_data``, and implement the abstract methods.
    """

    sample_rate: int
    channels: int
    latent_channels: int
    downsampling: int
    sigma_min: float
    sigma_max: float
    sigma_data: float = 1.0
    name: str = "prior"

    # -- audio <-> latent -------------------------------------------------------------
    @abc.abstractmethod
    def encode(self, x: Tensor) -> Tensor:
        """Audio (B, C, N) at ``sample_rate`` -> latent (B, D, T). Differentiable."""

    @abc.abstractmethod
    def decode(self, z: Tensor) -> Tensor:
        """Latent (B, D, T) -> audio (B, C, N). Differentiable."""

    def decode_generated(self, z: Tensor) -> Tensor:
        """A latent the denoiser produced (a sample) -> audio. Default: :meth:`decode`; a backend whose
        decoder renders generated latents better another way overrides it. Differentiable."""
        return self.decode(z)

    def magnitudes(self, z: Tensor, n_fft: int, hop: int) -> Tensor | None:
        """STFT magnitudes of the audio a latent stands for, on an ``n_fft`` / ``hop`` grid, when the
        backend can give them without its decoder (a mel-spectrogram prior can); None otherwise, and
        callers then decode and take the STFT themselves. Differentiable.

        Shape:
            z (B, D, T) -> (B, C, n_fft // 2 + 1, T') or None
        """
        return None

    def latent_frames(self, num_samples: int) -> int:
        """Number of latent frames T for an audio length of ``num_samples``."""
        return math.ceil(num_samples / self.downsampling)

    # -- text -------------------------------------------------------------------------
    @abc.abstractmethod
    def embed(self, prompts: Sequence[str], negative: Sequence[str] | None = None) -> Conditioning:
        """Embed P prompts (and optionally P negative prompts for the unconditional branch)."""

    # -- the denoiser -----------------------------------------------------------------
    @abc.abstractmethod
    def _denoise_batch(self, z_sigma: Tensor, sigma: Tensor, cond: dict[str, Tensor]) -> Tensor:
        """One forward: x0_hat for each row of z_sigma (B, D, T) with its own sigma (B,) and
        conditioning row (each tensor in ``cond`` has leading dim B)."""

    def denoise(
        self, z_sigma: Tensor, sigma: Tensor | float, cond: Conditioning, cfg_scale: float = 1.0
    ) -> Tensor:
        """x0_hat = D_u + cfg_scale * (D_c - D_u), both branches in one batched forward.

        Args:
            z_sigma: noisy latents.
            sigma: noise level per row or one for all.
            cond: from :meth:`embed`; B must be a multiple of its prompt count.
            cfg_scale: 1 gives the conditional denoiser alone (one forward of B rows);
                0 gives the unconditional (or negative-prompt) denoiser alone.

        Shape:
            z_sigma (B, D, T), sigma () or (B,) -> x0_hat (B, D, T)
        """
        if z_sigma.ndim != 3:
            raise ValueError(f"z_sigma: expected (B, D, T), got {tuple(z_sigma.shape)}")
        batch = z_sigma.shape[0]
        s = sigma_vector(sigma, batch, z_sigma)
        c = expand_rows(cond.cond, batch)
        if cfg_scale == 1.0:
            return self._denoise_batch(z_sigma, s, c)
        u = expand_rows(cond.uncond, batch)
        if cfg_scale == 0.0:
            return self._denoise_batch(z_sigma, s, u)
        both = {k: torch.cat([c[k], u[k]], dim=0) for k in c}
        x0 = self._denoise_batch(torch.cat([z_sigma, z_sigma]), torch.cat([s, s]), both)
        x0_c, x0_u = x0.chunk(2)
        return x0_u + cfg_scale * (x0_c - x0_u)

    # -- the backend's own time variable ----------------------------------------------
    def sigma_of_t(self, t: Tensor) -> Tensor:
        """Map the backend's time in [0, 1] to sigma. Default: log-linear between the
        backend's sigma_min and sigma_max (backends with their own time override this)."""
        t = torch.as_tensor(t, dtype=torch.float64)
        lo, hi = math.log(self.sigma_min), math.log(self.sigma_max)
        return torch.exp(lo + t * (hi - lo))

    def t_of_sigma(self, sigma: Tensor) -> Tensor:
        """Inverse of :meth:`sigma_of_t`."""
        sigma = torch.as_tensor(sigma, dtype=torch.float64)
        lo, hi = math.log(self.sigma_min), math.log(self.sigma_max)
        return (torch.log(sigma) - lo) / (hi - lo)

    # -- bookkeeping ------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    def freeze(self) -> Prior:
        """Eval mode, no parameter gradients: a prior is never trained by SDS."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        self.frozen = True
        return self

    def is_frozen(self) -> bool:
        """True after :meth:`freeze` (one attribute read, cheap enough for every iteration);
        otherwise checks every parameter."""
        return getattr(self, "frozen", False) or not any(p.requires_grad for p in self.parameters())

    def check_audio(self, x: Tensor, what: str = "audio") -> None:
        """ValueError unless x is (B, channels, N) finite audio for this prior."""
        if x.ndim != 3 or x.shape[1] != self.channels:
            raise ValueError(
                f"{what}: expected (B, {self.channels}, N) at {self.sample_rate} Hz, got {tuple(x.shape)}"
            )
