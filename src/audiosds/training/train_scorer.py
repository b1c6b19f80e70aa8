"""Train the embedded prompt-alignment scorer contrastively on the procedural sound world.

    python -m audiosds.training.train_scorer --out DIR [--seed 0] [--minutes M] [--resume]
    python -m audiosds.training.train_scorer --out DIR --export PKG_DIR

1. Cache (once, in ``DIR/cache/``, or ``--cache``): ``clips`` train-split world clips of
   ``clip_seconds`` (``audio.npy``, float16), a caption pool with ``captions_per_combo``
   training-phrasing captions for every (family, attribute words) combination, made by
   ``world.make_caption``, and their frozen MiniLM embeddings (``caption_emb.npy``), plus a
   validation set (fresh train-split clips and attribute-free class prompts in training phrasings;
   the held-out split is left to ``benchmarks/scorer_retrieval.py``).
2. Steps: a batch of random clips, one random crop length per step (log-uniform in
   ``crop_seconds``), per-row random start (the louder of two candidates), gain and polarity, and
   for each clip a random caption of its (family, attributes) combination; symmetric InfoNCE
   (:func:`contrastive_loss`) with targets smoothed over same-family pairs; AdamW, warmup + cosine.
3. Every draw is a pure function of (seed, step), so a resumed run replays the same batches; the
   schedule has ``round(minutes * steps_per_minute)`` steps (or ``--steps``). A wall-clock cap of
   ``minutes`` stops a slower machine early (logged); then the result depends on the machine.
4. ``DIR/checkpoint.pt`` every ``checkpoint_every`` steps; at the end ``DIR/export/scorer.safetensors``
   (the EMA weights, float16) + ``scorer.json`` (:class:`ScorerConfig`) + ``training.json``, the
   files :class:`audiosds.scorer.EmbeddedScorer` loads. ``--export PKG_DIR`` writes them from the
   checkpoint into ``PKG_DIR`` (e.g. ``src/audiosds/weights/scorer``).

Training uses one intra-op thread (the other core of the 2-core machine trains the prior).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from audiosds.models.scorer import ScorerConfig, ScorerNet, contrastive_loss
from audiosds.models.text import TextEncoder
from audiosds.training.run import (
    EMA,
    Budget,
    RunLog,
    add_export_argument,
    cosine_lr,
    export_checkpoint,
    export_weights,
    finish_run,
    open_run,
    parameter_count,
    save_checkpoint,
    step_seed,
)

WEIGHTS_NAME = "scorer"
CACHE_DIR = "cache"


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    clips: int = 12000  # train-split world clips in the cache (balanced over families)
    clip_seconds: float = 4.0  # cached clip length; crops are drawn from it
    render_chunk: int = 496  # clips per sample_clips call while building the cache (16 rounds of 31)
    captions_per_combo: int = 16  # captions per (family, attribute words) combination in the pool
    val_clips: int = 310  # fresh train-split clips for the validation retrieval
    val_seconds: float = 2.0
    val_prompts_per_family: int = 4  # attribute-free class prompts per family (training phrasings)
    batch: int = 96
    crop_seconds: tuple[float, float] = (0.5, 4.0)  # log-uniform crop length, one per step
    gain_db: tuple[float, float] = (-30.0, 6.0)  # random level (the front end normalises it away)
    # With probability noise_prob a row gets white noise at a level drawn uniformly in noise_floor_db
    # below its RMS: renders and decoder outputs carry such floors, the world's clips do not, and the
    # scorer trained without them lost 19 points of retrieval at -40 dB. 0 reproduces the shipped scorer.
    noise_prob: float = 0.0
    noise_floor_db: tuple[float, float] = (-60.0, -20.0)
    family_smoothing: float = 0.1  # target mass spread over same-family pairs (their captions often fit)
    lr: float = 2e-3
    weight_decay: float = 0.02
    warmup: int = 200
    final_lr_fraction: float = 0.05
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    steps_per_minute: float = 110.0  # measured on the 2-core machine with the prior training beside it
    log_every: int = 50
    eval_every: int = 500
    checkpoint_every: int = 250

    def __post_init__(self) -> None:
        for name in ("crop_seconds", "gain_db", "noise_floor_db"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        lo, hi = self.crop_seconds
        if not 0 < lo <= hi <= self.clip_seconds:
            raise ValueError(
                f"TrainConfig.crop_seconds: expected 0 < lo <= hi <= {self.clip_seconds}, "
                f"got {self.crop_seconds}"
            )
        if not 0.0 <= self.noise_prob <= 1.0:
            raise ValueError(f"TrainConfig.noise_prob: expected a value in [0, 1], got {self.noise_prob}")
        if self.noise_floor_db[0] > self.noise_floor_db[1]:
            raise ValueError(
                f"TrainConfig.noise_floor_db: expected (lo, hi) with lo <= hi, got {self.noise_floor_db}"
            )


# ----------------------------------------------------------------------------------------------
# 1. the cache


def _combo_key(family: str, attributes: dict[str, str]) -> str:
    return family + "|" + ",".join(f"{a}={attributes[a]}" for a in sorted(attributes))


def _save_npy(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(path.stem + ".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, sort_keys=True) + "\n")
    os.replace(tmp, path)


def caption_pool(seed: int, per_combo: int) -> tuple[list[str], list[str], np.ndarray]:
    """Training-phrasing captions for every (family, attribute words) combination of the world.

    Returns:
        (texts, combo_keys, table): the unique captions, one key per combination, and
        ``table[c, k]`` the index in ``texts`` of the k-th caption of combination c.

    Shape:
        table (num_combos, per_combo) int64
    """
    from audiosds.world import AXES, FAMILIES, make_caption

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xCA9]))
    index: dict[str, int] = {}
    keys, rows = [], []
    for family, fam in FAMILIES.items():
        for words in itertools.product(*(AXES[a] for a in fam.attributes)):
            attributes = dict(zip(fam.attributes, words, strict=True))
            keys.append(_combo_key(family, attributes))
            row = []
            for _ in range(per_combo):
                text = make_caption(family, attributes, rng, split="train")
                row.append(index.setdefault(text, len(index)))
            rows.append(row)
    return list(index), keys, np.asarray(rows, dtype=np.int64)


def class_prompts(split: str, per_family: int, seed: int) -> dict[str, list[str]]:
    """Attribute-free captions naming each family, in the phrasings of ``split`` (distinct where possible)."""
    from audiosds.world import FAMILIES, make_caption

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xC1A55]))
    prompts = {}
    for family in FAMILIES:
        chosen: list[str] = []
        for _ in range(50 * per_family):
            text = make_caption(family, {}, rng, split=split)
            if text not in chosen:
                chosen.append(text)
            if len(chosen) == per_family:
                break
        prompts[family] = chosen
    return prompts


@dataclass
class Cache:
    audio: np.ndarray  # (n, N) float16 (memory-mapped)
    combo: np.ndarray  # (n,) int64: row of caption_table
    family: np.ndarray  # (n,) int64: index into families
    caption_table: np.ndarray  # (num_combos, per_combo) int64
    caption_emb: np.ndarray  # (num_captions, 384) float32
    families: list[str]
    val_audio: np.ndarray  # (n_val, N_val) float32
    val_family: np.ndarray  # (n_val,) int64
    val_prompt_emb: np.ndarray  # (num_families, per_family, 384) float32


def build_cache(cfg: TrainConfig, folder: Path, log: RunLog) -> Cache:
    """Render (once) and load the clip cache, caption pool and validation set in ``folder``."""
    from audiosds.world import FAMILIES, sample_clips

    folder.mkdir(parents=True, exist_ok=True)
    wanted = {k: getattr(cfg, k) for k in _CACHE_KEYS}  # what the cached files depend on
    meta_path = folder / "config.json"
    if meta_path.is_file():
        found = json.loads(meta_path.read_text())
        if found != wanted:
            raise ValueError(f"scorer cache {folder}: expected config {wanted}, got {found}")
    else:
        _write_json(meta_path, wanted)
    families = list(FAMILIES)
    encoder = TextEncoder()

    # 1a. caption pool and its MiniLM embeddings
    texts, keys, table = caption_pool(cfg.seed, cfg.captions_per_combo)
    if not (folder / "caption_emb.npy").is_file():
        log(f"cache: embedding {len(texts)} captions ({len(keys)} combinations) with MiniLM")
        emb = np.concatenate([encoder(texts[i : i + 512]).numpy() for i in range(0, len(texts), 512)])
        _write_json(folder / "captions.json", {"texts": texts, "keys": keys})
        _save_npy(folder / "caption_emb.npy", emb.astype(np.float32))
    combo_of = {k: i for i, k in enumerate(keys)}

    # 1b. training clips, rendered chunk by chunk
    n_samples = round(cfg.clip_seconds * 16000)
    if not (folder / "audio.npy").is_file():
        audio = np.zeros((cfg.clips, n_samples), dtype=np.float16)
        combo, family = np.zeros(cfg.clips, dtype=np.int64), np.zeros(cfg.clips, dtype=np.int64)
        t0 = time.monotonic()
        for start in range(0, cfg.clips, cfg.render_chunk):
            n = min(cfg.render_chunk, cfg.clips - start)
            chunk_seed = cfg.seed * 1_000_003 + start // cfg.render_chunk
            for j, clip in enumerate(sample_clips("train", n, cfg.clip_seconds, 16000, seed=chunk_seed)):
                audio[start + j] = clip.audio
                combo[start + j] = combo_of[_combo_key(clip.family, clip.attributes)]
                family[start + j] = families.index(clip.family)
            log(f"cache: rendered {start + n}/{cfg.clips} clips ({time.monotonic() - t0:.0f}s)")
        _save_npy(folder / "combo.npy", combo)
        _save_npy(folder / "family.npy", family)
        _save_npy(folder / "audio.npy", audio)

    # 1c. validation: fresh train-split clips vs attribute-free class prompts (training phrasings)
    if not (folder / "val_prompt_emb.npy").is_file():
        val = sample_clips(
            "train", cfg.val_clips, cfg.val_seconds, 16000, seed=cfg.seed * 1_000_003 + 999_983
        )
        prompts = class_prompts("train", cfg.val_prompts_per_family, cfg.seed)
        emb = np.stack([encoder(prompts[f]).numpy() for f in families])
        _save_npy(folder / "val_audio.npy", np.stack([c.audio for c in val]).astype(np.float32))
        _save_npy(folder / "val_family.npy", np.array([families.index(c.family) for c in val]))
        _save_npy(folder / "val_prompt_emb.npy", emb.astype(np.float32))

    return Cache(
        audio=np.load(folder / "audio.npy", mmap_mode="r"),
        combo=np.load(folder / "combo.npy"),
        family=np.load(folder / "family.npy"),
        caption_table=table,
        caption_emb=np.load(folder / "caption_emb.npy"),
        families=families,
        val_audio=np.load(folder / "val_audio.npy"),
        val_family=np.load(folder / "val_family.npy"),
        val_prompt_emb=np.load(folder / "val_prompt_emb.npy"),
    )


_CACHE_KEYS = (
    "seed",
    "clips",
    "clip_seconds",
    "render_chunk",
    "captions_per_combo",
    "val_clips",
    "val_seconds",
    "val_prompts_per_family",
)


# ----------------------------------------------------------------------------------------------
# 2. one batch


def draw_batch(cache: Cache, cfg: TrainConfig, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The step's crops, caption embeddings and family-smoothed InfoNCE targets.

    Shape:
        -> audio (batch, crop), text (batch, 384), targets (batch, batch)
    """
    rng = np.random.default_rng(step_seed(cfg.seed, step, 1))
    n, length = cache.audio.shape
    idx = np.sort(rng.integers(0, n, size=cfg.batch))  # sorted: friendlier to the memory map
    lo, hi = cfg.crop_seconds
    crop = min(length, round(math.exp(rng.uniform(math.log(lo), math.log(hi))) * 16000))
    starts = rng.integers(0, length - crop + 1, size=(cfg.batch, 2))
    gains = 10.0 ** (rng.uniform(*cfg.gain_db, size=cfg.batch) / 20.0) * rng.choice(
        [-1.0, 1.0], size=cfg.batch
    )
    captions = cache.caption_table[cache.combo[idx], rng.integers(0, cache.caption_table.shape[1], cfg.batch)]
    rows = []
    for i, (a, b) in zip(idx, starts, strict=True):
        ca = cache.audio[i, a : a + crop].astype(np.float32)
        cb = cache.audio[i, b : b + crop].astype(np.float32)
        rows.append(ca if float(np.square(ca).sum()) >= float(np.square(cb).sum()) else cb)
    audio = np.stack(rows)
    if cfg.noise_prob > 0:  # drawn after everything else: noise_prob = 0 replays the batches without it
        noisy = rng.random(cfg.batch) < cfg.noise_prob
        level = 10.0 ** (rng.uniform(*cfg.noise_floor_db, size=cfg.batch) / 20.0)
        rms = np.sqrt(np.square(audio).mean(axis=1))
        noise = rng.standard_normal(audio.shape).astype(np.float32)
        audio = audio + (noisy * level * rms).astype(np.float32)[:, None] * noise
    audio = torch.from_numpy(audio * gains[:, None].astype(np.float32))
    text = torch.from_numpy(cache.caption_emb[captions])
    fam = torch.from_numpy(cache.family[idx])
    same = (fam[:, None] == fam[None, :]).float()
    eps = cfg.family_smoothing
    targets = (1.0 - eps) * torch.eye(cfg.batch) + eps * same / same.sum(dim=1, keepdim=True)
    return audio, text, targets


# ----------------------------------------------------------------------------------------------
# 3. validation, training, export


@torch.no_grad()
def validate(model: ScorerNet, cache: Cache) -> float:
    """Top-1 family retrieval of validation clips vs class prompts (cosine averaged over phrasings)."""
    model.eval()
    prompts = torch.from_numpy(cache.val_prompt_emb)  # (F, K, 384)
    text = model.embed_text(prompts.reshape(-1, prompts.shape[-1])).reshape(*prompts.shape[:2], -1)
    audio = torch.cat([model.embed_audio(torch.from_numpy(c)) for c in np.array_split(cache.val_audio, 8)])
    scores = torch.einsum("be,fke->bfk", audio, text).mean(dim=-1)  # (B, F)
    return float((scores.argmax(dim=1).numpy() == cache.val_family).mean())


def export(state: dict[str, object], directory: Path) -> Path:
    """Write the checkpoint's EMA weights (float16) + scorer.json + training.json into ``directory``."""
    cfg = ScorerConfig(**state["model_config"])
    model = ScorerNet(cfg)
    model.load_state_dict(state["ema"])
    path = export_weights(model, cfg.to_dict(), directory, WEIGHTS_NAME, dtype="float16")
    info = {
        "train_config": state["train_config"],
        "step": int(state["step"]),
        "total_steps": int(state["total_steps"]),
        "val_top1": float(state["val_top1"]),
        "parameters": parameter_count(model),
    }
    (Path(directory) / "training.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return path


def train(
    out: Path,
    cfg: TrainConfig,
    minutes: float | None,
    steps: int | None,
    resume: bool,
    cache_dir: Path | None = None,
    model_cfg: ScorerConfig | None = None,
) -> Path:
    """Run (or resume) training in ``out``; returns the exported weights file."""
    torch.set_num_threads(1)
    log, state = open_run(out, resume)
    if state is not None:
        cfg = TrainConfig(**state["train_config"])
        model_cfg = ScorerConfig(**state["model_config"])
        total = int(state["total_steps"])
    else:
        model_cfg = model_cfg or ScorerConfig()
        if steps is None and minutes is None:
            raise ValueError("train_scorer: expected --minutes or --steps, got neither")
        total = steps if steps is not None else max(1, round(minutes * cfg.steps_per_minute))
    cache = build_cache(cfg, cache_dir or out / CACHE_DIR, log)

    torch.manual_seed(cfg.seed)
    model = ScorerNet(model_cfg)
    ema = EMA(model, cfg.ema_decay)
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.ndim >= 2 else no_decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
    )
    step, val_top1 = 0, float("nan")
    if state is not None:
        model.load_state_dict(state["model"])
        ema.model.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        step, val_top1 = int(state["step"]), float(state["val_top1"])
        log(f"resumed at step {step}/{total}")
    else:
        log(f"scorer: {parameter_count(model)} parameters, {total} steps, config {asdict(cfg)}")

    def snapshot() -> dict[str, object]:
        return {
            "model": model.state_dict(),
            "ema": ema.model.state_dict(),
            "optimizer": opt.state_dict(),
            "step": step,
            "total_steps": total,
            "val_top1": val_top1,
            "train_config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()},
            "model_config": model_cfg.to_dict(),
        }

    budget = Budget(minutes)
    t0, running, start_step = time.monotonic(), 0.0, step
    while step < total:
        if budget.expired():
            log(f"wall-clock budget of {minutes} min reached at step {step}/{total}: stopping early")
            break
        lr = cosine_lr(step, total, cfg.lr, cfg.warmup, cfg.final_lr_fraction)
        for group in opt.param_groups:
            group["lr"] = lr
        audio, text, targets = draw_batch(cache, cfg, step)
        torch.manual_seed(step_seed(cfg.seed, step, 3))  # dropout draws replay on resume
        model.train()
        loss = contrastive_loss(
            model.embed_audio(audio), model.embed_text(text), model.temperature_scale(), targets
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        ema.update(model, step)
        step += 1
        running = loss.item() if step == start_step + 1 else 0.98 * running + 0.02 * loss.item()
        if step % cfg.log_every == 0:
            rate = (time.monotonic() - t0) / max(1, step - start_step)
            temperature = 1.0 / model.temperature_scale().detach().item()
            log(
                f"step {step}/{total} loss {running:.4f} lr {lr:.2e} temp {temperature:.4f} "
                f"crop {audio.shape[1] / 16000:.2f}s {rate:.2f}s/step"
            )
        if step % cfg.eval_every == 0 or step == total:
            val_top1 = validate(ema.model, cache)
            log(f"step {step}: validation top-1 (EMA, train phrasings, unseen clips) {val_top1:.3f}")
        if step % cfg.checkpoint_every == 0:
            save_checkpoint(out, snapshot())
    if step % cfg.eval_every != 0 and step != total:
        val_top1 = validate(ema.model, cache)
        log(f"step {step}: validation top-1 {val_top1:.3f}")
    return finish_run(out, snapshot(), export, log)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="run directory (log, checkpoint, cache)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=None, help="schedule length and wall-clock cap")
    parser.add_argument(
        "--steps", type=int, default=None, help="schedule length (overrides --minutes' count)"
    )
    parser.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    parser.add_argument("--cache", type=Path, default=None, help="cache folder (default DIR/cache)")
    parser.add_argument(
        "--noise-prob",
        type=float,
        default=TrainConfig.noise_prob,
        help="share of rows given a white-noise floor (default 0: the shipped scorer's recipe)",
    )
    add_export_argument(parser)
    args = parser.parse_args(argv)
    if args.export is not None:
        export_checkpoint(args.out, args.export, export, "train_scorer")
        return
    try:
        cfg = TrainConfig(seed=args.seed, noise_prob=args.noise_prob)
    except ValueError as err:
        parser.error(str(err))
    train(args.out, cfg, args.minutes, args.steps, args.resume, args.cache)


if __name__ == "__main__":
    main()
