"""Clips, splits, balanced sampling, mixing and an on-disk cache.

A clip is identified by (family, seed, split). Its randomness comes from
``SeedSequence([seed, crc32(family), split index])`` spawned into four independent streams
(attributes, synthesis, finishing, caption), so:

- the train and held-out seed streams are disjoint: the same integer seed gives different audio in
  the two splits;
- overriding one attribute leaves every other random choice of the clip unchanged, which makes
  "low" vs "high" comparisons paired.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiosds.world.attributes import draw_levels, validate_attributes
from audiosds.world.captions import SPLITS
from audiosds.world.captions import make_caption as _make_caption
from audiosds.world.families import FAMILIES, RenderContext, render_audio

MIN_SECONDS, MAX_SECONDS = 0.5, 10.0
MIN_RATE, MAX_RATE = 8000, 192000


@dataclass(frozen=True)
class Clip:
    """One captioned clip of the world.

    Attributes:
        audio: mono waveform, float32, shape (N,), peak <= 0.99.
        sample_rate: in Hz.
        family: family name (key of ``FAMILIES``).
        caption: the text describing it.
        attributes: axis -> level word, for the axes the family supports.
        seed: the seed that reproduces it with ``render_clip(family, seed, ..., split=...)``.
    """

    audio: np.ndarray
    sample_rate: int
    family: str
    caption: str
    attributes: dict[str, str]
    seed: int


def _check_family(family: str, where: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"{where} family: expected one of {sorted(FAMILIES)}, got {family!r}")


def _check_split(split: str, where: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"{where} split: expected one of {SPLITS}, got {split!r}")
    return SPLITS.index(split)


def _num_samples(seconds: float, sample_rate: int, where: str) -> int:
    if not MIN_SECONDS - 1e-9 <= seconds <= MAX_SECONDS + 1e-9:
        raise ValueError(f"{where} seconds: expected {MIN_SECONDS}..{MAX_SECONDS}, got {seconds}")
    if not isinstance(sample_rate, int | np.integer) or not MIN_RATE <= sample_rate <= MAX_RATE:
        raise ValueError(
            f"{where} sample_rate: expected an int in {MIN_RATE}..{MAX_RATE}, got {sample_rate!r}"
        )
    return int(round(seconds * sample_rate))


def _streams(family: str, seed: int, split_index: int) -> list[np.random.Generator]:
    root = np.random.SeedSequence([seed, zlib.crc32(family.encode()), split_index])
    return [np.random.default_rng(s) for s in root.spawn(4)]


def render_clip(
    family: str,
    seed: int,
    seconds: float = 2.0,
    sample_rate: int = 16000,
    attributes: dict[str, str] | None = None,
    split: str = "train",
) -> Clip:
    """Render one captioned clip.

    Args:
        family: a key of ``FAMILIES``.
        seed: a non-negative integer; with family and split it fixes the clip.
        seconds: length, 0.5 .. 10 s.
        sample_rate: in Hz (8 kHz .. 192 kHz).
        attributes: level words to force (axis -> word); missing axes are drawn from the seed.
        split: "train" or "heldout": selects the seed stream and the caption phrasings.

    Returns:
        the clip (audio of exactly round(seconds * sample_rate) samples).
    """
    _check_family(family, "render_clip")
    split_index = _check_split(split, "render_clip")
    n = _num_samples(seconds, sample_rate, "render_clip")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"render_clip seed: expected a non-negative int, got {seed!r}")
    fam = FAMILIES[family]
    validate_attributes(attributes or {}, fam.attributes, f"render_clip({family!r})")
    attr_rng, synth_rng, post_rng, caption_rng = _streams(family, int(seed), split_index)
    words, levels = draw_levels(attr_rng, attributes)
    context = RenderContext(n=n, sample_rate=int(sample_rate), rng=synth_rng, levels=levels)
    audio = render_audio(fam, context, post_rng)
    clip_attributes = {axis: words[axis] for axis in fam.attributes}
    caption = _make_caption(family, clip_attributes, caption_rng, split)
    return Clip(audio, int(sample_rate), family, caption, clip_attributes, int(seed))


def make_caption(
    family: str, attributes: Mapping[str, str], rng: np.random.Generator, split: str = "train"
) -> str:
    """A caption for ``family`` with ``attributes`` in the phrasings of ``split`` (see ``captions``)."""
    _check_family(family, "make_caption")
    validate_attributes(attributes, FAMILIES[family].attributes, f"make_caption({family!r})")
    return _make_caption(family, attributes, rng, split)


def sample_clips(
    split: str,
    n: int,
    seconds: float = 2.0,
    sample_rate: int = 16000,
    seed: int = 0,
    families: Sequence[str] | None = None,
) -> list[Clip]:
    """``n`` clips balanced over ``families`` (all by default), deterministic per (split, seed).

    Families are dealt in shuffled rounds (each family once per round), so counts differ by at
    most one. Clip seeds are 63-bit hashes of (seed, index).

    Args:
        split: "train" or "heldout".
        n: number of clips, >= 0.
        seconds: clip length.
        sample_rate: in Hz.
        seed: seed of the draw.
        families: family names to draw from.
    """
    split_index = _check_split(split, "sample_clips")
    _num_samples(seconds, sample_rate, "sample_clips")
    if n < 0:
        raise ValueError(f"sample_clips n: expected >= 0, got {n}")
    names = list(FAMILIES) if families is None else list(families)
    if not names:
        raise ValueError("sample_clips families: expected at least one family, got none")
    for name in names:
        _check_family(name, "sample_clips")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED, split_index]))
    rounds = -(-n // len(names))
    order = np.concatenate([rng.permutation(len(names)) for _ in range(rounds)]) if rounds else []
    clips = []
    for i, k in enumerate(order[:n]):
        words = np.random.SeedSequence([seed, i]).generate_state(2, dtype=np.uint32)
        clip_seed = (int(words[0]) << 31) ^ int(words[1])
        clips.append(render_clip(names[int(k)], clip_seed, seconds, sample_rate, split=split))
    return clips


def mix(clips: Sequence[Clip | np.ndarray], gains_db: Sequence[float]) -> np.ndarray:
    """Sum of the sources scaled by ``gains_db`` (no normalisation: sources and mixture stay exact).

    Shape:
        K clips of (N,) -> (N,) float32.
    """
    if len(clips) != len(gains_db) or not clips:
        raise ValueError(f"mix: expected as many gains as clips (>= 1), got {len(clips)} and {len(gains_db)}")
    arrays = [np.asarray(c.audio if isinstance(c, Clip) else c, dtype=np.float32) for c in clips]
    rates = {c.sample_rate for c in clips if isinstance(c, Clip)}
    if len(rates) > 1:
        raise ValueError(f"mix: expected one sample rate, got {sorted(rates)}")
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 1:
        raise ValueError(f"mix: expected 1-D sources of one length, got shapes {sorted(shapes)}")
    out = np.zeros_like(arrays[0])
    for a, g in zip(arrays, gains_db, strict=True):
        out += np.float32(10.0 ** (g / 20.0)) * a
    return out


def stack(clips: Sequence[Clip]) -> tuple[np.ndarray, list[str]]:
    """Batch clips of one length: (audio (B, N) float32, captions).

    Shape:
        B clips of (N,) -> (B, N).
    """
    lengths = {c.audio.shape for c in clips}
    if len(lengths) != 1:
        raise ValueError(f"stack: expected clips of one length, got shapes {sorted(lengths)}")
    return np.stack([c.audio for c in clips]), [c.caption for c in clips]


def save_clips(path: str | Path, clips: Sequence[Clip]) -> None:
    """Cache clips of one length and rate in one ``.npz`` (audio matrix + JSON metadata)."""
    audio, _ = stack(clips)
    rates = {c.sample_rate for c in clips}
    if len(rates) != 1:
        raise ValueError(f"save_clips: expected one sample rate, got {sorted(rates)}")
    meta = [
        {"family": c.family, "caption": c.caption, "attributes": c.attributes, "seed": c.seed} for c in clips
    ]
    np.savez(path, audio=audio, sample_rate=np.int64(rates.pop()), meta=np.array(json.dumps(meta)))


def load_clips(path: str | Path) -> list[Clip]:
    """Read clips written by ``save_clips``."""
    with np.load(path) as data:
        audio, sample_rate, meta = data["audio"], int(data["sample_rate"]), json.loads(str(data["meta"]))
    return [
        Clip(audio[i], sample_rate, m["family"], m["caption"], m["attributes"], m["seed"])
        for i, m in enumerate(meta)
    ]
