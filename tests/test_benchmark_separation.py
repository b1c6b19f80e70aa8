"""``audiosds.bench.separation`` on the analytic prior: every separation is an ``audiosds separate``
command line run by ``audiosds batch``, its mixture and ground truth are files, and the run folders
are the records (a rerun skips them, ``--report-only`` scores them without a prior); every setting
is in a job's key, and bad options are one-line argparse errors."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import yaml

from audiosds.bench import separation
from benchmark_helpers import CallCounter, report_tables

TINY = ["--prior", "analytic", "--mixtures", "1", "--iters", "2", "--seconds", "0.5", "--gen-steps", "2"]
# world + prior-generated sources + ablations: 26 jobs, 22 distinct keys (the ablation's baseline
# and "Decoder-SDS + latent SDS, K=1" are the world section's baseline and "ours (remasked)")
FULL = [*TINY, "--pairs", "traffic+sax", "bongo+waves", "--parametrizations", "remasked", "--ablation"]
# world sources, one pair: the baseline and 2 separations (reconstruction only, ours)
TWO_PAIRS = ["--pairs", "clock+bongo", "wind+pipes"]
SMALL = [*TINY, "--sources-from", "world", "--parametrizations", "masks", *TWO_PAIRS]
ONE = [*TINY, "--sources-from", "world", "--parametrizations", "masks", "--pairs", "clock+bongo"]


def _run(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    capsys.readouterr()
    separation.main(argv)
    return capsys.readouterr().out


def _row(text: str, section: str, label: str) -> str:
    """The cells of a method's first-table row in a section."""
    part = text.split(f"### {section}")[1]
    return next(line for line in part.splitlines() if line.startswith(f"| {label} |")).split(" | ", 1)[1]


def _statuses(runs: Path) -> list[str]:
    with open(runs / "summary.csv", newline="") as f:
        return [row["status"] for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def benchmarked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """ONE run once into a runs folder: (the folder, the report)."""
    runs = tmp_path_factory.mktemp("separation") / "runs"
    out = runs.parent / "report.md"
    separation.main([*ONE, "--runs", str(runs), "--out", str(out)])
    return runs, out.read_text()


def test_separations_are_cli_runs_and_the_report_comes_from_the_folders(
    benchmarked: tuple[Path, str], capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs, report = benchmarked
    jobs = separation.job_list(separation.parse_args(ONE))
    assert [j.label for j in jobs] == ["baseline (mixture)", "rec-only (masks)", "ours (masks)"]
    assert _statuses(runs) == ["completed"] * 2 and "Incomplete" not in report
    assert len(list((runs / "mixtures").glob("*.wav"))) == 1  # one mixture, written once
    ours = separation.command_line(jobs[2], runs, separation.parse_args(ONE))
    config = yaml.safe_load((runs / ours.id / "config.yaml").read_text())
    assert config["command"] == "separate" and config["prompts"] == list(
        separation.pair_prompts("clock+bongo")
    )
    assert config["separate"]["parametrization"] == "masks" and config["separate"]["iters"] == 2
    assert config["separate"]["gamma"] == jobs[2].sep.gamma and config["sds"]["t_min"] == jobs[2].sds.t_min
    # a rerun skips every separation; --report-only needs no prior and gives the same tables
    again = _run([*ONE, "--runs", str(runs)], capsys)
    assert _statuses(runs) == ["done"] * 2
    monkeypatch.setattr(separation, "build", lambda *a, **k: pytest.fail("report-only built a prior"))
    only = _run([*ONE, "--runs", str(runs), "--report-only"], capsys)
    assert report_tables(only.strip()) == report_tables(again.strip()) == report_tables(report.strip())


def test_a_stopped_benchmark_names_what_is_missing_and_finishes_it(
    benchmarked: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(benchmarked[0], runs)
    jobs = separation.job_list(separation.parse_args(ONE))
    ours = separation.command_line(jobs[2], runs, separation.parse_args(ONE))
    shutil.rmtree(runs / ours.id)  # as if stopped before it started
    partial = _run([*ONE, "--runs", str(runs), "--report-only"], capsys)
    assert "Incomplete: 1 of 3 jobs missing" in partial
    finished = _run([*ONE, "--runs", str(runs)], capsys)
    assert sorted(_statuses(runs)) == ["completed", "done"] and "Incomplete" not in finished
    assert report_tables(finished.strip()) == report_tables(benchmarked[1].strip())


def test_the_ablation_twins_are_the_same_separation() -> None:
    args = separation.parse_args(FULL)
    jobs = separation.job_list(args)
    assert len(jobs) == 26 and len({job.key for job in jobs}) == 22
    twin = {job.label: job for job in jobs if job.section == "ablation" and job.pair == "traffic+sax"}
    ours = next(
        j for j in jobs if j.section == "world" and j.pair == "traffic+sax" and j.label == "ours (remasked)"
    )
    assert twin["Decoder-SDS + latent SDS, K=1"].key == ours.key
    assert twin["Decoder-SDS, K=1"].key != ours.key
    out = Path("/nowhere")
    same = separation.command_line(twin["Decoder-SDS + latent SDS, K=1"], out, args).id
    assert same == separation.command_line(ours, out, args).id


def test_every_setting_of_a_job_is_in_its_key(tmp_path: Path) -> None:
    def keys(*extra: str) -> list[str]:
        return [job.key for job in separation.job_list(separation.parse_args([*SMALL, *extra]))]

    base = keys()
    for extra in (["--seed", "1"], ["--seconds", "0.25"], ["--prior", "embedded-mel"]):
        assert set(keys(*extra)).isdisjoint(base), extra
    # gamma only weighs SDS in "ours": the baseline and reconstruction-only jobs stay cached
    labels = [job.label for job in separation.job_list(separation.parse_args(SMALL))]
    changed = [label for label, a, b in zip(labels, base, keys("--gamma", "0.5"), strict=True) if a != b]
    assert changed == ["ours (masks)", "ours (masks)"]
    # a subset of pairs or methods selects jobs without changing them
    assert set(keys("--methods", "ours (masks)")) < set(base)
    # weights: the folder's files count, not its path
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "denoiser.safetensors").write_bytes(b"\x00" * 8)
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (moved / "denoiser.safetensors").write_bytes(b"\x00" * 8)
    a = keys("--prior", "embedded-mel", "--weights", str(folder))
    assert keys("--prior", "embedded-mel", "--weights", str(moved)) == a
    (moved / "denoiser.safetensors").write_bytes(b"\x01" + b"\x00" * 7)
    assert set(keys("--prior", "embedded-mel", "--weights", str(moved))).isdisjoint(a)


def test_prior_sources_are_generated_once_and_kept_with_the_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = CallCounter(separation.generate)
    monkeypatch.setattr(separation, "generate", counter)
    argv = [*TINY, "--sources-from", "prior", "--pairs", "pipes+glass", "--parametrizations", "masks"]
    argv += ["--methods", "ours (masks)", "--runs", str(tmp_path)]
    text = _run(argv, capsys)
    assert counter.calls == 2 and len(list((tmp_path / "mixtures").glob("source-*.npy"))) == 2
    _run(argv, capsys)  # everything is there: nothing is generated or separated again
    assert counter.calls == 2 and _statuses(tmp_path) == ["done"]
    assert "Incomplete" not in text and "ours (masks)" in text and "rec-only" not in text


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--report-only"], "expected --runs DIR"),
        (["--workers", "0"], "--workers: expected >= 1"),
        (["--pairs", "sax+traffic"], "argument --pairs: invalid choice"),
        (["--methods", "ours (latent)"], "--methods: expected labels among"),
        (["--methods", "Decoder-SDS, K=4"], "--methods: expected labels among"),  # needs --ablation
    ],
)
def test_bad_options_are_one_line_argparse_errors(
    extra: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as err:
        separation.parse_args([*SMALL, *extra])
    assert err.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # usage lines, then one error line
    assert ": error: " in last and message in last


def test_sep_and_sds_overrides_reach_every_method_and_bad_ones_are_usage_errors() -> None:
    args = separation.parse_args(
        ["--sep", "lr=0.1", "contrast=false", "--sds", "t_min=0.2", "cfg_scale=5", "stft_windows=256,512"]
    )
    for label, sep, sds in separation.methods(args):
        assert sep.lr == 0.1 and sep.contrast is False
        assert (sds.t_min, sds.cfg_scale, sds.stft_windows) == (0.2, 5.0, (256, 512))
        assert sds.t_max == separation.separation_sds(args.prior).t_max  # untouched: the prior's defaults
        assert (sep.gamma == 0.0) == label.startswith("rec-only")
    ablation = {label: (sep, sds) for label, sep, sds in separation.ablations(args)}
    assert ablation["classic latent SDS, K=1"][0].sds_modes == ("latent",)
    assert ablation["Decoder-SDS, K=1"][0].sds_modes == ("decoder",)
    assert ablation["Decoder-SDS + latent SDS, K=1"][0].sds_modes == ("decoder", "latent")
    assert ablation["Decoder-SDS, K=4"][1].num_steps == 4
    assert all(sds.cfg_scale == 5.0 and sep.lr == 0.1 for sep, sds in ablation.values())
    one = separation.parse_args(["--sep", "sds_modes=latent,decoder"])
    assert all(sep.sds_modes == ("latent", "decoder") for _, sep, _ in separation.methods(one))
    bad_args = (["--sds", "bogus=1"], ["--sep", "lr"], ["--sep", "contrast=maybe"], ["--sds", "t_min=2"])
    for bad in (*bad_args, ["--sds", "mode=latent"], ["--sep", "sds_modes=pixel"]):
        with pytest.raises(SystemExit):
            separation.parse_args(bad)


SOUNDS = Path(__file__).resolve().parents[2] / "shared/data/sounds"


@pytest.mark.skipif(not (SOUNDS / "manifest.csv").is_file(), reason=f"{SOUNDS} not found")
def test_esc_mixtures_are_held_out_clips_of_each_pair_with_the_class_captions(
    capsys: pytest.CaptureFixture,
) -> None:
    argv = [*TINY, "--sources-from", "none", "--parametrizations", "masks", "--esc", str(SOUNDS)]
    args = separation.parse_args([*argv, "--mixtures", "3", "--esc-seconds", "0.5"])
    jobs = separation.job_list(args)
    assert {job.pair for job in jobs} == set(separation.ESC_PAIR_NAMES)
    assert len({(job.pair, job.index) for job in jobs}) == 15  # the "at least 15 mixtures"
    used = [
        path
        for pair in separation.ESC_PAIR_NAMES
        for i in range(3)
        for path in separation.esc_sources(pair, i, args)
    ]
    assert len(set(used)) == 30 and all(p.name.startswith("5-") for p in used)  # fold 5 only, no repeats
    # the ten classes each appear once across the pairs
    assert sorted(c for pair in separation.ESC_PAIRS for c in pair) == sorted(separation.esc_clips(SOUNDS))
    mix = separation.esc_mixture(separation.build("analytic"), "dog_bark+rain", 0, args)
    assert mix.prompts == ("a dog barking", "rain falling")
    rms = (mix.sources.astype(float) ** 2).mean(axis=1) ** 0.5
    assert mix.sources.shape == (2, round(0.5 * separation.build("analytic").sample_rate))
    assert abs(rms[0] - rms[1]) < 1e-4
    text = separation.report(args, jobs, {}, "cmd")  # the section, before anything has run
    assert "### Held-out ESC-10 recordings (fold 5)" in text and "dog_bark+rain" in text
    assert "### Sources from the world" not in text


def test_esc_needs_a_sounds_folder(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        separation.parse_args([*TINY, "--esc", str(tmp_path)])


def test_the_mel_prior_s_job_keys_follow_its_installed_weights(tmp_path: Path) -> None:
    """Without --weights the installed weights are fingerprinted: other files, another key; the same
    files elsewhere, the same key."""
    from audiosds.bench.keys import prior_identity
    from audiosds.priors.embedded_mel import default_weights_dir

    installed = prior_identity("embedded-mel", None)
    assert installed == prior_identity("embedded-mel", str(default_weights_dir()))
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in default_weights_dir().iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    assert prior_identity("embedded-mel", str(copy)) == installed
    (copy / "mel.json").write_text((copy / "mel.json").read_text().replace("22050", "22051"))
    assert prior_identity("embedded-mel", str(copy)) != installed
    assert prior_identity("analytic", None) == {"name": "analytic", "weights": None}
