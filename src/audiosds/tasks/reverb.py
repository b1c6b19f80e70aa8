"""Prompt-driven reverb: tune a room (:mod:`audiosds.renderers.reverb`) so that a dry recording
through it matches a text prompt ("in a large stone hall"), then apply the room to the whole
recording at its own rate.

The Audio-SDS paper names "impulse responses / reverb" as a renderer for future work. Nothing new
is needed in the engine: the room is a renderer whose input is the dry excerpt, and
:func:`audiosds.tasks.synthesize.synthesize` tunes it like any other. Its parameters are in human
units, so the room tuned at the prior's rate is rebuilt at the recording's rate with the same
values (:func:`room_at`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..audio import resample
from ..priors import Prior
from ..renderers.reverb import ReverbConfig, ReverbRenderer, reverberate
from ..scorer import PromptScorer
from ..sds import SDSConfig
from .loop import LoopConfig
from .synthesize import SynthesisResult, SynthesizeConfig, synthesize

# the excerpt of the dry recording the room is tuned on: the prior's training clips are 2-4 s, and a
# longer excerpt costs time in proportion without telling the prior more about the room
FIT_SECONDS = 3.0
TAIL_MARGIN = 1.2  # wet.wav runs on past the dry signal's end for this many times the longest RT60


def loudest_excerpt(audio: np.ndarray, sample_rate: int, seconds: float) -> np.ndarray:
    """The ``seconds``-long span of mono ``audio`` with the most energy (all of it if shorter).

    Shape:
        (N,) -> (min(N, seconds * sample_rate),)
    """
    n = min(audio.shape[-1], max(1, round(seconds * sample_rate)))
    energy = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    start = int(np.argmax(energy[n:] - energy[:-n]))
    return audio[start : start + n]


def room_renderer(
    dry: np.ndarray,
    sample_rate: int,
    prior_rate: int,
    room: dict[str, object] | None = None,
    fit_seconds: float = FIT_SECONDS,
) -> ReverbRenderer:
    """The untuned room that :func:`fit_room` tunes: ``dry``'s loudest ``fit_seconds`` (channels
    averaged), at ``prior_rate``, through a :class:`ReverbRenderer` with the ``room`` fields.

    Args:
        dry: the dry recording, (C, N) channel-first at ``sample_rate``.
        sample_rate: of ``dry``.
        prior_rate: the prior's sample rate.
        room: :class:`ReverbConfig` fields (sample_rate and seconds follow the prior and the excerpt).
        fit_seconds: the excerpt's length.
    """
    mono = np.asarray(dry, dtype=np.float32).reshape(-1, np.shape(dry)[-1]).mean(axis=0)
    excerpt = loudest_excerpt(mono, sample_rate, fit_seconds)
    if sample_rate != prior_rate:
        excerpt = resample(excerpt[None], sample_rate, prior_rate)[0]
    settings = {**(room or {}), "sample_rate": prior_rate, "seconds": excerpt.shape[0] / prior_rate}
    return ReverbRenderer(ReverbConfig(**settings), torch.from_numpy(np.ascontiguousarray(excerpt)))


def fit_room(
    dry: np.ndarray,
    sample_rate: int,
    prior: Prior,
    prompt: str,
    room: dict[str, object] | None = None,
    config: SynthesizeConfig | None = None,
    sds: SDSConfig | None = None,
    negative: str | None = None,
    fit_seconds: float = FIT_SECONDS,
    loop: LoopConfig | None = None,
    scorer: PromptScorer | None = None,
    progress: Callable[[int, dict[str, float | None]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint: Path | None = None,
) -> tuple[ReverbRenderer, SynthesisResult]:
    """Tune a room so that ``dry`` (its loudest ``fit_seconds``, at the prior's rate) through it
    matches ``prompt``.

    Args:
        dry: the dry recording, (C, N) channel-first at ``sample_rate`` (channels averaged).
        sample_rate: of ``dry``.
        prior: a frozen Prior.
        prompt: what the reverberated sound should be.
        room: :class:`ReverbConfig` fields (sample_rate and seconds follow the prior and the excerpt).
        config, sds, negative, loop, scorer, progress, should_stop, checkpoint: as for ``synthesize``.
        fit_seconds: the excerpt's length.

    Returns:
        the renderer (its B particles as they ended) and the synthesis result, whose ``params``
        are the reported room's.
    """
    renderer = room_renderer(dry, sample_rate, prior.sample_rate, room, fit_seconds)
    result = synthesize(
        renderer,
        prior,
        prompt,
        config,
        sds,
        negative=negative,
        progress=progress,
        loop=loop,
        checkpoint=checkpoint,
        should_stop=should_stop,
        scorer=scorer,
    )
    return renderer, result


@dataclass
class Room:
    """A tuned room at one sample rate: its impulse response and its parameters (one instance).

    Attributes:
        values: parameter name -> value in human units (``rt60_s`` per band, the others scalars).
        impulse_response: (L,) unit energy, without the pre-delay.
        sample_rate: of the impulse response.
        band_centres_hz: the octave bands of ``values["rt60_s"]``.
    """

    values: dict[str, Tensor]
    impulse_response: Tensor
    sample_rate: int
    band_centres_hz: tuple[float, ...]

    def with_predelay(self) -> Tensor:
        """The impulse response after its pre-delay (rounded to a sample), (L + delay,)."""
        delay = round(float(self.values["predelay_s"]) * self.sample_rate)
        return torch.cat([torch.zeros(delay, dtype=self.impulse_response.dtype), self.impulse_response])

    def apply(self, dry: np.ndarray) -> np.ndarray:
        """``dry`` (C, N) through the room, followed by its tail (``TAIL_MARGIN`` x the longest RT60,
        at most the impulse response's length), with the dry signal's energy.

        Shape:
            (C, N) -> (C, N + tail)
        """
        tail = min(
            self.impulse_response.shape[0],
            round(TAIL_MARGIN * float(self.values["rt60_s"].max()) * self.sample_rate),
        )
        padded = torch.nn.functional.pad(torch.from_numpy(np.asarray(dry, dtype=np.float32)), (0, tail))
        wet = reverberate(
            padded,
            self.impulse_response[None],
            self.values["predelay_s"].reshape(1),
            self.values["wet"].reshape(1),
            self.sample_rate,
        )
        return wet[0].numpy()


def room_at(params: dict[str, object], room: dict[str, object], sample_rate: int) -> Room:
    """The room of ``params`` (``Renderer.to_dict()`` of one instance) rebuilt at ``sample_rate``:
    the same values in human units; where the rate has more octave bands than the tuned room, the
    extra ones take its highest band's RT60, and fewer keep the lowest ones.

    Args:
        params: the tuned parameters, as ``SynthesisResult.params``.
        room: the :class:`ReverbConfig` fields the room was tuned with (seed, ranges, ...).
        sample_rate: the rate to rebuild at.
    """
    config = ReverbConfig(**{**room, "sample_rate": sample_rate, "seconds": 0.01, "batch_size": 1})
    renderer = ReverbRenderer(config)
    values = {name: torch.tensor(entry["value"][0], dtype=torch.float32) for name, entry in params.items()}
    rt60 = values["rt60_s"].reshape(-1)
    bands = len(config.band_centres_hz)
    values["rt60_s"] = torch.cat([rt60, rt60[-1:].expand(max(0, bands - rt60.shape[0]))])[:bands]
    with torch.no_grad():
        h = renderer.impulse_response(
            {k: v.reshape(1, -1) if k == "rt60_s" else v.reshape(1) for k, v in values.items()}
        )
    return Room(values, h[0], sample_rate, config.band_centres_hz)


__all__ = ["FIT_SECONDS", "Room", "fit_room", "loudest_excerpt", "room_at", "room_renderer"]
