"""A family judge that is not the prior: hand-crafted spectral features + a nearest-centroid classifier.

Used by ``audiosds.bench.mel_prior`` to label vocoded and generated clips with a sound-world family,
independently of every learned network. Everything
is numpy / scipy, fitted in a few seconds on held-out world clips; nothing is cached on disk.

Features of one clip (mono, resampled to ``sample_rate``, scaled to unit RMS so loudness does not
matter), from Hann-windowed frames of ``n_fft`` samples every ``hop``:

- log-mel band energies (dB): mean over the active frames and std over all frames, per band;
- spectral centroid, bandwidth, rolloff (log Hz) and flatness (dB) per frame: mean and std;
- zero-crossing rate per frame: mean and std;
- harmonicity (peak of the window-corrected normalised autocorrelation for lags in ``f0_range_hz``)
  per frame: mean and std; the std of log f0 over harmonic frames (glides, sirens, melodies), the
  median log f0 and the share of harmonic frames;
- onset rate (peaks of the positive log-mel flux, per second), mean positive flux, decay time
  (:func:`decay_time_s`), the envelope's dB spread and mean frame-to-frame change, the share of
  frames within 10 dB of the loudest;
- envelope modulation: share of the frame-energy envelope's variance in 0.3-1.5, 1.5-4, 4-10 and
  10-31 Hz (slow swells vs rhythm vs flutter);
- spectral contrast (top vs bottom fifth of the bins, dB) in six octave-wide bands;
- partial-ratio signature: the autocorrelation over log-frequency lags (1/24 octave to 2 octaves)
  of the fine structure of the spectrum from the loudest frame on. It does not move with pitch and
  tells harmonic series (peaks at 12, 19, 24 steps) from bell, bar and plate modes.

"Active" frames are those within ``active_db`` of the loudest frame. Silence and clips shorter than
a frame give finite features (the clip is zero-padded to one frame; logs are floored).

Classifier: every feature is standardised (z-score over the fitting clips), then whitened by the
pooled within-family covariance (shrunk toward a multiple of the identity, by Ledoit-Wolf's weight
unless ``shrinkage`` is set), and a clip is assigned the family whose centroid is nearest in
Euclidean distance there: nearest centroid under the Mahalanobis metric of the pooled covariance
(linear discriminant analysis with equal priors). Measured on 31 families, 40 fitting clips each,
2 s: plain z-scored nearest centroid labels 54% of 620 other held-out world clips correctly, the
whitened one 93% (most errors: fm vs bell vs metal, flute vs saxophone / whistle, rain vs traffic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.signal import find_peaks, welch

from ..audio import resample

_TINY = 1e-12
_MODULATION_BANDS_HZ = ((0.3, 1.5), (1.5, 4.0), (4.0, 10.0), (10.0, 31.0))
_CONTRAST_EDGES_HZ = (0.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 8000.0)


@dataclass(frozen=True)
class JudgeConfig:
    sample_rate: int = 16000  # clips at other rates are resampled to this first
    n_fft: int = 1024  # 64 ms frames at 16 kHz
    hop: int = 256  # 16 ms
    n_mels: int = 40
    fmin_hz: float = 30.0
    active_db: float = 40.0  # frames this far below the loudest are left out of the "active" stats
    # Features see every clip over white noise this far below its RMS (fixed seed): the world's clips
    # are digitally clean while decoded audio has a floor, and without it a -60 dB floor alone cost
    # 11 points of accuracy on held-out world clips (-40 dB: 23 points). None: no dither.
    dither_db: float | None = -45.0
    # decay time: T20 from the slope of the frame-energy envelope after each loud onset
    decay_prominence_db: float = 6.0  # envelope peaks at least this prominent start a decay segment
    decay_top_db: float = 10.0  # only peaks within this of the loudest are measured
    decay_fit_db: float = 30.0  # a segment is fitted until it falls this far (or the next peak)
    decay_cap_s: float = 30.0  # flat or rising segments: the decay time is capped here
    f0_range_hz: tuple[float, float] = (50.0, 1000.0)  # autocorrelation lags searched for harmonicity
    harmonic_threshold: float = 0.5  # frames above this harmonicity count as pitched
    # partial-ratio signature: log-frequency grid (bins per octave, range) and the longest lag;
    # the long-term FFT (signature_fft) resolves 1/24 octave above ~135 Hz
    bins_per_octave: int = 24
    signature_range_hz: tuple[float, float] = (150.0, 7200.0)
    signature_lags: int = 48  # 2 octaves
    signature_fft: int = 4096  # Welch segment for the long-term spectrum
    # pooled covariance -> (1 - s) cov + s * mean variance * I; None: Ledoit-Wolf's estimate of s
    shrinkage: float | None = None

    def __post_init__(self) -> None:
        if self.sample_rate < 8000 or self.hop < 1 or self.n_fft < 2 * self.hop or self.n_mels < 2:
            raise ValueError(
                "JudgeConfig: expected sample_rate >= 8000, hop >= 1, n_fft >= 2 * hop and n_mels >= 2, "
                f"got {self.sample_rate}, {self.hop}, {self.n_fft}, {self.n_mels}"
            )
        if self.shrinkage is not None and not 0.0 < self.shrinkage <= 1.0:
            raise ValueError(f"JudgeConfig.shrinkage: expected in (0, 1], got {self.shrinkage}")
        lo, hi = self.signature_range_hz
        if (
            not 0 < lo < hi <= self.sample_rate / 2
            or self.bins_per_octave * np.log2(hi / lo) < 2 * self.signature_lags
        ):
            raise ValueError(
                "JudgeConfig.signature_range_hz: expected a range below Nyquist spanning at least "
                f"2 * signature_lags bins, got {self.signature_range_hz}"
            )
        object.__setattr__(self, "f0_range_hz", tuple(self.f0_range_hz))  # JSON gives lists
        object.__setattr__(self, "signature_range_hz", tuple(self.signature_range_hz))

    @property
    def num_features(self) -> int:
        """Length of :func:`clip_features`' vector."""
        bands = len(_MODULATION_BANDS_HZ) + len(_CONTRAST_EDGES_HZ) - 1
        return 2 * self.n_mels + 21 + bands + self.signature_lags


@lru_cache(maxsize=4)
def _mel_filterbank(cfg: JudgeConfig) -> np.ndarray:
    """Triangular filters on the HTK mel scale, (n_mels, n_fft // 2 + 1)."""

    def mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    freqs = np.fft.rfftfreq(cfg.n_fft, 1.0 / cfg.sample_rate)
    edges = hz(np.linspace(mel(np.array(cfg.fmin_hz)), mel(np.array(cfg.sample_rate / 2)), cfg.n_mels + 2))
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rise = (freqs[None] - lo) / (mid - lo)
    fall = (hi - freqs[None]) / (hi - mid)
    return np.clip(np.minimum(rise, fall), 0.0, None)


@lru_cache(maxsize=4)
def _window_autocorrelation(n_fft: int) -> np.ndarray:
    """Autocorrelation of the Hann window, (n_fft,)."""
    return np.fft.irfft(np.abs(np.fft.rfft(np.hanning(n_fft), 2 * n_fft)) ** 2)[:n_fft]


@lru_cache(maxsize=4)
def _signature_grid(cfg: JudgeConfig) -> np.ndarray:
    """Log-spaced frequencies (Hz) of the partial-ratio signature."""
    lo, hi = cfg.signature_range_hz
    return lo * 2.0 ** (np.arange(int(cfg.bins_per_octave * np.log2(hi / lo))) / cfg.bins_per_octave)


def _prepare(audio: np.ndarray, sample_rate: int, cfg: JudgeConfig) -> np.ndarray:
    """(N,) float64 mono at cfg.sample_rate, unit RMS (silence stays zero)."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"judge audio: expected a non-empty (N,) or (C, N) array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("judge audio: expected finite samples, got NaN or inf")
    if sample_rate != cfg.sample_rate:
        x = resample(x[None], sample_rate, cfg.sample_rate)[0]
    x = x.astype(np.float64)
    rms = np.sqrt(np.mean(x**2))
    return x / rms if rms > 1e-9 else np.zeros_like(x)


def _frames(x: np.ndarray, cfg: JudgeConfig) -> np.ndarray:
    """Frames (F, n_fft) every hop; the clip is zero-padded to a whole number of hops."""
    n = max(len(x), cfg.n_fft)
    count = 1 + int(np.ceil((n - cfg.n_fft) / cfg.hop))
    padded = np.zeros((count - 1) * cfg.hop + cfg.n_fft)
    padded[: len(x)] = x
    return np.lib.stride_tricks.sliding_window_view(padded, cfg.n_fft)[:: cfg.hop]


def _stats(values: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(mean, std) over the masked entries (all entries when the mask is empty)."""
    chosen = values[mask] if mask.any() else values
    return float(chosen.mean()), float(chosen.std())


class _Analysis:
    """Frame-level quantities of one clip, shared by its features."""

    def __init__(self, audio: np.ndarray, sample_rate: int, cfg: JudgeConfig, dither: bool = False) -> None:
        self.cfg = cfg
        self.x = _prepare(audio, sample_rate, cfg)
        if dither and cfg.dither_db is not None and self.x.any():
            floor = np.random.default_rng(0).standard_normal(len(self.x)) * 10 ** (cfg.dither_db / 20)
            self.x = self.x + floor
        self.frames = _frames(self.x, cfg)  # (F, n_fft)
        self.power = np.abs(np.fft.rfft(self.frames * np.hanning(cfg.n_fft), axis=1)) ** 2  # (F, K)
        self.freqs = np.fft.rfftfreq(cfg.n_fft, 1.0 / cfg.sample_rate)
        self.frame_db = 10 * np.log10(self.power.sum(axis=1) + _TINY)  # (F,)
        self.active = self.frame_db >= self.frame_db.max() - cfg.active_db
        self.mel_db = 10 * np.log10(self.power @ _mel_filterbank(cfg).T + _TINY)  # (F, M)
        self.frame_rate = cfg.sample_rate / cfg.hop
        self.seconds = len(self.x) / cfg.sample_rate

    def spectral_shape(self) -> dict[str, np.ndarray]:
        """Per-frame centroid, bandwidth, rolloff (log Hz) and flatness (dB)."""
        p = self.power + _TINY
        total = p.sum(axis=1)
        centroid = (p @ self.freqs) / total
        bandwidth = np.sqrt((p * (self.freqs[None] - centroid[:, None]) ** 2).sum(axis=1) / total)
        rolloff = self.freqs[np.argmax(np.cumsum(p, axis=1) >= 0.85 * total[:, None], axis=1)]
        flatness = 10 * np.log10(np.exp(np.log(p).mean(axis=1)) / p.mean(axis=1))
        return {
            "centroid": np.log(centroid + 1.0),
            "bandwidth": np.log(bandwidth + 1.0),
            "rolloff": np.log(rolloff + 1.0),
            "flatness": flatness,
        }

    def harmonicity(self) -> tuple[np.ndarray, np.ndarray]:
        """Per frame: the peak normalised autocorrelation in the f0 range and the f0 (Hz) it gives."""
        cfg = self.cfg
        spectrum = np.fft.rfft(self.frames * np.hanning(cfg.n_fft), 2 * cfg.n_fft)
        ac = np.fft.irfft(np.abs(spectrum) ** 2)[:, : cfg.n_fft]
        ac = ac / (_window_autocorrelation(cfg.n_fft)[None] + _TINY)  # Boersma's window correction
        ac = ac / (ac[:, :1] + _TINY)
        lo = max(1, int(cfg.sample_rate / cfg.f0_range_hz[1]))
        hi = min(cfg.n_fft // 2, int(cfg.sample_rate / cfg.f0_range_hz[0]))
        lags = ac[:, lo:hi]
        best = np.argmax(lags, axis=1)
        return np.clip(lags[np.arange(len(lags)), best], 0.0, 1.0), cfg.sample_rate / (lo + best)

    def onsets(self) -> tuple[float, float]:
        """(onsets per second, mean positive log-mel flux in dB per frame)."""
        if len(self.mel_db) < 2:
            return 0.0, 0.0
        flux = np.clip(np.diff(self.mel_db, axis=0), 0.0, None).mean(axis=1)  # (F - 1,)
        gap = max(1, int(0.05 * self.frame_rate))
        peaks, _ = find_peaks(flux * self.active[1:], height=np.median(flux) + 2.0, distance=gap)
        return len(peaks) / self.seconds, float(flux.mean())

    def decay(self) -> float:
        """See :func:`decay_time_s`."""
        cfg = self.cfg
        env = self.frame_db
        if not np.any(self.x):
            return 0.0
        floor = env.max() - 60.0
        padded = np.concatenate([[floor], env, [floor]])  # so a peak at either end counts
        peaks = find_peaks(padded, prominence=cfg.decay_prominence_db, distance=3)[0] - 1
        times = []
        for i, peak in enumerate(peaks):
            if env[peak] < env.max() - cfg.decay_top_db:
                continue
            segment = env[peak : peaks[i + 1] if i + 1 < len(peaks) else len(env)]
            below = np.nonzero(segment < env[peak] - cfg.decay_fit_db)[0]
            segment = segment[: below[0]] if below.size else segment
            if len(segment) >= 3:
                slope_db_s = np.polyfit(np.arange(len(segment)) / self.frame_rate, segment, 1)[0]
                times.append(min(cfg.decay_cap_s, 20.0 / max(-slope_db_s, 1e-6)))
        return float(np.median(times)) if times else cfg.decay_cap_s

    def modulation(self) -> list[float]:
        """Log share of the frame-energy envelope's variance in each modulation band."""
        env = np.clip(self.frame_db, self.frame_db.max() - 60.0, None)
        spectrum = np.abs(np.fft.rfft((env - env.mean()) * np.hanning(len(env)))) ** 2
        freqs = np.fft.rfftfreq(len(env), 1.0 / self.frame_rate)
        total = spectrum[1:].sum() + 1e-9
        return [
            float(np.log(spectrum[(freqs >= lo) & (freqs < hi)].sum() / total + 1e-4))
            for lo, hi in _MODULATION_BANDS_HZ
        ]

    def contrast(self) -> list[float]:
        """Mean over active frames of peak-vs-valley contrast (dB) in octave bands."""
        out = []
        for lo, hi in zip(_CONTRAST_EDGES_HZ[:-1], _CONTRAST_EDGES_HZ[1:], strict=True):
            band = np.sort(self.power[:, (self.freqs >= lo) & (self.freqs <= hi)] + _TINY, axis=1)
            k = max(1, band.shape[1] // 5)
            out.append(
                _stats(10 * np.log10(band[:, -k:].mean(axis=1) / band[:, :k].mean(axis=1)), self.active)[0]
            )
        return out

    def signature(self) -> np.ndarray:
        """Normalised autocorrelation over log-frequency lags of the long-term spectrum's fine structure."""
        cfg = self.cfg
        seg = self.x[int(np.argmax(self.frame_db)) * cfg.hop :]
        if len(seg) < cfg.signature_fft:
            seg = np.pad(seg, (0, cfg.signature_fft - len(seg)))
        freqs, power = welch(seg, cfg.sample_rate, nperseg=cfg.signature_fft, noverlap=cfg.signature_fft // 2)
        level_db = 10 * np.log10(np.interp(_signature_grid(cfg), freqs, power) + _TINY)
        level_db = np.maximum(level_db, level_db.max() - 60.0)
        half = cfg.bins_per_octave // 2
        smooth = np.convolve(
            np.pad(level_db, half, mode="edge"), np.ones(2 * half + 1) / (2 * half + 1), "valid"
        )
        fine = level_db - smooth
        fine = fine - fine.mean()
        energy = float(fine @ fine) + 1e-9
        return np.array([fine[:-lag] @ fine[lag:] / energy for lag in range(1, cfg.signature_lags + 1)])


def decay_time_s(audio: np.ndarray, sample_rate: int, config: JudgeConfig | None = None) -> float:
    """Decay time (T20, seconds for the level to fall 20 dB) from the frame-energy envelope.

    The envelope (dB, one value per hop) is cut at its peaks at least ``decay_prominence_db``
    prominent; every peak within ``decay_top_db`` of the loudest starts a segment that runs to the
    next peak or until the level has fallen ``decay_fit_db``. A least-squares line through each
    segment gives a slope s (dB/s) and T20 = 20 / -s (capped at ``decay_cap_s``); the result is the
    median over segments. Extrapolating the slope keeps long rings that outlast the clip apart, and
    repeated hits do not hide a short decay. 0 for silence.

    Shape:
        audio (N,) or (C, N) -> float
    """
    return _Analysis(audio, sample_rate, config or JudgeConfig()).decay()


def spectral_centroid_hz(audio: np.ndarray, sample_rate: int, config: JudgeConfig | None = None) -> float:
    """Centroid of the clip's time-averaged power spectrum, in Hz (0 for silence).

    Shape:
        audio (N,) or (C, N) -> float
    """
    a = _Analysis(audio, sample_rate, config or JudgeConfig())
    mean_power = a.power.mean(axis=0)
    total = mean_power.sum()
    return float(mean_power @ a.freqs / total) if total > _TINY else 0.0


def spectral_flatness_db(audio: np.ndarray, sample_rate: int, config: JudgeConfig | None = None) -> float:
    """Mean over the active frames of the frame's spectral flatness (geometric / arithmetic mean of
    the power spectrum), in dB: about -2.5 for white noise, far below for a tone.

    Shape:
        audio (N,) or (C, N) -> float
    """
    a = _Analysis(audio, sample_rate, config or JudgeConfig())
    return _stats(a.spectral_shape()["flatness"], a.active)[0]


def clip_features(audio: np.ndarray, sample_rate: int, config: JudgeConfig | None = None) -> np.ndarray:
    """The judge's feature vector of one clip (see the module docstring).

    Shape:
        audio (N,) or (C, N) -> (config.num_features,) float64, finite
    """
    cfg = config or JudgeConfig()
    a = _Analysis(audio, sample_rate, cfg, dither=True)
    mel_mean = a.mel_db[a.active].mean(axis=0) if a.active.any() else a.mel_db.mean(axis=0)
    parts: list[Sequence[float] | np.ndarray] = [mel_mean, a.mel_db.std(axis=0)]
    parts.extend(_stats(values, a.active) for values in a.spectral_shape().values())
    signs = np.signbit(a.frames)
    parts.append(_stats(np.mean(signs[:, 1:] != signs[:, :-1], axis=1), a.active))  # zero-crossing rate
    harmonic, f0 = a.harmonicity()
    parts.append(_stats(harmonic, a.active))
    voiced = a.active & (harmonic > cfg.harmonic_threshold)
    log_f0 = np.log(f0[voiced])
    parts.append(
        [
            float(log_f0.std()) if voiced.sum() > 1 else 0.0,
            float(np.median(log_f0)) if voiced.any() else float(np.log(cfg.f0_range_hz[0])),
            float(voiced.mean()),
        ]
    )
    rate, flux = a.onsets()
    envelope = np.clip(a.frame_db, a.frame_db.max() - 80.0, None)
    parts.append(
        [
            float(np.log1p(rate)),
            flux,
            float(np.log(a.decay() + 0.01)),
            float(envelope.std()),
            float(np.abs(np.diff(envelope)).mean()) if len(envelope) > 1 else 0.0,
            float(np.mean(a.frame_db >= a.frame_db.max() - 10.0)),
        ]
    )
    parts.extend([a.modulation(), a.contrast(), a.signature()])
    return np.concatenate([np.ravel(np.asarray(p, dtype=np.float64)) for p in parts])


def batch_features(
    clips: Sequence[np.ndarray] | np.ndarray, sample_rate: int, config: JudgeConfig | None = None
) -> np.ndarray:
    """:func:`clip_features` of every clip (clips may differ in length).

    Shape:
        B clips of (N_b,) -> (B, F)
    """
    if len(clips) == 0:
        raise ValueError("batch_features clips: expected at least one clip, got none")
    return np.stack([clip_features(c, sample_rate, config) for c in clips])


class FamilyJudge:
    """Nearest-centroid classifier over standardised, whitened :func:`clip_features`.

    Args:
        families: the class names, in centroid order (K).
        mean, scale: the standardisation, (F,) each.
        whitening: maps standardised features into the whitened space, (F, F).
        centroids: family centroids in the whitened space, (K, F).
        config: the feature settings.
    """

    def __init__(
        self,
        families: Sequence[str],
        mean: np.ndarray,
        scale: np.ndarray,
        whitening: np.ndarray,
        centroids: np.ndarray,
        config: JudgeConfig,
    ) -> None:
        f = config.num_features
        shapes = (mean.shape, scale.shape, whitening.shape, centroids.shape)
        if shapes != ((f,), (f,), (f, f), (len(families), f)):
            raise ValueError(
                f"FamilyJudge: expected mean, scale ({f},), whitening ({f}, {f}), "
                f"centroids ({len(families)}, {f}), got {shapes}"
            )
        self.families = list(families)
        self.mean, self.scale, self.whitening, self.centroids = mean, scale, whitening, centroids
        self.config = config

    def embed(self, features: np.ndarray) -> np.ndarray:
        """Features -> the whitened space.

        Shape:
            (B, F) -> (B, F)
        """
        return ((features - self.mean) / self.scale) @ self.whitening

    def distances(self, clips: Sequence[np.ndarray] | np.ndarray, sample_rate: int) -> np.ndarray:
        """Distance of every clip to every family centroid in the whitened space.

        Shape:
            B clips -> (B, K)
        """
        z = self.embed(batch_features(clips, sample_rate, self.config))
        return np.sqrt(((z[:, None, :] - self.centroids[None]) ** 2).sum(axis=-1))

    def classify(self, clips: Sequence[np.ndarray] | np.ndarray, sample_rate: int) -> list[str]:
        """The nearest family of every clip.

        Shape:
            B clips -> B names
        """
        return [self.families[i] for i in self.distances(clips, sample_rate).argmin(axis=1)]


def ledoit_wolf_shrinkage(residual: np.ndarray) -> float:
    """Ledoit and Wolf's (2004) estimate of the weight s in (1 - s) S + s (tr S / p) I that minimises
    the expected squared error of the covariance estimate S = R^T R / n of zero-mean rows R.

    Shape:
        residual (n, p) -> float in [0, 1]
    """
    n, p = residual.shape
    cov = residual.T @ residual / n
    spread = ((cov - np.trace(cov) / p * np.eye(p)) ** 2).sum()  # ||S - mu I||^2
    noise = ((residual**2).sum(axis=1) ** 2).sum() / n**2 - (cov**2).sum() / n  # (1/n^2) sum ||r r^T - S||^2
    return float(np.clip(noise / spread, 0.0, 1.0)) if spread > 0 else 1.0


def fit_judge(
    clips: Sequence[np.ndarray] | np.ndarray,
    labels: Sequence[str],
    sample_rate: int,
    config: JudgeConfig | None = None,
) -> FamilyJudge:
    """Fit the judge on labelled clips: standardise, whiten by the shrunk pooled within-family
    covariance, one centroid per family.

    Args:
        clips: B waveforms (any lengths).
        labels: B family names, at least two families.
        sample_rate: rate of the clips.
        config: feature settings.
    """
    cfg = config or JudgeConfig()
    families = list(dict.fromkeys(labels))
    if len(clips) != len(labels) or len(families) < 2:
        raise ValueError(
            f"fit_judge: expected one label per clip and >= 2 families, got {len(clips)} clips, "
            f"{len(labels)} labels, {len(families)} families"
        )
    feats = batch_features(clips, sample_rate, cfg)
    mean = feats.mean(axis=0)
    scale = feats.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    z = (feats - mean) / scale
    label_array = np.asarray(labels)
    class_means = {f: z[label_array == f].mean(axis=0) for f in families}
    residual = z - np.stack([class_means[f] for f in labels])
    cov = residual.T @ residual / len(z)
    target = np.trace(cov) / len(cov) * np.eye(len(cov))
    shrinkage = ledoit_wolf_shrinkage(residual) if cfg.shrinkage is None else cfg.shrinkage
    cov = (1 - shrinkage) * cov + shrinkage * target
    eigvals, eigvecs = np.linalg.eigh(cov)
    whitening = eigvecs / np.sqrt(np.maximum(eigvals, 1e-9))
    centroids = np.stack([class_means[f] @ whitening for f in families])
    return FamilyJudge(families, mean, scale, whitening, centroids, cfg)


def fit_world_judge(
    clips_per_family: int,
    seconds: float,
    sample_rate: int = 16000,
    seed: int = 1,
    families: Sequence[str] | None = None,
    config: JudgeConfig | None = None,
) -> FamilyJudge:
    """Fit the judge on balanced held-out world clips (``world.sample_clips("heldout", ...)``).

    Args:
        clips_per_family: clips of each family.
        seconds: clip length.
        sample_rate: rate the clips are rendered at.
        seed: seed of the draw (use one that no evaluation set uses).
        families: the families (all by default).
        config: feature settings.
    """
    from ..world import FAMILIES, sample_clips

    if clips_per_family < 1:
        raise ValueError(f"fit_world_judge clips_per_family: expected >= 1, got {clips_per_family}")
    names = list(FAMILIES) if families is None else list(families)
    clips = sample_clips(
        "heldout", clips_per_family * len(names), seconds, sample_rate, seed=seed, families=names
    )
    return fit_judge([c.audio for c in clips], [c.family for c in clips], sample_rate, config)
