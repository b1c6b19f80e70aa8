"""Helpers for the renderer tests: set a parameter in human units; check that parameters are physical."""

from __future__ import annotations

import math

import torch

from audiosds.renderers import Renderer


def set_param(renderer: Renderer, name: str, value: torch.Tensor | float) -> None:
    """Set a parameter from human units (broadcast to its raw shape)."""
    raw = renderer.raw[name]
    value = torch.as_tensor(value, dtype=raw.dtype).expand(raw.shape).clone()
    with torch.no_grad():
        raw.copy_(renderer.ranges[name].to_raw(value))


def check_physical(renderer: Renderer) -> None:
    """Every frequency (unit Hz) in (0, sr/2); every time (unit s: decays, attacks, widths)
    positive and finite, so every decay rate ln(1000) / t60 is too."""
    nyquist = renderer.sample_rate / 2
    for name, value in renderer.params().items():
        unit = renderer.ranges[name].unit
        if unit == "Hz":
            assert (value > 0).all() and (value < nyquist).all(), name
        if unit == "s":
            rate = math.log(1000.0) / value
            assert torch.isfinite(rate).all() and (rate > 0).all(), name
