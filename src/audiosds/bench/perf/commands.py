"""``perf`` section ``cli``: whole-process wall time and peak RSS of ``audiosds`` commands."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from ...audio import save_wav
from .. import log
from ..report import markdown_table
from .measure import mib, run_command
from .work import SOURCE_PROMPTS, SYNTH_PROMPT, Plan, PriorSetup, make_mixture

CLI_TARGETS_S = {"fm": 60.0, "separate": 180.0, "generate": 10.0}  # embedded-mel prior, this 2-core machine


def section_cli(setup: PriorSetup, plan: Plan, workdir: Path, threads: int | None, prior_name: str) -> str:
    prior = setup.prior
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    wav = workdir / "mixture_4s.wav"
    save_wav(wav, make_mixture(2, 4 * prior.sample_rate, prior.sample_rate), prior.sample_rate)
    iters = [] if plan.cli_iters is None else ["--iters", str(plan.cli_iters)]
    fm_iters = ["--iters", str(plan.cli_iters or 200)]
    prompts = ["--prompt", SOURCE_PROMPTS[0], "--prompt", SOURCE_PROMPTS[1]]
    commands = {
        "fm": ["fm", "--prompt", SYNTH_PROMPT, *fm_iters, "-o", str(workdir / "cli_fm")],
        "separate": ["separate", str(wav), *prompts, *iters, "-o", str(workdir / "cli_separate")],
        "generate": ["generate", "--prompt", SYNTH_PROMPT, "--seconds", "2", "-o", str(workdir / "gen.wav")],
    }
    rows = []
    for name, args in commands.items():
        argv = [sys.executable, "-m", "audiosds", *args, *setup.cli_args, "--quiet"]
        log.info(f"cli: {name}")
        wall, code, rss, last = run_command(argv, env)
        shown = "audiosds " + shlex.join([*args, *setup.cli_args, "--quiet"]).replace(str(workdir), "$TMP")
        status = "ok" if code == 0 else f"exit {code}: {last[:120]}"
        rows.append([f"`{shown}`", f"{wall:.1f}", f"{CLI_TARGETS_S[name]:g}", mib(rss), status])
    note = ""
    if plan.cli_iters is not None:
        note = f" (--quick: {plan.cli_iters} iterations, not the defaults the targets are for)"
    return (
        "## Whole-process wall time\n\nSubprocesses, start-up included; peak RSS from wait4 in a "
        "go-between; $TMP: a temporary folder; the mixture is 4 s, two sources, mono at "
        f"{prior.sample_rate} Hz{note}. "
        f"Targets (s) are for the embedded-mel prior on the 2-core machine"
        f"{'' if prior_name == 'embedded-mel' else ' (reference only for this prior)'}.\n\n"
        + markdown_table(["command", "wall s", "target s", "peak RSS MiB", "status"], rows)
        + "\n"
    )
