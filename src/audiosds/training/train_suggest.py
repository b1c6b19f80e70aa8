"""Train the prompt-suggestion model: the scorer's dual encoder, taught which classes a mixture holds.

    python -m audiosds.training.train_suggest --data DATA --out DIR [--seed 0] [--steps 6000]
        [--init WEIGHTS_DIR] [--set KEY=VALUE ...] [--resume]
    python -m audiosds.training.train_suggest --out DIR --export PKG_DIR

The shipped prompt scorer (``train_scorer.py``) learned single world sounds against single captions;
asked what a two-sound mixture of real recordings holds, it ranks both true classes in its top 3 for
1 mixture in 30 (benchmarks/RESULTS.md, "Prompt suggestion"). Suggestion is multi-label tagging over a
fixed set of classes (:func:`audiosds.world.classes.candidates`: the world's families and the real
recordings' classes), so this trainer:

1. caches (once, ``DIR/cache/`` or ``--cache``) ``world_clips`` train-split world clips and every
   training clip of ``--data`` (ESC-10 folds 1-4, drum one-shots, spoken digits outside the held-out
   takes), all at 16 kHz, plus ``captions_per_class`` training-phrasing captions per class and their
   frozen MiniLM embeddings;
2. draws each row of a batch as a mixture of 1-3 sources of distinct classes (class-uniform; a class
   the world and the recordings share draws from either), one crop length per step, each source's
   level drawn around equal RMS, one-shots placed at a random offset; a share ``real_rows`` of the
   mixtures is made of recordings only;
3. scores every row against every class (each class's text is one random caption of it this step)
   and minimises the binary cross-entropy of ``scale * cosine + bias`` against the row's classes (a
   sigmoid loss, as SigLIP's: each class is present or not, independently of the others);
4. starts from the shipped scorer's weights (or ``--init``: the shipped model's second stage starts
   from the first stage's export), so the audio and text branches begin aligned;
5. every draw is a pure function of (seed, step): a resumed run replays the same batches;
6. exports ``DIR/export/scorer.safetensors`` + ``scorer.json`` + ``training.json`` (the EMA weights,
   float16), the files :class:`audiosds.scorer.EmbeddedScorer` loads (``weights_dir``). The bias
   is kept in ``training.json`` (cosine ranks the classes; the bias only calibrates).

Held out of everything: ESC-10 fold 5, the held-out digit takes and the world's held-out split,
which ``benchmarks/suggest.py`` mixes. One intra-op thread (the other core trains the prior).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from audiosds.models.scorer import ScorerNet
from audiosds.models.text import TextEncoder
from audiosds.training.run import (
    EMA,
    RunLog,
    add_export_argument,
    add_override_argument,
    apply_overrides,
    cosine_lr,
    export_checkpoint,
    export_weights,
    finish_run,
    open_run,
    parameter_count,
    save_checkpoint,
    step_seed,
)
from audiosds.training.train_scorer import _save_npy, _write_json

WEIGHTS_NAME = "scorer"  # the file names EmbeddedScorer loads
CACHE_DIR = "cache"
RATE = 16000


@dataclass(frozen=True)
class SuggestTrainConfig:
    seed: int = 0
    world_clips: int = 6200  # train-split world clips (200 per family)
    clip_seconds: float = 4.0  # cached length of world clips; real clips keep up to real_seconds
    real_seconds: float = 5.0
    render_chunk: int = 620
    captions_per_class: int = 24
    batch: int = 96
    sources: tuple[float, ...] = (0.25, 0.5, 0.25)  # P(1 source), P(2), P(3)
    crop_seconds: tuple[float, float] = (0.5, 4.0)  # log-uniform, one per step
    level_db: float = 8.0  # each source's level: uniform +-level_db around equal RMS
    gain_db: tuple[float, float] = (-30.0, 6.0)  # the mixture's level
    real_share: float = 0.5  # a class both the world and the recordings have draws a recording this often
    real_rows: float = 0.0  # share of mixtures made of recordings only (what users' mixtures are)
    # Augmentations (off by default: a run without them draws exactly what it drew before they
    # existed): each source played at a speed log-uniform in ``speed`` (pitch and tempo together),
    # each mixture's spectrum tilted by up to +-tilt_db across 125 Hz-8 kHz (:func:`tilt`)
    speed: tuple[float, float] = (1.0, 1.0)
    tilt_db: float = 0.0
    lr: float = 5e-4
    weight_decay: float = 0.02
    warmup: int = 100
    final_lr_fraction: float = 0.05
    grad_clip: float = 1.0
    ema_decay: float = 0.998
    init_bias: float = -10.0
    bias_lr_scale: float = 20.0  # the bias learns this much faster (it starts far from its level)
    val_mixtures: int = 240
    log_every: int = 50
    eval_every: int = 500
    checkpoint_every: int = 250

    def __post_init__(self) -> None:
        for name in ("sources", "crop_seconds", "gain_db", "speed"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if abs(sum(self.sources) - 1.0) > 1e-6 or any(p < 0 for p in self.sources):
            raise ValueError(
                f"SuggestTrainConfig.sources: expected probabilities summing to 1, got {self.sources}"
            )
        if not 0.0 <= self.real_rows <= 1.0:
            raise ValueError(
                f"SuggestTrainConfig.real_rows: expected a share in [0, 1], got {self.real_rows}"
            )
        if not 0.5 <= self.speed[0] <= self.speed[1] <= 2.0:
            raise ValueError(f"SuggestTrainConfig.speed: expected 0.5 <= lo <= hi <= 2, got {self.speed}")
        lo, hi = self.crop_seconds
        if not 0 < lo <= hi <= self.clip_seconds:
            raise ValueError(
                f"SuggestTrainConfig.crop_seconds: expected 0 < lo <= hi <= {self.clip_seconds}, "
                f"got {self.crop_seconds}"
            )


_CACHE_KEYS = ("seed", "world_clips", "clip_seconds", "real_seconds", "render_chunk", "captions_per_class")


# ----------------------------------------------------------------------------------------------
# 1. the cache


@dataclass
class SuggestCache:
    audio: np.ndarray  # (n, N) float16, zero-padded
    length: np.ndarray  # (n,) int64: samples of each clip before padding
    pool: np.ndarray  # (n,) int64: the clip's source pool (class index * 2 + is_real)
    classes: list[str]  # candidate names, in candidates() order
    caption_emb: np.ndarray  # (K, captions_per_class, 384) float32


def _class_of(name: str) -> str:
    from audiosds.world.classes import SAME_AS

    return SAME_AS.get(name, name)


def class_captions(classes: list[str], seed: int, per_class: int) -> list[list[str]]:
    """Training-phrasing captions naming each candidate class (attribute-free for world families)."""
    from audiosds.world import FAMILIES, make_caption
    from audiosds.world.real import REAL_CLASSES, make_real_caption

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5A6]))
    sources: dict[str, list[str]] = {c: [] for c in classes}
    for family in FAMILIES:
        sources[_class_of(family)].append("world:" + family)
    for cls in REAL_CLASSES:
        sources[_class_of(cls)].append("real:" + cls)
    out = []
    for c in classes:
        chosen: list[str] = []
        for _ in range(50 * per_class):
            kind, name = sources[c][int(rng.integers(len(sources[c])))].split(":")
            if kind == "world":
                text = make_caption(name, {}, rng, split="train")
            else:
                text = make_real_caption(
                    name, rng, "train", int(rng.integers(10)) if name == "spoken_digit" else None
                )
            if text not in chosen:
                chosen.append(text)
            if len(chosen) == per_class:
                break
        out.append(chosen + [chosen[i % len(chosen)] for i in range(per_class - len(chosen))])
    return out


def build_cache(cfg: SuggestTrainConfig, data: Path, folder: Path, log: RunLog) -> SuggestCache:
    """Render / read (once) and load the clips and caption embeddings in ``folder``."""
    from audiosds.audio import load_audio, resample
    from audiosds.world import sample_clips
    from audiosds.world.classes import candidates
    from audiosds.world.real import load_catalogue

    folder.mkdir(parents=True, exist_ok=True)
    wanted = {k: getattr(cfg, k) for k in _CACHE_KEYS} | {"data": str(Path(data).resolve())}
    meta = folder / "config.json"
    if meta.is_file() and json.loads(meta.read_text()) != wanted:
        raise ValueError(
            f"suggest cache {folder}: expected config {wanted}, got {json.loads(meta.read_text())}"
        )
    _write_json(meta, wanted)
    classes = [c.name for c in candidates()]
    index = {c: i for i, c in enumerate(classes)}

    if not (folder / "caption_emb.npy").is_file():
        texts = class_captions(classes, cfg.seed, cfg.captions_per_class)
        encoder = TextEncoder()
        emb = np.stack([encoder(t).numpy() for t in texts]).astype(np.float32)
        _write_json(folder / "captions.json", dict(zip(classes, texts, strict=True)))
        _save_npy(folder / "caption_emb.npy", emb)
        log(f"cache: {len(classes)} classes x {cfg.captions_per_class} captions embedded")

    if not (folder / "audio.npy").is_file():
        width = round(max(cfg.clip_seconds, cfg.real_seconds) * RATE)
        rows, lengths, pools = [], [], []
        t0 = time.monotonic()
        for start in range(0, cfg.world_clips, cfg.render_chunk):
            n = min(cfg.render_chunk, cfg.world_clips - start)
            for clip in sample_clips(
                "train", n, cfg.clip_seconds, RATE, seed=cfg.seed * 1_000_003 + 7 + start
            ):
                rows.append(clip.audio.astype(np.float16))
                pools.append(2 * index[_class_of(clip.family)])
            log(f"cache: rendered {start + n}/{cfg.world_clips} world clips ({time.monotonic() - t0:.0f}s)")
        real = [c for c in load_catalogue(data) if c.split == "train"]
        for i, clip in enumerate(real):
            audio, sr = load_audio(clip.path)
            mono = resample(audio.mean(axis=0, keepdims=True), sr, RATE)[0][: round(cfg.real_seconds * RATE)]
            rows.append(mono.astype(np.float16))
            pools.append(2 * index[_class_of(clip.cls)] + 1)
            if (i + 1) % 500 == 0 or i + 1 == len(real):
                log(f"cache: read {i + 1}/{len(real)} training recordings ({time.monotonic() - t0:.0f}s)")
        audio = np.zeros((len(rows), width), dtype=np.float16)
        for i, r in enumerate(rows):
            audio[i, : len(r)] = r
            lengths.append(len(r))
        _save_npy(folder / "length.npy", np.asarray(lengths, dtype=np.int64))
        _save_npy(folder / "pool.npy", np.asarray(pools, dtype=np.int64))
        _save_npy(folder / "audio.npy", audio)

    return SuggestCache(
        audio=np.load(folder / "audio.npy", mmap_mode="r"),
        length=np.load(folder / "length.npy"),
        pool=np.load(folder / "pool.npy"),
        classes=classes,
        caption_emb=np.load(folder / "caption_emb.npy"),
    )


# ----------------------------------------------------------------------------------------------
# 2. mixtures


def _speed(x: np.ndarray, factor: float) -> np.ndarray:
    """``x`` played ``factor`` times faster (linear interpolation): pitch and tempo move together."""
    at = np.arange(0.0, len(x) - 1, factor)
    return np.interp(at, np.arange(len(x)), x).astype(np.float32)


def tilt(audio: np.ndarray, tilt_db: np.ndarray) -> np.ndarray:
    """Each row's spectrum tilted by ``tilt_db[row]`` dB per 6 octaves around 1 kHz (+-1 kHz * 8),
    flat outside 125 Hz-8 kHz.

    Shape:
        audio (B, N), tilt_db (B,) -> (B, N)
    """
    n = audio.shape[1]
    freqs = np.fft.rfftfreq(n, 1.0 / RATE)
    octaves = np.clip(np.log2(np.maximum(freqs, 1.0) / 1000.0), -3.0, 3.0) / 3.0  # -1 .. 1
    gain = 10.0 ** (tilt_db[:, None] * octaves[None, :] / 20.0)
    return np.fft.irfft(np.fft.rfft(audio, axis=1) * gain, n=n, axis=1).astype(np.float32)


def _source(
    cache: SuggestCache, clip: int, crop: int, rng: np.random.Generator, speed: float = 1.0
) -> np.ndarray:
    """A crop of ``crop`` samples of one clip played ``speed`` times faster: the loudest of three
    random starts; a clip shorter than the crop (a one-shot, a digit) is placed whole at a random
    offset."""
    n = int(cache.length[clip])
    x = cache.audio[clip, :n].astype(np.float32)
    if speed != 1.0:
        x = _speed(x, speed)
        n = len(x)
    if n <= crop:
        out = np.zeros(crop, dtype=np.float32)
        at = int(rng.integers(0, crop - n + 1))
        out[at : at + n] = x
        return out
    starts = rng.integers(0, n - crop + 1, size=3)
    crops = [x[s : s + crop] for s in starts]
    return max(crops, key=lambda c: float(np.square(c).sum()))


def draw_mixtures(
    cache: SuggestCache, cfg: SuggestTrainConfig, rng: np.random.Generator, count: int, crop: int
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` mixtures of 1-3 sources of distinct classes and their multi-hot class labels.

    Shape:
        -> audio (count, crop) float32, labels (count, K) float32
    """
    k = len(cache.classes)
    by_pool = {int(p): np.flatnonzero(cache.pool == p) for p in np.unique(cache.pool)}
    drawable = np.unique(cache.pool // 2)  # classes with at least one clip (all of them in a real run)
    recorded = np.unique(cache.pool[cache.pool % 2 == 1] // 2)  # classes with recordings
    audio = np.zeros((count, crop), dtype=np.float32)
    labels = np.zeros((count, k), dtype=np.float32)
    for row in range(count):
        # drawn only when asked for: a config without recorded-only rows replays its old draws
        real_row = cfg.real_rows > 0 and len(recorded) > 0 and rng.random() < cfg.real_rows
        classes = recorded if real_row else drawable
        n_src = min(len(classes), 1 + int(rng.choice(len(cfg.sources), p=cfg.sources)))
        for cls in rng.choice(classes, size=n_src, replace=False):
            pools = [p for p in (2 * cls, 2 * cls + 1) if p in by_pool]
            if real_row:
                pool = 2 * cls + 1
            elif len(pools) == 2:
                pool = pools[1] if rng.random() < cfg.real_share else pools[0]
            else:
                pool = pools[0]
            clip = int(rng.choice(by_pool[pool]))
            speed = 1.0
            if cfg.speed[1] > cfg.speed[0]:
                speed = math.exp(rng.uniform(math.log(cfg.speed[0]), math.log(cfg.speed[1])))
            x = _source(cache, clip, crop, rng, speed)
            rms = float(np.sqrt(np.mean(np.square(x)))) + 1e-8
            level = 10.0 ** (rng.uniform(-cfg.level_db, cfg.level_db) / 20.0)
            audio[row] += x * (0.1 * level / rms)
            labels[row, cls] = 1.0
    gains = 10.0 ** (rng.uniform(*cfg.gain_db, size=count) / 20.0) * rng.choice([-1.0, 1.0], size=count)
    if cfg.tilt_db > 0:
        audio = tilt(audio, rng.uniform(-cfg.tilt_db, cfg.tilt_db, size=count))
    return (audio * gains[:, None]).astype(np.float32), labels


def draw_batch(
    cache: SuggestCache, cfg: SuggestTrainConfig, step: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The step's mixtures, their labels and one caption embedding per class.

    Shape:
        -> audio (batch, crop), labels (batch, K), text (K, 384)
    """
    rng = np.random.default_rng(step_seed(cfg.seed, step, 1))
    lo, hi = cfg.crop_seconds
    crop = round(math.exp(rng.uniform(math.log(lo), math.log(hi))) * RATE)
    audio, labels = draw_mixtures(cache, cfg, rng, cfg.batch, crop)
    pick = rng.integers(0, cache.caption_emb.shape[1], size=len(cache.classes))
    text = cache.caption_emb[np.arange(len(cache.classes)), pick]
    return torch.from_numpy(audio), torch.from_numpy(labels), torch.from_numpy(text)


def sigmoid_loss(
    audio_emb: torch.Tensor,
    text_emb: torch.Tensor,
    scale: torch.Tensor,
    bias: torch.Tensor,
    labels: torch.Tensor,
) -> torch.Tensor:
    """Mean binary cross-entropy of ``scale * cos + bias`` against multi-hot labels.

    Shape:
        audio_emb (B, E), text_emb (K, E), labels (B, K) -> scalar
    """
    logits = scale * audio_emb @ text_emb.T + bias
    return F.binary_cross_entropy_with_logits(logits, labels)


# ----------------------------------------------------------------------------------------------
# 3. validation, training, export


@torch.no_grad()
def validate(model: ScorerNet, cache: SuggestCache, audio: np.ndarray, labels: np.ndarray) -> float:
    """Share of validation mixtures whose classes are all in the top 3 (class text: mean of its captions)."""
    model.eval()
    emb = torch.from_numpy(cache.caption_emb)  # (K, C, 384)
    text = model.embed_text(emb.reshape(-1, emb.shape[-1])).reshape(*emb.shape[:2], -1).mean(dim=1)
    text = F.normalize(text, dim=-1)
    scores = torch.cat([model.embed_audio(torch.from_numpy(c)) for c in np.array_split(audio, 8)]) @ text.T
    top = scores.topk(3, dim=1).indices.numpy()
    hits = [set(np.flatnonzero(lab)) <= set(t) for lab, t in zip(labels, top, strict=True)]
    return float(np.mean(hits))


def _init_name(init: str) -> object:
    """Where training started, without this machine's paths: the shipped scorer by name, an earlier
    export of this trainer by its own training.json (so a two-stage recipe reads in full)."""
    from audiosds.scorer import default_weights_dir

    if Path(init).resolve() == default_weights_dir().resolve():
        return "the shipped prompt scorer (audiosds/weights/scorer)"
    info = Path(init) / "training.json"
    return json.loads(info.read_text()) if info.is_file() else init


def export(state: dict[str, object], directory: Path) -> Path:
    from audiosds.models.scorer import ScorerConfig

    cfg = ScorerConfig(**state["model_config"])
    model = ScorerNet(cfg)
    model.load_state_dict(state["ema"])
    path = export_weights(model, cfg.to_dict(), directory, WEIGHTS_NAME, dtype="float16")
    info = {
        "purpose": "prompt suggestion (audiosds suggest): multi-label tagging of mixtures",
        "train_config": state["train_config"],
        "init": _init_name(str(state["init"])),
        "step": int(state["step"]),
        "total_steps": int(state["total_steps"]),
        "val_all_in_top3": float(state["val"]),
        "bias": float(state["bias"]),
        "parameters": parameter_count(model),
        "trained_on": "the procedural world (train split), ESC-10 folds 1-4, drum one-shots, spoken digits "
        "(takes 0-44); held out: ESC-10 fold 5, digit takes 45-49, the world's held-out split",
    }
    (Path(directory) / "training.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return path


def train(
    out: Path,
    data: Path,
    cfg: SuggestTrainConfig,
    steps: int,
    resume: bool,
    init: Path,
    cache_dir: Path | None = None,
) -> Path:
    """Run (or resume) training in ``out``; returns the exported weights file."""
    from audiosds.scorer import load_scorer_net

    torch.set_num_threads(1)
    log, state = open_run(out, resume)
    if state is not None:
        cfg = SuggestTrainConfig(**state["train_config"])
        steps = int(state["total_steps"])
    cache = build_cache(cfg, data, cache_dir or out / CACHE_DIR, log)
    val_audio, val_labels = draw_mixtures(
        cache, cfg, np.random.default_rng(step_seed(cfg.seed, 10**9, 7)), cfg.val_mixtures, 2 * RATE
    )

    torch.manual_seed(cfg.seed)
    base = load_scorer_net(init)
    model = ScorerNet(base.cfg)
    model.load_state_dict({k: v.float() for k, v in base.state_dict().items()})
    model.train()
    for p in model.parameters():
        p.requires_grad_(True)
    bias = torch.nn.Parameter(torch.tensor(cfg.init_bias))
    ema = EMA(model, cfg.ema_decay)
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay, "scale": 1.0},
            {"params": no_decay, "weight_decay": 0.0, "scale": 1.0},
            {"params": [bias], "weight_decay": 0.0, "scale": cfg.bias_lr_scale},
        ],
        lr=cfg.lr,
    )
    step, val = 0, float("nan")
    if state is not None:
        model.load_state_dict(state["model"])
        ema.model.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        with torch.no_grad():
            bias.copy_(torch.tensor(float(state["bias"])))
        step, val = int(state["step"]), float(state["val"])
        log(f"resumed at step {step}/{steps}")
    else:
        start = validate(model, cache, val_audio, val_labels)
        log(
            f"suggest model: {parameter_count(model)} parameters from {init}, {steps} steps, "
            f"{len(cache.classes)} classes, {cache.audio.shape[0]} clips; "
            f"validation before training {start:.3f}; "
            f"config {asdict(cfg)}"
        )

    def snapshot() -> dict[str, object]:
        return {
            "model": model.state_dict(),
            "ema": ema.model.state_dict(),
            "optimizer": opt.state_dict(),
            "bias": float(bias.detach()),
            "step": step,
            "total_steps": steps,
            "val": val,
            "init": str(init),
            "train_config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
            "model_config": model.cfg.to_dict(),
        }

    t0, running, first = time.monotonic(), 0.0, step
    while step < steps:
        lr = cosine_lr(step, steps, cfg.lr, cfg.warmup, cfg.final_lr_fraction)
        for group in opt.param_groups:
            group["lr"] = lr * group["scale"]
        audio, labels, text = draw_batch(cache, cfg, step)
        torch.manual_seed(step_seed(cfg.seed, step, 3))
        model.train()
        loss = sigmoid_loss(
            model.embed_audio(audio), model.embed_text(text), model.temperature_scale(), bias, labels
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*model.parameters(), bias], cfg.grad_clip)
        opt.step()
        ema.update(model, step)
        step += 1
        running = loss.item() if step == first + 1 else 0.98 * running + 0.02 * loss.item()
        if step % cfg.log_every == 0:
            rate = (time.monotonic() - t0) / max(1, step - first)
            log(
                f"step {step}/{steps} loss {running:.4f} lr {lr:.2e} "
                f"scale {model.temperature_scale().item():.1f} "
                f"bias {bias.item():.2f} crop {audio.shape[1] / RATE:.2f}s {rate:.2f}s/step"
            )
        if step % cfg.eval_every == 0 or step == steps:
            val = validate(ema.model, cache, val_audio, val_labels)
            log(
                f"step {step}: validation, all classes of a training-split mixture "
                f"in the top 3 (EMA) {val:.3f}"
            )
        if step % cfg.checkpoint_every == 0:
            save_checkpoint(out, snapshot())
    return finish_run(out, snapshot(), export, log)


def main(argv: list[str] | None = None) -> None:
    from audiosds.scorer import default_weights_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="run directory (log, checkpoint, cache)")
    parser.add_argument("--data", type=Path, help="the real-sound folder (with manifest.csv)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    parser.add_argument("--cache", type=Path, default=None, help="cache folder (default DIR/cache)")
    parser.add_argument(
        "--init", type=Path, default=None, help="scorer weights to start from (default: the shipped scorer)"
    )
    add_export_argument(parser)
    add_override_argument(parser)
    args = parser.parse_args(argv)
    if args.export is not None:
        export_checkpoint(args.out, args.export, export, "train_suggest")
        return
    if args.data is None:
        parser.error("--data: expected the real-sound folder")
    try:
        cfg = SuggestTrainConfig(
            **apply_overrides(asdict(SuggestTrainConfig(seed=args.seed)), args.overrides)
        )
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    train(args.out, args.data, cfg, args.steps, args.resume, args.init or default_weights_dir(), args.cache)


if __name__ == "__main__":
    main()
