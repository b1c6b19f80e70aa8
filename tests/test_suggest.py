"""Prompt suggestion (tasks/suggest.py) and its commands: ``audiosds suggest`` and
``audiosds separate --prompt auto[:N]``."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from audiosds.cli import main
from audiosds.tasks.suggest import (
    SAME_AS,
    SuggestConfig,
    Suggester,
    _window_starts,
    candidates,
    parse_auto,
)
from audiosds.world import FAMILIES, mix, render_clip
from audiosds.world.real import REAL_CLASSES

FAMILIES_TO_CHECK = ("rain", "bell", "siren", "clock", "traffic", "organ")


@pytest.fixture(scope="module")
def suggester() -> Suggester:
    torch.set_num_threads(1)
    return Suggester()


def test_candidates_cover_every_world_family_and_real_class_once():
    names = [c.name for c in candidates()]
    assert len(names) == len(set(names))
    assert set(FAMILIES) <= set(names)
    assert {SAME_AS.get(c, c) for c in REAL_CLASSES} <= set(names)
    # a class both know is one candidate with both vocabularies' phrasings
    rain = next(c for c in candidates() if c.name == "rain")
    assert "rainfall" in rain.phrasings and rain.prompt == "rain falling"
    digits = next(c for c in candidates() if c.name == "spoken_digit")
    assert "a man saying seven" in digits.phrasings
    assert all("{" not in p for c in candidates() for p in c.phrasings)


@pytest.mark.parametrize("family", FAMILIES_TO_CHECK)
def test_a_held_out_world_clip_ranks_its_own_family_first(suggester, family):
    clip = render_clip(family, 11, 2.0, 16000, split="heldout")
    result = suggester(clip.audio, 16000, SuggestConfig(top=3))
    assert result.overall[0].name == family
    assert [s.score for s in result.overall] == sorted((s.score for s in result.overall), reverse=True)
    # the overall score of a class is its best window's
    k = [c.name for c in suggester.classes].index(family)
    assert result.overall[0].score == pytest.approx(float(result.scores[:, k].max()))


def test_windows_cover_the_recording_and_rank_what_is_in_each(suggester):
    bell = render_clip("bell", 3, 1.0, 16000, split="heldout").audio
    rain = render_clip("rain", 4, 1.0, 16000, split="heldout").audio
    audio = np.concatenate([bell, rain])  # 1 s of bell, then 1 s of rain
    result = suggester(np.stack([audio, audio]), 16000, SuggestConfig(top=2, window_seconds=1.0))
    spans = [span for span, _ in result.windows]
    assert spans == [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0)]
    assert result.windows[0][1][0].name == "bell" and result.windows[-1][1][0].name == "rain"
    assert {s.name for s in result.overall} == {"bell", "rain"}
    assert result.scores.shape == (3, len(suggester.classes))


def test_window_starts_end_at_the_end():
    assert _window_starts(100, 40, 20) == [0, 20, 40, 60]
    assert _window_starts(105, 40, 20) == [0, 20, 40, 60, 65]
    assert _window_starts(30, 40, 20) == [0]
    assert _window_starts(101, 40, 20) == [0, 20, 40, 61]  # a one-sample tail: no near-duplicate window


@pytest.mark.parametrize(
    ("prompts", "expected"),
    [(None, None), (["a bell", "rain"], None), (["auto"], 2), (["auto:3"], 3), ([" auto:8 "], 8)],
)
def test_parse_auto(prompts, expected):
    assert parse_auto(prompts) == expected


@pytest.mark.parametrize("prompts", [["auto:1"], ["auto:9"], ["auto:x"], ["auto", "rain"]])
def test_parse_auto_refuses_bad_counts(prompts):
    with pytest.raises(ValueError, match="auto"):
        parse_auto(prompts)


def test_config_checks():
    for bad in ({"top": 0}, {"window_seconds": 0.01}, {"window_seconds": 1.0, "hop_seconds": 2.0}):
        with pytest.raises(ValueError, match="SuggestConfig"):
            SuggestConfig(**bad)
    assert SuggestConfig(window_seconds=1.0).hop == 0.5


def _two_family_mixture(path, seconds=2.0):
    rain = render_clip("rain", 5, seconds, 16000, split="heldout")
    bell = render_clip("bell", 6, seconds, 16000, split="heldout")
    sf.write(str(path), mix([rain, bell], [0.0, 0.0]), 16000)
    return path


def test_cli_prints_the_ranking(tmp_path, capsys, suggester):
    clip = render_clip("siren", 2, 4.0, 16000, split="heldout")
    path = tmp_path / "siren.wav"
    sf.write(str(path), clip.audio, 16000)
    code = main(["suggest", str(path), "--top", "2"])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("overall (4.00 s")
    assert "[siren]" in lines[1] and lines[1].strip().startswith("1.")
    assert lines[3] == "per window (2 s):"
    assert len(lines) == 4 + 3  # 4 s in 2 s windows every 1 s
    assert all(line.count("|") == 1 for line in lines[4:])  # two suggestions per window


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["suggest"], "MIXTURE"),
        (["suggest", "missing.wav"], "missing.wav"),
        (["suggest", "MIX", "--top", "0"], "--top"),
        (["suggest", "MIX", "--window", "nan"], "--window"),
        (["suggest", "MIX", "--window", "0.01"], "window_seconds"),
        (["separate", "MIX", "--prompt", "auto:9", "-o", "OUT"], "auto"),
        (["separate", "MIX", "--prompt", "auto", "--prompt", "rain", "-o", "OUT"], "auto"),
        (["separate", "MIX", "--prompt", "auto", "--negative", "x", "-o", "OUT"], "--negative"),
    ],
)
def test_usage_errors_are_one_line(tmp_path, capsys, argv, needle):
    mixture = _two_family_mixture(tmp_path / "mix.wav", 0.5)
    argv = [str(mixture) if a == "MIX" else str(tmp_path / "out") if a == "OUT" else a for a in argv]
    argv = [str(tmp_path / a) if a == "missing.wav" else a for a in argv]
    code = main([*argv, "--quiet"] if argv[0] == "separate" else argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("audiosds: error:"), err
    assert needle in err
    assert not (tmp_path / "out").exists()


def test_separate_auto_uses_the_top_suggestions(tmp_path, capsys, suggester):
    mixture = _two_family_mixture(tmp_path / "mix.wav", 1.0)
    audio, rate = sf.read(str(mixture), dtype="float32")
    expected = [s.prompt for s in suggester(audio, rate, SuggestConfig(top=2)).overall]
    out = tmp_path / "sep"
    argv = ["separate", str(mixture), "--prompt", "auto:2", "--prior", "analytic", "--iters", "1"]
    code = main([*argv, "--sds-modes", "decoder", "--no-score", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"suggested prompts: {expected[0]} (" in err
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["prompts"] == expected  # recorded: a rerun of config.yaml separates the same way
    assert (out / "source_1.wav").exists() and (out / "source_2.wav").exists()


def test_closest_class_is_what_a_prompt_names(suggester):
    assert suggester.closest_class("a man speaking") == "spoken_digit"
    assert suggester.closest_class("heavy rain on a roof") == "rain"
    assert suggester.closest_class("a dog barking") == "dog_bark"
