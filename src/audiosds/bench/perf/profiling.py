"""``perf`` section ``profile``: cProfile and torch.profiler of real task iterations."""

from __future__ import annotations

import cProfile
import os
import pstats
import time
from collections.abc import Sequence

import torch

from ... import renderers
from ...priors.base import Prior
from ...tasks.separate import SeparateConfig, separate
from ...tasks.synthesize import SynthesizeConfig, synthesize
from .. import log
from ..report import markdown_table
from .measure import ms
from .work import SOURCE_PROMPTS, SYNTH_PROMPT, TASKS, Plan, make_mixture, task_sds


def _short(path: str) -> str:
    marker = f"{os.sep}audiosds{os.sep}"
    if marker in path:
        return "audiosds/" + path.split(marker, 1)[1]
    if "site-packages" in path:
        return path.split("site-packages" + os.sep, 1)[1]
    return path


def profile_task(prior: Prior, task: str, plan: Plan) -> tuple[str, float]:
    """Profile real iterations of ``task`` at the default SDS settings, after warm-up iterations:
    ``plan.profile_iters`` under cProfile (audiosds functions by cumulative time, top self-time
    Python-visible calls), then as many under torch.profiler (top operators by self CPU time,
    autograd's backward nodes included). Times are per iteration.

    Returns:
        The markdown, and the mean iteration time (s) without any profiler.
    """
    k = plan.profile_iters
    first = plan.warmup + 1
    edges = [first + i * k for i in range(4)]  # plain, cProfile and torch.profiler windows
    stamps: dict[int, float] = {}
    cprof = cProfile.Profile()
    tprof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
    actions = {
        edges[1] - 1: cprof.enable,
        edges[2] - 1: lambda: (cprof.disable(), tprof.start()),
        edges[3] - 1: tprof.stop,
    }

    def on_step(it: int, row: dict[str, float]) -> None:
        if it in actions:
            actions[it]()
        stamps[it] = time.perf_counter()

    iters = edges[3]
    if task in ("fm", "impact"):
        renderer = renderers.build(task, sample_rate=prior.sample_rate, seconds=plan.synth_seconds)
        sds, _ = task_sds(prior, task, 1, 1)
        synthesize(renderer, prior, SYNTH_PROMPT, SynthesizeConfig(iters=iters), sds, progress=on_step)
        clip = plan.synth_seconds
    else:
        n = round(plan.sep_seconds * prior.sample_rate)
        mixture = make_mixture(2, n, prior.sample_rate)
        sds, mode = task_sds(prior, task, 1, 1)
        config = SeparateConfig(
            iters=iters, max_seconds=max(SeparateConfig.max_seconds, plan.sep_seconds), sds_modes=(mode,)
        )
        separate(mixture, prior.sample_rate, prior, list(SOURCE_PROMPTS[:2]), config, sds, progress=on_step)
        clip = plan.sep_seconds
    plain = (stamps[edges[1] - 1] - stamps[edges[0] - 1]) / k
    profiled = (stamps[edges[2] - 1] - stamps[edges[1] - 1]) / k
    stats = pstats.Stats(cprof).stats  # (file, line, name) -> (cc, ncalls, tottime, cumtime, callers)

    def label(key: tuple[str, int, str]) -> str:
        file, line, name = key
        return f"`{name}`" if file == "~" else f"`{_short(file)}:{line} {name}`"

    def share(seconds: float, total: float) -> str:
        return f"{100 * seconds / total:.0f}%"

    package, harness = f"{os.sep}audiosds{os.sep}", f"{os.sep}audiosds{os.sep}bench{os.sep}"
    # the benchmark's own callbacks (audiosds/bench) are not the package's work
    ours = [(key, v) for key, v in stats.items() if package in key[0] and harness not in key[0]]
    ours.sort(key=lambda kv: -kv[1][3])
    cum_rows = [
        [label(key), f"{v[1] / k:g}", ms(v[3] / k), share(v[3] / k, profiled), ms(v[2] / k)]
        for key, v in ours[:18]
    ]
    top = sorted(stats.items(), key=lambda kv: -kv[1][2])[:12]
    self_rows = [[label(key), f"{v[1] / k:g}", ms(v[2] / k), share(v[2] / k, profiled)] for key, v in top]
    events = sorted(tprof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:15]
    op_total = sum(e.self_cpu_time_total for e in tprof.key_averages()) / 1e6 / k  # us -> s
    op_rows = [
        [
            f"`{e.key}`",
            f"{e.count / k:g}",
            ms(e.self_cpu_time_total / 1e6 / k),
            share(e.self_cpu_time_total / 1e6 / k, op_total),
        ]
        for e in events
    ]
    text = (
        f"### {task}: {ms(plain)} ms per iteration ({clip:g} s clip, SDS defaults: B = 1, K = 1, "
        f"cfg 3; {ms(profiled)} ms under cProfile)\n\n"
        "audiosds functions by cumulative time per iteration (cProfile; share of the profiled iteration):\n\n"
        + markdown_table(["function", "calls", "cum ms", "share", "self ms"], cum_rows)
        + "\n\nTop self time per iteration (cProfile, any Python-visible call):\n\n"
        + markdown_table(["function", "calls", "self ms", "share"], self_rows)
        + "\n\nTop operators by self CPU time per iteration (torch.profiler; share of all operator time):\n\n"
        + markdown_table(["operator", "calls", "self ms", "share"], op_rows)
        + "\n"
    )
    return text, plain


def section_profile(prior: Prior, plan: Plan, tasks: Sequence[str] = TASKS) -> str:
    parts = ["## Profile\n"]
    for task in tasks:
        log.info(f"profile: {task}")
        text, _ = profile_task(prior, task, plan)
        parts.append(text)
    return "\n".join(parts)
