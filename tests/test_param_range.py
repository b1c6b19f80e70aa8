"""ParamRange: bounded, invertible, log curves are geometric, bad ranges are rejected."""

from __future__ import annotations

import math

import pytest
import torch

from audiosds.renderers.base import ParamRange

RANGES = [
    ParamRange(-80.0, 0.0, "dB"),
    ParamRange(0.0, 1.0, "ratio"),
    ParamRange(30.0, 2000.0, "Hz", "log"),
    ParamRange(1e-3, 8.0, "rad", "log"),
    ParamRange(1e-3, 0.5, "s", "log"),
    ParamRange(0.01, 4.0, "s", "log"),
]
HUGE = [-1e30, -1e4, -100.0, -40.0, -20.0, -5.0, 0.0, 5.0, 20.0, 40.0, 100.0, 1e4, 1e30]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("rng", RANGES, ids=lambda r: f"{r.min}-{r.max}-{r.curve}")
def test_from_raw_stays_within_bounds_for_huge_raw(rng: ParamRange, dtype: torch.dtype) -> None:
    raw = torch.tensor(HUGE + [float("inf"), float("-inf")], dtype=dtype)
    value = rng.from_raw(raw)
    assert torch.isfinite(value).all()
    # exact bounds, no rounding slack: a log curve's exp(log(max)) must not overshoot max
    assert (value >= rng.min).all(), value.min().item()
    assert (value <= rng.max).all(), value.max().item()


@pytest.mark.parametrize("rng", RANGES, ids=lambda r: f"{r.min}-{r.max}-{r.curve}")
def test_to_raw_inverts_from_raw(rng: ParamRange) -> None:
    # to_raw works in the default dtype (float32): tolerances are float32 round-off through logit
    raw = torch.linspace(-6.0, 6.0, 25)
    value = rng.from_raw(raw)
    torch.testing.assert_close(rng.to_raw(value), raw, rtol=0, atol=2e-4)
    inside = rng.from_raw(torch.linspace(-3.0, 3.0, 7))
    torch.testing.assert_close(rng.from_raw(rng.to_raw(inside)), inside, rtol=1e-5, atol=1e-6)


def test_log_curve_equal_steps_give_equal_ratios() -> None:
    rng = ParamRange(20.0, 20000.0, "Hz", "log")
    u = torch.linspace(0.1, 0.9, 9, dtype=torch.float64)
    value = rng.from_raw(torch.logit(u))
    ratios = value[1:] / value[:-1]
    torch.testing.assert_close(ratios, torch.full_like(ratios, 1000.0**0.1), rtol=1e-9, atol=0)
    assert rng.from_raw(torch.zeros((), dtype=torch.float64)).item() == pytest.approx(
        math.sqrt(20.0 * 20000.0)
    )
    lin = ParamRange(20.0, 20000.0, "Hz", "linear")
    diffs = lin.from_raw(torch.logit(u)).diff()
    torch.testing.assert_close(diffs, torch.full_like(diffs, 0.1 * 19980.0), rtol=1e-9, atol=0)


@pytest.mark.parametrize(
    ("lo", "hi", "curve"),
    [(1.0, 1.0, "linear"), (2.0, 1.0, "linear"), (0.0, 1.0, "log"), (-1.0, 1.0, "log"), (0.1, 1.0, "exp")],
)
def test_invalid_ranges_raise(lo: float, hi: float, curve: str) -> None:
    with pytest.raises(ValueError, match="ParamRange"):
        ParamRange(lo, hi, "", curve)


@pytest.mark.parametrize("value", [30.0, 2000.0, 10.0, 5000.0])
def test_to_raw_rejects_values_outside_the_open_range(value: float) -> None:
    with pytest.raises(ValueError, match="strictly inside"):
        ParamRange(30.0, 2000.0, "Hz", "log").to_raw(value)
