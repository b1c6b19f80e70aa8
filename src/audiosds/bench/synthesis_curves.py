"""Synthesis curves: prompt score over SDS iterations (Audio-SDS arXiv 2505.04621 sec. 4.1, eqs. 5-6).

For the FM and impact renderers, the paper's prompts ("kick drum, bass, reverb", "hitting pot
with wooden spoon", "bass drum, low pitched") and two more ("sharp metallic clang", "a warm bass
note"), over ``--seeds`` seeds (renderer init and SDS noise) with ``--particles`` starts per run:
the prompt score (cosine in the scorer's audio-text space) of the reported render's start, of the
reported render (the best-scoring iterate, as the CLI reports it) and of the last iterate; the
share of runs whose reported render scores at least its start (target >= 97%), the median rise,
the share whose last iterate rose, and for "a warm bass note" the reported render's pitch and decay
(f0 < 200 Hz and T60 > 0.3 s in >= 90% of runs); and a PNG of every curve (best particle).

    python benchmarks/synthesis_curves.py --prior embedded-mel --seeds 5 --out synthesis.md
        --plot synthesis.png

Resumable, sharded runs (the job cache of ``shards``): every (renderer, prompt, seed) is one
job of a deterministic list. With ``--cache DIR`` each finished job appends one JSON line to a file
of its own process in DIR and jobs already recorded there are skipped; ``--shard I/N`` runs the
jobs whose index is I mod N; ``--report-only`` builds the markdown and the plot from DIR alone:

    python benchmarks/synthesis_curves.py --cache runs/syn --shard 0/2 &
    python benchmarks/synthesis_curves.py --cache runs/syn --shard 1/2 &
    wait; python benchmarks/synthesis_curves.py --cache runs/syn --report-only --out synthesis.md

A shard of several writes no plot (two processes would write one file).

Prints markdown (timings included) and writes it to ``--out``; a progress bar goes to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..priors import MODEL_FIELD, Prior, build
from ..renderers import build as build_renderer
from ..scorer import PromptScorer, build_scorer
from ..scorer import default_weights_dir as scorer_weights_dir
from ..sds import SDSConfig
from ..tasks.synthesize import SynthesizeConfig, synthesis_sds, synthesize
from .shards import (
    JobCache,
    add_cache_options,
    add_prior_scorer_options,
    check_cache_options,
    job_key,
    load_records,
    missing_lines,
    overrides,
    prior_identity,
    run_jobs,
    values_of,
    weights_identity,
)

RENDERERS = ("fm", "impact")
PROMPTS = (
    "kick drum, bass, reverb",
    "hitting pot with wooden spoon",
    "bass drum, low pitched",
    "sharp metallic clang",
    "a warm bass note",
)
TARGET_NOT_WORSE = 0.97  # reported render scores at least its start in this share of runs
TARGET_BASS = 0.9  # "a warm bass note": f0 < BASS_F0_HZ and T60 > BASS_T60_S in this share of runs
BASS_PROMPT, BASS_F0_HZ, BASS_T60_S = "a warm bass note", 200.0, 0.3
CACHE_VERSION = 4  # part of every job key: bump it when a change here changes a cached job's numbers


@dataclass(frozen=True)
class Job:
    """One synthesis run to do; ``key`` hashes every setting that changes its result."""

    renderer: str
    prompt: str
    seed: int  # renderer init and SDS noise
    key: str

    @property
    def name(self) -> str:
        return f"{self.renderer} {self.prompt!r} seed {self.seed}"


def synthesize_config(args: argparse.Namespace, seed: int) -> SynthesizeConfig:
    """The optimisation settings of one run."""
    return SynthesizeConfig(
        iters=args.iters, lr=args.lr, seed=seed, score_every=args.score_every, keep_best=not args.final
    )


def sds_config(args: argparse.Namespace) -> SDSConfig:
    """The SDS settings of every run: the synthesis defaults of the prior with the ``--sds`` overrides."""
    return synthesis_sds(args.prior, **args.sds_overrides)


def job_list(args: argparse.Namespace) -> list[Job]:
    """The full, deterministic job list: renderer, prompt, then seed order."""
    default = scorer_weights_dir() if args.scorer == "embedded" else None
    fixed = {
        "script": "synthesis_curves",
        "version": CACHE_VERSION,
        "prior": prior_identity(args.prior, args.model),
        "scorer": weights_identity(args.scorer, args.scorer_weights, default),
        "seconds": args.seconds,
        "sds": dataclasses.asdict(sds_config(args)),
        "particles": args.particles,
        "threads": args.threads,  # another thread count is another run (summation order)
    }
    jobs = []
    for renderer in args.renderers:
        for prompt in args.prompts:
            for seed in range(args.seed, args.seed + args.seeds):
                setting = {
                    **fixed,
                    "renderer": renderer,
                    "prompt": prompt,
                    "synthesize": dataclasses.asdict(synthesize_config(args, seed)),
                }
                jobs.append(Job(renderer, prompt, seed, job_key(setting)))
    return jobs


@dataclass(frozen=True)
class Run:
    """One synthesis run: its curve (iteration, score) and the scores of the initial and final audio."""

    renderer: str
    prompt: str
    seed: int
    iters: list[int]
    scores: list[float]
    init: float  # the reported particle's start
    end: float  # the reported render
    final: float  # the reported particle's last iterate
    f0_hz: float
    t60_s: float
    seconds: float


def pitch_hz(audio: np.ndarray, sample_rate: int, low_hz: float = 30.0, high_hz: float = 1000.0) -> float:
    """f0 of the loudest 4096-sample stretch from its window-corrected normalised autocorrelation:
    among the local maxima at lags in [1/high, 1/low], the shortest lag whose value is within 10% of
    the highest (a subharmonic never wins; a smooth low tone's slowly falling autocorrelation at
    short lags is no maximum). NaN when no maximum reaches 0.5 (not periodic: noise, clicks)."""
    n = 4096
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    if x.size < n:
        x = np.pad(x, (0, n - x.size))
    hop = n // 8
    energy = [float(np.square(x[i : i + n]).sum()) for i in range(0, x.size - n + 1, hop)]
    start = hop * int(np.argmax(energy))
    window = np.hanning(n)
    ac = np.fft.irfft(np.abs(np.fft.rfft(x[start : start + n] * window, 2 * n)) ** 2)[:n]
    window_ac = np.fft.irfft(np.abs(np.fft.rfft(window, 2 * n)) ** 2)[:n]
    ac = ac / (window_ac + 1e-12)
    ac = ac / (ac[0] + 1e-12)
    lo, hi = int(sample_rate / high_hz), int(sample_rate / low_hz)
    lags = np.arange(lo, hi)
    peaks = lags[(ac[lags] > ac[lags - 1]) & (ac[lags] >= ac[lags + 1])]
    if peaks.size == 0 or ac[peaks].max() < 0.5:
        return float("nan")
    strong = peaks[ac[peaks] >= 0.9 * ac[peaks].max()]
    return sample_rate / float(strong[0])


def t60_s(audio: np.ndarray, sample_rate: int, frame_s: float = 0.02, fit_db: float = 30.0) -> float:
    """T60 from the level envelope after the loudest 20-ms frame: a least-squares line through the
    frame levels (dB) from that frame to the first one ``fit_db`` below it (or the clip's end, its
    10-ms fade-out left out); T60 = 60 dB over the fall rate, capped at 1000 s (a level that does
    not fall). A click followed by silence falls ``fit_db`` within a frame: a T60 of milliseconds."""
    x = np.asarray(audio, dtype=np.float64).reshape(-1)[: -round(0.01 * sample_rate)]
    hop = round(frame_s * sample_rate)
    frames = x[: len(x) // hop * hop].reshape(-1, hop)
    level = 20 * np.log10(np.sqrt(np.square(frames).mean(axis=1)) + 1e-12)  # (F,)
    peak = int(np.argmax(level))
    below = np.flatnonzero(level[peak:] < level[peak] - fit_db)
    seg = level[peak : peak + below[0] + 1] if below.size else level[peak:]
    if len(seg) < 2:
        return 1000.0
    slope_db_s = np.polyfit(np.arange(len(seg)) * frame_s, seg, 1)[0]
    return float(min(1000.0, 60.0 / -slope_db_s)) if slope_db_s < 0 else 1000.0


def run_one(prior: Prior, scorer: PromptScorer, job: Job, args: argparse.Namespace) -> dict[str, object]:
    """Synthesize once, with the scores the run itself reports (the scorer's, on its own renders).

    Returns:
        The job's record: ``iters`` and ``scores`` (the curve: best particle per scoring),
        ``init``, ``end`` (reported), ``final``, the reported render's ``f0_hz`` and ``t60_s``,
        ``sample_rate``.
    """
    synth = build_renderer(
        job.renderer,
        sample_rate=prior.sample_rate,
        seconds=args.seconds,
        seed=job.seed,
        batch_size=args.particles,
    )
    result = synthesize(
        synth, prior, job.prompt, synthesize_config(args, job.seed), sds_config(args), scorer=scorer
    )
    rows = [r for r in result.history if r.get("score") is not None]
    audio = result.audio[0, 0].numpy()
    return {
        "iters": [int(r["iter"]) for r in rows],
        "scores": [float(r["score"]) for r in rows],
        "init": float(result.scores["initial"]),
        "end": float(result.scores["reported_score"]),
        "final": float(result.scores["final"]),
        "f0_hz": pitch_hz(audio, prior.sample_rate),
        "t60_s": t60_s(audio, prior.sample_rate),
        "sample_rate": prior.sample_rate,
    }


def runs_of(jobs: Sequence[Job], records: dict[str, dict]) -> list[Run]:
    """The recorded runs in job order (whatever order their records were written in)."""
    return [
        Run(
            job.renderer,
            job.prompt,
            job.seed,
            r["iters"],
            r["scores"],
            r["init"],
            r["end"],
            r["final"],
            r["f0_hz"],
            r["t60_s"],
            r["wall_s"],
        )
        for job in jobs
        if (r := records.get(job.key)) is not None
    ]


def plot(runs: list[Run], path: Path) -> None:
    """One panel per renderer, one colour per prompt, one line per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    renderers = list(dict.fromkeys(r.renderer for r in runs))
    fig, axes = plt.subplots(1, len(renderers), figsize=(6 * len(renderers), 4), sharey=True, squeeze=False)
    colours = {p: f"C{i}" for i, p in enumerate(dict.fromkeys(r.prompt for r in runs))}
    for ax, renderer in zip(axes[0], renderers, strict=True):
        seen: set[str] = set()
        for run in (r for r in runs if r.renderer == renderer):
            label = None if run.prompt in seen else run.prompt
            seen.add(run.prompt)
            ax.plot(run.iters, run.scores, color=colours[run.prompt], alpha=0.7, label=label)
        ax.set_title(f"{renderer} renderer")
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("prompt score (cosine)")
    labelled = [ax for ax in axes[0] if ax.get_legend_handles_labels()[1]]  # a partial cache may miss one
    if labelled:
        labelled[-1].legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(runs: list[Run]) -> list[str]:
    """Markdown: per run and per (renderer, prompt): start, reported and last-iterate scores; the
    share of runs not worse than their start, the median rise, and the bass prompt's pitch check."""
    lines = [
        "| renderer | prompt | seed | start | reported | last iterate | reported >= start | f0 (Hz) "
        "| T60 (s) |",
        "|---" * 9 + "|",
    ]
    for r in runs:
        ok = "yes" if r.end >= r.init else "no"
        lines.append(
            f"| {r.renderer} | {r.prompt} | {r.seed} | {r.init:.3f} | {r.end:.3f} | {r.final:.3f} | {ok} | "
            f"{'-' if math.isnan(r.f0_hz) else f'{r.f0_hz:.0f}'} | {r.t60_s:.2f} |"
        )
    lines += [
        "",
        "| renderer | prompt | mean start | mean reported | mean last | reported >= start | last > start |",
        "|---" * 7 + "|",
    ]
    for renderer, prompt in dict.fromkeys((r.renderer, r.prompt) for r in runs):
        group = [r for r in runs if r.renderer == renderer and r.prompt == prompt]
        lines.append(
            f"| {renderer} | {prompt} | {np.mean([r.init for r in group]):.3f} | "
            f"{np.mean([r.end for r in group]):.3f} | {np.mean([r.final for r in group]):.3f} | "
            f"{sum(r.end >= r.init for r in group)}/{len(group)} | "
            f"{sum(r.final > r.init for r in group)}/{len(group)} |"
        )
    if not runs:
        return [*lines, ""]
    kept = sum(r.end >= r.init for r in runs) / len(runs)
    rose = sum(r.final > r.init for r in runs) / len(runs)
    lines += [
        "",
        f"Reported render scored at least its start in {kept:.0%} of {len(runs)} runs (target >= "
        f"{TARGET_NOT_WORSE:.0%}: {'met' if kept >= TARGET_NOT_WORSE else 'not met'}); median rise "
        f"{np.median([r.end - r.init for r in runs]):+.3f}; the last iterate rose in {rose:.0%} "
        f"(median {np.median([r.final - r.init for r in runs]):+.3f}).",
    ]
    bass = [r for r in runs if r.prompt == BASS_PROMPT]
    if bass:
        good = sum(r.f0_hz < BASS_F0_HZ and r.t60_s > BASS_T60_S for r in bass) / len(bass)
        lines.append(
            f"'{BASS_PROMPT}': f0 < {BASS_F0_HZ:g} Hz and T60 > {BASS_T60_S:g} s in {good:.0%} of "
            f"{len(bass)} runs (target >= {TARGET_BASS:.0%}: {'met' if good >= TARGET_BASS else 'not met'})."
        )
    return [*lines, ""]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_prior_scorer_options(parser)
    parser.add_argument("--seeds", type=int, default=5, help="runs per renderer and prompt")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--iters", type=int, default=SynthesizeConfig.iters)
    parser.add_argument("--lr", type=float, default=SynthesizeConfig.lr)
    parser.add_argument("--score-every", type=int, default=10, help="iterations between curve points")
    parser.add_argument("--seconds", type=float, default=1.0, help="rendered length")
    parser.add_argument(
        "--sds", nargs="+", metavar="NAME=VALUE", help="SDSConfig fields (default: the synthesis defaults)"
    )
    parser.add_argument("--renderers", nargs="+", choices=RENDERERS, default=list(RENDERERS))
    parser.add_argument("--prompts", nargs="+", default=list(PROMPTS), help="prompts (default: the five)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--particles", type=int, default=2, help="starts per run (the CLI's default: 2)")
    parser.add_argument(
        "--final", action="store_true", help="report the last iterate, not the best-scoring one"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the markdown here too")
    parser.add_argument(
        "--plot",
        type=Path,
        default=None,
        help="PNG of the curves (default: beside --out, else ./synthesis_curves.png)",
    )
    add_cache_options(parser)
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds: expected >= 1, got {args.seeds}")
    if args.score_every < 1:
        parser.error(f"--score-every: expected >= 1, got {args.score_every}")
    try:
        args.sds_overrides = overrides(args.sds, SDSConfig, "--sds")
        synthesis_sds(args.prior, **args.sds_overrides)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    check_cache_options(parser, args)
    if args.plot is None:
        args.plot = args.out.with_suffix(".png") if args.out is not None else Path("synthesis_curves.png")
    return args


def writes_plot(args: argparse.Namespace) -> bool:
    """Every mode plots but a shard of several (two processes would write one file)."""
    return args.report_only or args.shard[1] == 1


def markdown(args: argparse.Namespace, jobs: Sequence[Job], records: dict[str, dict], command: str) -> str:
    """The markdown report from the per-job records alone (the same for every sharding and job order)."""
    runs = runs_of(jobs, records)
    mine = [records[job.key] for job in jobs if job.key in records]
    plotted = f" Plot: `{args.plot}`." if runs and writes_plot(args) else ""
    sds = sds_config(args)
    lines = [
        "## Synthesis curves (prompt score over SDS iterations)",
        "",
        f"Command: `{command}`; seeds {args.seed}..{args.seed + args.seeds - 1}; prior {args.prior} "
        f"({values_of(mine, 'sample_rate')} Hz); scorer {args.scorer}; {args.iters} iterations, "
        f"lr {args.lr}; {args.seconds} s renders; {args.particles} particle(s), "
        f"{'last' if args.final else 'best-scoring'} iterate reported; {values_of(mine, 'threads')} "
        f"thread(s).{plotted}",
        "",
        f"SDS ({sds.mode}): t in [{sds.t_min:g}, {sds.t_max:g}], CFG {sds.cfg_scale:g}, B = {sds.num_draws}, "
        f"K = {sds.num_steps}" + (f" (overrides: {' '.join(args.sds)})" if args.sds else "") + ".",
        "",
        *missing_lines(jobs, records),
        *report(runs),
    ]
    if runs:
        job_s = sum(r.seconds for r in runs)
        lines.append(
            f"Job time: {job_s:.1f} s summed over {len(runs)} runs (mean {job_s / len(runs):.1f} s per run)."
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    jobs = job_list(args)
    if args.report_only:
        records = load_records(args.cache)
    else:
        cfg = (
            {MODEL_FIELD[args.prior]: args.model}
            if args.model is not None and args.prior in MODEL_FIELD
            else {}
        )
        scorer_cfg = {"weights_dir": args.scorer_weights} if args.scorer_weights is not None else {}
        # built on first use: a run that finds every job of its shard cached loads neither
        load_prior = functools.cache(lambda: build(args.prior, **cfg))
        load_scorer = functools.cache(lambda: build_scorer(args.scorer, **scorer_cfg))
        cache = None if args.cache is None else JobCache(args.cache, args.shard)
        records = run_jobs(
            jobs, lambda job: run_one(load_prior(), load_scorer(), job, args), cache, args.shard, "synthesis"
        )
    cmd = "python benchmarks/synthesis_curves.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = markdown(args, jobs, records, cmd)
    runs = runs_of(jobs, records)
    if runs and writes_plot(args):
        plot(runs, args.plot)
    if args.cache is None:
        text += f"Total time: {time.perf_counter() - start:.1f} s.\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
