"""Attribute measures of one clip, and whether a prompt pair moves one the expected way.

Each measure maps a mono clip at ``sample_rate`` to a number that an attribute word should set
(numpy and scipy only; no learned network). All of them read Hann-windowed frames of about 46 ms
(``n_fft`` the power of two nearest 0.046 s, hop ``n_fft / 4``; 1024 / 256 at 22.05 kHz):

- :func:`spectral_centroid_hz`: centroid of the time-averaged power spectrum (pitch: low < high);
- :func:`decay_t60_s`: T60 from the slope of the frame-energy envelope after each loud peak
  (decay: short < long);
- :func:`spectral_flatness_db`: geometric over arithmetic mean of each active frame's power
  spectrum inside a band (tone < noise);
- :func:`late_to_early_db`: energy shortly after the loudest frame against the energy around it
  (dry < reverberant).

:func:`order_share` counts the (pair, seed) cases in which the second prompt's clip measures larger
than the first's by a margin, so that two nearly identical clips do not count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks

_TINY = 1e-20
FRAME_S = 0.046  # analysis frame: 1024 samples at 22.05 kHz
ACTIVE_DB = 40.0  # frames this far below the loudest are left out of per-frame averages

Measure = Callable[[np.ndarray, int], float]  # (mono audio (N,), sample_rate) -> value


# -- framing ------------------------------------------------------------------------------------
def _mono(audio: np.ndarray) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"expected a non-empty (N,) or (1, N) clip, got shape {tuple(np.shape(audio))}")
    if not np.all(np.isfinite(x)):
        raise ValueError("expected finite samples, got NaN or inf")
    return x


def frame_size(sample_rate: int) -> tuple[int, int]:
    """(n_fft, hop) of the analysis at ``sample_rate``."""
    n_fft = int(2 ** round(np.log2(FRAME_S * sample_rate)))
    return n_fft, n_fft // 4


def power_frames(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Power spectra of the Hann-windowed frames (the clip zero-padded to whole frames) and their
    bin frequencies.

    Shape:
        audio (N,) -> power (F, n_fft // 2 + 1), freqs_hz (n_fft // 2 + 1,)
    """
    x = _mono(audio)
    n_fft, hop = frame_size(sample_rate)
    count = 1 + int(np.ceil(max(len(x) - n_fft, 0) / hop))
    padded = np.zeros((count - 1) * hop + n_fft)
    padded[: len(x)] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]  # (F, n_fft)
    power = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)) ** 2
    return power, np.fft.rfftfreq(n_fft, 1.0 / sample_rate)


def envelope_db(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float]:
    """Frame energies in dB (floored 120 dB below the loudest) and the frame rate in Hz.

    Shape:
        audio (N,) -> (F,), float
    """
    power, _ = power_frames(audio, sample_rate)
    energy_db = 10 * np.log10(power.sum(axis=1) + _TINY)
    return np.maximum(energy_db, energy_db.max() - 120.0), sample_rate / frame_size(sample_rate)[1]


# -- the measures ----------------------------------------------------------------------------------
def spectral_centroid_hz(audio: np.ndarray, sample_rate: int, fmax_hz: float = 8000.0) -> float:
    """Centroid of the clip's time-averaged power spectrum up to ``fmax_hz``, in Hz (0 for silence):
    a pure tone gives its frequency. The default band is the mel prior's (its mels stop at 8 kHz;
    what its vocoder puts above is not the prompt's doing)."""
    power, freqs = power_frames(audio, sample_rate)
    keep = freqs <= fmax_hz
    mean_power = power[:, keep].mean(axis=0)
    total = mean_power.sum()
    return float(mean_power @ freqs[keep] / total) if total > _TINY else 0.0


def decay_t60_s(
    audio: np.ndarray,
    sample_rate: int,
    top_db: float = 10.0,
    prominence_db: float = 6.0,
    fit_db: float = 30.0,
    floor_margin_db: float = 6.0,
    cap_s: float = 20.0,
) -> float:
    """Reverberation-style decay time: seconds for the level to fall 60 dB, from the envelope's slope.

    The frame-energy envelope (:func:`envelope_db`) is cut at its peaks at least ``prominence_db``
    prominent; each peak within ``top_db`` of the loudest starts a segment that runs to the next
    peak, or until the level has fallen ``fit_db``, or to ``floor_margin_db`` above the clip's noise
    floor (the envelope's 10th percentile; a vocoder's hiss does not count as a tail). A least-squares
    line through each segment gives a slope s (dB/s) and T60 = 60 / -s, capped at ``cap_s`` (flat or
    rising segments: the cap; a fall below the threshold within three frames, too fast to fit: 60 dB
    over the fall's rate to that frame, so a click measures short). The result is the median over
    segments, so repeated hits do not hide a short decay; slopes are extrapolated, so a ring that
    outlasts the clip still measures long. ``cap_s`` for silence or a sustained sound.
    """
    env, frame_rate = envelope_db(audio, sample_rate)
    if not np.any(_mono(audio)):
        return cap_s
    floor = float(np.percentile(env, 10))
    padded = np.concatenate([[env.max() - 120.0], env, [env.max() - 120.0]])  # a peak at either end counts
    peaks = find_peaks(padded, prominence=prominence_db, distance=3)[0] - 1
    times = []
    for i, peak in enumerate(peaks):
        if env[peak] < env.max() - top_db:
            continue
        segment = env[peak : peaks[i + 1] if i + 1 < len(peaks) else len(env)]
        below = np.nonzero(segment < max(env[peak] - fit_db, floor + floor_margin_db))[0]
        if below.size and below[0] == 0:  # a peak within the floor margin is no decay
            continue
        if below.size and below[0] < 3:  # gone within three frames: too fast to fit, time the fall
            drop_db = env[peak] - segment[below[0]]
            times.append(min(cap_s, 60.0 * below[0] / frame_rate / drop_db))
            continue
        segment = segment[: below[0]] if below.size else segment
        if len(segment) >= 3:
            slope_db_s = np.polyfit(np.arange(len(segment)) / frame_rate, segment, 1)[0]
            times.append(min(cap_s, 60.0 / max(-slope_db_s, 1e-6)))
    return float(np.median(times)) if times else cap_s


def spectral_flatness_db(
    audio: np.ndarray, sample_rate: int, fmin_hz: float = 50.0, fmax_hz: float = 8000.0
) -> float:
    """Mean over the active frames (within 40 dB of the loudest) of the spectral flatness (geometric
    over arithmetic mean of the power) of the bins in [``fmin_hz``, ``fmax_hz``], in dB: about -2.5
    for white noise, -20 or less for a tone. The default band is the mel prior's (its mels stop at
    8 kHz, so its audio has nothing above)."""
    power, freqs = power_frames(audio, sample_rate)
    band = power[:, (freqs >= fmin_hz) & (freqs <= min(fmax_hz, sample_rate / 2))] + _TINY
    if band.shape[1] < 2:
        raise ValueError(
            f"flatness band [{fmin_hz}, {fmax_hz}] Hz holds fewer than two bins at {sample_rate} Hz"
        )
    energy_db = 10 * np.log10(power.sum(axis=1) + _TINY)
    active = energy_db >= energy_db.max() - ACTIVE_DB
    flatness = 10 * (np.log10(band).mean(axis=1) - np.log10(band.mean(axis=1)))  # (F,)
    return float(flatness[active].mean())


def late_to_early_db(
    audio: np.ndarray,
    sample_rate: int,
    early_s: tuple[float, float] = (-0.02, 0.06),
    late_s: tuple[float, float] = (0.12, 1.0),
) -> float:
    """Mean frame energy in the late window over that in the early window, both relative to the
    loudest frame (dB): a dry hit is far below zero, a reverberant one much less so.

    The reference is the loudest frame among those whose late window ends inside the clip (a clip
    shorter than that: its loudest frame, with the windows cut at its end). Energies are floored 120
    dB below the loudest frame, so an exactly silent tail gives -120, not -inf.
    """
    env_db, frame_rate = envelope_db(audio, sample_rate)
    energy = 10 ** (env_db / 10)
    room = len(env_db) - int(np.ceil(late_s[1] * frame_rate))
    peak = int(np.argmax(env_db[:room] if room > 0 else env_db))

    def mean_energy(window: tuple[float, float]) -> float:
        lo = max(0, peak + int(np.floor(window[0] * frame_rate)))
        hi = min(len(energy), peak + int(np.ceil(window[1] * frame_rate)) + 1)
        return float(energy[lo:hi].mean()) if hi > lo else float(energy.min())

    return float(10 * np.log10(mean_energy(late_s) / mean_energy(early_s)))


# -- prompt pairs ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PromptPair:
    """Two prompts that differ in one attribute; ``second``'s clip should measure larger."""

    family: str  # where in the world (or the real classes) the attribute applies, e.g. "flute", "hum / noise"
    first: str
    second: str


@dataclass(frozen=True)
class AttributeAxis:
    """One attribute axis: its two words (smaller end first), the measure and the margin by which the
    second prompt's value must exceed the first's."""

    name: str
    words: tuple[str, str]
    measure_name: str
    measure: Measure
    rule: str  # the expected ordering, in words
    ordered: Callable[[float, float], bool]  # (first, second) -> whether the expected ordering holds
    pairs: tuple[PromptPair, ...]


def order_share(axis: AttributeAxis, values: np.ndarray) -> tuple[float, np.ndarray]:
    """The share of rows (first, second) in the expected order, and the hit of each row.

    Shape:
        values (S, 2) -> float, (S,) bool
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != 2 or len(values) == 0:
        raise ValueError(f"order_share: expected (S, 2) values with S >= 1, got {values.shape}")
    hits = np.array([bool(axis.ordered(a, b)) for a, b in values])
    return float(hits.mean()), hits


def measure_pairs(
    axis: AttributeAxis,
    render: Callable[[str, int], np.ndarray],
    seeds: Sequence[Sequence[int]],
    sample_rate: int,
    on_clip: Callable[[int, int, int, np.ndarray], None] | None = None,
) -> list[np.ndarray]:
    """For each of ``axis.pairs``, both prompts rendered from each of that pair's seeds and measured.

    Args:
        axis: the pairs and the measure.
        render: (prompt, sampler seed) -> mono audio at ``sample_rate``.
        seeds: one list of sampler seeds per pair (both prompts of a row share the seed).
        sample_rate: of the rendered audio.
        on_clip: called with (pair index, seed index, side 0 or 1, audio) after each clip.

    Returns:
        one (S, 2) array of measures per pair: column 0 the first prompt, 1 the second.
    """
    if len(seeds) != len(axis.pairs):
        raise ValueError(
            f"measure_pairs: expected one seed list per pair, got {len(seeds)} for {len(axis.pairs)}"
        )
    out = []
    for p, (pair, pair_seeds) in enumerate(zip(axis.pairs, seeds, strict=True)):
        values = np.zeros((len(pair_seeds), 2))
        for s, seed in enumerate(pair_seeds):
            for side, prompt in enumerate((pair.first, pair.second)):
                audio = np.asarray(render(prompt, seed), dtype=np.float32).reshape(-1)
                values[s, side] = axis.measure(audio, sample_rate)
                if on_clip is not None:
                    on_clip(p, s, side, audio)
        out.append(values)
    return out
