"""Room-acoustic measurements of impulse responses: octave bands and RT60 by Schroeder integration.

RT60 (ISO 3382-1): the time the sound energy of a room takes to fall by 60 dB. Measured on the
Schroeder curve, the backward-integrated energy ``E(t) = sum_{s >= t} h(s)^2`` in dB, whose decay is
fitted by least squares between -5 and -25 dB (T20) and extrapolated to -60 dB. The fit range starts
below the direct sound and early reflections and ends above the noise floor and the truncation at
the end of the response.
"""

from __future__ import annotations

import math

import numpy as np

OCTAVE_CENTRES_HZ = (125.0, 250.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0)
MID_BANDS_HZ = (500.0, 1000.0)  # "mid-band" RT60: the mean of these two octaves (ISO 3382-1's T_mid)


def octave_band(h: np.ndarray, sample_rate: int, centre_hz: float) -> np.ndarray:
    """``h`` band-passed to the octave around ``centre_hz`` (edges centre / sqrt 2 and centre * sqrt 2)
    by a causal 3rd-order Butterworth band-pass (the filter class of IEC 61260 octave filters).

    Shape:
        (N,) -> (N,)
    """
    from scipy.signal import butter, sosfilt

    edges = [centre_hz / math.sqrt(2), min(centre_hz * math.sqrt(2), 0.499 * sample_rate)]
    sos = butter(3, edges, btype="bandpass", fs=sample_rate, output="sos")
    return sosfilt(sos, np.asarray(h, dtype=np.float64))


def schroeder_db(h: np.ndarray) -> np.ndarray:
    """The Schroeder curve: backward-integrated energy of ``h`` in dB relative to its total.

    Shape:
        (N,) -> (N,)
    """
    energy = np.cumsum((np.asarray(h, dtype=np.float64) ** 2)[::-1])[::-1]
    return 10.0 * np.log10(np.maximum(energy / max(energy[0], 1e-300), 1e-30))


def rt60(h: np.ndarray, sample_rate: int, top_db: float = -5.0, bottom_db: float = -25.0) -> float:
    """RT60 of impulse response ``h`` in seconds: the least-squares slope of its Schroeder curve
    between ``top_db`` and ``bottom_db``, extrapolated to -60 dB (T20 with the defaults).

    Raises:
        ValueError: ``h`` is silent or its curve never falls to ``bottom_db``.
    """
    h = np.asarray(h, dtype=np.float64).reshape(-1)
    if h.size < 2 or not np.any(h):
        raise ValueError("rt60: expected a non-silent impulse response")
    curve = schroeder_db(h)
    fit = np.flatnonzero((curve <= top_db) & (curve >= bottom_db))
    if fit.size < 2 or curve.min() > bottom_db:
        raise ValueError(f"rt60: the Schroeder curve never falls to {bottom_db} dB")
    t = fit / sample_rate
    slope = np.polyfit(t, curve[fit], 1)[0]  # dB per second, negative
    return float(-60.0 / slope)


def band_rt60(
    h: np.ndarray, sample_rate: int, centres_hz: tuple[float, ...] = OCTAVE_CENTRES_HZ
) -> dict[float, float]:
    """RT60 per octave band (the bands below the Nyquist frequency), in seconds."""
    return {
        c: rt60(octave_band(np.asarray(h, dtype=np.float64), sample_rate, c), sample_rate)
        for c in centres_hz
        if c * math.sqrt(2) < sample_rate / 2
    }


def mid_rt60(h: np.ndarray, sample_rate: int) -> float:
    """The mid-band RT60: the mean of the 500 Hz and 1 kHz octaves' (ISO 3382-1 T_mid)."""
    return float(
        np.mean(
            [rt60(octave_band(np.asarray(h, np.float64), sample_rate, c), sample_rate) for c in MID_BANDS_HZ]
        )
    )


__all__ = [
    "MID_BANDS_HZ",
    "OCTAVE_CENTRES_HZ",
    "band_rt60",
    "mid_rt60",
    "octave_band",
    "rt60",
    "schroeder_db",
]
