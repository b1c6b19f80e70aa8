"""Training data from the procedural sound world: a pre-rendered clip cache and seeded batches.

Two ways to feed a training step:

* :func:`load_or_render_cache` renders ``clips`` world clips once, in shards written atomically
  to ``DIR/cache/`` (an interrupted render resumes at the first missing shard), and returns a
  :class:`ClipSet`; :func:`audio_batch` then draws seeded random crops from it.
* :func:`stream_clips` renders fresh clips for every step (no cache, slower).

Every draw is a pure function of (seed, step), so a resumed run sees the same batches.
The world is imported on first use only (``sampler`` may replace it, e.g. in tests).
Each clip keeps ``captions_per_clip`` captions: the world's own plus re-phrasings made by
:func:`audiosds.world.make_caption` from the clip's family and attributes, for caption variety.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .run import step_seed

Sampler = Callable[
    ..., list
]  # sample_clips(split, n, seconds=, sample_rate=, seed=, families=) -> list[Clip]
Captioner = Callable[[object, np.random.Generator], str]  # (clip, rng) -> another caption for it

CACHE_DIR = "cache"


@dataclass(frozen=True)
class DataConfig:
    split: str = "train"
    clips: int = 8192  # clips in the cache (2 ms each to render; 0.5 GB of float32 latents)
    seconds: float = 2.0  # length of each world clip
    sample_rate: int = 16000
    seed: int = 0  # world seed; shard i is rendered with seed * 1_000_003 + i
    shard_size: int = 128  # clips per cache shard (the unit of resume)
    captions_per_clip: int = 4  # the world's caption + re-phrasings (1: the world's only)
    families: tuple[str, ...] | None = None  # None: every family

    def __post_init__(self) -> None:
        if self.split not in ("train", "heldout"):
            raise ValueError(f"DataConfig.split: expected 'train' or 'heldout', got {self.split!r}")
        for name in ("clips", "shard_size", "captions_per_clip", "sample_rate"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"DataConfig.{name}: expected a positive int, got {value!r}")
        if not self.seconds > 0:
            raise ValueError(f"DataConfig.seconds: expected > 0, got {self.seconds}")
        if self.families is not None:
            object.__setattr__(self, "families", tuple(self.families))

    @property
    def num_samples(self) -> int:
        return round(self.seconds * self.sample_rate)


@dataclass
class ClipSet:
    """Rendered clips: audio (n, N) and, per clip, its captions, family and attributes."""

    audio: np.ndarray  # (n, N) float16 or float32
    captions: list[list[str]]
    families: list[str]
    attributes: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return self.audio.shape[0]

    @staticmethod
    def concat(parts: Sequence[ClipSet]) -> ClipSet:
        return ClipSet(
            np.concatenate([p.audio for p in parts]),
            [c for p in parts for c in p.captions],
            [f for p in parts for f in p.families],
            [a for p in parts for a in p.attributes],
        )


def world_sampler() -> Sampler:
    from audiosds.world import sample_clips

    return sample_clips


def world_captioner(split: str) -> Captioner:
    """Re-phrase a clip's caption with the world's ``split`` phrasings (seeded by ``rng``)."""
    from audiosds.world import make_caption

    def captioner(clip: object, rng: np.random.Generator) -> str:
        return make_caption(clip.family, clip.attributes, rng, split=split)

    return captioner


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def render_clips(
    cfg: DataConfig, n: int, seed: int, sampler: Sampler | None = None, captioner: Captioner | None = None
) -> ClipSet:
    """Render ``n`` clips of the configured split with world seed ``seed``.

    Clips are cut or zero-padded to exactly ``cfg.num_samples``.
    """
    sampler = world_sampler() if sampler is None else sampler
    clips = sampler(
        cfg.split,
        n,
        seconds=cfg.seconds,
        sample_rate=cfg.sample_rate,
        seed=seed,
        families=None if cfg.families is None else list(cfg.families),
    )
    if cfg.captions_per_clip > 1 and captioner is None:
        captioner = world_captioner(cfg.split)
    rng = np.random.default_rng(step_seed(seed, 0, 7))
    audio = np.zeros((len(clips), cfg.num_samples), dtype=np.float32)
    captions, families, attributes = [], [], []
    for i, clip in enumerate(clips):
        if clip.sample_rate != cfg.sample_rate:
            raise ValueError(f"world clip: expected sample_rate {cfg.sample_rate}, got {clip.sample_rate}")
        a = np.asarray(clip.audio, dtype=np.float32).reshape(-1)[: cfg.num_samples]
        audio[i, : a.shape[0]] = a
        alternatives = [clip.caption]
        for _ in range(cfg.captions_per_clip - 1):
            alternatives.append(captioner(clip, rng))
        captions.append(alternatives)
        families.append(str(clip.family))
        attributes.append(_jsonable(dict(clip.attributes)))
    return ClipSet(audio, captions, families, attributes)


def load_or_render_cache(
    cfg: DataConfig,
    directory: Path,
    log: Callable[[str], None] = print,
    sampler: Sampler | None = None,
    captioner: Captioner | None = None,
) -> ClipSet:
    """The clip cache in ``DIR/cache/``, rendering missing shards first (float16 audio + JSON meta).

    The cache records its :class:`DataConfig`; a cache made with another config is an error
    rather than silently mixed.
    """
    folder = Path(directory) / CACHE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    meta_path = folder / "config.json"
    wanted = json.dumps(_jsonable(cfg.__dict__), sort_keys=True)
    if meta_path.is_file():
        if meta_path.read_text().strip() != wanted:
            raise ValueError(
                f"clip cache {folder}: expected config {wanted}, got {meta_path.read_text().strip()}"
            )
    else:
        meta_path.write_text(wanted + "\n")
    parts = []
    shards = -(-cfg.clips // cfg.shard_size)
    rendered = 0
    for shard in range(shards):
        n = min(cfg.shard_size, cfg.clips - shard * cfg.shard_size)
        path = folder / f"shard_{shard:05d}.npz"
        if not path.is_file():
            part = render_clips(cfg, n, cfg.seed * 1_000_003 + shard, sampler, captioner)
            tmp = folder / f"shard_{shard:05d}.tmp.npz"
            meta = json.dumps(
                {"captions": part.captions, "families": part.families, "attributes": part.attributes}
            )
            np.savez(tmp, audio=part.audio.astype(np.float16), meta=np.array(meta))
            os.replace(tmp, path)
            rendered += 1
            if rendered % 16 == 0 or shard == shards - 1:
                log(f"cache: rendered shard {shard + 1}/{shards} ({cfg.shard_size} clips each) in {folder}")
        with np.load(path) as f:
            meta = json.loads(str(f["meta"]))
            parts.append(ClipSet(f["audio"], meta["captions"], meta["families"], meta["attributes"]))
    return ClipSet.concat(parts)


def audio_batch(
    clips: ClipSet,
    step: int,
    batch: int,
    crop: int,
    seed: int,
    gain_db: tuple[float, float] = (0.0, 0.0),
    every_clip: bool = False,
) -> Tensor:
    """Seeded random crops of random clips, scaled by a random gain and polarity.

    Args:
        clips: the clip set.
        step: training step (with ``seed``, fixes every draw).
        batch: rows.
        crop: samples per row (<= clip length).
        seed: run seed.
        gain_db: uniform gain range in dB.
        every_clip: one crop of each clip in order (``batch`` must equal ``len(clips)``; for
            freshly streamed clips) instead of clips drawn at random.

    Shape:
        -> (batch, 1, crop) float32
    """
    length = clips.audio.shape[1]
    if not 0 < crop <= length:
        raise ValueError(f"crop: expected 1..{length} samples, got {crop}")
    if every_clip and batch != len(clips):
        raise ValueError(f"batch: expected len(clips) = {len(clips)} with every_clip, got {batch}")
    rng = np.random.default_rng(step_seed(seed, step, 1))
    idx = np.arange(batch) if every_clip else rng.integers(0, len(clips), size=batch)
    start = rng.integers(0, length - crop + 1, size=batch)
    gain = 10.0 ** (rng.uniform(gain_db[0], gain_db[1], size=batch) / 20.0) * rng.choice(
        [-1.0, 1.0], size=batch
    )
    rows = np.stack(
        [clips.audio[i, s : s + crop].astype(np.float32) for i, s in zip(idx, start, strict=True)]
    )
    return torch.from_numpy(rows * gain[:, None].astype(np.float32))[:, None, :]


def stream_clips(
    cfg: DataConfig,
    step: int,
    batch: int,
    seed: int,
    sampler: Sampler | None = None,
    captioner: Captioner | None = None,
) -> ClipSet:
    """``batch`` fresh clips for one step (world seed derived from (seed, step); no cache)."""
    return render_clips(cfg, batch, step_seed(seed, step, 2) % (2**31), sampler, captioner)


__all__ = [
    "CACHE_DIR",
    "ClipSet",
    "DataConfig",
    "audio_batch",
    "load_or_render_cache",
    "render_clips",
    "stream_clips",
    "world_captioner",
    "world_sampler",
]
