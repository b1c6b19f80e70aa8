"""The noise-floor suppression gain (denoise.py) and separation's noise-floor start."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiosds.denoise import NoiseFloorConfig, noise_floor, suppression_gain
from audiosds.metrics import si_sdr
from audiosds.priors import build
from audiosds.renderers.sources import MaskSources, MaskSourcesConfig
from audiosds.spectral import stft
from audiosds.tasks.enhance import enhance, enhance_config
from audiosds.tasks.separate import SeparateConfig, separate

RATE = 16000
N_FFT, HOP = 512, 128


def _bursts_in_noise(seconds: float = 2.0, snr_db: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(speech-like foreground, stationary noise): 1-kHz tone bursts on in 3 of every 8 tenths of
    a second, white noise throughout, at ``snr_db`` over the whole clip."""
    t = np.arange(round(seconds * RATE)) / RATE
    on = (np.floor(t * 10) % 8) < 3
    fg = (np.sin(2 * np.pi * 1000 * t) * on).astype(np.float32)
    noise = np.random.default_rng(0).standard_normal(t.size).astype(np.float32)
    noise *= np.sqrt(np.mean(fg**2) / np.mean(noise**2)) * 10 ** (-snr_db / 20)
    return fg, noise


def test_the_floor_is_the_low_quantile_of_the_smoothed_power():
    config = NoiseFloorConfig(quantile=0.3, smoothing=0.0)  # no smoothing: the plain quantile
    power = torch.arange(10, dtype=torch.float64).repeat(3, 1)  # (F=3, T=10), 0..9 in every bin
    np.testing.assert_allclose(noise_floor(power, config)[:, 0].numpy(), np.quantile(np.arange(10), 0.3))
    flat = torch.full((4, 50), 2.5, dtype=torch.float64)
    np.testing.assert_allclose(noise_floor(flat, NoiseFloorConfig()).numpy(), 2.5)


def test_the_gain_passes_the_foreground_and_floors_the_noise():
    fg, noise = _bursts_in_noise()
    spec = stft(torch.from_numpy(fg + noise)[None], N_FFT, HOP)
    gain = suppression_gain(spec)
    config = NoiseFloorConfig()
    assert gain.shape == spec.shape[1:] and float(gain.min()) >= config.floor and float(gain.max()) <= 1
    tone_bin = round(1000 * N_FFT / RATE)
    frames = np.arange(gain.shape[1]) * HOP / RATE
    inside = ((np.floor(frames * 10) % 8) < 3) & ((frames * 10 % 1) > 0.3) & ((frames * 10 % 1) < 0.7)
    outside = ((np.floor(frames * 10) % 8) >= 4) & ((np.floor(frames * 10) % 8) <= 6)
    assert float(gain[tone_bin, inside].mean()) > 0.9  # the bursts pass
    assert float(gain[tone_bin, outside].mean()) < 0.3  # between bursts the bin is noise
    far = gain[200:240]  # 6.2-7.5 kHz: noise only, held near the floor
    assert float(far.mean()) < 0.2


def test_the_gain_lifts_si_sdr_on_stationary_noise():
    fg, noise = _bursts_in_noise(snr_db=0.0)
    noisy = fg + noise
    spec = stft(torch.from_numpy(noisy)[None].double(), N_FFT, HOP)
    from audiosds.renderers.sources import apply_masks

    gain = suppression_gain(spec)
    estimate = apply_masks(gain[None, None], spec, N_FFT, HOP, noisy.size)[0, 0].numpy()
    assert float(si_sdr(estimate, fg)) > float(si_sdr(noisy, fg)) + 6


@pytest.mark.parametrize("name", ["quantile", "smoothing", "decision", "floor"])
@pytest.mark.parametrize("value", [-0.1, 1.0, float("nan"), "0.3"])
def test_config_refuses_values_outside_the_unit_interval(name, value):
    with pytest.raises(ValueError, match=f"NoiseFloorConfig.{name}"):
        NoiseFloorConfig(**{name: value})


@pytest.mark.parametrize("parametrization", ["remasked", "masks", "latent"])
def test_zero_iterations_return_the_noise_floor_start(parametrization):
    """``iters=0``: no SDS step; the sources are the start. From the noise-floor start the first
    source is far closer to the foreground than the even split is."""
    prior = build("analytic")
    fg, noise = _bursts_in_noise(1.0)
    noisy = (fg + noise)[None]
    base = SeparateConfig(iters=0, init_noise=0.0, parametrization=parametrization, sds_modes=("decoder",))
    from_floor = SeparateConfig(**{**base.__dict__, "start": "noise_floor"})
    floor = separate(noisy, RATE, prior, ["a tone", "noise"], from_floor)
    even = separate(noisy, RATE, prior, ["a tone", "noise"], base)
    assert floor.history == [] and floor.status == "completed"
    if parametrization != "latent":  # mixture-consistent: the two sources add up to the input
        np.testing.assert_allclose(floor.sources.sum(axis=0), noisy, atol=2e-3)
    assert float(si_sdr(floor.sources[0, 0], fg)) > float(si_sdr(even.sources[0, 0], fg)) + 5


def test_the_noise_floor_start_needs_two_sources():
    prior = build("analytic")
    fg, noise = _bursts_in_noise(0.5)
    config = SeparateConfig(iters=1, start="noise_floor", sds_modes=("decoder",))
    with pytest.raises(ValueError, match="start noise_floor: expected 2 sources"):
        separate((fg + noise)[None], RATE, prior, ["a", "b", "c"], config)
    with pytest.raises(ValueError, match="SeparateConfig.start"):
        SeparateConfig(start="wiener")
    with pytest.raises(ValueError, match="SeparateConfig.iters"):
        SeparateConfig(iters=-1)


def test_enhancement_starts_from_the_noise_floor_for_every_prior():
    assert enhance_config("analytic").start == "noise_floor"
    assert enhance_config("embedded-mel").start == "noise_floor"
    assert SeparateConfig().start == "mixture"  # separation keeps the even split
    prior = build("analytic")
    fg, noise = _bursts_in_noise(1.0)
    config = enhance_config(prior, iters=0, init_noise=0.0, sds_modes=("decoder",))
    result = enhance((fg + noise)[None], RATE, prior, "a tone", "noise", config)
    assert float(si_sdr(result.enhanced[0], fg)) > float(si_sdr(fg + noise, fg)) + 6


def test_mask_sources_start_at_given_logits_and_refuse_a_wrong_shape():
    mixture = torch.randn(1, 4000)
    config = MaskSourcesConfig(2, 0.0, 0, N_FFT, HOP)
    frames = stft(mixture, N_FFT, HOP).shape[-1]
    logits = torch.zeros(2, N_FFT // 2 + 1, frames)
    logits[0] = 3.0
    sources = MaskSources(mixture, RATE, config, logits)
    masks = sources.masks(sources.raw["logits"])
    np.testing.assert_allclose(masks[0].mean().item(), 1 / (1 + np.exp(-3.0)), rtol=1e-5)
    with pytest.raises(ValueError, match="logits: expected"):
        MaskSources(mixture, RATE, config, logits[:, :10])
    with pytest.raises(ValueError, match="logits: expected finite"):
        MaskSources(mixture, RATE, config, torch.full_like(logits, float("nan")))


def test_the_cli_refuses_a_noise_floor_start_for_three_sources(tmp_path, capsys):
    import soundfile as sf

    from audiosds.cli import main

    fg, noise = _bursts_in_noise(0.5)
    path = tmp_path / "mix.wav"
    sf.write(str(path), fg + noise, RATE)
    argv = [
        "separate",
        str(path),
        "--prompt",
        "a",
        "--prompt",
        "b",
        "--prompt",
        "c",
        "--start",
        "noise_floor",
    ]
    code = main([*argv, "--prior", "analytic", "--quiet", "-o", str(tmp_path / "out")])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "--start noise_floor: expected 2 sources" in lines[0]
    assert not (tmp_path / "out").exists()


def test_enhance_with_zero_iterations_writes_its_outputs_and_says_so(tmp_path, capsys):
    import json

    import soundfile as sf

    from audiosds.cli import main

    fg, noise = _bursts_in_noise(1.0)
    path = tmp_path / "noisy.wav"
    sf.write(str(path), fg + noise, RATE)
    out = tmp_path / "out"
    argv = ["enhance", str(path), "--prompt", "a tone", "--noise-prompt", "noise", "--iters", "0"]
    assert main([*argv, "--prior", "analytic", "--no-score", "-o", str(out)]) == 0
    assert "the sources as they start (--iters 0)" in capsys.readouterr().err
    enhanced, rate = sf.read(str(out / "enhanced.wav"))
    assert rate == RATE and float(si_sdr(enhanced, fg)) > float(si_sdr(fg + noise, fg)) + 6
    assert json.loads((out / "params.json").read_text())["files"]["noise.wav"] == "noise"
