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

Every (renderer, prompt, seed) is one ``audiosds fm`` / ``impact`` command line, run by
``audiosds batch`` (:mod:`audiosds.batch`) into ``--runs DIR`` (default: a temporary folder): the
run folders are the records, so a killed benchmark resumes where it stopped (finished runs are
skipped, stopped ones resume from their checkpoints), ``--workers N`` runs N at once on a local Ray,
and ``--report-only`` builds the markdown and the plot from DIR alone:

    python benchmarks/synthesis_curves.py --runs runs/syn --workers 2 --out synthesis.md

The scorer is the CLI's: the shipped prompt scorer.

Prints markdown (timings included) and writes it to ``--out``; a progress bar goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from .. import runfolder
from ..batch import BatchConfig, run_batch
from ..batch import Job as BatchJob
from ..batch.jobs import job_id
from ..batch.report import wall_times
from ..priors import DEFAULT_PRIOR
from ..sds import SDSConfig
from ..tasks.synthesize import SynthesizeConfig, synthesis_sds
from .keys import overrides

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


def sds_config(args: argparse.Namespace) -> SDSConfig:
    """The SDS settings of every run: the synthesis defaults of the prior with the ``--sds`` overrides."""
    return synthesis_sds(args.prior, **args.sds_overrides)


def job_list(args: argparse.Namespace) -> list[BatchJob]:
    """The full, deterministic job list (renderer, prompt, then seed order), each the command line
    ``audiosds RENDERER --prompt P --seed S ...`` with the benchmark's settings."""
    shared = {
        "iters": args.iters,
        "lr": args.lr,
        "seconds": args.seconds,
        "particles": args.particles,
        "prior": args.prior,
        "threads": args.threads,  # another thread count is another run (summation order)
        **({"model": args.model} if args.model is not None else {}),
        **({"final": True} if args.final else {}),
    }
    config = {"synthesize": {"score_every": args.score_every}}
    if args.sds_overrides:
        config["sds"] = dict(args.sds_overrides)
    jobs = []
    for renderer in args.renderers:
        for prompt in args.prompts:
            for seed in range(args.seed, args.seed + args.seeds):
                options = {"prompt": prompt, "seed": seed, **shared}
                jobs.append(BatchJob(job_id(renderer, options, config), renderer, options, config))
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
    seconds: float  # the run's wall time, its process's start-up included


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


def run_of(job: BatchJob, folder: Path, wall_s: float) -> Run | None:
    """A finished run read from its run folder (None: not finished): the curve (history.csv's
    ``score``, the best particle at each scoring), the scores the run reported (params.json) and the
    reported render's f0 and T60 (audio.wav)."""
    if runfolder.status(folder, job.command) != "completed":
        return None
    params = json.loads((folder / "params.json").read_text())
    rows = [r for r in runfolder.history(folder) if r.get("score") is not None]
    audio, sample_rate = sf.read(folder / "audio.wav", dtype="float32", always_2d=True)
    scores = params["scores"]
    return Run(
        job.command,
        str(job.options["prompt"]),
        int(job.options["seed"]),
        [int(r["iter"]) for r in rows],
        [float(r["score"]) for r in rows],
        float(scores["initial"]),
        float(scores["reported_score"]),
        float(scores["final"]),
        pitch_hz(audio[:, 0], sample_rate),
        t60_s(audio[:, 0], sample_rate),
        wall_s,
    )


def runs_of(jobs: Sequence[BatchJob], out: Path) -> list[Run]:
    """The finished runs in job order, with each one's wall time from the batch's summary.csv."""
    walls = wall_times(out)
    runs = [run_of(job, out / job.id, walls.get(job.id, math.nan)) for job in jobs]
    return [r for r in runs if r is not None]


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
    labelled = [ax for ax in axes[0] if ax.get_legend_handles_labels()[1]]  # an incomplete run may miss one
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
    parser.add_argument("--prior", default=DEFAULT_PRIOR, help="prior registry name")
    parser.add_argument(
        "--weights", "--model", dest="model", default=None, help="the prior's weights / model"
    )
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
    parser.add_argument("--threads", type=int, default=1, help="per run")
    parser.add_argument("--particles", type=int, default=2, help="starts per run (the CLI's default: 2)")
    parser.add_argument(
        "--final", action="store_true", help="report the last iterate, not the best-scoring one"
    )
    parser.add_argument(
        "--runs", type=Path, default=None, help="the run folders (audiosds batch's -o): resume, report"
    )
    parser.add_argument("--workers", type=int, default=1, help="runs at once (above 1: on a local Ray)")
    parser.add_argument("--report-only", action="store_true", help="report from --runs, run nothing")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown here too")
    parser.add_argument(
        "--plot",
        type=Path,
        default=None,
        help="PNG of the curves (default: beside --out, else ./synthesis_curves.png)",
    )
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds: expected >= 1, got {args.seeds}")
    if args.score_every < 1:
        parser.error(f"--score-every: expected >= 1, got {args.score_every}")
    if args.workers < 1:
        parser.error(f"--workers: expected >= 1, got {args.workers}")
    if args.report_only and args.runs is None:
        parser.error("--report-only: expected --runs DIR as well")
    try:
        args.sds_overrides = overrides(args.sds, SDSConfig, "--sds")
        synthesis_sds(args.prior, **args.sds_overrides)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    if args.plot is None:
        args.plot = args.out.with_suffix(".png") if args.out is not None else Path("synthesis_curves.png")
    return args


def markdown(
    args: argparse.Namespace, jobs: Sequence[BatchJob], runs: list[Run], out: Path, command: str
) -> str:
    """The markdown report from the run folders alone (the same for any order the runs finished in)."""
    rates = sorted(
        {
            json.loads((out / j.id / "params.json").read_text())["sample_rate"]
            for j in jobs
            if (out / j.id / "params.json").is_file()
        }
    )
    plotted = f" Plot: `{args.plot}`." if runs else ""
    sds = sds_config(args)
    missing = [j for j in jobs if runfolder.status(out / j.id, j.command) != "completed"]
    incomplete = []
    if missing:
        shown = ", ".join(
            f"{j.command} {j.options['prompt']!r} seed {j.options['seed']}" for j in missing[:5]
        )
        incomplete = [f"Incomplete: {len(missing)} of {len(jobs)} jobs missing ({shown}).", ""]
    lines = [
        "## Synthesis curves (prompt score over SDS iterations)",
        "",
        f"Command: `{command}`; seeds {args.seed}..{args.seed + args.seeds - 1}; prior {args.prior} "
        f"({', '.join(map(str, rates)) or '-'} Hz); the shipped scorer; {args.iters} iterations, "
        f"lr {args.lr}; {args.seconds} s renders; {args.particles} particle(s), "
        f"{'last' if args.final else 'best-scoring'} iterate reported; {args.threads} thread(s) per run; "
        f"each run an `audiosds {'/'.join(args.renderers)}` command line run by `audiosds batch`.{plotted}",
        "",
        f"SDS ({sds.mode}): t in [{sds.t_min:g}, {sds.t_max:g}], CFG {sds.cfg_scale:g}, B = {sds.num_draws}, "
        f"K = {sds.num_steps}" + (f" (overrides: {' '.join(args.sds)})" if args.sds else "") + ".",
        "",
        *incomplete,
        *report(runs),
    ]
    timed = [r.seconds for r in runs if not math.isnan(r.seconds)]
    if timed:
        lines.append(
            f"Job time (each run's process, start-up included): {sum(timed):.1f} s summed over {len(timed)} "
            f"runs (mean {sum(timed) / len(timed):.1f} s)."
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    jobs = job_list(args)
    with tempfile.TemporaryDirectory(prefix="audiosds-synthesis-") as scratch:
        out = args.runs if args.runs is not None else Path(scratch)
        if not args.report_only:
            with tqdm(total=len(jobs), desc="synthesis", file=sys.stderr) as bar:
                config = BatchConfig(out, workers=args.workers, threads=args.threads)
                run_batch(config, jobs, lambda outcome: bar.update(1))
        runs = runs_of(jobs, out)
        cmd = "python benchmarks/synthesis_curves.py " + " ".join(sys.argv[1:] if argv is None else argv)
        text = markdown(args, jobs, runs, out, cmd)
    if runs:
        plot(runs, args.plot)
    if not args.report_only:
        text += f"Total time: {time.perf_counter() - start:.1f} s.\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
