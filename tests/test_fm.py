"""FM synth (Audio-SDS eq. 8): carrier, Bessel sidebands, initial gains, fade. What it shares with every
renderer (shape, seeding, gradcheck, batch == singles, bounds, to_dict) is in test_renderers.py."""

from __future__ import annotations

import pytest
import torch
from scipy.special import jv

from audiosds.renderers import build
from audiosds.renderers.fm import FMConfig, FMSynth
from renderer_helpers import set_param


def _silence_modulators(renderer: FMSynth) -> None:
    """Only operator 0 audible and no modulation: extreme raws land on the range minima."""
    with torch.no_grad():
        renderer.raw["gain_db"][:, 1:] = -1e4
        renderer.raw["mod_index"][:] = -1e4


def test_unknown_config_key_is_an_error() -> None:
    with pytest.raises(ValueError, match="num_operator"):
        build("fm", num_operator=4)
    with pytest.raises(ValueError, match="ratio_min < 1 < ratio_max"):
        FMConfig(ratio_min=1.5)


def test_initially_only_the_carrier_is_audible() -> None:
    renderer = FMSynth(FMConfig(batch_size=4))
    gain = renderer.params()["gain_db"]
    assert (gain[:, 0] - gain[:, 1:].max(dim=1).values > 40).all()
    torch.testing.assert_close(renderer.params()["ratio"][:, 0], torch.ones(4))


@pytest.mark.parametrize(("f0", "carrier_ratio"), [(437.3, 1.0), (211.7, 2.0), (1500.0, 6.0)])
def test_carrier_alone_peaks_at_its_frequency_clamped_below_nyquist(f0: float, carrier_ratio: float) -> None:
    renderer = FMSynth(FMConfig(seed=2))  # 1 s at 16 kHz: 1 Hz bins
    _silence_modulators(renderer)
    set_param(renderer, "f0_hz", f0)
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
    set_param(renderer, "f0_hz", 1000.0)
    set_param(renderer, "ratio", torch.tensor([1.0, 0.3]))
    set_param(renderer, "decay_t60_s", 9e3)
    set_param(renderer, "attack_s", 1.01e-3)
    set_param(renderer, "mod_index", beta)
    with torch.no_grad():
        renderer.raw["gain_db"][:, 1] = -1e4
    spectrum = torch.fft.rfft(renderer()[0, 0].detach().double()).abs()
    carrier, upper, lower, second = spectrum[1000], spectrum[1300], spectrum[700], spectrum[1600]
    assert (upper / carrier).item() == pytest.approx(jv(1, beta) / jv(0, beta), rel=0.01)
    assert (lower / carrier).item() == pytest.approx(jv(1, beta) / jv(0, beta), rel=0.01)
    assert (second / carrier).item() == pytest.approx(jv(2, beta) / jv(0, beta), rel=0.01)


def test_a_sustained_tone_fades_out_over_the_last_10_ms_instead_of_clicking() -> None:
    cut, faded = (FMSynth(FMConfig(seconds=0.25, fade_out_s=s)) for s in (0.0, 0.01))
    for renderer in (cut, faded):
        _silence_modulators(renderer)
        set_param(renderer, "decay_t60_s", 3.9)  # still ringing at the clip's end
        set_param(renderer, "f0_hz", 220.0)
    a, b = cut()[0, 0].detach(), faded()[0, 0].detach()
    fade = 160  # 10 ms at 16 kHz
    torch.testing.assert_close(a[:-fade], b[:-fade])  # nothing changes before the fade
    assert a[-fade:].abs().max() > 0.25  # without it the tone is cut near full level (peak 0.5, 4 dB down)
    gain = b[-fade:] / a[-fade:].where(a[-fade:].abs() > 1e-3, torch.ones(()))
    ramp = gain[a[-fade:].abs() > 1e-3]
    assert float(ramp[0]) > 0.99 and float(ramp[-1]) < 0.01 and bool((ramp[1:] <= ramp[:-1] + 1e-6).all())
    assert abs(float(b[-1])) < 1e-4
