"""What an SDS iteration costs against what querying the prior costs (issue 6), in one process and one run.

    python benchmarks/perf.py --prior embedded-mel|analytic|sao-shaped [--quick] [--out FILE.md]
        [--plot FILE.png] [--threads N] [--weights DIR] [--sections iter scale stft cli profile]

Sections (all by default):

* ``iter``: per-iteration wall time of the real task loops (``tasks.synthesize`` with the FM and the
  impact renderers, ``tasks.separate`` with 2 sources and one Decoder-SDS member, i.e. one SDS step
  per iteration where the default runs one per member, default settings otherwise) for num_draws
  B in 1/4/8 and K = 1/2/4/8 denoise steps, against the floor: the same prior work timed alone
  with the same shapes (one encode of the R renders, K denoiser forwards of 2 * R * B rows, both
  CFG branches in one batch, one decode of R * B rows; Audio-SDS arXiv 2505.04621 eqs. 4-6), their
  ratio and the peak RSS of each.
* ``scale``: iteration and floor time against clip length (FM synthesis; 2-source separation in
  one window) and against the number of sources (separation), with the log-log slope
  (1 = linear); ``--plot`` draws both.
* ``stft``: peak extra memory of the multiscale-STFT losses' backward against their forward on a
  long clip (30 s at 16 kHz, 4 window sizes); target ratio <= 2.
* ``cli``: whole-process wall time and peak RSS of ``audiosds fm --iters 200``, ``audiosds
  separate`` on a 4 s two-source mixture (default settings) and ``audiosds generate --seconds 2``,
  start-up included.
* ``profile``: cProfile and torch.profiler of real FM, impact and separation iterations: the share
  of each audiosds function, the top self-time calls and operators (``--prior analytic`` shows the
  non-prior time alone).

Priors: ``analytic`` (closed-form oracle, 16 kHz mono), ``embedded-mel`` (the shipped weights or
``--weights DIR``; 22.05 kHz mono), ``sao-shaped`` (the real diffusers ``StableAudioDiTModel`` and
``AutoencoderOobleck`` architectures and Stable Audio Open's geometry, 44.1 kHz stereo, 64
latent channels, 2048x downsampling, with random weights and the widths and depths of
:class:`SaoShapedConfig`, written to a temporary folder in the diffusers layout and loaded through
``audiosds.priors.stable_audio`` exactly as real weights are).

Timing: per-iteration times are the gaps between consecutive progress callbacks of the task
loop (set-up excluded); the first iteration and ``warmup`` more are dropped, the median of the
next ``repeats`` is reported. Floors: ``warmup`` untimed calls, then the median of ``repeats``.
Memory: peak resident set size above the level before the measured call, read from VmHWM in
/proc/self/status after resetting it (``echo 5 > /proc/self/clear_refs``, Linux >= 4.0) and after
``malloc_trim(0)`` has returned freed heap pages; where the reset is unavailable, the
``getrusage`` max-RSS delta (a lower bound, the peak being process-wide). torch's CPU allocations
bypass tracemalloc, hence RSS. Threads: ``torch.set_num_threads(--threads)`` in this process and
``OMP_NUM_THREADS`` for the CLI subprocesses; default: torch's default.

Prints markdown and writes it to ``--out``; progress goes to stderr. Run it from the repository root.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import torch

from ...audio import write_text
from .. import log
from ..report import markdown_table
from ..sao import SaoShapedConfig, count_parameters, sao_parameter_counts
from .commands import section_cli
from .iteration import section_iter, section_scale, write_plot
from .measure import machine_info
from .profiling import section_profile
from .stft import section_stft
from .work import PRIORS, TASKS, PriorSetup, load_prior, make_plan

SECTIONS = ("iter", "scale", "stft", "cli", "profile")


def section_prior(setup: PriorSetup, prior_name: str) -> str:
    prior = setup.prior
    lines = [
        f"## Prior: {prior_name}\n",
        f"{type(prior).__name__}: {prior.sample_rate} Hz, {prior.channels} channel(s), latents "
        f"({prior.latent_channels}, N / {prior.downsampling}); "
        f"{count_parameters(prior) / 1e6:.2f} M parameters.",
        *setup.notes,
    ]
    text = "\n".join(lines) + "\n"
    if prior_name == "sao-shaped":
        config = SaoShapedConfig()
        counts = sao_parameter_counts(prior.transformer, prior.vae, prior.text_encoder)
        rows = [[k, f"{real / 1e6:.1f} M", f"{ours / 1e6:.2f} M"] for k, (real, ours) in counts.items()]
        text += (
            "\nRandom weights; sizes (SaoShapedConfig): "
            + ", ".join(f"{k}={v}" for k, v in asdict(config).items())
            + ". Oobleck encoder base width 128 (= 2 x 64 latent channels, as in the real model).\n\n"
            + markdown_table(["component", "Stable Audio Open 1.0", "sao-shaped here"], rows)
            + "\n"
        )
    return text


# -- main ------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prior", choices=PRIORS, required=True)
    p.add_argument("--quick", action="store_true", help="a subset of configurations and shorter clips")
    p.add_argument("--out", type=Path, help="also write the markdown here")
    p.add_argument("--plot", type=Path, help="PNG of the scaling section")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's default)")
    p.add_argument("--weights", help="embedded-mel prior weights folder (default: the installed ones)")
    p.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS), help="iter and profile tasks")
    return p


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="audiosds_perf_") as tmp:
        yield Path(tmp)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f"perf.py: --threads: expected >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.plot is not None and "scale" not in args.sections:
        raise SystemExit("perf.py: --plot needs the 'scale' section")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    plan = make_plan(args.prior, args.quick)
    started = time.perf_counter()
    command = "python benchmarks/perf.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    info = machine_info(torch.get_num_threads())
    parts = [
        f"# SDS iteration cost (issue 6): {args.prior}{' (quick)' if args.quick else ''}\n\n`{command}`\n",
        "## Machine\n\n" + markdown_table(["", ""], list(info.items())) + "\n",
        "## Plan\n\n" + ", ".join(f"{k}={v}" for k, v in asdict(plan).items()) + "\n",
    ]
    with _workdir() as workdir:
        log.info(f"perf: loading the {args.prior} prior")
        setup = load_prior(args.prior, workdir, args.weights)
        parts.append(section_prior(setup, args.prior))
        print("\n".join(parts), flush=True)
        for section in args.sections:
            if section == "iter":
                text = section_iter(setup.prior, plan, args.prior, args.tasks)
            elif section == "scale":
                text, res = section_scale(setup.prior, plan)
                if args.plot is not None:
                    write_plot(res, args.plot, f"{args.prior}{' quick' if args.quick else ''}: {info['cpu']}")
                    text += f"\nPlot: `{args.plot}`.\n"
            elif section == "stft":
                text = section_stft(plan)
            elif section == "cli":
                text = section_cli(setup, plan, workdir, args.threads, args.prior)
            else:
                text = section_profile(setup.prior, plan, args.tasks)
            print(text, flush=True)
            parts.append(text)
    parts.append(f"Total benchmark time: {time.perf_counter() - started:.0f} s.\n")
    print(parts[-1])
    if args.out is not None:
        write_text(args.out, "\n".join(parts))
    return 0
