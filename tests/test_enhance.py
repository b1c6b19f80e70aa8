"""Enhancement (tasks/enhance.py) and ``audiosds enhance``: the prompted source against a catch-all."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import yaml

from audiosds.cli import ENHANCE_OUTPUTS, main
from audiosds.metrics import si_sdr
from audiosds.priors import build
from audiosds.tasks.enhance import DEFAULT_PROMPT, NOISE_PROMPT, enhance, enhance_config, enhance_sds
from audiosds.tasks.separate import SeparateConfig
from audiosds.tasks.suggest import candidates

RATE = 16000


def _noisy(seconds: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(clean tone, noisy = tone + white noise) at 5 dB SNR."""
    t = np.arange(round(seconds * RATE)) / RATE
    clean = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    noise = np.random.default_rng(0).standard_normal(t.size).astype(np.float32)
    noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2)) * 10 ** (-5 / 20)
    return clean, clean + noise


def test_the_outputs_add_up_to_the_input_and_follow_its_format():
    prior = build("analytic")
    clean, noisy = _noisy()
    stereo = np.stack([noisy, 0.5 * noisy])
    config = enhance_config(prior, iters=3, sds_modes=("decoder",))
    result = enhance(stereo, RATE, prior, "a tone", "noise", config)
    assert result.enhanced.shape == result.noise.shape == stereo.shape
    np.testing.assert_allclose(result.enhanced + result.noise, stereo, atol=2e-3)
    assert result.separation.prompts == ["a tone", "noise"]


def test_guidance_moves_energy_between_the_two_sources():
    """With the analytic oracle the two prompts differ, so the enhanced source is not simply half the
    input: SDS moves energy between the two (gamma 0 leaves the even split of the start)."""
    prior = build("analytic")
    clean, noisy = _noisy()
    base = enhance_config(prior, iters=20, sds_modes=("decoder",), init_noise=0.0, start="mixture")
    guided = enhance(noisy[None], RATE, prior, "a tone", "noise", base).enhanced[0]
    unguided = enhance(
        noisy[None], RATE, prior, "a tone", "noise", SeparateConfig(**{**base.__dict__, "gamma": 0.0})
    )
    assert float(si_sdr(unguided.enhanced[0], 0.5 * noisy)) > 30  # no guidance: the even split
    assert not np.allclose(guided, unguided.enhanced[0], atol=1e-3)


def test_enhancement_keeps_its_own_noise_range_on_the_mel_prior_in_the_api_and_the_cli():
    """The mel prior separates with t from 0.02 but enhances with t from 0.3 (speech lost with the
    former); the Python API and the command line start from the same settings."""
    from audiosds.options import build_parser, layered_config
    from audiosds.tasks.separate import separation_sds

    assert separation_sds("embedded-mel").t_min == 0.02 and enhance_sds("embedded-mel").t_min == 0.3
    assert enhance_sds("embedded-mel").cfg_scale == separation_sds("embedded-mel").cfg_scale
    assert enhance_sds("embedded-mel", t_min=0.1).t_min == 0.1
    # on the mel prior every SDS step lowered the speech: it enhances with the noise-floor start alone
    assert enhance_config("embedded-mel").iters == 0 and enhance_config("embedded-mel").init_noise == 0
    assert enhance_config("analytic").iters == SeparateConfig().iters
    assert enhance_sds("analytic") == separation_sds("analytic")  # other priors: separation's
    cfg = layered_config(build_parser().parse_args(["enhance", "noisy.wav", "--prior", "embedded-mel"]))
    assert cfg["sds"]["t_min"] == 0.3 and cfg["sds"]["t_max"] == enhance_sds("embedded-mel").t_max
    assert cfg["separate"]["sds_modes"] == list(enhance_config("embedded-mel").sds_modes)
    assert cfg["separate"]["iters"] == 0 and cfg["separate"]["start"] == "noise_floor"
    sep = layered_config(build_parser().parse_args(["separate", "mix.wav", "--prompt", "a", "--prompt", "b"]))
    assert sep["sds"]["t_min"] == 0.02


def test_config_refuses_a_second_catch_all_and_empty_prompts():
    prior = build("analytic")
    _, noisy = _noisy(0.1)
    with pytest.raises(ValueError, match="noise_source"):
        enhance(noisy[None], RATE, prior, config=enhance_config(prior, noise_source=True))
    with pytest.raises(ValueError, match="noise_prompt"):
        enhance(noisy[None], RATE, prior, noise_prompt=" ")


def test_cli_writes_enhanced_and_noise(tmp_path, capsys):
    _, noisy = _noisy()
    path = tmp_path / "noisy.wav"
    sf.write(str(path), noisy, RATE)
    out = tmp_path / "run"
    argv = ["enhance", str(path), "--prior", "analytic", "--iters", "2", "--quiet", "--seed", "2"]
    assert main([*argv, "-o", str(out)]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == sorted(ENHANCE_OUTPUTS)
    enhanced, rate = sf.read(str(out / "enhanced.wav"))
    removed, _ = sf.read(str(out / "noise.wav"))
    assert rate == RATE and enhanced.shape == noisy.shape
    np.testing.assert_allclose(enhanced + removed, noisy, atol=2e-3)
    params = json.loads((out / "params.json").read_text())
    assert NOISE_PROMPT == "auto" and params["files"]["enhanced.wav"] == DEFAULT_PROMPT
    # the catch-all is named after a suggestion, never "auto" itself nor the kept sound
    assert params["files"]["noise.wav"] in {c.prompt for c in candidates()} - {DEFAULT_PROMPT}
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert (
        saved["command"] == "enhance" and saved["separate"]["seed"] == 2 and saved["separate"]["iters"] == 2
    )
    again = tmp_path / "again"
    assert main(["enhance", "--config", str(out / "config.yaml"), "--quiet", "-o", str(again)]) == 0
    assert (again / "enhanced.wav").read_bytes() == (out / "enhanced.wav").read_bytes()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["enhance"], "NOISY"),
        (["enhance", "NOISY", "--prompt", " "], "--prompt"),
        (["enhance", "NOISY", "--noise-prompt", ""], "--noise-prompt"),
        (["enhance", "missing.wav"], "m.wav"),
        (["enhance", "NOISY", "--iters", "-1"], "--iters"),
        (["enhance", "NOISY", "--start", "even"], "--start"),
        (["enhance", "NOISY", "--gamma", "-1"], "gamma"),
        (["enhance", "NOISY", "--sources", "all"], "--sources"),
    ],
)
def test_cli_usage_errors_are_one_line(tmp_path, capsys, argv, needle):
    path = tmp_path / "noisy.wav"
    sf.write(str(path), _noisy(0.1)[1], RATE)
    argv = [str(path) if a == "NOISY" else str(tmp_path / "m.wav") if a == "missing.wav" else a for a in argv]
    code = main([*argv, "--prior", "analytic", "--quiet", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("audiosds: error:"), err
    assert needle in err
    assert not (tmp_path / "out").exists()


def test_an_auto_noise_prompt_names_what_else_is_heard():
    from audiosds.tasks.enhance import suggest_noise
    from audiosds.world import render_clip

    rain = render_clip("rain", 3, 2.0, RATE, split="heldout").audio
    assert suggest_noise(rain[None], RATE, "a man speaking") == "rain falling"
    # the class the prompt names is skipped, even when it is what the scorer hears best
    assert suggest_noise(rain[None], RATE, "rain") != "rain falling"
