"""Vectorised numpy building blocks for the sound world (no per-sample Python loops).

The costly primitives are written so that transcendental functions run on float32 SIMD paths or on
small arrays only:

- ``modal``: a sum of K exponentially damped sinusoids, the impulse response of an object,
  ``sum_k a_k exp(-t/d_k) sin(2 pi f_k t + phi_k)`` (the modal model of Audio-SDS eq. 9), computed
  as Im(P @ Q) with P (blocks, K) and Q (K, block) complex exponentials built by cumulative products.
- ``harmonic_tone``: a band-limited harmonic series with geometric roll-off
  ``sum_{j<K} rho^j sin((j+1) phi)`` in closed form (a discrete summation formula), so a time-varying
  pitch costs four float32 sin/cos evaluations per sample whatever the number of harmonics.
- ``shaped_noise``: noise with any time-varying magnitude spectrum, synthesised frame by frame
  (random phases, inverse real FFT, sine window, 50 % overlap-add).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
from scipy.signal import lfilter

TWO_PI = 2.0 * np.pi
MODE_CHUNK = 16  # modes per matrix product: larger products switch OpenBLAS to threads, slower on 2 cores
BLOCK = 256  # samples per block of the modal factorisation


def uniform_noise(rng: np.random.Generator, shape: int | tuple[int, ...]) -> np.ndarray:
    """Zero-mean unit-variance uniform white noise (four times cheaper than Gaussian draws).

    Shape:
        ``shape``, float32.
    """
    return (rng.random(shape, dtype=np.float32) - np.float32(0.5)) * np.float32(2.0 * np.sqrt(3.0))


def time_axis(n: int, sample_rate: int) -> np.ndarray:
    """Sample times in seconds, float32, shape (n,)."""
    return np.arange(n, dtype=np.float32) / np.float32(sample_rate)


def modal(
    freqs_hz: np.ndarray,
    decays_s: np.ndarray,
    amps: np.ndarray,
    n: int,
    sample_rate: int,
    phases: np.ndarray | None = None,
) -> np.ndarray:
    """Sum of damped sinusoids ``sum_k a_k exp(-t/d_k) sin(2 pi f_k t + phi_k)`` for t = 0 .. n-1.

    Modes at or above 0.47 * sample_rate are dropped (no aliasing). ``decays_s`` may be ``inf``
    (a sustained partial). With t = (m * BLOCK + j) / sr the sum factorises as
    ``Im(sum_k P[m, k] Q[k, j])``, P = a_k e^{i phi_k} z_k^{m BLOCK}, Q = z_k^j, z_k = e^{s_k/sr}.

    Args:
        freqs_hz: mode frequencies (K,).
        decays_s: 1/e decay times (K,), > 0.
        amps: mode amplitudes (K,).
        n: number of samples.
        sample_rate: in Hz.
        phases: initial phases (K,), default 0 (every mode starts at zero: no click).

    Returns:
        float32 signal.

    Shape:
        freqs_hz, decays_s, amps, phases: (K,) -> (n,).
    """
    f = np.atleast_1d(np.asarray(freqs_hz, dtype=np.float64))
    d = np.broadcast_to(np.asarray(decays_s, dtype=np.float64), f.shape)
    a = np.broadcast_to(np.asarray(amps, dtype=np.float64), f.shape)
    ph = np.zeros_like(f) if phases is None else np.broadcast_to(np.asarray(phases, np.float64), f.shape)
    keep = (f > 0.0) & (f < 0.47 * sample_rate) & (a != 0.0)
    f, d, a, ph = f[keep], d[keep], a[keep], ph[keep]
    n_blocks = -(-n // BLOCK)
    out = np.zeros((n_blocks, BLOCK), dtype=np.float64)
    if f.size == 0 or n == 0:
        return out.ravel()[:n].astype(np.float32)
    s = -1.0 / d + 1j * TWO_PI * f  # (K,) complex rate per second
    q = np.empty((BLOCK, f.size), dtype=np.complex128)
    q[0] = 1.0
    q[1:] = np.exp(s / sample_rate)
    q = np.cumprod(q, axis=0)  # (BLOCK, K): z^j
    p = np.empty((n_blocks, f.size), dtype=np.complex128)
    p[0] = a * np.exp(1j * ph)
    p[1:] = np.exp(s * (BLOCK / sample_rate))
    p = np.cumprod(p, axis=0)  # (n_blocks, K)
    for lo in range(0, f.size, MODE_CHUNK):
        pc, qc = p[:, lo : lo + MODE_CHUNK], q[:, lo : lo + MODE_CHUNK]
        out += pc.real @ qc.imag.T + pc.imag @ qc.real.T
    return out.ravel()[:n].astype(np.float32)


def phase_from_freq(freq_hz: np.ndarray, sample_rate: int, phase0: float = 0.0) -> np.ndarray:
    """Running phase ``phi[n] = phase0 + 2 pi sum_{m<=n} f[m] / sr`` wrapped to [0, 2 pi), float32.

    Accumulated in float64 so long clips keep their pitch; wrapped before the float32 cast.
    """
    ph = np.cumsum(np.asarray(freq_hz, dtype=np.float64)) * (TWO_PI / sample_rate) + phase0
    ph -= TWO_PI * np.floor(ph / TWO_PI)
    return ph.astype(np.float32)


def harmonic_tone(
    phase: np.ndarray, rolloff: float | np.ndarray, n_harmonics: int, odd: bool = False
) -> np.ndarray:
    """Band-limited harmonic series with geometric roll-off, normalised to a sine's power.

    ``y = sum_{j=0}^{K-1} rho^j sin(h_j phi) / sqrt(sum_j rho^{2j})`` with h_j = j+1 (all harmonics,
    rho = rolloff) or h_j = 2j+1 (odd harmonics, rho = rolloff^2), summed in closed form:
    ``sum_j w^j = (1 - w^K) / (1 - w)``, w = rho e^{i step}.

    Args:
        phase: wrapped running phase of the fundamental (N,).
        rolloff: amplitude ratio between consecutive harmonics, in [0, 0.97]; scalar or (N,).
        n_harmonics: K, the number of harmonics kept (choose K f0_max < sr/2).
        odd: keep odd harmonics only (square-wave-like, reed and siren timbres).

    Shape:
        phase (N,), rolloff () or (N,) -> (N,) float32.
    """
    phi = np.asarray(phase, dtype=np.float32)
    r = np.clip(np.asarray(rolloff, dtype=np.float32), 0.0, 0.97)
    k = max(int(n_harmonics), 1)
    step = np.float32(2.0) * phi if odd else phi
    rho = r * r if odd else r
    rho_k = np.exp(np.float32(k) * np.log(np.maximum(rho, np.float32(1e-12))))
    c1, s1 = np.cos(step), np.sin(step)
    ck, sk = np.cos(np.float32(k) * step), np.sin(np.float32(k) * step)
    nr, ni = 1.0 - rho_k * ck, -rho_k * sk
    dr, di = 1.0 - rho * c1, -rho * s1
    den = dr * dr + di * di
    ratio_r = (nr * dr + ni * di) / den
    ratio_i = (ni * dr - nr * di) / den
    if odd:
        cb, sb = np.cos(phi), np.sin(phi)
    else:
        cb, sb = c1, s1
    y = sb * ratio_r + cb * ratio_i
    norm = np.sqrt((1.0 - rho_k * rho_k) / np.maximum(1.0 - rho * rho, np.float32(1e-6)))
    return (y / norm).astype(np.float32)


def harmonic_stack(
    phase: np.ndarray, freq_hz: np.ndarray, rolloff: float, k_max: int, sample_rate: int
) -> np.ndarray:
    """Harmonics ``sum_{k<=k_max} rolloff^(k-1) g_k sin(k phi)`` for wide glides: each harmonic fades
    out (g_k: 1 -> 0) as k f crosses 0.35 .. 0.45 sample_rate, so no harmonic aliases and none
    switches on abruptly. Normalised to a sine's power when all harmonics are present.

    Shape:
        phase (N,), freq_hz (N,) -> (N,) float32.
    """
    phi = np.asarray(phase, dtype=np.float32)
    f = np.asarray(freq_hz, dtype=np.float32)
    out = np.zeros_like(phi)
    norm = 0.0
    for k in range(1, k_max + 1):
        gain = np.clip((np.float32(0.45 * sample_rate) - k * f) / np.float32(0.1 * sample_rate), 0.0, 1.0)
        if not gain.any():
            break
        amp = rolloff ** (k - 1)
        out += np.float32(amp) * gain * np.sin(np.float32(k) * phi)
        norm += amp * amp
    return out / np.float32(np.sqrt(max(norm, 1e-12)))


@dataclass(frozen=True)
class FrameGrid:
    """The frame grid of ``shaped_noise``: frame f is centred on sample f * hop.

    Attributes:
        hop: hop size in samples (half the frame length).
        n_frames: number of frames covering the clip.
        times_s: frame centre times (F,).
        freqs_hz: bin frequencies (K,), K = hop + 1.
    """

    hop: int
    n_frames: int
    times_s: np.ndarray
    freqs_hz: np.ndarray


def frame_grid(n: int, sample_rate: int) -> FrameGrid:
    """A ~16 ms hop grid (power of two) covering n samples."""
    hop = int(2 ** round(np.log2(0.016 * sample_rate)))
    n_frames = -(-n // hop) + 1
    times = np.arange(n_frames, dtype=np.float32) * np.float32(hop / sample_rate)
    freqs = np.arange(hop + 1, dtype=np.float32) * np.float32(sample_rate / (2 * hop))
    return FrameGrid(hop, n_frames, times, freqs)


@functools.lru_cache(maxsize=16)
def _sine_window(length: int) -> np.ndarray:
    return np.sin(np.pi * (np.arange(length) + 0.5) / length).astype(np.float32)


def shaped_noise(rng: np.random.Generator, grid: FrameGrid, magnitude: np.ndarray, n: int) -> np.ndarray:
    """Noise whose short-time magnitude spectrum follows ``magnitude`` (1 = unit-variance white).

    Each frame gets uniform random phases, an inverse real FFT, a sine window; frames overlap by
    half, so the window's squares sum to one and the variance follows ``magnitude**2``.

    Shape:
        magnitude broadcastable to (F, K) of ``grid`` -> (n,) float32.
    """
    shape = (grid.n_frames, grid.hop + 1)
    mag = np.broadcast_to(np.asarray(magnitude, dtype=np.float32), shape)
    angle = rng.random(shape, dtype=np.float32) * np.float32(TWO_PI)
    spec = np.empty(shape, dtype=np.complex64)
    spec.real = mag * np.cos(angle)
    spec.imag = mag * np.sin(angle)
    length = 2 * grid.hop
    frames = sfft.irfft(spec, n=length, axis=1) * (np.float32(np.sqrt(length)) * _sine_window(length))
    out = np.zeros((grid.n_frames + 1, grid.hop), dtype=np.float32)
    out[:-1] += frames[:, : grid.hop]
    out[1:] += frames[:, grid.hop :]
    return out.ravel()[grid.hop : grid.hop + n]


def overlap_add(n: int, onsets: np.ndarray, grains: np.ndarray) -> np.ndarray:
    """Add grain i at sample onsets[i] (parts outside [0, n) are dropped).

    Shape:
        onsets (M,) int, grains (M, L) -> (n,) float64.
    """
    onsets = np.asarray(onsets, dtype=np.int64)
    if onsets.size == 0:
        return np.zeros(n)
    idx = onsets[:, None] + np.arange(grains.shape[1])[None, :]
    valid = (idx >= 0) & (idx < n)
    return np.bincount(idx[valid], weights=grains[valid], minlength=n)[:n]


def place(n: int, onsets: np.ndarray, gains: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Add ``gains[i] * template`` at sample onsets[i] (few events, long templates).

    Shape:
        onsets (M,), gains (M,), template (L,) -> (n,) float64.
    """
    out = np.zeros(n)
    for onset, gain in zip(np.asarray(onsets, dtype=np.int64), gains, strict=True):
        if 0 <= onset < n:
            seg = template[: n - onset]
            out[onset : onset + seg.size] += gain * seg
    return out


def one_pole_lowpass(x: np.ndarray, cutoff_hz: float, sample_rate: int, axis: int = -1) -> np.ndarray:
    """First-order low-pass ``y[n] = (1-a) x[n] + a y[n-1]``, a = exp(-2 pi fc / sr)."""
    a = float(np.exp(-TWO_PI * min(cutoff_hz, 0.49 * sample_rate) / sample_rate))
    return lfilter([1.0 - a], [1.0, -a], x, axis=axis)


def one_pole_highpass(x: np.ndarray, cutoff_hz: float, sample_rate: int, axis: int = -1) -> np.ndarray:
    """First-order high-pass: the input minus its one-pole low-pass."""
    return x - one_pole_lowpass(x, cutoff_hz, sample_rate, axis=axis)


def control_step(sample_rate: int) -> int:
    """Samples per control point (~2 ms) for envelopes and pitch curves."""
    return max(1, int(round(sample_rate / 500)))


def upsample(ctrl: np.ndarray, step: int, n: int) -> np.ndarray:
    """Linear interpolation of control values placed every ``step`` samples, float32.

    Shape:
        ctrl (C,), C >= n // step + 2 -> (n,).
    """
    ctrl = np.asarray(ctrl, dtype=np.float32)
    frac = np.arange(step, dtype=np.float32) / np.float32(step)
    count = n // step + 1
    base, slope = ctrl[:count], np.diff(ctrl[: count + 1])
    return (base[:, None] + slope[:, None] * frac[None, :]).ravel()[:n]


def control_times(n: int, sample_rate: int) -> tuple[int, np.ndarray]:
    """(step, times_s) of the control grid used by ``upsample`` (C = n // step + 2 points)."""
    step = control_step(sample_rate)
    return step, np.arange(n // step + 2, dtype=np.float32) * np.float32(step / sample_rate)


def value_noise(rng: np.random.Generator, times_s: np.ndarray, period_s: float) -> np.ndarray:
    """Smooth random curve in [0, 1]: random knots every ``period_s``, smoothstep-interpolated.

    Shape:
        times_s (T,) -> (T,) float32.
    """
    pos = np.asarray(times_s, dtype=np.float32) / np.float32(period_s)
    knots = rng.random(int(pos.max()) + 2, dtype=np.float32)
    i = pos.astype(np.int64)
    frac = pos - i
    w = frac * frac * (3.0 - 2.0 * frac)
    return knots[i] * (1.0 - w) + knots[i + 1] * w


def decay_env(t: np.ndarray, decay_s: float | np.ndarray) -> np.ndarray:
    """``exp(-t / decay_s)`` in float32."""
    return np.exp(-np.asarray(t, dtype=np.float32) / np.asarray(decay_s, dtype=np.float32))


def reverb_ir(rng: np.random.Generator, sample_rate: int, rt60_s: float, predelay_s: float) -> np.ndarray:
    """A diffuse room impulse response with unit energy.

    Exponentially decaying shaped noise whose high frequencies decay faster (air and wall
    absorption): RT60(f) = rt60_s / (1 + f / 3 kHz); the first ``predelay_s`` is silent.

    Shape:
        -> (L,) float32, L = predelay + 1.2 * rt60 seconds.
    """
    pre = int(predelay_s * sample_rate)
    n = int(1.2 * rt60_s * sample_rate) + 1
    grid = frame_grid(n, sample_rate)
    rt = rt60_s / (1.0 + grid.freqs_hz / 3000.0)  # (K,)
    mag = np.exp(-6.91 * grid.times_s[:, None] / rt[None, :])  # (F, K)
    tail = shaped_noise(rng, grid, mag, n)
    ir = np.concatenate([np.zeros(pre, np.float32), tail])
    return ir / np.float32(np.sqrt(np.sum(ir.astype(np.float64) ** 2)) + 1e-12)


def fade_edges(x: np.ndarray, sample_rate: int, fade_s: float = 0.003) -> np.ndarray:
    """Raised-cosine fade in and out over ``fade_s`` (no click at clip edges), in place."""
    m = min(int(fade_s * sample_rate), x.size // 2)
    if m > 0:
        ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(m) + 0.5) / m)).astype(x.dtype)
        x[:m] *= ramp
        x[-m:] *= ramp[::-1]
    return x
