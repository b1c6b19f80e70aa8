"""The reverb renderer (renderers/reverb.py) and the RT60 measurement (acoustics.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from audiosds.acoustics import band_rt60, mid_rt60, rt60, schroeder_db
from audiosds.renderers import build
from audiosds.renderers.reverb import ReverbConfig, octave_split
from renderer_helpers import check_physical, set_param

RATE = 16000


def _renderer(**cfg: object):
    return build("reverb", **{"sample_rate": RATE, "seconds": 0.5, "ir_seconds": 2.0, **cfg})


def _bands(renderer) -> int:
    return renderer.raw["rt60_s"].shape[1]


def test_rt60_of_an_exponential_decay_is_its_time_constant():
    rng = np.random.default_rng(0)
    t = np.arange(2 * RATE) / RATE
    h = rng.standard_normal(t.size) * np.exp(-math.log(1000) * t / 0.7)
    assert rt60(h, RATE) == pytest.approx(0.7, rel=0.03)
    curve = schroeder_db(h)
    assert curve[0] == pytest.approx(0.0) and np.all(np.diff(curve) <= 1e-9)  # monotone from 0 dB
    with pytest.raises(ValueError, match="non-silent"):
        rt60(np.zeros(100), RATE)


@pytest.mark.parametrize("rt60_s", [0.3, 0.8, 1.5])
def test_the_rendered_ir_decays_at_its_rt60_in_every_band(rt60_s):
    renderer = _renderer()
    set_param(renderer, "rt60_s", rt60_s)
    set_param(renderer, "early_level_db", -20.0)
    h = renderer.impulse_response(renderer.params()).detach()[0].numpy()
    assert rt60(h, RATE) == pytest.approx(rt60_s, rel=0.05)
    for centre, measured in band_rt60(h, RATE).items():
        # the 125 Hz octave holds few noise cycles in a short decay: a noisier estimate
        assert measured == pytest.approx(rt60_s, rel=0.2 if centre < 200 else 0.12), centre


def test_each_band_follows_its_own_rt60():
    renderer = _renderer()
    values = torch.tensor([0.3, 0.5, 0.8, 1.2, 1.6, 1.8])[: _bands(renderer)]
    set_param(renderer, "rt60_s", values)
    h = renderer.impulse_response(renderer.params()).detach()[0].numpy()
    measured = list(band_rt60(h, RATE).values())
    assert measured == sorted(measured)  # longer where the parameter is longer
    # neighbouring bands leak into the octave filters of the measurement: within 25%
    np.testing.assert_allclose(measured, values.numpy(), rtol=0.25)
    assert mid_rt60(h, RATE) == pytest.approx(float(values[2:4].mean()), rel=0.15)


def test_octave_split_adds_back_to_the_noise():
    noise = torch.randn(4000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    bands = octave_split(noise, RATE, ReverbConfig(sample_rate=RATE).band_centres_hz)
    assert bands.shape == (6, 4000)
    torch.testing.assert_close(bands.sum(dim=0), noise, rtol=0, atol=1e-9)


def test_predelay_delays_the_wet_signal_and_wet_zero_is_the_dry_signal():
    renderer = _renderer(seconds=0.3)  # dry: a unit impulse, so the render is the response itself
    set_param(renderer, "wet", 0.999)
    set_param(renderer, "predelay_s", 0.05)
    y = renderer().detach()[0, 0]
    onset = int(torch.nonzero(y.abs() > 1e-2 * y.abs().max())[0])  # above the 0.001 dry impulse
    assert abs(onset - round(0.05 * RATE)) <= 3
    dry = torch.sin(torch.linspace(0, 300, round(0.3 * RATE)))
    plain = build("reverb", sample_rate=RATE, seconds=0.3, ir_seconds=1.0, dry=dry)
    set_param(plain, "wet", 1e-6)
    torch.testing.assert_close(plain().detach()[0, 0], dry, rtol=0, atol=1e-4)


def test_early_density_adds_reflections():
    renderer = _renderer(batch_size=2)
    set_param(renderer, "early_density", torch.tensor([30.0, 700.0]))
    set_param(renderer, "early_level_db", 9.0)
    set_param(renderer, "rt60_s", 0.12)
    h = renderer.impulse_response(renderer.params()).detach()
    early = h[:, : round(0.08 * RATE)].abs()
    peaks = [(row > 0.1 * row.max()).sum().item() for row in early]
    assert peaks[1] > 5 * peaks[0]


def test_gradients_reach_every_parameter():
    dry = torch.randn(round(0.3 * RATE), generator=torch.Generator().manual_seed(0))
    renderer = build("reverb", sample_rate=RATE, seconds=0.3, ir_seconds=1.0, batch_size=2, dry=dry)
    target = torch.randn(2, 1, round(0.3 * RATE), generator=torch.Generator().manual_seed(1))
    (renderer() * target).sum().backward()
    for name, raw in renderer.raw.items():
        assert raw.grad is not None and torch.isfinite(raw.grad).all(), name
        assert (raw.grad.abs() > 0).all(), name  # every row, every band


def test_gradcheck_float64():
    renderer = build(
        "reverb", sample_rate=2000, seconds=0.05, ir_seconds=0.1, early_s=0.02, max_early=8
    ).double()
    names = list(renderer.ranges)
    raws = tuple(renderer.raw[n].detach().clone().requires_grad_(True) for n in names)

    def fn(*raw: torch.Tensor) -> torch.Tensor:
        params = {n: renderer.ranges[n].from_raw(r) for n, r in zip(names, raw, strict=True)}
        return renderer.render(params)

    assert torch.autograd.gradcheck(fn, raws, eps=1e-6, atol=1e-5, rtol=1e-3)


def test_batch_equals_singles_and_seeds_reproduce():
    batch = _renderer(seconds=0.2, ir_seconds=0.5, seed=3, batch_size=3)
    single = _renderer(seconds=0.2, ir_seconds=0.5, seed=3, batch_size=1)
    y = batch().detach()
    assert not torch.allclose(y[0], y[1])
    for i in range(3):
        with torch.no_grad():
            for n, raw in single.raw.items():
                raw.copy_(batch.raw[n][i : i + 1])
        torch.testing.assert_close(single().detach(), y[i : i + 1], rtol=0, atol=1e-5)
    assert torch.equal(_renderer(seconds=0.2, seed=5)(), _renderer(seconds=0.2, seed=5)())
    assert not torch.equal(_renderer(seconds=0.2, seed=5)(), _renderer(seconds=0.2, seed=6)())


def test_parameters_stay_physical_after_large_steps_and_to_dict_has_units():
    renderer = _renderer(seconds=0.2, ir_seconds=0.5, batch_size=2)
    opt = torch.optim.Adam(renderer.parameters(), lr=10.0)
    for _ in range(10):
        opt.zero_grad()
        renderer()[:, :, :1000].square().sum().backward()
        opt.step()
    check_physical(renderer)
    assert torch.isfinite(renderer()).all()
    d = json.loads(json.dumps(renderer.to_dict()))
    assert {n: e["unit"] for n, e in d.items()} == {
        "rt60_s": "s",
        "predelay_s": "s",
        "early_density": "1/s",
        "early_level_db": "dB",
        "wet": "ratio",
    }
    assert np.array(d["rt60_s"]["value"]).shape == (2, 6)


def test_output_keeps_the_dry_level_and_length():
    dry = 0.1 * torch.randn(4000, generator=torch.Generator().manual_seed(2))
    renderer = build("reverb", sample_rate=RATE, seconds=0.25, ir_seconds=0.5, dry=dry)
    y = renderer().detach()
    assert y.shape == (1, 1, 4000)
    assert float(y.square().mean().sqrt()) == pytest.approx(float(dry.square().mean().sqrt()), rel=1e-3)


def test_config_refuses_bad_values():
    with pytest.raises(ValueError, match="early_s"):
        ReverbConfig(early_s=5.0, ir_seconds=1.0)
    with pytest.raises(ValueError, match="rt60"):
        ReverbConfig(rt60_min_s=2.0, rt60_max_s=1.0)
    with pytest.raises(ValueError, match="octave"):
        ReverbConfig(sample_rate=200)


# -- the tasks and the command ------------------------------------------------------------------


def test_loudest_excerpt_finds_the_sound():
    from audiosds.tasks.reverb import loudest_excerpt

    audio = np.zeros(10 * RATE, dtype=np.float32)
    audio[7 * RATE : 7 * RATE + 100] = 1.0
    excerpt = loudest_excerpt(audio, RATE, 2.0)
    assert excerpt.shape == (2 * RATE,) and excerpt.sum() == 100
    assert loudest_excerpt(audio[:RATE], RATE, 2.0).shape == (RATE,)


def test_room_renderer_tunes_on_the_loudest_excerpt_at_the_prior_rate():
    from audiosds.tasks.reverb import room_renderer

    dry = np.zeros((2, 5 * RATE), dtype=np.float32)
    dry[:, 3 * RATE : 3 * RATE + 160] = 0.5  # a click at 3 s, in both channels
    renderer = room_renderer(dry, RATE, 2 * RATE, {"batch_size": 2, "ir_seconds": 1.0}, fit_seconds=1.0)
    assert renderer.sample_rate == 2 * RATE and renderer.batch_size == 2
    assert renderer.config.seconds == pytest.approx(1.0)
    assert renderer.dry.shape[-1] == 2 * RATE and float(renderer.dry.abs().max()) > 0.25


def test_a_room_rebuilt_at_another_rate_keeps_its_rt60():
    from audiosds.tasks.reverb import room_at

    renderer = _renderer()
    set_param(renderer, "rt60_s", 0.9)
    params = {n: {**e, "value": e["value"][:1]} for n, e in renderer.to_dict().items()}
    room = room_at(params, {"ir_seconds": 2.0}, 44100)
    assert len(room.band_centres_hz) == 7  # one more octave than at 16 kHz, at the top band's RT60
    assert float(room.values["rt60_s"][-1]) == pytest.approx(0.9, rel=1e-4)
    measured = band_rt60(room.impulse_response.numpy(), 44100)
    assert all(v == pytest.approx(0.9, rel=0.2) for v in measured.values()), measured
    dry = np.zeros((2, 4410), dtype=np.float32)
    dry[:, 0] = 1.0
    wet = room.apply(dry)
    assert wet.shape[0] == 2 and wet.shape[1] > 4410  # the tail rings on past the dry signal's end


def _dry(path, seconds=0.5):
    import soundfile as sf

    from audiosds.world import render_clip

    sf.write(
        str(path), render_clip("snare", 1, 1.0, RATE, split="heldout").audio[: round(seconds * RATE)], RATE
    )
    return path


def test_cli_writes_a_complete_run_folder(tmp_path, capsys):
    import csv

    import soundfile as sf
    import yaml

    from audiosds.cli import REVERB_OUTPUTS, main

    dry, out = _dry(tmp_path / "dry.wav"), tmp_path / "room"
    argv = ["reverb", str(dry), "--prompt", "a snare in a large hall", "--iters", "3", "--quiet"]
    code = main([*argv, "--particles", "1", "--seed", "4", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == sorted(REVERB_OUTPUTS)
    wet, rate = sf.read(str(out / "wet.wav"))
    assert rate == RATE and wet.shape[0] > round(0.5 * RATE) and np.isfinite(wet).all()
    ir, _ = sf.read(str(out / "impulse_response.wav"))
    params = json.loads((out / "params.json").read_text())
    assert set(params["rt60_s"]) == {"125 Hz", "250 Hz", "500 Hz", "1000 Hz", "2000 Hz", "4000 Hz"}
    # the written response decays at the room's RT60
    for band, value in params["rt60_s"].items():
        assert params["measured_rt60_s"][band] == pytest.approx(value, rel=0.3), band
    delay = round(params["predelay_s"] * RATE)
    assert np.all(ir[:delay] == 0) and ir[delay : delay + 2000].any()
    assert 0 <= params["wet"] <= 1 and params["scores"]["reported"] == "best"
    with open(out / "history.csv") as f:
        assert [int(r["iter"]) for r in csv.DictReader(f)] == [0, 1, 2]
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["command"] == "reverb" and saved["dry"] == str(dry.resolve())
    # its config reruns to the same bytes
    again = tmp_path / "again"
    assert main(["reverb", "--config", str(out / "config.yaml"), "--quiet", "-o", str(again)]) == 0
    assert (again / "wet.wav").read_bytes() == (out / "wet.wav").read_bytes()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["reverb", "--prompt", "a hall"], "DRY"),
        (["reverb", "DRY"], "--prompt"),
        (["reverb", "DRY", "--prompt", "  "], "--prompt"),
        (["reverb", "missing.wav", "--prompt", "a hall"], "m.wav"),
        (["reverb", "SILENT", "--prompt", "a hall"], "silent"),
        (["reverb", "DRY", "--prompt", "a hall", "--seconds", "0"], "--seconds"),
        (["reverb", "DRY", "--prompt", "a hall", "--iters", "0"], "--iters"),
        (["reverb", "DRY", "--prompt", "a hall", "--cfg", "nan"], "--cfg"),
    ],
)
def test_cli_usage_errors_are_one_line(tmp_path, capsys, argv, needle):
    import soundfile as sf

    from audiosds.cli import main

    dry = _dry(tmp_path / "dry.wav", 0.2)
    sf.write(str(tmp_path / "silent.wav"), np.zeros(1000), RATE)
    names = {"DRY": str(dry), "SILENT": str(tmp_path / "silent.wav"), "missing.wav": str(tmp_path / "m.wav")}
    argv = [names.get(a, a) for a in argv]
    code = main([*argv, "--quiet", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("audiosds: error:"), err
    assert needle in err
    assert not (tmp_path / "out").exists()
