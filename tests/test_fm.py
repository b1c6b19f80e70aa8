"""FM synth (Audio-SDS eq. 8): shapes, gradients, batch == singles, bounded parameters, spectra."""

from __future__ import annotations

import json

import pytest
import torch
from scipy.special import jv

from audiosds.renderers import build
from audiosds.renderers.fm import FMConfig, FMSynth

TINY = {"sample_rate": 800, "seconds": 0.05, "num_operators": 3}


def _set(renderer: FMSynth, name: str, value: torch.Tensor | float) -> None:
    """Set a parameter from human units (broadcast to its shape)."""
    raw = renderer.raw[name]
    with torch.no_grad():
        raw.copy_(renderer.ranges[name].to_raw(torch.as_tensor(value).expand(raw.shape).clone()))


def _silence_modulators(renderer: FMSynth) -> None:
    """Only operator 0 audible and no modulation: extreme raws land on the range minima."""
    with torch.no_grad():
        renderer.raw["gain_db"][:, 1:] = -1e4
        renderer.raw["mod_index"][:] = -1e4


def test_registry_builds_and_output_is_finite_with_the_right_shape() -> None:
    renderer = build("fm", batch_size=2, seed=3)
    assert isinstance(renderer, FMSynth)
    y = renderer()
    assert y.shape == (2, 1, 16000)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()
    # peak normalisation: every row peaks at config.peak
    torch.testing.assert_close(y.abs().amax(dim=-1).flatten(), torch.full((2,), 0.5), rtol=1e-4, atol=0)


def test_unknown_config_key_is_an_error() -> None:
    with pytest.raises(ValueError, match="num_operator"):
        build("fm", num_operator=4)
    with pytest.raises(ValueError, match="ratio_min < 1 < ratio_max"):
        FMConfig(ratio_min=1.5)


def test_same_seed_same_bytes_other_seed_differs() -> None:
    a, b, c = (FMSynth(FMConfig(seconds=0.1, seed=s)) for s in (7, 7, 8))
    assert torch.equal(a(), b())
    assert not torch.equal(a(), c())


def test_initially_only_the_carrier_is_audible() -> None:
    renderer = FMSynth(FMConfig(batch_size=4))
    gain = renderer.params()["gain_db"]
    assert (gain[:, 0] - gain[:, 1:].max(dim=1).values > 40).all()
    torch.testing.assert_close(renderer.params()["ratio"][:, 0], torch.ones(4))


def test_gradcheck_float64() -> None:
    renderer = FMSynth(FMConfig(**TINY, batch_size=2)).double()
    _set(renderer, "f0_hz", torch.tensor([[50.0], [70.0]], dtype=torch.float64).squeeze(-1))
    _set(renderer, "ratio", torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))  # all below 360 Hz: no clamp
    _set(renderer, "gain_db", torch.tensor([-6.0, -12.0, -20.0], dtype=torch.float64))
    _set(renderer, "mod_index", torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64))
    names = list(renderer.ranges)
    raws = tuple(renderer.raw[name].detach().clone().requires_grad_(True) for name in names)

    def fn(*raw: torch.Tensor) -> torch.Tensor:
        params = {n: renderer.ranges[n].from_raw(r) for n, r in zip(names, raw, strict=True)}
        return renderer.render(params)

    assert torch.autograd.gradcheck(fn, raws, eps=1e-6, atol=1e-5, rtol=1e-3)


def test_batch_equals_singles() -> None:
    batch = FMSynth(FMConfig(seconds=0.25, seed=1, batch_size=3))
    single = FMSynth(FMConfig(seconds=0.25, seed=99, batch_size=1))
    y = batch().detach()
    for i in range(3):
        with torch.no_grad():
            for name, raw in single.raw.items():
                raw.copy_(batch.raw[name][i : i + 1])
        torch.testing.assert_close(single().detach(), y[i : i + 1], rtol=0, atol=1e-6)


def test_parameters_stay_in_range_after_large_adam_steps() -> None:
    renderer = FMSynth(FMConfig(seconds=0.1, batch_size=2))
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
    y = renderer()
    assert torch.isfinite(y).all()
    y.sum().backward()
    assert all(torch.isfinite(raw.grad).all() for raw in renderer.raw.values())


@pytest.mark.parametrize(("f0", "carrier_ratio"), [(437.3, 1.0), (211.7, 2.0), (1500.0, 6.0)])
def test_carrier_alone_peaks_at_its_frequency_clamped_below_nyquist(f0: float, carrier_ratio: float) -> None:
    renderer = FMSynth(FMConfig(seed=2))  # 1 s at 16 kHz: 1 Hz bins
    _silence_modulators(renderer)
    _set(renderer, "f0_hz", f0)
    with torch.no_grad():
        renderer.raw["ratio"][:, 0] = renderer.ranges["ratio"].to_raw(carrier_ratio)
    spectrum = torch.fft.rfft(renderer()[0, 0].detach().double()).abs()
    expected = min(f0 * carrier_ratio, 0.45 * 16000)  # 1500 * 6 = 9000 Hz is clamped to 7200 Hz
    assert abs(spectrum.argmax().item() - expected) <= 1.0


def test_two_operator_pm_sidebands_follow_bessel_functions() -> None:
    # Closed form: sin(w_c t + beta sin(w_m t)) = sum_k J_k(beta) sin((w_c + k w_m) t);
    # with a near-constant envelope the first sideband / carrier magnitude is J_1(beta) / J_0(beta).
    beta = 1.2
    renderer = FMSynth(FMConfig(num_operators=2, decay_max_s=1e4))
    # 1 Hz bins: carrier at 1000 Hz, modulator (ratio 0.3) at 300 Hz; sidebands stay clear of 0 Hz
    _set(renderer, "f0_hz", 1000.0)
    _set(renderer, "ratio", torch.tensor([1.0, 0.3]))
    _set(renderer, "decay_t60_s", 9e3)
    _set(renderer, "attack_s", 1.01e-3)
    _set(renderer, "mod_index", beta)
    with torch.no_grad():
        renderer.raw["gain_db"][:, 1] = -1e4
    spectrum = torch.fft.rfft(renderer()[0, 0].detach().double()).abs()
    carrier, upper, lower, second = spectrum[1000], spectrum[1300], spectrum[700], spectrum[1600]
    assert (upper / carrier).item() == pytest.approx(jv(1, beta) / jv(0, beta), rel=0.01)
    assert (lower / carrier).item() == pytest.approx(jv(1, beta) / jv(0, beta), rel=0.01)
    assert (second / carrier).item() == pytest.approx(jv(2, beta) / jv(0, beta), rel=0.01)


def test_to_dict_is_json_with_units() -> None:
    renderer = FMSynth(FMConfig(batch_size=2))
    d = json.loads(json.dumps(renderer.to_dict()))
    units = {name: entry["unit"] for name, entry in d.items()}
    assert units == {
        "f0_hz": "Hz",
        "ratio": "ratio",
        "mod_index": "rad",
        "attack_s": "s",
        "decay_t60_s": "s",
        "gain_db": "dB",
    }
    assert len(d["mod_index"]["value"]) == 2 and len(d["mod_index"]["value"][0]) == 6  # 4 * 3 / 2 connections
    assert d["f0_hz"]["value"] == pytest.approx(renderer.params()["f0_hz"].tolist())


def test_a_sustained_tone_fades_out_over_the_last_10_ms_instead_of_clicking() -> None:
    cut, faded = (FMSynth(FMConfig(seconds=0.25, fade_out_s=s)) for s in (0.0, 0.01))
    for renderer in (cut, faded):
        _silence_modulators(renderer)
        _set(renderer, "decay_t60_s", 3.9)  # still ringing at the clip's end
        _set(renderer, "f0_hz", 220.0)
    a, b = cut()[0, 0].detach(), faded()[0, 0].detach()
    fade = 160  # 10 ms at 16 kHz
    torch.testing.assert_close(a[:-fade], b[:-fade])  # nothing changes before the fade
    assert a[-fade:].abs().max() > 0.25  # without it the tone is cut near full level (peak 0.5, 4 dB down)
    gain = b[-fade:] / a[-fade:].where(a[-fade:].abs() > 1e-3, torch.ones(()))
    ramp = gain[a[-fade:].abs() > 1e-3]
    assert float(ramp[0]) > 0.99 and float(ramp[-1]) < 0.01 and bool((ramp[1:] <= ramp[:-1] + 1e-6).all())
    assert abs(float(b[-1])) < 1e-4
