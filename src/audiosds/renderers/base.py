"""Renderers: differentiable audio generators with named, bounded parameters.

A renderer holds a batch of B independent parameter sets as unconstrained raw tensors
(``nn.Parameter``), each mapped into its physical range by a :class:`ParamRange`, so any
optimiser step, however large, leaves every parameter in range. ``forward()`` renders all
B instances at once; ``to_dict()`` reports every parameter in human units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

CURVES = ("linear", "log")


@dataclass(frozen=True)
class ParamRange:
    """A bounded parameter: raw (any real) -> value in [min, max] through a sigmoid.

    Args:
        min: lower bound in ``unit``.
        max: upper bound in ``unit``.
        unit: "Hz", "s", "dB", "ratio", ... (reported by ``to_dict``).
        curve: "linear" maps sigmoid(raw) linearly; "log" maps it linearly in log space
            (frequencies, times: equal raw steps are equal ratios). "log" needs min > 0.
    """

    min: float
    max: float
    unit: str = ""
    curve: str = "linear"

    def __post_init__(self) -> None:
        if self.curve not in CURVES:
            raise ValueError(f"ParamRange curve: expected one of {CURVES}, got {self.curve!r}")
        if not self.max > self.min:
            raise ValueError(f"ParamRange: expected max > min, got min={self.min}, max={self.max}")
        if self.curve == "log" and self.min <= 0:
            raise ValueError(f"ParamRange: a log curve needs min > 0, got min={self.min}")

    def from_raw(self, raw: Tensor) -> Tensor:
        """Raw tensor -> values in [min, max]."""
        u = torch.sigmoid(raw)
        if self.curve == "log":
            lo, hi = math.log(self.min), math.log(self.max)
            value = torch.exp(lo + u * (hi - lo))
        else:
            value = self.min + u * (self.max - self.min)
        # rounding in exp/sigmoid can land one ulp outside the range for huge |raw|
        return value.clamp(self.min, self.max)

    def to_raw(self, value: Tensor | float) -> Tensor:
        """Values (strictly inside the range) -> raw tensor; inverse of :meth:`from_raw`."""
        v = torch.as_tensor(value)
        if not v.is_floating_point():
            v = v.to(torch.get_default_dtype())
        if self.curve == "log":
            lo, hi = math.log(self.min), math.log(self.max)
            u = (torch.log(v) - lo) / (hi - lo)
        else:
            u = (v - self.min) / (self.max - self.min)
        if ((u <= 0) | (u >= 1)).any():
            raise ValueError(
                f"ParamRange.to_raw: expected values strictly inside [{self.min}, {self.max}] {self.unit}"
            )
        return torch.logit(u)


def fade_out(y: Tensor, sample_rate: int, seconds: float) -> Tensor:
    """Multiply the last ``seconds`` of ``y`` by a half-cosine ramp from 1 to 0; differentiable.

    A clip that ends while its sound still rings ends with a jump to silence, heard as a click;
    the ramp removes it. ``seconds`` = 0 returns ``y`` unchanged.

    Shape:
        y (..., N) -> (..., N)
    """
    n = min(round(seconds * sample_rate), y.shape[-1])
    if n <= 0:
        return y
    ramp = 0.5 + 0.5 * torch.cos(torch.linspace(0.0, math.pi, n, device=y.device, dtype=y.dtype))  # (n,)
    gain = torch.cat([torch.ones(y.shape[-1] - n, device=y.device, dtype=y.dtype), ramp])
    return y * gain


class Renderer(nn.Module):
    """Base class: B parameter sets -> audio (B, channels, num_samples) at ``sample_rate``.

    Subclasses declare ``ranges`` (name -> ParamRange), register one raw ``nn.Parameter``
    per name with leading dim B (use :meth:`add_param`), and implement :meth:`render`.
    """

    sample_rate: int
    num_samples: int
    channels: int = 1

    def __init__(self) -> None:
        super().__init__()
        self.ranges: dict[str, ParamRange] = {}
        self.raw = nn.ParameterDict()

    def add_param(self, name: str, rng: ParamRange, raw_init: Tensor) -> None:
        """Register a bounded parameter from its initial raw tensor (leading dim B)."""
        self.ranges[name] = rng
        self.raw[name] = nn.Parameter(raw_init.detach().clone())

    @property
    def batch_size(self) -> int:
        return next(iter(self.raw.values())).shape[0]

    def params(self) -> dict[str, Tensor]:
        """Every parameter in its human units (differentiable)."""
        return {name: rng.from_raw(self.raw[name]) for name, rng in self.ranges.items()}

    def render(self, params: dict[str, Tensor]) -> Tensor:
        """Parameters in human units -> audio (B, channels, num_samples)."""
        raise NotImplementedError

    def forward(self) -> Tensor:
        return self.render(self.params())

    def to_dict(self) -> dict[str, object]:
        """JSON-ready parameters: ``{name: {"value": nested lists, "unit": str}}`` per instance batch."""
        out: dict[str, object] = {}
        with torch.no_grad():
            for name, value in self.params().items():
                out[name] = {"unit": self.ranges[name].unit, "value": value.detach().cpu().double().tolist()}
        return out
