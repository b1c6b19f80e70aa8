"""``audiosds.bench.synthesis_curves`` on the analytic prior: every run is an ``audiosds fm`` /
``impact`` command line run by ``audiosds batch``, its run folder is its record (a rerun skips it,
``--report-only`` reports from the folders), and every setting reaches the runs. And its companion
``audiosds.bench.prior_prompt_scores``, the scores of the prior's own generations."""

from __future__ import annotations

import csv
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from audiosds.bench import prior_prompt_scores
from audiosds.bench import synthesis_curves as synthesis
from audiosds.cli import main as cli
from audiosds.scorer import PromptScorer
from benchmark_helpers import report_tables


class BandScorer(PromptScorer):
    """Closed-form scorer: amplitudes of four frequency bands against a vector from the prompt's letters."""

    @property
    def sample_rate(self) -> int:
        return 16000

    def embed_audio(self, audio, sample_rate: int | None = None) -> torch.Tensor:
        x = torch.as_tensor(audio).float()
        x = x.mean(dim=1) if x.ndim == 3 else x
        power = torch.fft.rfft(x).abs() ** 2
        return F.normalize(torch.stack([b.sum(-1) for b in power.chunk(4, dim=-1)], -1).sqrt(), dim=-1)

    def embed_text(self, prompts: Sequence[str]) -> torch.Tensor:
        rows = [[1.0 + p.count(c) for c in "aeio"] for p in prompts]
        return F.normalize(torch.tensor(rows), dim=-1)


ARGS = ["--prior", "analytic", "--seeds", "1", "--iters", "3", "--seconds", "0.25", "--score-every", "1"]
TWO = [*ARGS, "--renderers", "fm", "impact", "--prompts", "a warm bass note"]


def _run(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    capsys.readouterr()
    synthesis.main(argv)
    return capsys.readouterr().out


def _statuses(runs: Path) -> list[str]:
    with open(runs / "summary.csv", newline="") as f:
        return [row["status"] for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def benchmarked(tmp_path_factory) -> tuple[Path, str]:
    """TWO run once into a run folder: (the folder, the report)."""
    folder = tmp_path_factory.mktemp("synthesis")
    runs = folder / "runs"
    out = folder / "report.md"
    synthesis.main([*TWO, "--runs", str(runs), "--out", str(out)])
    return runs, out.read_text()


def test_every_run_is_a_cli_run_folder_and_the_report_comes_from_the_folders(
    benchmarked: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    runs, report = benchmarked
    jobs = synthesis.job_list(synthesis.parse_args(TWO))
    assert [j.command for j in jobs] == ["fm", "impact"] and _statuses(runs) == ["completed"] * 2
    assert "| fm | a warm bass note | 0 |" in report and "scored at least its start in" in report
    assert "Incomplete" not in report and (runs.parent / "report.png").stat().st_size > 0
    alone = tmp_path / "alone"  # the shell's run of the first job's command line: the same bytes
    assert cli(jobs[0].argv(alone, runs / ".batch" / f"{jobs[0].id}.config.yaml", None)) == 0
    assert (alone / "audio.wav").read_bytes() == (runs / jobs[0].id / "audio.wav").read_bytes()
    assert (alone / "history.csv").read_bytes() == (runs / jobs[0].id / "history.csv").read_bytes()

    again = _run([*TWO, "--runs", str(runs), "--plot", str(tmp_path / "q.png")], capsys)
    assert _statuses(runs) == ["done"] * 2  # nothing ran twice
    only = _run([*TWO, "--runs", str(runs), "--report-only", "--plot", str(tmp_path / "r.png")], capsys)
    assert report_tables(only.strip()) == report_tables(again.strip()) == report_tables(report.strip())


def test_a_benchmark_stopped_part_way_reports_what_is_missing_and_finishes_it(
    benchmarked: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(benchmarked[0], runs)
    jobs = synthesis.job_list(synthesis.parse_args(TWO))
    (runs / jobs[1].id / "audio.wav").unlink()  # as if stopped before its outputs were written
    partial = _run([*TWO, "--runs", str(runs), "--report-only", "--plot", str(tmp_path / "q.png")], capsys)
    assert "Incomplete: 1 of 2 jobs missing (impact 'a warm bass note' seed 0)" in partial
    finished = _run([*TWO, "--runs", str(runs), "--plot", str(tmp_path / "r.png")], capsys)
    assert _statuses(runs) == ["done", "completed"] and "Incomplete" not in finished


def test_a_changed_setting_is_another_job() -> None:
    def ids(*extra: str) -> set[str]:
        return {job.id for job in synthesis.job_list(synthesis.parse_args([*ARGS, *extra]))}

    assert ids() == ids() and len(ids()) == 10  # 2 renderers x 5 prompts x 1 seed
    changes = (
        ["--iters", "4"],
        ["--seconds", "0.2"],
        ["--score-every", "2"],
        ["--prior", "embedded-mel"],
        ["--sds", "t_min=0.2"],
        ["--threads", "2"],
        ["--particles", "1"],
        ["--final"],
    )
    for extra in changes:
        assert ids(*extra).isdisjoint(ids()), extra
    assert len(ids("--seeds", "2") - ids()) == 10  # one more seed: only the new seed's runs are new


def test_sds_overrides_and_subsets_reach_every_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    runs = tmp_path / "runs"
    extra = ["--sds", "t_min=0.2", "cfg_scale=7.5", "--renderers", "impact", "--prompts", "a dull thud"]
    out = _run([*ARGS, *extra, "--runs", str(runs), "--plot", str(tmp_path / "p.png")], capsys)
    (job,) = synthesis.job_list(synthesis.parse_args([*ARGS, *extra]))
    config = yaml.safe_load((runs / job.id / "config.yaml").read_text())
    assert config["command"] == "impact" and config["prompt"] == "a dull thud"
    assert (config["sds"]["t_min"], config["sds"]["cfg_scale"]) == (0.2, 7.5)
    assert config["synthesize"]["iters"] == 3 and config["synthesize"]["score_every"] == 1
    assert "CFG 7.5" in out and "| impact | a dull thud |" in out
    for bad in (
        ["--sds", "t_min=high"],
        ["--sds", "nope=1"],
        ["--sds", "t_min=0.9", "t_max=0.5"],
        ["--report-only"],
        ["--workers", "0"],
    ):
        with pytest.raises(SystemExit) as err:
            synthesis.parse_args([*ARGS, *bad])
        assert err.value.code == 2


def test_default_plot_goes_beside_the_report_not_into_the_working_directory(tmp_path: Path) -> None:
    args = synthesis.parse_args(["--out", str(tmp_path / "runs" / "report.md")])
    assert args.plot == tmp_path / "runs" / "report.png"
    assert synthesis.parse_args([]).plot == Path("synthesis_curves.png")
    assert synthesis.parse_args(["--plot", str(tmp_path / "x.png")]).plot == tmp_path / "x.png"


@pytest.mark.parametrize("f0", [41.0, 60.0, 117.0, 180.0, 440.0])
def test_pitch_of_a_decaying_harmonic_tone_and_none_for_noise(f0: float) -> None:
    import numpy as np

    t = np.arange(16000) / 16000
    tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)) * np.exp(-2 * t)
    assert synthesis.pitch_hz(tone, 16000) == pytest.approx(f0, rel=0.02)
    assert np.isnan(synthesis.pitch_hz(np.random.default_rng(0).standard_normal(16000), 16000))


@pytest.mark.parametrize("t60", [0.2, 0.8, 3.0])
def test_t60_of_an_exponential_decay_and_of_a_click(t60: float) -> None:
    import numpy as np

    t = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * 110 * t) * 10 ** (-3 * t / t60)  # -60 dB at t60
    assert synthesis.t60_s(tone, 16000) == pytest.approx(t60, rel=0.1)
    click = np.zeros(16000)
    click[100:400] = np.sin(2 * np.pi * 300 * t[:300])  # 19 ms of tone, then silence
    assert synthesis.t60_s(click, 16000) < 0.05


def test_prior_prompt_scores_reports_generated_and_initial_scores(tmp_path: Path) -> None:
    out = tmp_path / "scores.md"
    prior_prompt_scores.main(
        ["--prior", "analytic", "--prompts", "a bell", "glass breaking", "--clips", "2", "--renders", "1"]
        + ["--steps", "2", "--seconds", "0.5", "--out", str(out)]
    )
    rows = [
        line for line in out.read_text().splitlines() if line.startswith(("| a bell", "| glass breaking"))
    ]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        mean, lo, hi = (
            float(v) for v in re.fullmatch(r"(-?[\d.]+) \((-?[\d.]+)-(-?[\d.]+)\)", cells[1]).groups()
        )
        assert -1.0 <= lo <= mean <= hi <= 1.0  # two generated clips: their mean lies between them
        assert len(cells) == 4 and all(-1.0 <= float(v) <= 1.0 for v in cells[2:])  # FM and impact inits
