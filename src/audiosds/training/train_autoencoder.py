"""Train the embedded prior's autoencoder on the procedural sound world.

    python -m audiosds.training.train_autoencoder --out DIR [--resume] [--seed 0] [--minutes M] [--threads 2]
        [--steps N] [--cache DIR] [--export-only]

The loss sees phase: per-clip RMS-normalised waveform L1 plus, at several STFT sizes, the L1
distance of the complex STFTs (real and imaginary parts) and of the log magnitudes, and a
small KL term that keeps the latents near unit scale. A magnitude-only loss was what smeared
bells and metal into noise in a prototype.

Reproducible: parameters are initialised from ``--seed``; every step draws its batch and
posterior noise from (seed, step), so ``--resume`` continues exactly where a checkpoint left off.
``--steps`` fixes the schedule (and so the result); ``--minutes`` only stops early, for quick
checks. At the end the EMA weights go to ``DIR/export/autoencoder.{safetensors,json}``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from .autoencoder import Autoencoder, AutoencoderConfig, kl_divergence
from .data import ClipSet, DataConfig, Sampler, audio_batch, load_or_render_cache, render_clips, stream_clips
from .run import (
    EMA,
    EXPORT_DIR,
    Budget,
    Schedule,
    Trainer,
    add_override_argument,
    apply_overrides,
    export_weights,
    load_checkpoint,
    open_run,
    parameter_count,
    step_generator,
    write_config,
)

NAME = "autoencoder"
ENVELOPE_STAT_CLIPS = 256  # training clips the envelope channels' statistics are measured on
RMS_FLOOR = 1e-3  # crops quieter than this (-60 dBFS RMS) are normalised as if this loud


@dataclass(frozen=True)
class LossConfig:
    windows: tuple[int, ...] = (2048, 1024, 512, 256, 128, 64)  # STFT sizes (hop = size / 4)
    wave: float = 1.0  # waveform L1
    complex: float = 1.0  # L1 of real and imaginary STFT parts (phase-sensitive)
    # L1 of log magnitudes, floored at log_floor x the crop's RMS (noise levels, tails). Small and
    # coarse from the start: weight 1 with a -80 dB floor drowned the phase-sensitive terms early on
    # (held-out SI-SDR -23 dB vs -8 dB after 150 steps).
    log_magnitude: float = 0.1
    log_floor: float = 1e-2  # -40 dB
    # The same with a -60 dB floor (quiet empty bands, the ends of ringing tails), its weight ramped
    # from 0 to fine_log_magnitude over fine_ramp steps, once the waveform is roughly right.
    fine_log_magnitude: float = 0.5
    fine_log_floor: float = 1e-3
    fine_ramp: tuple[int, int] = (2000, 6000)
    kl: float = 1e-3  # KL(q(z|x) || N(0, I)), mean per latent element
    # Pre-emphasis coefficient a: every term compares y[n] = x[n] - a x[n-1] of both signals, which
    # weighs 4 kHz ~22 dB above 100 Hz at a = 0.9. 0 = plain (the shipped autoencoder's loss).
    preemphasis: float = 0.0
    # With preemphasis > 0: the loss is (1 - preemphasis_mix) x the plain terms + preemphasis_mix x the
    # pre-emphasised ones (1 = pre-emphasised only). Pre-emphasis alone makes the encoder answer high
    # tones and loses the low band's phase (RESULTS.md); a mix keeps both in the loss.
    preemphasis_mix: float = 1.0
    # Highest frequency, as a fraction of Nyquist, whose phase the loss sees: above it the waveform term
    # compares nothing (both signals are low-passed there) and the complex term compares STFT
    # magnitudes, so a high partial whose phase the latent cannot place costs its magnitude error, not
    # up to twice its energy (which the decoder avoids by attenuating it). 1 = phase everywhere.
    # Measured (RESULTS.md): 0.25 helped a 1500-step pilot, reconstructed worse in full.
    phase_cutoff: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.preemphasis < 1.0:
            raise ValueError(f"LossConfig.preemphasis: expected a value in [0, 1), got {self.preemphasis!r}")
        if not 0.0 <= self.preemphasis_mix <= 1.0:
            raise ValueError(
                f"LossConfig.preemphasis_mix: expected a value in [0, 1], got {self.preemphasis_mix!r}"
            )
        if not 0.0 < self.phase_cutoff <= 1.0:
            raise ValueError(
                f"LossConfig.phase_cutoff: expected a value in (0, 1], got {self.phase_cutoff!r}"
            )
        object.__setattr__(self, "windows", tuple(self.windows))
        object.__setattr__(self, "fine_ramp", tuple(self.fine_ramp))

    def weighted(self, terms: dict[str, Tensor], fine_weight: float) -> Tensor:
        """The reconstruction terms of :func:`reconstruction_loss` summed with their weights (the fine
        log-magnitude term with ``fine_weight``); the KL is not included."""
        return (
            self.wave * terms["wave"]
            + self.complex * terms["complex"]
            + self.log_magnitude * terms["log_magnitude"]
            + fine_weight * terms["fine_log_magnitude"]
        )

    def fine_weight(self, step: int) -> float:
        """Weight of the fine log-magnitude term at ``step`` (linear ramp over ``fine_ramp``)."""
        start, end = self.fine_ramp
        return self.fine_log_magnitude * min(1.0, max(0.0, (step - start) / max(1, end - start)))


@dataclass(frozen=True)
class AutoencoderTrainConfig:
    # Fixes the LR schedule; the shipped weights are the full run (0.345 s/step on 2 idle cores: 40 min).
    # 7000 steps leave the denoiser most of the 3-hour budget.
    steps: int = 7000
    batch: int = 16
    crop: int = 8192  # samples per training crop (0.512 s, 128 latent frames)
    lr: float = 3e-4
    warmup: int = 500
    final_lr_fraction: float = 0.05
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    gain_db: tuple[float, float] = (-12.0, 3.0)  # random level of each crop, beyond the world's own range
    checkpoint_every: int = 500
    log_every: int = 50
    eval_clips: int = 64  # held-out clips scored (SI-SDR, spectral distance) at each checkpoint
    seed: int = 0
    # True: every step renders `batch` fresh world clips (2 ms each) and crops each once, so no clip
    # repeats; False: crops of a pre-rendered cache of data.clips clips.
    stream: bool = True
    export_dtype: str = "float16"  # shipped precision (halves the size; ~-66 dB weight rounding)
    # Gaussian noise added to the sampled latent before decoding, in units of the batch's latent
    # std: the decoder learns to tolerate the small errors a denoiser's latents carry, and the encoder
    # to spread information over directions such noise does not wipe out. 0 = plain VAE sampling.
    latent_noise: float = 0.0
    # With envelope channels: this share of rows has its learned channels set to zero and is scored
    # without phase (reconstruction_loss(phase=False)), from step 0, so the decoder learns to render the
    # envelope alone; the export then sets model.envelope_decoding (generated latents are decoded so).
    drop_fraction: float = 0.0
    loss: LossConfig = field(default_factory=LossConfig)
    model: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        if not 0 <= self.drop_fraction <= 1:
            raise ValueError(
                "AutoencoderTrainConfig.drop_fraction: expected a value in [0, 1], "
                f"got {self.drop_fraction!r}"
            )
        if self.drop_fraction and not self.model.envelope_bands:
            raise ValueError("AutoencoderTrainConfig.drop_fraction: needs model.envelope_bands > 0")

    def model_config(self) -> AutoencoderConfig:
        """The network's config: ``model``, with ``envelope_decoding`` on when rows are dropped."""
        return replace(self.model, envelope_decoding=True) if self.drop_fraction else self.model

    @classmethod
    def from_dict(cls, d: dict) -> AutoencoderTrainConfig:
        d = dict(d)
        return cls(
            loss=LossConfig(**d.pop("loss", {})),
            model=AutoencoderConfig.from_dict(d.pop("model", {})),
            data=DataConfig(**d.pop("data", {})),
            **{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()},
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return json.loads(json.dumps(d))


def preemphasize(x: Tensor, a: float) -> Tensor:
    """``y[n] = x[n] - a x[n-1]`` with ``x[-1] = 0``.

    Shape:
        x (B, 1, N) -> (B, 1, N)
    """
    return x - a * F.pad(x[..., :-1], (1, 0))


def lowpass(x: Tensor, cutoff: float) -> Tensor:
    """``x`` with every DFT bin above ``cutoff`` x Nyquist set to zero (a brick-wall low-pass).

    Shape:
        (B, N) -> (B, N)
    """
    spectrum = torch.fft.rfft(x)
    keep = torch.arange(spectrum.shape[-1], device=x.device) <= cutoff * (spectrum.shape[-1] - 1)
    return torch.fft.irfft(spectrum * keep, n=x.shape[-1])


def complex_stft(x: Tensor, size: int) -> Tensor:
    """Normalised complex STFT (Hann, hop size/4, centred) as real pairs.

    Shape:
        (B, N) -> (B, size // 2 + 1, frames, 2)
    """
    window = torch.hann_window(size, device=x.device, dtype=x.dtype)
    pad_mode = "reflect" if x.shape[-1] > size // 2 else "constant"
    spec = torch.stft(
        x,
        size,
        size // 4,
        window=window,
        center=True,
        pad_mode=pad_mode,
        normalized=True,
        return_complex=True,
    )
    return torch.view_as_real(spec)


def reconstruction_loss(x_hat: Tensor, x: Tensor, cfg: LossConfig, phase: bool = True) -> dict[str, Tensor]:
    """Phase-aware multiscale loss on RMS-normalised crops (every loudness and a ringing tail's
    quiet end count as much as a loud attack).

    Returns the terms ``wave``, ``complex``, ``log_magnitude``, ``fine_log_magnitude`` (each
    averaged over windows where multiscale), unweighted. With ``phase=False`` the loss is blind to
    phase: ``wave`` is 0 and ``complex`` compares STFT magnitudes instead of real and imaginary parts
    (for latents too corrupted to say where a partial's phase is). With ``cfg.phase_cutoff`` < 1 only
    the band below it is compared with phase: ``wave`` on low-passed signals, ``complex`` with real
    and imaginary parts below the cutoff and magnitudes above.

    Shape:
        x_hat (B, 1, N), x (B, 1, N) -> dict of ()
    """
    if cfg.preemphasis and cfg.preemphasis_mix < 1.0:
        mix = cfg.preemphasis_mix
        plain = reconstruction_loss(x_hat, x, replace(cfg, preemphasis=0.0), phase)
        emphasised = reconstruction_loss(x_hat, x, replace(cfg, preemphasis_mix=1.0), phase)
        return {k: (1 - mix) * plain[k] + mix * emphasised[k] for k in plain}
    if cfg.preemphasis:
        x_hat, x = preemphasize(x_hat, cfg.preemphasis), preemphasize(x, cfg.preemphasis)
    scale = x.square().mean(dim=(1, 2), keepdim=True).sqrt().clamp_min(RMS_FLOOR)  # (B, 1, 1)
    e, r = (x_hat / scale)[:, 0], (x / scale)[:, 0]
    zero = e.new_zeros(())
    split = phase and cfg.phase_cutoff < 1.0
    if not phase:
        wave = zero
    elif split:
        wave = (lowpass(e, cfg.phase_cutoff) - lowpass(r, cfg.phase_cutoff)).abs().mean()
    else:
        wave = (e - r).abs().mean()
    terms = {"wave": wave, "complex": zero, "log_magnitude": zero, "fine_log_magnitude": zero}
    floors = {"log_magnitude": cfg.log_floor, "fine_log_magnitude": cfg.fine_log_floor}
    for size in cfg.windows:
        se, sr = complex_stft(e, size), complex_stft(r, size)
        power_e, power_r = se.square().sum(-1), sr.square().sum(-1)
        if not phase or split:  # the magnitudes' L1, scaled as the complex term's L1 per real part
            magnitude = ((power_e + 1e-12).sqrt() - (power_r + 1e-12).sqrt()).abs() / 2  # (B, F, frames)
        if not phase:
            difference = magnitude.mean()
        elif split:
            bins = se.shape[1]
            with_phase = (torch.arange(bins, device=e.device) <= cfg.phase_cutoff * (bins - 1))[None, :, None]
            complex_l1 = (se - sr).abs().mean(-1)  # (B, F, frames): the mean of |real| and |imag| errors
            difference = torch.where(with_phase, complex_l1, magnitude).mean()
        else:
            difference = (se - sr).abs().mean()
        terms["complex"] = terms["complex"] + difference / len(cfg.windows)
        for name, floor in floors.items():
            log_e, log_r = 0.5 * (power_e + floor**2).log(), 0.5 * (power_r + floor**2).log()
            terms[name] = terms[name] + (log_e - log_r).abs().mean() / len(cfg.windows)
    return terms


def split_reconstruction_loss(
    x_hat: Tensor, x: Tensor, cfg: LossConfig, blind: Tensor, fine_weight: float
) -> tuple[Tensor, dict[str, float]]:
    """The weighted reconstruction loss with the ``blind`` rows scored without phase and the others
    with it, each group weighted by its share of the batch, and the groups' terms (the blind ones
    suffixed ``_blind``; a group without rows is left out).

    Shape:
        x_hat (B, 1, N), x (B, 1, N), blind (B,) bool -> (), dict
    """
    total, parts = x.new_zeros(()), {}
    for rows, phase in ((~blind, True), (blind, False)):
        if bool(rows.any()):
            terms = reconstruction_loss(x_hat[rows], x[rows], cfg, phase=phase)
            total = total + cfg.weighted(terms, fine_weight) * float(rows.float().mean())
            parts.update({k + ("" if phase else "_blind"): float(v.detach()) for k, v in terms.items()})
    return total, parts


def training_step(
    model: Autoencoder,
    x: Tensor,
    cfg: LossConfig,
    generator: torch.Generator,
    step: int,
    latent_noise: float = 0.0,
    drop_fraction: float = 0.0,
) -> tuple[Tensor, dict[str, float]]:
    """Total loss of one batch at ``step`` (posterior noise, ``latent_noise`` x the latents' std of extra
    noise and the rows whose learned channels are dropped, from ``generator``) and its parts. Dropped
    rows are scored without phase; each group of rows weighs as its share of the batch."""
    x_hat, mean, log_std, dropped = model(x, generator, latent_noise, drop_fraction)
    total, parts = split_reconstruction_loss(x_hat, x, cfg, dropped, cfg.fine_weight(step))
    learned = model.config.latent_channels  # envelope channels (after these) are computed: no KL
    mean, log_std = mean[:, :learned], log_std[:, :learned]
    kl = kl_divergence(mean, log_std)
    total = total + cfg.kl * kl
    parts["kl"] = float(kl.detach())
    parts["latent_std"] = float(mean.detach().std())
    parts["posterior_std"] = float(log_std.detach().exp().mean())
    return total, parts


@torch.no_grad()
def evaluate(model: Autoencoder, clips: ClipSet) -> dict[str, float]:
    """Mean SI-SDR (dB) and multi-resolution spectral distance of reconstructions, overall and
    per family."""
    from audiosds.metrics import multires_spectral_distance, si_sdr

    model.eval()
    x = torch.from_numpy(clips.audio.astype("float32"))[:, None, :]
    x_hat = torch.cat([model.decode(model.encode(x[i : i + 16])) for i in range(0, len(x), 16)])[
        ..., : x.shape[-1]
    ]
    sdr = si_sdr(x_hat[:, 0], x[:, 0]).float()
    dist = multires_spectral_distance(x_hat, x).float().reshape(-1)
    out = {"si_sdr": float(sdr.mean()), "spectral": float(dist.mean())}
    for fam in sorted(set(clips.families)):
        rows = [i for i, f in enumerate(clips.families) if f == fam]
        out[f"si_sdr/{fam}"] = float(sdr[rows].mean())
    return out


def export(model: Autoencoder, out: Path, dtype: str) -> Path:
    """EMA weights (stored as ``dtype``) and config to ``OUT/export/autoencoder.{safetensors,json}``."""
    return export_weights(model, model.config.to_dict(), Path(out) / EXPORT_DIR, NAME, dtype)


def train(
    cfg: AutoencoderTrainConfig,
    out: Path,
    resume: bool = False,
    minutes: float | None = None,
    cache: Path | None = None,
    sampler: Sampler | None = None,
    captioner: object | None = None,
    stop_at: int | None = None,
) -> list[dict[str, float]]:
    """Train (or resume) in ``out`` up to ``cfg.steps``; returns the loss parts of the steps run here.

    ``stop_at`` (a step) and ``minutes`` (wall time) end the run early with a checkpoint; the
    LR schedule still follows ``cfg.steps``, so a resumed run matches an uninterrupted one.

    Raises:
        ValueError: ``out`` holds a run and ``resume`` is False, or the stored config differs.
    """
    out = Path(out)
    log, state = open_run(out, resume)
    write_config(out, cfg.to_dict(), resume)

    torch.manual_seed(cfg.seed)
    model = Autoencoder(cfg.model_config())
    if model.envelope is not None:  # statistics from fixed training clips, before the EMA copies them
        stats_clips = render_clips(
            replace(cfg.data, captions_per_clip=1), ENVELOPE_STAT_CLIPS, cfg.seed + 104729, sampler
        )
        model.envelope.set_statistics(torch.from_numpy(stats_clips.audio).float())
    ema = EMA(model, cfg.ema_decay)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.8, 0.99), weight_decay=0.0)
    trainer = Trainer(out, log, model, ema, opt, state)
    log(
        f"autoencoder: {parameter_count(model) / 1e6:.3f} M parameters, downsampling {model.downsampling}, "
        f"{cfg.model.latent_channels} latent channels"
        + (f" + {cfg.model.envelope_bands} envelope channels" if cfg.model.envelope_bands else "")
        + f"; {cfg.steps} steps of batch {cfg.batch} x {cfg.crop}"
    )

    clips = None if cfg.stream else load_or_render_cache(cfg.data, cache or out, log, sampler, captioner)
    stream_cfg = replace(cfg.data, captions_per_clip=1)
    eval_cfg = replace(cfg.data, split="heldout", captions_per_clip=1)
    held = render_clips(eval_cfg, cfg.eval_clips, cfg.seed + 7919, sampler) if cfg.eval_clips else None
    source = "fresh clips every step" if clips is None else f"a cache of {len(clips)} clips"
    log(f"data: {source}; {cfg.eval_clips} held-out clips for evaluation")

    def loss_of_step(step: int) -> tuple[Tensor, dict[str, float]]:
        if clips is None:
            fresh = stream_clips(stream_cfg, step, cfg.batch, cfg.seed, sampler)
            x = audio_batch(fresh, step, cfg.batch, cfg.crop, cfg.seed, cfg.gain_db, every_clip=True)
        else:
            x = audio_batch(clips, step, cfg.batch, cfg.crop, cfg.seed, cfg.gain_db)
        return training_step(
            model, x, cfg.loss, step_generator(cfg.seed, step), step, cfg.latent_noise, cfg.drop_fraction
        )

    history = trainer.run(
        Schedule.of(cfg),
        loss_of_step,
        None if held is None else (lambda ema_model: evaluate(ema_model, held)),
        stop_at,
        Budget(minutes),
        eval_digits=2,
    )
    step = trainer.step
    path = export(ema.model, out, cfg.export_dtype)
    log(f"stopped at step {step}/{cfg.steps}; exported {path}")
    return history


def export_only(out: Path) -> Path:
    """Re-export the EMA weights of the checkpoint in ``out``."""
    out = Path(out)
    state = load_checkpoint(out)
    if state is None:
        raise ValueError(f"{out}: expected a {NAME} checkpoint, found none")
    cfg = AutoencoderTrainConfig.from_dict(json.loads((out / "train_config.json").read_text()))
    model = Autoencoder(cfg.model_config())
    model.load_state_dict(state["ema"])
    return export(model, out, cfg.export_dtype)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="run directory (log, checkpoint, export)")
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
        print(export_only(args.out))
        return
    base = AutoencoderTrainConfig()
    cfg = AutoencoderTrainConfig.from_dict(
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
    train(cfg, args.out, resume=args.resume, minutes=args.minutes, cache=args.cache)


if __name__ == "__main__":
    main()
