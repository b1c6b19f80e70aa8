"""Training data of the mel prior: world clips plus real recordings, as log-mels with captions.

:func:`load_or_build` renders and records everything once into ``CACHE/mel_cache_<digest>.pt``:

1. ``world_clips`` clips of the procedural world (balanced over families, 22.05 kHz, ``seconds``
   long), each with the world's caption plus re-phrasings;
2. every training clip of the real-sound folder (``--data``; :mod:`audiosds.world.real`), several
   *renditions* each: an energy-weighted ``seconds`` crop of long clips, short clips (drums, digits)
   placed in a window of silence, a random level;
3. reverberation as an attribute: a share of clips is convolved with a room, hall or plate response
   (:mod:`audiosds.world.reverb`) and every caption of it names that reverb ("in a large hall");
   some dry clips say they are dry;
4. log-mels of all of it (:class:`audiosds.models.mel.MelSpectrogram`, stored as float16) and MiniLM
   embeddings of every distinct caption;
5. a held-out set for the evaluation loss: world clips of the held-out split and ESC-10 fold 5,
   with held-out phrasings.

Everything is a pure function of the config's seed. Batches (:func:`mel_batch`) draw clips with
equal weight per class (world family or real class; ``class_weights`` can raise one), a random
``frames`` crop and a random caption, from (seed, step).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .run import step_seed

SILENCE_DB = -100.0


@dataclass(frozen=True)
class MelDataConfig:
    world_clips: int = 9000  # procedural clips (~10 ms each to render at 22.05 kHz)
    seconds: float = 3.0  # stored clip length (259 mel frames)
    frames: int = 256  # training crop, a multiple of the U-Net's stride
    esc_renditions: int = 6  # crops / levels / reverbs of each ESC-10 training clip
    drum_renditions: int = 10
    digit_renditions: int = 1  # 2,700 training digits already
    reverb_prob: float = 0.3  # share of naturally dry clips given a room, hall or plate
    dry_caption_prob: float = 0.15  # share of dry clips whose captions say so
    rooms_per_kind: int = 8  # simulated room and hall responses in the bank
    captions_per_clip: int = 4
    eval_world: int = 160  # held-out world clips for the evaluation loss (plus ESC-10 fold 5)
    seed: int = 0
    families: tuple[str, ...] | None = None  # world families (None: all); [] with real data: real only
    real_classes: tuple[str, ...] | None = None  # real classes (None: all)
    # sampling weight of a class relative to 1 (the rest): speech varies more than one drum
    class_weights: tuple[tuple[str, float], ...] = (("spoken_digit", 3.0),)

    def __post_init__(self) -> None:
        for name in ("families", "real_classes"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(value))
        object.__setattr__(self, "class_weights", tuple((str(k), float(v)) for k, v in self.class_weights))
        if self.frames < 8 or self.frames % 4:
            raise ValueError(f"MelDataConfig.frames: expected a multiple of 4 >= 8, got {self.frames}")

    def digest(self, data_dir: Path | None) -> str:
        key = json.dumps({**asdict(self), "data": str(data_dir)}, sort_keys=True)
        return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass
class MelSet:
    """Log-mels (n, 80, L) float16, a caption index per (clip, alternative) into ``text``, a class per
    clip."""

    mels: Tensor
    caption_ids: Tensor  # (n, captions_per_clip) long
    text: Tensor  # (U, 384)
    captions: list[str]
    classes: list[str]

    def state(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in ("mels", "caption_ids", "text", "captions", "classes")}

    def __len__(self) -> int:
        return self.mels.shape[0]


def random_level(
    x: np.ndarray, rng: np.random.Generator, lo_db: float = -30.0, hi_db: float = -16.0
) -> np.ndarray:
    """Scale to a random RMS in [lo_db, hi_db] dBFS with the peak kept <= 0.98."""
    rms = np.sqrt(np.mean(x**2)) + 1e-9
    y = x * (10 ** (rng.uniform(lo_db, hi_db) / 20) / rms)
    peak = np.max(np.abs(y))
    return (y * (0.98 / peak) if peak > 0.98 else y).astype(np.float32)


def _crop(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """An ``n``-sample window of a longer clip, drawn with probability ~ sqrt(window energy)."""
    if len(x) <= n:
        return np.pad(x, (0, n - len(x)))
    hop = 2205
    starts = np.arange(0, len(x) - n + 1, hop)
    energy = np.array([np.sum(x[s : s + n] ** 2) for s in starts]) + 1e-12
    p = np.sqrt(energy) / np.sqrt(energy).sum()
    s = int(rng.choice(starts, p=p))
    return x[s : s + n]


def _place(x: np.ndarray, n: int, rng: np.random.Generator, latest_s: float, sr: int) -> np.ndarray:
    """A short clip at a random start in ``[0, latest_s]`` inside ``n`` samples of silence."""
    x = x[:n]
    start = int(rng.uniform(0, min(latest_s * sr, n - len(x))))
    out = np.zeros(n, np.float32)
    out[start : start + len(x)] = x
    return out


def _reverb_caption(captions: list[str], kind: str, rng: np.random.Generator, split: str) -> list[str]:
    from audiosds.world.reverb import reverb_phrase

    return [f"{c}, {reverb_phrase(kind, rng, split)}" for c in captions]


def _world_items(cfg: MelDataConfig, split: str, n: int, bank, sr: int, log) -> list[tuple]:
    from audiosds.world import make_caption, sample_clips

    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x3E1, split == "heldout"]))
    t0 = time.monotonic()
    clips = sample_clips(split, n, seconds=cfg.seconds, sample_rate=sr, seed=cfg.seed, families=cfg.families)
    items = []
    for clip in clips:
        captions = [clip.caption] + [
            make_caption(clip.family, clip.attributes, rng, split) for _ in range(cfg.captions_per_clip - 1)
        ]
        audio = clip.audio
        if clip.attributes.get("distance", "near") == "near" and bank is not None:
            audio, captions = _maybe_reverb(audio, captions, cfg, bank, rng, split)
        items.append((audio, captions, clip.family))
    log(f"rendered {len(items)} {split} world clips in {time.monotonic() - t0:.1f}s")
    return items


def _maybe_reverb(audio, captions, cfg: MelDataConfig, bank, rng, split):
    from audiosds.world.reverb import apply_reverb

    if rng.random() < cfg.reverb_prob:
        kind = ("room", "hall", "plate")[int(rng.integers(3))]
        wet = float(rng.uniform(0.5, 0.9))
        return apply_reverb(audio, bank.draw(kind, rng), wet), _reverb_caption(captions, kind, rng, split)
    if rng.random() < cfg.dry_caption_prob:
        return audio, _reverb_caption(captions, "dry", rng, split)
    return audio, captions


def _real_items(cfg: MelDataConfig, data_dir: Path, split: str, bank, sr: int, log) -> list[tuple]:
    import soundfile as sf

    from audiosds.audio import resample
    from audiosds.world.real import load_catalogue, make_real_caption

    n = round(cfg.seconds * sr)
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x2EA1, split == "heldout"]))
    t0 = time.monotonic()
    items = []
    for clip in load_catalogue(data_dir):
        if clip.split != split or (cfg.real_classes is not None and clip.cls not in cfg.real_classes):
            continue
        if split == "heldout" and clip.cls == "spoken_digit":
            continue  # the held-out loss uses ESC-10 fold 5 and the world; digits have their own benchmark
        audio, rate = sf.read(str(clip.path), dtype="float32", always_2d=True)
        audio = resample(audio.mean(axis=1), rate, sr).reshape(-1)
        is_esc = clip.path.parent.parent.name == "esc10"
        renditions = (
            1
            if split == "heldout"
            else (
                cfg.esc_renditions
                if is_esc
                else cfg.digit_renditions
                if clip.cls == "spoken_digit"
                else cfg.drum_renditions
            )
        )
        for _ in range(renditions):
            if is_esc:
                x = _crop(audio, n, rng)
            else:
                latest = 1.5 if clip.cls == "spoken_digit" else 0.4
                x = _place(audio, n, rng, latest, sr)
            x = random_level(x, rng)
            captions = [
                make_real_caption(clip.cls, rng, split, clip.digit) for _ in range(cfg.captions_per_clip)
            ]
            if bank is not None and split == "train":
                x, captions = _maybe_reverb(x, captions, cfg, bank, rng, split)
            items.append((x, captions, clip.cls))
    log(f"prepared {len(items)} {split} real renditions in {time.monotonic() - t0:.1f}s")
    return items


@torch.no_grad()
def _to_set(items: list[tuple], text_encoder, log) -> MelSet:
    from audiosds.models.mel import MelSpectrogram

    mel = MelSpectrogram()
    t0 = time.monotonic()
    mels = []
    for i in range(0, len(items), 64):
        x = torch.from_numpy(np.stack([it[0] for it in items[i : i + 64]]))
        mels.append(mel.log_mel(x).to(torch.float16))
    mels = torch.cat(mels)
    captions = sorted({c for it in items for c in it[1]})
    index = {c: i for i, c in enumerate(captions)}
    caption_ids = torch.tensor([[index[c] for c in it[1]] for it in items], dtype=torch.long)
    log(f"log-mels {tuple(mels.shape)} in {time.monotonic() - t0:.1f}s; embedding {len(captions)} captions")
    t0 = time.monotonic()
    text = text_encoder(captions).to(torch.float32)
    log(f"embedded captions in {time.monotonic() - t0:.1f}s")
    return MelSet(mels, caption_ids, text, captions, [it[2] for it in items])


def load_or_build(
    cfg: MelDataConfig, data_dir: Path | None, folder: Path, log: Callable[[str], None], text_encoder=None
) -> tuple[MelSet, MelSet]:
    """(training set, held-out set), from ``folder/mel_cache_<digest>.pt`` or built and saved there.

    ``data_dir`` None trains on the world alone.
    """
    from audiosds.models.mel import MelConfig
    from audiosds.world.real import impulse_response_paths
    from audiosds.world.reverb import build_bank

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"mel_cache_{cfg.digest(data_dir)}.pt"
    if path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=True)
        return MelSet(**state["train"]), MelSet(**state["heldout"])
    if text_encoder is None:
        from audiosds.models.text import TextEncoder

        text_encoder = TextEncoder()
    sr = MelConfig().sample_rate
    t0 = time.monotonic()
    plates = impulse_response_paths(data_dir) if data_dir is not None else []
    bank = build_bank(sr, cfg.seed, cfg.rooms_per_kind, plates)
    log(
        f"reverb bank: {', '.join(f'{k} {len(v)}' for k, v in bank.responses.items())} "
        f"in {time.monotonic() - t0:.1f}s"
    )
    families_on = cfg.families is None or len(cfg.families) > 0
    train_items = _world_items(cfg, "train", cfg.world_clips, bank, sr, log) if families_on else []
    eval_items = _world_items(cfg, "heldout", cfg.eval_world, None, sr, log) if families_on else []
    if data_dir is not None:
        train_items += _real_items(cfg, Path(data_dir), "train", bank, sr, log)
        eval_items += _real_items(cfg, Path(data_dir), "heldout", None, sr, log)
    train_set, eval_set = _to_set(train_items, text_encoder, log), _to_set(eval_items, text_encoder, log)
    torch.save({"train": train_set.state(), "heldout": eval_set.state()}, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    return train_set, eval_set


def class_probabilities(classes: list[str], weights: dict[str, float]) -> np.ndarray:
    """Per-clip sampling probability: equal total per class, times the class's weight."""
    names, inverse, counts = np.unique(np.array(classes), return_inverse=True, return_counts=True)
    w = np.array([weights.get(str(n), 1.0) for n in names])
    p = (w / counts)[inverse]
    return p / p.sum()


def mel_batch(
    data: MelSet, probs: np.ndarray, step: int, batch: int, frames: int, seed: int
) -> tuple[Tensor, Tensor]:
    """Seeded batch: class-balanced clips, a random ``frames`` crop of each, a random caption.

    Shape:
        -> log_mel (batch, 80, frames) float32, cond (batch, 384)
    """
    rng = np.random.default_rng(step_seed(seed, step, 1))
    pick = rng.choice(len(data), size=batch, p=probs)
    starts = rng.integers(0, data.mels.shape[-1] - frames + 1, size=batch)
    alt = rng.integers(0, data.caption_ids.shape[1], size=batch)
    mels = torch.stack([data.mels[i, :, s : s + frames] for i, s in zip(pick, starts, strict=True)]).float()
    return mels, data.text[data.caption_ids[torch.from_numpy(pick), torch.from_numpy(alt)]]
