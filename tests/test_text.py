"""The plain-torch MiniLM text encoder against transformers' BertModel on the same folder."""

from __future__ import annotations

import shutil

import pytest
import torch

from audiosds.models.text import (
    EMBED_DIM,
    TextEncoder,
    TextEncoderConfig,
    TextModelError,
    default_model_dir,
)

CAPTIONS = [
    "a bell",
    "",
    "waves crashing on a rocky shore",
    "A SIREN!! wailing, far away... 123 times",
    "bongo drum playing a rhythmic beat, not speech",
    "naïve café ambience — dishes clinking",
    " ".join(["metallic clang"] * 200),  # 401 tokens: cut to max_tokens
]


def _reference(texts: list[str], max_tokens: int) -> torch.Tensor:
    """sentence-transformers' recipe through transformers: mean-pooled, L2-normalised token states."""
    from transformers import AutoModel, AutoTokenizer

    folder = str(default_model_dir())
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    tokens = tokenizer(texts, truncation=True, max_length=max_tokens, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = model(**tokens).last_hidden_state
    mask = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
    pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)
    return torch.nn.functional.normalize(pooled, dim=1)


def test_embeddings_equal_transformers_bit_for_bit() -> None:
    encoder = TextEncoder()
    encoder.load()
    batched = encoder._embed_batch(CAPTIONS)  # one padded batch
    assert batched.shape == (len(CAPTIONS), EMBED_DIM)
    assert torch.equal(batched, _reference(CAPTIONS, encoder.config.max_tokens))
    for text in CAPTIONS[:3]:  # alone: no padding, no attention mask
        assert torch.equal(encoder._embed_batch([text]), _reference([text], encoder.config.max_tokens))


def test_long_captions_are_cut_to_max_tokens() -> None:
    short = TextEncoder(TextEncoderConfig(max_tokens=8))
    short.load()
    assert len(short._token_ids(CAPTIONS[-1])) == 8
    cut = short(
        [CAPTIONS[-1], "metallic clang metallic clang metallic clang"]
    )  # both: [CLS] + 6 words + [SEP]
    torch.testing.assert_close(cut[0], cut[1], atol=1e-6, rtol=0)


def test_a_broken_folder_is_one_clear_error(tmp_path) -> None:
    folder = tmp_path / "minilm"
    shutil.copytree(default_model_dir(), folder)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(TextModelError, match="missing tokenizer.json"):
        TextEncoder(TextEncoderConfig(model_dir=str(folder)))(["a bell"])
    (folder / "tokenizer.json").write_text("{not json")
    with pytest.raises(TextModelError, match="tokenizer.json"):
        TextEncoder(TextEncoderConfig(model_dir=str(folder)))(["a bell"])
    shutil.copy(default_model_dir() / "tokenizer.json", folder)
    (folder / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(TextModelError, match="could not load MiniLM"):
        TextEncoder(TextEncoderConfig(model_dir=str(folder)))(["a bell"])


def test_minilm_embeddings_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    encoder = TextEncoder()
    prompts = ["a bell ringing", "a ringing bell", "heavy rain falling on a roof"]
    e = encoder(prompts)
    assert e.shape == (3, EMBED_DIM)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(3))
    sim = e @ e.T
    assert sim[0, 1] > 0.8 > sim[0, 2]  # a real sentence model: paraphrases close, other topics far
    assert torch.equal(encoder([prompts[2], prompts[0]]), e[[2, 0]])  # cached rows, in the asked order
    # A fresh encoder (no cache) embedding the caption alone agrees: padding is masked out.
    torch.testing.assert_close(TextEncoder()([prompts[2]]), e[2:], atol=1e-6, rtol=0)
