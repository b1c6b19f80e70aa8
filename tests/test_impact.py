"""Modal impact synth (Audio-SDS eqs. 9-10): low-biased physical modes, the damped sinusoid of eq. 9,
causal FFT convolution, decay and fade. What it shares with every renderer is in test_renderers.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audiosds.renderers.impact import ImpactConfig, ImpactSynth, damped_modes, fast_fft_length
from renderer_helpers import check_physical, set_param


def test_initial_modes_are_low_biased_and_physical() -> None:
    renderer = ImpactSynth(ImpactConfig(batch_size=4, num_modes=24))
    check_physical(renderer)
    freq = renderer.params()["mode_freq_hz"]
    geometric_middle = math.sqrt(80.0 * 7200.0)  # log-uniform over [80, 7200] would put half above this
    assert ((freq < geometric_middle).float().mean(dim=1) > 0.6).all()
    assert (freq >= 80.0).all()


def test_extreme_raw_values_stay_physical() -> None:
    renderer = ImpactSynth(ImpactConfig(batch_size=2, seconds=0.1))
    with torch.no_grad():
        for raw in renderer.raw.values():
            raw[0] = 1e4
            raw[1] = -1e4
    check_physical(renderer)
    assert torch.isfinite(renderer()).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_energy_decays_over_time(seed: int) -> None:
    y = ImpactSynth(ImpactConfig(seed=seed))()[0, 0].detach()
    energy = y.reshape(8, -1).square().sum(dim=-1)  # eight 125 ms frames
    assert (energy[1:] < energy[:-1]).all(), energy


def test_single_dry_mode_is_the_damped_sinusoid_of_eq_9() -> None:
    # One mode, no reverb (wet = 0), a near-impulse strike: the output must lie in the span of
    # exp(-d t) sin(2 pi f t) and exp(-d t) cos(2 pi f t) (the strike only delays and scales it).
    sr, freq_hz, t60 = 16000, 523.0, 0.3
    renderer = ImpactSynth(ImpactConfig(num_modes=1, seconds=0.5))
    set_param(renderer, "mode_freq_hz", freq_hz)
    set_param(renderer, "mode_t60_s", t60)
    set_param(renderer, "strike_width_s", 1.01e-4)
    with torch.no_grad():
        renderer.raw["wet"][:] = -1e4
    y = renderer()[0, 0].detach().double().numpy()
    t = np.arange(y.size) / sr
    basis = np.exp(-math.log(1000.0) * t / t60) * np.stack(
        [np.sin(2 * np.pi * freq_hz * t), np.cos(2 * np.pi * freq_hz * t)]
    )
    skip = 32  # the strike pulse's own few samples
    coef, *_ = np.linalg.lstsq(basis[:, skip:].T, y[skip:], rcond=None)
    residual = y[skip:] - basis[:, skip:].T @ coef
    assert np.sum(residual**2) < 1e-6 * np.sum(y[skip:] ** 2)


def test_fft_convolution_has_no_wrap_around() -> None:
    # Long mode and reverb decays: anything wrapped from beyond N would reach the first samples,
    # which must stay exactly the causal convolution's (zero before the strike starts).
    renderer = ImpactSynth(ImpactConfig(seconds=0.25))
    set_param(renderer, "mode_t60_s", 3.9)
    set_param(renderer, "reverb_t60_s", 3.9)
    set_param(renderer, "wet", 0.9)
    set_param(renderer, "strike_width_s", 0.019)  # a long pulse: the 3-way convolution spans nearly 3N
    y = renderer()[0, 0].detach()
    assert y[0].abs().item() < 1e-6  # pulse(0) = 0 and sin(0) = 0: the causal output starts at 0
    assert fast_fft_length(3 * renderer.num_samples - 2) >= 3 * renderer.num_samples - 2
    assert [fast_fft_length(n) for n in (1, 7, 11, 47998, 121)] == [1, 8, 12, 48000, 125]


@pytest.mark.parametrize("num_samples", [1, 7, 16000, 48001])
def test_damped_modes_match_the_per_sample_formula(num_samples: int) -> None:
    # the two-table complex product equals sum_k a_k exp(-d_k t) sin(2 pi f_k t), in float32
    # (phase formed in float64 inside) over clips up to 3 s at 16 kHz, and its gradients too
    g = torch.Generator().manual_seed(5)
    freq = (torch.rand(2, 6, generator=g) * 7000 + 20).requires_grad_()
    decay = (torch.rand(2, 6, generator=g) * 50 + 0.5).requires_grad_()
    amp = torch.rand(2, 6, generator=g).requires_grad_()
    t = torch.arange(num_samples, dtype=torch.float64) / 16000
    reference = torch.einsum(
        "bk,bkn->bn",
        amp.double(),
        torch.exp(-decay.double()[..., None] * t) * torch.sin(2 * math.pi * freq.double()[..., None] * t),
    )
    fast = damped_modes(freq, decay, amp, 16000, num_samples)
    assert fast.shape == (2, num_samples) and fast.dtype == torch.float32
    torch.testing.assert_close(fast.double(), reference, atol=2e-5, rtol=0)
    weights = torch.randn(2, num_samples, generator=g, dtype=torch.float64)
    grads = torch.autograd.grad((fast.double() * weights).sum(), (freq, decay, amp))
    expected = torch.autograd.grad((reference * weights).sum(), (freq, decay, amp))
    for got, want in zip(grads, expected, strict=True):
        torch.testing.assert_close(
            got.double(), want.double(), rtol=2e-4, atol=1e-4 * float(want.abs().max())
        )


def test_the_render_ends_in_silence_through_the_fade() -> None:
    y = ImpactSynth(ImpactConfig(seed=0, seconds=0.2, mode_t60_min_s=3.0))()[0, 0].detach()
    none = ImpactSynth(ImpactConfig(seed=0, seconds=0.2, mode_t60_min_s=3.0, fade_out_s=0.0))()[0, 0].detach()
    assert float(none[-16:].abs().max()) > 10 * float(y[-16:].abs().max())  # the last ms, cut vs faded
    torch.testing.assert_close(y[:-160], none[:-160])
