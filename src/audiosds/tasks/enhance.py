"""Enhancement: the prompted source (speech by default) separated from a catch-all noise source.

The Audio-SDS paper names noise removal as a use of its separation (eq. 13) with a "noise"
catch-all channel. Here it is :func:`audiosds.tasks.separate.separate` with two sources: the
prompt (``"a man speaking"``) and ``noise_prompt``, each the other's negative prompt (contrast),
with defaults chosen on speech in real noise: the prompt names speech, the catch-all is named
after what else the scorer hears (``NOISE_PROMPT``), and the two sources start from a classic
noise suppression's split (``SeparateConfig.start = "noise_floor"``, :mod:`audiosds.denoise`) that
SDS refines for ``iters`` steps (0 on the mel prior, where every step lowered the speech; see
``priors.PRIOR_DEFAULTS``). The sources add up to the noisy recording: ``enhanced + noise = noisy``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from torch import Tensor

from ..priors import Prior, prior_defaults
from ..scorer import PromptScorer, build_scorer
from ..sds import SDSConfig
from .loop import LoopConfig
from .separate import SeparateConfig, SeparationResult, separate, separation_sds
from .suggest import AUTO, SuggestConfig, Suggester

DEFAULT_PROMPT = "a man speaking"  # the spoken-digit vocabulary's own fixed caption
# the catch-all's prompt: "auto" names it after the loudest other thing the scorer hears
# (:func:`suggest_noise`). Mean SI-SDR gain over the input on 8 speech + ESC-10 noise mixtures
# (benchmarks/enhance.py --mixtures 8, seed 0, on the 1-D mel prior that preceded the shipped one):
# "auto" +1.24 dB, "noise" -1.44, "background noise" -1.78, the noise class's own caption -5.26
# (RESULTS.md, "Speech enhancement")
NOISE_PROMPT = AUTO


def suggest_noise(
    noisy: np.ndarray | Tensor, sample_rate: int, prompt: str, scorer: PromptScorer | None = None
) -> str:
    """``noise_prompt="auto"``: the class ranked first for ``noisy`` (:mod:`.suggest`) that is not
    the class ``prompt`` names, i.e. the loudest other thing the scorer hears.

    The ranking is the prompt scorer's (``scorer``, default the shipped one), not the suggestion
    model's: the suggestion model names the real noise more often, and a catch-all named after the
    real noise claims the speech too (benchmarks/enhance.py --mixtures 24, seed 0, on the 1-D mel prior
    that preceded the shipped one: -6.42 dB SI-SDR gain with the suggestion model's names, -1.46 with the
    scorer's; RESULTS.md, "Speech enhancement").
    """
    suggester = Suggester(scorer if scorer is not None else build_scorer("embedded"))
    keep = suggester.closest_class(prompt)
    # 0.5-s windows: the clip length the prompt scorer was validated on
    found = suggester(noisy, sample_rate, SuggestConfig(top=len(suggester.classes), window_seconds=0.5))
    found = found.overall
    return next(s.prompt for s in found if s.name != keep)


def enhance_config(prior: str | Prior | None = None, **overrides: object) -> SeparateConfig:
    """The separation settings :func:`enhance` uses by default: what the prior prefers for
    enhancement (its separation settings and the changes over them; for every prior the noise-floor
    start), then ``overrides``. On the
    speech benchmark (benchmarks/enhance.py --mixtures 8, seed 0, auto noise prompt) sharper masks
    did not help: mask power 2 gave +1.22 dB where the mel prior's 1 gave +1.24 dB; what speech
    needed was the catch-all's name (``NOISE_PROMPT``)."""
    return SeparateConfig(**{**prior_defaults(prior, "enhancement", "separate"), **overrides})


def enhance_sds(prior: str | Prior | None = None, **overrides: object) -> SDSConfig:
    """The SDS settings :func:`enhance` uses by default: ``SEPARATION_SDS``, then what ``prior``
    prefers for enhancement (its separation settings and the changes over them), then ``overrides``."""
    return separation_sds(prior, "enhancement", **overrides)


@dataclass
class EnhanceResult:
    """What :func:`enhance` produced, in the input's format.

    Attributes:
        enhanced: the prompted source, (C, N) at the input's rate.
        noise: everything else, (C, N); ``enhanced + noise`` is the input.
        separation: the separation it came from (history, params, status).
    """

    enhanced: np.ndarray
    noise: np.ndarray
    separation: SeparationResult = field(repr=False)


def enhance(
    noisy: np.ndarray | Tensor,
    sample_rate: int,
    prior: Prior,
    prompt: str = DEFAULT_PROMPT,
    noise_prompt: str = NOISE_PROMPT,
    config: SeparateConfig | None = None,
    sds: SDSConfig | None = None,
    progress: Callable[[int, dict[str, float]], None] | None = None,
    loop: LoopConfig | None = None,
    should_stop: Callable[[], bool] | None = None,
    scorer: PromptScorer | None = None,
) -> EnhanceResult:
    """Separate the source ``prompt`` names from the rest of ``noisy``.

    Args:
        noisy: channel-first (C, N) audio at ``sample_rate``.
        sample_rate: in Hz.
        prior: a frozen Prior.
        prompt: what to keep.
        noise_prompt: what to remove: the catch-all source's prompt; ``"auto"``: the suggestion
            ranked first that is not what ``prompt`` names (:func:`suggest_noise`).
        config: separation settings (default :func:`enhance_config` of ``prior``); its
            ``noise_source`` must stay off (the catch-all is the second prompt).
        sds: the SDS update (default: :func:`enhance_sds` of ``prior``).
        progress, loop, should_stop, scorer: as for ``separate``.

    Shape:
        noisy (C, N) -> enhanced, noise (C, N)
    """
    config = config or enhance_config(prior)
    if config.noise_source:
        raise ValueError("enhance: expected noise_source off (the noise prompt is the catch-all source)")
    for name, text in (("prompt", prompt), ("noise_prompt", noise_prompt)):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"enhance {name}: expected non-empty text, got {text!r}")
    if noise_prompt.strip() == AUTO:
        noise_prompt = suggest_noise(noisy, sample_rate, prompt)
    result = separate(
        noisy,
        sample_rate,
        prior,
        [prompt, noise_prompt],
        config,
        sds or enhance_sds(prior),
        progress=progress,
        loop=loop,
        should_stop=should_stop,
        scorer=scorer,
    )
    return EnhanceResult(result.sources[0], result.sources[1], result)


__all__ = [
    "DEFAULT_PROMPT",
    "NOISE_PROMPT",
    "EnhanceResult",
    "enhance",
    "enhance_config",
    "enhance_sds",
    "suggest_noise",
]
