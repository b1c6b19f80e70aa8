"""Modal impact synth (Audio-SDS eqs. 9-10): shapes, gradients, batch == singles, physical bounds."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from audiosds.renderers import build
from audiosds.renderers.impact import ImpactConfig, ImpactSynth, damped_modes, fast_fft_length

TINY = {"sample_rate": 800, "seconds": 0.05, "num_modes": 4, "num_bands": 3}


def _set(renderer: ImpactSynth, name: str, value: torch.Tensor | float) -> None:
    """Set a parameter from human units (broadcast to its shape)."""
    raw = renderer.raw[name]
    with torch.no_grad():
        raw.copy_(renderer.ranges[name].to_raw(torch.as_tensor(value).expand(raw.shape).clone()))


def _check_physical(renderer: ImpactSynth) -> None:
    """Every mode in (0, sr/2), every decay rate positive and finite."""
    params = renderer.params()
    nyquist = renderer.sample_rate / 2
    freq = params["mode_freq_hz"]
    assert (freq > 0).all() and (freq < nyquist).all()
    for name in ("mode_t60_s", "reverb_t60_s"):
        rate = math.log(1000.0) / params[name]  # the decay d of exp(-d t)
        assert torch.isfinite(rate).all() and (rate > 0).all(), name


def test_registry_builds_and_output_is_finite_with_the_right_shape() -> None:
    renderer = build("impact", batch_size=2, seed=5)
    assert isinstance(renderer, ImpactSynth)
    y = renderer()
    assert y.shape == (2, 1, 16000)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y.abs().amax(dim=-1).flatten(), torch.full((2,), 0.5), rtol=1e-4, atol=0)


def test_same_seed_same_bytes_other_seed_differs() -> None:
    a, b, c = (ImpactSynth(ImpactConfig(seconds=0.1, seed=s)) for s in (7, 7, 8))
    assert torch.equal(a(), b())
    assert not torch.equal(a(), c())


def test_initial_modes_are_low_biased_and_physical() -> None:
    renderer = ImpactSynth(ImpactConfig(batch_size=4, num_modes=24))
    _check_physical(renderer)
    freq = renderer.params()["mode_freq_hz"]
    geometric_middle = math.sqrt(80.0 * 7200.0)  # log-uniform over [80, 7200] would put half above this
    assert ((freq < geometric_middle).float().mean(dim=1) > 0.6).all()
    assert (freq >= 80.0).all()


def test_gradcheck_float64() -> None:
    renderer = ImpactSynth(ImpactConfig(**TINY, batch_size=2)).double()
    _set(renderer, "strike_width_s", torch.tensor([2e-3, 5e-3], dtype=torch.float64))
    names = list(renderer.ranges)
    raws = tuple(renderer.raw[name].detach().clone().requires_grad_(True) for name in names)

    def fn(*raw: torch.Tensor) -> torch.Tensor:
        params = {n: renderer.ranges[n].from_raw(r) for n, r in zip(names, raw, strict=True)}
        return renderer.render(params)

    assert torch.autograd.gradcheck(fn, raws, eps=1e-6, atol=1e-5, rtol=1e-3)


def test_batch_equals_singles() -> None:
    batch = ImpactSynth(ImpactConfig(seconds=0.25, seed=1, batch_size=3))
    single = ImpactSynth(ImpactConfig(seconds=0.25, seed=1, batch_size=1))
    # the reverb noise is drawn before the parameters: it does not depend on the batch size
    assert torch.equal(batch.band_noise, single.band_noise)
    y = batch().detach()
    for i in range(3):
        with torch.no_grad():
            for name, raw in single.raw.items():
                raw.copy_(batch.raw[name][i : i + 1])
        torch.testing.assert_close(single().detach(), y[i : i + 1], rtol=0, atol=1e-6)


def test_parameters_stay_in_range_after_large_adam_steps() -> None:
    renderer = ImpactSynth(ImpactConfig(seconds=0.1, batch_size=2))
    target = torch.randn(2, 1, 1600, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(renderer.parameters(), lr=10.0)
    for _ in range(20):
        opt.zero_grad()
        loss = (renderer() * target).sum()
        loss.backward()
        opt.step()
    assert max(raw.detach().abs().max().item() for raw in renderer.raw.values()) > 50  # really pushed
    for name, value in renderer.params().items():
        rng = renderer.ranges[name]
        assert (value >= rng.min).all() and (value <= rng.max).all(), name
    _check_physical(renderer)
    y = renderer()
    assert torch.isfinite(y).all()
    y.sum().backward()
    assert all(torch.isfinite(raw.grad).all() for raw in renderer.raw.values())


def test_extreme_raw_values_stay_physical() -> None:
    renderer = ImpactSynth(ImpactConfig(batch_size=2, seconds=0.1))
    with torch.no_grad():
        for raw in renderer.raw.values():
            raw[0] = 1e4
            raw[1] = -1e4
    _check_physical(renderer)
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
    _set(renderer, "mode_freq_hz", freq_hz)
    _set(renderer, "mode_t60_s", t60)
    _set(renderer, "strike_width_s", 1.01e-4)
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
    _set(renderer, "mode_t60_s", 3.9)
    _set(renderer, "reverb_t60_s", 3.9)
    _set(renderer, "wet", 0.9)
    _set(renderer, "strike_width_s", 0.019)  # a long pulse: the 3-way convolution spans nearly 3N
    y = renderer()[0, 0].detach()
    assert y[0].abs().item() < 1e-6  # pulse(0) = 0 and sin(0) = 0: the causal output starts at 0
    assert fast_fft_length(3 * renderer.num_samples - 2) >= 3 * renderer.num_samples - 2
    assert [fast_fft_length(n) for n in (1, 7, 11, 47998, 121)] == [1, 8, 12, 48000, 125]


def test_to_dict_is_json_with_units() -> None:
    renderer = ImpactSynth(ImpactConfig(batch_size=2, num_modes=5, num_bands=3))
    d = json.loads(json.dumps(renderer.to_dict()))
    units = {name: entry["unit"] for name, entry in d.items()}
    assert units == {
        "mode_freq_hz": "Hz",
        "mode_t60_s": "s",
        "mode_gain_db": "dB",
        "reverb_t60_s": "s",
        "reverb_gain_db": "dB",
        "wet": "ratio",
        "strike_width_s": "s",
    }
    assert np.shape(d["mode_freq_hz"]["value"]) == (2, 5)
    assert np.shape(d["reverb_gain_db"]["value"]) == (2, 3)
    np.testing.assert_allclose(
        d["mode_freq_hz"]["value"], renderer.params()["mode_freq_hz"].tolist(), rtol=1e-6
    )


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
