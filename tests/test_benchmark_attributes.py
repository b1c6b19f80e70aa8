"""The attribute measures of ``audiosds.bench.attributes`` on synthetic clips with a known answer, and
the bookkeeping of prompt pairs (same seed for both prompts, shares against a margin)."""

from __future__ import annotations

import numpy as np
import pytest

from audiosds.bench import attributes

SR = 22050


def _tone(freq_hz: float, seconds: float = 2.0) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * freq_hz * np.arange(int(seconds * SR)) / SR)


def _decay(t60_s: float, seconds: float = 5.0, onset_s: float = 0.5) -> np.ndarray:
    """A 440 Hz tone struck at ``onset_s`` whose level falls 60 dB in ``t60_s``, over a -90 dB floor."""
    t = np.arange(int(seconds * SR)) / SR
    after = np.clip(t - onset_s, 0.0, None)
    x = np.where(t >= onset_s, 10 ** (-3 * after / t60_s) * np.sin(2 * np.pi * 440 * t), 0.0)
    return x + 10 ** (-90 / 20) * np.random.default_rng(0).standard_normal(len(t))


def _click(seconds: float = 3.0, at_s: float = 0.5) -> np.ndarray:
    x = 1e-5 * np.random.default_rng(1).standard_normal(int(seconds * SR))
    x[int(at_s * SR) : int(at_s * SR) + 20] += np.hanning(20)
    return x


@pytest.mark.parametrize("freq_hz", [200.0, 2000.0])
def test_the_centroid_of_a_tone_is_its_frequency(freq_hz: float) -> None:
    assert attributes.spectral_centroid_hz(_tone(freq_hz), SR) == pytest.approx(freq_hz, rel=0.03)
    assert attributes.spectral_centroid_hz(np.zeros(SR), SR) == 0.0


def test_the_centroid_ignores_what_lies_above_the_band() -> None:
    x = _tone(1000.0) + _tone(10000.0)
    assert attributes.spectral_centroid_hz(x, SR) == pytest.approx(1000.0, rel=0.03)
    assert attributes.spectral_centroid_hz(x, SR, fmax_hz=SR / 2) == pytest.approx(5500.0, rel=0.03)


@pytest.mark.parametrize("t60_s", [0.2, 1.5])
def test_t60_of_an_exponential_decay(t60_s: float) -> None:
    assert attributes.decay_t60_s(_decay(t60_s), SR) == pytest.approx(t60_s, rel=0.15)


def test_a_click_decays_faster_than_a_short_ring() -> None:
    click = attributes.decay_t60_s(_decay(0.01), SR)
    assert 0.0 < click < 0.5 * attributes.decay_t60_s(_decay(0.2), SR)


def test_t60_of_repeated_hits_is_that_of_one_hit_and_a_steady_tone_is_capped() -> None:
    one = _decay(0.3, seconds=1.0, onset_s=0.1)
    assert attributes.decay_t60_s(np.tile(one, 4), SR) == pytest.approx(0.3, rel=0.15)
    assert attributes.decay_t60_s(_tone(440.0), SR, cap_s=20.0) == 20.0
    assert attributes.decay_t60_s(np.zeros(SR), SR, cap_s=20.0) == 20.0


def test_flatness_of_white_noise_is_near_minus_2_5_db_and_of_a_tone_far_below() -> None:
    noise = np.random.default_rng(0).standard_normal(2 * SR)
    assert attributes.spectral_flatness_db(noise, SR) == pytest.approx(-2.5, abs=0.3)
    assert attributes.spectral_flatness_db(_tone(440.0), SR) < -20.0
    with pytest.raises(ValueError, match="fewer than two bins"):
        attributes.spectral_flatness_db(noise, SR, fmin_hz=1000.0, fmax_hz=1000.0)


def test_a_click_in_a_decaying_tail_is_later_heavy_and_a_dry_click_is_not() -> None:
    dry = _click()
    rng = np.random.default_rng(2)
    t = np.arange(int(1.2 * SR)) / SR
    tail = rng.standard_normal(len(t)) * 10 ** (-3 * t / 1.0)  # T60 = 1 s
    wet = np.convolve(dry, np.concatenate([[1.0], 0.05 * tail]))[: len(dry)]
    dry_db, wet_db = attributes.late_to_early_db(dry, SR), attributes.late_to_early_db(wet, SR)
    assert dry_db < -60.0
    assert wet_db > dry_db + 40.0
    assert wet_db < 0.0  # the tail starts 26 dB down and keeps falling


def test_the_reference_frame_leaves_room_for_the_late_window() -> None:
    x = _click(seconds=3.0, at_s=0.5) + _click(seconds=3.0, at_s=2.8)  # the louder-or-equal hit at the end
    assert attributes.late_to_early_db(x, SR) < -60.0  # measured after the first click, not the last


def test_measures_reject_bad_clips() -> None:
    with pytest.raises(ValueError, match="finite"):
        attributes.spectral_centroid_hz(np.full(100, np.nan), SR)
    with pytest.raises(ValueError, match="non-empty"):
        attributes.decay_t60_s(np.zeros((2, 100)), SR)


AXIS = attributes.AttributeAxis(
    name="pitch",
    words=("low", "high"),
    measure_name="centroid",
    measure=attributes.spectral_centroid_hz,
    rule="second > 1.02 x first",
    ordered=lambda first, second: second > 1.02 * first,
    pairs=(
        attributes.PromptPair("flute", "a low flute", "a high flute"),
        attributes.PromptPair("organ", "a low organ", "a high organ"),
    ),
)


def test_order_share_counts_rows_beyond_the_margin() -> None:
    share, hits = attributes.order_share(AXIS, np.array([[100.0, 200.0], [100.0, 101.0], [300.0, 100.0]]))
    assert hits.tolist() == [True, False, False]
    assert share == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match=r"\(S, 2\)"):
        attributes.order_share(AXIS, np.zeros((0, 2)))


def test_both_prompts_of_a_row_share_its_seed_and_the_measure_sees_each_clip() -> None:
    calls = []

    def render(prompt: str, seed: int) -> np.ndarray:
        calls.append((prompt, seed))
        return _tone((2000.0 if "high" in prompt else 200.0) + seed, seconds=0.5)

    seen = []
    values = attributes.measure_pairs(AXIS, render, [[1, 2], [3, 4]], SR, lambda *k: seen.append(k[:3]))
    assert calls == [
        ("a low flute", 1), ("a high flute", 1), ("a low flute", 2), ("a high flute", 2),
        ("a low organ", 3), ("a high organ", 3), ("a low organ", 4), ("a high organ", 4),
    ]  # fmt: skip
    assert seen == [(p, s, side) for p in range(2) for s in range(2) for side in range(2)]
    assert [v.shape for v in values] == [(2, 2), (2, 2)]
    np.testing.assert_allclose(values[1][:, 0], [203.0, 204.0], rtol=0.03)
    np.testing.assert_allclose(values[1][:, 1], [2003.0, 2004.0], rtol=0.03)
    with pytest.raises(ValueError, match="one seed list per pair"):
        attributes.measure_pairs(AXIS, render, [[1]], SR)
