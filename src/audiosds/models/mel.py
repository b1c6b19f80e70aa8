"""The embedded prior's fixed "encoder": a differentiable, normalised log-mel spectrogram.

The settings are HiFi-GAN V1's (Kong et al. 2020), so the pretrained vocoder voices these mels:
22.05 kHz mono, n_fft 1024, Hann window 1024, hop 256, 80 Slaney mels from 0 to 8 kHz on the STFT
magnitude, ``log(max(mel, 1e-5))``. The signal is reflect-padded by (n_fft - hop) / 2 on both sides
and framed without centring (HiFi-GAN's own front end), so N samples give exactly N / 256 frames
and the vocoder turns T frames back into T * 256 samples.

The prior models ``z = (log_mel - offset) / scale`` (two scalars measured on the training data and
stored in ``mel.json``), so silence sits near ``(log(1e-5) - offset) / scale`` and speech-level
sound near 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class MelConfig:
    sample_rate: int = 22050
    n_fft: int = 1024
    hop: int = 256
    win: int = 1024
    n_mels: int = 80
    fmin_hz: float = 0.0
    fmax_hz: float = 8000.0
    floor: float = 1e-5  # magnitude floor before the log (HiFi-GAN's)
    # z = (log_mel - offset) / scale; measured on the training mels by the training script.
    offset: float = -5.0
    scale: float = 2.5

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "hop", "win", "n_mels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"MelConfig.{name}: expected a positive int, got {value!r}")
        if self.win > self.n_fft or (self.n_fft - self.hop) % 2:
            raise ValueError(
                f"MelConfig: expected win <= n_fft and an even n_fft - hop, got n_fft={self.n_fft}, "
                f"hop={self.hop}, win={self.win}"
            )
        if not 0 <= self.fmin_hz < self.fmax_hz <= self.sample_rate / 2:
            raise ValueError(
                f"MelConfig: expected 0 <= fmin_hz < fmax_hz <= sample_rate / 2, got {self.fmin_hz}, "
                f"{self.fmax_hz}"
            )
        if not (self.floor > 0 and self.scale > 0):
            raise ValueError(f"MelConfig: expected floor > 0 and scale > 0, got {self.floor}, {self.scale}")

    @property
    def z_floor(self) -> float:
        """The normalised value of silence."""
        return (float(np.log(self.floor)) - self.offset) / self.scale

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> MelConfig:
        """``MelConfig(**d)`` with a ValueError naming unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"MelConfig: unknown keys {unknown}; expected a subset of {sorted(known)}")
        return cls(**d)


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, lin)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    lin = m * (200.0 / 3)
    log = 1000.0 * np.exp((m - 15.0) * (np.log(6.4) / 27.0))
    return np.where(m >= 15.0, log, lin)


@lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin_hz: float, fmax_hz: float) -> np.ndarray:
    """Slaney-normalised triangular filters (area-normalised, as librosa's default).

    Shape:
        -> (n_mels, n_fft // 2 + 1) float32
    """
    bins_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(fmin_hz), _hz_to_mel(fmax_hz), n_mels + 2))
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - bins_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return weights.astype(np.float32)


def _spread(basis: Tensor) -> Tensor:
    """(n_fft // 2 + 1, n_mels): row f holds the weights of the bands over linear bin f, summing to 1;
    bins above fmax take the top band."""
    weights = basis.T  # (F, M)
    total = weights.sum(dim=1, keepdim=True)
    top = torch.zeros_like(weights[0])
    top[-1] = 1.0
    return torch.where(total > 0, weights / total.clamp(min=1e-12), top)


class MelSpectrogram(nn.Module):
    """Audio -> normalised log-mel ``z``, differentiable, and the inverse of the normalisation.

    Args:
        config: the STFT / mel settings and the normalisation.
    """

    def __init__(self, config: MelConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = MelConfig() if config is None else config
        basis = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin_hz, cfg.fmax_hz)
        self.register_buffer("basis", torch.from_numpy(basis), persistent=False)
        self.register_buffer("window", torch.hann_window(cfg.win), persistent=False)
        self.register_buffer("spread", _spread(self.basis), persistent=False)

    def frames(self, num_samples: int) -> int:
        """Mel frames for ``num_samples`` samples (the tail is padded to a whole hop)."""
        return -(-num_samples // self.config.hop)

    def magnitude(self, x: Tensor) -> Tensor:
        """Linear-frequency STFT magnitudes on the mel frames.

        Shape:
            x (B, N) -> (B, n_fft // 2 + 1, ceil(N / hop))
        """
        cfg = self.config
        n = x.shape[-1]
        tail = self.frames(n) * cfg.hop - n
        pad = (cfg.n_fft - cfg.hop) // 2
        x = F.pad(x, (0, tail))
        mode = "reflect" if x.shape[-1] > pad else "constant"
        x = F.pad(x[:, None], (pad, pad), mode=mode)[:, 0]
        spec = torch.stft(
            x, cfg.n_fft, cfg.hop, cfg.win, self.window.to(x.dtype), center=False, return_complex=True
        )
        # sqrt(|S|^2 + 1e-9) rather than |S|: finite gradients at exact silence
        return torch.sqrt(spec.real.square() + spec.imag.square() + 1e-9)

    def log_mel(self, x: Tensor) -> Tensor:
        """``log(max(mel, floor))`` as HiFi-GAN takes it.

        Shape:
            x (B, N) or (B, 1, N) -> (B, n_mels, ceil(N / hop))
        """
        if x.ndim == 3:
            if x.shape[1] != 1:
                raise ValueError(f"x: expected mono (B, 1, N), got {tuple(x.shape)}")
            x = x[:, 0]
        if x.ndim != 2:
            raise ValueError(f"x: expected (B, N) or (B, 1, N), got {tuple(x.shape)}")
        mel = torch.matmul(self.basis.to(x.dtype), self.magnitude(x))
        return torch.log(torch.clamp(mel, min=self.config.floor))

    def forward(self, x: Tensor) -> Tensor:
        """Normalised log-mel ``z``.

        Shape:
            x (B, N) or (B, 1, N) -> z (B, n_mels, ceil(N / hop))
        """
        return self.normalise(self.log_mel(x))

    def linear_magnitudes(self, log_mel: Tensor) -> Tensor:
        """Mel energies spread back onto the linear STFT bins: each bin takes the filter-weighted mean
        of the bands that cover it, bins above ``fmax_hz`` the top band's. An approximation (a mel
        band has one value for all its bins) that keeps every ratio between two sources' bands, which
        is what ratio masks need.

        Shape:
            log_mel (B, n_mels, T) -> (B, n_fft // 2 + 1, T)
        """
        return torch.matmul(self.spread.to(log_mel.dtype), torch.exp(log_mel))

    def normalise(self, log_mel: Tensor) -> Tensor:
        return (log_mel - self.config.offset) / self.config.scale

    def denormalise(self, z: Tensor) -> Tensor:
        """``z`` -> log-mel, clamped to the floor (generated values below silence mean silence)."""
        return torch.clamp(z * self.config.scale + self.config.offset, min=float(np.log(self.config.floor)))
