"""A MiniLM stand-in for training tests: deterministic unit 384-d 'embeddings' from a caption's bytes."""

from __future__ import annotations

import torch

from audiosds.models.text import EMBED_DIM


class FakeText:
    """Caption -> a seeded unit vector (keeps training tests MiniLM-free)."""

    def __call__(self, captions: list[str]) -> torch.Tensor:
        rows = []
        for c in captions:
            g = torch.Generator().manual_seed(sum(c.encode()) * 7919 + len(c))
            rows.append(torch.nn.functional.normalize(torch.randn(EMBED_DIM, generator=g), dim=0))
        return torch.stack(rows)
