import csv
import dataclasses
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
from audiosds.priors import DEFAULT_PRIOR

FAST = ["--iters", "3", "--seconds", "0.25", "--quiet"]
RATE = 22050  # the default prior's sample rate


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
    # a run that finished cleanly leaves no checkpoint behind
    assert sorted(p.name for p in out.iterdir()) == sorted(set(SYNTH_OUTPUTS) - {"checkpoint.pt"})
    info = sf.info(str(out / "audio.wav"))
    assert info.samplerate == RATE and info.channels == 1 and info.frames == int(0.25 * RATE)
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
    # scored on the first and the last iteration only: the middle cell is empty and the header says so
    score = "score (blank: not computed)"
    assert [r[score] != "" for r in rows] == [True, False, True]
    assert "nan" not in (out / "history.csv").read_text().lower()
    scores = params["scores"]
    assert scores["reported"] == "best" and scores["reported_score"] >= scores["initial"]
    assert (out / "spectrogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_config_yaml_reruns_to_identical_bytes(tmp_path, capsys):
    first, second = tmp_path / "a", tmp_path / "b"
    code, err = run(capsys, "fm", "--prompt", "a bright bell", "--seed", "7", "-o", first, *FAST)
    assert code == 0, err
    saved = yaml.safe_load((first / "config.yaml").read_text())
    assert saved["prompt"] == "a bright bell" and saved["synthesize"]["seed"] == 7
    # synthesis' own SDS defaults for the default prior (benchmarked), recorded so the rerun below
    # replays them
    from audiosds.tasks.synthesize import synthesis_sds

    expected = dataclasses.asdict(synthesis_sds(DEFAULT_PRIOR))
    assert {k: saved["sds"][k] for k in ("mode", "t_min", "t_max", "cfg_scale")} == {
        k: expected[k] for k in ("mode", "t_min", "t_max", "cfg_scale")
    }
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
    assert sf.info(str(out / "audio.wav")).frames == int(0.25 * RATE)


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
        (["fm", "--prompt", "x", "--prior", "analytic", "--model", "somewhere"], "model"),
        (["fm", "--prompt", "x", "--seconds", "1e9"], "--seconds"),
        (["fm", "--prompt", "x", "--prior", "nope"], "--prior"),
        (["fm", "--prompt", "x", "--prior", "embedded"], "--prior"),  # the retired waveform-latent prior
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
    assert info.samplerate == RATE and info.frames == int(0.5 * RATE)
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
    from audiosds.bench.sao import build_tiny_stable_audio

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

    from audiosds.bench.sao import build_tiny_stable_audio

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

    iters = 60  # the signal lands at the first checkpoint (iteration 5), well before the end
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
        str(iters),
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
    assert 0 < done < iters

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

    # a hard kill (no chance to save) resumes from the last periodic checkpoint
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*argv, "-o", str(killed)], stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while not (killed / "checkpoint.pt").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.kill()
    proc.wait(timeout=60)
    assert not (killed / "audio.wav").exists()
    resumed = subprocess.run(
        [sys.executable, "-m", "audiosds", "fm", "--resume", str(killed), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert (killed / "audio.wav").read_bytes() == (whole / "audio.wav").read_bytes()


def test_resume_needs_a_run_folder(tmp_path, capsys):
    code, err = run(capsys, "fm", "--resume", tmp_path)
    assert code == 2
    assert_one_line_error(err)
    assert "config.yaml" in err


def write_mixture(path, sample_rate, channels, seconds, silent=False):
    t = np.arange(round(sample_rate * seconds)) / sample_rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    noise = 0.1 * np.random.default_rng(0).standard_normal(t.size)
    data = np.stack([tone + noise] * channels, axis=1) * (0.0 if silent else 1.0)
    sf.write(str(path), data, sample_rate)
    return path


SEP_FAST = ["--prompt", "a bell", "--prompt", "rain", "--iters", "3", "--quiet"]


@pytest.mark.parametrize(("sample_rate", "channels"), [(44100, 2), (22050, 1)])
def test_separate_writes_sources_in_the_input_format(tmp_path, capsys, sample_rate, channels):
    mix = write_mixture(tmp_path / "mix.wav", sample_rate, channels, 0.7)
    out = tmp_path / "sep"
    code, err = run(capsys, "separate", mix, *SEP_FAST, "-o", out)
    assert code == 0, err
    expected = {
        "source_1.wav",
        "source_2.wav",
        "mixture_reconstruction.wav",
        "params.json",
        "config.yaml",
        "history.csv",
        "spectrograms.png",
    }
    assert {p.name for p in out.iterdir()} == expected
    n = round(sample_rate * 0.7)
    for name in ("source_1.wav", "source_2.wav", "mixture_reconstruction.wav"):
        info = sf.info(str(out / name))
        assert (info.samplerate, info.channels, info.frames) == (sample_rate, channels, n), name
    s1, _ = sf.read(str(out / "source_1.wav"))
    s2, _ = sf.read(str(out / "source_2.wav"))
    mixture, _ = sf.read(str(mix))
    # the default (remasked) sources carry the mixture's phase and add up to it
    np.testing.assert_allclose((s1 + s2).reshape(mixture.shape), mixture, atol=2e-3)
    params = json.loads((out / "params.json").read_text())
    assert params["files"] == {"source_1.wav": "a bell", "source_2.wav": "rain"}
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and {"rec_loss (blank: not computed)", "sds_norm", "skipped"} <= set(rows[0])
    # the reconstruction loss of mask-like sources is logged on the first and last iteration only
    assert [r["rec_loss (blank: not computed)"] != "" for r in rows] == [True, False, True]
    assert "nan" not in (out / "history.csv").read_text().lower()


def test_separate_noise_source_and_negative_prompts(tmp_path, capsys):
    mix = write_mixture(tmp_path / "mix.flac", 16000, 1, 0.5)
    out = tmp_path / "sep"
    code, err = run(
        capsys,
        "separate",
        mix,
        *SEP_FAST,
        "--negative",
        "speech",
        "--negative",
        "",
        "--noise-source",
        "--sds-modes",
        "latent",
        "-o",
        out,
    )
    assert code == 0, err
    assert (out / "source_noise.wav").exists()
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["negative"] == ["speech", None]
    assert saved["separate"]["noise_source"] is True
    assert saved["separate"]["sds_modes"] == ["latent"]
    window = json.loads((out / "params.json").read_text())["windows"][0]
    assert window["parametrization"] == "remasked"  # one member: its renderer's summary, not one per mode


def test_separate_refuses_an_sds_mode_in_a_config_file(tmp_path, capsys):
    mix = write_mixture(tmp_path / "mix.wav", 16000, 1, 0.5)
    config = tmp_path / "run.yaml"
    config.write_text("sds:\n  mode: latent\n")
    code, err = run(capsys, "separate", mix, *SEP_FAST, "--config", config, "-o", tmp_path / "o")
    assert code == 2
    assert_one_line_error(err)
    assert "sds.mode" in err and "sds_modes" in err
    assert not (tmp_path / "o").exists()


def test_separate_warns_on_silence_and_still_runs(tmp_path, capsys):
    mix = write_mixture(tmp_path / "mix.wav", 16000, 1, 0.5, silent=True)
    code, err = run(capsys, "separate", mix, *SEP_FAST, "-o", tmp_path / "sep")
    assert code == 0
    assert "warning" in err and "silent" in err
    assert (tmp_path / "sep" / "source_2.wav").exists()


@pytest.mark.parametrize(
    ("prompts", "extra", "needle"),
    [
        (["a bell"], [], "2 to 8"),
        ([f"p{i}" for i in range(9)], [], "2 to 8"),
        (["a bell", " "], [], "non-empty"),
        (["a bell", "rain"], ["--negative", "x"], "--negative"),
        (["a bell", "rain"], ["--gamma", "-1"], "gamma"),
    ],
)
def test_separate_usage_errors(tmp_path, capsys, prompts, extra, needle):
    mix = write_mixture(tmp_path / "mix.wav", 16000, 1, 0.5)
    argv = ["separate", mix, *[a for p in prompts for a in ("--prompt", p)], *extra, "-o", tmp_path / "o"]
    code, err = run(capsys, *argv, "--quiet")
    assert code == 2
    assert_one_line_error(err)
    assert needle in err
    assert not (tmp_path / "o" / "source_1.wav").exists()


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "no such file"),
        (b"not audio", "not a readable audio file"),
        (b"RIFF\x00\x00", "not a readable"),
    ],
)
def test_separate_bad_input_files(tmp_path, capsys, content, needle):
    mix = tmp_path / "mix.wav"
    if content is not None:
        mix.write_bytes(content)
    code, err = run(capsys, "separate", mix, *SEP_FAST, "-o", tmp_path / "o")
    assert code == 2
    assert_one_line_error(err)
    assert needle in err


def test_embedded_prior_without_weights_is_one_line(tmp_path, capsys):
    code, err = run(
        capsys,
        "fm",
        "--prior",
        "embedded-mel",
        "--model",
        tmp_path / "nothing",
        "--prompt",
        "a bell",
        "-o",
        tmp_path / "run",
        *FAST,
    )
    assert code == 1
    assert_one_line_error(err)
    assert "nothing" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_outputs_follow_the_umask(tmp_path, capsys, umask, mode):
    old = os.umask(umask)
    try:
        code, err = run(capsys, "fm", "--prompt", "a bell", "-o", tmp_path / "run", "--threads", "1", *FAST)
        gen = tmp_path / "g.wav"
        code_g, err_g = run(
            capsys,
            "generate",
            "--prompt",
            "a bell",
            "--seconds",
            "0.25",
            "--steps",
            "2",
            "-o",
            gen,
            "--quiet",
        )
    finally:
        os.umask(old)
    assert code == 0 and code_g == 0, err + err_g
    files = [*(tmp_path / "run").iterdir(), gen, gen.with_suffix(".json"), gen.with_suffix(".png")]
    assert {p.name: p.stat().st_mode & 0o777 for p in files} == {p.name: mode for p in files}


def test_keep_checkpoint_keeps_it(tmp_path, capsys):
    code, err = run(capsys, "fm", "--prompt", "a bell", "-o", tmp_path, "--keep-checkpoint", *FAST)
    assert code == 0, err
    assert (tmp_path / "checkpoint.pt").is_file()


def test_threads_are_recorded_honoured_and_replayed(tmp_path, capsys):
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            out = tmp_path / f"t{threads}"
            code, err = run(capsys, "fm", "--prompt", "a bell", "--threads", threads, "-o", out, *FAST)
            assert code == 0, err
            assert torch.get_num_threads() == threads
            assert yaml.safe_load((out / "config.yaml").read_text())["threads"] == threads
        # a rerun from a config file uses the thread count it records
        torch.set_num_threads(1)
        code, err = run(
            capsys, "fm", "--config", tmp_path / "t2" / "config.yaml", "-o", tmp_path / "r", "--quiet"
        )
        assert code == 0, err
        assert torch.get_num_threads() == 2
        assert (tmp_path / "r" / "audio.wav").read_bytes() == (tmp_path / "t2" / "audio.wav").read_bytes()
        # without --threads a sensible count is chosen and written down
        code, err = run(capsys, "fm", "--prompt", "a bell", "-o", tmp_path / "auto", *FAST)
        assert code == 0, err
        from audiosds.cli import default_threads

        recorded = yaml.safe_load((tmp_path / "auto" / "config.yaml").read_text())["threads"]
        assert 1 <= recorded <= max(1, len(os.sched_getaffinity(0)))
        assert default_threads() <= len(os.sched_getaffinity(0))
    finally:
        torch.set_num_threads(before)


def test_the_closing_line_shows_the_prompt_score_at_start_and_end(tmp_path, capsys):
    code, err = run(capsys, "fm", "--prompt", "a bell", "-o", tmp_path, "--iters", "3", "--seconds", "0.25")
    assert code == 0, err
    last = err.strip().splitlines()[-1]
    params = json.loads((tmp_path / "params.json").read_text())["scores"]
    start, end = f"{params['initial']:.3f}", f"{params['reported_score']:.3f}"
    assert f"prompt score {start} -> {end}" in last and f"last iterate {params['final']:.3f}" in last


def test_generate_writes_its_settings_and_a_spectrogram_and_replays_them(tmp_path, capsys):
    first = tmp_path / "a.wav"
    argv = ["--prompt", "a bell", "--negative", "noise", "--seconds", "0.5", "--steps", "3", "--seed", "5"]
    code, err = run(capsys, "generate", *argv, "--cfg", "3", "--method", "ddim", "-o", first, "--quiet")
    assert code == 0, err
    sidecar = json.loads(first.with_suffix(".json").read_text())
    from audiosds import __version__

    assert {k: sidecar[k] for k in ("prompt", "negative", "seed", "steps", "cfg", "sampler", "version")} == {
        "prompt": "a bell",
        "negative": "noise",
        "seed": 5,
        "steps": 3,
        "cfg": 3.0,
        "sampler": "ddim",
        "version": __version__,
    }
    assert sidecar["prior"]["name"] == DEFAULT_PRIOR and sidecar["threads"] >= 1
    assert first.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the settings file alone reproduces the same bytes; a flag still overrides it
    again, other = tmp_path / "b.wav", tmp_path / "c.wav"
    code, err = run(capsys, "generate", "--config", first.with_suffix(".json"), "-o", again, "--quiet")
    assert code == 0, err
    assert again.read_bytes() == first.read_bytes()
    code, err = run(
        capsys, "generate", "--config", first.with_suffix(".json"), "--seed", "6", "-o", other, "--quiet"
    )
    assert code == 0, err
    assert other.read_bytes() != first.read_bytes()
    # the sidecar is an output too: it is not overwritten without --force
    first.unlink()
    code, err = run(capsys, "generate", *argv, "-o", first, "--quiet")
    assert code == 2 and "a.json" in err


def test_a_prompt_outside_the_prior_gets_one_warning_line_and_a_known_one_none(tmp_path, capsys):
    code, err = run(capsys, "fm", "--prompt", "a cat meowing", "-o", tmp_path / "cat", *FAST)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "has not learned" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"audiosds: warning: the {DEFAULT_PRIOR} prior has not learned sounds like 'a cat meowing'; "
        "closest it knows: "
    )
    code, err = run(capsys, "fm", "--prompt", "a warm bass note", "-o", tmp_path / "bass", *FAST)
    assert code == 0, err
    assert "has not learned" not in err


def test_separation_closing_scores_average_each_windows_first_and_last_score():
    from audiosds.cli import _separation_scores

    rows = [
        {"window": 0.0, "score_1": 0.1, "score_2": 0.5},
        {"window": 0.0, "score_1": None, "score_2": None},
        {"window": 0.0, "score_1": 0.3, "score_2": 0.4},
        {"window": 1.0, "score_1": 0.2, "score_2": 0.6},
        {"window": 1.0, "score_1": 0.5, "score_2": 0.8},
    ]
    assert _separation_scores(rows, 2) == "; prompt scores 0.150 -> 0.400, 0.550 -> 0.600"
    assert _separation_scores([{"window": 0.0, "rec_loss": 1.0}], 2) == ""  # --no-score: nothing to say
    assert _separation_scores([], 2) == "; the sources as they start (--iters 0)"  # no iteration was run
