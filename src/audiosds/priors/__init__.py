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


def _stable_audio_3(**cfg: object) -> Prior:
    from .stable_audio_3 import StableAudio3Config, StableAudio3Prior

    return StableAudio3Prior.from_config(from_dict(StableAudio3Config, cfg, "prior 'stable-audio-3'"))


def _audioldm2(**cfg: object) -> Prior:
    from .audioldm2 import AudioLDM2Config, AudioLDM2Prior

    return AudioLDM2Prior.from_config(from_dict(AudioLDM2Config, cfg, "prior 'audioldm2'"))


# The backend that loads each diffusers pipeline class (model_index.json's _class_name), for "auto".
PIPELINE_PRIORS: dict[str, str] = {
    "AudioLDM2Pipeline": "audioldm2",
    "StableAudio3Pipeline": "stable-audio-3",
    "StableAudioPipeline": "stable-audio-open",
}


def _auto(**cfg: object) -> Prior:
    """The backend that loads ``cfg["model"]``, picked by its model_index.json's ``_class_name``."""
    from .diffusers_folder import pipeline_class
    from .stable_audio import ModelLoadError

    if "model" not in cfg:
        raise ValueError("prior 'auto': needs a model folder or Hugging Face id (--model)")
    folder, name = pipeline_class(str(cfg["model"]))
    if name not in PIPELINE_PRIORS:
        supported = ", ".join(f"{cls} (--prior {prior})" for cls, prior in sorted(PIPELINE_PRIORS.items()))
        raise ModelLoadError(
            f"model folder {folder}: {name} is not supported; supported pipelines: {supported}"
        )
    return PRIORS[PIPELINE_PRIORS[name]](**cfg)


def _embedded_mel(**cfg: object) -> Prior:
    from .embedded_mel import EmbeddedMelConfig, EmbeddedMelPrior

    return EmbeddedMelPrior(from_dict(EmbeddedMelConfig, cfg, "prior 'embedded-mel'"))


PRIORS: dict[str, Callable[..., Prior]] = {
    "analytic": _analytic,
    "embedded-mel": _embedded_mel,
    "stable-audio-open": _stable_audio,
    "stable-audio-3": _stable_audio_3,
    "audioldm2": _audioldm2,
    "auto": _auto,
}

# the Config field that a model path or id sets, for the priors that load one (the CLI's --model)
MODEL_FIELD: dict[str, str] = {
    "embedded-mel": "weights_dir",
    "stable-audio-open": "model",
    "stable-audio-3": "model",
    "audioldm2": "model",
    "auto": "model",
}

DEFAULT_PRIOR = "embedded-mel"

# Settings a prior prefers over a task's own defaults, by task ("synthesis", "separation",
# "enhancement": see TASK_BASE) and config section ("sds": SDSConfig, "separate": SeparateConfig). The
# mel prior's encoder is its differentiable log-mel front end, so classic latent SDS (eq. 4) needs no
# vocoder pass per iteration: for synthesis over the whole noise range it rose furthest and its last
# iterate fell back least (RESULTS.md, "Synthesis SDS defaults on the mel prior"); for separation it
# alone, without the Decoder-SDS member, separated better at a tenth of the time ("Separation defaults
# on the mel prior"), and on the 2-D weights noise levels from t 0.02 (not 0.3) lifted the weakest
# world pair in every screen and every pair above zero ("A first look at the separation settings on
# the 2-D weights").
PRIOR_DEFAULTS: dict[str, dict[str, dict[str, dict[str, object]]]] = {
    "embedded-mel": {
        "synthesis": {"sds": {"mode": "latent", "t_min": 0.02, "t_max": 0.98}},
        "separation": {
            "sds": {"t_min": 0.02, "t_max": 0.98, "cfg_scale": 3.0},
            "separate": {"sds_modes": ["latent"], "mask_power": 1.0},
        },
        # speech enhancement is separation with a catch-all source, but its speech lost with t from
        # 0.02: +2.42 dB SI-SDR / +0.19 DNSMOS against +3.34 / +0.30 with t from 0.3
        # (benchmarks/enhance.py --mixtures 24 --dnsmos; RESULTS.md, "Speech enhancement"). From the
        # noise-floor start SDS steps on this prior lowered the speech (it learned spoken digits, not
        # sentences): 0 steps +5.18 dB, 100 steps +1.51 on the development mixtures (--first 24
        # --mixtures 8 --seed 1), so it enhances with the start alone, unperturbed
        "enhancement": {"sds": {"t_min": 0.3}, "separate": {"iters": 0, "init_noise": 0.0}},
    },
}


# a task whose prior defaults start from another task's: enhancement is separation with a catch-all
TASK_BASE = {"enhancement": "separation"}
# what a task changes over its TASK_BASE task for every prior: enhancement starts from the classic
# noise-suppression split (SeparateConfig.start; audiosds.denoise), not an even one: with the mel prior's
# 100 SDS steps, +4.14 dB SI-SDR from this start against +3.34 from the even split
# (benchmarks/enhance.py --mixtures 24 --dnsmos; RESULTS.md, "Speech enhancement")
TASK_DEFAULTS: dict[str, dict[str, dict[str, object]]] = {
    "enhancement": {"separate": {"start": "noise_floor"}}
}


def prior_defaults(prior: str | Prior | None, task: str, section: str = "sds") -> dict[str, object]:
    """The settings ``prior`` (a registry name or a built prior) prefers for ``task``'s ``section``
    (over those of its ``TASK_BASE`` task, if it has one)."""
    name = prior if isinstance(prior, str) or prior is None else prior.name
    base = prior_defaults(prior, TASK_BASE[task], section) if task in TASK_BASE else {}
    own = TASK_DEFAULTS.get(task, {}).get(section, {})
    return {**base, **own, **PRIOR_DEFAULTS.get(name or "", {}).get(task, {}).get(section, {})}


def build(name: str, **cfg: object) -> Prior:
    """Build a prior by registry name; ``cfg`` overrides that backend's Config fields."""
    if name not in PRIORS:
        raise ValueError(f"unknown prior {name!r}; expected one of {sorted(PRIORS)}")
    return PRIORS[name](**cfg).freeze()


__all__ = [
    "Conditioning",
    "Prior",
    "PRIORS",
    "PRIOR_DEFAULTS",
    "DEFAULT_PRIOR",
    "MODEL_FIELD",
    "PIPELINE_PRIORS",
    "build",
    "prior_defaults",
]
