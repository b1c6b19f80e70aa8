"""Prompt scores in a run's history: how well each render matches its prompt, as it goes."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..scorer import PromptScorer


class PromptTracker:
    """Scores rows of audio against their prompts every ``every`` iterations (and on the last).

    Text embeddings are computed once; each scoring is one audio-encoder forward without
    gradients, so tracking costs a small fraction of an SDS iteration.

    Args:
        scorer: any PromptScorer.
        prompts: one per row of the audio to score (or one for all rows).
        sample_rate: of the audio passed to :meth:`__call__`.
        every: scoring interval in iterations; 0 disables tracking.
    """

    def __init__(
        self, scorer: PromptScorer, prompts: Sequence[str], sample_rate: int, every: int = 10
    ) -> None:
        if every < 0:
            raise ValueError(f"score every: expected an interval >= 0, got {every}")
        self.scorer, self.sample_rate, self.every = scorer, sample_rate, every
        self.text = scorer.embed_text(list(prompts)) if every else None  # (P, E)

    def due(self, it: int, iters: int) -> bool:
        return bool(self.every) and (it % self.every == 0 or it == iters - 1)

    @torch.no_grad()
    def __call__(self, audio: Tensor) -> list[float]:
        """Cosine score of row k with prompt k (or with the one prompt).

        Shape:
            audio (K, C, N) -> K floats
        """
        emb = self.scorer.embed_audio(audio.detach().float().cpu(), self.sample_rate)  # (K, E)
        text = self.text.to(emb) if self.text.shape[0] == emb.shape[0] else self.text.expand(emb.shape[0], -1)
        return (emb * text.to(emb)).sum(dim=-1).clamp(-1.0, 1.0).tolist()
