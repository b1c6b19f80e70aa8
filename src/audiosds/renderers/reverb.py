"""A differentiable reverb: a dry recording convolved with a parametric room impulse response.

The impulse response (IR) is the classic statistical model of a room (Moorer 1979; Polack's
diffuse-field model; the reverb of Audio-SDS eq. 10, here split into octaves):

* late reverberation: a fixed seeded white noise split into octave bands by a partition of unity
  (raised-cosine crossovers at the octave edges: the bands add back to the noise exactly), band b
  multiplied by ``exp(-ln(1000) t / RT60_b)``, so its energy falls 60 dB in ``RT60_b`` seconds;
* early reflections: ``max_early`` taps at fixed seeded times in the first ``early_s`` seconds,
  random signs; the density (reflections per second) fades taps in one by one (tap k, in seeded
  order, has weight ``sigmoid(density * early_s - k)``), and their level is set against the tail's;
* pre-delay: the whole IR is delayed by a fractional delay (a phase ramp in the frequency
  domain, differentiable in the delay);
* output: ``(1 - wet) * dry + wet * (dry * h)``, ``h`` scaled to unit energy so ``wet`` is a level
  balance, then scaled to the dry signal's RMS.

Why this model: a diffuse late field is, to the ear and by measurement, Gaussian noise whose energy
decays exponentially at a frequency-dependent rate, so noise shaped by per-band exponential decays
sounds right and its parameters are the ones acousticians quote (per-octave RT60, pre-delay,
early-reflection density and level, wet/dry). Each RT60 is the decay of the rendered IR by
construction, which Schroeder integration confirms (tests/test_reverb.py), and the IR is a closed
form of its parameters: gradients reach every one of them directly. A feedback delay network also
sounds right, but its RT60 is implicit in its loop gains, and the gradient through its recursion
runs the whole length of the tail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..acoustics import OCTAVE_CENTRES_HZ
from .base import ParamRange, Renderer
from .fm import LN_1000, uniform_raw
from .impact import fast_fft_length

WET = ParamRange(0.0, 1.0, "ratio")
EARLY_LEVEL_DB = ParamRange(-30.0, 10.0, "dB")  # early reflections' energy against the late tail's
# width of the band crossovers: narrow enough that an octave's decay is mostly its own RT60's, wide
# enough that the band filters' responses stay short
CROSSOVER_OCTAVES = 0.5


@dataclass(frozen=True)
class ReverbConfig:
    """Configuration of :class:`ReverbRenderer`. Times in seconds, RT60 per octave band."""

    sample_rate: int = 16000
    seconds: float = 1.0  # length of the output; the dry input is cut or zero-padded to it
    batch_size: int = 1  # B independent parameter sets rendered at once
    seed: int = 0  # tail noise and early-reflection taps, then the initial raw parameters
    ir_seconds: float = 3.0  # length of the impulse response (after the pre-delay)
    rt60_min_s: float = 0.1
    rt60_max_s: float = 6.0
    max_predelay_s: float = 0.1
    early_s: float = 0.08  # span of the early reflections after the pre-delay
    max_early: int = 64  # early-reflection taps at most
    min_density: float = 25.0  # early reflections per second: 2 taps in 80 ms
    max_density: float = 800.0  # 64 taps in 80 ms

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"ReverbConfig.sample_rate: expected > 0, got {self.sample_rate}")
        if self.seconds <= 0 or round(self.sample_rate * self.seconds) < 2:
            raise ValueError(f"ReverbConfig.seconds: expected at least 2 samples, got {self.seconds} s")
        if self.batch_size < 1:
            raise ValueError(f"ReverbConfig.batch_size: expected >= 1, got {self.batch_size}")
        if not 0 < self.early_s < self.ir_seconds:
            raise ValueError(
                f"ReverbConfig: expected 0 < early_s < ir_seconds, got {self.early_s}, {self.ir_seconds}"
            )
        if not 0 < self.rt60_min_s < self.rt60_max_s:
            raise ValueError(
                f"ReverbConfig: expected 0 < rt60_min_s < rt60_max_s, got {self.rt60_min_s}, "
                f"{self.rt60_max_s}"
            )
        if self.max_predelay_s <= 0:
            raise ValueError(f"ReverbConfig.max_predelay_s: expected > 0, got {self.max_predelay_s}")
        if self.max_early < 1 or not 0 < self.min_density < self.max_density:
            raise ValueError(
                "ReverbConfig: expected max_early >= 1 and 0 < min_density < max_density, got "
                f"{self.max_early}, {self.min_density}, {self.max_density}"
            )
        if not self.band_centres_hz:
            raise ValueError(f"ReverbConfig.sample_rate: no octave band fits below {self.sample_rate / 2} Hz")

    @property
    def num_samples(self) -> int:
        return round(self.sample_rate * self.seconds)

    @property
    def ir_samples(self) -> int:
        return round(self.sample_rate * self.ir_seconds)

    @property
    def band_centres_hz(self) -> tuple[float, ...]:
        """The octave centres whose upper edge lies below the Nyquist frequency."""
        return tuple(c for c in OCTAVE_CENTRES_HZ if c * math.sqrt(2) < self.sample_rate / 2)


def octave_split(noise: Tensor, sample_rate: int, centres_hz: tuple[float, ...]) -> Tensor:
    """``noise`` split into bands that add back to it exactly: zero-phase gains forming a partition
    of unity, a ``cos^2`` / ``sin^2`` crossover of ``CROSSOVER_OCTAVES`` around each band edge (the
    geometric mean of neighbouring centres), flat in between, below the first centre and above the last.

    Shape:
        noise (N,) -> (num_bands, N)
    """
    n = noise.shape[-1]
    freqs = torch.fft.rfftfreq(n, d=1.0 / sample_rate, dtype=torch.float64).clamp_min(1e-3)
    octave = freqs.log2()  # (F,)
    centres = [math.log2(c) for c in centres_hz]
    rising = [torch.ones_like(octave)]  # per band: the gain of "this band or above"
    for low, high in zip(centres, centres[1:], strict=False):
        edge = 0.5 * (low + high)
        x = ((octave - edge) / CROSSOVER_OCTAVES + 0.5).clamp(0.0, 1.0)
        rising.append(torch.sin(0.5 * math.pi * x) ** 2)
    rising.append(torch.zeros_like(octave))
    gains = torch.stack([rising[b] - rising[b + 1] for b in range(len(centres))])  # (nb, F), sum 1
    return torch.fft.irfft(torch.fft.rfft(noise.double()) * gains, n=n).to(noise.dtype)


class ReverbRenderer(Renderer):
    """A dry recording through a parametric room (module docstring): B rooms, one dry input.

    Parameters (raw tensors with leading dim B, each through a ParamRange):
        ``rt60_s`` (B, nb): reverberation time per octave band (``config.band_centres_hz``), log curve.
        ``predelay_s`` (B,): delay of the first reflection after the direct sound.
        ``early_density`` (B,): early reflections per second, log curve.
        ``early_level_db`` (B,): the early reflections' energy against the late tail's.
        ``wet`` (B,): dry/wet balance, 0 (dry) to 1 (only the reverberated signal).

    The tail noise and the tap times and signs are drawn once from the seed, before the
    parameters, so they do not depend on ``batch_size``.

    Args:
        config: sizes, ranges and seed.
        dry: the dry recording, (N,) mono at ``config.sample_rate``, cut or zero-padded to
            ``config.num_samples``; None: a unit impulse, so the render is the room's response.

    Shape:
        forward() -> (B, 1, sample_rate * seconds), dtype of the parameters
    """

    def __init__(self, config: ReverbConfig, dry: Tensor | None = None) -> None:
        super().__init__()
        self.config = config
        self.sample_rate = config.sample_rate
        self.num_samples = n = config.num_samples
        length, nb = config.ir_samples, len(config.band_centres_hz)
        gen = torch.Generator().manual_seed(config.seed)

        noise = torch.randn(length, generator=gen, dtype=torch.float64)
        self.register_buffer("bands", octave_split(noise, config.sample_rate, config.band_centres_hz).float())
        early_samples = round(config.early_s * config.sample_rate)
        taps = torch.randint(0, early_samples, (config.max_early,), generator=gen)
        signs = torch.randint(0, 2, (config.max_early,), generator=gen).float() * 2 - 1
        self.register_buffer("tap_index", taps)
        self.register_buffer("tap_sign", signs)
        if dry is None:
            dry = torch.zeros(n)
            dry[0] = 1.0
        dry = torch.as_tensor(dry, dtype=torch.float32).reshape(-1)[:n]
        if not torch.isfinite(dry).all():
            raise ValueError("ReverbRenderer dry: expected finite samples")
        self.register_buffer("dry", torch.nn.functional.pad(dry, (0, n - dry.shape[0])))
        max_delay = math.ceil(config.max_predelay_s * config.sample_rate) + 1
        self.fft_length = fast_fft_length(n + length + max_delay)

        batch = config.batch_size
        self.add_param(
            "rt60_s",
            ParamRange(config.rt60_min_s, config.rt60_max_s, "s", "log"),
            uniform_raw(gen, (batch, nb), 0.3, 0.5),
        )
        self.add_param(
            "predelay_s", ParamRange(0.0, config.max_predelay_s, "s"), uniform_raw(gen, (batch,), 0.1, 0.3)
        )
        self.add_param(
            "early_density",
            ParamRange(config.min_density, config.max_density, "1/s", "log"),
            uniform_raw(gen, (batch,), 0.3, 0.7),
        )
        self.add_param("early_level_db", EARLY_LEVEL_DB, uniform_raw(gen, (batch,), 0.3, 0.6))
        self.add_param("wet", WET, uniform_raw(gen, (batch,), 0.3, 0.5))

    def impulse_response(self, params: dict[str, Tensor]) -> Tensor:
        """The room's impulse response without the pre-delay, unit energy.

        Shape:
            -> (B, ir_samples)
        """
        cfg = self.config
        rt60 = params["rt60_s"]
        t = torch.arange(cfg.ir_samples, dtype=rt60.dtype, device=rt60.device) / cfg.sample_rate  # (L,)

        # 1. late tail: each octave of the noise decays at its own rate
        decay = torch.exp(-LN_1000 * t / rt60.unsqueeze(-1))  # (B, nb, L)
        tail = torch.einsum("bkl,kl->bl", decay, self.bands.to(rt60.dtype))  # (B, L)
        tail = tail / tail.square().sum(dim=-1, keepdim=True).sqrt()

        # 2. early reflections: taps faded in one by one as the density grows, unit energy
        count = params["early_density"] * cfg.early_s  # (B,) expected taps in the early span
        order = torch.arange(cfg.max_early, dtype=rt60.dtype, device=rt60.device)  # (K,)
        weight = torch.sigmoid(count.unsqueeze(-1) - order - 0.5) * self.tap_sign.to(rt60.dtype)  # (B, K)
        early = torch.zeros_like(tail).index_add(1, self.tap_index, weight)  # (B, L)
        early = early / (early.square().sum(dim=-1, keepdim=True).sqrt() + 1e-12)

        # 3. early and late at the set balance, unit energy
        level = 10.0 ** (params["early_level_db"] / 20.0)  # (B,)
        h = tail + level.unsqueeze(-1) * early
        return h / h.square().sum(dim=-1, keepdim=True).sqrt()

    def render(self, params: dict[str, Tensor]) -> Tensor:
        """Parameters in human units -> wet audio (B, 1, N)."""
        h = self.impulse_response(params)  # (B, L)
        return reverberate(self.dry, h, params["predelay_s"], params["wet"], self.sample_rate).unsqueeze(1)


def reverberate(dry: Tensor, h: Tensor, predelay_s: Tensor, wet: Tensor, sample_rate: int) -> Tensor:
    """``(1 - wet) dry + wet (dry * h delayed by predelay)``, scaled to the dry signal's RMS; the
    output keeps the dry signal's length (the tail past its end is cut). The delay is a phase ramp
    in the frequency domain (fractional, differentiable), over an FFT long enough not to wrap.

    Shape:
        dry (..., N), h (B, L), predelay_s (B,), wet (B,) -> (B, ..., N)
    """
    n, length = dry.shape[-1], h.shape[-1]
    lead = dry.shape[:-1]
    size = fast_fft_length(n + length + math.ceil(float(predelay_s.detach().max()) * sample_rate) + 1)
    freqs = torch.fft.rfftfreq(size, d=1.0 / sample_rate, dtype=torch.float64).to(h.device)  # (F,)
    ramp = torch.polar(
        torch.ones_like(freqs), -2 * math.pi * freqs * predelay_s.double().unsqueeze(-1)
    )  # (B, F)
    spectrum = torch.fft.rfft(h, n=size) * ramp.to(
        torch.complex64 if h.dtype != torch.float64 else torch.complex128
    )
    spectrum = spectrum.reshape(h.shape[0], *(1,) * len(lead), -1)  # (B, ..., F)
    reverberant = torch.fft.irfft(torch.fft.rfft(dry.to(h.dtype), n=size) * spectrum, n=size)[..., :n]
    mix = wet.reshape(-1, *(1,) * (len(lead) + 1))  # (B, ..., 1)
    y = (1 - mix) * dry.to(h.dtype) + mix * reverberant  # (B, ..., N)
    dry_rms = dry.to(h.dtype).square().mean().sqrt()
    y_rms = y.square().flatten(1).mean(dim=-1).sqrt().reshape(mix.shape)
    return y * (dry_rms / (y_rms + 1e-9))


__all__ = ["ReverbConfig", "ReverbRenderer", "octave_split", "reverberate"]
