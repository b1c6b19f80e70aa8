"""K sources of a mixture as one renderer batch, for separation (Audio-SDS arXiv 2505.04621 eq. 13).

Each renderer holds the K sources as its B = K rows and renders them all at once as
``(K, C, N)``. Anything prior-specific (the decoder, the initial latent) is passed in as a
callable or a tensor: renderers never import priors.

Notation:
    K            number of sources (one per prompt)
    z_k          source k's prior latent, (D, T)
    X            the mixture's complex STFT, (C, F, T_s)
    S_k          the complex STFT of decode(z_k), (C, F, T_s)
    m_k          source k's mask over the mixture, in [0, 1] with sum_k m_k = 1
    p            the ratio-mask power

Three parametrizations:
    LatentSources    (the paper's) x_k = decode(z_k); the sum is pulled toward the mixture only by
                     the reconstruction loss, and carries the decoder's phase.
    RemaskedSources  (ours) the same latents; m_k = |S_k|^p / sum_j |S_j|^p and x_k = istft(m_k X):
                     every source carries the mixture's phase and sum_k x_k = mixture exactly
                     (up to istft round-off), whatever the decoder does to phase.
    MaskSources      (ours) logits l (K, F, T_s) optimised directly: m = softmax over k of l, shared by
                     every channel, x_k = istft(m_k X). Also sums to the mixture exactly.

The masks live on the grid of :func:`audiosds.spectral.stft` (its conventions); magnitudes are
``sqrt(|S|^2 + spectral.EPS)`` so masks stay finite and differentiable at silence (where every
source is at the floor, the masks are 1/K).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..audio import fit_length
from ..config import is_int, is_number
from ..spectral import EPS, check_stft, istft, magnitude, stft
from .base import Renderer

Decode = Callable[[Tensor], Tensor]  # latent (B, D, T) -> audio (B, C, M), differentiable
# latent (B, D, T) -> STFT magnitudes (B, C, F, T') on the mask grid, differentiable, without decoding
Magnitudes = Callable[[Tensor], Tensor]
MAX_SOURCES = 16


def ratio_masks(mags: Tensor, power: float) -> Tensor:
    """Ratio masks over the sources (dim 0): m_k = M_k^p / sum_j M_j^p.

    Each M_k must be > 0 (use :func:`magnitude`); the masks then lie in (0, 1) and sum to 1.

    Shape:
        mags (K, ...) -> (K, ...)
    """
    if not is_number(power) or power <= 0:
        raise ValueError(f"power: expected a number > 0, got {power!r}")
    # the softmax of p log M is M^p / sum M^p, computed without overflow for large p
    return torch.softmax(power * mags.log(), dim=0)


def apply_masks(masks: Tensor, mixture_spec: Tensor, n_fft: int, hop: int, length: int) -> Tensor:
    """Sources ``x_k = istft(m_k X)``; masks summing to 1 over k give sources summing to the mixture.

    Shape:
        masks (K, C or 1, F, T_s), mixture_spec (C, F, T_s) complex -> (K, C, length)
    """
    return istft(masks * mixture_spec[None], n_fft, hop, length)


def rms_db(x: Tensor) -> list[float]:
    """RMS level of each row in dB re full scale (floored at -200 dB), rounded to 0.01 dB.

    Shape:
        x (K, ...) -> K values
    """
    power = x.detach().double().reshape(x.shape[0], -1).square().mean(dim=1)
    return [round(v, 2) for v in (10 * torch.log10(power + 1e-20)).tolist()]


def _check_common(cls: str, num_sources: object, init_noise: object, seed: object) -> None:
    if not is_int(num_sources) or not 1 <= num_sources <= MAX_SOURCES:
        raise ValueError(f"{cls}.num_sources: expected an int in [1, {MAX_SOURCES}], got {num_sources!r}")
    if not is_number(init_noise) or init_noise < 0:
        raise ValueError(f"{cls}.init_noise: expected a number >= 0, got {init_noise!r}")
    if not is_int(seed):
        raise ValueError(f"{cls}.seed: expected an int, got {seed!r}")


def _check_mask_settings(cls: str, n_fft: int, hop: int, power: float | None) -> None:
    try:
        check_stft(n_fft, hop)
    except ValueError as err:
        raise ValueError(f"{cls}.{err}") from err
    if power is not None and (not is_number(power) or power <= 0):
        raise ValueError(f"{cls}.power: expected a number > 0, got {power!r}")


def _check_mixture(mixture: Tensor) -> None:
    if not isinstance(mixture, Tensor) or mixture.ndim != 2 or mixture.shape[0] < 1 or mixture.shape[1] < 1:
        shape = tuple(mixture.shape) if isinstance(mixture, Tensor) else type(mixture).__name__
        raise ValueError(f"mixture: expected a tensor (C, N), got {shape}")
    if not mixture.is_floating_point() or not torch.isfinite(mixture).all():
        raise ValueError("mixture: expected finite floating-point samples")


@dataclass(frozen=True)
class LatentSourcesConfig:
    num_sources: int = 2  # K
    # std of the seeded Gaussian noise added to every source's initial latent, relative to that
    # latent's RMS: identical starts would otherwise stay symmetric under a symmetric loss
    init_noise: float = 0.1
    seed: int = 0  # seeds the initial noise

    def __post_init__(self) -> None:
        _check_common("LatentSourcesConfig", self.num_sources, self.init_noise, self.seed)


class LatentSources(Renderer):
    """K sources as prior latents rendered by the prior's decoder: x_k = decode(z_k) (the paper's).

    Args:
        decode: the prior's differentiable decoder.
        latent: the initial latent of every source (one row, e.g. encode(mixture / K)), or one
            row per source; seeded noise is added (``config.init_noise``).
        num_samples: N; the decoded audio is cropped (or zero-padded) to it.
        sample_rate: the decoder's sample rate (reported, not used).
        config: see :class:`LatentSourcesConfig`.

    Shape:
        latent (D, T), (1, D, T) or (K, D, T); ``forward()`` -> (K, C, N)
    """

    parametrization = "latent"

    def __init__(
        self,
        decode: Decode,
        latent: Tensor,
        num_samples: int,
        sample_rate: int,
        config: LatentSourcesConfig | None = None,
    ) -> None:
        super().__init__()
        self.config = config = LatentSourcesConfig() if config is None else config
        if not callable(decode):
            raise ValueError(f"decode: expected a callable, got {type(decode).__name__}")
        if not is_int(num_samples) or num_samples < 1:
            raise ValueError(f"num_samples: expected an int >= 1, got {num_samples!r}")
        if not is_int(sample_rate) or sample_rate < 1:
            raise ValueError(f"sample_rate: expected an int >= 1, got {sample_rate!r}")
        k = config.num_sources
        if isinstance(latent, Tensor) and latent.ndim == 2:
            latent = latent[None]
        if not isinstance(latent, Tensor) or latent.ndim != 3 or latent.shape[0] not in (1, k):
            shape = tuple(latent.shape) if isinstance(latent, Tensor) else type(latent).__name__
            raise ValueError(f"latent: expected (D, T), (1, D, T) or ({k}, D, T), got {shape}")
        if not latent.is_floating_point() or not torch.isfinite(latent).all():
            raise ValueError("latent: expected finite floating-point values")
        # kept out of nn.Module's registry: a prior passed as ``decode`` must not become a submodule
        # whose parameters an optimiser over this renderer would then train
        object.__setattr__(self, "decode", decode)
        self.sample_rate = sample_rate
        self.num_samples = num_samples
        start = latent.detach().expand(k, -1, -1)  # (K, D, T)
        g = torch.Generator().manual_seed(config.seed)
        noise = torch.randn(start.shape, generator=g, dtype=torch.float64).to(start.dtype).to(start.device)
        scale = config.init_noise * start.square().mean().sqrt().clamp_min(1e-8)
        self.raw["z"] = nn.Parameter(start + scale * noise)  # (K, D, T)
        with torch.no_grad():
            probe = self.decode(self.raw["z"][:1])
        if probe.ndim != 3 or probe.shape[0] != 1:
            raise ValueError(
                f"decode: expected audio (B, C, M) for a (B, D, T) latent, got {tuple(probe.shape)}"
            )
        self.channels = probe.shape[1]

    def params(self) -> dict[str, Tensor]:
        """The latents themselves (unbounded, no ParamRange)."""
        return {"z": self.raw["z"]}

    def decoded(self, z: Tensor) -> Tensor:
        """decode(z) cropped or zero-padded to N. Shape: (K, D, T) -> (K, C, N)."""
        return fit_length(self.decode(z), self.num_samples)

    def render(self, params: dict[str, Tensor]) -> Tensor:
        return self.decoded(params["z"])

    def to_dict(self) -> dict[str, object]:
        """A summary (latents are not human parameters): shapes and per-source RMS in dB."""
        with torch.no_grad():
            x = self()
        return {
            "parametrization": self.parametrization,
            "num_sources": self.batch_size,
            "latent_shape": list(self.raw["z"].shape),
            "rms_db": rms_db(x),
        }


@dataclass(frozen=True)
class RemaskedSourcesConfig:
    num_sources: int = 2  # K
    init_noise: float = 0.1  # as LatentSourcesConfig.init_noise
    seed: int = 0
    n_fft: int = 1024  # mask STFT window (64 ms at 16 kHz)
    hop: int = 256
    # m_k = |S_k|^p / sum_j |S_j|^p: p = 1 magnitude ratios, p = 2 Wiener-like (power) ratios
    power: float = 2.0

    def __post_init__(self) -> None:
        _check_common("RemaskedSourcesConfig", self.num_sources, self.init_noise, self.seed)
        _check_mask_settings("RemaskedSourcesConfig", self.n_fft, self.hop, self.power)


class RemaskedSources(LatentSources):
    """Prior latents whose decoded magnitudes become ratio masks over the mixture's STFT (ours).

    x_k = istft(m_k X), m_k = |S_k|^p / sum_j |S_j|^p, S_k = stft(decode(z_k)): the sources carry
    the mixture's phase and sum to it exactly (up to istft round-off); per channel when the
    decoder's channels match the mixture's. A prior that knows its latents' magnitudes without
    decoding (a mel-spectrogram prior: :meth:`~audiosds.priors.base.Prior.magnitudes`) passes them as
    ``magnitudes``, and |S_k| comes from there instead (its frames cropped or edge-padded to the
    mixture STFT's), with no decoder pass per iteration.

    Args:
        decode: the prior's differentiable decoder.
        latent: initial latent(s), as for :class:`LatentSources`.
        mixture: the mixture in the decoder's format.
        sample_rate: the decoder's sample rate (reported, not used).
        config: see :class:`RemaskedSourcesConfig`.
        magnitudes: latent -> magnitudes on the ``config.n_fft`` / ``config.hop`` grid, or None.

    Shape:
        mixture (C, N); ``forward()`` -> (K, C, N)
    """

    parametrization = "remasked"

    def __init__(
        self,
        decode: Decode,
        latent: Tensor,
        mixture: Tensor,
        sample_rate: int,
        config: RemaskedSourcesConfig | None = None,
        magnitudes: Magnitudes | None = None,
    ) -> None:
        config = RemaskedSourcesConfig() if config is None else config
        _check_mixture(mixture)
        if magnitudes is not None and not callable(magnitudes):
            raise ValueError(f"magnitudes: expected a callable or None, got {type(magnitudes).__name__}")
        object.__setattr__(self, "magnitudes", magnitudes)  # not a submodule, as ``decode``
        latent_config = LatentSourcesConfig(config.num_sources, config.init_noise, config.seed)
        super().__init__(decode, latent, mixture.shape[1], sample_rate, latent_config)
        self.config = config
        if self.channels != mixture.shape[0]:
            raise ValueError(
                f"mixture: expected the decoder's {self.channels} channel(s), got {mixture.shape[0]}"
            )
        self.register_buffer("mixture_spec", stft(mixture.detach(), config.n_fft, config.hop))  # (C, F, T_s)

    def masks(self, z: Tensor) -> Tensor:
        """m_k from the decoded sources (or the prior's magnitudes). Shape: z (K, D, T) -> (K, C, F, T_s)."""
        if self.magnitudes is None:
            spec = stft(self.decoded(z), self.config.n_fft, self.config.hop)
            return ratio_masks(magnitude(spec), self.config.power)
        mags = self.magnitudes(z)  # (K, C, F, T')
        frames = self.mixture_spec.shape[-1]
        if mags.shape[-1] < frames:
            mags = torch.cat([mags, mags[..., -1:].expand(*mags.shape[:-1], frames - mags.shape[-1])], dim=-1)
        return ratio_masks(torch.sqrt(mags[..., :frames].square() + EPS), self.config.power)

    def render(self, params: dict[str, Tensor]) -> Tensor:
        masks = self.masks(params["z"])
        return apply_masks(masks, self.mixture_spec, self.config.n_fft, self.config.hop, self.num_samples)


@dataclass(frozen=True)
class MaskSourcesConfig:
    num_sources: int = 2  # K
    init_noise: float = 0.01  # std of the seeded noise on the zero initial logits (masks near 1/K)
    seed: int = 0
    n_fft: int = 1024  # mask STFT window (64 ms at 16 kHz)
    hop: int = 256

    def __post_init__(self) -> None:
        _check_common("MaskSourcesConfig", self.num_sources, self.init_noise, self.seed)
        _check_mask_settings("MaskSourcesConfig", self.n_fft, self.hop, None)


class MaskSources(Renderer):
    """Mixture-consistent masks optimised directly (ours): x_k = istft(softmax_k(l)_k X).

    The logits l (K, F, T_s) start at zero (every source near mixture / K), or at ``logits``, plus
    seeded noise; one mask per source is shared by every channel of the mixture.

    Args:
        mixture: the mixture (in the prior's format when used with SDS).
        sample_rate: the mixture's sample rate (reported, not used).
        config: see :class:`MaskSourcesConfig`.
        logits: the initial logits (K, F, T_s) on the mixture's STFT grid; None: zeros.

    Shape:
        mixture (C, N); ``forward()`` -> (K, C, N)
    """

    parametrization = "masks"

    def __init__(
        self,
        mixture: Tensor,
        sample_rate: int,
        config: MaskSourcesConfig | None = None,
        logits: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.config = config = MaskSourcesConfig() if config is None else config
        _check_mixture(mixture)
        if not is_int(sample_rate) or sample_rate < 1:
            raise ValueError(f"sample_rate: expected an int >= 1, got {sample_rate!r}")
        self.sample_rate = sample_rate
        self.channels, self.num_samples = mixture.shape
        self.register_buffer("mixture_spec", stft(mixture.detach(), config.n_fft, config.hop))  # (C, F, T_s)
        shape = (config.num_sources, *self.mixture_spec.shape[-2:])  # (K, F, T_s)
        g = torch.Generator().manual_seed(config.seed)
        noise = torch.randn(shape, generator=g, dtype=torch.float64).to(mixture.dtype).to(mixture.device)
        start = torch.zeros_like(noise)
        if logits is not None:
            if not isinstance(logits, Tensor) or tuple(logits.shape) != shape:
                got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
                raise ValueError(f"logits: expected {shape} (K, F, T_s), got {got}")
            if not logits.is_floating_point() or not torch.isfinite(logits).all():
                raise ValueError("logits: expected finite floating-point values")
            start = logits.detach().to(noise)
        self.raw["logits"] = nn.Parameter(start + config.init_noise * noise)

    def params(self) -> dict[str, Tensor]:
        """The logits themselves (unbounded, no ParamRange)."""
        return {"logits": self.raw["logits"]}

    def masks(self, logits: Tensor) -> Tensor:
        """Softmax over the sources. Shape: (K, F, T_s) -> (K, 1, F, T_s)."""
        return torch.softmax(logits, dim=0)[:, None]

    def render(self, params: dict[str, Tensor]) -> Tensor:
        masks = self.masks(params["logits"])
        return apply_masks(masks, self.mixture_spec, self.config.n_fft, self.config.hop, self.num_samples)

    def to_dict(self) -> dict[str, object]:
        """A summary: mask shape, each source's mean mask and RMS in dB."""
        with torch.no_grad():
            masks = self.masks(self.raw["logits"])
            x = self.render(self.params())
        return {
            "parametrization": self.parametrization,
            "num_sources": self.batch_size,
            "mask_shape": list(self.raw["logits"].shape),
            "mean_mask": [round(v, 4) for v in masks.mean(dim=(1, 2, 3)).tolist()],
            "rms_db": rms_db(x),
        }


__all__ = [
    "LatentSources",
    "LatentSourcesConfig",
    "MaskSources",
    "MaskSourcesConfig",
    "RemaskedSources",
    "RemaskedSourcesConfig",
    "apply_masks",
    "ratio_masks",
    "rms_db",
]
