"""AudioLDM 2 as a Prior: diffusers components (``AudioLDM2Pipeline``) from a local folder or id.

AudioLDM 2 is a latent diffusion model over log-mel spectrograms: audio -> log-mel (16 kHz, 64 mels,
hop 160) -> a KL autoencoder (4x down in time and frequency, 8 channels, times ``scaling_factor``)
-> a UNet that predicts the noise eps on a variance-preserving DDPM schedule alpha_bar(n),
n = 0 .. N - 1. On the shared variance-exploding sigma axis (DESIGN.md, "Noise convention"):

    sigma   = sqrt((1 - alpha_bar) / alpha_bar)
    x_n     = sqrt(alpha_bar) z_sigma = z_sigma / sqrt(1 + sigma^2)     (c_in, the UNet's input)
    x0_hat  = z_sigma - sigma * eps_hat                                  (c_skip = 1, c_out = -sigma)

A sigma between two of the schedule's levels takes the timestep interpolated linearly in log sigma
(k-diffusion's ``DiscreteSchedule``); the levels themselves map to their integer timesteps exactly.
The DDIM step with eta = 0, ``x' = sqrt(abar') x0_hat + sqrt(1 - abar') eps_hat``, is the step
``z' = x0_hat + (sigma' / sigma) (z_sigma - x0_hat)`` of :mod:`audiosds.sampling`, so the project's
samplers reproduce the pipeline's deterministic scheduler.

Latents. The UNet's latent (B, 8, T, 16) (channels, time, mel/4) is seen here as (B, 8 * 16, T): the
frequency rows are folded into channels, time stays last, as every Prior's latent is (B, D, T).

encode / decode. ``encode`` is the log-mel front end AudioLDM was trained on (reflect-padded STFT,
n_fft 1024, Hann 1024, Slaney mels 0-8 kHz, ``log(max(mel, 1e-5))``; ``models.mel.MelSpectrogram``)
followed by the VAE encoder's posterior mean; ``decode`` is the pipeline's own post-processing, the
VAE decoder then the SpeechT5 HiFi-GAN vocoder. Audio is mono at 16 kHz, 640 samples per latent frame.

Conditioning is the pipeline's ``encode_prompt``: CLAP's pooled text embedding and Flan-T5's hidden
states, projected and continued by the GPT-2 language model for ``max_new_tokens`` steps; the UNet
attends to the GPT-2 states and to the T5 states (with their mask). The unconditional branch is the
pipeline's, the empty prompt ``""`` through the same chain; a negative prompt replaces it.

The ``cvssp/audioldm2`` snapshots name ``GPT2Model`` as their language model, which current
transformers cannot run through the pipeline's generation loop; its weights load into
``GPT2LMHeadModel`` (same body, tied head) here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..models.mel import MelConfig, MelSpectrogram
from .base import Conditioning, Prior, check_prompts
from .diffusers_folder import (
    DIFFUSERS_WEIGHTS,
    TRANSFORMERS_WEIGHTS,
    ModelLoadError,
    check_parts,
    expect_pipeline,
    lean_loading,
    load_parts,
    locate,
    read_json,
)

PIPELINE = "AudioLDM2Pipeline"
SNAP_STEPS = 1e-3  # a timestep this close to an integer is that integer (float32 round-off of sigma)

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_PARTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "": (("model_index.json",),),
    "unet": (("config.json",), DIFFUSERS_WEIGHTS),
    "vae": (("config.json",), DIFFUSERS_WEIGHTS),
    "projection_model": (("config.json",), DIFFUSERS_WEIGHTS),
    "text_encoder": (("config.json",), TRANSFORMERS_WEIGHTS),
    "text_encoder_2": (("config.json",), TRANSFORMERS_WEIGHTS),
    "language_model": (("config.json",), TRANSFORMERS_WEIGHTS),
    "vocoder": (("config.json",), TRANSFORMERS_WEIGHTS),
    "tokenizer": (("tokenizer.json", "vocab.json"),),
    "tokenizer_2": (("tokenizer.json", "spiece.model"),),
    "scheduler": (("scheduler_config.json",),),
}
_HUB_PATTERNS = ["model_index.json", *(f"{sub}/*" for sub in _PARTS if sub)]


@dataclass(frozen=True)
class AudioLDM2Config:
    """Where to load AudioLDM 2 from, and how to run it."""

    # A local folder in diffusers format (AudioLDM2Pipeline), or a Hugging Face id.
    model: str = "cvssp/audioldm2"
    device: str = "cpu"
    dtype: str = "float32"  # one of float32, float16, bfloat16
    # AudioLDM's mel front end; the sample rate, hop and mel count are read from the vocoder's config.
    n_fft: int = 1024
    fmax_hz: float = 8000.0


class AudioLDM2Prior(Prior):
    """AudioLDM 2 (mel VAE + UNet + CLAP/T5/GPT-2 conditioning + HiFi-GAN) on the shared sigma axis.

    Build with :meth:`from_config`; the constructor takes already-loaded components (``parts``: the
    ``AudioLDM2Pipeline`` components ``vae``, ``unet``, ``text_encoder``, ``text_encoder_2``,
    ``projection_model``, ``language_model``, ``tokenizer``, ``tokenizer_2``, ``vocoder``).

    Args:
        alphas_cumprod: the training schedule's alpha_bar(n), (N,).
        config: the loading config.
        parts: the pipeline components.
    """

    name = "audioldm2"

    def __init__(self, alphas_cumprod: Tensor, config: AudioLDM2Config, **parts: object) -> None:
        super().__init__()
        from diffusers import AudioLDM2Pipeline

        self.config = config
        self.vae = parts["vae"]
        self.unet = parts["unet"]
        self.vocoder = parts["vocoder"]
        self.text_encoder = parts["text_encoder"]
        self.text_encoder_2 = parts["text_encoder_2"]
        self.projection_model = parts["projection_model"]
        self.language_model = parts["language_model"]
        # The pipeline object lends its prompt encoding (encode_prompt); its modules are the ones above.
        self._pipe = AudioLDM2Pipeline(feature_extractor=None, scheduler=None, **parts)
        vocoder_cfg, vae_cfg = self.vocoder.config, self.vae.config
        self.vae_scale = 2 ** (len(vae_cfg.block_out_channels) - 1)
        self.scaling_factor = float(vae_cfg.scaling_factor)
        hop = int(torch.tensor(vocoder_cfg.upsample_rates).prod())
        mels = int(vocoder_cfg.model_in_dim)
        if mels % self.vae_scale:
            raise ModelLoadError(
                f"vocoder mel bins {mels} are not divisible by the VAE's scale {self.vae_scale}"
            )
        self.mel = MelSpectrogram(
            MelConfig(
                sample_rate=int(vocoder_cfg.sampling_rate),
                n_fft=config.n_fft,
                hop=hop,
                win=config.n_fft,
                n_mels=mels,
                fmax_hz=config.fmax_hz,
            )
        )
        self.sample_rate = int(vocoder_cfg.sampling_rate)
        self.channels = 1
        self.vae_channels = int(vae_cfg.latent_channels)
        self.mel_rows = mels // self.vae_scale  # latent frequency rows
        self.latent_channels = self.vae_channels * self.mel_rows
        self.downsampling = hop * self.vae_scale
        if int(self.unet.config.in_channels) != self.vae_channels:
            raise ModelLoadError(
                f"unet in_channels {self.unet.config.in_channels} does not match the VAE's "
                f"{self.vae_channels} latent channels"
            )
        abar = torch.as_tensor(alphas_cumprod, dtype=torch.float64).cpu()
        self.log_sigmas = 0.5 * torch.log((1 - abar) / abar)  # (N,), increasing; float64 on the CPU
        self.sigma_min = float(self.log_sigmas[0].exp())
        self.sigma_max = float(self.log_sigmas[-1].exp())
        self.sigma_data = 1.0
        self.eval()

    # -- loading ----------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: AudioLDM2Config) -> AudioLDM2Prior:
        """Load every component of an ``AudioLDM2Pipeline`` snapshot from ``cfg.model``.

        Raises:
            ModelLoadError: missing or pickled parts, another pipeline (or the text-to-speech variant),
                a scheduler that does not predict the noise, an unreachable id, or a component that fails
                to load.
            ValueError: an unknown ``dtype``.
        """
        if cfg.dtype not in _DTYPES:
            raise ValueError(f"dtype: expected one of {sorted(_DTYPES)}, got {cfg.dtype!r}")
        dtype = _DTYPES[cfg.dtype]
        folder = locate(str(cfg.model), _HUB_PATTERNS)
        expect_pipeline(folder, PIPELINE)
        check_parts(folder, _PARTS)
        index = read_json(folder / "model_index.json")
        if index.get("text_encoder_2") != ["transformers", "T5EncoderModel"]:
            raise ModelLoadError(
                f"model folder {folder}: expected a T5EncoderModel text_encoder_2 (the text-to-audio model), "
                f"got {index.get('text_encoder_2')!r}"
            )
        sched = read_json(folder / "scheduler" / "scheduler_config.json")
        if sched.get("prediction_type", "epsilon") != "epsilon":
            raise ModelLoadError(
                f"model folder {folder}: expected an epsilon-prediction scheduler, got prediction_type "
                f"{sched.get('prediction_type')!r}"
            )

        from diffusers import (
            AudioLDM2ProjectionModel,
            AudioLDM2UNet2DConditionModel,
            AutoencoderKL,
            DDIMScheduler,
        )
        from transformers import AutoTokenizer, ClapModel, GPT2LMHeadModel, SpeechT5HifiGan, T5EncoderModel

        safe = {"dtype": dtype, "use_safetensors": True}
        lean = {**safe, "low_cpu_mem_usage": lean_loading()}  # diffusers components
        loaders = {
            "vae": lambda p: AutoencoderKL.from_pretrained(p, **lean),
            "unet": lambda p: AudioLDM2UNet2DConditionModel.from_pretrained(p, **lean),
            "projection_model": lambda p: AudioLDM2ProjectionModel.from_pretrained(p, **lean),
            "text_encoder": lambda p: ClapModel.from_pretrained(p, **safe),
            "text_encoder_2": lambda p: T5EncoderModel.from_pretrained(p, **safe),
            "language_model": lambda p: GPT2LMHeadModel.from_pretrained(p, **safe),
            "vocoder": lambda p: SpeechT5HifiGan.from_pretrained(p, **safe),
            "tokenizer": AutoTokenizer.from_pretrained,
            "tokenizer_2": AutoTokenizer.from_pretrained,
        }
        parts = load_parts(folder, loaders)
        # alpha_bar(n) from the training betas in the config, whichever DDPM-family class it names
        scheduler = load_parts(folder, {"scheduler": DDIMScheduler.from_pretrained})["scheduler"]
        prior = cls(alphas_cumprod=scheduler.alphas_cumprod, config=cfg, **parts)
        return prior.to(cfg.device)

    # -- audio <-> latent -------------------------------------------------------------
    def _fold(self, latent: Tensor) -> Tensor:
        """UNet latent (B, C, T, F) -> (B, C * F, T)."""
        batch, channels, frames, rows = latent.shape
        return latent.permute(0, 1, 3, 2).reshape(batch, channels * rows, frames)

    def _unfold(self, z: Tensor) -> Tensor:
        """(B, C * F, T) -> UNet latent (B, C, T, F)."""
        batch, _, frames = z.shape
        return z.reshape(batch, self.vae_channels, self.mel_rows, frames).permute(0, 1, 3, 2)

    def log_mel(self, x: Tensor) -> Tensor:
        """The front end: audio zero-padded to a whole latent frame -> AudioLDM's log-mel.

        Shape:
            x (B, 1, N) -> (B, ceil(N / downsampling) * vae_scale, n_mels)
        """
        self.check_audio(x)
        frames = self.latent_frames(x.shape[-1])
        x = F.pad(x, (0, frames * self.downsampling - x.shape[-1]))  # (B, 1, T * hop)
        return self.mel.log_mel(x).transpose(1, 2)  # (B, T * vae_scale, n_mels)

    def encode(self, x: Tensor) -> Tensor:
        """Audio -> log-mel -> the VAE posterior mean, scaled. Differentiable.

        Shape:
            x (B, 1, N) -> z (B, latent_channels, ceil(N / downsampling))
        """
        mel = self.log_mel(x)[:, None]  # (B, 1, T', n_mels)
        latent = self.vae.encode(mel.to(self._dtype)).latent_dist.mean * self.scaling_factor
        return self._fold(latent).to(x.dtype)

    def decode(self, z: Tensor) -> Tensor:
        """Latent -> VAE decoder -> log-mel -> vocoder -> audio, as the pipeline decodes. Differentiable.

        Shape:
            z (B, latent_channels, T) -> x (B, 1, T * downsampling)
        """
        self._check_latent(z, "z")
        mel = self.vae.decode(self._unfold(z.to(self._dtype)) / self.scaling_factor).sample  # (B, 1, T', M)
        audio = self.vocoder(mel[:, 0])[:, None]  # (B, 1, >= T * downsampling): odd rates overshoot a little
        return audio[..., : z.shape[-1] * self.downsampling].to(z.dtype)

    def _check_latent(self, z: Tensor, what: str) -> None:
        if z.ndim != 3 or z.shape[1] != self.latent_channels:
            raise ValueError(f"{what}: expected (B, {self.latent_channels}, T), got {tuple(z.shape)}")

    @property
    def _dtype(self) -> torch.dtype:
        return _DTYPES[self.config.dtype]

    # -- text -------------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, prompts: Sequence[str], negative: Sequence[str] | None = None) -> Conditioning:
        """Embed P prompts through the pipeline's ``encode_prompt`` (CLAP + T5 -> GPT-2); the unconditional
        branch is the empty prompt or the P negative prompts.

        Returns a :class:`Conditioning` with keys ``t5`` (P, L, D1), ``t5_mask`` (P, L) and
        ``generated`` (P, max_new_tokens, D2), the GPT-2 states.
        """
        prompts, negative = check_prompts(prompts, negative)
        t5, mask, generated = self._pipe.encode_prompt(
            prompts, self.device, 1, True, negative_prompt=negative
        )  # (2P, ...): the unconditional half first
        p = len(prompts)
        both = {"t5": t5, "t5_mask": mask, "generated": generated}
        return Conditioning(
            {k: v[p:] for k, v in both.items()}, {k: v[:p] for k, v in both.items()}, prompts, negative
        )

    # -- the denoiser -----------------------------------------------------------------
    def _steps(self, sigma: Tensor) -> Tensor:
        """Fractional timestep n in [0, N - 1] of each sigma, linear in log sigma between levels.

        Shape:
            sigma (...) -> (...) float64 on the CPU
        """
        ls = torch.log(torch.as_tensor(sigma, dtype=torch.float64).cpu())
        last = len(self.log_sigmas) - 1
        hi = torch.searchsorted(self.log_sigmas, ls.reshape(-1)).reshape(ls.shape).clamp(1, last)
        w = (ls - self.log_sigmas[hi - 1]) / (self.log_sigmas[hi] - self.log_sigmas[hi - 1])
        return (hi - 1 + w).clamp(0, last)

    def timestep(self, sigma: Tensor) -> Tensor:
        """The UNet's timestep for each sigma: :meth:`_steps`, snapped to an integer within SNAP_STEPS
        of one (the schedule's own levels reach the UNet as the integers the pipeline passes).

        Shape:
            sigma (B,) -> (B,) float64 on the CPU
        """
        n = self._steps(sigma)
        nearest = n.round()
        return torch.where((n - nearest).abs() < SNAP_STEPS, nearest, n)

    def _denoise_batch(self, z_sigma: Tensor, sigma: Tensor, cond: dict[str, Tensor]) -> Tensor:
        """x0_hat from one noise-prediction forward (module docstring; Audio-SDS eqs. 4-6 use it).

        Shape:
            z_sigma (B, D, T), sigma (B,), cond["t5"] (B, L, D1), cond["t5_mask"] (B, L),
            cond["generated"] (B, G, D2) -> x0_hat (B, D, T)
        """
        self._check_latent(z_sigma, "z_sigma")
        # 1. onto the VP schedule: x_n = z_sigma / sqrt(1 + sigma^2) at timestep n(sigma)
        s = sigma.to(torch.float64)
        c_in = (1.0 / torch.sqrt(1.0 + s**2)).to(z_sigma.dtype)[:, None, None]
        x_n = self._unfold(c_in * z_sigma)  # (B, C, T, F)
        # 2. noise prediction, attending to the GPT-2 states and to the masked T5 states
        eps_hat = self.unet(
            x_n.to(self._dtype),
            self.timestep(sigma).to(self.device, torch.float32),
            encoder_hidden_states=cond["generated"].to(self._dtype),
            encoder_hidden_states_1=cond["t5"].to(self._dtype),
            encoder_attention_mask_1=cond["t5_mask"],
            return_dict=False,
        )[0]
        # 3. x0_hat = z_sigma - sigma * eps_hat
        return z_sigma - s.to(z_sigma.dtype)[:, None, None] * self._fold(eps_hat.to(z_sigma.dtype))

    # -- the backend's own time variable ----------------------------------------------
    def sigma_of_t(self, t: Tensor) -> Tensor:
        """The training schedule's sigma at timestep t * (N - 1), linear in log sigma between levels."""
        t = torch.as_tensor(t, dtype=torch.float64)
        last = len(self.log_sigmas) - 1
        n = (t.cpu() * last).clamp(0, last)
        lo = n.floor().long().clamp(max=last - 1)
        w = n - lo
        return torch.exp((1 - w) * self.log_sigmas[lo] + w * self.log_sigmas[lo + 1]).to(t.device)

    def t_of_sigma(self, sigma: Tensor) -> Tensor:
        """Inverse of :meth:`sigma_of_t` (timestep / (N - 1), without :meth:`timestep`'s snapping)."""
        sigma = torch.as_tensor(sigma, dtype=torch.float64)
        return (self._steps(sigma) / (len(self.log_sigmas) - 1)).to(sigma.device)
