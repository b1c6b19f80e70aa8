"""Resumable, sharded runs of ``audiosds.bench.separation`` on the analytic prior: two shards then
``--report-only`` give the unsharded report, a killed run resumes without rerunning finished jobs,
a changed setting is never served a cached line, and bad options are one-line argparse errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from audiosds.bench import separation
from benchmark_cache import CallCounter, cache_records, report_tables

TINY = ["--prior", "analytic", "--mixtures", "1", "--iters", "2", "--seconds", "0.5", "--gen-steps", "2"]
# world + prior-generated sources + ablations: 26 jobs, 22 distinct keys (the ablation's baseline
# and "Decoder-SDS + latent SDS, K=1" are the world section's baseline and "ours (remasked)")
FULL = [*TINY, "--pairs", "traffic+sax", "bongo+waves", "--parametrizations", "remasked", "--ablation"]
# world sources only: 2 mixtures x (baseline + 2 methods)
TWO_PAIRS = ["--pairs", "clock+bongo", "wind+pipes"]
SMALL = [*TINY, "--sources-from", "world", "--parametrizations", "masks", *TWO_PAIRS]


def _run(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    capsys.readouterr()
    separation.main(argv)
    return capsys.readouterr().out


def _row(text: str, section: str, label: str) -> str:
    """The cells of a method's first-table row in a section."""
    part = text.split(f"### {section}")[1]
    return next(line for line in part.splitlines() if line.startswith(f"| {label} |")).split(" | ", 1)[1]


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A cache filled by shards 0/2 and 1/2, the report-only text from it and the unsharded report."""
    cache = tmp_path_factory.mktemp("sharded")
    out = tmp_path_factory.mktemp("out")
    separation.main([*FULL, "--out", str(out / "plain.md")])
    for shard in ("0/2", "1/2"):
        separation.main([*FULL, "--cache", str(cache), "--shard", shard])
    separation.main([*FULL, "--cache", str(cache), "--report-only", "--out", str(out / "report.md")])
    return cache, (out / "report.md").read_text(), (out / "plain.md").read_text()


def test_two_shards_then_report_only_equal_the_unsharded_report(sharded: tuple[Path, str, str]) -> None:
    cache, report, plain = sharded
    assert report_tables(report) == report_tables(plain)
    assert "Incomplete" not in report
    assert report.count("### ") == 3
    # each shard wrote its own file; together they hold every distinct job exactly once
    files = sorted(cache.glob("results-*.jsonl"))
    assert [f.name.split("-")[1] for f in files] == ["0of2", "1of2"]
    keys = [[json.loads(line)["key"] for line in f.read_text().splitlines()] for f in files]
    jobs = separation.job_list(separation.parse_args(FULL))
    assert len(jobs) == 26
    assert sorted(keys[0] + keys[1]) == sorted({job.key for job in jobs})
    # the ablation twins of the world baseline and "ours" are the same jobs, with the same numbers
    ours = _row(report, "Sources from the world", "ours (remasked)")
    assert _row(report, "Ablations", "Decoder-SDS + latent SDS, K=1") == ours
    assert _row(report, "Ablations", "Decoder-SDS, K=1") != ours
    # prior-generated sources: one .npy per clip (2 mixtures x 2 prompts), shared by both shards
    assert len(list(cache.glob("source-*.npy"))) == 4


def test_the_report_does_not_depend_on_record_order_or_files(
    sharded: tuple[Path, str, str], tmp_path: Path
) -> None:
    cache, _, _ = sharded
    records = cache_records(cache)
    random.Random(0).shuffle(records)
    for n, record in enumerate([*records, records[0]]):  # one job recorded twice
        with open(tmp_path / f"part-{n % 3}.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
    args = separation.parse_args(FULL)
    jobs = separation.job_list(args)

    def report(folder: Path) -> str:
        return separation.report(args, jobs, separation.load_records(folder), "cmd")

    assert report(tmp_path) == report(cache)


def test_a_killed_run_resumes_without_rerunning_finished_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = _run(SMALL, capsys)
    cached = [*SMALL, "--cache", str(tmp_path)]
    original = separation.run_method
    killer = CallCounter(original, kill_at=3)  # killed in the third separation, after 2 of 4 finished
    monkeypatch.setattr(separation, "run_method", killer)
    with pytest.raises(KeyboardInterrupt):
        separation.main(cached)
    with open(next(tmp_path.glob("*.jsonl")), "a") as f:
        f.write('{"key": "torn')  # a line cut short by the kill
    finished = cache_records(tmp_path)
    assert len(finished) == 4 and sum(r["rec_sdr"] is not None for r in finished) == 2
    # report-only on the partial cache: no prior is built, the missing jobs are named
    monkeypatch.setattr(separation, "build", lambda *a, **k: pytest.fail("report-only built a prior"))
    partial = _run([*cached, "--report-only"], capsys)
    assert "Incomplete: 2 of 6 jobs missing" in partial
    assert all(r["key"] not in partial for r in finished)
    # the resumed run only does the separations that did not finish
    monkeypatch.undo()
    counter = CallCounter(original)
    monkeypatch.setattr(separation, "run_method", counter)
    resumed = _run(cached, capsys)
    assert counter.calls == 2
    assert report_tables(resumed) == report_tables(plain)
    keys = [r["key"] for r in cache_records(tmp_path)]
    assert len(keys) == len(set(keys)) == 6  # no job ran twice


def test_a_changed_setting_is_not_served_a_cached_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = CallCounter(separation.run_method)
    monkeypatch.setattr(separation, "run_method", counter)
    first = _run([*SMALL, "--cache", str(tmp_path)], capsys)
    assert counter.calls == 4
    _run([*SMALL, "--cache", str(tmp_path)], capsys)  # same settings: nothing runs
    assert counter.calls == 4
    # more iterations: every separation again; the baselines do not depend on them
    changed = [*SMALL, "--iters", "3", "--cache", str(tmp_path)]  # the last --iters counts
    second = _run(changed, capsys)
    assert counter.calls == 8
    assert len(cache_records(tmp_path)) == 10
    assert _row(first, "Sources", "baseline (mixture)") == _row(second, "Sources", "baseline (mixture)")
    assert _row(first, "Sources", "ours (masks)") != _row(second, "Sources", "ours (masks)")


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


def test_prior_sources_are_generated_once_across_shards_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = CallCounter(separation.generate)
    monkeypatch.setattr(separation, "generate", counter)
    argv = [*TINY, "--sources-from", "prior", "--pairs", "pipes+glass", "--parametrizations", "masks"]
    argv += ["--methods", "ours (masks)", "--cache", str(tmp_path)]
    _run([*argv, "--shard", "0/2"], capsys)  # the baseline: generates both sources
    assert counter.calls == 2
    text = _run([*argv, "--shard", "1/2"], capsys)  # "ours": reads them back
    assert counter.calls == 2
    assert "Incomplete" not in text and "ours (masks)" in text and "rec-only" not in text


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--cache", "c", "--shard", "2/2"], "argument --shard: expected I/N"),
        (["--cache", "c", "--shard", "1"], "argument --shard: expected I/N"),
        (["--cache", "c", "--shard=-1/2"], "argument --shard: expected I/N"),
        (["--cache", "c", "--shard", "0/0"], "argument --shard: expected I/N"),
        (["--cache", "c", "--shard", "0/2/4"], "argument --shard: expected I/N"),
        (["--shard", "0/2"], "expected --cache DIR"),
        (["--report-only"], "expected --cache DIR"),
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
    text = _run([*argv, "--mixtures", "1", "--esc-seconds", "0.5", "--pairs", "clock+bongo"], capsys)
    assert "### Held-out ESC-10 recordings (fold 5)" in text and "dog_bark+rain" in text
    assert "### Sources from the world" not in text


def test_esc_needs_a_sounds_folder(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        separation.parse_args([*TINY, "--esc", str(tmp_path)])


def test_the_mel_prior_s_job_keys_follow_its_installed_weights(tmp_path: Path) -> None:
    """Without --weights the installed weights are fingerprinted: other files, another key; the same
    files elsewhere, the same key."""
    from audiosds.bench.shards import prior_identity
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
