"""Modal impact synthesizer (Audio-SDS arXiv 2505.04621 eqs. 9-10).

Output = excitation * object * reverb (``*`` a linear convolution, done with one real FFT):

* object impulse (eq. 9): ``sum_k a_k exp(-d_k t) sin(2 pi f_k t)`` over K modes;
* reverb impulse (eq. 10): ``(1 - wet) delta + wet * tail / ||tail||_2`` with
  ``tail = sum_b g_b exp(-r_b t) noise_b(t)``, ``noise_b`` a fixed seeded white noise band-passed
  in the frequency domain by a smooth (Gaussian in log frequency) filter and scaled to unit RMS;
* excitation: the causal pulse ``(t / w) exp(1 - t / w)`` of width ``w`` (its spectrum falls as
  ``1 / (1 + (2 pi f w)^2)``: a short width is a hard strike that excites the high modes),
  normalised to unit sum.

The output is peak-normalised, and its last ``fade_out_s`` fade to silence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .base import ParamRange, Renderer, fade_out
from .fm import LN_1000, peak_normalise, uniform_raw

GAIN_DB = ParamRange(-60.0, 0.0, "dB")
WET = ParamRange(0.0, 1.0, "ratio")


def fast_fft_length(n: int) -> int:
    """The smallest 5-smooth integer (only prime factors 2, 3, 5) that is >= n: a fast FFT size."""
    m = max(1, n)
    while True:
        rest = m
        for p in (2, 3, 5):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return m
        m += 1


@dataclass(frozen=True)
class ImpactConfig:
    """Configuration of :class:`ImpactSynth`. Decay times are T60 (seconds to fall by 60 dB)."""

    sample_rate: int = 16000
    seconds: float = 1.0
    batch_size: int = 1  # B independent parameter sets rendered at once
    seed: int = 0  # reverb noise, then the initial raw parameters, from torch.Generator(seed)
    num_modes: int = 24
    num_bands: int = 8
    min_freq_hz: float = 20.0
    max_freq_fraction: float = 0.45  # mode frequencies stay below this fraction of sr (Nyquist: 0.5)
    init_min_freq_hz: float = 80.0  # modes start skewed log-uniform from here to the max: low-biased
    mode_t60_min_s: float = 0.01
    mode_t60_max_s: float = 4.0
    reverb_t60_min_s: float = 0.05
    reverb_t60_max_s: float = 4.0
    reverb_low_hz: float = 60.0  # centre of the lowest reverb band; the highest sits at the max frequency
    strike_width_min_s: float = 1e-4
    strike_width_max_s: float = 0.02
    peak: float = 0.5  # the output is divided by its peak (differentiably) and scaled to this
    fade_out_s: float = 0.01  # half-cosine fade at the clip's end (no click where a tone is cut); 0: none

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"ImpactConfig.sample_rate: expected > 0, got {self.sample_rate}")
        if self.seconds <= 0 or round(self.sample_rate * self.seconds) < 2:
            raise ValueError(f"ImpactConfig.seconds: expected at least 2 samples, got {self.seconds} s")
        if self.batch_size < 1:
            raise ValueError(f"ImpactConfig.batch_size: expected >= 1, got {self.batch_size}")
        if self.num_modes < 1 or self.num_bands < 1:
            raise ValueError(
                f"ImpactConfig: expected num_modes, num_bands >= 1, got {self.num_modes}, {self.num_bands}"
            )
        if not 0.0 < self.max_freq_fraction < 0.5:
            raise ValueError(
                f"ImpactConfig.max_freq_fraction: expected in (0, 0.5), got {self.max_freq_fraction}"
            )
        for name, low in (
            ("min_freq_hz", 0.0),
            ("init_min_freq_hz", self.min_freq_hz),
            ("reverb_low_hz", 0.0),
        ):
            value = getattr(self, name)
            if not low < value < self.max_freq_hz:
                raise ValueError(
                    f"ImpactConfig.{name}: expected in ({low}, {self.max_freq_hz}) Hz, got {value}"
                )
        if self.peak <= 0:
            raise ValueError(f"ImpactConfig.peak: expected > 0, got {self.peak}")
        if not 0 <= self.fade_out_s <= self.seconds:
            raise ValueError(f"ImpactConfig.fade_out_s: expected in [0, seconds], got {self.fade_out_s}")

    @property
    def num_samples(self) -> int:
        return round(self.sample_rate * self.seconds)

    @property
    def max_freq_hz(self) -> float:
        return self.max_freq_fraction * self.sample_rate


def band_noise(noise: Tensor, sample_rate: int, num_bands: int, low_hz: float, high_hz: float) -> Tensor:
    """White noise band-passed by fixed smooth filters, each band scaled to unit RMS.

    Band b has gain ``exp(-0.5 ((log2 f - log2 c_b) / w)^2)`` with centres ``c_b`` log-spaced
    from ``low_hz`` to ``high_hz`` and ``w`` their spacing in octaves (one octave if one band).

    Shape:
        noise (num_bands, N) -> (num_bands, N)
    """
    n = noise.shape[-1]
    centres = torch.logspace(math.log2(low_hz), math.log2(high_hz), num_bands, base=2.0, dtype=torch.float64)
    width = math.log2(high_hz / low_hz) / (num_bands - 1) if num_bands > 1 else 1.0
    freqs = torch.fft.rfftfreq(n, d=1.0 / sample_rate, dtype=torch.float64).clamp_min(1e-3)
    gains = torch.exp(-0.5 * ((freqs.log2() - centres.log2().unsqueeze(-1)) / width) ** 2)  # (nb, F)
    bands = torch.fft.irfft(torch.fft.rfft(noise.double()) * gains, n=n)
    return (bands / bands.square().mean(dim=-1, keepdim=True).sqrt()).to(noise.dtype)


def damped_modes(freq_hz: Tensor, decay: Tensor, amp: Tensor, sample_rate: int, num_samples: int) -> Tensor:
    """``sum_k amp_k exp(-decay_k t) sin(2 pi f_k t)`` at ``t = i / sample_rate``, ``i < num_samples``.

    Each mode is the imaginary part of ``p_k^i`` with the complex pole ``p_k = exp((-decay_k +
    2 pi i f_k) / sr)``. Writing ``i = R q + r`` splits ``p^i = p^(R q) p^r`` into two small
    tables (Q and R of about sqrt(N) entries, formed in float64, so the phase stays exact over
    long clips), and the sum over modes becomes one complex (Q, K) @ (K, R) matrix product: no
    (K, N) tensor is built, forward or backward, and no sine or exponential runs per sample.

    Shape:
        freq_hz, decay, amp (B, K) -> (B, num_samples), dtype of ``freq_hz``
    """
    fine_len = max(1, math.ceil(math.sqrt(num_samples)))
    coarse_len = -(-num_samples // fine_len)
    pole = torch.complex(-decay.double(), 2 * math.pi * freq_hz.double()) / sample_rate  # (B, K)
    fine_steps = torch.arange(fine_len, dtype=torch.float64, device=freq_hz.device)
    coarse_steps = fine_len * torch.arange(coarse_len, dtype=torch.float64, device=freq_hz.device)
    fine = torch.exp(pole.unsqueeze(-1) * fine_steps)  # (B, K, R)
    coarse = torch.exp(pole.unsqueeze(-1) * coarse_steps)  # (B, K, Q)
    coarse = coarse * amp.double().unsqueeze(-1)  # (B, K, Q)
    cdtype = torch.complex64 if freq_hz.dtype != torch.float64 else torch.complex128
    grid = coarse.transpose(-1, -2).to(cdtype) @ fine.to(cdtype)  # (B, Q, R)
    return grid.imag.reshape(grid.shape[0], -1)[:, :num_samples].to(freq_hz.dtype)


class ImpactSynth(Renderer):
    """Modal impact model of Audio-SDS eqs. 9-10: excitation * object * reverb.

    Parameters (raw tensors with leading dim B, each through a ParamRange):
        ``mode_freq_hz`` (B, K): mode frequencies f_k in [min_freq_hz, max_freq_fraction * sr],
            log curve; initialised low-biased: ``u_k^1.5`` of the log range above init_min_freq_hz,
            ``u_k`` uniform in the k-th of K equal strata of [0, 1).
        ``mode_t60_s`` (B, K): T60 of each mode, log curve; the decay rate ``d_k = ln(1000) / T60``
            is strictly positive and bounded (no growing mode).
        ``mode_gain_db`` (B, K): mode amplitudes a_k in dB.
        ``reverb_t60_s`` (B, nb), ``reverb_gain_db`` (B, nb): per-band decay and gain of the tail.
        ``wet`` (B,): dry/wet mix of the reverb impulse, in [0, 1].
        ``strike_width_s`` (B,): excitation pulse width ``w`` (time of its peak), log curve.

    The band-passed noise (buffer ``band_noise``, (nb, N)) is drawn once from the seed, before
    the parameters, so it does not depend on ``batch_size`` and every batch row shares it.
    Level: per row, the result is divided by its own peak (plus 1e-6) and scaled to ``config.peak``.

    Shape:
        forward() -> (B, 1, sample_rate * seconds), dtype of the parameters
    """

    def __init__(self, config: ImpactConfig) -> None:
        super().__init__()
        self.config = config
        self.sample_rate = config.sample_rate
        self.num_samples = n = config.num_samples
        batch, k, nb = config.batch_size, config.num_modes, config.num_bands
        gen = torch.Generator().manual_seed(config.seed)

        noise = torch.randn(nb, n, generator=gen, dtype=torch.float64)
        bands = band_noise(noise, config.sample_rate, nb, config.reverb_low_hz, config.max_freq_hz)
        self.register_buffer("band_noise", bands.float())
        self.fft_length = fast_fft_length(3 * n - 2)  # the full 3-way linear convolution: no wrap-around

        freq = ParamRange(config.min_freq_hz, config.max_freq_hz, "Hz", "log")
        lo_init = float(torch.sigmoid(freq.to_raw(config.init_min_freq_hz)))
        # one draw per stratum of [0, 1) to the power 1.5: spread over the range, denser at the low end
        strata = (
            torch.arange(k, dtype=torch.float64) + torch.rand(batch, k, generator=gen, dtype=torch.float64)
        ) / k
        skew = strata**1.5
        self.add_param("mode_freq_hz", freq, torch.logit(lo_init + (0.99 - lo_init) * skew).float())
        self.add_param(
            "mode_t60_s",
            ParamRange(config.mode_t60_min_s, config.mode_t60_max_s, "s", "log"),
            uniform_raw(gen, (batch, k), 0.4, 0.8),
        )
        self.add_param("mode_gain_db", GAIN_DB, uniform_raw(gen, (batch, k), 0.5, 0.9))
        self.add_param(
            "reverb_t60_s",
            ParamRange(config.reverb_t60_min_s, config.reverb_t60_max_s, "s", "log"),
            uniform_raw(gen, (batch, nb), 0.2, 0.6),
        )
        self.add_param("reverb_gain_db", GAIN_DB, uniform_raw(gen, (batch, nb), 0.6, 0.9))
        self.add_param("wet", WET, uniform_raw(gen, (batch,), 0.2, 0.4))
        self.add_param(
            "strike_width_s",
            ParamRange(config.strike_width_min_s, config.strike_width_max_s, "s", "log"),
            uniform_raw(gen, (batch,), 0.1, 0.4),
        )

    def render(self, params: dict[str, Tensor]) -> Tensor:
        """Parameters in human units -> audio (B, 1, N)."""
        cfg = self.config
        n, freq = self.num_samples, params["mode_freq_hz"]
        t = torch.arange(n, dtype=freq.dtype, device=freq.device) / cfg.sample_rate  # (N,)

        # 1. object impulse, eq. 9: damped sinusoids
        decay = LN_1000 / params["mode_t60_s"]  # (B, K), > 0
        amp = 10.0 ** (params["mode_gain_db"] / 20.0)  # (B, K)
        obj = damped_modes(freq, decay, amp, cfg.sample_rate, n)  # (B, N)

        # 2. reverb impulse, eq. 10: decaying noise bands, unit-energy tail, dry/wet delta + tail
        band_decay = torch.exp(-LN_1000 * t / params["reverb_t60_s"].unsqueeze(-1))  # (B, nb, N)
        band_gain = 10.0 ** (params["reverb_gain_db"] / 20.0)  # (B, nb)
        tail = torch.einsum("bk,bkn,kn->bn", band_gain, band_decay, self.band_noise.to(t.dtype))  # (B, N)
        tail = tail / tail.square().sum(dim=-1, keepdim=True).sqrt()

        # 3. excitation: causal pulse of width w, unit sum
        x = t / params["strike_width_s"].unsqueeze(-1)  # (B, N)
        pulse = x * torch.exp(1 - x)
        pulse = pulse / pulse.sum(dim=-1, keepdim=True)

        # 4. excitation * object * ((1 - wet) delta + wet * tail), one FFT product, truncated to N
        length = self.fft_length
        wet = params["wet"].unsqueeze(-1)  # (B, 1)
        reverb = (1 - wet) + wet * torch.fft.rfft(tail, n=length)  # spectrum of (1 - wet) delta + wet tail
        y = torch.fft.irfft(
            torch.fft.rfft(pulse, n=length) * torch.fft.rfft(obj, n=length) * reverb, n=length
        )
        return fade_out(peak_normalise(y[..., :n], cfg.peak), cfg.sample_rate, cfg.fade_out_s).unsqueeze(1)
