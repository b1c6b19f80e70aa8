"""Renderers: differentiable audio generators with named, bounded parameters."""

from __future__ import annotations

from collections.abc import Callable

from ..config import from_dict
from .base import ParamRange, Renderer


def _fm(**cfg: object) -> Renderer:
    from .fm import FMConfig, FMSynth

    return FMSynth(from_dict(FMConfig, cfg, "renderer 'fm'"))


def _impact(**cfg: object) -> Renderer:
    from .impact import ImpactConfig, ImpactSynth

    return ImpactSynth(from_dict(ImpactConfig, cfg, "renderer 'impact'"))


def _reverb(dry: object = None, **cfg: object) -> Renderer:
    from .reverb import ReverbConfig, ReverbRenderer

    return ReverbRenderer(from_dict(ReverbConfig, cfg, "renderer 'reverb'"), dry)  # type: ignore[arg-type]


RENDERERS: dict[str, Callable[..., Renderer]] = {"fm": _fm, "impact": _impact, "reverb": _reverb}


def build(name: str, **cfg: object) -> Renderer:
    """Build a renderer by registry name; ``cfg`` overrides its Config fields."""
    if name not in RENDERERS:
        raise ValueError(f"unknown renderer {name!r}; expected one of {sorted(RENDERERS)}")
    return RENDERERS[name](**cfg)


__all__ = ["ParamRange", "Renderer", "RENDERERS", "build"]
