"""What every synthesis renderer (renderers/fm.py, renderers/impact.py) promises, one test per
property parametrised over both: registry, shape and level, seeding, float64 gradcheck,
batch == singles, bounded parameters under huge optimiser steps, and ``to_dict`` in units."""

from __future__ import annotations

import json

import pytest
import torch

from audiosds.renderers import build
from renderer_helpers import check_physical, set_param

NAMES = ("fm", "impact")

# Tiny float64 renders for gradcheck, with the parameters it sets first (human units).
GRADCHECK = {
    "fm": (
        {"sample_rate": 800, "seconds": 0.05, "num_operators": 3},
        {
            "f0_hz": [50.0, 70.0],
            "ratio": [1.0, 2.0, 3.0],  # every operator below 360 Hz: no Nyquist clamp
            "gain_db": [-6.0, -12.0, -20.0],
            "mod_index": [0.5, 1.0, 2.0],
        },
    ),
    "impact": (
        {"sample_rate": 800, "seconds": 0.05, "num_modes": 4, "num_bands": 3},
        {"strike_width_s": [2e-3, 5e-3]},
    ),
}

# to_dict: every parameter's unit, and the value shapes that pin the parameter layout.
UNITS = {
    "fm": (
        {},  # default 4 operators
        {
            "f0_hz": "Hz",
            "ratio": "ratio",
            "mod_index": "rad",
            "attack_s": "s",
            "decay_t60_s": "s",
            "gain_db": "dB",
        },
        {"f0_hz": (2,), "mod_index": (2, 6)},  # 4 * 3 / 2 modulation connections
    ),
    "impact": (
        {"num_modes": 5, "num_bands": 3},
        {
            "mode_freq_hz": "Hz",
            "mode_t60_s": "s",
            "mode_gain_db": "dB",
            "reverb_t60_s": "s",
            "reverb_gain_db": "dB",
            "wet": "ratio",
            "strike_width_s": "s",
        },
        {"mode_freq_hz": (2, 5), "reverb_gain_db": (2, 3)},
    ),
}


@pytest.mark.parametrize("name", NAMES)
def test_registry_builds_and_output_is_finite_with_the_right_shape(name: str) -> None:
    renderer = build(name, batch_size=2, seed=3)
    assert type(renderer).__module__ == f"audiosds.renderers.{name}"
    y = renderer()
    assert y.shape == (2, 1, 16000)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()
    # peak normalisation: every row peaks at config.peak
    torch.testing.assert_close(y.abs().amax(dim=-1).flatten(), torch.full((2,), 0.5), rtol=1e-4, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_bytes_other_seed_differs(name: str) -> None:
    a, b, c = (build(name, seconds=0.1, seed=s) for s in (7, 7, 8))
    assert torch.equal(a(), b())
    assert not torch.equal(a(), c())


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_float64(name: str) -> None:
    config, values = GRADCHECK[name]
    renderer = build(name, **config, batch_size=2).double()
    for param, value in values.items():
        set_param(renderer, param, torch.tensor(value, dtype=torch.float64))
    names = list(renderer.ranges)
    raws = tuple(renderer.raw[n].detach().clone().requires_grad_(True) for n in names)

    def fn(*raw: torch.Tensor) -> torch.Tensor:
        params = {n: renderer.ranges[n].from_raw(r) for n, r in zip(names, raw, strict=True)}
        return renderer.render(params)

    assert torch.autograd.gradcheck(fn, raws, eps=1e-6, atol=1e-5, rtol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_batch_equals_singles(name: str) -> None:
    batch = build(name, seconds=0.25, seed=1, batch_size=3)
    single = build(name, seconds=0.25, seed=1, batch_size=1)
    # what is drawn besides the parameters (impact's reverb noise, drawn first) does not depend on B
    buffers = dict(single.named_buffers())
    assert all(torch.equal(buf, buffers[n]) for n, buf in batch.named_buffers())
    y = batch().detach()
    assert not torch.allclose(y[0], y[1])  # the rows are different sounds
    for i in range(3):
        with torch.no_grad():
            for n, raw in single.raw.items():
                raw.copy_(batch.raw[n][i : i + 1])
        torch.testing.assert_close(single().detach(), y[i : i + 1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_parameters_stay_in_range_after_large_adam_steps(name: str) -> None:
    renderer = build(name, seconds=0.1, batch_size=2)
    target = torch.randn(2, 1, 1600, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(renderer.parameters(), lr=10.0)
    for _ in range(20):
        opt.zero_grad()
        loss = (renderer() * target).sum()
        loss.backward()
        opt.step()
    assert max(raw.detach().abs().max().item() for raw in renderer.raw.values()) > 50  # really pushed
    for n, value in renderer.params().items():
        rng = renderer.ranges[n]
        assert (value >= rng.min).all() and (value <= rng.max).all(), n
    check_physical(renderer)
    y = renderer()
    assert torch.isfinite(y).all()
    y.sum().backward()
    assert all(torch.isfinite(raw.grad).all() for raw in renderer.raw.values())


@pytest.mark.parametrize("name", NAMES)
def test_to_dict_is_json_with_units(name: str) -> None:
    config, units, shapes = UNITS[name]
    renderer = build(name, batch_size=2, **config)
    d = json.loads(json.dumps(renderer.to_dict()))
    assert {n: entry["unit"] for n, entry in d.items()} == units
    params = renderer.params()
    for n, entry in d.items():
        value = torch.tensor(entry["value"], dtype=torch.float64)
        assert value.shape == params[n].shape, n
        torch.testing.assert_close(value, params[n].detach().double(), rtol=1e-6, atol=0)
    assert {n: tuple(params[n].shape) for n in shapes} == shapes
