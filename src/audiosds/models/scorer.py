"""The network of the embedded prompt-alignment scorer: a CLAP-like audio/text dual encoder.

Audio branch: loudness normalisation (the clip's RMS is set to ``target_rms_db``), a multiscale
log-mel front end computed with ``torch.stft`` (one mel bank per window size, all at one hop,
stacked as channels), a 1-D residual conv net over time and mean + max pooling over time, then a
linear map to the joint space. Text branch: a frozen all-MiniLM-L6-v2 sentence embedding
(computed outside, 384-d) through a small residual MLP into the same space. Both are
L2-normalised; the score is their cosine, and training uses the symmetric InfoNCE loss of CLIP /
CLAP with a learned temperature ``exp(logit_scale)``.

This network shares nothing with the embedded prior's autoencoder or denoiser.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class ScorerConfig:
    sample_rate: int = 16000
    n_ffts: tuple[int, ...] = (1024, 256)  # window sizes of the multiscale front end (tonal / transient)
    n_mels: tuple[int, ...] = (64, 32)  # mel bands per window size
    hop: int = 256  # 16 ms at 16 kHz, shared by every window size so the frames align
    f_min_hz: float = 20.0
    target_rms_db: float = -20.0  # every clip is scaled to this RMS before the front end (level invariance)
    silence_rms_db: float = -80.0  # RMS floor: quieter clips are scaled as if they were at the floor
    log_floor: float = 1e-6  # added to mel power before the log (-60 dB below full scale)
    channels: tuple[int, ...] = (128, 128, 160, 192)  # conv widths; each stage after the first halves time
    kernel: int = 3  # temporal kernel of the residual blocks
    embed_dim: int = 256  # joint audio/text space
    text_dim: int = 384  # all-MiniLM-L6-v2 sentence embedding
    text_hidden: int = 256
    text_dropout: float = 0.2  # on the MiniLM embedding during training (robustness to unseen phrasings)
    init_temperature: float = 0.07  # CLIP's initial softmax temperature
    max_logit_scale: float = 100.0  # CLIP's clamp of exp(logit_scale)

    def __post_init__(self) -> None:
        # JSON stores tuples as lists: normalise so Config(**json.load(f)) equals the original.
        for name in ("n_ffts", "n_mels", "channels"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if len(self.n_ffts) != len(self.n_mels) or not self.n_ffts:
            raise ValueError(
                f"ScorerConfig: expected one n_mels per n_fft, got {self.n_ffts} and {self.n_mels}"
            )
        if not self.channels:
            raise ValueError("ScorerConfig.channels: expected at least one stage, got none")
        if any(n < self.hop for n in self.n_ffts):
            raise ValueError(f"ScorerConfig.n_ffts: expected each >= hop {self.hop}, got {self.n_ffts}")

    def to_dict(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def mel_filterbank(n_fft: int, n_mels: int, sample_rate: int, f_min_hz: float) -> Tensor:
    """Triangular HTK-mel filters, each normalised to unit area (Slaney style).

    Shape:
        -> (n_mels, n_fft // 2 + 1)
    """

    def hz_to_mel(f: Tensor) -> Tensor:
        return 2595.0 * torch.log10(1.0 + f / 700.0)

    def mel_to_hz(m: Tensor) -> Tensor:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    bins = torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges_mel = torch.linspace(
        float(hz_to_mel(torch.tensor(f_min_hz))),
        float(hz_to_mel(torch.tensor(sample_rate / 2))),
        n_mels + 2,
        dtype=torch.float64,
    )
    edges = mel_to_hz(edges_mel)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None] - lo) / (mid - lo)
    falling = (hi - bins[None]) / (hi - mid)
    tri = torch.clamp(torch.minimum(rising, falling), min=0.0)
    # a band narrower than one FFT bin would be empty: give it the nearest bin
    empty = tri.sum(dim=1) == 0
    if empty.any():
        nearest = (bins[None] - mid[empty]).abs().argmin(dim=1)
        tri[empty.nonzero()[:, 0], nearest] = 1.0
    return (tri / tri.sum(dim=1, keepdim=True)).float()


class LogMelFrontEnd(nn.Module):
    """Loudness-normalised multiscale log-mel spectrogram.

    Shape:
        audio (B, N) -> features (B, sum(n_mels), 1 + N // hop)
    """

    def __init__(self, cfg: ScorerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        for i, (n_fft, n_mels) in enumerate(zip(cfg.n_ffts, cfg.n_mels, strict=True)):
            # derived from the config, so not stored in the weights file
            self.register_buffer(
                f"mel_{i}", mel_filterbank(n_fft, n_mels, cfg.sample_rate, cfg.f_min_hz), persistent=False
            )
            self.register_buffer(f"window_{i}", torch.hann_window(n_fft, periodic=True), persistent=False)

    def forward(self, audio: Tensor) -> Tensor:
        cfg = self.cfg
        # 1. loudness: scale every clip to the target RMS (a floor keeps silence from being amplified)
        rms = audio.pow(2).mean(dim=-1, keepdim=True).sqrt()
        floor = 10.0 ** (cfg.silence_rms_db / 20.0)
        x = audio * (10.0 ** (cfg.target_rms_db / 20.0) / rms.clamp_min(floor))
        # 2. short clips: zero-pad to half a second (the shortest training crop) so every STFT
        #    has frames and the strided convolutions have enough of them; longer clips are untouched
        shortest = max(max(cfg.n_ffts), cfg.sample_rate // 2)
        if x.shape[-1] < shortest:
            x = F.pad(x, (0, shortest - x.shape[-1]))
        frames = 1 + x.shape[-1] // cfg.hop
        # 3. one log-mel per window size, frames aligned by the shared hop and centring
        feats = []
        for i, n_fft in enumerate(cfg.n_ffts):
            spec = torch.stft(
                x,
                n_fft,
                hop_length=cfg.hop,
                window=getattr(self, f"window_{i}"),
                center=True,
                pad_mode="constant",
                return_complex=True,
            )[..., :frames]  # (B, n_fft // 2 + 1, T)
            power = spec.real.pow(2) + spec.imag.pow(2)
            mel = torch.einsum("mf,bft->bmt", getattr(self, f"mel_{i}"), power)
            feats.append(torch.log(mel + cfg.log_floor))
        return torch.cat(feats, dim=1)


class ResBlock1d(nn.Module):
    """x + conv(gelu(bn(conv(gelu(bn(x)))))): a pre-activation residual block over time."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm1d(channels)
        self.conv1 = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.norm2 = nn.BatchNorm1d(channels)
        self.conv2 = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.gelu(self.norm1(x)))
        return x + self.conv2(F.gelu(self.norm2(h)))


class AudioEncoder(nn.Module):
    """Audio -> unnormalised joint-space embedding.

    Shape:
        audio (B, N) -> (B, embed_dim)
    """

    def __init__(self, cfg: ScorerConfig) -> None:
        super().__init__()
        self.front = LogMelFrontEnd(cfg)
        n_in = sum(cfg.n_mels)
        self.input_norm = nn.BatchNorm1d(n_in)  # per-band standardisation of the log-mels
        self.stem = nn.Conv1d(n_in, cfg.channels[0], cfg.kernel, padding=cfg.kernel // 2)
        stages: list[nn.Module] = [ResBlock1d(cfg.channels[0], cfg.kernel)]
        for c_in, c_out in zip(cfg.channels[:-1], cfg.channels[1:], strict=True):
            stages.append(nn.Conv1d(c_in, c_out, 4, stride=2, padding=1))  # halves time
            stages.append(ResBlock1d(c_out, cfg.kernel))
        self.stages = nn.Sequential(*stages)
        self.out_norm = nn.BatchNorm1d(cfg.channels[-1])
        self.head = nn.Linear(2 * cfg.channels[-1], cfg.embed_dim)

    def forward(self, audio: Tensor) -> Tensor:
        h = self.stem(self.input_norm(self.front(audio)))  # (B, C0, T)
        h = F.gelu(self.out_norm(self.stages(h)))  # (B, C, T')
        pooled = torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1)  # (B, 2C)
        return self.head(pooled)


class TextProjection(nn.Module):
    """MiniLM sentence embedding -> unnormalised joint-space embedding (linear + residual MLP).

    Shape:
        text (P, text_dim) -> (P, embed_dim)
    """

    def __init__(self, cfg: ScorerConfig) -> None:
        super().__init__()
        self.dropout = nn.Dropout(cfg.text_dropout)
        self.linear = nn.Linear(cfg.text_dim, cfg.embed_dim)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.text_dim, cfg.text_hidden), nn.GELU(), nn.Linear(cfg.text_hidden, cfg.embed_dim)
        )

    def forward(self, text: Tensor) -> Tensor:
        t = self.dropout(text)
        return self.linear(t) + self.mlp(t)


class ScorerNet(nn.Module):
    """The dual encoder with its learned temperature.

    Args:
        cfg: the architecture; see :class:`ScorerConfig`.
    """

    def __init__(self, cfg: ScorerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.audio = AudioEncoder(cfg)
        self.text = TextProjection(cfg)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / cfg.init_temperature)))

    def embed_audio(self, audio: Tensor) -> Tensor:
        """Unit-norm audio embeddings.

        Shape:
            audio (B, N) -> (B, embed_dim)
        """
        return F.normalize(self.audio(audio), dim=-1)

    def embed_text(self, text: Tensor) -> Tensor:
        """Unit-norm text embeddings from MiniLM embeddings.

        Shape:
            text (P, text_dim) -> (P, embed_dim)
        """
        return F.normalize(self.text(text), dim=-1)

    def temperature_scale(self) -> Tensor:
        """exp(logit_scale), clamped at ``max_logit_scale`` as in CLIP."""
        return self.logit_scale.exp().clamp(max=self.cfg.max_logit_scale)


def contrastive_loss(
    audio_emb: Tensor, text_emb: Tensor, scale: Tensor, targets: Tensor | None = None
) -> Tensor:
    """Symmetric InfoNCE (CLIP / CLAP): cross-entropy of audio->text and text->audio softmaxes.

    Args:
        audio_emb: unit-norm audio embeddings.
        text_emb: unit-norm text embeddings, row i the caption of clip i.
        scale: inverse temperature.
        targets: row-stochastic target matrix; None is the identity (each clip matches its caption).

    Shape:
        audio_emb (B, E), text_emb (B, E), targets (B, B) -> scalar
    """
    if audio_emb.shape != text_emb.shape or audio_emb.ndim != 2:
        raise ValueError(
            f"contrastive_loss: expected two (B, E) tensors, got {tuple(audio_emb.shape)} and "
            f"{tuple(text_emb.shape)}"
        )
    logits = scale * audio_emb @ text_emb.T  # (B, B)
    if targets is None:
        targets = torch.eye(logits.shape[0], dtype=logits.dtype, device=logits.device)
    a2t = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    t2a = -(targets.T * F.log_softmax(logits.T, dim=1)).sum(dim=1).mean()
    return 0.5 * (a2t + t2a)


__all__ = [
    "AudioEncoder",
    "LogMelFrontEnd",
    "ScorerConfig",
    "ScorerNet",
    "TextProjection",
    "contrastive_loss",
    "mel_filterbank",
]
