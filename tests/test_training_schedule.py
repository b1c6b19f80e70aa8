"""The training plumbing of training/run.py: the LR schedule (warmup, cosine decay, the warm restart
of an extended run), the run log and ``--set`` overrides of a training config."""

import math
import re
from pathlib import Path

import pytest

from audiosds.training import train_mel
from audiosds.training.run import RunLog, Schedule, apply_overrides, cosine_lr
from audiosds.training.train_mel import MelTrainConfig


def schedule(steps: int, first_cycle: int = 0) -> Schedule:
    return Schedule(
        steps=steps,
        lr=1.0,
        warmup=10,
        final_lr_fraction=0.1,
        grad_clip=1.0,
        log_every=1,
        checkpoint_every=1,
        first_cycle=first_cycle,
    )


def test_cosine_lr_closed_form():
    assert cosine_lr(0, 110, 1.0, 10, 0.1) == pytest.approx(0.1)  # (step + 1) / warmup
    assert cosine_lr(10, 110, 1.0, 10, 0.1) == pytest.approx(1.0)
    assert cosine_lr(60, 110, 1.0, 10, 0.1) == pytest.approx(0.55)  # half way: 0.1 + 0.9 / 2
    assert cosine_lr(110, 110, 1.0, 10, 0.1) == pytest.approx(0.1)
    assert cosine_lr(500, 110, 1.0, 10, 0.1) == pytest.approx(0.1)


def test_without_first_cycle_the_rate_is_one_cosine():
    s = schedule(110)
    assert [s.rate(k) for k in range(120)] == [cosine_lr(k, 110, 1.0, 10, 0.1) for k in range(120)]


def test_extended_run_follows_the_short_cycle_then_restarts_on_the_long_one():
    short, extended = schedule(60), schedule(160, first_cycle=60)
    assert [extended.rate(k) for k in range(60)] == [short.rate(k) for k in range(60)]
    # At the restart the rate jumps up to where the long cosine stands, then decays to the floor.
    progress = (60 - 10) / (160 - 10)
    assert extended.rate(60) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
    assert extended.rate(59) < 0.11 < extended.rate(60)
    rates = [extended.rate(k) for k in range(60, 161)]
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False)) and rates[-1] == pytest.approx(0.1)


def test_a_first_cycle_not_shorter_than_the_run_is_ignored():
    assert schedule(60, first_cycle=60).rate(59) == schedule(60).rate(59)
    assert schedule(60, first_cycle=90).rate(30) == schedule(60).rate(30)


def test_configs_without_first_cycle_still_give_a_schedule():
    class Legacy:
        steps, lr, warmup, final_lr_fraction = 5, 1.0, 1, 0.1
        grad_clip, log_every, checkpoint_every = 1.0, 1, 1

    assert Schedule.of(Legacy()).first_cycle == 0
    mel = Schedule.of(MelTrainConfig())
    assert 0 < mel.first_cycle < mel.steps


def test_run_log_appends_timestamped_lines_to_its_file_and_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    first = RunLog(tmp_path / "a")
    first("step 1 loss 0.5")
    second = RunLog(tmp_path / "b")  # a new run log takes over; the first file gets nothing more
    second("step 2 loss 0.4")
    RunLog(tmp_path / "a")("resumed")
    pattern = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[\s+\d+\.\ds\] "
    a = (tmp_path / "a" / "log.txt").read_text().splitlines()
    assert [re.sub(pattern, "", line) for line in a] == ["step 1 loss 0.5", "resumed"]
    assert all(re.match(pattern, line) for line in a)
    assert (tmp_path / "b" / "log.txt").read_text().endswith("] step 2 loss 0.4\n")
    out = capsys.readouterr().out.splitlines()
    assert [re.sub(pattern, "", line) for line in out] == ["step 1 loss 0.5", "step 2 loss 0.4", "resumed"]


def test_set_overrides_reach_nested_config_and_reject_unknown_keys():
    base = MelTrainConfig().to_dict()
    d = apply_overrides(
        base, ["model.emb_dim=128", "model.channels=[32, 64, 96]", "lr=0.001", "export_dtype=float32"]
    )
    cfg = MelTrainConfig.from_dict(d)
    assert cfg.model.emb_dim == 128 and cfg.model.channels == (32, 64, 96)
    assert cfg.lr == 0.001 and cfg.export_dtype == "float32"
    assert base["model"]["emb_dim"] == 256  # the input is not modified
    with pytest.raises(ValueError, match="unknown key 'emb_dm'"):
        apply_overrides(base, ["model.emb_dm=128"])
    with pytest.raises(ValueError, match="no section 'modle'"):
        apply_overrides(base, ["modle.emb_dim=128"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        apply_overrides(base, ["model.emb_dim"])


def test_set_on_the_command_line_is_one_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        train_mel.main(["--out", str(tmp_path), "--set", "model.chanels=[8]"])
    assert exc.value.code == 2
    assert "unknown key 'chanels'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing started


def test_an_unknown_precision_is_one_clear_error(tmp_path, capsys):
    assert MelTrainConfig.from_dict({"precision": "bfloat16"}).precision == "bfloat16"
    with pytest.raises(SystemExit) as exc:
        train_mel.main(["--out", str(tmp_path), "--set", "precision=float16"])
    assert exc.value.code == 2
    assert "precision: expected one of ['bfloat16', 'float32'], got 'float16'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
