"""The family judge and the clip measures of ``audiosds.bench.judge`` (used by
``benchmarks/mel_prior.py``): closed-form signals, world clips with known attributes, and a
fitted judge on clearly distinct families."""

from __future__ import annotations

import numpy as np
import pytest

from audiosds.bench import judge
from audiosds.world import render_clip, sample_clips

SR = 16000


def _tone(freq_hz: float, seconds: float, tau_s: float | None = None) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    env = np.ones_like(t) if tau_s is None else np.exp(-t / tau_s)
    return (env * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


# -- closed forms ------------------------------------------------------------------------------------
@pytest.mark.parametrize("tau_s", [0.05, 0.2, 1.0])
def test_decay_time_of_an_exponential_ring_is_its_t20(tau_s: float) -> None:
    # level(t) = -20 log10(e) t / tau dB, so 20 dB takes tau * ln(10) seconds
    x = np.concatenate([np.zeros(800, np.float32), _tone(440.0, 2.0, tau_s)])
    assert judge.decay_time_s(x, SR) == pytest.approx(tau_s * np.log(10.0), rel=0.1)


def test_centroid_and_flatness_of_a_sine_and_of_white_noise() -> None:
    sine = _tone(1000.0, 1.0)
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    assert judge.spectral_centroid_hz(sine, SR) == pytest.approx(1000.0, rel=0.02)
    assert judge.spectral_centroid_hz(noise, SR) == pytest.approx(SR / 4, rel=0.05)
    # flatness of a periodogram of white noise: E[ln P] - ln E[P] = -Euler's gamma -> -2.5 dB
    assert judge.spectral_flatness_db(noise, SR) == pytest.approx(
        10 * np.log10(np.exp(-np.euler_gamma)), abs=0.3
    )
    assert judge.spectral_flatness_db(sine, SR) < -30.0


def test_features_ignore_the_level() -> None:
    # a power-of-two gain (-30 dB) is exact in floating point, so unit-RMS scaling must undo it exactly
    x = render_clip("bell", 3, 1.0, split="heldout").audio
    np.testing.assert_array_equal(judge.clip_features(x / 32, SR), judge.clip_features(x, SR))


@pytest.mark.parametrize("seconds", [0.5, 1.3, 10.0])
def test_features_are_finite_for_world_clips_and_silence(seconds: float) -> None:
    cfg = judge.JudgeConfig()
    clip = render_clip("pluck", 1, seconds, split="heldout").audio
    for x in (clip, np.zeros_like(clip), clip[:100]):
        f = judge.clip_features(x, SR)
        assert f.shape == (cfg.num_features,)
        assert np.all(np.isfinite(f))


# -- the measures follow the world's attribute words (paired renders: only the word changes) ----------
@pytest.mark.parametrize("family", ["bell", "organ", "flute"])
def test_high_pitch_raises_the_centroid(family: str) -> None:
    for seed in range(4):
        low, high = (
            render_clip(family, seed, 1.0, attributes={"pitch": w}, split="heldout").audio
            for w in ("low", "high")
        )
        assert judge.spectral_centroid_hz(high, SR) > 1.02 * judge.spectral_centroid_hz(low, SR)


@pytest.mark.parametrize("family", ["bell", "metal", "bass"])
def test_long_decay_lengthens_the_decay_time(family: str) -> None:
    for seed in range(4):
        short, long = (
            render_clip(family, seed, 1.0, attributes={"decay": w}, split="heldout").audio
            for w in ("short", "long")
        )
        assert judge.decay_time_s(long, SR) > judge.decay_time_s(short, SR) + 0.02


def test_noise_is_flatter_than_tones() -> None:
    for seed in range(4):
        noise = render_clip("noise", seed, 1.0, split="heldout").audio
        for tone in ("whistle", "organ", "hum"):
            x = render_clip(tone, seed, 1.0, split="heldout").audio
            assert judge.spectral_flatness_db(noise, SR) > judge.spectral_flatness_db(x, SR) + 0.5


# -- the fitted judge ----------------------------------------------------------------------------------
FAMILIES = ["noise", "bell", "kick", "bass", "whistle"]


@pytest.fixture(scope="module")
def fitted():
    return judge.fit_world_judge(12, 1.0, SR, seed=1, families=FAMILIES)


def test_judge_labels_other_heldout_clips_of_distinct_families(fitted) -> None:
    clips = sample_clips("heldout", 8 * len(FAMILIES), 1.0, SR, seed=0, families=FAMILIES)
    labels = fitted.classify([c.audio for c in clips], SR)
    accuracy = np.mean([p == c.family for p, c in zip(labels, clips, strict=True)])
    assert accuracy >= 0.9
    assert sorted(fitted.families) == sorted(FAMILIES)


def test_a_noise_floor_far_below_the_clip_does_not_change_its_label(fitted) -> None:
    # decoded audio carries a floor that clean world clips lack; the judge's dither hides it
    clips = sample_clips("heldout", 4 * len(FAMILIES), 1.0, SR, seed=2, families=FAMILIES)
    rng = np.random.default_rng(0)
    clean = [c.audio for c in clips]
    floored = [x + rng.standard_normal(x.shape) * np.sqrt(np.mean(x**2)) * 10 ** (-60 / 20) for x in clean]
    labels, floored_labels = fitted.classify(clean, SR), fitted.classify(floored, SR)
    assert np.mean([a == b for a, b in zip(labels, floored_labels, strict=True)]) >= 0.95


def test_a_batch_of_any_lengths_is_labelled_like_its_single_clips(fitted) -> None:
    clips = [
        render_clip(f, 7, s, split="heldout").audio
        for f, s in zip(FAMILIES, (0.5, 1.0, 2.5, 0.7, 1.5), strict=True)
    ]
    assert fitted.classify(clips, SR) == [fitted.classify([c], SR)[0] for c in clips]
    distances = fitted.distances(clips, SR)
    assert distances.shape == (len(clips), len(FAMILIES))
    assert np.all(np.isfinite(distances)) and np.all(distances >= 0)


def test_bad_inputs_are_value_errors() -> None:
    clips = [_tone(f, 0.5) for f in (200.0, 3000.0)]
    with pytest.raises(ValueError, match="2 families"):
        judge.fit_judge(clips, ["a", "a"], SR)
    with pytest.raises(ValueError, match="finite"):
        judge.clip_features(np.array([0.0, np.nan], np.float32), SR)
    with pytest.raises(ValueError, match="shrinkage"):
        judge.JudgeConfig(shrinkage=1.5)
