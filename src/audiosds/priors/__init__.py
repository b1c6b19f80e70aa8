"""Priors: text-to-audio diffusion backends behind one interface (:class:`Prior`).

Backends are imported lazily by :func:`build` so that, for example, the analytic prior
never imports diffusers.
"""

from __future__ import annotations

from collections.abc import Callable

from ..config import from_dict
from .base import Conditioning, Prior


def _analytic(**cfg: object) -> Prior:
    from .analytic import AnalyticConfig, AnalyticPrior

    return AnalyticPrior(from_dict(AnalyticConfig, cfg, "prior 'analytic'"))


def _stable_audio(**cfg: object) -> Prior:
    from .stable_audio import StableAudioConfig, StableAudioPrior

    return StableAudioPrior.from_config(from_dict(StableAudioConfig, cfg, "prior 'stable-audio-open'"))


PRIORS: dict[str, Callable[..., Prior]] = {
    "analytic": _analytic,
    "stable-audio-open": _stable_audio,
}

DEFAULT_PRIOR = "analytic"


def build(name: str, **cfg: object) -> Prior:
    """Build a prior by registry name; ``cfg`` overrides that backend's Config fields."""
    if name not in PRIORS:
        raise ValueError(f"unknown prior {name!r}; expected one of {sorted(PRIORS)}")
    return PRIORS[name](**cfg).freeze()


__all__ = ["Conditioning", "Prior", "PRIORS", "DEFAULT_PRIOR", "build"]
