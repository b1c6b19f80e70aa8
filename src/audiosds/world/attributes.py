"""The attribute axes of the sound world and how a level word becomes a number.

Each axis has two level words (low, high end). A clip draws one word per axis its family supports,
plus a position inside that level's band, so "low" and "high" never overlap yet stay continuous:

    u = LOW_BAND[0] + offset * (LOW_BAND[1] - LOW_BAND[0])     for the first word,
    u = HIGH_BAND[0] + offset * (HIGH_BAND[1] - HIGH_BAND[0])  for the second,

with offset ~ U(0, 1) drawn from the clip's seed; generators map u in [0, 1] onto physical ranges.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

AXES: dict[str, tuple[str, str]] = {
    "pitch": ("low", "high"),
    "brightness": ("dark", "bright"),
    "decay": ("short", "long"),
    "rate": ("slow", "fast"),
    "loudness": ("soft", "loud"),
    "distance": ("near", "far"),
}

LOW_BAND = (0.05, 0.40)
HIGH_BAND = (0.60, 0.95)


def draw_levels(
    rng: np.random.Generator, fixed: Mapping[str, str] | None = None
) -> tuple[dict[str, str], dict[str, float]]:
    """Draw a level word and a position for every axis, in a fixed order.

    Every axis consumes the same random numbers whether or not ``fixed`` overrides its word, so two
    renders of one seed that differ in one attribute share everything else.

    Args:
        rng: the clip's attribute generator.
        fixed: words that override the drawn ones (already validated).

    Returns:
        (words, levels): axis -> level word, axis -> u in [0, 1].
    """
    fixed = fixed or {}
    words: dict[str, str] = {}
    levels: dict[str, float] = {}
    for axis, pair in AXES.items():
        drawn = pair[int(rng.integers(2))]
        offset = float(rng.random())
        word = fixed.get(axis, drawn)
        lo, hi = LOW_BAND if word == pair[0] else HIGH_BAND
        words[axis] = word
        levels[axis] = lo + offset * (hi - lo)
    return words, levels


def validate_attributes(attributes: Mapping[str, str], allowed_axes: tuple[str, ...], where: str) -> None:
    """Raise ValueError unless every key is an allowed axis and every value one of its words."""
    for axis, word in attributes.items():
        if axis not in allowed_axes:
            raise ValueError(f"{where}: attribute axis expected one of {allowed_axes}, got {axis!r}")
        if word not in AXES[axis]:
            raise ValueError(f"{where}: {axis} expected one of {AXES[axis]}, got {word!r}")
