"""Train the embedded prior's text-conditioned EDM denoiser on autoencoder latents of the world.

    python -m audiosds.training.train_diffusion --out DIR --autoencoder AE_EXPORT_DIR [--resume] [--threads 2]
        [--seed 0] [--minutes M] [--steps N] [--cache DIR] [--export-only]

1. The clip cache (``CACHE/cache/``, CACHE = ``--cache`` or DIR) is encoded once with the frozen
   autoencoder (posterior means) and every caption embedded once with frozen MiniLM, into
   ``CACHE/cache/latents_<autoencoder digest>.pt``.
2. sigma_data is measured as the std of those latents and written into the denoiser's config.
3. EDM training (:func:`audiosds.models.denoiser.edm_loss`): log sigma ~ N(p_mean, p_std^2),
   a random caption of each clip, condition dropout to the learned null embedding (for CFG).
4. The EMA weights go to ``DIR/export/denoiser.{safetensors,json}``, beside a copy of the
   autoencoder's files: ``DIR/export`` is then a complete embedded-prior weights folder.

Reproducible from ``--seed`` like the autoencoder script: each step's batch, captions, sigmas,
noise and dropout come from (seed, step); ``--resume`` replays exactly.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from audiosds.models.denoiser import DenoiserConfig, EDMDenoiser, edm_coefficients, edm_loss
from audiosds.models.text import TextEncoder

from .data import CACHE_DIR, ClipSet, DataConfig, Sampler, load_or_render_cache
from .run import (
    EMA,
    EXPORT_DIR,
    Budget,
    RunLog,
    Schedule,
    Trainer,
    add_override_argument,
    apply_overrides,
    export_weights,
    load_checkpoint,
    open_run,
    parameter_count,
    step_generator,
    step_seed,
    write_config,
)

NAME = "denoiser"
EVAL_SIGMAS = (0.1, 0.5, 1.0, 3.0, 10.0)  # held-out denoising loss is reported at these noise levels


@dataclass(frozen=True)
class DiffusionTrainConfig:
    # Fixes the LR schedule; the shipped weights are the full run (0.455 s/step on 2 idle cores: 83 min).
    steps: int = 11000
    batch: int = 16  # whole clips (2 s = 500 latent frames) per step
    lr: float = 3e-4
    warmup: int = 300
    final_lr_fraction: float = 0.1
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    checkpoint_every: int = 500
    log_every: int = 50
    eval_clips: int = 64  # cache clips held out of training for the denoising-loss report
    seed: int = 0
    export_dtype: str = "float16"  # shipped precision (halves the size)
    # Standardised text and more training at high noise (where the text decides the family; EDM's
    # p_mean -1.2, p_std 1.2 put 1% of the draws above sigma 5): the first shipped denoiser, trained
    # with neither, ignored the text.
    model: DenoiserConfig = field(
        default_factory=lambda: DenoiserConfig(cond_standardize=True, p_mean=-0.6, p_std=1.4)
    )
    data: DataConfig = field(default_factory=DataConfig)

    @classmethod
    def from_dict(cls, d: dict) -> DiffusionTrainConfig:
        d = dict(d)
        return cls(
            model=DenoiserConfig.from_dict(d.pop("model", {})), data=DataConfig(**d.pop("data", {})), **d
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return json.loads(json.dumps(d))


@dataclass
class LatentSet:
    """Encoded clips: latents (n, D, T), a caption index per (clip, alternative) into ``text`` (U, 384)."""

    latents: Tensor
    caption_ids: Tensor  # (n, captions_per_clip) long
    text: Tensor
    captions: list[str]

    def state(self) -> dict[str, object]:
        return {
            "latents": self.latents,
            "caption_ids": self.caption_ids,
            "text": self.text,
            "captions": self.captions,
        }


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@torch.no_grad()
def encode_clips(
    clips: ClipSet, autoencoder_dir: Path, folder: Path, log: RunLog, text: TextEncoder | None = None
) -> LatentSet:
    """Latents and caption embeddings of every clip, cached in ``folder/latents_<digest>.pt`` where
    the digest is the autoencoder weights' (another autoencoder encodes afresh)."""
    from audiosds.priors.embedded import load_autoencoder

    digest = file_digest(Path(autoencoder_dir) / "autoencoder.safetensors")
    path = Path(folder) / f"latents_{digest}.pt"
    if path.is_file():
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state["latents"].shape[0] == len(clips):
            return LatentSet(state["latents"], state["caption_ids"], state["text"], list(state["captions"]))
    model = load_autoencoder(autoencoder_dir)
    t0 = time.monotonic()
    latents = []
    for i in range(0, len(clips), 32):
        x = torch.from_numpy(clips.audio[i : i + 32].astype(np.float32))[:, None, :]
        latents.append(model.encode(x))
    latents = torch.cat(latents)  # (n, D, T)
    log(f"encoded {len(clips)} clips in {time.monotonic() - t0:.1f}s: latents {tuple(latents.shape)}")
    captions = sorted({c for alts in clips.captions for c in alts})
    index = {c: i for i, c in enumerate(captions)}
    caption_ids = torch.tensor([[index[c] for c in alts] for alts in clips.captions], dtype=torch.long)
    t0 = time.monotonic()
    text = (TextEncoder() if text is None else text)(captions)
    log(f"embedded {len(captions)} distinct captions in {time.monotonic() - t0:.1f}s")
    result = LatentSet(latents, caption_ids, text, captions)
    torch.save(result.state(), path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    return result


def latent_batch(data: LatentSet, rows: Tensor, step: int, batch: int, seed: int) -> tuple[Tensor, Tensor]:
    """Seeded batch: random clips among ``rows`` and a random caption of each.

    Shape:
        -> z (batch, D, T), cond (batch, 384)
    """
    rng = np.random.default_rng(step_seed(seed, step, 1))
    pick = rows[torch.from_numpy(rng.integers(0, len(rows), size=batch))]
    alt = torch.from_numpy(rng.integers(0, data.caption_ids.shape[1], size=batch))
    return data.latents[pick], data.text[data.caption_ids[pick, alt]]


@torch.no_grad()
def evaluate(model: EDMDenoiser, data: LatentSet, rows: Tensor, seed: int) -> dict[str, float]:
    """Held-out EDM loss (in units of sigma_data^2 on x0) at fixed sigmas, with the clip's caption, with
    the next clip's ("other") and with the null condition: the caption should give the lowest."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    z = data.latents[rows]
    cond = data.text[data.caption_ids[rows, 0]]
    eps = torch.randn(z.shape, generator=g)
    out = {}
    for sigma in EVAL_SIGMAS:
        s = torch.full((len(rows),), sigma)
        z_sigma = z + sigma * eps
        conditions = (("cond", cond), ("other", cond.roll(1, 0)), ("null", model.null_embedding(len(rows))))
        for name, c in conditions:
            x0 = torch.cat(
                [model(z_sigma[i : i + 32], s[i : i + 32], c[i : i + 32]) for i in range(0, len(rows), 32)]
            )
            _, c_out, _, _ = edm_coefficients(s[:1], model.config.sigma_data)
            out[f"{name}@{sigma:g}"] = float((x0 - z).square().mean() / c_out.square())
    return out


def export(model: EDMDenoiser, out: Path, autoencoder_dir: Path, provenance: dict, dtype: str) -> Path:
    """Denoiser EMA weights (stored as ``dtype``) + config, the autoencoder's files and ``training.json``
    to ``OUT/export``."""
    folder = Path(out) / EXPORT_DIR
    path = export_weights(model, model.config.to_dict(), folder, NAME, dtype)
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(Path(autoencoder_dir) / f"autoencoder{suffix}", folder / f"autoencoder{suffix}")
    (folder / "training.json").write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    return path


def train(
    cfg: DiffusionTrainConfig,
    out: Path,
    autoencoder_dir: Path,
    resume: bool = False,
    minutes: float | None = None,
    cache: Path | None = None,
    sampler: Sampler | None = None,
    captioner: object | None = None,
    stop_at: int | None = None,
    text: TextEncoder | None = None,
) -> list[dict[str, float]]:
    """Train (or resume) in ``out`` up to ``cfg.steps``; returns the losses of the steps run here.

    ``stop_at`` (a step) and ``minutes`` (wall time) end the run early with a checkpoint; the
    LR schedule still follows ``cfg.steps``, so a resumed run matches an uninterrupted one.

    Raises:
        ValueError: ``out`` holds a run and ``resume`` is False, or the stored config differs.
    """
    out = Path(out)
    log, state = open_run(out, resume)
    clips = load_or_render_cache(cfg.data, cache or out, log, sampler, captioner)
    data = encode_clips(clips, autoencoder_dir, Path(cache or out) / CACHE_DIR, log, text)
    if len(clips) <= cfg.eval_clips:
        raise ValueError(
            f"eval_clips: expected fewer than the {len(clips)} cached clips, got {cfg.eval_clips}"
        )
    train_rows = torch.arange(cfg.eval_clips, len(clips))
    eval_rows = torch.arange(cfg.eval_clips)
    sigma_data = float(data.latents[train_rows].std())
    latent_mean = float(data.latents[train_rows].mean())
    cfg = replace(
        cfg,
        model=replace(cfg.model, sigma_data=round(sigma_data, 6), latent_channels=int(data.latents.shape[1])),
    )
    log(f"latents: sigma_data {sigma_data:.4f}, mean {latent_mean:.4f}")

    write_config(out, cfg.to_dict(), resume)

    torch.manual_seed(cfg.seed)
    model = EDMDenoiser(cfg.model)
    if cfg.model.cond_standardize:
        model.net.set_cond_statistics(data.text[data.caption_ids[train_rows].unique()])
    ema = EMA(model, cfg.ema_decay)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
    trainer = Trainer(out, log, model, ema, opt, state)
    log(
        f"denoiser: {parameter_count(model) / 1e6:.3f} M parameters; {cfg.steps} steps of batch {cfg.batch}; "
        f"{len(train_rows)} training clips, {len(data.captions)} captions"
    )

    def loss_of_step(step: int) -> tuple[Tensor, dict[str, float]]:
        z, cond = latent_batch(data, train_rows, step, cfg.batch, cfg.seed)
        return edm_loss(model, z, cond, step_generator(cfg.seed, step)), {}

    history = trainer.run(
        Schedule.of(cfg),
        loss_of_step,
        lambda ema_model: evaluate(ema_model, data, eval_rows, cfg.seed + 1),
        stop_at,
        Budget(minutes),
    )
    step = trainer.step
    provenance = {
        "steps_done": step,
        "steps": cfg.steps,
        "seed": cfg.seed,
        "sigma_data": sigma_data,
        "latent_mean": latent_mean,
        "autoencoder": file_digest(Path(autoencoder_dir) / "autoencoder.safetensors"),
    }
    path = export(ema.model, out, autoencoder_dir, provenance, cfg.export_dtype)
    log(f"stopped at step {step}/{cfg.steps}; exported {path}")
    return history


def export_only(out: Path, autoencoder_dir: Path) -> Path:
    """Re-export the EMA weights of the checkpoint in ``out``; the latent statistics the run measured
    (unrounded sigma_data, latent_mean) are kept from its earlier ``training.json`` when there is one."""
    out = Path(out)
    state = load_checkpoint(out)
    if state is None:
        raise ValueError(f"{out}: expected a {NAME} checkpoint, found none")
    cfg = DiffusionTrainConfig.from_dict(json.loads((out / "train_config.json").read_text()))
    model = EDMDenoiser(cfg.model)
    model.load_state_dict(state["ema"])
    provenance = {
        "steps_done": int(state["step"]),
        "steps": cfg.steps,
        "seed": cfg.seed,
        "sigma_data": cfg.model.sigma_data,
        "autoencoder": file_digest(Path(autoencoder_dir) / "autoencoder.safetensors"),
    }
    earlier = out / EXPORT_DIR / "training.json"
    stored = json.loads(earlier.read_text()) if earlier.is_file() else {}
    provenance.update({key: stored[key] for key in ("sigma_data", "latent_mean") if key in stored})
    return export(model, out, autoencoder_dir, provenance, cfg.export_dtype)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="run directory (log, checkpoint, export)")
    parser.add_argument(
        "--autoencoder",
        type=Path,
        required=True,
        help="folder with autoencoder.safetensors/.json (the autoencoder run's export/)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=None, help="stop early after this wall time")
    parser.add_argument("--steps", type=int, default=None, help="total steps (default: the config's)")
    parser.add_argument("--clips", type=int, default=None, help="clips in the training cache")
    parser.add_argument("--cache", type=Path, default=None, help="folder holding cache/ (default OUT)")
    parser.add_argument("--export-only", action="store_true", help="re-export OUT's checkpoint and exit")
    parser.add_argument(
        "--threads", type=int, default=2, help="torch CPU threads (fixed: results depend on it; default 2)"
    )
    add_override_argument(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.export_only:
        print(export_only(args.out, args.autoencoder))
        return
    base = DiffusionTrainConfig()
    cfg = DiffusionTrainConfig.from_dict(
        {
            **base.to_dict(),
            "seed": args.seed,
            "steps": args.steps or base.steps,
            "data": {**base.to_dict()["data"], "seed": args.seed, "clips": args.clips or base.data.clips},
        }
    )
    try:
        cfg = type(cfg).from_dict(apply_overrides(cfg.to_dict(), args.overrides))
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    train(cfg, args.out, args.autoencoder, resume=args.resume, minutes=args.minutes, cache=args.cache)


if __name__ == "__main__":
    main()
