"""Tests of the procedural sound world (audiosds.world): rendering contract, determinism, splits,
captions, and that every attribute word moves the audio in its direction (measured with simple
numpy features: spectral centroid, envelope level, onset counts)."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
from scipy.ndimage import median_filter, minimum_filter1d
from scipy.signal import find_peaks, stft

from audiosds.world import (
    AXES,
    FAMILIES,
    PAPER_PROMPTS,
    PROMPT_FAMILY,
    dsp,
    load_clips,
    make_caption,
    mix,
    render_clip,
    sample_clips,
    save_clips,
)
from audiosds.world import captions as cap

SR = 16000

# ---------------------------------------------------------------- features (numpy)


def centroid_hz(x: np.ndarray, sr: int = SR) -> float:
    """Power-weighted mean frequency of the whole clip."""
    p = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    return float((np.fft.rfftfreq(x.size, 1.0 / sr) * p).sum() / p.sum())


def envelope_db(x: np.ndarray, sr: int = SR, frame_s: float = 0.01) -> np.ndarray:
    """10 ms frame RMS in dB relative to the loudest frame."""
    m = int(frame_s * sr)
    e = np.sqrt(np.mean(x[: x.size // m * m].astype(np.float64).reshape(-1, m) ** 2, axis=1)) + 1e-12
    return 20.0 * np.log10(e / e.max())


def sustain_db(x: np.ndarray, sr: int = SR) -> float:
    """Mean envelope level relative to the peak (floored at -60 dB): longer decays fill the clip."""
    return float(np.maximum(envelope_db(x, sr), -60.0).mean())


def flux_onsets(x: np.ndarray, sr: int = SR) -> int:
    """Onsets: peaks of half-wave-rectified log-spectral flux above a running median (>= 48 ms apart)."""
    _, _, z = stft(x, sr, nperseg=512, noverlap=384)
    mag = np.abs(z)
    flux = np.maximum(np.diff(np.log10(mag + mag.max() * 1e-4), axis=1), 0.0).mean(0)
    running = median_filter(flux, size=31, mode="nearest")
    peaks, _ = find_peaks(flux, height=running + 0.25 * (flux.max() - np.median(flux)), distance=6)
    return int(peaks.size)


def energy_onsets(x: np.ndarray, sr: int = SR) -> int:
    """Onsets: the 10 ms level rises 9 dB within 40 ms, above -35 dB (>= 60 ms apart)."""
    e = envelope_db(x, sr)
    prev_min = np.concatenate([e[:1], minimum_filter1d(e, 4, origin=1, mode="nearest")[:-1]])
    peaks, _ = find_peaks(((e - prev_min > 9.0) & (e > -35.0)).astype(float), distance=6)
    return int(peaks.size)


def envelope_peaks(x: np.ndarray, sr: int = SR) -> int:
    """Swells: peaks of the 120 ms-smoothed envelope with >= 4 dB prominence."""
    smooth = np.convolve(envelope_db(x, sr), np.ones(12) / 12, mode="same")
    return int(find_peaks(smooth, prominence=4.0)[0].size)


def centroid_peaks(x: np.ndarray, sr: int = SR) -> int:
    """Pitch sweeps: peaks of the log2 spectral-centroid track with >= 0.15 octave prominence."""
    _, _, z = stft(x, sr, nperseg=512, noverlap=384)
    p = np.abs(z) ** 2 + 1e-12
    f = np.linspace(0, sr / 2, p.shape[0])[:, None]
    track = np.convolve(np.log2((f * p).sum(0) / p.sum(0)), np.ones(3) / 3, mode="same")
    return int(find_peaks(track, prominence=0.15)[0].size)


def rms(x: np.ndarray, sr: int = SR) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


# How "slow" vs "fast" shows, per kind of family: event counts by default; swells for wind and
# waves; pitch sweeps for sirens and sweeps; density (a fuller envelope) for traffic and rain.
RATE_FEATURE = {
    "siren": centroid_peaks,
    "sweep": centroid_peaks,
    "wind": envelope_peaks,
    "waves": envelope_peaks,
    "traffic": sustain_db,
    "rain": sustain_db,
    "snare": energy_onsets,
}
RATE_SECONDS = {"waves": 6.0}  # slow waves are 3-6 s apart
AXIS_FEATURE = {
    "pitch": centroid_hz,
    "brightness": centroid_hz,
    "decay": sustain_db,
    "loudness": rms,
    "distance": rms,
}
SEEDS = {"loudness": 10, "distance": 10}  # level axes are scalings by construction: fewer seeds


# ---------------------------------------------------------------- the rendering contract


# Every family the world renders (the embedded prior, the scorer and the benchmarks are built on
# exactly these): adding or dropping one must be a deliberate change to this list.
WORLD_FAMILIES = (
    "bass bell birds bongo brass clock engine fire flute fm footsteps glass_break glass_clink hum kick "
    "metal metal_pipes noise organ pluck pot rain saxophone siren snare sweep traffic waves whistle wind wood"
).split()


def test_the_31_families_with_consistent_vocabulary():
    assert len(WORLD_FAMILIES) == len(set(WORLD_FAMILIES)) == 31
    assert sorted(FAMILIES) == WORLD_FAMILIES
    assert set(cap.VOCABULARIES) == set(WORLD_FAMILIES)
    for name, fam in FAMILIES.items():
        assert fam.name == name
        assert set(fam.attributes) <= set(AXES) and "loudness" in fam.attributes
        assert fam.vocabulary is cap.VOCABULARIES[name]
        vocab = fam.vocabulary
        assert len(vocab.names) >= 4 and vocab.heldout_names and vocab.verbs
        for p in vocab.names + vocab.heldout_names + vocab.fixed:
            for axis, word in p.requires:
                assert axis in fam.attributes and word in AXES[axis], (name, p.text)
    assert set(PROMPT_FAMILY.values()) <= set(FAMILIES)


@pytest.mark.parametrize("sample_rate,seconds", [(16000, 2.0), (44100, 1.0), (16000, 0.5), (16000, 1.37)])
def test_every_family_renders_exact_length_finite_bounded_audible(sample_rate, seconds):
    for name in FAMILIES:
        clip = render_clip(name, 3, seconds=seconds, sample_rate=sample_rate)
        x = clip.audio
        assert x.dtype == np.float32 and x.shape == (round(seconds * sample_rate),), name
        assert clip.sample_rate == sample_rate and clip.family == name
        assert np.isfinite(x).all(), name
        assert np.abs(x).max() <= 0.99, name
        assert rms(x) > 1e-4, name


def test_ten_second_clips_keep_the_contract():
    for name in ("bell", "traffic", "saxophone", "rain"):
        x = render_clip(name, 1, seconds=10.0).audio
        assert x.shape == (160000,) and np.isfinite(x).all() and np.abs(x).max() <= 0.99
        assert rms(x[-16000:]) > 0.0, name


def test_same_seed_same_bytes_other_seed_differs():
    for name in FAMILIES:
        a, b, c = render_clip(name, 11), render_clip(name, 11), render_clip(name, 12)
        assert a.audio.tobytes() == b.audio.tobytes() and a.caption == b.caption, name
        assert a.attributes == b.attributes
        assert a.audio.tobytes() != c.audio.tobytes(), name


def test_forced_attribute_is_recorded_and_others_follow_the_seed():
    free = render_clip("bell", 5)
    for word in AXES["pitch"]:
        forced = render_clip("bell", 5, attributes={"pitch": word})
        assert forced.attributes["pitch"] == word
        assert {k: v for k, v in forced.attributes.items() if k != "pitch"} == {
            k: v for k, v in free.attributes.items() if k != "pitch"
        }


def _digest(x: np.ndarray) -> str:
    return hashlib.sha1(x.tobytes()).hexdigest()


def test_train_and_heldout_seed_streams_are_disjoint():
    for name in FAMILIES:
        assert _digest(render_clip(name, 0).audio) != _digest(render_clip(name, 0, split="heldout").audio)
    train = sample_clips("train", 62, seconds=0.5, seed=0)
    heldout = sample_clips("heldout", 62, seconds=0.5, seed=0)
    assert not {_digest(c.audio) for c in train} & {_digest(c.audio) for c in heldout}
    assert len({c.seed for c in train}) == 62


def test_sample_clips_is_balanced_and_deterministic():
    names = ["bell", "rain", "kick"]
    clips = sample_clips("train", 10, seconds=0.5, seed=7, families=names)
    counts = [sum(c.family == n for c in clips) for n in names]
    assert max(counts) - min(counts) <= 1 and sum(counts) == 10
    again = sample_clips("train", 10, seconds=0.5, seed=7, families=names)
    assert [_digest(c.audio) for c in clips] == [_digest(c.audio) for c in again]
    other = sample_clips("train", 10, seconds=0.5, seed=8, families=names)
    assert [_digest(c.audio) for c in clips] != [_digest(c.audio) for c in other]
    first = clips[0]
    replay = render_clip(first.family, first.seed, seconds=0.5, split="train")
    assert replay.audio.tobytes() == first.audio.tobytes() and replay.caption == first.caption


# ---------------------------------------------------------------- captions


def _heldout_patterns() -> dict[str, list[str]]:
    fragments = {name: [] for name in FAMILIES}
    template_bits = [
        part.strip(" ,")
        for t in cap.HELDOUT_TEMPLATES
        for part in re.split(r"\{\w+\}", t)
        if part.strip(" ,")
    ]
    words = [w for ws in cap.HELDOUT_ADJECTIVES.values() for w in ws]
    for name, vocab in cap.VOCABULARIES.items():
        own = [re.sub(r"^(a|an|the) ", "", p.text) for p in vocab.heldout_names]
        fragments[name] = template_bits + words + own
    return fragments


def _random_attributes(name: str, rng: np.random.Generator) -> dict[str, str]:
    return {axis: AXES[axis][int(rng.integers(2))] for axis in FAMILIES[name].attributes}


def test_heldout_phrasings_never_occur_in_training_captions():
    rng = np.random.default_rng(0)
    patterns = _heldout_patterns()
    train, heldout = set(), set()
    for name in FAMILIES:
        regex = re.compile("|".join(rf"\b{re.escape(p)}\b" for p in patterns[name]))
        for _ in range(250):
            text = make_caption(name, _random_attributes(name, rng), rng, "train")
            assert not regex.search(text), (name, text)
            train.add(text)
        for _ in range(60):
            text = make_caption(name, _random_attributes(name, rng), rng, "heldout")
            assert regex.search(text), (name, text)
            heldout.add(text)
    assert not train & heldout
    assert len(train) > 2000  # phrasing variety, not a handful of fixed captions


def test_captions_name_their_attribute_words():
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(200):
        text = make_caption("bell", {"pitch": "low", "decay": "long"}, rng)
        hits += any(w in text for w in cap.ADJECTIVES["low"] + cap.PHRASES["low"])
        assert not re.search(r"\bhigh\b", text), text
    assert hits > 40


def test_paper_and_synthesis_prompts_are_captions_of_their_families():
    assert set(PAPER_PROMPTS) == {"traffic", "sax", "bongo", "waves", "pipes", "glass", "clock", "wind"}
    assert set(PAPER_PROMPTS.values()) <= set(PROMPT_FAMILY)
    rng = np.random.default_rng(2)
    for prompt, family in PROMPT_FAMILY.items():
        seen = {make_caption(family, _random_attributes(family, rng), rng) for _ in range(400)}
        assert prompt in seen, (prompt, family)
        others = [f for f in FAMILIES if f != family]
        assert all(prompt not in [p.text for p in cap.VOCABULARIES[f].fixed] for f in others)


# ---------------------------------------------------------------- attribute words change the audio

_CASES = [(name, axis) for name, fam in FAMILIES.items() for axis in fam.attributes]


@pytest.mark.parametrize("family,axis", _CASES, ids=[f"{f}-{a}" for f, a in _CASES])
def test_attribute_word_moves_the_audio_in_its_direction(family, axis):
    """Paired renders (same seed, one attribute flipped, others fixed; near unless distance is tested):
    high pitch / bright -> higher centroid, long -> fuller envelope, fast -> more events,
    loud -> higher RMS, far -> lower RMS, in most seeds."""
    low_word, high_word = AXES[axis]
    feature = RATE_FEATURE.get(family, flux_onsets) if axis == "rate" else AXIS_FEATURE[axis]
    seconds = RATE_SECONDS.get(family, 2.0) if axis == "rate" else 2.0
    fixed = {"distance": "near"} if axis != "distance" and "distance" in FAMILIES[family].attributes else {}
    n_seeds = SEEDS.get(axis, 20)
    wins = 0
    for seed in range(n_seeds):
        lo = feature(render_clip(family, seed, seconds, attributes={**fixed, axis: low_word}).audio)
        hi = feature(render_clip(family, seed, seconds, attributes={**fixed, axis: high_word}).audio)
        wins += (hi < lo) if axis == "distance" else (hi > lo)
    assert wins >= 0.75 * n_seeds, f"{family} {axis}: {wins}/{n_seeds}"


def test_noise_is_flatter_than_tones():
    def flatness(x: np.ndarray) -> float:
        p = np.abs(np.fft.rfft(x.astype(np.float64)))[1:] ** 2 + 1e-20
        return float(np.exp(np.mean(np.log(p))) / np.mean(p))

    noise = min(flatness(render_clip("noise", s).audio) for s in range(5))
    tones = max(
        flatness(render_clip(f, s).audio) for f in ("bell", "organ", "whistle", "hum") for s in range(5)
    )
    assert noise > 10 * tones


# ---------------------------------------------------------------- helpers and DSP closed forms


def test_mix_is_the_exact_gain_weighted_sum():
    a, b = render_clip("bell", 0), render_clip("rain", 0)
    out = mix([a, b.audio], [0.0, -6.0])
    np.testing.assert_allclose(out, a.audio + 10 ** (-6 / 20) * b.audio, atol=1e-7)
    with pytest.raises(ValueError):
        mix([a, render_clip("rain", 0, seconds=1.0)], [0.0, 0.0])
    with pytest.raises(ValueError):
        mix([a], [0.0, 1.0])


def test_save_and_load_round_trip(tmp_path):
    clips = sample_clips("heldout", 4, seconds=0.5, seed=3)
    path = tmp_path / "cache.npz"
    save_clips(path, clips)
    loaded = load_clips(path)
    for c, d in zip(clips, loaded, strict=True):
        assert d.audio.tobytes() == c.audio.tobytes()
        assert (d.family, d.caption, d.attributes, d.seed, d.sample_rate) == (
            c.family,
            c.caption,
            c.attributes,
            c.seed,
            c.sample_rate,
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"family": "dragon", "seed": 0},
        {"family": "bell", "seed": -1},
        {"family": "bell", "seed": 0, "seconds": 0.2},
        {"family": "bell", "seed": 0, "seconds": 11.0},
        {"family": "bell", "seed": 0, "split": "test"},
        {"family": "bell", "seed": 0, "attributes": {"rate": "fast"}},
        {"family": "bell", "seed": 0, "attributes": {"pitch": "medium"}},
    ],
)
def test_render_clip_rejects_bad_input(kwargs):
    with pytest.raises(ValueError):
        render_clip(**kwargs)


def test_modal_matches_the_damped_sinusoid_sum():
    t = np.arange(5000) / SR
    f, d, a, ph = (
        np.array([220.0, 1234.5, 7900.0]),
        np.array([0.3, np.inf, 0.05]),
        np.array([1.0, 0.4, 0.2]),
        np.array([0.0, 1.0, 2.0]),
    )
    ref = sum(
        a[k] * np.exp(-t / d[k]) * np.sin(2 * np.pi * f[k] * t + ph[k]) for k in range(2)
    )  # 7.9 kHz dropped
    np.testing.assert_allclose(dsp.modal(f, d, a, t.size, SR, ph), ref, atol=1e-5)


@pytest.mark.parametrize("odd", [False, True])
def test_harmonic_tone_matches_the_explicit_sum(odd):
    f0 = 180.0 + 40.0 * np.sin(np.linspace(0, 3, 4000))  # a gliding pitch
    phase = dsp.phase_from_freq(f0, SR)
    y = dsp.harmonic_tone(phase, 0.7, 9, odd=odd)
    phi = np.cumsum(f0) * 2 * np.pi / SR
    h, rho = (2 * np.arange(9) + 1, 0.49) if odd else (np.arange(9) + 1, 0.7)
    ref = sum(rho**j * np.sin(h[j] * phi) for j in range(9)) / np.sqrt(sum(rho ** (2 * j) for j in range(9)))
    np.testing.assert_allclose(y, ref, atol=2e-4)


def test_shaped_noise_follows_its_magnitude():
    grid = dsp.frame_grid(32000, SR)
    mag = np.where(grid.freqs_hz < 2000.0, 1.0, 0.0)[None, :] * np.linspace(0.2, 1.0, grid.n_frames)[:, None]
    x = dsp.shaped_noise(np.random.default_rng(0), grid, mag, 32000)
    p = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / SR)
    assert p[f > 2300].sum() < 1e-3 * p.sum()
    assert rms(x[-4000:]) > 3.0 * rms(x[:4000])
