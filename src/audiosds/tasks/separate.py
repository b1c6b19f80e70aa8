"""Prompt-guided source separation by SDS (Audio-SDS arXiv 2505.04621 sec. 4.3, eq. 13).

Each iteration updates the K sources x_k (a :mod:`audiosds.renderers.sources` renderer) by eq. 13::

    u = grad L_rec(sum_k x_k, mixture) + gamma * sum_k u_SDS(x_k; prompt_k)

with L_rec the multiscale STFT magnitude loss (``spectral.multiscale_spectral_loss``) and u_SDS
one batched ``sds.sds_step`` over the K sources, source k conditioned on prompt k. The SDS
surrogate is divided by C * N (the samples per source), so that gamma weighs two per-sample
averages and does not depend on the window length. The "remasked" and "masks"
parametrizations sum to the mixture by construction: their L_rec is identically zero (up to
round-off, which Adam would amplify), so it is logged but not differentiated.

Members: the update above runs once per SDS mode in ``SeparateConfig.sds_modes``, each on its own set of
sources (same start, own Adam state, own SDS step in that mode), and the output is the members' mean. The
default pairs Decoder-SDS, right on tones and textures, with classic latent SDS, right on transients;
their mean beat either alone on the benchmark (docs/experiments.md, "Two SDS modes averaged").

Formats: the mixture, at any rate and channel count, is brought to the prior's format
(soxr resampling; channels averaged for a mono prior, duplicated for a stereo one),
separated, and every source is brought back to the input's rate, channel count and exact
length:

* same channel count: each source is resampled back;
* mono input, multi-channel prior: each source is resampled back and averaged to mono;
* multi-channel input, other prior channel count (e.g. stereo into a mono prior): the prior
  separates the downmix; each source's resampled downmix magnitude becomes a ratio mask
  (power 1) over every input channel's STFT, so every channel's sources sum to that channel;
* "remasked" / "masks" whenever the rate or the channel count differs: the same ratio-mask
  transfer (per channel when the counts match), so the sources still sum exactly to the input
  mixture. Content above the prior's Nyquist frequency, which no source holds, is shared by
  whatever the resampled sources leave there (close to an even split).

Long inputs are separated in overlapping windows of ``max_seconds`` (at least
``overlap_seconds`` of overlap, windows spread evenly and starting on latent-frame boundaries)
and cross-faded with raised-cosine fades normalised to sum to one: never truncated. Each window
is a separate optimisation of ``iters`` iterations.

Start: every source begins at encode(mixture / K), an even split (``start = "mixture"``), or, for two
sources, at a classic noise-suppression split of each window (``start = "noise_floor"``,
:mod:`audiosds.denoise`): the first source the foreground, the second the stationary noise floor.
``iters = 0`` returns the start as it is.
"""

from __future__ import annotations

import io
import math
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..audio import fit_length, resample, write_bytes
from ..config import is_int, is_number
from ..denoise import suppression_gain
from ..priors import Conditioning, Prior, prior_defaults
from ..renderers import Renderer
from ..renderers.sources import (
    LatentSources,
    LatentSourcesConfig,
    MaskSources,
    MaskSourcesConfig,
    RemaskedSources,
    RemaskedSourcesConfig,
    apply_masks,
    ratio_masks,
    rms_db,
)
from ..scorer import PromptScorer
from ..sds import MODES as SDS_MODES
from ..sds import SDSConfig, sds_step
from ..spectral import DEFAULT_WINDOWS, check_stft, magnitude, multiscale_spectral_loss, stft
from .loop import LoopConfig, LoopOutcome, load_checkpoint, run_loop
from .scoring import PromptTracker

REC_LOG_EVERY = 10  # iterations between logged reconstruction losses of mixture-consistent sources
WINDOWS_NAME = "windows.pt"  # finished windows of a checkpointed separation

# Separation's own SDS defaults (``separation_sds``), chosen on the earlier waveform-latent prior by
# benchmarks/separation.py (docs/experiments.md, "Separation defaults: t range, CFG and contrast" and
# "Where the guidance points"): the
# synthesis defaults' t range (0.02-0.98, sigma 0.0025-65) spends most draws where that
# prior's denoised estimate no longer depends on the source, and CFG 3 is too weak to tell two
# prompts apart. t in [0.3, 0.65] (sigma 0.048-1.96) replaced [0.15, 0.6]: the update's norm grows
# 400-700x from t 0.05 to t 0.55-0.65, so the draws near t_max steer, and at t 0.65 they point to the true
# sources for tones and textures (+4.25 vs +3.89 dB on prior-generated sources, +6.25 vs +5.94 dB
# on world sources); transients (clock + bongo) prefer lower t.
SEPARATION_SDS: dict[str, object] = {"t_min": 0.3, "t_max": 0.65, "cfg_scale": 7.5}
PARAMETRIZATIONS = ("latent", "remasked", "masks")
STARTS = ("mixture", "noise_floor")
REC_DOMAINS = ("spectral", "time")
MIN_PROMPTS, MAX_PROMPTS = 2, 8
MAX_INPUT_CHANNELS = 64  # more "channels" than this is almost surely a (N, C) array passed as (C, N)
Progress = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class SeparateConfig:
    """Settings for :func:`separate`."""

    # per window and member: with the two default members, 100 gave +4.82 dB on the prior-generated
    # Table-1 pairs and 200 +4.81; each mode alone also did better with 100 (docs/experiments.md,
    # "Two SDS modes averaged"), and most of the gain comes in the first 25 iterations
    iters: int = 100  # 0: the start alone, no SDS step
    lr: float = 0.05  # Adam on latents or mask logits
    seed: int = 0  # sigma/eps draws; window w's renderer init uses seed + w
    # SDS weight of eq. 13 against the reconstruction loss (both per sample): too large distorts, too
    # small gives no semantic guidance. On the analytic oracle (tests/test_separate.py) 1 was best
    # (0.1: too weak, 10-30: SDS noise distorts). Only gamma > 0 vs 0 matters for "remasked"/"masks"
    # (no L_rec gradient there; Adam is scale-invariant).
    gamma: float = 1.0
    # "remasked" (ours; the default), "masks" (ours) or "latent" (the paper's). Mean SI-SDR gain with the
    # default SDS members, remasked / masks / latent: Table-1 pairs, world sources +7.47 / +6.49 / -3.44 dB;
    # prior-generated sources +4.99 / +4.83; real recordings -0.54 / -0.61 (docs/experiments.md,
    # "Two SDS modes averaged"). Remasked costs a decoder pass and its backward per iteration and member
    # (docs/experiments.md, "Remasked becomes the default"); masks need neither
    parametrization: str = "remasked"
    rec_windows: tuple[int, ...] = DEFAULT_WINDOWS  # L_rec's STFT window sizes (samples at the prior's rate)
    # weight of L_rec's log-magnitude term; it over-weights near-silent bins: on the analytic oracle
    # (line spectra) 1.0 held the latent separation near 9 dB SI-SDR where 0.0 reached 32 dB
    rec_log_weight: float = 0.0
    # L_rec's domain: "spectral" (multiscale |STFT| of the sum vs the mixture, the paper's) or "time"
    # (mean squared error of the waveforms; the ablation). Only the "latent" parametrization
    # differentiates L_rec: the others sum to the mixture by construction.
    rec_domain: str = "spectral"
    mask_n_fft: int = 1024  # STFT of the masks (remasked, masks, format transfer), prior-rate samples
    mask_hop: int = 256
    mask_power: float = 2.0  # remasked only: m_k = |S_k|^p / sum_j |S_j|^p
    init_noise: float = 0.1  # relative latent noise (latent, remasked); logit noise std is a tenth of it
    # where the sources begin: "mixture" (each encode(mixture / K)) or "noise_floor" (two sources: the
    # foreground and the noise floor of a classic suppression gain, :mod:`audiosds.denoise`)
    start: str = "mixture"
    noise_source: bool = False  # add a catch-all source conditioned on ``noise_prompt`` (returned last)
    noise_prompt: str = "noise"
    # each source without a negative prompt takes the other sources' prompts (joined) as its negative,
    # so CFG pushes it away from them rather than from the unconditional branch: +5.5 vs +4.1 dB mean
    # SI-SDR gain on the Table-1 pairs with the waveform-latent prior (docs/experiments.md, "Separation
    # defaults: t range, CFG and contrast")
    contrast: bool = True
    # one member per SDS mode (replacing ``SDSConfig.mode``): each is a full set of K sources from the same
    # start, optimised side by side with its own SDS update; the output is the members' mean (for "masks"
    # and "remasked" it still sums to the mixture). 100 iterations each, mean SI-SDR gain on the
    # prior-generated Table-1 pairs: Decoder-SDS alone +4.35 dB, classic latent SDS alone +4.48 (far
    # better on transients, worse on tones and textures), both averaged +4.83 (docs/experiments.md, "Two SDS
    # modes averaged"). Each member costs one SDS step per iteration.
    sds_modes: tuple[str, ...] = ("decoder", "latent")
    max_seconds: float = 4.0  # longest window the prior sees (the mel prior trained on 3 s clips)
    overlap_seconds: float = 0.5  # least overlap between neighbouring windows (<= max_seconds / 2)

    def __post_init__(self) -> None:
        def bad(name: str, expected: str) -> ValueError:
            return ValueError(f"SeparateConfig.{name}: expected {expected}, got {getattr(self, name)!r}")

        if not is_int(self.iters) or not 0 <= self.iters <= 1_000_000:
            raise bad("iters", "an int in [0, 1000000]")
        if not is_number(self.lr) or not 0 < self.lr <= 10:
            raise bad("lr", "a number in (0, 10]")
        if not is_int(self.seed):
            raise bad("seed", "an int")
        if not is_number(self.gamma) or self.gamma < 0:
            raise bad("gamma", "a finite number >= 0")
        if self.parametrization not in PARAMETRIZATIONS:
            raise bad("parametrization", f"one of {PARAMETRIZATIONS}")
        if isinstance(self.rec_windows, list):
            object.__setattr__(self, "rec_windows", tuple(self.rec_windows))
        windows = self.rec_windows
        if not isinstance(windows, tuple) or not windows or not all(is_int(s) and s >= 2 for s in windows):
            raise bad("rec_windows", "a non-empty tuple of ints >= 2")
        if not is_number(self.rec_log_weight) or self.rec_log_weight < 0:
            raise bad("rec_log_weight", "a number >= 0")
        if self.rec_domain not in REC_DOMAINS:
            raise bad("rec_domain", f"one of {REC_DOMAINS}")
        try:
            check_stft(self.mask_n_fft, self.mask_hop)
        except ValueError as err:
            raise ValueError(f"SeparateConfig.mask_{err}") from err
        if not is_number(self.mask_power) or self.mask_power <= 0:
            raise bad("mask_power", "a number > 0")
        if not is_number(self.init_noise) or self.init_noise < 0:
            raise bad("init_noise", "a number >= 0")
        if self.start not in STARTS:
            raise bad("start", f"one of {STARTS}")
        if not isinstance(self.noise_source, bool):
            raise bad("noise_source", "a bool")
        if isinstance(self.sds_modes, (list, str)):  # from YAML or JSON; one mode alone as text
            modes = [self.sds_modes] if isinstance(self.sds_modes, str) else self.sds_modes
            object.__setattr__(self, "sds_modes", tuple(modes))
        modes = self.sds_modes
        if not isinstance(modes, tuple) or not modes or not all(m in SDS_MODES for m in modes):
            raise bad("sds_modes", f"a non-empty tuple of modes among {SDS_MODES}")
        if len(set(modes)) != len(modes):
            raise bad("sds_modes", "modes without repeats")
        if not isinstance(self.contrast, bool):
            raise bad("contrast", "a bool")
        if not isinstance(self.noise_prompt, str) or not self.noise_prompt.strip():
            raise bad("noise_prompt", "non-empty text")
        if not is_number(self.max_seconds) or self.max_seconds <= 0:
            raise bad("max_seconds", "a number > 0")
        if not is_number(self.overlap_seconds) or not 0 <= self.overlap_seconds <= self.max_seconds / 2:
            raise bad("overlap_seconds", f"a number in [0, max_seconds / 2 = {self.max_seconds / 2}]")


@dataclass
class SeparationResult:
    """What a separation produced, in the input's format.

    Attributes:
        sources: (K, C_in, N_in) float32 at the input's sample rate, in prompt order (the
            noise source, if any, last).
        mixture_reconstruction: sum of the sources, (C_in, N_in).
        prompts: one per source (including the noise prompt).
        history: one dict per iteration and window: iter (within the window), window, loss,
            rec_loss, sds_norm, sigma (means over the members; sigma also over rows); None where a
            value was not computed that iteration (rec_loss of mixture-consistent sources every
            REC_LOG_EVERY iterations, sigma when gamma = 0 skips SDS, scores between scorings); the
            prompt scores, if any, are of the members' mean.
        params: a small JSON-ready summary (formats, windows, per-source levels, renderers; with
            more than one member, each window's renderer summary is one per SDS mode).
        status: "completed", "stopped" (``should_stop``: finished windows, the current one as it
            stood, initial sources for the rest) or "diverged" (too many non-finite steps).
        message: why the run ended early, if it did.
    """

    sources: np.ndarray
    mixture_reconstruction: np.ndarray
    prompts: list[str]
    history: list[dict[str, float | None]] = field(default_factory=list)
    params: dict[str, object] = field(default_factory=dict)
    status: str = "completed"
    message: str = ""


# -- windows ----------------------------------------------------------------------------


def window_spans(num_samples: int, window: int, overlap: int, align: int = 1) -> list[tuple[int, int]]:
    """Evenly spread windows of at most ``window`` samples covering ``num_samples``, neighbours
    overlapping by at least ``overlap``; one span when the input fits in a window.

    Window starts are multiples of ``align`` (the prior's samples per latent frame, so that every
    window frames the audio as the first one does). Every window but the last is ``window``
    samples long; the last ends exactly at ``num_samples`` and may be up to ``align - 1``
    samples shorter. The fewest windows that satisfy this are used.

    Returns:
        (start, end) per window, the first starting at 0 and the last ending at num_samples.
    """
    if not is_int(num_samples) or num_samples < 1:
        raise ValueError(f"num_samples: expected an int >= 1, got {num_samples!r}")
    if not is_int(window) or window < 1 or not is_int(overlap) or not 0 <= overlap < window:
        raise ValueError(
            f"window, overlap: expected ints with 0 <= overlap < window, got {window}, {overlap}"
        )
    if not is_int(align) or not 1 <= align <= window - overlap:
        raise ValueError(
            f"align: expected an int in [1, window - overlap = {window - overlap}], got {align!r}"
        )
    if num_samples <= window:
        return [(0, num_samples)]
    # in units of align: the last start is the first multiple at or past num_samples - window, and
    # neighbouring starts are at most max_hop apart (an overlap of at least ``overlap``)
    last = math.ceil((num_samples - window) / align)
    max_hop = (window - overlap) // align
    gaps = math.ceil(last / max_hop)
    starts = [align * round(i * last / gaps) for i in range(gaps + 1)]
    return [(s, min(s + window, num_samples)) for s in starts]


def _fade_in(length: int) -> Tensor:
    """sin^2 ramp of ``length`` samples, strictly inside (0, 1); ``_fade_in(L) + flip = 1``."""
    j = torch.arange(length, dtype=torch.float64)
    return torch.sin(0.5 * math.pi * (j + 0.5) / length).square()


def overlap_add(pieces: Sequence[Tensor], spans: Sequence[tuple[int, int]], num_samples: int) -> Tensor:
    """Cross-fade windowed pieces back into one signal.

    Each piece is weighted by ones with a raised-cosine fade-in over its overlap with the
    previous window and a fade-out over its overlap with the next; the weighted sum is divided
    by the summed weights, so the fades sum to one everywhere: pieces that agree on their
    overlaps (e.g. a constant-ratio separation) join seamlessly.

    Shape:
        pieces [(..., end - start)] -> (..., num_samples), float64
    """
    if len(pieces) != len(spans) or not spans:
        raise ValueError(f"pieces: expected one per span ({len(spans)}), got {len(pieces)}")
    lead = pieces[0].shape[:-1]
    out = torch.zeros(*lead, num_samples, dtype=torch.float64)
    total = torch.zeros(num_samples, dtype=torch.float64)
    for i, (piece, (start, end)) in enumerate(zip(pieces, spans, strict=True)):
        if piece.shape != (*lead, end - start):
            raise ValueError(f"pieces[{i}]: expected {(*lead, end - start)}, got {tuple(piece.shape)}")
        weight = torch.ones(end - start, dtype=torch.float64)
        if i > 0 and spans[i - 1][1] > start:
            fade = spans[i - 1][1] - start
            weight[:fade] *= _fade_in(fade)
        if i + 1 < len(spans) and spans[i + 1][0] < end:
            fade = end - spans[i + 1][0]
            weight[end - start - fade :] *= _fade_in(fade).flip(0)
        out[..., start:end] += weight * piece.double()
        total[start:end] += weight
    return out / total


# -- formats ----------------------------------------------------------------------------


def _as_mixture(mixture: np.ndarray | Tensor) -> np.ndarray:
    if isinstance(mixture, Tensor):
        mixture = mixture.detach().cpu().numpy()
    if not isinstance(mixture, np.ndarray):
        raise ValueError(
            f"mixture: expected a numpy array or torch tensor (C, N), got {type(mixture).__name__}"
        )
    if mixture.ndim != 2 or mixture.shape[0] < 1 or mixture.shape[1] < 1:
        raise ValueError(f"mixture: expected channel-first audio (C, N), got shape {mixture.shape}")
    if mixture.shape[0] > MAX_INPUT_CHANNELS:
        raise ValueError(
            f"mixture: expected channel-first (C, N) with C <= {MAX_INPUT_CHANNELS}, got {mixture.shape}"
        )
    if not np.issubdtype(mixture.dtype, np.floating) or not np.isfinite(mixture).all():
        raise ValueError("mixture: expected finite floating-point samples")
    return np.ascontiguousarray(mixture, dtype=np.float32)


def _resample_to(audio: np.ndarray, sr_in: int, sr_out: int, num_samples: int) -> np.ndarray:
    """soxr resampling of (..., N) audio, then cropped or zero-padded to ``num_samples``."""
    lead = audio.shape[:-1]
    flat = resample(np.ascontiguousarray(audio.reshape(-1, audio.shape[-1])), sr_in, sr_out)
    flat = fit_length(torch.from_numpy(flat), num_samples).numpy()
    return flat.reshape(*lead, num_samples)


def _prior_length(num_samples: int, sample_rate: int, prior_rate: int) -> int:
    return max(1, round(num_samples * prior_rate / sample_rate))


def _to_prior_channels(mixture: np.ndarray, channels: int) -> np.ndarray:
    """(C_in, N) -> (channels, N): kept, averaged to mono, or a mono (down)mix duplicated."""
    if mixture.shape[0] == channels:
        return mixture
    mono = mixture.mean(axis=0, keepdims=True)
    return np.repeat(mono, channels, axis=0)


def _transfer_masks(sources: np.ndarray, mixture: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Sources (K, C_s, N) -> (K, C_in, N): ratio masks (power 1) of the sources' magnitudes
    over each channel of the mixture (C_in, N); per channel when C_s == C_in, else from the
    sources' channel mean. The results sum to the mixture exactly (up to istft round-off)."""
    src = torch.from_numpy(sources).double()
    mix = torch.from_numpy(mixture).double()
    if src.shape[1] != mix.shape[0]:
        src = src.mean(dim=1, keepdim=True)
    masks = ratio_masks(magnitude(stft(src, n_fft, hop)), 1.0)  # (K, C_s or 1, F, T_s)
    out = apply_masks(masks, stft(mix, n_fft, hop), n_fft, hop, mix.shape[-1])
    return out.float().numpy()


def _to_input_format(
    sources: np.ndarray, mixture: np.ndarray, prior_rate: int, sample_rate: int, config: SeparateConfig
) -> np.ndarray:
    """Sources (K, C_p, N_p) at the prior's rate -> (K, C_in, N_in) at the input's (module doc)."""
    channels, num_samples = mixture.shape
    back = _resample_to(sources, prior_rate, sample_rate, num_samples)  # (K, C_p, N_in)
    consistent = config.parametrization != "latent"
    changed = prior_rate != sample_rate or back.shape[1] != channels
    if (consistent and changed) or (channels > 1 and back.shape[1] != channels):
        scale = sample_rate / prior_rate
        n_fft = max(2, 2 * round(config.mask_n_fft * scale / 2))
        hop = min(n_fft // 2, max(1, round(config.mask_hop * scale)))
        return _transfer_masks(back, mixture, n_fft, hop)
    if back.shape[1] != channels:  # mono input, multi-channel prior
        return back.mean(axis=1, keepdims=True)
    return back


# -- prompts ----------------------------------------------------------------------------


def _check_prompts(prompts: Sequence[str], negative: Sequence[str | None] | None) -> None:
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise ValueError(f"prompts: expected a list of {MIN_PROMPTS}-{MAX_PROMPTS} texts, got {prompts!r}")
    if not MIN_PROMPTS <= len(prompts) <= MAX_PROMPTS:
        raise ValueError(f"prompts: expected {MIN_PROMPTS} to {MAX_PROMPTS} prompts, got {len(prompts)}")
    for i, p in enumerate(prompts):
        if not isinstance(p, str) or not p.strip():
            raise ValueError(f"prompts[{i}]: expected non-empty text, got {p!r}")
    if negative is None:
        return
    if isinstance(negative, str) or not isinstance(negative, Sequence) or len(negative) != len(prompts):
        raise ValueError(
            f"negative: expected a list of {len(prompts)} texts or None entries, got {negative!r}"
        )
    for i, p in enumerate(negative):
        if p is not None and not isinstance(p, str):
            raise ValueError(f"negative[{i}]: expected text or None, got {p!r}")


def separation_sds(
    prior: str | Prior | None = None, task: str = "separation", **overrides: object
) -> SDSConfig:
    """The SDS settings ``separate`` uses by default: ``SEPARATION_SDS`` over ``SDSConfig``'s
    defaults, then what ``prior`` (a registry name or a built prior) prefers for ``task`` (a
    separation-based task: "separation" or "enhancement"), then ``overrides``."""
    return SDSConfig(**{**SEPARATION_SDS, **prior_defaults(prior, task), **overrides})


def check_member_sds(sds: SDSConfig) -> None:
    """ValueError if ``sds`` sets a mode: separation takes its modes from ``SeparateConfig.sds_modes``."""
    default = SDSConfig().mode
    if sds.mode != default:
        raise ValueError(
            f"sds.mode: separation runs one member per SeparateConfig.sds_modes; set sds_modes = "
            f"('{sds.mode}',) and leave sds.mode at '{default}', got sds.mode = '{sds.mode}'"
        )


def contrast_negative(prompts: Sequence[str], index: int) -> str:
    """The other sources' prompts, joined: source ``index``'s negative prompt under ``contrast``."""
    return ", ".join(p for i, p in enumerate(prompts) if i != index)


def _conditioning(prior: Prior, prompts: list[str], negative: list[str | None]) -> Conditioning:
    """One row per source; a None (or blank) negative keeps that row's unconditional branch."""
    given = [n is not None and bool(n.strip()) for n in negative]
    if not any(given):
        return prior.embed(prompts)
    filled = [n if g else "" for n, g in zip(negative, given, strict=True)]
    with_negative = prior.embed(prompts, negative=filled)
    if all(given):
        return with_negative
    plain = prior.embed(prompts)
    uncond = {}
    for key, value in with_negative.uncond.items():
        if value.shape != plain.uncond[key].shape:
            raise ValueError(
                f"negative: this prior's unconditional and negative-prompt embeddings differ in shape "
                f"({tuple(plain.uncond[key].shape)} vs {tuple(value.shape)}); give every source a negative"
            )
        rows = torch.tensor(given, device=value.device).reshape(-1, *([1] * (value.ndim - 1)))
        uncond[key] = torch.where(rows, value, plain.uncond[key])
    return Conditioning(with_negative.cond, uncond, list(prompts), with_negative.negative)


# -- the loop ---------------------------------------------------------------------------


def _noise_floor_masks(spec: Tensor) -> Tensor:
    """The noise-floor start's two masks over a mask STFT (C, F, T_s): the foreground's suppression
    gain and the rest, (2, F, T_s)."""
    gain = suppression_gain(spec)
    return torch.stack([gain, 1 - gain])


def _renderer(prior: Prior, mixture: Tensor, num_sources: int, config: SeparateConfig, seed: int) -> Renderer:
    """The sources of one window (``mixture`` (C_p, W) in the prior's format)."""
    noise_floor = config.start == "noise_floor"
    if config.parametrization == "masks":
        cfg = MaskSourcesConfig(num_sources, config.init_noise / 10, seed, config.mask_n_fft, config.mask_hop)
        if not noise_floor:
            return MaskSources(mixture, prior.sample_rate, cfg)
        masks = _noise_floor_masks(stft(mixture, config.mask_n_fft, config.mask_hop))
        logits = masks.clamp_min(1e-6).log().to(mixture.dtype)  # softmax: the gain
        return MaskSources(mixture, prior.sample_rate, cfg, logits)
    # every source starts at encode(mixture / K): for a nonlinear autoencoder this decodes near
    # mixture / K, where encode(mixture) / K need not; or at the noise-floor split's two sources
    with torch.no_grad():
        if noise_floor:
            spec = stft(mixture, config.mask_n_fft, config.mask_hop)  # (C, F, T_s)
            masks = _noise_floor_masks(spec)[:, None]  # (2, 1, F, T_s)
            split = apply_masks(masks, spec, config.mask_n_fft, config.mask_hop, mixture.shape[-1])
            latent = prior.encode(split.to(mixture.dtype))  # (2, D, T)
        else:
            latent = prior.encode(mixture[None] / num_sources)  # (1, D, T)
    if config.parametrization == "latent":
        cfg_l = LatentSourcesConfig(num_sources, config.init_noise, seed)
        return LatentSources(prior.decode, latent, mixture.shape[-1], prior.sample_rate, cfg_l)
    cfg_r = RemaskedSourcesConfig(
        num_sources, config.init_noise, seed, config.mask_n_fft, config.mask_hop, config.mask_power
    )
    # a prior that has its latents' magnitudes on the mask grid spares the decoder pass per iteration
    n_fft, hop = config.mask_n_fft, config.mask_hop
    with torch.no_grad():
        direct = prior.magnitudes(latent[:1], n_fft, hop) is not None
    magnitudes = (lambda z: prior.magnitudes(z, n_fft, hop)) if direct else None
    return RemaskedSources(prior.decode, latent, mixture, prior.sample_rate, cfg_r, magnitudes)


def _separate_window(
    prior: Prior,
    mixture: Tensor,
    cond: Conditioning,
    config: SeparateConfig,
    sds: SDSConfig,
    generator: torch.Generator,
    window: int,
    progress: Progress | None,
    loop: LoopConfig | None,
    should_stop: Callable[[], bool] | None,
    checkpoint: Path | None,
    resume: bool,
    tracker: PromptTracker | None,
) -> tuple[LoopOutcome, Tensor, dict[str, object]]:
    """Eq. 13 on one window. Returns how its loop ended, the sources (K, C_p, W) on the CPU as they
    stand (final, or current if stopped) and the renderer summary."""
    # one member (a full set of sources) per SDS mode, all from the same start; Adam is per parameter and
    # each member's loss sees only its own sources, so they interact only through the shared noise
    # generator (their draws alternate): separate runs averaged, in one loop with one checkpoint
    members = torch.nn.ModuleList(
        _renderer(prior, mixture, cond.num_prompts, config, config.seed + window) for _ in config.sds_modes
    ).to(prior.device)
    member_sds = [replace(sds, mode=mode) for mode in config.sds_modes]
    optimizer = torch.optim.Adam(members.parameters(), lr=config.lr)
    state = load_checkpoint(checkpoint, members, optimizer, generator) if resume and checkpoint else None
    target = mixture[None]  # (1, C_p, W)
    differentiate_rec = config.parametrization == "latent"
    samples = mixture.numel()  # C * N per source

    def reconstruction(x: Tensor) -> Tensor:
        total = x.sum(dim=0, keepdim=True)
        if config.rec_domain == "time":
            return (total - target).square().mean()
        return multiscale_spectral_loss(total, target, config.rec_windows, log_weight=config.rec_log_weight)

    def step(it: int) -> tuple[Tensor, dict[str, float]]:
        # 1. render the K sources of every member
        xs = [renderer() for renderer in members]  # each (K, C_p, W)
        # 2. reconstruction: multiscale |STFT| of each member's sum vs the mixture; mixture-consistent
        #    sources sum to the mixture by construction, so for them it is only logged now and then
        rec = None  # not computed this iteration
        if differentiate_rec or it % REC_LOG_EVERY == 0 or it == config.iters - 1:
            with torch.set_grad_enabled(differentiate_rec):
                rec = torch.stack([reconstruction(x) for x in xs]).mean()
        loss = rec if differentiate_rec else xs[0].new_zeros(())
        # 3. per member, one batched SDS step (source k with prompt k) in its mode; per-sample normalised
        norms, sigmas = [], []
        if config.gamma > 0:
            for x, rule in zip(xs, member_sds, strict=True):
                result = sds_step(
                    prior, x, cond, rule, progress=it / max(config.iters - 1, 1), generator=generator
                )
                loss = loss + config.gamma * result.loss / samples
                norms.append(float(result.update_norm))
                sigmas.append(float(result.sigma.mean()))
        row = {
            "iter": float(it),
            "window": float(window),
            "loss": float(loss.detach()),
            "rec_loss": None if rec is None else float(rec.detach()),
            "sds_norm": float(np.mean(norms)) if norms else 0.0,
            "sigma": float(np.mean(sigmas)) if sigmas else None,
        }
        if tracker is not None:
            due = tracker.due(it, config.iters)
            scores = tracker(torch.stack(xs).mean(dim=0)) if due else [None] * xs[0].shape[0]
            row.update({f"score_{k + 1}": v for k, v in enumerate(scores)})
        return loss, row

    def on_step(it: int, row: dict[str, float]) -> None:
        if progress is not None:
            progress(window * config.iters + it, row)

    # 4. Adam on the latents or logits, non-finite steps refused
    outcome = run_loop(
        members, optimizer, generator, config.iters, step, loop, checkpoint, state, should_stop, on_step
    )
    with torch.no_grad():
        sources = torch.stack([renderer() for renderer in members]).mean(dim=0).detach().cpu()
    if len(members) == 1:
        summary = members[0].to_dict()
    else:
        summary = {mode: r.to_dict() for mode, r in zip(config.sds_modes, members, strict=True)}
    return outcome, sources, summary


def _initial_sources(
    prior: Prior, mixture: Tensor, num_sources: int, config: SeparateConfig, window: int
) -> Tensor:
    """A window's sources before any optimisation (for the outputs of a run stopped early)."""
    renderer = _renderer(prior, mixture, num_sources, config, config.seed + window).to(prior.device)
    with torch.no_grad():
        return renderer().detach().cpu()


def _window_checkpoint(folder: Path | None, window: int) -> Path | None:
    return None if folder is None else folder / f"checkpoint_window{window}.pt"


def _save_windows(
    folder: Path, pieces: list[Tensor], summaries: list[dict], history: list[dict], generator: torch.Generator
) -> None:
    """Record the finished windows (tensors and plain data only), then drop their loop checkpoints."""
    payload = {
        "pieces": pieces,
        "summaries": summaries,
        "history": history,
        "generator": generator.get_state(),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    write_bytes(folder / WINDOWS_NAME, buf.getvalue())
    for w in range(len(pieces)):
        stale = _window_checkpoint(folder, w)
        if stale is not None and stale.exists():
            stale.unlink()


def _load_windows(folder: Path, generator: torch.Generator) -> tuple[list[Tensor], list[dict], list[dict]]:
    path = folder / WINDOWS_NAME
    if not path.is_file():
        return [], [], []
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        generator.set_state(payload["generator"])
        return list(payload["pieces"]), list(payload["summaries"]), list(payload["history"])
    except (RuntimeError, KeyError, TypeError, EOFError, OSError, pickle.UnpicklingError) as err:
        raise ValueError(f"{path}: not a usable separation checkpoint") from err


def _window_settings(prior: Prior, config: SeparateConfig) -> tuple[int, int, int]:
    """Window, overlap and alignment in prior-rate samples; ValueError if a window cannot hold
    more than its overlap plus one latent frame."""
    window = round(config.max_seconds * prior.sample_rate)
    overlap = round(config.overlap_seconds * prior.sample_rate)
    align = max(1, int(prior.downsampling))
    if window - overlap < align:
        raise ValueError(
            f"max_seconds: expected windows longer than overlap_seconds plus one latent frame "
            f"({align} samples at {prior.sample_rate} Hz), got {window} and {overlap} samples"
        )
    return window, overlap, align


def num_windows(
    num_samples: int, sample_rate: int, prior: Prior, config: SeparateConfig | None = None
) -> int:
    """How many windows :func:`separate` will run for an input of ``num_samples`` at
    ``sample_rate`` (the progress callback counts ``num_windows * config.iters`` steps)."""
    config = config or SeparateConfig(**prior_defaults(prior, "separation", "separate"))
    n = _prior_length(num_samples, sample_rate, prior.sample_rate)
    window, overlap, align = _window_settings(prior, config)
    return len(window_spans(n, window, overlap, align))


def separate(
    mixture: np.ndarray | Tensor,
    sample_rate: int,
    prior: Prior,
    prompts: Sequence[str],
    config: SeparateConfig | None = None,
    sds: SDSConfig | None = None,
    negative: Sequence[str | None] | None = None,
    progress: Progress | None = None,
    loop: LoopConfig | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    scorer: PromptScorer | None = None,
    score_every: int = 10,
) -> SeparationResult:
    """Separate ``mixture`` into one source per prompt (Audio-SDS eq. 13).

    Args:
        mixture: channel-first audio at ``sample_rate``, any channel count.
        sample_rate: the mixture's sample rate in Hz.
        prior: a frozen Prior.
        prompts: 2 to 8 non-empty texts, one per source.
        config: optimisation and format settings (``config.noise_source`` adds one more source);
            default: ``SeparateConfig`` with what ``prior`` prefers (``priors.PRIOR_DEFAULTS``).
        sds: the SDS update rule (one batched step over the K sources per iteration and member); its
            ``mode`` stays at the default, each member takes its own from ``config.sds_modes``;
            default: :func:`separation_sds` of ``prior``.
        negative: optional per-source negative prompts; None entries keep the unconditional branch.
        progress: called after each iteration with (global step, history row); there are
            ``num_windows(...) * config.iters`` steps.
        loop: checkpoint interval and numeric-guard settings.
        should_stop: polled between iterations; True ends the run with status "stopped".
        checkpoint_dir: folder for checkpoints (the finished windows, and the loop state of the
            window in progress); None disables them.
        resume: continue from the checkpoints in ``checkpoint_dir``.
        scorer: if given, history rows get ``score_k`` columns (source k against prompt k)
            every ``score_every`` iterations, None between.
        score_every: the scoring interval.

    Returns:
        SeparationResult with the sources in the input's rate, channels and length.

    Shape:
        mixture (C_in, N_in) -> sources (K, C_in, N_in)
    """
    config = config or SeparateConfig(**prior_defaults(prior, "separation", "separate"))
    sds = sds or separation_sds(prior)
    check_member_sds(sds)
    if not is_int(sample_rate) or sample_rate < 1:
        raise ValueError(f"sample_rate: expected a positive int (Hz), got {sample_rate!r}")
    _check_prompts(prompts, negative)
    mix_in = _as_mixture(mixture)  # (C_in, N_in)
    names = [str(p) for p in prompts]
    negatives: list[str | None] = list(negative) if negative is not None else [None] * len(names)
    if config.noise_source:
        names.append(config.noise_prompt)
        negatives.append(None)
    if config.start == "noise_floor" and len(names) != 2:
        raise ValueError(
            f"start noise_floor: expected 2 sources (the foreground and a catch-all), got {len(names)}"
        )
    if config.contrast:
        negatives = [contrast_negative(names, i) if n is None else n for i, n in enumerate(negatives)]
    cond = _conditioning(prior, names, negatives).to(prior.device)

    # 1. the prior's format: channels, then rate, at a known length
    n_prior = _prior_length(mix_in.shape[1], sample_rate, prior.sample_rate)
    mix_p = _resample_to(_to_prior_channels(mix_in, prior.channels), sample_rate, prior.sample_rate, n_prior)
    mix_p_t = torch.from_numpy(mix_p).to(device=prior.device, dtype=torch.get_default_dtype())  # (C_p, N_p)

    # 2. separate window by window and cross-fade
    window, overlap, align = _window_settings(prior, config)
    spans = window_spans(n_prior, window, overlap, align)
    generator = torch.Generator(device=prior.device).manual_seed(config.seed)
    if resume and checkpoint_dir is None:
        raise ValueError("resume: expected a checkpoint folder to resume from, got None")
    pieces, summaries, history = _load_windows(checkpoint_dir, generator) if resume else ([], [], [])
    status, message = "completed", ""
    tracker = None if scorer is None else PromptTracker(scorer, names, prior.sample_rate, score_every)
    for w in range(len(pieces), len(spans)):
        start, end = spans[w]
        ckpt = _window_checkpoint(checkpoint_dir, w)
        outcome, piece, summary = _separate_window(
            prior,
            mix_p_t[:, start:end],
            cond,
            config,
            sds,
            generator,
            w,
            progress,
            loop,
            should_stop,
            ckpt,
            resume and ckpt is not None and ckpt.exists(),
            tracker,
        )
        history.extend(outcome.state.history)
        pieces.append(piece)
        summaries.append(summary)
        if outcome.status != "completed":
            status, message = outcome.status, f"window {w + 1} of {len(spans)}: {outcome.message}"
            # the windows not reached yet keep their initial sources
            for rest in range(w + 1, len(spans)):
                a, b = spans[rest]
                pieces.append(_initial_sources(prior, mix_p_t[:, a:b], cond.num_prompts, config, rest))
            break
        if checkpoint_dir is not None:
            _save_windows(checkpoint_dir, pieces, summaries, history, generator)
    sources_p = overlap_add(pieces, spans, n_prior).float().numpy()  # (K, C_p, N_p)

    # 3. back to the input's rate, channels and length
    sources = _to_input_format(sources_p, mix_in, prior.sample_rate, sample_rate, config)  # (K, C_in, N_in)
    sources = np.ascontiguousarray(sources, dtype=np.float32)
    levels = rms_db(torch.from_numpy(sources))
    params: dict[str, object] = {
        "parametrization": config.parametrization,
        "sample_rate": sample_rate,
        "channels": int(mix_in.shape[0]),
        "num_samples": int(mix_in.shape[1]),
        "prior_sample_rate": prior.sample_rate,
        "prior_channels": prior.channels,
        "window_samples": window,
        "window_align": align,
        "overlap_samples": overlap,
        "spans": [list(s) for s in spans],
        "sources": [
            {"prompt": p, "negative": n, "rms_db": db}
            for p, n, db in zip(names, negatives, levels, strict=True)
        ],
        "windows": summaries,
    }
    return SeparationResult(sources, sources.sum(axis=0), names, history, params, status, message)


__all__ = [
    "PARAMETRIZATIONS",
    "SeparateConfig",
    "SeparationResult",
    "check_member_sds",
    "num_windows",
    "overlap_add",
    "separate",
    "window_spans",
]
