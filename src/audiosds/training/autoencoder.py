"""The embedded prior's waveform <-> latent autoencoder (a small convolutional VAE).

16 kHz mono audio is folded into ``patch`` polyphase channels (a learned filterbank at
``sample_rate / patch`` frames/s), processed by dilated residual units, downsampled by a
strided convolution to the latent rate ``sample_rate / downsampling`` and projected to a
Gaussian posterior (mean, log std) over ``latent_channels`` channels. The decoder mirrors it
with sub-pixel (conv + channel-to-time shuffle) upsampling, so every layer is an ordinary
``Conv1d`` and any length works (the input is zero-padded to a multiple of ``downsampling``).

The latent is what the denoiser diffuses and what Decoder-SDS decodes (Audio-SDS arXiv
2505.04621 eqs. 5-6); classic SDS (eq. 4) differentiates :meth:`Autoencoder.encode`.

Optional envelope channels (``envelope_bands`` > 0): the latent is the learned channels followed by
the log energies of ``envelope_bands`` log-spaced frequency bands of the input, one value per latent
frame, standardised with statistics stored in the weights and scaled to ``envelope_scale``. They are
computed, not learned (no posterior noise, no KL), and the decoder reads them with the rest. The
learned latent of the 64x autoencoder carries a sound's family only in second moments (how much
energy each channel holds; ``benchmarks/prior_diagnostics.py --sections moments``), which a
denoiser's posterior mean cannot follow at high noise; band energies carry it in the first moment.

This module imports only torch: the Prior backend loads it at run time.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _positive_int(owner: str, name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{owner}.{name}: expected a positive int, got {value!r}")


ENVELOPE_SPACINGS = ("log", "mel")
DECODER_HEADS = ("patch", "istft")
FILTERBANKS = ("fold", "pqmf")
POSTFILTERS = ("none", "gate", "gate_fill")
# PQMF prototype: taps = PQMF_TAPS_PER_BAND * bands, Kaiser beta, cutoff PQMF_CUTOFF / bands (of Nyquist).
# Found by a grid search for 16 bands: noise analysed and resynthesised at 58 dB SNR (unit test: >= 40 dB
# for 4, 8 and 16 bands).
PQMF_TAPS_PER_BAND = 12
PQMF_BETA = 9.0
PQMF_CUTOFF = 0.5875
ISTFT_MAX_LOG_MAGNITUDE = 10.0  # the istft head's log magnitudes are clamped here (float safety)


def _hz_to_mel(hz: float) -> float:
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def band_edges(min_hz: float, max_hz: float, bands: int, spacing: str) -> Tensor:
    """``bands + 1`` edges from ``min_hz`` to ``max_hz``, evenly spaced in log frequency ("log") or in
    mel ("mel", the HTK formula 2595 log10(1 + f / 700)).

    Shape:
        -> (bands + 1,) float64
    """
    if spacing == "log":
        return torch.logspace(math.log10(min_hz), math.log10(max_hz), bands + 1, dtype=torch.float64)
    mel = torch.linspace(_hz_to_mel(min_hz), _hz_to_mel(max_hz), bands + 1, dtype=torch.float64)
    return 700.0 * (torch.pow(10.0, mel / 2595.0) - 1.0)


@dataclass(frozen=True)
class AutoencoderConfig:
    sample_rate: int = 16000
    # D: 16 channels at 250 frames/s = 4000 numbers/s for 16000 samples/s. After 1000 steps 32 channels
    # reconstructed only ~1 dB better (held-out SI-SDR) and doubled what the denoiser must model.
    latent_channels: int = 16
    patch: int = 16  # samples folded into channels at the input: the "high" rate is 1000 frames/s
    down: int = 4  # strided conv from the high rate to the latent rate; downsampling = patch * down
    high_channels: int = 64  # width at the high rate
    low_channels: int = 192  # width at the latent rate
    high_dilations: tuple[int, ...] = (1, 3)  # one residual unit per dilation at the high rate
    low_dilations: tuple[int, ...] = (1, 3, 9)  # one residual unit per dilation at the latent rate
    kernel: int = 7  # kernel of the dilated convs (odd)
    # Audio is multiplied by this before the encoder and the decoder's output divided by it, so world
    # clips (RMS ~0.02-0.1) enter the network near unit scale: at raw scale training crawls.
    input_gain: float = 16.0
    # log std of the posterior is clamped to this range before sampling; the prior uses the mean.
    min_log_std: float = -9.0
    max_log_std: float = 2.0
    # Computed log band-energy channels appended to the learned latent (see the module doc); 0 = none.
    envelope_bands: int = 0
    envelope_min_hz: float = 50.0  # lowest band edge; the highest is Nyquist
    envelope_window: int = 1024  # STFT window of the band energies (hop: one latent frame)
    envelope_scale: float = 0.5  # std of the standardised envelope channels (the learned ones: ~0.5)
    # Band edges evenly spaced in "log" frequency or on the "mel" scale (about linear below 700 Hz, so
    # many bands fit above envelope_min_hz without empty ones: enough to hold a tone's pitch).
    envelope_spacing: str = "log"
    # The decoder was also trained to render the envelope channels alone (learned channels zero;
    # finetune_decoder's drop_fraction), and latents the denoiser generates are decoded that way
    # (:meth:`Autoencoder.decode_envelope`): the denoiser generates band energies well and learned
    # channels badly (benchmarks/RESULTS.md).
    envelope_decoding: bool = False
    # How the decoder makes samples. "patch": the high-rate stack's channels unfolded into samples (two
    # sub-pixel upsamplers). "istft": from the latent-rate features, a log magnitude and a phase
    # direction per STFT bin (window istft_overlap * downsampling, hop downsampling, Hann), inverted by
    # torch.istft, with no upsampler to leak frame-rate images (the Vocos construction). Measured
    # (RESULTS.md): neither returns a steady tone above ~2 kHz from the shipped encoder's
    # latent, and the istft head trained jointly learned more slowly.
    decoder_head: str = "patch"
    istft_overlap: int = 4
    istft_dilations: tuple[int, ...] = (1, 3)  # istft head: residual units after the low-rate ones
    # How audio becomes ``patch`` channels at the high rate and back. "fold": polyphase (sample r of each
    # patch -> channel r). "pqmf": a near-perfect-reconstruction pseudo-QMF filterbank, channel k = the
    # k-th of ``patch`` equal frequency bands (as in multi-band vocoders and RAVE), so a high partial
    # lives in its own channel instead of being spread over all of them (a 1500-step pilot: no better).
    filterbank: str = "fold"
    # Envelope channels only: correct the decoder's output to the band energies the latent carries
    # (:class:`EnvelopePostFilter`; no parameters, not used in training). "gate" scales down every
    # band-frame louder than its envelope value (the low-frequency images a decoder leaks when it
    # cannot place a high partial's phase); "gate_fill" also fills band-frames above
    # ``postfilter_fill_hz`` that are too quiet with fixed-seed noise of the missing energy (the high
    # band a decoder attenuates). Measured (RESULTS.md): the feature judge names the family
    # of 73.9% of an envelope autoencoder's reconstructions of 310 held-out clips, 87.1% with "gate_fill".
    postfilter: str = "none"
    postfilter_fill_hz: float = 2000.0
    # The post-filter for latents the denoiser generated (:meth:`Autoencoder.decode_generated`); None:
    # ``postfilter``. Their envelope channels are generated too, and a fill renders whatever energy a
    # generated envelope puts in the high band (flute prompts came out as hiss).
    postfilter_generated: str | None = None

    def __post_init__(self) -> None:
        for name in ("sample_rate", "latent_channels", "patch", "down", "high_channels", "low_channels"):
            _positive_int("AutoencoderConfig", name, getattr(self, name))
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ValueError(f"AutoencoderConfig.kernel: expected an odd positive int, got {self.kernel!r}")
        if self.decoder_head not in DECODER_HEADS:
            raise ValueError(
                f"AutoencoderConfig.decoder_head: expected one of {DECODER_HEADS}, got {self.decoder_head!r}"
            )
        _positive_int("AutoencoderConfig", "istft_overlap", self.istft_overlap)
        if self.filterbank not in FILTERBANKS:
            raise ValueError(
                f"AutoencoderConfig.filterbank: expected one of {FILTERBANKS}, got {self.filterbank!r}"
            )
        for name in ("high_dilations", "low_dilations", "istft_dilations"):
            value = tuple(getattr(self, name))
            for d in value:
                _positive_int("AutoencoderConfig", name, d)
            object.__setattr__(self, name, value)  # JSON gives lists; keep the dataclass hashable
        if not self.input_gain > 0:
            raise ValueError(f"AutoencoderConfig.input_gain: expected > 0, got {self.input_gain!r}")
        if (
            not isinstance(self.envelope_bands, int)
            or isinstance(self.envelope_bands, bool)
            or self.envelope_bands < 0
        ):
            raise ValueError(
                f"AutoencoderConfig.envelope_bands: expected an int >= 0, got {self.envelope_bands!r}"
            )
        if self.envelope_bands:
            _positive_int("AutoencoderConfig", "envelope_window", self.envelope_window)
            if not 0 < self.envelope_min_hz < self.sample_rate / 2:
                raise ValueError(
                    f"AutoencoderConfig.envelope_min_hz: expected a value in (0, {self.sample_rate / 2}), "
                    f"got {self.envelope_min_hz!r}"
                )
            if not self.envelope_scale > 0:
                raise ValueError(
                    f"AutoencoderConfig.envelope_scale: expected > 0, got {self.envelope_scale!r}"
                )
        if self.envelope_spacing not in ENVELOPE_SPACINGS:
            raise ValueError(
                f"AutoencoderConfig.envelope_spacing: expected one of {ENVELOPE_SPACINGS}, "
                f"got {self.envelope_spacing!r}"
            )
        if self.envelope_decoding and not self.envelope_bands:
            raise ValueError("AutoencoderConfig.envelope_decoding: needs envelope_bands > 0")
        if self.postfilter not in POSTFILTERS:
            raise ValueError(
                f"AutoencoderConfig.postfilter: expected one of {POSTFILTERS}, got {self.postfilter!r}"
            )
        if self.postfilter_generated is not None and self.postfilter_generated not in POSTFILTERS:
            raise ValueError(
                f"AutoencoderConfig.postfilter_generated: expected None or one of {POSTFILTERS}, "
                f"got {self.postfilter_generated!r}"
            )
        filtered = self.postfilter != "none" or self.postfilter_generated not in (None, "none")
        if filtered and not self.envelope_bands:
            raise ValueError("AutoencoderConfig.postfilter: needs envelope_bands > 0")
        if not 0 <= self.postfilter_fill_hz <= self.sample_rate / 2:
            raise ValueError(
                f"AutoencoderConfig.postfilter_fill_hz: expected a value in [0, {self.sample_rate / 2}], "
                f"got {self.postfilter_fill_hz!r}"
            )
        if not self.min_log_std < self.max_log_std:
            raise ValueError(
                f"AutoencoderConfig.max_log_std: expected > min_log_std = {self.min_log_std}, "
                f"got {self.max_log_std}"
            )

    @property
    def downsampling(self) -> int:
        """Audio samples per latent frame."""
        return self.patch * self.down

    @property
    def total_channels(self) -> int:
        """Channels of the latent the prior sees: learned + envelope."""
        return self.latent_channels + self.envelope_bands

    def to_dict(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> AutoencoderConfig:
        """``AutoencoderConfig(**d)``: an unknown key is a TypeError naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(
                f"AutoencoderConfig: unknown keys {unknown}; expected a subset of {sorted(known)}"
            )
        return cls(**d)


class Snake(nn.Module):
    """Snake activation x + sin^2(alpha x) / alpha with a learned alpha per channel (periodic bias
    that suits tonal audio).

    Shape:
        (B, C, T) -> (B, C, T)
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.log_alpha = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        alpha = self.log_alpha.exp()
        return x + torch.sin(alpha * x).square() / alpha


class ResidualUnit(nn.Module):
    """x + conv1x1(snake(conv_k,dilated(snake(x)))): a dilated residual unit.

    Shape:
        (B, C, T) -> (B, C, T)
    """

    def __init__(self, channels: int, dilation: int, kernel: int) -> None:
        super().__init__()
        self.act1 = Snake(channels)
        self.conv1 = nn.Conv1d(
            channels, channels, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2
        )
        self.act2 = Snake(channels)
        self.conv2 = nn.Conv1d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.act2(self.conv1(self.act1(x))))


def fold(x: Tensor, factor: int) -> Tensor:
    """Polyphase fold: time to channels. ``fold(x, f)[:, c * f + r, t] = x[:, c, t * f + r]``.

    Shape:
        (B, C, T * factor) -> (B, C * factor, T)
    """
    batch, channels, n = x.shape
    return (
        x.reshape(batch, channels, n // factor, factor).transpose(2, 3).reshape(batch, channels * factor, -1)
    )


def unfold(x: Tensor, factor: int) -> Tensor:
    """Inverse of :func:`fold` (a 1-D pixel shuffle).

    Shape:
        (B, C * factor, T) -> (B, C, T * factor)
    """
    batch, cf, frames = x.shape
    return x.reshape(batch, cf // factor, factor, frames).transpose(2, 3).reshape(batch, cf // factor, -1)


class PQMF(nn.Module):
    """Pseudo-QMF analysis and synthesis with ``bands`` equal bands (cosine-modulated Kaiser-windowed
    sinc prototype; constants ``PQMF_*``). ``synthesis(analysis(x))`` is x up to about -50 dB.

    Shape:
        analysis: (B, 1, T * bands) -> (B, bands, T); synthesis: (B, bands, T) -> (B, 1, T * bands)
    """

    def __init__(self, bands: int) -> None:
        super().__init__()
        self.bands = bands
        taps = PQMF_TAPS_PER_BAND * bands
        cutoff = PQMF_CUTOFF / bands
        n = torch.arange(taps + 1, dtype=torch.float64) - taps / 2
        window = torch.kaiser_window(taps + 1, periodic=False, beta=PQMF_BETA, dtype=torch.float64)
        prototype = cutoff * torch.sinc(cutoff * n) * window
        prototype = prototype / prototype.sum()
        k = torch.arange(bands, dtype=torch.float64)[:, None]
        phase = (2 * k + 1) * math.pi / (2 * bands) * n[None]
        turn = (-1.0) ** k * math.pi / 4
        analysis = 2 * prototype * torch.cos(phase + turn)  # (bands, taps + 1)
        synthesis = 2 * prototype * torch.cos(phase - turn)
        self.half = taps // 2
        self.register_buffer("analysis_filters", analysis.float()[:, None], persistent=False)
        # conv_transpose1d convolves; the synthesis filter is applied as a correlation, hence the flip
        self.register_buffer(
            "synthesis_filters", (bands * synthesis.flip(-1)).float()[:, None], persistent=False
        )

    def analysis(self, x: Tensor) -> Tensor:
        return F.conv1d(F.pad(x, (self.half, self.half)), self.analysis_filters, stride=self.bands)

    def synthesis(self, y: Tensor) -> Tensor:
        frames = y.shape[-1]
        out = F.conv_transpose1d(y, self.synthesis_filters, stride=self.bands)
        return out[..., self.half : self.half + frames * self.bands]


class Encoder(nn.Module):
    """Waveform -> (mean, log std) of the latent posterior.

    Shape:
        (B, 1, T * downsampling) -> two (B, D, T)
    """

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        k = cfg.kernel
        self.inp = nn.Conv1d(cfg.patch, cfg.high_channels, k, padding=k // 2)
        self.high = nn.Sequential(*(ResidualUnit(cfg.high_channels, d, k) for d in cfg.high_dilations))
        self.act_high = Snake(cfg.high_channels)
        self.down = nn.Conv1d(cfg.high_channels * cfg.down, cfg.low_channels, 3, padding=1)
        self.low = nn.Sequential(*(ResidualUnit(cfg.low_channels, d, k) for d in cfg.low_dilations))
        self.act_low = Snake(cfg.low_channels)
        self.out = nn.Conv1d(cfg.low_channels, 2 * cfg.latent_channels, 3, padding=1)
        self.pqmf = PQMF(cfg.patch) if cfg.filterbank == "pqmf" else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x * self.cfg.input_gain
        bands = fold(x, self.cfg.patch) if self.pqmf is None else self.pqmf.analysis(x)
        h = self.high(self.inp(bands))  # (B, Ch, T * down)
        h = self.low(self.down(fold(self.act_high(h), self.cfg.down)))  # (B, Cl, T)
        mean, log_std = self.out(self.act_low(h)).chunk(2, dim=1)
        return mean, log_std.clamp(self.cfg.min_log_std, self.cfg.max_log_std)


def _latent_rate_stack(module: nn.Module, cfg: AutoencoderConfig, dilations: tuple[int, ...]) -> None:
    """The decoders' first stage, as ``module.inp`` (latent -> ``low_channels``), ``module.low``
    (a residual unit per dilation) and ``module.act_low``."""
    k = cfg.kernel
    module.inp = nn.Conv1d(cfg.total_channels, cfg.low_channels, k, padding=k // 2)
    module.low = nn.Sequential(*(ResidualUnit(cfg.low_channels, d, k) for d in dilations))
    module.act_low = Snake(cfg.low_channels)


class Decoder(nn.Module):
    """Latent -> waveform.

    Shape:
        (B, D, T) -> (B, 1, T * downsampling)
    """

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        k = cfg.kernel
        _latent_rate_stack(self, cfg, cfg.low_dilations)
        self.up = nn.Conv1d(cfg.low_channels, cfg.high_channels * cfg.down, 3, padding=1)
        self.high = nn.Sequential(*(ResidualUnit(cfg.high_channels, d, k) for d in cfg.high_dilations))
        self.act_high = Snake(cfg.high_channels)
        self.out = nn.Conv1d(cfg.high_channels, cfg.patch, k, padding=k // 2)
        self.pqmf = PQMF(cfg.patch) if cfg.filterbank == "pqmf" else None

    def forward(self, z: Tensor) -> Tensor:
        h = self.low(self.inp(z))  # (B, Cl, T)
        h = self.high(unfold(self.up(self.act_low(h)), self.cfg.down))  # (B, Ch, T * down)
        bands = self.out(self.act_high(h))  # (B, patch, T * down)
        y = unfold(bands, self.cfg.patch) if self.pqmf is None else self.pqmf.synthesis(bands)
        return y / self.cfg.input_gain  # (B, 1, T * downsampling)


class ISTFTDecoder(nn.Module):
    """Latent -> waveform through an inverse STFT (``AutoencoderConfig.decoder_head == "istft"``).

    The latent-rate stack (as :class:`Decoder`'s, plus ``istft_dilations`` units) predicts per frame and
    bin a log magnitude m and a direction (u, v); the bin is exp(m) (u + iv) / |u + iv|, and
    ``torch.istft`` (Hann window of ``istft_overlap * downsampling`` samples, hop ``downsampling``,
    centred) overlap-adds the frames.

    Shape:
        (B, D, T) -> (B, 1, T * downsampling)
    """

    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.hop = cfg.downsampling
        self.n_fft = cfg.istft_overlap * self.hop
        bins = self.n_fft // 2 + 1
        _latent_rate_stack(self, cfg, cfg.low_dilations + cfg.istft_dilations)
        self.head = nn.Conv1d(cfg.low_channels, 3 * bins, 3, padding=1)
        with torch.no_grad():
            self.head.bias[:bins].fill_(-3.0)  # start quiet
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)

    def forward(self, z: Tensor) -> Tensor:
        frames = z.shape[-1]
        m, u, v = self.head(self.act_low(self.low(self.inp(z)))).chunk(3, dim=1)  # (B, bins, T) each
        scale = m.clamp(max=ISTFT_MAX_LOG_MAGNITUDE).exp() / (u.square() + v.square() + 1e-8).sqrt()
        spec = torch.complex(scale * u, scale * v)
        y = torch.istft(spec, self.n_fft, self.hop, window=self.window, center=True, length=frames * self.hop)
        return y[:, None] / self.cfg.input_gain


class Envelope(nn.Module):
    """Standardised log energies of frequency bands, one frame per ``hop`` samples.

    Band ``b`` sums the power of the STFT bins (Hann window ``cfg.envelope_window``) whose frequency lies
    in [e_b, e_{b+1}), edges from ``cfg.envelope_min_hz`` to Nyquist (included), spaced as
    ``cfg.envelope_spacing`` says (:func:`band_edges`). The
    statistics (``mean``, ``std`` per band) are buffers stored with the weights and set once from
    training audio by :meth:`set_statistics`; until then they are 0 and 1.

    Shape:
        x (B, N) with N a multiple of hop -> (B, bands, N / hop)
    """

    def __init__(self, cfg: AutoencoderConfig, hop: int) -> None:
        super().__init__()
        self.hop, self.window_size, self.scale = hop, cfg.envelope_window, cfg.envelope_scale
        bins = cfg.envelope_window // 2 + 1
        freqs = torch.arange(bins, dtype=torch.float64) * cfg.sample_rate / cfg.envelope_window
        edges = band_edges(cfg.envelope_min_hz, cfg.sample_rate / 2, cfg.envelope_bands, cfg.envelope_spacing)
        edges[-1] = math.inf  # Nyquist belongs to the top band
        bands = torch.stack(
            [(freqs >= lo) & (freqs < hi) for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
        )
        empty = [b for b in range(cfg.envelope_bands) if not bool(bands[b].any())]
        if empty:
            raise ValueError(
                f"AutoencoderConfig.envelope_bands: bands {empty} hold no STFT bin of a "
                f"{cfg.envelope_window}-sample window; use fewer bands, a longer envelope_window or a higher "
                "envelope_min_hz"
            )
        self.register_buffer("bands", bands.float(), persistent=False)  # (bands, bins)
        self.register_buffer("window", torch.hann_window(cfg.envelope_window), persistent=False)
        self.register_buffer("mean", torch.zeros(cfg.envelope_bands))
        self.register_buffer("std", torch.ones(cfg.envelope_bands))

    def stft_args(self, x: Tensor) -> dict[str, object]:
        """The envelope's STFT settings for audio ``x`` (B, N): window, hop, centred frames; zero
        padding for clips shorter than half a window (reflection needs more)."""
        pad_mode = "reflect" if x.shape[-1] > self.window_size // 2 else "constant"
        return dict(
            n_fft=self.window_size, hop_length=self.hop, window=self.window.to(x.dtype), pad_mode=pad_mode
        )

    def log_energies(self, x: Tensor) -> Tensor:
        """Unstandardised log band energies. Shape: (B, N) -> (B, bands, N / hop)."""
        frames = x.shape[-1] // self.hop
        spec = torch.stft(x, **self.stft_args(x), return_complex=True)  # (B, bins, frames + 1)
        power = spec.real.square() + spec.imag.square()
        return torch.log(torch.einsum("kf,bft->bkt", self.bands.to(x.dtype), power[..., :frames]) + 1e-10)

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * (self.log_energies(x) - self.mean[:, None]) / self.std[:, None]

    def unstandardise(self, channels: Tensor) -> Tensor:
        """Envelope channels (the output of :meth:`forward`) back to log band energies."""
        return channels / self.scale * self.std[:, None] + self.mean[:, None]

    @torch.no_grad()
    def set_statistics(self, x: Tensor) -> None:
        """Per-band mean and std of the log energies of audio ``x`` (B, N) over clips and frames."""
        e = self.log_energies(x)
        self.mean.copy_(e.mean(dim=(0, 2)))
        self.std.copy_(e.std(dim=(0, 2)).clamp_min(1e-3))


POSTFILTER_SEED = 0  # the fill noise: one fixed draw per output length, shared by every row


class EnvelopePostFilter(nn.Module):
    """Brings the decoder's output to the band energies of the latent's envelope channels.

    With Y the STFT of the decoded audio (the envelope's window and hop), P_b the mean power per bin
    of band b in a frame, and E_b the envelope's value for that band and frame (per bin)::

        gate:  Y <- Y * sqrt(min(1, E_b / P_b))
        fill:  Y <- Y + N * sqrt(max(0, E_b - P_b))   on bins at or above fill_hz

    where N is the unit-magnitude STFT of fixed-seed white noise (the same draw for every row, so a
    row's output does not depend on its batch). Bins below the lowest band edge pass unchanged. The
    envelope channels are computed from the input (:class:`Envelope`), so for a reconstruction E_b is
    the original's energy; for a generated latent it is whatever the denoiser generated.
    Differentiable in the audio and in the envelope channels.

    Shape:
        y (B, 1, T * hop), z (B, D, T) -> (B, 1, T * hop)
    """

    def __init__(self, cfg: AutoencoderConfig, envelope: Envelope) -> None:
        super().__init__()
        self.envelope = [envelope]  # a plain list: shared, not a second registered submodule
        self.fill = cfg.postfilter == "gate_fill"
        self.learned = cfg.latent_channels
        freqs = torch.arange(envelope.window_size // 2 + 1) * cfg.sample_rate / envelope.window_size
        self.register_buffer("fill_bins", (freqs >= cfg.postfilter_fill_hz).float(), persistent=False)
        self.register_buffer("covered", envelope.bands.sum(dim=0) > 0, persistent=False)

    def forward(self, y: Tensor, z: Tensor) -> Tensor:
        env = self.envelope[0]
        dtype, n = y.dtype, y.shape[-1]
        bands = env.bands.to(dtype)  # (K, F)
        per_bin = bands.sum(dim=1)[None, :, None]  # bins per band
        log_energy = env.unstandardise(z[:, self.learned :].to(dtype))
        stft = env.stft_args(y[:, 0])
        spec = torch.stft(y[:, 0], **stft, return_complex=True)
        frames = spec.shape[-1]  # T + 1 (centred frames); the last repeats the envelope's last value
        log_energy = F.pad(log_energy, (0, frames - log_energy.shape[-1]), mode="replicate")
        want = torch.einsum("kf,bkt->bft", bands, log_energy.exp() / per_bin)
        power = spec.real.square() + spec.imag.square()
        have = torch.einsum("kf,bkt->bft", bands, torch.einsum("kf,bft->bkt", bands, power) / per_bin)
        gain = want / torch.maximum(have, want).clamp_min(1e-20)  # min(1, want / have), finite gradients
        gain = torch.where(self.covered[:, None], gain, 1.0)  # bins below the lowest band pass as they are
        out = spec * gain.clamp_min(1e-20).sqrt()
        if self.fill:
            gen = torch.Generator().manual_seed(POSTFILTER_SEED)
            noise = torch.randn(n, generator=gen).to(device=y.device, dtype=dtype)
            phase = torch.stft(noise, **stft, return_complex=True)
            phase = phase / phase.abs().clamp_min(1e-12)
            missing = (want - have).clamp_min(1e-20).sqrt() * self.fill_bins.to(dtype)[:, None]
            out = out + phase * missing
        window = stft["window"]
        return torch.istft(out, env.window_size, env.hop, window=window, length=n)[:, None]


class Autoencoder(nn.Module):
    """Convolutional VAE between 16 kHz mono audio and latents at ``sample_rate / downsampling``
    frames/s (64x time compression by default).

    Args:
        config: the architecture; see :class:`AutoencoderConfig`.
    """

    def __init__(self, config: AutoencoderConfig | None = None) -> None:
        super().__init__()
        self.config = config = AutoencoderConfig() if config is None else config
        self.encoder = Encoder(config)
        self.decoder = ISTFTDecoder(config) if config.decoder_head == "istft" else Decoder(config)
        self.envelope = Envelope(config, config.downsampling) if config.envelope_bands else None
        self.postfilter = self._postfilter(config.postfilter)
        generated = config.postfilter if config.postfilter_generated is None else config.postfilter_generated
        self.postfilter_generated = (
            self.postfilter if generated == config.postfilter else self._postfilter(generated)
        )

    def _postfilter(self, mode: str) -> EnvelopePostFilter | None:
        if mode == "none":
            return None
        return EnvelopePostFilter(replace(self.config, postfilter=mode), self.envelope)  # type: ignore[arg-type]

    @property
    def downsampling(self) -> int:
        return self.config.downsampling

    @property
    def latent_channels(self) -> int:
        """Channels of the latent: the learned ones, then the envelope's."""
        return self.config.total_channels

    def latent_frames(self, num_samples: int) -> int:
        """T = ceil(N / downsampling)."""
        return math.ceil(num_samples / self.downsampling)

    def _check_audio(self, x: Tensor) -> None:
        if x.ndim != 3 or x.shape[1] != 1:
            raise ValueError(
                f"x: expected (B, 1, N) audio at {self.config.sample_rate} Hz, got {tuple(x.shape)}"
            )

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log std of q(z | x); the tail is zero-padded to a whole latent frame.

        Shape:
            x (B, 1, N) -> mean (B, D, T), log_std (B, D, T) with T = ceil(N / downsampling)
        """
        self._check_audio(x)
        n = x.shape[-1]
        x = F.pad(x, (0, self.latent_frames(n) * self.downsampling - n))
        mean, log_std = self.encoder(x)
        if self.envelope is None:
            return mean, log_std
        env = self.envelope(x[:, 0]).to(mean.dtype)  # computed, exact: the posterior's floor std
        return torch.cat([mean, env], dim=1), torch.cat(
            [log_std, torch.full_like(env, self.config.min_log_std)], dim=1
        )

    def encode(self, x: Tensor) -> Tensor:
        """The posterior mean: the deterministic latent the prior diffuses.

        Shape:
            x (B, 1, N) -> z (B, D, ceil(N / downsampling))
        """
        return self.posterior(x)[0]

    def decode(self, z: Tensor) -> Tensor:
        """Latent -> audio.

        Shape:
            z (B, D, T) -> x (B, 1, T * downsampling)
        """
        self._check_latent(z)
        y = self.decoder(z)
        return y if self.postfilter is None else self.postfilter(y, z)

    def _check_latent(self, z: Tensor) -> None:
        if z.ndim != 3 or z.shape[1] != self.latent_channels:
            raise ValueError(f"z: expected (B, {self.latent_channels}, T), got {tuple(z.shape)}")

    def decode_generated(self, z: Tensor) -> Tensor:
        """A latent the denoiser generated -> audio: from the envelope channels alone when
        ``envelope_decoding`` is set, and through ``postfilter_generated``.

        Shape:
            z (B, D, T) -> x (B, 1, T * downsampling)
        """
        self._check_latent(z)
        y = self.decoder(zero_learned(z, self.config.latent_channels) if self.config.envelope_decoding else z)
        return y if self.postfilter_generated is None else self.postfilter_generated(y, z)

    def decode_envelope(self, z: Tensor) -> Tensor:
        """Latent -> audio from its envelope channels alone: the learned channels are set to zero, the
        input a decoder trained with ``drop_fraction`` renders without phase information (for other
        decoders the output is meaningless). Only the envelope channels of ``z`` receive gradient.

        Shape:
            z (B, D, T) -> x (B, 1, T * downsampling)
        """
        if self.envelope is None:
            raise ValueError("decode_envelope: this autoencoder has no envelope channels (envelope_bands 0)")
        return self.decode(zero_learned(z, self.config.latent_channels))

    def forward(
        self,
        x: Tensor,
        generator: torch.Generator | None = None,
        latent_noise: float = 0.0,
        drop_fraction: float = 0.0,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Training pass: sample z ~ q(z | x) with ``generator`` and decode it. ``latent_noise`` > 0
        adds Gaussian noise of that many latent stds (of the batch) to z first, drawn after the
        posterior noise, so 0 leaves the generator's stream as it was. ``drop_fraction`` > 0 (envelope
        channels only) then sets the learned channels of that share of rows to zero, so the decoder
        learns to render the envelope alone (:meth:`decode_envelope`); one uniform draw per row, last.

        Returns:
            (x_hat cropped to N samples, mean, log_std, dropped rows).

        Shape:
            x (B, 1, N) -> x_hat (B, 1, N), mean (B, D, T), log_std (B, D, T), dropped (B,) bool
        """
        mean, log_std = self.posterior(x)
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        z = mean + log_std.exp() * eps
        if latent_noise > 0:
            extra = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
            z = z + latent_noise * mean.detach().std() * extra
        dropped = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        if drop_fraction > 0:
            if self.envelope is None:
                raise ValueError("drop_fraction: needs envelope channels (envelope_bands > 0)")
            z, dropped = drop_learned(z, self.config.latent_channels, drop_fraction, generator)
        x_hat = self.decoder(z)  # the post-filter, if any, has nothing to learn: training sees the decoder
        return x_hat[..., : x.shape[-1]], mean, log_std, dropped


def zero_learned(z: Tensor, learned: int, rows: Tensor | None = None) -> Tensor:
    """``z`` with its first ``learned`` channels (the learned ones; envelope channels follow) set to
    zero, in every row or in the rows where ``rows`` is True: the input of the envelope-only decoder.

    Shape:
        z (B, D, T), rows (B,) bool -> (B, D, T)
    """
    mask = (torch.arange(z.shape[1], device=z.device) < learned)[None, :, None]
    if rows is not None:
        mask = mask & rows[:, None, None]
    return torch.where(mask, torch.zeros((), dtype=z.dtype, device=z.device), z)


def drop_learned(
    z: Tensor, learned: int, fraction: float, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """``z`` with its first ``learned`` channels set to zero in a random ``fraction`` of the rows, and
    which rows. Draws one uniform number per row from ``generator`` (after any other draws of the step,
    so a run with ``fraction`` 0 sees the same noise as before the option existed).

    Shape:
        z (B, D, T) -> (B, D, T), (B,) bool
    """
    device = z.device if generator is None else generator.device
    dropped = (torch.rand(z.shape[0], generator=generator, device=device) < fraction).to(z.device)
    return zero_learned(z, learned, dropped), dropped


def kl_divergence(mean: Tensor, log_std: Tensor) -> Tensor:
    """Mean over elements of KL(N(mean, std^2) || N(0, 1)) = 0.5 (mean^2 + std^2 - 1) - log std.

    Shape:
        (B, D, T), (B, D, T) -> ()
    """
    return (0.5 * (mean.square() + (2 * log_std).exp() - 1.0) - log_std).mean()


__all__ = [
    "AutoencoderConfig",
    "Autoencoder",
    "Envelope",
    "Encoder",
    "Decoder",
    "ResidualUnit",
    "Snake",
    "fold",
    "unfold",
    "kl_divergence",
    "band_edges",
    "zero_learned",
    "drop_learned",
]
