"""Prompt suggestion: what is audible in a recording, as prompts ranked by the suggestion model.

The Audio-SDS paper leaves "automated prompt suggestion for mixtures" to future work: a user who
wants to separate a recording must first name what is in it. Here every class the embedded-mel prior
learned (the world's 31 families and the real recordings' classes, :mod:`audiosds.world.captions`
and :mod:`audiosds.world.real`) is a candidate, and a CLAP-style dual encoder ranks them: by default
the shipped suggestion model, the prompt scorer's network fine-tuned to say which classes a mixture
holds (``training/train_suggest.py``); any :class:`~audiosds.scorer.PromptScorer` can stand in.

1. each class's text embedding is the normalised mean of the embeddings of all its names and
   fixed captions (CLIP's prompt ensembling: one phrasing's quirks average out);
2. the recording is cut into windows of ``window_seconds``, each scored against every class
   (cosine similarity);
3. a class's overall score is its highest window score: a sound heard in one window only is
   still suggested.

Classes the world and the real recordings share (rain, kick, snare, and the aliases in
``SAME_AS``) are one candidate. Nothing is downloaded: the model and MiniLM ship with the package.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import is_int, is_number
from ..scorer import PromptScorer, build_scorer, suggest_weights_dir
from ..world.classes import SAME_AS, Candidate, candidates

AUTO = "auto"  # ``separate --prompt auto[:N]``


@dataclass(frozen=True)
class SuggestConfig:
    """Settings for :func:`suggest`."""

    top: int = 3  # suggestions reported, overall and per window
    # The suggestion model learned mixtures cropped to 0.5-4 s. Both classes in the top 3
    # (benchmarks/suggest.py --window W, 30 world + 30 ESC-10 pairs), --seed 1: 1 s windows 41 of
    # 60, 2 s 45, 4 s 45; --seed 0: 0.5 s 40, 1 s 46, 2 s 46, 4 s 49 (RESULTS.md, "Prompt suggestion")
    window_seconds: float = 2.0
    hop_seconds: float | None = None  # between window starts; None: half a window

    @property
    def hop(self) -> float:
        return self.window_seconds / 2 if self.hop_seconds is None else self.hop_seconds

    def __post_init__(self) -> None:
        if not is_int(self.top) or self.top < 1:
            raise ValueError(f"SuggestConfig.top: expected an int >= 1, got {self.top!r}")
        if not is_number(self.window_seconds) or not 0.1 <= self.window_seconds <= 60:
            raise ValueError(
                f"SuggestConfig.window_seconds: expected a number in [0.1, 60], got {self.window_seconds!r}"
            )
        hop = self.hop_seconds
        if hop is not None and (not is_number(hop) or not 0 < hop <= self.window_seconds):
            raise ValueError(
                f"SuggestConfig.hop_seconds: expected None or a number in (0, window_seconds], got {hop!r}"
            )


@dataclass(frozen=True)
class Suggestion:
    """One ranked class: its name, the prompt to use and its cosine score in [-1, 1]."""

    name: str
    prompt: str
    score: float


@dataclass
class SuggestResult:
    """What :func:`suggest` found.

    Attributes:
        overall: the top classes of the whole recording, best first.
        windows: per window, its (start_s, end_s) and its top classes.
        scores: every class's score per window, (W, K) in ``candidates()`` order.
    """

    overall: list[Suggestion]
    windows: list[tuple[tuple[float, float], list[Suggestion]]]
    scores: Tensor


def _window_starts(num_samples: int, window: int, hop: int) -> list[int]:
    """Starts of windows of ``window`` samples every ``hop``; the last one ends at the end. A tail
    shorter than a quarter hop (e.g. a sample or two left by resampling) moves the last window to the
    end instead of adding a near-copy of it."""
    if num_samples <= window:
        return [0]
    starts = list(range(0, num_samples - window + 1, hop))
    tail = num_samples - (starts[-1] + window)
    if tail * 4 >= hop or (tail > 0 and len(starts) == 1):
        starts.append(num_samples - window)
    elif tail > 0:
        starts[-1] = num_samples - window
    return starts


def _top(scores: Tensor, classes: Sequence[Candidate], k: int) -> list[Suggestion]:
    values, index = scores.topk(min(k, len(classes)))
    return [
        Suggestion(classes[i].name, classes[i].prompt, float(v))
        for v, i in zip(values.tolist(), index.tolist(), strict=True)
    ]


def suggestion_scorer() -> PromptScorer:
    """The shipped suggestion model: the prompt scorer's network fine-tuned to say which classes a
    mixture holds (``training/train_suggest.py``; ``weights/suggest``)."""
    return build_scorer("embedded", weights_dir=str(suggest_weights_dir()))


class Suggester:
    """Ranks :func:`candidates` against recordings; the class text embeddings are computed once.

    Args:
        scorer: any PromptScorer (default: :func:`suggestion_scorer`).
        classes: the candidates (default: :func:`candidates`).
    """

    def __init__(
        self, scorer: PromptScorer | None = None, classes: Sequence[Candidate] | None = None
    ) -> None:
        self.scorer = scorer if scorer is not None else suggestion_scorer()
        self.classes = list(classes) if classes is not None else candidates()
        if not self.classes:
            raise ValueError("Suggester classes: expected at least one candidate, got none")
        texts = [t for c in self.classes for t in c.phrasings]
        emb = self.scorer.embed_text(texts)  # (sum of phrasings, E)
        sizes = [len(c.phrasings) for c in self.classes]
        self.text = F.normalize(torch.stack([e.mean(dim=0) for e in emb.split(sizes)]), dim=-1)  # (K, E)

    @torch.no_grad()
    def closest_class(self, text: str) -> str:
        """The class whose text embedding is closest to ``text``'s (what a prompt names)."""
        emb = self.scorer.embed_text([text])  # (1, E)
        return self.classes[int((emb @ self.text.T.to(emb)).argmax())].name

    @torch.no_grad()
    def __call__(
        self, audio: np.ndarray | Tensor, sample_rate: int, config: SuggestConfig | None = None
    ) -> SuggestResult:
        """Rank the classes for ``audio``.

        Args:
            audio: (N,) mono or (C, N) channel-first, finite floats; channels are averaged.
            sample_rate: of ``audio``, in Hz.
            config: windows and how many suggestions.

        Shape:
            audio (N,) or (C, N) -> scores (W, K)
        """
        config = config or SuggestConfig()
        x = torch.as_tensor(audio)
        if x.ndim not in (1, 2) or x.shape[-1] < 1 or not x.is_floating_point():
            raise ValueError(
                f"suggest audio: expected float (N,) or (C, N) with N >= 1, got {tuple(x.shape)}"
            )
        if not torch.isfinite(x).all():
            raise ValueError("suggest audio: expected finite samples")
        if not is_int(sample_rate) or sample_rate <= 0:
            raise ValueError(f"suggest sample_rate: expected a positive int, got {sample_rate!r}")
        mono = (x if x.ndim == 1 else x.mean(dim=0)).float()  # (N,)
        window = max(1, round(config.window_seconds * sample_rate))
        hop = max(1, round(config.hop * sample_rate))
        starts = _window_starts(mono.shape[0], window, hop)
        clips = torch.stack(
            [F.pad(mono[s : s + window], (0, max(0, window - mono.shape[0]))) for s in starts]
        )
        emb = self.scorer.embed_audio(clips, sample_rate)  # (W, E)
        scores = (emb @ self.text.T.to(emb)).clamp(-1.0, 1.0)  # (W, K)
        span = min(window, mono.shape[0])
        windows = [
            ((s / sample_rate, (s + span) / sample_rate), _top(row, self.classes, config.top))
            for s, row in zip(starts, scores, strict=True)
        ]
        return SuggestResult(_top(scores.amax(dim=0), self.classes, config.top), windows, scores)


def suggest(
    audio: np.ndarray | Tensor,
    sample_rate: int,
    config: SuggestConfig | None = None,
    scorer: PromptScorer | None = None,
) -> SuggestResult:
    """The prompts most likely to name what is audible in ``audio``, per window and overall.

    One-off form of :class:`Suggester` (which keeps the class embeddings for many recordings).

    Args:
        audio: (N,) mono or (C, N) channel-first.
        sample_rate: of ``audio``, in Hz.
        config: windows and how many suggestions.
        scorer: any PromptScorer (default: :func:`suggestion_scorer`).
    """
    return Suggester(scorer)(audio, sample_rate, config)


def parse_auto(prompts: Sequence[str] | None) -> int | None:
    """``["auto"]`` -> 2, ``["auto:3"]`` -> 3: how many suggested prompts ``separate`` should use;
    None when the prompts are not one ``auto[:N]``.

    Raises:
        ValueError: ``auto:N`` with N not an integer in [2, 8], or ``auto`` beside other prompts.
    """
    if not prompts:
        return None
    autos = [p for p in prompts if isinstance(p, str) and p.strip().split(":")[0] == AUTO]
    if not autos:
        return None
    if len(prompts) != 1:
        raise ValueError("--prompt auto[:N]: expected it alone, not beside other prompts")
    _, _, count = prompts[0].strip().partition(":")
    if not count:
        return 2
    if not count.isdigit() or not 2 <= int(count) <= 8:
        raise ValueError(f"--prompt auto:N: expected N an integer in [2, 8], got {count!r}")
    return int(count)


__all__ = [
    "AUTO",
    "SAME_AS",
    "Candidate",
    "SuggestConfig",
    "SuggestResult",
    "Suggester",
    "Suggestion",
    "candidates",
    "parse_auto",
    "suggest",
    "suggestion_scorer",
]
