"""Stable Audio 3 as a Prior: diffusers components (``StableAudio3Pipeline``) from a local folder or id.

Stable Audio 3 is a rectified-flow model: at flow time t in [0, 1] its latent is
``x_t = (1 - t) x0 + t eps`` and its DiT predicts the velocity ``v = eps - x0``. On the shared
variance-exploding sigma axis (DESIGN.md, "Noise convention"), with z_sigma = x0 + sigma eps:

    sigma   = t / (1 - t)            t = sigma / (1 + sigma)      (the DiT's timestep input)
    x_t     = z_sigma / (1 + sigma)                               (c_in = 1 / (1 + sigma))
    x0_hat  = x_t - t * v            = z_sigma / (1 + sigma) - sigma / (1 + sigma) * v

i.e. the Karras et al. 2022 preconditioning with c_skip = c_in = 1 / (1 + sigma) and
c_out = -sigma / (1 + sigma). The pipeline's sampling range, log-SNR in [logsnr_min, logsnr_max]
with t = sigmoid(-logsnr), is sigma = exp(-logsnr) in [e^-2, e^6.2] = [0.135, 493] by default.
Flow time 1 (pure noise) lies at sigma = infinity; :meth:`StableAudio3Prior.sigma_of_t` stops at
``1 / MIN_ONE_MINUS_T``.

A deterministic Euler step of the flow, ``x_t' = x_t + (t' - t) v``, is the DDIM step
``z' = x0_hat + (sigma' / sigma) (z_sigma - x0_hat)`` of :mod:`audiosds.sampling`, so the project's
samplers reproduce the pipeline's non-stochastic scheduler.

Conditioning, as ``StableAudio3Pipeline`` builds it: the T5Gemma hidden states of the prompt padded to
``min(tokenizer.model_max_length, 256)`` tokens, with their attention mask (the DiT swaps padded positions
for a learned padding embedding), plus one duration token, the ``duration_embedder`` output for the clip
length, appended to the cross-attention context and used as the global (AdaLN) input. The clip length is
known from the latent length T only, so :meth:`StableAudio3Prior.embed` stores the text part and
:meth:`StableAudio3Prior._denoise_batch` adds the duration part (cached per T). The unconditional branch
is the pipeline's: the empty prompt ``""`` with the same duration; a negative prompt replaces it.

Guidance. The released ``stable-audio-3-medium`` is adversarially distilled with guidance baked in:
its pipeline runs it at ``guidance_scale = 1`` with a stochastic "ping-pong" scheduler
(``stochastic_sampling = True`` in the scheduler config, exposed here as ``guidance_distilled``). With such
a checkpoint ``cfg_scale = 1`` is the model as released and larger values extrapolate past it; the
non-distilled base checkpoint takes ordinary classifier-free guidance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Conditioning, Prior, check_prompts
from .diffusers_folder import (
    DIFFUSERS_WEIGHTS,
    TRANSFORMERS_WEIGHTS,
    ModelLoadError,
    check_parts,
    expect_pipeline,
    fold_weight_norm,
    lean_loading,
    load_parts,
    locate,
    read_json,
)

PIPELINE = "StableAudio3Pipeline"
MAX_TEXT_TOKENS = 256  # the pipeline caps T5Gemma's context at 256 tokens whatever the tokenizer says
MIN_ONE_MINUS_T = 1e-12  # sigma_of_t(1) = 1e12 instead of infinity

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_PARTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "": (("model_index.json",),),
    "transformer": (("config.json",), DIFFUSERS_WEIGHTS),
    "vae": (("config.json",), DIFFUSERS_WEIGHTS),
    "duration_embedder": (("config.json",), DIFFUSERS_WEIGHTS),
    "text_encoder": (("config.json",), TRANSFORMERS_WEIGHTS),
    "tokenizer": (("tokenizer.json", "tokenizer.model"),),
    "scheduler": (("scheduler_config.json",),),
}
_HUB_PATTERNS = ["model_index.json", *(f"{sub}/*" for sub in _PARTS if sub)]


@dataclass(frozen=True)
class StableAudio3Config:
    """Where to load Stable Audio 3 from, and how to run it."""

    # A local folder in diffusers format (StableAudio3Pipeline), or a Hugging Face id.
    model: str = "stabilityai/stable-audio-3-medium"
    device: str = "cpu"
    dtype: str = "float32"  # one of float32, float16, bfloat16
    # Text tokens per prompt; None takes the pipeline's min(tokenizer.model_max_length, 256).
    max_text_tokens: int | None = None
    # The pipeline's default sampling range in log-SNR (t = sigmoid(-logsnr)): sigma = exp(-logsnr).
    logsnr_min: float = -6.2
    logsnr_max: float = 2.0


class StableAudio3Prior(Prior):
    """Stable Audio 3 (rectified-flow DiT + SAME autoencoder + T5Gemma) on the shared sigma axis.

    Build with :meth:`from_config`; the constructor takes already-loaded components.

    Args:
        transformer: ``diffusers.StableAudio3DiTModel`` (predicts the velocity eps - x0).
        vae: ``diffusers.AutoencoderSAME``; its latents are used as they come (its bottleneck normalises).
        duration_embedder: ``StableAudio3DurationEmbedder`` (seconds -> global conditioning vector).
        text_encoder: ``transformers.T5GemmaEncoderModel``.
        tokenizer: the Gemma tokenizer.
        config: the loading config (sigma range, max text tokens).
        timestep_scale: the scheduler's ``num_train_timesteps``: the DiT sees t times this (1 in the
            real snapshots, whose DiT takes t in [0, 1]).
        guidance_distilled: the scheduler config asks for stochastic ("ping-pong") sampling, as for the
            distilled checkpoint whose guidance is baked in.
    """

    name = "stable-audio-3"

    def __init__(
        self,
        transformer: torch.nn.Module,
        vae: torch.nn.Module,
        duration_embedder: torch.nn.Module,
        text_encoder: torch.nn.Module,
        tokenizer: object,
        config: StableAudio3Config,
        timestep_scale: float = 1.0,
        guidance_distilled: bool = False,
    ) -> None:
        super().__init__()
        self.config = config
        self.transformer = transformer
        self.vae = vae
        self.duration_embedder = duration_embedder
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.timestep_scale = float(timestep_scale)
        self.guidance_distilled = bool(guidance_distilled)
        vae_cfg, dit_cfg = vae.config, transformer.config
        self.sample_rate = int(vae_cfg.sampling_rate)
        self.channels = int(vae_cfg.audio_channels)
        self.latent_channels = int(vae_cfg.latent_dim)
        self.downsampling = int(vae.downsampling_ratio)
        if not config.logsnr_min < config.logsnr_max:
            raise ValueError(
                f"logsnr_min, logsnr_max: expected logsnr_min < logsnr_max, got {config.logsnr_min}, "
                f"{config.logsnr_max}"
            )
        self.sigma_min = math.exp(-config.logsnr_max)
        self.sigma_max = math.exp(-config.logsnr_min)
        self.sigma_data = 1.0
        if int(dit_cfg.io_channels) != self.latent_channels:
            raise ModelLoadError(
                f"transformer io_channels {dit_cfg.io_channels} does not match the VAE's "
                f"{self.latent_channels} latent channels"
            )
        width = int(text_encoder.config.encoder.hidden_size)
        if width != int(dit_cfg.cond_token_dim) or int(duration_embedder.config.output_dim) != width:
            raise ModelLoadError(
                f"text width {width}, duration embedding {duration_embedder.config.output_dim} and the "
                f"transformer's cond_token_dim {dit_cfg.cond_token_dim} must agree"
            )
        max_tokens = config.max_text_tokens or min(int(tokenizer.model_max_length), MAX_TEXT_TOKENS)
        if not 0 < max_tokens <= 4096:
            raise ValueError(f"max_text_tokens: expected 1..4096, got {max_tokens}")
        self.max_text_tokens = max_tokens
        self._per_length: dict[tuple[int, str, torch.dtype], Tensor] = {}
        self.eval()

    # -- loading ----------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: StableAudio3Config) -> StableAudio3Prior:
        """Load every component of a ``StableAudio3Pipeline`` snapshot from ``cfg.model``.

        Raises:
            ModelLoadError: missing or pickled parts, another pipeline, an unreachable id, or a
                component that fails to load.
            ValueError: an unknown ``dtype``.
        """
        if cfg.dtype not in _DTYPES:
            raise ValueError(f"dtype: expected one of {sorted(_DTYPES)}, got {cfg.dtype!r}")
        dtype = _DTYPES[cfg.dtype]
        folder = locate(str(cfg.model), _HUB_PATTERNS)
        expect_pipeline(folder, PIPELINE)
        check_parts(folder, _PARTS)
        sched = read_json(folder / "scheduler" / "scheduler_config.json")

        from diffusers import AutoencoderSAME, StableAudio3DiTModel
        from diffusers.pipelines.stable_audio_3.modeling_stable_audio_3 import StableAudio3DurationEmbedder
        from transformers import AutoTokenizer, T5GemmaEncoderModel

        safe = {"dtype": dtype, "use_safetensors": True}
        lean = {**safe, "low_cpu_mem_usage": lean_loading()}  # diffusers components
        loaders = {
            "transformer": lambda p: StableAudio3DiTModel.from_pretrained(p, **lean),
            "vae": lambda p: AutoencoderSAME.from_pretrained(p, **lean),
            "duration_embedder": lambda p: StableAudio3DurationEmbedder.from_pretrained(p, **lean),
            "text_encoder": lambda p: T5GemmaEncoderModel.from_pretrained(p, **safe),
            "tokenizer": AutoTokenizer.from_pretrained,
        }
        parts = load_parts(folder, loaders)
        fold_weight_norm(parts["vae"])
        # the distilled checkpoint's sampler: stochastic_sampling, or PingPongScheduler in newer diffusers
        distilled = bool(sched.get("stochastic_sampling")) or sched.get("_class_name") == "PingPongScheduler"
        prior = cls(
            config=cfg,
            timestep_scale=float(sched.get("num_train_timesteps", 1)),
            guidance_distilled=distilled,
            **parts,
        )
        return prior.to(cfg.device)

    # -- audio <-> latent -------------------------------------------------------------
    def encode(self, x: Tensor) -> Tensor:
        """Audio -> SAME latent, zero-padded to a whole latent frame. Differentiable.

        Shape:
            x (B, channels, N) -> z (B, latent_channels, ceil(N / downsampling))
        """
        self.check_audio(x)
        frames = self.latent_frames(x.shape[-1])
        self._check_frames(frames, "audio length")
        x = F.pad(x, (0, frames * self.downsampling - x.shape[-1]))  # (B, C, T * hop)
        return self.vae.encode(x.to(self._dtype)).latents.to(x.dtype)

    def decode(self, z: Tensor) -> Tensor:
        """Latent -> audio (unclamped, so gradients pass everywhere). Differentiable.

        Shape:
            z (B, latent_channels, T) -> x (B, channels, T * downsampling)
        """
        self._check_latent(z, "z")
        return self.vae.decode(z.to(self._dtype)).sample.to(z.dtype)

    def _check_latent(self, z: Tensor, what: str) -> None:
        if z.ndim != 3 or z.shape[1] != self.latent_channels:
            raise ValueError(f"{what}: expected (B, {self.latent_channels}, T), got {tuple(z.shape)}")
        self._check_frames(z.shape[-1], f"{what} length")

    @property
    def max_seconds(self) -> float:
        """Longest clip the duration conditioning tells apart (the duration embedder clamps above it)."""
        return float(self.duration_embedder.config.max_val)

    def _check_frames(self, frames: int, what: str) -> None:
        seconds = frames * self.downsampling / self.sample_rate
        if seconds > self.max_seconds:
            raise ValueError(
                f"{what}: expected at most {self.max_seconds:g} s (the duration embedder's range), "
                f"got {frames} latent frames ({seconds:.2f} s)"
            )

    @property
    def _dtype(self) -> torch.dtype:
        return _DTYPES[self.config.dtype]

    # -- text -------------------------------------------------------------------------
    @torch.no_grad()
    def _text_tokens(self, prompts: list[str]) -> tuple[Tensor, Tensor]:
        """T5Gemma hidden states and attention mask, padded as the pipeline pads them.

        Shape:
            P prompts -> (P, max_text_tokens, width), (P, max_text_tokens)
        """
        tokens = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.max_text_tokens,
            truncation=True,
            return_tensors="pt",
        )
        ids = tokens.input_ids.to(self.device)
        mask = tokens.attention_mask.to(self.device)
        return self.text_encoder(ids, attention_mask=mask)[0], mask

    def embed(self, prompts: Sequence[str], negative: Sequence[str] | None = None) -> Conditioning:
        """Embed P prompts; the unconditional branch is the empty prompt or the P negative prompts.

        Returns a :class:`Conditioning` with keys ``text`` (P, L, width), the T5Gemma states, and
        ``mask`` (P, L), 1 on real tokens.
        """
        prompts, negative = check_prompts(prompts, negative)
        text, mask = self._text_tokens(prompts)
        other_text, other_mask = self._text_tokens(negative or [""] * len(prompts))
        return Conditioning(
            {"text": text, "mask": mask}, {"text": other_text, "mask": other_mask}, prompts, negative
        )

    # -- the denoiser -----------------------------------------------------------------
    def duration_token(self, frames: int) -> Tensor:
        """The duration embedding of a clip of ``frames`` latent frames, cached per length.

        Shape:
            -> (1, width)
        """
        key = (frames, str(self.device), self._dtype)
        if key not in self._per_length:
            seconds = frames * self.downsampling / self.sample_rate
            with torch.no_grad():
                self._per_length[key] = self.duration_embedder(
                    torch.full((1,), seconds, device=self.device)
                ).to(self._dtype)
        return self._per_length[key]

    def _denoise_batch(self, z_sigma: Tensor, sigma: Tensor, cond: dict[str, Tensor]) -> Tensor:
        """x0_hat from one velocity forward (module docstring; Audio-SDS eqs. 4-6 use it).

        Shape:
            z_sigma (B, D, T), sigma (B,), cond["text"] (B, L, W), cond["mask"] (B, L) -> x0_hat (B, D, T)
        """
        self._check_latent(z_sigma, "z_sigma")
        batch, _, frames = z_sigma.shape
        # 1. conditioning: text tokens + the duration token (always attended), duration as global input
        duration = self.duration_token(frames)  # (1, W)
        context = torch.cat([cond["text"].to(self._dtype), duration[:, None].expand(batch, -1, -1)], dim=1)
        mask = torch.cat([cond["mask"], cond["mask"].new_ones(batch, 1)], dim=1)  # (B, L + 1)
        # 2. onto the flow: t = sigma / (1 + sigma), x_t = z_sigma / (1 + sigma)
        s = sigma.to(torch.float64)
        t = s / (1.0 + s)  # (B,)
        x_t = z_sigma / (1.0 + s).to(z_sigma.dtype)[:, None, None]
        # 3. velocity v = eps - x0
        v = self.transformer(
            x_t.to(self._dtype),
            (t * self.timestep_scale).to(torch.float32),
            encoder_hidden_states=context,
            global_hidden_states=duration.expand(batch, -1),
            encoder_attention_mask=mask,
            return_dict=False,
        )[0].to(z_sigma.dtype)
        # 4. x0_hat = x_t - t * v
        return x_t - t.to(z_sigma.dtype)[:, None, None] * v

    # -- the backend's own time variable ----------------------------------------------
    def sigma_of_t(self, t: Tensor) -> Tensor:
        """sigma = t / (1 - t): flow time t in [0, 1] onto the sigma axis (t = 1 stops at 1e12)."""
        t = torch.as_tensor(t, dtype=torch.float64)
        return t / torch.clamp(1.0 - t, min=MIN_ONE_MINUS_T)

    def t_of_sigma(self, sigma: Tensor) -> Tensor:
        """t = sigma / (1 + sigma), the inverse of :meth:`sigma_of_t` (and the DiT's timestep)."""
        sigma = torch.as_tensor(sigma, dtype=torch.float64)
        return sigma / (1.0 + sigma)
