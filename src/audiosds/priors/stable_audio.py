"""Stable Audio Open as a Prior: diffusers components from a local folder or the Hugging Face cache.

Stable Audio Open is a v-objective model with sigma_data = 1 (alpha = cos, sigma = sin of the
angle t * pi / 2). On the shared variance-exploding sigma axis (DESIGN.md, "Noise convention"):

    t       = atan(sigma) * 2 / pi                  the DiT's timestep input
    c_in    = 1 / sqrt(1 + sigma^2)                 the DiT sees c_in * z_sigma
    x0_hat  = z_sigma / (1 + sigma^2) - sigma * v / sqrt(1 + sigma^2)

This is the denoiser D(z_sigma, sigma) of Audio-SDS (arXiv 2505.04621) eqs. 4-6, in the
preconditioned form of Karras et al. 2022 with c_skip = 1 / (1 + sigma^2) and
c_out = -sigma / sqrt(1 + sigma^2).

Conditioning. The T5 text embeddings, projected and zeroed on padding tokens, are the
cross-attention tokens; two "seconds" tokens (seconds_start = 0, seconds_end = clip length)
are appended to them and, concatenated along features, form the global token. The clip length
is known only from the latent length T, so :meth:`StableAudioPrior.embed` stores the text part
and :meth:`StableAudioPrior._denoise_batch` adds the seconds part (cached per T). The null
(unconditional) branch zeroes every cross-attention token, seconds included, and keeps the
global token; a negative prompt replaces the text tokens instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Conditioning, Prior
from .diffusers_folder import (
    DIFFUSERS_WEIGHTS,
    TRANSFORMERS_WEIGHTS,
    ModelLoadError,
    check_parts,
    fold_weight_norm,
    lean_loading,
    load_parts,
    locate,
)

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

# What a diffusers-format snapshot must hold. Each entry: a file, or alternatives of which one is enough
# (the first is named in error messages). Weights in safetensors only: pickles are refused unread.
_REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    "": (("model_index.json",),),
    "transformer": (("config.json",), DIFFUSERS_WEIGHTS),
    "vae": (("config.json",), DIFFUSERS_WEIGHTS),
    "projection_model": (("config.json",), DIFFUSERS_WEIGHTS),
    "text_encoder": (("config.json",), TRANSFORMERS_WEIGHTS),
    "tokenizer": (("tokenizer.json", "spiece.model"),),
    "scheduler": (("scheduler_config.json",),),
}
_HUB_PATTERNS = ["model_index.json", *(f"{sub}/*" for sub in _REQUIRED if sub)]


@dataclass(frozen=True)
class StableAudioConfig:
    """Where to load Stable Audio Open from, and how to run it."""

    # A local folder in diffusers format, or a Hugging Face id (downloaded or read from the HF cache).
    model: str = "stabilityai/stable-audio-open-1.0"
    device: str = "cpu"
    dtype: str = "float32"  # one of float32, float16, bfloat16
    # Text tokens per prompt; None takes the tokenizer's model_max_length (128 in the real snapshot).
    max_text_tokens: int | None = None
    sigma_min: float = 0.3  # sampler range of the snapshot's scheduler config
    sigma_max: float = 500.0


def resolve_model_folder(model: str) -> Path:
    """The local diffusers-format folder for ``model`` (a folder, or a Hugging Face id).

    Raises:
        ModelLoadError: the folder lacks parts (all are named) or holds pickled weights, or the
            id can be neither downloaded nor found in the Hugging Face cache (e.g. offline).
    """
    folder = locate(model, _HUB_PATTERNS)
    check_parts(folder, _REQUIRED)
    return folder


class StableAudioPrior(Prior):
    """Stable Audio Open (DiT + Oobleck VAE + T5) on the shared sigma axis.

    Build with :meth:`from_config`; the constructor takes already-loaded components.

    Args:
        transformer: ``diffusers.StableAudioDiTModel`` (predicts v).
        vae: ``diffusers.AutoencoderOobleck``; latents are used unscaled.
        projection_model: ``StableAudioProjectionModel`` (text projection, seconds embedders).
        text_encoder: ``transformers.T5EncoderModel``.
        tokenizer: the T5 tokenizer.
        config: the loading config (sigma range, max text tokens).
    """

    name = "stable-audio-open"

    def __init__(
        self,
        transformer: torch.nn.Module,
        vae: torch.nn.Module,
        projection_model: torch.nn.Module,
        text_encoder: torch.nn.Module,
        tokenizer: object,
        config: StableAudioConfig,
    ) -> None:
        super().__init__()
        self.config = config
        self.transformer = transformer
        self.vae = vae
        self.projection_model = projection_model
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        vae_cfg, dit_cfg = vae.config, transformer.config
        self.sample_rate = int(vae_cfg.sampling_rate)
        self.channels = int(vae_cfg.audio_channels)
        self.latent_channels = int(vae_cfg.decoder_input_channels)
        self.downsampling = math.prod(int(r) for r in vae_cfg.downsampling_ratios)
        self.max_frames = int(dit_cfg.sample_size)
        self.sigma_min = float(config.sigma_min)
        self.sigma_max = float(config.sigma_max)
        self.sigma_data = 1.0
        if dit_cfg.in_channels != self.latent_channels or dit_cfg.out_channels != self.latent_channels:
            raise ModelLoadError(
                f"transformer in/out channels ({dit_cfg.in_channels}, {dit_cfg.out_channels}) do not match "
                f"the VAE's {self.latent_channels} latent channels"
            )
        self.rotary_dim = int(dit_cfg.attention_head_dim) // 2
        max_tokens = config.max_text_tokens or int(tokenizer.model_max_length)
        if not 0 < max_tokens <= 4096:
            raise ValueError(
                f"max_text_tokens: expected 1..4096 (or a tokenizer that sets it), got {max_tokens}"
            )
        self.max_text_tokens = max_tokens
        self._per_length: dict[tuple[int, str, torch.dtype], tuple[Tensor, Tensor, Tensor, Tensor]] = {}
        self.eval()

    # -- loading ----------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: StableAudioConfig) -> StableAudioPrior:
        """Load every component from ``cfg.model`` (see :func:`resolve_model_folder`).

        Raises:
            ModelLoadError: missing parts, an unreachable Hugging Face id, a component that fails
                to load, or a scheduler config that is not the v-objective with sigma_data = 1.
            ValueError: an unknown ``dtype``.
        """
        if cfg.dtype not in _DTYPES:
            raise ValueError(f"dtype: expected one of {sorted(_DTYPES)}, got {cfg.dtype!r}")
        dtype = _DTYPES[cfg.dtype]
        folder = resolve_model_folder(str(cfg.model))
        index = json.loads((folder / "model_index.json").read_text())
        if index.get("_class_name") != "StableAudioPipeline":
            raise ModelLoadError(
                f"model folder {folder}: expected a StableAudioPipeline snapshot, "
                f"got model_index.json _class_name {index.get('_class_name')!r}"
            )
        sched = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
        if (
            sched.get("prediction_type", "v_prediction") != "v_prediction"
            or sched.get("sigma_data", 1.0) != 1.0
        ):
            raise ModelLoadError(
                f"model folder {folder}: expected a v-prediction scheduler with sigma_data 1, got "
                f"prediction_type {sched.get('prediction_type')!r}, sigma_data {sched.get('sigma_data')!r}"
            )

        from diffusers import AutoencoderOobleck, StableAudioDiTModel
        from diffusers.pipelines.stable_audio import StableAudioProjectionModel
        from transformers import AutoTokenizer, T5EncoderModel

        lean = {"dtype": dtype, "low_cpu_mem_usage": lean_loading()}
        loaders = {
            "transformer": lambda p: StableAudioDiTModel.from_pretrained(p, **lean),
            "vae": lambda p: AutoencoderOobleck.from_pretrained(p, **lean),
            "projection_model": lambda p: StableAudioProjectionModel.from_pretrained(p, **lean),
            "text_encoder": lambda p: T5EncoderModel.from_pretrained(p, dtype=dtype),
            "tokenizer": AutoTokenizer.from_pretrained,
        }
        parts = load_parts(folder, loaders)
        fold_weight_norm(parts["vae"])
        prior = cls(config=cfg, **parts)
        return prior.to(cfg.device)

    # -- audio <-> latent -------------------------------------------------------------
    @property
    def max_seconds(self) -> float:
        """Longest clip the DiT accepts (its config's sample_size in latent frames)."""
        return self.max_frames * self.downsampling / self.sample_rate

    def _check_frames(self, frames: int, what: str) -> None:
        if frames > self.max_frames:
            seconds = frames * self.downsampling / self.sample_rate
            raise ValueError(
                f"{what}: expected at most {self.max_frames} latent frames ({self.max_seconds:.2f} s at "
                f"{self.sample_rate} Hz), got {frames} ({seconds:.2f} s)"
            )

    def encode(self, x: Tensor) -> Tensor:
        """Audio -> the VAE posterior mean (deterministic), zero-padded to a whole latent frame.

        Shape:
            x (B, channels, N) -> z (B, latent_channels, ceil(N / downsampling))
        """
        self.check_audio(x)
        frames = self.latent_frames(x.shape[-1])
        self._check_frames(frames, "audio length")
        x = F.pad(x, (0, frames * self.downsampling - x.shape[-1]))  # (B, C, T * hop)
        z = self.vae.encode(x.to(self._dtype)).latent_dist.mean
        return z.to(x.dtype)

    def decode(self, z: Tensor) -> Tensor:
        """Latent -> audio.

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
    def _dtype(self) -> torch.dtype:
        return _DTYPES[self.config.dtype]

    # -- text -------------------------------------------------------------------------
    @torch.no_grad()
    def _text_tokens(self, prompts: list[str]) -> Tensor:
        """Projected T5 embeddings, zero on padding tokens.

        Shape:
            P prompts -> (P, max_text_tokens, conditioning_dim)
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
        hidden = self.text_encoder(ids, attention_mask=mask).last_hidden_state
        text = self.projection_model(text_hidden_states=hidden).text_hidden_states
        return text * mask.unsqueeze(-1).to(text.dtype)

    def embed(self, prompts: Sequence[str], negative: Sequence[str] | None = None) -> Conditioning:
        """Embed P prompts; the unconditional branch is the null prompt or the P negative prompts.

        Returns a :class:`Conditioning` with keys ``text`` (P, L, D) — the cross-attention text
        tokens — and ``cross_seconds`` (P,) — 1 keeps the seconds tokens in cross-attention,
        0 zeroes them (the null branch, whose text tokens are zero too).
        """
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise ValueError(f"prompts: expected a non-empty sequence of strings, got {prompts!r}")
        text = self._text_tokens(prompts)
        ones = torch.ones(len(prompts), device=text.device, dtype=text.dtype)
        if negative is None:
            uncond = {"text": torch.zeros_like(text), "cross_seconds": torch.zeros_like(ones)}
            neg_list = None
        else:
            neg_list = [negative] if isinstance(negative, str) else list(negative)
            if len(neg_list) != len(prompts) or not all(isinstance(p, str) for p in neg_list):
                raise ValueError(f"negative: expected {len(prompts)} strings, got {neg_list!r}")
            uncond = {"text": self._text_tokens(neg_list), "cross_seconds": ones.clone()}
        return Conditioning({"text": text, "cross_seconds": ones}, uncond, prompts, neg_list)

    # -- the denoiser -----------------------------------------------------------------
    def _length_inputs(self, frames: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Seconds tokens and rotary tables for a clip of ``frames`` latent frames, cached per length.

        Returns:
            seconds_start (1, 1, D), seconds_end (1, 1, D), rotary cos and sin (frames + 1, head_dim).
        """
        key = (frames, str(self.device), self._dtype)
        if key not in self._per_length:
            from diffusers.models.embeddings import get_1d_rotary_pos_embed

            seconds_end = frames * self.downsampling / self.sample_rate
            with torch.no_grad():
                out = self.projection_model(
                    start_seconds=torch.zeros(1, device=self.device),
                    end_seconds=torch.full((1,), seconds_end, device=self.device),
                )
            # One rotary position per latent frame plus the prepended global token.
            cos, sin = get_1d_rotary_pos_embed(
                self.rotary_dim, frames + 1, use_real=True, repeat_interleave_real=False
            )
            self._per_length[key] = (
                out.seconds_start_hidden_states,
                out.seconds_end_hidden_states,
                cos.to(self.device),
                sin.to(self.device),
            )
        return self._per_length[key]

    def _denoise_batch(self, z_sigma: Tensor, sigma: Tensor, cond: dict[str, Tensor]) -> Tensor:
        """x0_hat from one v-prediction forward (module docstring; Audio-SDS eqs. 5-6 use it).

        Shape:
            z_sigma (B, D, T), sigma (B,), cond["text"] (B, L, Dc), cond["cross_seconds"] (B,)
            -> x0_hat (B, D, T)
        """
        self._check_latent(z_sigma, "z_sigma")
        batch, _, frames = z_sigma.shape
        start, end, cos, sin = self._length_inputs(frames)
        # 1. conditioning: text tokens + seconds tokens (zeroed in the null branch); global token
        keep = cond["cross_seconds"].to(self._dtype)[:, None, None]  # (B, 1, 1)
        seconds = torch.cat([start, end], dim=1).expand(batch, -1, -1)  # (B, 2, Dc)
        cross = torch.cat([cond["text"].to(self._dtype), seconds * keep], dim=1)  # (B, L + 2, Dc)
        global_token = torch.cat([start, end], dim=2).expand(batch, -1, -1)  # (B, 1, 2 Dc)
        # 2. precondition: c_in and the DiT's time t = atan(sigma) * 2 / pi
        s = sigma.to(torch.float64)[:, None, None]  # (B, 1, 1)
        c_in = (1.0 / torch.sqrt(1.0 + s**2)).to(z_sigma.dtype)
        t = (torch.atan(sigma.to(torch.float64)) * 2.0 / math.pi).to(self._dtype)  # (B,)
        # 3. v prediction
        v = self.transformer(
            (c_in * z_sigma).to(self._dtype),
            t,
            encoder_hidden_states=cross,
            global_hidden_states=global_token,
            rotary_embedding=(cos, sin),
            return_dict=False,
        )[0].to(z_sigma.dtype)
        # 4. x0_hat = c_skip * z_sigma + c_out * v
        c_skip = (1.0 / (1.0 + s**2)).to(z_sigma.dtype)
        c_out = (-s / torch.sqrt(1.0 + s**2)).to(z_sigma.dtype)
        return c_skip * z_sigma + c_out * v

    # -- the backend's own time variable ----------------------------------------------
    def sigma_of_t(self, t: Tensor) -> Tensor:
        """sigma = tan(t * pi / 2): the v-objective angle t in [0, 1] onto the sigma axis."""
        t = torch.as_tensor(t, dtype=torch.float64)
        return torch.tan(t * (math.pi / 2))

    def t_of_sigma(self, sigma: Tensor) -> Tensor:
        """t = atan(sigma) * 2 / pi, the inverse of :meth:`sigma_of_t` (and the DiT's timestep)."""
        sigma = torch.as_tensor(sigma, dtype=torch.float64)
        return torch.atan(sigma) * (2 / math.pi)
