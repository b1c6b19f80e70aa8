import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from audiosds.cli import SYNTH_OUTPUTS, main

FAST = ["--iters", "3", "--seconds", "0.25", "--quiet"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.err


def assert_one_line_error(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("audiosds: error:")
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["fm", "impact"])
def test_synth_writes_every_output_with_the_right_format(tmp_path, capsys, command):
    out = tmp_path / "run"
    code, err = run(capsys, command, "--prompt", "a warm bass note", "-o", out, *FAST)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == sorted(SYNTH_OUTPUTS)
    info = sf.info(str(out / "audio.wav"))
    assert info.samplerate == 16000 and info.channels == 1 and info.frames == 4000
    audio, _ = sf.read(str(out / "audio.wav"))
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0
    params = json.loads((out / "params.json").read_text())
    assert params["prompt"] == "a warm bass note"
    units = {v["unit"] for v in params["params"].values()}
    assert units & {"Hz", "s", "dB"}
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["iter"]) for r in rows] == [0, 1, 2]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    assert (out / "spectrogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_config_yaml_reruns_to_identical_bytes(tmp_path, capsys):
    first, second = tmp_path / "a", tmp_path / "b"
    code, err = run(capsys, "fm", "--prompt", "a bright bell", "--seed", "7", "-o", first, *FAST)
    assert code == 0, err
    saved = yaml.safe_load((first / "config.yaml").read_text())
    assert saved["prompt"] == "a bright bell" and saved["synthesize"]["seed"] == 7
    code, err = run(capsys, "fm", "--config", first / "config.yaml", "--quiet", "-o", second)
    assert code == 0, err
    assert (first / "audio.wav").read_bytes() == (second / "audio.wav").read_bytes()
    # a different seed gives a different result
    third = tmp_path / "c"
    code, _ = run(capsys, "fm", "--prompt", "a bright bell", "--seed", "8", "-o", third, *FAST)
    assert code == 0
    assert (first / "audio.wav").read_bytes() != (third / "audio.wav").read_bytes()


def test_existing_outputs_are_refused_without_force_and_user_files_survive_force(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "audio.wav").write_bytes(b"user data")
    (out / "notes.txt").write_text("mine")
    code, err = run(capsys, "fm", "--prompt", "a bell", "-o", out, *FAST)
    assert code == 2
    assert_one_line_error(err)
    assert "--force" in err
    assert (out / "audio.wav").read_bytes() == b"user data"
    code, err = run(capsys, "fm", "--prompt", "a bell", "-o", out, "--force", *FAST)
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "mine"
    assert sf.info(str(out / "audio.wav")).frames == 4000


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["fm", "--prompt", "   "], "--prompt"),
        (["fm"], "--prompt"),
        (["fm", "--prompt", "x", "--iters", "0"], "--iters"),
        (["fm", "--prompt", "x", "--iters", "many"], "--iters"),
        (["fm", "--prompt", "x", "--cfg", "nan"], "--cfg"),
        (["fm", "--prompt", "x", "--cfg", "1e6"], "cfg_scale"),
        (["fm", "--prompt", "x", "--lr", "100"], "lr"),
        (["fm", "--prompt", "x", "--model", "somewhere"], "model"),
        (["fm", "--prompt", "x", "--seconds", "1e9"], "--seconds"),
        (["fm", "--prompt", "x", "--prior", "nope"], "--prior"),
        (["impact", "--prompt", "x", "--mode", "sideways"], "--mode"),
        (["generate", "--prompt", "x", "-o", "a.mp3"], ".wav"),
        (["frobnicate"], "frobnicate"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(tmp_path, capsys, argv, needle):
    if argv[0] != "frobnicate" and "-o" not in argv:
        argv = [*argv, "-o", str(tmp_path / "out")]
    if argv[0] == "generate":
        argv = [a if a != "a.mp3" else str(tmp_path / "a.mp3") for a in argv]
    code, err = run(capsys, *argv, "--quiet") if argv[0] != "frobnicate" else run(capsys, *argv)
    assert code == 2
    assert_one_line_error(err)
    assert needle in err
    assert not (tmp_path / "out" / "audio.wav").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_device_is_a_usage_error(tmp_path, capsys):
    code, err = run(capsys, "fm", "--prompt", "x", "--device", "cuda", "-o", tmp_path / "o", *FAST)
    assert code == 2
    assert_one_line_error(err)
    assert "cuda" in err


def test_bad_config_file_is_a_usage_error(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("prompt: a bell\nsds:\n  cfg_scael: 3\n")
    code, err = run(capsys, "fm", "--config", cfg, "-o", tmp_path / "o", *FAST)
    assert code == 2
    assert_one_line_error(err)
    assert "cfg_scael" in err
    cfg.write_text("prompt: [unclosed\n")
    code, err = run(capsys, "fm", "--config", cfg, "-o", tmp_path / "o", *FAST)
    assert code == 2
    assert_one_line_error(err)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_folder_is_refused(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    code, err = run(capsys, "fm", "--prompt", "a bell", "-o", locked / "run", *FAST)
    assert code == 2
    assert_one_line_error(err)


def test_output_path_under_a_file_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, err = run(capsys, "fm", "--prompt", "a bell", "-o", blocker / "run", *FAST)
    assert code == 2
    assert_one_line_error(err)
    assert blocker.read_text() == "x"


def test_generate_writes_the_requested_length_deterministically(tmp_path, capsys):
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    for path in (a, b):
        code, err = run(
            capsys,
            "generate",
            "--prompt",
            "a bell",
            "--seconds",
            "0.5",
            "--steps",
            "4",
            "--seed",
            "3",
            "-o",
            path,
            "--quiet",
        )
        assert code == 0, err
    info = sf.info(str(a))
    assert info.samplerate == 16000 and info.frames == 8000
    assert a.read_bytes() == b.read_bytes()


def test_entry_point_reports_errors_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "audiosds", "fm", "--prompt", "", "-o", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr)


@pytest.mark.parametrize("command", ["fm", "impact"])
def test_synth_runs_offline_on_a_stable_audio_open_folder(tmp_path, capsys, monkeypatch, command):
    from tiny_sao import build_tiny_stable_audio

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = build_tiny_stable_audio(tmp_path / "sao")
    out = tmp_path / "run"
    code, err = run(
        capsys,
        command,
        "--prior",
        "stable-audio-open",
        "--model",
        model,
        "--prompt",
        "a bell",
        "--iters",
        "2",
        "--seconds",
        "0.25",
        "--steps",
        "2",
        "--quiet",
        "-o",
        out,
    )
    assert code == 0, err
    info = sf.info(str(out / "audio.wav"))
    assert info.samplerate == 44100 and info.frames == round(0.25 * 44100)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["prior"] == {"name": "stable-audio-open", "model": str(model)}


def test_model_folder_missing_parts_is_one_line(tmp_path, capsys, monkeypatch):
    import shutil

    from tiny_sao import build_tiny_stable_audio

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = build_tiny_stable_audio(tmp_path / "sao")
    shutil.rmtree(model / "vae")
    capsys.readouterr()  # the builder's own progress output
    code, err = run(
        capsys,
        "fm",
        "--prior",
        "stable-audio-open",
        "--model",
        model,
        "--prompt",
        "a bell",
        "-o",
        tmp_path / "run",
        *FAST,
    )
    assert code == 1
    assert_one_line_error(err)
    assert "vae/" in err
    assert not (tmp_path / "run" / "audio.wav").exists()


def test_sigint_checkpoints_and_resume_gives_the_uninterrupted_bytes(tmp_path):
    import signal
    import time

    argv = [
        sys.executable,
        "-m",
        "audiosds",
        "fm",
        "--prompt",
        "a bell",
        "--seconds",
        "0.1",
        "--iters",
        "600",
        "--checkpoint-every",
        "5",
        "--seed",
        "3",
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert (
        subprocess.run([*argv, "-o", str(whole)], capture_output=True, timeout=300, env=env).returncode == 0
    )

    proc = subprocess.Popen([*argv, "-o", str(part)], stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not (part / "checkpoint.pt").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err
    assert f"--resume {part}" in lines[0]
    assert (part / "audio.wav").exists() and (part / "history.csv").exists()
    done = len((part / "history.csv").read_text().splitlines()) - 1
    assert 0 < done < 600

    resumed = subprocess.run(
        [sys.executable, "-m", "audiosds", "fm", "--resume", str(part), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert (part / "audio.wav").read_bytes() == (whole / "audio.wav").read_bytes()
    assert (part / "history.csv").read_text() == (whole / "history.csv").read_text()


def test_resume_needs_a_run_folder(tmp_path, capsys):
    code, err = run(capsys, "fm", "--resume", tmp_path)
    assert code == 2
    assert_one_line_error(err)
    assert "config.yaml" in err
