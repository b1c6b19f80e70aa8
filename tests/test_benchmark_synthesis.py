"""Resumable, sharded runs of ``audiosds.bench.synthesis_curves`` on the analytic prior with a
closed-form scorer: two shards then ``--report-only`` give the unsharded report and plot, a killed
run resumes without rerunning finished jobs, a changed setting is never served a cached line. And
its companion ``audiosds.bench.prior_prompt_scores``, the scores of the prior's own generations."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from audiosds.bench import prior_prompt_scores
from audiosds.bench import synthesis_curves as synthesis
from audiosds.scorer import PromptScorer
from benchmark_cache import CallCounter, cache_records, report_tables


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


ARGS = ["--prior", "analytic", "--seeds", "1", "--iters", "2", "--seconds", "0.1", "--score-every", "1"]


@pytest.fixture(autouse=True)
def band_scorer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthesis, "build_scorer", lambda name, **cfg: BandScorer())


def _run(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    capsys.readouterr()
    synthesis.main(argv)
    return capsys.readouterr().out


def test_two_shards_then_report_only_equal_the_unsharded_report(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = _run([*ARGS, "--plot", str(tmp_path / "plain.png")], capsys)
    cache = tmp_path / "cache"
    shard_plot = tmp_path / "shard.png"
    for shard in ("1/2", "0/2"):
        _run([*ARGS, "--cache", str(cache), "--shard", shard, "--plot", str(shard_plot)], capsys)
    assert not shard_plot.exists()  # a shard of several leaves the plot to --report-only
    # report-only needs neither the prior nor the scorer
    monkeypatch.setattr(synthesis, "build", lambda *a, **k: pytest.fail("report-only built a prior"))
    monkeypatch.setattr(synthesis, "build_scorer", lambda *a, **k: pytest.fail("report-only built a scorer"))
    report = _run([*ARGS, "--cache", str(cache), "--report-only", "--plot", str(tmp_path / "r.png")], capsys)
    assert report_tables(report) == report_tables(plain)
    assert "Incomplete" not in report and "scored at least its start in" in report
    assert (tmp_path / "r.png").stat().st_size > 0
    keys = [r["key"] for r in cache_records(cache)]
    assert sorted(keys) == sorted(job.key for job in synthesis.job_list(synthesis.parse_args(ARGS)))
    assert len(keys) == 10


def test_a_killed_run_resumes_without_rerunning_finished_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = [*ARGS, "--cache", str(tmp_path), "--plot", str(tmp_path / "p.png")]
    original = synthesis.synthesize
    monkeypatch.setattr(synthesis, "synthesize", CallCounter(original, kill_at=4))
    with pytest.raises(KeyboardInterrupt):
        synthesis.main(cached)
    with open(next(tmp_path.glob("*.jsonl")), "a") as f:
        f.write('{"key": "torn')  # a line cut short by the kill
    assert len([r["key"] for r in cache_records(tmp_path)]) == 3
    partial = _run([*cached, "--report-only"], capsys)
    assert "Incomplete: 7 of 10 jobs missing" in partial
    counter = CallCounter(original)
    monkeypatch.setattr(synthesis, "synthesize", counter)
    resumed = _run(cached, capsys)
    assert counter.calls == 7
    assert "Incomplete" not in resumed
    keys = [r["key"] for r in cache_records(tmp_path)]
    assert len(keys) == len(set(keys)) == 10  # no job ran twice


def test_a_changed_setting_is_not_served_a_cached_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = CallCounter(synthesis.synthesize)
    monkeypatch.setattr(synthesis, "synthesize", counter)
    base = [*ARGS, "--cache", str(tmp_path), "--plot", str(tmp_path / "p.png")]
    _run(base, capsys)
    _run(base, capsys)
    assert counter.calls == 10
    _run([*base, "--lr", "0.1"], capsys)
    assert counter.calls == 20
    # one more seed: only the new seed's runs
    _run([*base, "--seeds", "2"], capsys)
    assert counter.calls == 30

    def keys(*extra: str) -> set[str]:
        return {job.key for job in synthesis.job_list(synthesis.parse_args([*ARGS, *extra]))}

    changes = (["--iters", "3"], ["--seconds", "0.2"], ["--score-every", "2"], ["--prior", "embedded-mel"])
    for extra in changes:
        assert keys(*extra).isdisjoint(keys()), extra
    scorer = tmp_path / "scorer"
    scorer.mkdir()
    (scorer / "scorer.json").write_text("{}")
    assert keys("--scorer-weights", str(scorer)).isdisjoint(keys())


@pytest.mark.parametrize("shard", ["1/1", "3/2", "x/2", "0/2/1", "0"])
def test_bad_shard_values_are_one_line_argparse_errors(shard: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as err:
        synthesis.parse_args([*ARGS, "--cache", "c", f"--shard={shard}"])
    assert err.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # usage lines, then one error line
    assert ": error: argument --shard: expected I/N with 0 <= I < N" in last


def test_sds_overrides_and_subsets_reach_every_run(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = []

    def spy(synth, prior, prompt, config, sds, scorer=None):
        seen.append((type(synth).__name__, prompt, sds))
        return synthesis_run(synth, prior, prompt, config, sds, scorer=scorer)

    synthesis_run = synthesis.synthesize
    monkeypatch.setattr(synthesis, "synthesize", spy)
    extra = ["--sds", "t_min=0.2", "cfg_scale=7.5", "--renderers", "impact", "--prompts", "a dull thud"]
    out = _run([*ARGS, *extra, "--plot", str(tmp_path / "p.png")], capsys)
    assert [(name, prompt) for name, prompt, _ in seen] == [("ImpactSynth", "a dull thud")]
    assert (seen[0][2].t_min, seen[0][2].cfg_scale) == (0.2, 7.5)
    assert "CFG 7.5" in out and "| impact | a dull thud |" in out and (tmp_path / "p.png").is_file()

    def keys(*more: str) -> set[str]:
        return {job.key for job in synthesis.job_list(synthesis.parse_args([*ARGS, *more]))}

    assert keys("--sds", "t_min=0.2").isdisjoint(keys())  # another setting is another job
    for bad in (["--sds", "t_min=high"], ["--sds", "nope=1"], ["--sds", "t_min=0.9", "t_max=0.5"]):
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
