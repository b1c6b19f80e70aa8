"""What the two embedded priors share: an EDM denoiser (:class:`audiosds.models.denoiser.EDMDenoiser`)
conditioned on frozen all-MiniLM-L6-v2 sentence embeddings, with the learned null embedding as the
unconditional branch of classifier-free guidance.

Conditioning tensors: ``text`` (P, 384), MiniLM embeddings or the null embedding.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from audiosds.models.denoiser import EDMDenoiser
from audiosds.models.text import EMBED_DIM, TextEncoder, TextEncoderConfig
from audiosds.models.weights import EmbeddedWeightsError

from .base import Conditioning, Prior, check_prompts


class TextDenoiserPrior(Prior):
    """A Prior whose ``denoiser`` is a MiniLM-conditioned EDM network; a subclass supplies
    encode / decode and calls :meth:`_use_denoiser` in its constructor."""

    denoiser: EDMDenoiser

    def _use_denoiser(self, denoiser: EDMDenoiser, text_model_dir: str | None) -> None:
        """Take the denoiser, its sigma range and sigma_data, and the (lazily loaded) text model.

        Raises:
            EmbeddedWeightsError: the denoiser expects another text width than MiniLM's.
        """
        if denoiser.config.cond_dim != EMBED_DIM:
            raise EmbeddedWeightsError(
                f"embedded prior weights: denoiser.json cond_dim: expected {EMBED_DIM}, "
                f"got {denoiser.config.cond_dim}"
            )
        self.denoiser = denoiser
        self.sigma_min = float(denoiser.config.sigma_min)
        self.sigma_max = float(denoiser.config.sigma_max)
        self.sigma_data = float(denoiser.config.sigma_data)
        # Not a submodule: the frozen text model is loaded on the first embed() and never moved or trained.
        self.text_encoder = TextEncoder(TextEncoderConfig(model_dir=text_model_dir))

    # -- text -------------------------------------------------------------------------
    def _text(self, prompts: Sequence[str]) -> Tensor:
        return self.text_encoder(prompts).to(self.device)

    def embed(self, prompts: Sequence[str], negative: Sequence[str] | None = None) -> Conditioning:
        """MiniLM embeddings of P prompts; the unconditional branch is the trained null embedding,
        or the negative prompts' embeddings when given (P of them)."""
        prompts, negative = check_prompts(prompts, negative)
        if negative is not None:
            uncond = self._text(negative)
        else:
            uncond = self.denoiser.null_embedding(len(prompts)).detach().clone()
        return Conditioning({"text": self._text(prompts)}, {"text": uncond}, prompts, negative)

    # -- the denoiser -----------------------------------------------------------------
    def _denoise_batch(self, z_sigma: Tensor, sigma: Tensor, cond: dict[str, Tensor]) -> Tensor:
        """EDM-preconditioned U-Net on the batch, each row with its own sigma and text row."""
        return self.denoiser(z_sigma, sigma, cond["text"].to(device=z_sigma.device, dtype=z_sigma.dtype))
