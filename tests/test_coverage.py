"""Prompt coverage: the rows a weights folder carries, the measured threshold, the one-line warning."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pytest
import torch

from audiosds.coverage import (
    COVERAGE_JSON,
    COVERAGE_TENSORS,
    build_coverage,
    coverage_warnings,
    load_coverage,
    measure_threshold,
    save_coverage,
)


def bag_of_words(prompts):
    """A toy text encoder: unit-norm sums of one hashed direction per word."""
    rows = []
    for prompt in prompts:
        v = torch.zeros(64)
        for word in prompt.split():
            v[zlib.crc32(word.encode()) % 64] += 1.0
        rows.append(v / v.norm())
    return torch.stack(rows)


class FakePrior:
    def __init__(self, folder: Path) -> None:
        self.weights_dir, self.text_encoder = folder, bag_of_words


CAPTIONS = ["a low bell ringing", "a bell", "a bell", "rain on a roof", "heavy rain", "a kick drum"]
LABELS = ["bell", "bell", "bell", "rain", "rain", "kick"]


def test_build_coverage_keeps_one_row_per_distinct_caption_with_its_label():
    text, meta = build_coverage(CAPTIONS, LABELS, bag_of_words)
    assert text.dtype == torch.float16 and text.shape == (5, 64)
    assert meta == {"labels": ["bell", "bell", "rain", "rain", "kick"], "threshold": None}
    torch.testing.assert_close(text.float().norm(dim=1), torch.ones(5), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="one per caption"):
        build_coverage(CAPTIONS, LABELS[:2], bag_of_words)


def test_the_threshold_lets_the_required_share_of_inside_prompts_through():
    text, _ = build_coverage(CAPTIONS, LABELS, bag_of_words)
    inside = ["a bell ringing", "rain", "a low kick drum", "heavy rain on a roof", "a bell", "the kick"]
    outside = ["dog barking loudly", "baby crying", "man speaking"]
    threshold, report = measure_threshold(text, inside, outside, bag_of_words, heldout_pass=0.8)
    best = (bag_of_words(inside) @ text.float().T).max(dim=1).values
    assert (best >= threshold).float().mean() >= 0.8 and report["inside_passed"] >= 0.8
    # the highest such threshold: one step up would fail one more inside prompt
    assert (best >= threshold + 1e-6).float().mean() < report["inside_passed"]
    assert report["outside_caught"] == 1.0  # no word in common with any caption: similarity 0


def test_a_prompt_far_from_every_caption_gets_one_warning_naming_the_closest_classes(tmp_path):
    text, meta = build_coverage(CAPTIONS, LABELS, bag_of_words)
    meta["threshold"] = 0.5
    save_coverage(tmp_path, text, meta)
    assert json.loads((tmp_path / COVERAGE_JSON).read_text())["threshold"] == 0.5
    lines = coverage_warnings(FakePrior(tmp_path), ["a bell", "a dog barking", "rain"], "toy")
    assert len(lines) == 1
    assert lines[0].startswith(
        "the toy prior has not learned sounds like 'a dog barking'; closest it knows: "
    )
    named = lines[0].split("closest it knows: ")[1].split(", ")
    assert len(named) == 3 and sorted(named) == ["bell", "kick", "rain"]  # distinct labels


def test_folders_without_coverage_or_with_broken_files(tmp_path):
    assert coverage_warnings(FakePrior(tmp_path), ["anything"], "toy") == []
    assert coverage_warnings(object(), ["anything"], "analytic") == []
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / COVERAGE_TENSORS).write_bytes(b"not safetensors")
    (broken / COVERAGE_JSON).write_text("{}")
    with pytest.raises(ValueError, match="unreadable prompt-coverage files"):
        load_coverage(broken)
    with pytest.raises(ValueError, match="measured threshold"):
        save_coverage(tmp_path / "x", *build_coverage(CAPTIONS, LABELS, bag_of_words))
