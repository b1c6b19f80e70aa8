"""The sound families of the world: one seeded numpy generator per family.

Each generator maps a :class:`RenderContext` (length, rate, random generator, attribute levels u in
[0, 1]) to a waveform; :func:`render_audio` then sets the family-typical loudness, the loud/soft
offset and the near/far room, fades the edges and keeps the peak below 0.99. Attribute levels are
mapped onto physical ranges with :meth:`RenderContext.span`, so "low" vs "high" moves f0 and the
spectral centroid, "short" vs "long" the decay times, "dark" vs "bright" the spectral tilt,
"slow" vs "fast" the event rate, "near" vs "far" the level and the reverberation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
from scipy.signal import lfilter

from audiosds.world import dsp
from audiosds.world.captions import VOCABULARIES, Vocabulary

PEAK_MAX = 0.98  # strictly below the 0.99 guarantee, so float32 rounding cannot cross it


@dataclass(frozen=True)
class RenderContext:
    """What a generator may use.

    Attributes:
        n: number of samples to return.
        sample_rate: in Hz.
        rng: the clip's synthesis generator.
        levels: axis -> u in [0, 1] (below 0.5: low/dark/short/slow/soft/near).
    """

    n: int
    sample_rate: int
    rng: np.random.Generator
    levels: Mapping[str, float]

    @property
    def seconds(self) -> float:
        """Clip length in seconds."""
        return self.n / self.sample_rate

    def span(self, axis: str, lo: float, hi: float, log: bool = False) -> float:
        """Map the axis level onto [lo, hi], linearly or geometrically (lo at u = 0, hi at u = 1)."""
        u = self.levels[axis]
        return float(lo * (hi / lo) ** u) if log else float(lo + (hi - lo) * u)

    def samples(self, seconds: np.ndarray | float) -> np.ndarray:
        """Seconds -> integer sample indices."""
        return (np.asarray(seconds) * self.sample_rate).astype(np.int64)


Generator = Callable[[RenderContext], np.ndarray]


@dataclass(frozen=True)
class Family:
    """A sound family.

    Attributes:
        name: the family's key in ``FAMILIES``.
        attributes: the attribute axes it supports (keys of ``attributes.AXES``).
        generator: RenderContext -> waveform (n,).
        vocabulary: its caption vocabulary.
        level_db: family-typical RMS in dBFS before the loud/soft offset.
    """

    name: str
    attributes: tuple[str, ...]
    generator: Generator
    vocabulary: Vocabulary
    level_db: float


# ---------------------------------------------------------------- shared pieces


def _regular_onsets(rng: np.random.Generator, seconds: float, period_s: float, jitter: float) -> np.ndarray:
    """Roughly periodic event times in seconds; the first lands in the first 30 % of the clip."""
    start = rng.uniform(0.01, max(0.02, min(period_s, 0.3 * seconds)))
    k = np.arange(int(seconds / period_s) + 2)
    times = start + k * period_s + jitter * period_s * rng.uniform(-1.0, 1.0, k.size)
    times[0] = start
    return times[times < seconds - 0.005]


def _burst(
    rng: np.random.Generator, sr: int, decay_s: float, cutoff_hz: float, highpass: bool = False
) -> np.ndarray:
    """A short filtered noise burst (clicks, slaps, thuds), float64 (6 decay times long)."""
    n = max(int(6 * decay_s * sr), 2)
    x = dsp.uniform_noise(rng, n) * dsp.decay_env(dsp.time_axis(n, sr), decay_s)
    return dsp.one_pole_highpass(x, cutoff_hz, sr) if highpass else dsp.one_pole_lowpass(x, cutoff_hz, sr)


def _unit(x: np.ndarray) -> np.ndarray:
    """Scale to unit RMS (components are mixed at explicit relative levels)."""
    return x / (np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12)


def _steady_phase(freq_hz: float, n: int, sr: int) -> np.ndarray:
    """Phase of a constant frequency, wrapped in float64 then cast (exact for long clips)."""
    cycles = np.arange(n) * (freq_hz / sr)
    return ((cycles - np.floor(cycles)) * dsp.TWO_PI).astype(np.float32)


def _pink(freqs_hz: np.ndarray, exponent: float = -0.5) -> np.ndarray:
    """Amplitude spectrum (f / 1 kHz)^exponent with DC removed: -0.5 is pink, -1 brown, 0 white."""
    f = np.maximum(freqs_hz, 20.0)
    mag = np.exp(exponent * np.log(f / 1000.0)).astype(np.float32)
    mag[0] = 0.0
    return mag


def _lowpass_mag(freqs_hz: np.ndarray, cutoff_hz: np.ndarray | float, order: int = 1) -> np.ndarray:
    """Magnitude response of an order-``order`` Butterworth-like low-pass."""
    return 1.0 / np.sqrt(1.0 + (freqs_hz / cutoff_hz) ** (2 * order))


def _highpass_mag(freqs_hz: np.ndarray, cutoff_hz: float) -> np.ndarray:
    f2 = freqs_hz.astype(np.float32) ** 2
    return np.sqrt(f2 / (f2 + np.float32(cutoff_hz) ** 2))


SCALES: dict[str, tuple[int, ...]] = {
    "ionian": (0, 2, 4, 5, 7, 9, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "aeolian": (0, 2, 3, 5, 7, 8, 10),
    "major_pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "fanfare": (0, 4, 7),
}


@dataclass(frozen=True)
class _Melody:
    """Articulation of a monophonic melody (see ``_melody``)."""

    glide_s: float = 0.03  # portamento time constant between notes
    legato: float = 0.9  # sounding fraction of each note's duration
    rest_prob: float = 0.08
    vibrato: float = 0.01  # relative frequency deviation
    vibrato_hz: float = 5.0
    attack_s: float = 0.03
    scoop: float = 0.0  # relative flat start of each note (brass)


def _melody(
    c: RenderContext, base_hz: float, notes_per_s: float, scales: list[tuple[int, ...]], art: _Melody
) -> tuple[np.ndarray, np.ndarray]:
    """Frequency and amplitude curves of a melody walking on a scale (modal interchange: the scale
    changes from ``scales[0]`` to ``scales[-1]`` halfway).

    Shape:
        -> f_hz (n,), amp (n,) float32.
    """
    rng, seconds = c.rng, c.seconds
    step, tc = dsp.control_times(c.n, c.sample_rate)
    count = int(seconds * notes_per_s * 1.5) + 4
    durs = rng.choice(np.array([0.5, 1.0, 1.0, 1.0, 1.5, 2.0]), count) / notes_per_s
    onsets = rng.uniform(0.0, min(0.1 * seconds, 0.2)) + np.concatenate([[0.0], np.cumsum(durs)[:-1]])
    degree = np.clip(np.cumsum(rng.choice(np.array([-2, -1, -1, 1, 1, 2]), count)) + 2, -2, 10)
    semis = np.empty(count)
    for i, scale in enumerate((scales[0], scales[-1])):
        part = (onsets >= seconds / 2) if i else (onsets < seconds / 2)
        s = np.asarray(scale)
        semis[part] = s[degree[part] % s.size] + 12 * (degree[part] // s.size)
    rests = rng.random(count) < art.rest_prob
    rests[0] = False
    accents = rng.uniform(0.7, 1.0, count)
    idx = np.searchsorted(onsets, tc, side="right") - 1
    valid = idx >= 0
    idx = np.maximum(idx, 0)
    since = tc - onsets[idx]
    until = onsets[idx] + art.legato * durs[idx] - tc
    amp = (
        np.clip(since / art.attack_s, 0.0, 1.0)
        * np.clip(until / 0.03, 0.0, 1.0)
        * valid
        * ~rests[idx]
        * accents[idx]
    )
    ctrl_rate = c.sample_rate / step
    amp = lfilter([1 - np.exp(-1 / (0.006 * ctrl_rate))], [1, -np.exp(-1 / (0.006 * ctrl_rate))], amp)
    a_glide = np.exp(-1.0 / (art.glide_s * ctrl_rate))
    log_f = np.log(base_hz) + semis[idx] * (np.log(2.0) / 12.0)
    log_f = lfilter([1 - a_glide], [1, -a_glide], log_f, zi=[a_glide * log_f[0]])[0]
    vib = art.vibrato * np.clip((since - 0.12) / 0.3, 0.0, 1.0) * np.sin(dsp.TWO_PI * art.vibrato_hz * tc)
    scoop = -art.scoop * np.exp(-since / 0.04)
    f_ctrl = np.exp(log_f + vib + scoop)
    return dsp.upsample(f_ctrl, step, c.n), dsp.upsample(amp, step, c.n)


def _n_harmonics(f_max_hz: float, sr: int, cap: int) -> int:
    return int(max(1, min(cap, 0.45 * sr / f_max_hz)))


# ---------------------------------------------------------------- modal impacts


def _bell(c: RenderContext) -> np.ndarray:
    """Church-bell partials (hum, prime, tierce, quint, nominal, ...) with beating doublets."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    f0 = c.span("pitch", 150.0, 1500.0, log=True)
    ratios = np.array([0.5, 1.0, 1.19, 1.51, 2.0, 2.5, 2.67, 3.01, 4.17, 5.43, 6.8])
    ratios = ratios * (1.0 + 0.01 * rng.standard_normal(ratios.size))
    ratios[1] = 1.0
    r = np.concatenate([ratios, ratios[:6] * (1.0 + rng.uniform(0.001, 0.005, 6))])
    decays = c.span("decay", 0.25, 6.0, log=True) * r**-0.6 * rng.uniform(0.8, 1.2, r.size)
    amps = r ** -c.span("brightness", 2.2, 0.1) * rng.uniform(0.4, 1.0, r.size)
    amps[ratios.size :] *= rng.uniform(0.3, 0.8, 6)
    ring = dsp.modal(f0 * r, decays, amps, n, sr)
    times = [rng.uniform(0.01, 0.12 * c.seconds)]
    while rng.random() < 0.3 and times[-1] + 0.8 < c.seconds:
        times.append(times[-1] + rng.uniform(0.7, 1.6))
    onsets = c.samples(np.array(times))
    gains = np.concatenate([[1.0], rng.uniform(0.4, 0.9, len(times) - 1)])
    click = _burst(rng, sr, 0.001, c.span("brightness", 1500.0, 7000.0, log=True))
    return dsp.place(n, onsets, gains, ring) + dsp.place(n, onsets, 0.15 * gains, click)


def _metal(c: RenderContext) -> np.ndarray:
    """A struck metal plate or beam: 12 random inharmonic modes, one hit or two."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    f0 = c.span("pitch", 110.0, 1300.0, log=True)
    ratios = np.concatenate([[1.0], np.sort(np.exp(rng.uniform(np.log(1.25), np.log(11.0), 11)))])
    decays = c.span("decay", 0.1, 3.0, log=True) * ratios**-0.5 * rng.uniform(0.5, 1.5, ratios.size)
    amps = ratios ** -c.span("brightness", 1.8, 0.0) * rng.uniform(0.3, 1.0, ratios.size)
    ring = dsp.modal(f0 * ratios, decays, amps, n, sr)
    times = [rng.uniform(0.01, 0.1 * c.seconds)]
    if rng.random() < 0.35:
        times.append(times[0] + rng.uniform(0.15, 0.7))
    onsets = c.samples(np.array(times))
    gains = np.array([1.0, rng.uniform(0.3, 0.7)])[: len(times)]
    click = _burst(rng, sr, 0.0008, 2000.0, highpass=True)
    return dsp.place(n, onsets, gains, ring) + dsp.place(
        n, onsets, gains * c.span("brightness", 0.05, 0.4), click
    )


def _metal_pipes(c: RenderContext) -> np.ndarray:
    """Two or three free-free tubes dropped on concrete: each hits, then bounces ever faster."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    bar = np.array([1.0, 2.757, 5.404, 8.933, 13.344, 18.64])
    base = c.span("pitch", 130.0, 1100.0, log=True)
    d0 = c.span("decay", 0.12, 3.5, log=True)
    tilt = c.span("brightness", 1.5, 0.1)
    thud = _burst(rng, sr, 0.006, 500.0)
    out = np.zeros(n)
    for p in range(int(rng.integers(2, 4))):
        ratios = bar * (1.0 + 0.01 * rng.standard_normal(bar.size))
        decays = d0 * rng.uniform(0.7, 1.3) * ratios**-0.4
        amps = ratios**-tilt * rng.uniform(0.2, 1.0, bar.size)
        length = min(n, int(5 * decays.max() * sr) + 1)
        ring = dsp.modal(base * rng.uniform(0.75, 1.35) * ratios, decays, amps, length, sr)
        t = rng.uniform(0.01, 0.1 * c.seconds) if p == 0 else rng.uniform(0.05, 0.6) * c.seconds
        gap, gain = rng.uniform(0.1, 0.28), rng.uniform(0.6, 1.0)
        times, gains = [], []
        for _ in range(int(rng.integers(3, 7))):
            if t >= c.seconds:
                break
            times.append(t)
            gains.append(gain)
            t, gap, gain = t + gap, gap * rng.uniform(0.55, 0.8), gain * rng.uniform(0.45, 0.7)
        onsets, g = c.samples(np.array(times)), np.array(gains)
        out += dsp.place(n, onsets, g, ring) + dsp.place(n, onsets, 0.3 * g, thud)
    return out


def _pot(c: RenderContext) -> np.ndarray:
    """A cooking pot struck by a wooden spoon: shell modes plus a woody click, several hits."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    ratios = np.array([1.0, 1.47, 2.09, 2.56, 2.71, 3.22, 3.88, 4.51]) * (
        1.0 + 0.015 * rng.standard_normal(8)
    )
    ratios[0] = 1.0
    d0 = c.span("decay", 0.05, 1.5, log=True)
    decays = d0 * ratios**-0.5 * rng.uniform(0.7, 1.3, 8)
    amps = ratios**-0.7 * rng.uniform(0.3, 1.0, 8)
    ring = dsp.modal(
        c.span("pitch", 150.0, 900.0, log=True) * ratios, decays, amps, min(n, int(6 * d0 * sr) + 1), sr
    )
    spoon = dsp.modal(
        rng.uniform([1400.0, 3300.0], [2400.0, 4500.0]), [0.004, 0.003], [1.0, 0.5], int(0.03 * sr), sr
    )
    onsets = c.samples(_regular_onsets(rng, c.seconds, 1.0 / c.span("rate", 1.0, 9.0, log=True), 0.08))
    gains = rng.uniform(0.6, 1.0, onsets.size)
    return dsp.place(n, onsets, gains, ring) + dsp.place(n, onsets, 0.5 * gains, spoon)


def _wood(c: RenderContext) -> np.ndarray:
    """Knocks on wood: three heavily damped modes and a click, in a loose rhythm."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    f1 = c.span("pitch", 250.0, 2200.0, log=True)
    d = c.span("decay", 0.012, 0.15, log=True)
    freqs = f1 * np.array([1.0, rng.uniform(2.6, 3.1), rng.uniform(4.8, 6.0)])
    amps = np.array([1.0, rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.4)])
    length = min(n, int(6 * d * sr) + 1)
    knock = dsp.modal(freqs, d * np.array([1.0, 0.55, 0.35]), amps, length, sr)
    click = _burst(rng, sr, 0.0007, 4000.0)
    times = _regular_onsets(rng, c.seconds, 1.0 / c.span("rate", 1.2, 9.0, log=True), 0.1)
    keep = rng.random(times.size) > 0.2
    keep[0] = True
    onsets = c.samples(times[keep])
    gains = rng.uniform(0.6, 1.0, onsets.size)
    return dsp.place(n, onsets, gains, knock) + dsp.place(n, onsets, 0.3 * gains, click)


def _glass_clink(c: RenderContext) -> np.ndarray:
    """Two glasses tapped or clinked: high inharmonic modes with long-ish rings."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    ratios = np.array([1.0, 2.32, 4.25, 6.63, 9.38]) * (1.0 + 0.01 * rng.standard_normal(5))
    ratios[0] = 1.0
    f1 = c.span("pitch", 700.0, 3600.0, log=True)
    d0 = c.span("decay", 0.08, 2.2, log=True)
    length = min(n, int(5 * d0 * sr) + 1)
    glasses = [
        dsp.modal(f1 * k * ratios, d0 * ratios**-0.6, ratios**-1.0 * rng.uniform(0.4, 1.0, 5), length, sr)
        for k in (1.0, rng.uniform(1.08, 1.35))
    ]
    onsets = c.samples(_regular_onsets(rng, c.seconds, 1.0 / c.span("rate", 0.8, 7.0, log=True), 0.15))
    which = rng.random(onsets.size) < 0.5
    gains = rng.uniform(0.5, 1.0, onsets.size)
    click = _burst(rng, sr, 0.0005, 3000.0, highpass=True)
    return (
        dsp.place(n, onsets[which], gains[which], glasses[0])
        + dsp.place(n, onsets[~which], gains[~which], glasses[1])
        + dsp.place(n, onsets, 0.2 * gains, click)
    )


def _glass_break(c: RenderContext) -> np.ndarray:
    """Glass breaking: a bright crash, a shower of tiny high inharmonic tinkles, a few larger shards."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    t0 = rng.uniform(0.01, min(0.15 * c.seconds, 0.3))
    crash = _burst(rng, sr, rng.uniform(0.015, 0.05), 1500.0, highpass=True)
    crash_times = [t0] + ([t0 + rng.uniform(0.05, 0.3)] if rng.random() < 0.3 else [])
    out = dsp.place(n, c.samples(np.array(crash_times)), np.array([1.0, 0.5])[: len(crash_times)], crash)
    tau = c.span("decay", 0.1, 1.3, log=True)
    m = int(rng.uniform(40, 80) * (1.0 + 2.0 * tau))
    times = t0 + 0.003 + rng.exponential(tau, m)
    times = times[times < c.seconds]
    m = times.size
    freqs = np.minimum(
        c.span("pitch", 1800.0, 6500.0, log=True) * 2.0 ** rng.uniform(-0.8, 0.8, m), 0.45 * sr
    )
    tg = dsp.time_axis(int(0.04 * sr), sr)[None, :]
    amps = np.exp(-(times - t0) / (1.5 * tau)) * rng.uniform(0.1, 1.0, m) ** 2
    f32 = freqs.astype(np.float32)[:, None]
    second = np.minimum(f32 * rng.uniform(1.5, 2.6, (m, 1)).astype(np.float32), np.float32(0.47 * sr))
    grains = (amps.astype(np.float32)[:, None] * dsp.decay_env(tg, rng.uniform(0.004, 0.03, (m, 1)))) * (
        np.sin(np.float32(dsp.TWO_PI) * f32 * tg) + 0.5 * np.sin(np.float32(dsp.TWO_PI) * second * tg)
    )
    out += 0.6 * dsp.overlap_add(n, c.samples(times), grains)
    shard_ratios = np.array([1.0, 2.32, 4.25])
    for t in t0 + rng.exponential(0.5 * tau, int(rng.integers(2, 6))):
        if t < c.seconds:
            f = rng.uniform(1200.0, 3000.0)
            shard = dsp.modal(
                f * shard_ratios,
                rng.uniform(0.03, 0.15) * shard_ratios**-0.5,
                [1.0, 0.5, 0.3],
                int(0.5 * sr),
                sr,
            )
            out += dsp.place(n, c.samples(np.array([t])), np.array([rng.uniform(0.1, 0.4)]), shard)
    return out


def _clock(c: RenderContext) -> np.ndarray:
    """Tick-tock of a pendulum clock: two resonant clicks alternating at a steady period."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    fb = c.span("pitch", 900.0, 4500.0, log=True)
    length = int(0.08 * sr)

    def tick(scale: float) -> np.ndarray:
        freqs = np.array([fb * scale, fb * scale * 1.53, fb * scale * 2.31, rng.uniform(150.0, 300.0)])
        decays = np.array([0.012, 0.008, 0.005, 0.03]) * rng.uniform(0.7, 1.3, 4)
        return dsp.modal(freqs, decays, [1.0, 0.6, 0.4, 0.3], length, sr)

    tick_a, tick_b = tick(1.0), tick(rng.uniform(0.75, 0.88))
    period = c.span("rate", 1.3, 0.25, log=True)
    onsets = c.samples(_regular_onsets(rng, c.seconds, period, 0.01))
    gains = rng.uniform(0.85, 1.0, onsets.size)
    click = _burst(rng, sr, 0.0004, 6000.0)
    return (
        dsp.place(n, onsets[::2], gains[::2], tick_a)
        + dsp.place(n, onsets[1::2], gains[1::2], tick_b)
        + dsp.place(n, onsets, 0.25 * gains, click)
    )


def _bongo(c: RenderContext) -> np.ndarray:
    """Bongo beats: two tuned membranes (modes 1, 1.59, 2.14 with a pitch drop at the attack)
    played on a repeating 8-step pattern with accents."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    scale = c.span("pitch", 0.6, 1.6, log=True)
    d = c.span("decay", 0.04, 0.45, log=True)
    length = min(n, int(6 * d * sr) + 1)
    t = dsp.time_axis(length, sr)
    warp = t + np.float32(0.12 * 0.012) * (1.0 - np.exp(-t / np.float32(0.012)))  # pitch glide down

    def drum(f: float) -> np.ndarray:
        y = np.zeros(length, dtype=np.float32)
        for ratio, amp, dk in ((1.0, 1.0, 1.0), (1.59, 0.35, 0.6), (2.14, 0.2, 0.4)):
            if f * ratio < 0.45 * sr:
                y += amp * np.sin(np.float32(dsp.TWO_PI * f * ratio) * warp) * dsp.decay_env(t, d * dk)
        slap = _burst(rng, sr, 0.002, 2500.0)[:length]
        y[: slap.size] += 0.3 * slap
        return y

    high, low = drum(rng.uniform(400.0, 480.0) * scale), drum(rng.uniform(240.0, 290.0) * scale)
    steps_per_s = c.span("rate", 2.2, 10.0, log=True)
    pattern = rng.random(8) < 0.7
    pattern[[0, 4]] = True
    drum_of = rng.random(8) < 0.5
    k = np.arange(int(c.seconds * steps_per_s) + 1)
    hit = pattern[k % 8] ^ (rng.random(k.size) < 0.1)
    hit[0] = True  # a short clip at a slow rate still gets its downbeat
    is_high = drum_of[k % 8]
    times = rng.uniform(0.01, 0.1) + k / steps_per_s + rng.uniform(-0.004, 0.004, k.size)
    hit &= times < c.seconds
    gains = np.where(k % 4 == 0, 1.0, rng.uniform(0.5, 0.85, k.size))
    onsets = c.samples(times)
    sel_h, sel_l = hit & is_high, hit & ~is_high
    return dsp.place(n, onsets[sel_h], gains[sel_h], high) + dsp.place(n, onsets[sel_l], gains[sel_l], low)


def _kick(c: RenderContext) -> np.ndarray:
    """Kick drum: a sine swept down exponentially onto f_end, a beater click, optional drive."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    f_end = c.span("pitch", 38.0, 110.0, log=True)
    f_start, tau = f_end * rng.uniform(2.5, 4.5), rng.uniform(0.012, 0.035)
    d = c.span("decay", 0.07, 0.8, log=True)
    length = min(n, int(6 * d * sr) + 1)
    t = dsp.time_axis(length, sr)
    phase = np.float32(dsp.TWO_PI) * (
        f_end * t + np.float32((f_start - f_end) * tau) * (1.0 - np.exp(-t / np.float32(tau)))
    )
    drive = c.span("brightness", 1.0, 4.0)
    body = np.tanh(drive * np.sin(phase) * dsp.decay_env(t, d)) / np.tanh(drive)
    click = _burst(rng, sr, c.span("brightness", 0.001, 0.004), c.span("brightness", 800.0, 8000.0, log=True))
    click = click[:length]
    body[: click.size] += c.span("brightness", 0.03, 1.0) * click
    times = _regular_onsets(rng, c.seconds, c.span("rate", 1.4, 0.2, log=True), 0.02)
    onsets = c.samples(times)
    return dsp.place(n, onsets, rng.uniform(0.8, 1.0, onsets.size), body)


def _snare(c: RenderContext) -> np.ndarray:
    """Snare drum: shell modes plus wire noise high-passed above the shell pitch, on a backbeat or a roll."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    f = c.span("pitch", 140.0, 400.0, log=True)
    dn = c.span("decay", 0.04, 0.45, log=True)
    length = min(n, int(6 * dn * sr) + 1)
    body = dsp.modal(
        f * np.array([1.0, 1.59, 2.14]),
        (0.5 + dn) * np.array([0.08, 0.05, 0.03]),
        [1.0, 0.5, 0.25],
        length,
        sr,
    )
    wires = dsp.uniform_noise(rng, length) * dsp.decay_env(dsp.time_axis(length, sr), dn)
    wires = dsp.one_pole_highpass(dsp.one_pole_highpass(wires, 5.0 * f, sr), 5.0 * f, sr)
    wires = dsp.one_pole_lowpass(wires, c.span("brightness", 1200.0, 9000.0, log=True), sr)
    hit = _unit(body) + rng.uniform(0.8, 1.3) * _unit(wires)
    times = _regular_onsets(rng, c.seconds, c.span("rate", 1.0, 0.12, log=True), 0.05)
    gains = np.where(np.arange(times.size) % 2 == 0, 1.0, rng.uniform(0.4, 0.9, times.size))
    return dsp.place(n, c.samples(times), gains, hit)


def _footsteps(c: RenderContext) -> np.ndarray:
    """Footsteps: heel and toe noise bursts with a low body thud; the surface sets the brightness."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    times = _regular_onsets(rng, c.seconds, c.span("rate", 0.85, 0.27, log=True), 0.06)
    m, length = times.size, int(0.25 * sr)
    tg = dsp.time_axis(length, sr)[None, :]
    toe_at = rng.uniform(0.05, 0.1, (m, 1)).astype(np.float32)
    toe = np.where(tg >= toe_at, dsp.decay_env(np.maximum(tg - toe_at, 0.0), 0.02), 0.0)
    grains = dsp.uniform_noise(rng, (m, length)) * (dsp.decay_env(tg, 0.012) + 0.6 * toe)
    grains = dsp.one_pole_lowpass(grains, c.span("brightness", 350.0, 5000.0, log=True), sr, axis=1)
    thud = dsp.modal([rng.uniform(70.0, 110.0)], [0.035], [1.5], length, sr)
    gains = np.where(np.arange(m) % 2 == 0, 1.0, 0.85) * rng.uniform(0.8, 1.0, m)
    return dsp.overlap_add(n, c.samples(times), gains[:, None] * (grains + thud[None, :]))


# ---------------------------------------------------------------- tones


def _plucked_note(
    f0: float,
    decay_s: float,
    alpha: float,
    tilt: float,
    rng: np.random.Generator,
    length: int,
    sr: int,
    cap: int,
) -> np.ndarray:
    """A plucked string: harmonics k with amplitude |sin(pi k beta)| / k^tilt (pluck position beta),
    decay decay_s / (1 + alpha (k - 1)) and slight stiffness inharmonicity."""
    k = np.arange(1, _n_harmonics(f0, sr, cap) + 1)
    freqs = k * f0 * np.sqrt(1.0 + rng.uniform(0.0, 2e-4) * k**2)
    amps = np.abs(np.sin(np.pi * k * rng.uniform(0.1, 0.3))) / k**tilt
    return dsp.modal(freqs, decay_s / (1.0 + alpha * (k - 1)), amps, length, sr)


def _bass(c: RenderContext) -> np.ndarray:
    """Bass notes: one to three low plucked or synth notes with a soft attack and some drive."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    f0 = c.span("pitch", 32.0, 140.0, log=True)
    d = c.span("decay", 0.2, 3.0, log=True)
    tilt, alpha = c.span("brightness", 2.4, 0.8), c.span("brightness", 0.8, 0.15)
    count = 1 + int(rng.binomial(2, 0.35))
    start = rng.uniform(0.01, 0.1 * c.seconds)
    onsets = c.samples(start + np.arange(count) * (c.seconds - start) / count)
    ends = np.minimum(np.append(onsets[1:] + int(0.02 * sr), n), n)
    semis = np.concatenate([[0], rng.choice(np.array([7, 12, -5, 5, 3]), count - 1)])
    out = np.zeros(n)
    ramp = np.minimum(dsp.time_axis(n, sr) / np.float32(rng.uniform(0.004, 0.012)), 1.0)
    for on, end, s in zip(onsets, ends, semis, strict=True):
        note = _plucked_note(f0 * 2.0 ** (s / 12.0), d, alpha, tilt, rng, end - on, sr, 40)
        out[on:end] += note * ramp[: end - on]
    drive = c.span("brightness", 0.5, 2.5)
    return np.tanh(drive * out / (np.abs(out).max() + 1e-9))


def _pluck(c: RenderContext) -> np.ndarray:
    """Plucked strings (guitar, harp): a melody or arpeggio of plucked notes, let ring or damped."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    base = c.span("pitch", 80.0, 700.0, log=True)
    d = c.span("decay", 0.12, 3.0, log=True)
    tilt, alpha = c.span("brightness", 1.7, 0.6), c.span("brightness", 1.0, 0.12)
    times = _regular_onsets(rng, c.seconds, 1.0 / c.span("rate", 1.0, 9.0, log=True), 0.05)
    onsets = c.samples(times)
    scale = np.asarray(
        SCALES[("major_pentatonic", "minor_pentatonic", "ionian", "dorian")[int(rng.integers(4))]]
    )
    degree = np.clip(np.cumsum(rng.choice(np.array([-2, -1, 1, 2]), onsets.size)) + 2, 0, 12)
    semis = scale[degree % scale.size] + 12 * (degree // scale.size)
    damped = rng.random() < 0.5
    ring = min(n, int(5 * d * sr) + 1)
    out = np.zeros(n)
    for i, (on, s) in enumerate(zip(onsets, semis, strict=True)):
        length = min(n - on, ring)
        if damped and i + 1 < onsets.size:
            length = min(length, onsets[i + 1] - on + int(0.03 * sr))
        note = _plucked_note(base * 2.0 ** (s / 12.0), d, alpha, tilt, rng, length, sr, 24)
        out[on : on + length] += rng.uniform(0.7, 1.0) * dsp.fade_edges(note, sr, 0.0005)
    return out


def _fm(c: RenderContext) -> np.ndarray:
    """Two-operator FM notes ``sin(2 pi f t + I(t) sin(2 pi r f t))`` with a decaying index."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    fc0 = c.span("pitch", 100.0, 900.0, log=True)
    ratio = float(rng.choice(np.array([0.5, 1.0, 2.0, 3.0, 4.0, 1.5, 3.5, 1.414, 2.76])))
    index0 = c.span("brightness", 0.3, 6.0, log=True)
    d = c.span("decay", 0.12, 3.0, log=True)
    count = 1 + int(rng.integers(0, 4))
    start = rng.uniform(0.01, 0.1 * c.seconds)
    onsets = c.samples(start + np.arange(count) * (c.seconds - start) / count)
    out = np.zeros(n)
    for on in onsets:
        f = fc0 * 2.0 ** (rng.choice(np.array([0, 3, 5, 7, 12, -5])) / 12.0)
        index = min(index0, max(0.0, (0.45 * sr - f) / (ratio * f) - 2.0))
        length = min(n - on, int(7 * d * sr) + 1)
        t = dsp.time_axis(length, sr)
        mod = np.sin(_steady_phase(ratio * f, length, sr))
        idx = np.float32(index) * (dsp.decay_env(t, 0.4 * d) + np.float32(0.1))
        env = dsp.decay_env(t, d) * np.minimum(t / np.float32(0.004), 1.0)
        out[on : on + length] += (
            rng.uniform(0.7, 1.0) * env * np.sin(_steady_phase(f, length, sr) + idx * mod)
        )
    return out


def _organ(c: RenderContext) -> np.ndarray:
    """Drawbar organ chords: sustained sine partials at 1/2, 1, 3/2, 2, 3, 4, 5, 6, 8 x f, tremolo."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    root = c.span("pitch", 65.0, 520.0, log=True)
    chords = ((0, 4, 7), (0, 3, 7), (0, 7, 12), (0, 4, 7, 11), (0, 5, 7), (0, 3, 7, 10))
    bars = np.array([0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0])
    levels = np.concatenate(
        [
            rng.uniform([0.2, 1.0, 0.0, 0.3], [0.8, 1.0, 0.6, 0.9]),
            c.span("brightness", 0.03, 0.8) * rng.uniform(0.3, 1.0, 5),
        ]
    )
    bounds = [0, n]
    if c.seconds > 1.0 and rng.random() < 0.4:
        bounds = [0, int(rng.uniform(0.4, 0.7) * n), n]
    out = np.zeros(n)
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        notes = root * 2.0 ** (np.asarray(chords[int(rng.integers(len(chords)))]) / 12.0)
        freqs = (notes[:, None] * bars[None, :]).ravel()
        amps = np.tile(levels, notes.size) / np.sqrt(notes.size)
        seg = dsp.modal(freqs, np.inf, amps, hi - lo, sr, rng.uniform(0, dsp.TWO_PI, freqs.size))
        out[lo:hi] = dsp.fade_edges(seg, sr, 0.015)
    t = dsp.time_axis(n, sr)
    return out * (1.0 + rng.uniform(0.0, 0.2) * np.sin(np.float32(dsp.TWO_PI * rng.uniform(5.0, 7.0)) * t))


def _saxophone(c: RenderContext) -> np.ndarray:
    """A reed tone (bright harmonic series, soft-clipped) with delayed vibrato, playing a legato
    melody on a mode that switches halfway (modal interchange)."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    names = ("dorian", "mixolydian", "aeolian", "lydian", "phrygian")
    first, second = rng.choice(len(names), 2, replace=False)
    art = _Melody(glide_s=0.025, legato=0.92, vibrato=0.012, vibrato_hz=rng.uniform(4.5, 6.0), attack_s=0.04)
    f, amp = _melody(
        c,
        c.span("pitch", 98.0, 400.0, log=True),
        c.span("rate", 1.3, 7.0, log=True),
        [SCALES[names[first]], SCALES[names[second]]],
        art,
    )
    rolloff = c.span("brightness", 0.5, 0.88) * (0.8 + 0.2 * amp)
    tone = dsp.harmonic_tone(dsp.phase_from_freq(f, sr), rolloff, _n_harmonics(float(f.max()), sr, 60))
    tone = np.tanh(c.span("brightness", 1.0, 2.5) * tone)
    noise = dsp.uniform_noise(rng, n + 1)
    return (tone + 0.05 * np.diff(noise)) * amp


def _flute(c: RenderContext) -> np.ndarray:
    """A flute: nearly sinusoidal tone with breath noise and gentle vibrato, playing a tune."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    scale = SCALES[("ionian", "major_pentatonic", "dorian", "aeolian")[int(rng.integers(4))]]
    art = _Melody(glide_s=0.02, legato=0.85, vibrato=0.008, vibrato_hz=rng.uniform(4.5, 5.5), attack_s=0.05)
    f, amp = _melody(
        c, c.span("pitch", 250.0, 1000.0, log=True), c.span("rate", 1.0, 6.0, log=True), [scale], art
    )
    rolloff = c.span("brightness", 0.1, 0.45)
    tone = dsp.harmonic_tone(dsp.phase_from_freq(f, sr), rolloff, _n_harmonics(float(f.max()), sr, 12))
    breath = np.diff(dsp.uniform_noise(rng, n + 1))
    return (tone + c.span("brightness", 0.06, 0.14) * breath) * amp


def _whistle(c: RenderContext) -> np.ndarray:
    """Human whistling: an almost pure sine gliding between notes, a little breath."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    scale = SCALES[("ionian", "major_pentatonic", "mixolydian")[int(rng.integers(3))]]
    art = _Melody(glide_s=0.05, legato=0.9, vibrato=rng.uniform(0.0, 0.01), vibrato_hz=6.0, attack_s=0.03)
    base = min(c.span("pitch", 650.0, 2600.0, log=True), 0.12 * sr)
    f, amp = _melody(c, base, c.span("rate", 1.5, 8.0, log=True), [scale], art)
    tone = dsp.harmonic_tone(dsp.phase_from_freq(f, sr), 0.06, _n_harmonics(float(f.max()), sr, 3))
    return (tone + 0.03 * np.diff(dsp.uniform_noise(rng, n + 1))) * amp


def _brass(c: RenderContext) -> np.ndarray:
    """Brass: a harmonic series that brightens with loudness, slow attack, a scoop into each note."""
    rng, sr = c.rng, c.sample_rate
    scale = SCALES[("fanfare", "major_pentatonic", "mixolydian")[int(rng.integers(3))]]
    art = _Melody(
        glide_s=0.02, legato=0.9, vibrato=0.004, vibrato_hz=5.0, attack_s=rng.uniform(0.04, 0.09), scoop=0.04
    )
    f, amp = _melody(
        c, c.span("pitch", 80.0, 480.0, log=True), c.span("rate", 0.8, 5.0, log=True), [scale], art
    )
    r_max = c.span("brightness", 0.55, 0.93)
    rolloff = 0.3 + (r_max - 0.3) * amp**1.5
    tone = dsp.harmonic_tone(dsp.phase_from_freq(f, sr), rolloff, _n_harmonics(float(f.max()), sr, 60))
    return np.tanh(1.5 * tone) * amp


def _siren(c: RenderContext) -> np.ndarray:
    """A siren: a square-ish tone whose pitch wails up and down (slow wail or fast yelp)."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    fc = c.span("pitch", 380.0, 1600.0, log=True)
    depth = rng.uniform(0.5, 1.0)
    step, tc = dsp.control_times(n, sr)
    lfo = 0.5 - 0.5 * np.cos(
        dsp.TWO_PI * c.span("rate", 0.25, 6.0, log=True) * tc + rng.uniform(0, dsp.TWO_PI)
    )
    f = dsp.upsample(fc * 2.0 ** (depth * (lfo - 0.5)), step, n)
    k = (_n_harmonics(fc * 2.0 ** (depth / 2), sr, 40) + 1) // 2  # odd harmonics 1, 3, .., 2k-1
    return dsp.harmonic_tone(dsp.phase_from_freq(f, sr), c.span("brightness", 0.15, 0.85), k, odd=True)


def _sweep(c: RenderContext) -> np.ndarray:
    """Exponential frequency sweeps, up or down, repeating at the sweep rate."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    fc = c.span("pitch", 150.0, 2500.0, log=True)
    ratio = rng.uniform(4.0, 16.0)
    lo, hi = fc / np.sqrt(ratio), min(fc * np.sqrt(ratio), 0.4 * sr)
    step, tc = dsp.control_times(n, sr)
    pos = np.mod(tc * c.span("rate", 0.35, 6.0, log=True) + rng.uniform(), 1.0)
    if rng.random() < 0.5:
        pos = 1.0 - pos
    f = dsp.upsample(lo * (hi / lo) ** pos, step, n)
    return dsp.harmonic_stack(dsp.phase_from_freq(f, sr), f, c.span("brightness", 0.0, 0.8), 8, sr)


def _engine(c: RenderContext) -> np.ndarray:
    """An engine: a buzzy harmonic series at the firing frequency with a half-order lope and rumble."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    fe = c.span("pitch", 22.0, 140.0, log=True)
    step, tc = dsp.control_times(n, sr)
    f = dsp.upsample(fe * (1.0 + 0.03 * (dsp.value_noise(rng, tc, 0.6) - 0.5)), step, n)
    tone = dsp.harmonic_tone(
        dsp.phase_from_freq(f, sr), c.span("brightness", 0.55, 0.93), _n_harmonics(1.05 * fe, sr, 200)
    )
    lope = 1.0 + 0.35 * np.sin(dsp.phase_from_freq(0.5 * f, sr, rng.uniform(0, dsp.TWO_PI)))
    grid = dsp.frame_grid(n, sr)
    rumble = dsp.shaped_noise(
        rng, grid, (_pink(grid.freqs_hz) * _lowpass_mag(grid.freqs_hz, 400.0, 2))[None, :], n
    )
    return tone * lope + 0.2 * _unit(rumble)


def _hum(c: RenderContext) -> np.ndarray:
    """Mains hum or transformer buzz at 50/60 Hz (low) or twice that (high)."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    f0 = float(rng.choice(np.array([50.0, 60.0]))) * (1.0 if c.levels["pitch"] < 0.5 else 2.0)
    f0 *= 1.0 + 0.002 * rng.standard_normal()
    phase = _steady_phase(f0, n, sr)
    k = _n_harmonics(f0, sr, 80)
    rolloff = c.span("brightness", 0.25, 0.92)
    tone = 0.6 * dsp.harmonic_tone(phase, rolloff, k) + 0.4 * dsp.harmonic_tone(
        phase, rolloff, k // 2, odd=True
    )
    drive = c.span("brightness", 0.5, 3.0)
    t = dsp.time_axis(n, sr)
    wobble = 1.0 + 0.05 * np.sin(np.float32(dsp.TWO_PI * rng.uniform(0.1, 0.5)) * t)
    return np.tanh(drive * tone) * wobble + 0.01 * dsp.uniform_noise(rng, n)


# ---------------------------------------------------------------- textures


def _chirp_grains(
    tg: np.ndarray, f_start: np.ndarray, f_end: np.ndarray, dur: np.ndarray, sr: int
) -> np.ndarray:
    """Linear chirps from f_start to f_end over dur seconds under a sin^2 window.

    Shape:
        tg (1, L), f_start/f_end/dur (M, 1) -> (M, L) float32.
    """
    sweep = (f_end - f_start) / (2.0 * dur)
    phase = np.float32(dsp.TWO_PI) * (f_start * tg + sweep * tg * tg)
    inside = tg < dur
    window = np.sin(np.float32(np.pi) * np.minimum(tg / dur, 1.0)) ** 2
    return np.where(inside, window * np.sin(phase), 0.0).astype(np.float32)


def _rain(c: RenderContext) -> np.ndarray:
    """Rain: a hissing bed plus droplets (tiny rising bubble chirps); the rate sets the drop density."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    density = c.span("rate", 8.0, 500.0, log=True)
    grid = dsp.frame_grid(n, sr)
    tilt = c.span("brightness", -1.0, 0.2)
    bed_mag = _pink(grid.freqs_hz, tilt) * _highpass_mag(grid.freqs_hz, 300.0)
    bed = dsp.shaped_noise(rng, grid, bed_mag[None, :], n)
    m = max(1, int(rng.poisson(density * c.seconds)))
    times = rng.uniform(0.0, c.seconds, m)
    f0 = (np.exp(rng.uniform(np.log(1200.0), np.log(4500.0), (m, 1))) * 2.0**tilt).astype(np.float32)
    f0 = np.minimum(f0, np.float32(0.3 * sr))
    dur = rng.uniform(0.004, 0.012, (m, 1)).astype(np.float32)
    tg = dsp.time_axis(int(0.012 * sr), sr)[None, :]
    grains = _chirp_grains(tg, f0, f0 * rng.uniform(1.2, 1.6, (m, 1)).astype(np.float32), dur, sr)
    grains *= (rng.uniform(0.05, 1.0, (m, 1)) ** 2).astype(np.float32)
    drops = dsp.overlap_add(n, c.samples(times), grains)
    heavy = c.levels["rate"]
    return (0.2 + 0.8 * heavy) * _unit(bed) + (1.2 - 0.6 * heavy) * _unit(drops)


def _fire(c: RenderContext) -> np.ndarray:
    """A fire: a low roar, clustered broadband crackles and a few resonant pops."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    density = c.span("rate", 5.0, 120.0, log=True)
    centers = rng.uniform(0.0, c.seconds, max(1, int(rng.poisson(density * c.seconds / 3.0))))
    per = rng.integers(1, 6, centers.size)
    times = np.repeat(centers, per) + rng.exponential(0.01, int(per.sum()))
    m, length = times.size, int(0.004 * sr)
    tg = dsp.time_axis(length, sr)[None, :]
    grains = dsp.uniform_noise(rng, (m, length)) * dsp.decay_env(tg, rng.uniform(0.0003, 0.0012, (m, 1)))
    grains = dsp.one_pole_lowpass(grains, c.span("brightness", 1500.0, 9000.0, log=True), sr, axis=1)
    crackle = dsp.overlap_add(n, c.samples(times), grains * rng.uniform(0.1, 1.0, (m, 1)) ** 2)
    pops_t = rng.uniform(0.0, c.seconds, max(1, int(rng.poisson(density * c.seconds / 10.0))))
    pop_len = int(0.06 * sr)
    pop_f = rng.uniform(300.0, 1500.0, (pops_t.size, 1)).astype(np.float32)
    tp = dsp.time_axis(pop_len, sr)[None, :]
    pops = np.sin(np.float32(dsp.TWO_PI) * pop_f * tp) * dsp.decay_env(
        tp, rng.uniform(0.005, 0.02, (pops_t.size, 1))
    )
    pops = dsp.overlap_add(n, c.samples(pops_t), pops * rng.uniform(0.2, 1.0, (pops_t.size, 1)))
    grid = dsp.frame_grid(n, sr)
    flicker = 0.5 + dsp.value_noise(rng, grid.times_s, 0.3)
    roar_mag = _pink(grid.freqs_hz, -0.5) * _lowpass_mag(grid.freqs_hz, 300.0, 2)
    hiss_mag = (
        0.15 * _pink(grid.freqs_hz, 0.0) * _highpass_mag(grid.freqs_hz, c.span("brightness", 4000.0, 1500.0))
    )
    bed = dsp.shaped_noise(rng, grid, flicker[:, None] * (roar_mag + hiss_mag)[None, :], n)
    return _unit(bed) + 0.7 * _unit(crackle) + 0.3 * _unit(pops)


def _wind(c: RenderContext) -> np.ndarray:
    """Wind in leaves: band noise swelling with each gust (gusts come at the rate) and rising in pitch
    with it, a faint howl, and crackly leaf rustles whose density follows the gusts."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    grid = dsp.frame_grid(n, sr)
    period = c.span("rate", 1.8, 0.25, log=True)
    centres = _regular_onsets(rng, c.seconds + period, period, 0.3) - 0.5 * period
    bumps = np.exp(-0.5 * ((grid.times_s[:, None] - centres[None, :]) / (0.3 * period)) ** 2)
    gust = bumps @ rng.uniform(0.4, 1.0, centres.size)
    gust = 0.08 + 0.92 * gust / gust.max()  # (F,)
    fc = c.span("brightness", 220.0, 1500.0, log=True) * 2.0 ** (1.2 * (gust - 0.5))
    band = np.log2(np.maximum(grid.freqs_hz[None, :], 20.0) / fc[:, None])  # (F, K)
    howl = np.log2(np.maximum(grid.freqs_hz[None, :], 20.0) / (rng.uniform(1.8, 3.0) * fc[:, None]))
    mag = gust[:, None] * (np.exp(-0.5 * (band / 1.1) ** 2) + 0.4 * np.exp(-0.5 * (howl / 0.06) ** 2))
    air = dsp.shaped_noise(rng, grid, mag, n)
    cand = rng.uniform(0.0, c.seconds, int(rng.poisson(250.0 * c.seconds)) + 1)
    g_at = np.interp(cand, grid.times_s, gust)
    times = cand[rng.random(cand.size) < g_at]
    length = int(0.006 * sr)
    tg = dsp.time_axis(length, sr)[None, :]
    grains = dsp.uniform_noise(rng, (times.size, length)) * dsp.decay_env(tg, 0.0015)
    grains *= rng.uniform(0.0, 1.0, (times.size, 1)) ** 2
    leaves = np.diff(dsp.overlap_add(n + 1, c.samples(times), grains))
    return _unit(air) + 0.4 * _unit(leaves)


def _waves(c: RenderContext) -> np.ndarray:
    """Waves on a rocky shore: a low swell rising before each crash, a bright broadband crash, and a
    fizzing wash that recedes; the rate sets the wave period."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    period = c.span("rate", 6.0, 1.4, log=True)
    first = rng.uniform(0.05, max(0.1, min(0.7 * c.seconds, period)))
    tc = first + period * np.cumsum(
        np.concatenate([[-rng.uniform(0.8, 1.2), 1.0], rng.uniform(0.8, 1.25, int(c.seconds / period) + 1)])
    )
    tc[1] = first
    tc = np.sort(tc)
    grid = dsp.frame_grid(n, sr)
    dt = grid.times_s[:, None] - tc[None, :]  # (F, C)
    dc = min(period, 4.0) * rng.uniform(0.35, 0.6, tc.size)
    after = np.maximum(dt, 0.0)
    crash = np.where(dt >= 0.0, (1.0 - np.exp(-after / 0.06)) * np.exp(-after / dc), 0.0).sum(1)
    wash = np.where(dt >= 0.0, (1.0 - np.exp(-after / 0.2)) * np.exp(-after / (2.0 * dc)), 0.0).sum(1)
    swell = np.exp(-0.5 * ((dt + 0.35 * period) / (0.2 * period)) ** 2).sum(1)
    f = grid.freqs_hz[None, :]
    cutoff = 300.0 + c.span("brightness", 1200.0, 6000.0, log=True) * np.minimum(crash, 1.0)[:, None]
    pink = _pink(grid.freqs_hz)[None, :]
    mag = (0.12 + 0.5 * swell + crash)[:, None] * pink * _lowpass_mag(f, cutoff)
    mag += 0.25 * wash[:, None] * pink * _highpass_mag(grid.freqs_hz, 2000.0)[None, :]
    return dsp.shaped_noise(rng, grid, mag, n)


def _traffic(c: RenderContext) -> np.ndarray:
    """Traffic: tyre and road noise swelling as each car passes (inverse-square profile), engine tones
    with a Doppler drop, over a distant road bed; the rate sets cars per second."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    cars = max(1, int(rng.poisson(c.span("rate", 0.25, 3.2, log=True) * (c.seconds + 3.0))))
    tc = rng.uniform(-1.5, c.seconds + 1.5, cars)
    width = rng.uniform(0.5, 1.4, cars)
    level = rng.uniform(0.35, 1.0, cars)
    grid = dsp.frame_grid(n, sr)
    profile = level / (1.0 + ((grid.times_s[:, None] - tc) / width) ** 2)  # (F, cars)
    tyre = _pink(grid.freqs_hz) * _lowpass_mag(grid.freqs_hz, c.span("brightness", 700.0, 3500.0, log=True))
    tyre *= _highpass_mag(grid.freqs_hz, 100.0)
    road = dsp.shaped_noise(rng, grid, (0.12 + profile.sum(1))[:, None] * tyre[None, :], n)
    engines = np.zeros(n)
    rolloff = c.span("brightness", 0.6, 0.85)
    for i in np.argsort(-level / (1.0 + (np.clip(tc, 0.0, c.seconds) - tc) ** 2))[:3]:
        lo, hi = c.samples(np.clip([tc[i] - 3 * width[i], tc[i] + 3 * width[i]], 0.0, c.seconds))
        if hi - lo < 2:
            continue
        t = lo / sr + dsp.time_axis(hi - lo, sr)
        fe = rng.uniform(35.0, 80.0)
        f = fe * (1.0 - 0.06 * np.tanh((t - tc[i]) / (0.4 * width[i])))
        tone = dsp.harmonic_tone(dsp.phase_from_freq(f, sr), rolloff, _n_harmonics(1.1 * fe, sr, 30))
        engines[lo:hi] += level[i] / (1.0 + ((t - tc[i]) / width[i]) ** 2) * tone
    return _unit(road) + 0.35 * _unit(engines)


def _birds(c: RenderContext) -> np.ndarray:
    """Birdsong: phrases of fast frequency-swept chirps, some with a trill."""
    rng, sr, n = c.rng, c.sample_rate, c.n
    fb = min(c.span("pitch", 1500.0, 6500.0, log=True), 0.3 * sr)
    rate = c.span("rate", 1.5, 14.0, log=True)
    gaps = np.maximum(rng.exponential(1.0 / rate, int(c.seconds * rate * 2) + 2), 0.04)
    times = rng.uniform(0.0, 0.2 * c.seconds) + np.concatenate([[0.0], np.cumsum(gaps)[:-1]])
    times = times[times < c.seconds]
    m = times.size
    dur = rng.uniform(0.03, 0.12, (m, 1)).astype(np.float32)
    f_start = (fb * 2.0 ** rng.uniform(-0.3, 0.6, (m, 1))).astype(np.float32)
    f_end = np.minimum(f_start * 2.0 ** rng.uniform(-1.0, 0.5, (m, 1)), 0.4 * sr).astype(np.float32)
    tg = dsp.time_axis(int(0.12 * sr), sr)[None, :]
    grains = _chirp_grains(tg, f_start, f_end, dur, sr)
    trill = rng.random((m, 1)) < 0.3
    grains *= np.where(
        trill, 0.6 + 0.4 * np.sin(np.float32(dsp.TWO_PI) * rng.uniform(25.0, 60.0, (m, 1)) * tg), 1.0
    )
    return dsp.overlap_add(n, c.samples(times), grains * rng.uniform(0.4, 1.0, (m, 1)))


def _noise(c: RenderContext) -> np.ndarray:
    """Stationary broadband noise from brown (dark) through pink to white and slightly blue (bright)."""
    grid = dsp.frame_grid(c.n, c.sample_rate)
    slope_db = c.span("brightness", -7.0, 1.5)  # dB per octave
    return dsp.shaped_noise(c.rng, grid, _pink(grid.freqs_hz, slope_db / 6.02)[None, :], c.n)


# ---------------------------------------------------------------- registry and finishing

_P, _B, _D, _R = "pitch", "brightness", "decay", "rate"
_COMMON = ("loudness", "distance")

_SPECS: tuple[tuple[str, Generator, tuple[str, ...], float], ...] = (
    # name, generator, attribute axes besides loudness/distance, level in dBFS
    ("traffic", _traffic, (_R, _B), -22.0),
    ("saxophone", _saxophone, (_P, _R, _B), -20.0),
    ("bongo", _bongo, (_P, _D, _R), -24.0),
    ("waves", _waves, (_R, _B), -22.0),
    ("metal_pipes", _metal_pipes, (_P, _D, _B), -24.0),
    ("glass_break", _glass_break, (_P, _D), -30.0),
    ("clock", _clock, (_P, _R), -34.0),
    ("wind", _wind, (_R, _B), -25.0),
    ("kick", _kick, (_P, _D, _B, _R), -22.0),
    ("snare", _snare, (_P, _D, _B, _R), -28.0),
    ("pot", _pot, (_P, _D, _R), -28.0),
    ("wood", _wood, (_P, _D, _R), -29.0),
    ("metal", _metal, (_P, _D, _B), -28.0),
    ("glass_clink", _glass_clink, (_P, _D, _R), -26.0),
    ("bell", _bell, (_P, _D, _B), -23.0),
    ("bass", _bass, (_P, _D, _B), -20.0),
    ("organ", _organ, (_P, _B), -21.0),
    ("pluck", _pluck, (_P, _D, _B, _R), -23.0),
    ("brass", _brass, (_P, _B, _R), -20.0),
    ("flute", _flute, (_P, _B, _R), -21.0),
    ("whistle", _whistle, (_P, _R), -22.0),
    ("fm", _fm, (_P, _D, _B), -22.0),
    ("siren", _siren, (_P, _B, _R), -21.0),
    ("sweep", _sweep, (_P, _B, _R), -21.0),
    ("rain", _rain, (_R, _B), -30.0),
    ("fire", _fire, (_R, _B), -33.0),
    ("engine", _engine, (_P, _B), -21.0),
    ("birds", _birds, (_P, _R), -26.0),
    ("footsteps", _footsteps, (_R, _B), -28.0),
    ("noise", _noise, (_B,), -22.0),
    ("hum", _hum, (_P, _B), -22.0),
)
_NO_ROOM = ("noise", "hum")  # electrical / catch-all noise: no near/far

FAMILIES: dict[str, Family] = {
    name: Family(
        name=name,
        attributes=axes + (("loudness",) if name in _NO_ROOM else _COMMON),
        generator=gen,
        vocabulary=VOCABULARIES[name],
        level_db=level,
    )
    for name, gen, axes, level in _SPECS
}

_ROOM_RT60_S = (0.5, 0.65, 0.85, 1.1, 1.4, 1.8)  # rooms for "far", chosen by the distance level
_ROOM_VARIANTS = 2


@functools.lru_cache(maxsize=64)
def _room_spectrum(sample_rate: int, room: int, size: int) -> np.ndarray:
    """rfft of a fixed-seed room impulse response (a small bank keeps "far" cheap)."""
    rt60 = _ROOM_RT60_S[room // _ROOM_VARIANTS]
    rng = np.random.default_rng(np.random.SeedSequence([2505, 4621, sample_rate, room]))
    ir = dsp.reverb_ir(rng, sample_rate, rt60, predelay_s=0.01 + 0.005 * (room % _ROOM_VARIANTS))
    return sfft.rfft(ir, size)


def _far(x: np.ndarray, c: RenderContext, rng: np.random.Generator) -> np.ndarray:
    """Distance: the direct sound drops 6-12 dB and loses highs; the reverberation, scaled to the dry
    RMS, comes in 4-8 dB down, so a far clip is always quieter than its near twin."""
    w = float(np.clip((c.levels["distance"] - 0.5) / 0.5, 0.0, 1.0))  # 0.2 .. 0.9 for "far"
    room = int(round(w * (len(_ROOM_RT60_S) - 1))) * _ROOM_VARIANTS + int(rng.integers(_ROOM_VARIANTS))
    ir_len = int((0.02 + 1.2 * _ROOM_RT60_S[room // _ROOM_VARIANTS]) * c.sample_rate) + 1
    size = sfft.next_fast_len(c.n + ir_len, real=True)
    wet = sfft.irfft(sfft.rfft(x.astype(np.float32), size) * _room_spectrum(c.sample_rate, room, size), size)[
        : c.n
    ]
    wet *= np.sqrt(np.mean(x * x) / (np.mean(np.square(wet, dtype=np.float64)) + 1e-20))
    direct = dsp.one_pole_lowpass(x, 9000.0 - 5000.0 * w, c.sample_rate)
    return 10.0 ** ((-6.0 - 6.0 * w) / 20.0) * direct + 10.0 ** ((-4.0 - 4.0 * w) / 20.0) * wet


def render_audio(family: Family, context: RenderContext, post_rng: np.random.Generator) -> np.ndarray:
    """Generate one clip and finish it: family loudness + loud/soft offset, near/far, edge fades, peak.

    Loudness: RMS = 10^((level_db + offset_db) / 20) with offset_db = -12 + 18 u_loudness (soft:
    -11..-5 dB, loud: -1..+5 dB), then "far" lowers it further; the whole clip is scaled down
    if its peak would exceed 0.98.

    Args:
        family: what to render.
        context: length, rate, synthesis generator, attribute levels.
        post_rng: randomness of the finishing (room choice), separate from synthesis.

    Shape:
        -> (context.n,) float32.
    """
    x = np.asarray(family.generator(context), dtype=np.float64)
    x -= x.mean()
    rms = float(np.sqrt(np.mean(x * x)))
    if not np.isfinite(rms) or rms < 1e-12:
        raise RuntimeError(f"family {family.name!r} rendered silence or non-finite audio")
    offset_db = -12.0 + 18.0 * context.levels["loudness"]
    x *= 10.0 ** ((family.level_db + offset_db) / 20.0) / rms
    if "distance" in family.attributes and context.levels["distance"] > 0.5:
        x = _far(x, context, post_rng)
    x = dsp.fade_edges(x, context.sample_rate)
    peak = float(np.abs(x).max())
    if peak > PEAK_MAX:
        x *= PEAK_MAX / peak
    return x.astype(np.float32)
