"""Random Stable Audio Open pipeline folders in the diffusers layout, built offline.

Both have the layout of the ``stabilityai/stable-audio-open-1.0`` snapshot (``model_index.json``
plus ``transformer/``, ``vae/``, ``projection_model/``, ``text_encoder/``, ``tokenizer/``,
``scheduler/``) and the real audio geometry (44.1 kHz stereo, VAE downsampling ratios
2*4*4*8*8 = 2048, 64 latent channels), with a T5 tokenizer built in code;
:class:`audiosds.priors.stable_audio.StableAudioPrior` loads them through exactly the code path
used for the real weights.

- :func:`build_tiny_stable_audio`: tiny widths and depths, for tests.
- :func:`build_sao_shaped`: the widths and depths of :class:`SaoShapedConfig`, for ``perf``.

diffusers and transformers are imported when a folder is built, not with this module.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from transformers import T5Tokenizer

# -- tiny, for tests --------------------------------------------------------------------------------

TINY_MAX_FRAMES = 16  # DiT sample_size: 16 latent frames = 16 * 2048 samples, about 0.74 s
TINY_TEXT_TOKENS = 32  # tokenizer model_max_length (the real snapshot uses 128)

# Words of the paper's prompts get their own pieces; any other lowercase text falls back to letters.
_WORDS = (
    "cars passing by on a busy street traffic road noise saxophone playing melody jazzy bongo drum "
    "rhythmic beat waves crashing rocky shore clanging metal pipes dropping concrete glass breaking "
    "shattering ticking of an old grandfather clock gentle rustling leaves in the wind"
).split()


def _scheduler_config() -> dict[str, object]:
    """The scheduler config of the real snapshot (CosineDPMSolverMultistepScheduler, v-objective,
    sigma_data 1)."""
    import diffusers

    return {
        "_class_name": "CosineDPMSolverMultistepScheduler",
        "_diffusers_version": diffusers.__version__,
        "euler_at_final": False,
        "final_sigmas_type": "zero",
        "lower_order_final": True,
        "num_train_timesteps": 1000,
        "prediction_type": "v_prediction",
        "rho": 7.0,
        "sigma_data": 1.0,
        "sigma_max": 500.0,
        "sigma_min": 0.3,
        "sigma_schedule": "exponential",
        "solver_order": 2,
        "solver_type": "midpoint",
    }


def _model_index() -> dict[str, object]:
    """model_index.json as the real snapshot writes it: component -> [library, class]."""
    import diffusers

    return {
        "_class_name": "StableAudioPipeline",
        "_diffusers_version": diffusers.__version__,
        "projection_model": ["stable_audio", "StableAudioProjectionModel"],
        "scheduler": ["diffusers", "CosineDPMSolverMultistepScheduler"],
        "text_encoder": ["transformers", "T5EncoderModel"],
        "tokenizer": ["transformers", "T5TokenizerFast"],
        "transformer": ["diffusers", "StableAudioDiTModel"],
        "vae": ["diffusers", "AutoencoderOobleck"],
    }


def _tokenizer(max_tokens: int) -> T5Tokenizer:
    """A T5 (unigram) tokenizer over word pieces, letters, digits and a little punctuation."""
    from transformers import T5Tokenizer

    vocab: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [(f"\u2581{w}", -3.0) for w in dict.fromkeys(_WORDS)]
    vocab += [(c, -6.0) for c in "abcdefghijklmnopqrstuvwxyz0123456789,.-'"]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=max_tokens)


def build_tiny_stable_audio(path: Path, seed: int = 0) -> Path:
    """Save a tiny random Stable Audio Open pipeline folder at ``path`` and return ``path``.

    Args:
        path: target folder (created; existing files of the same names are overwritten).
        seed: seeds every weight initialisation; the same seed gives the same weights.

    Returns:
        ``path``, ready for ``StableAudioConfig(model=str(path))``.
    """
    from diffusers import AutoencoderOobleck, StableAudioDiTModel
    from diffusers.pipelines.stable_audio import StableAudioProjectionModel
    from transformers import T5Config, T5EncoderModel

    path = Path(path)
    text_dim, cond_dim = 16, 24  # T5 width != conditioning width, so the text projection is a Linear
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tokenizer = _tokenizer(TINY_TEXT_TOKENS)
        text_encoder = T5EncoderModel(
            T5Config(
                vocab_size=len(tokenizer),
                d_model=text_dim,
                d_kv=8,
                d_ff=32,
                num_layers=1,
                num_heads=2,
                relative_attention_num_buckets=8,
                relative_attention_max_distance=16,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        )
        projection_model = StableAudioProjectionModel(
            text_encoder_dim=text_dim, conditioning_dim=cond_dim, min_value=0, max_value=512
        )
        transformer = StableAudioDiTModel(
            sample_size=TINY_MAX_FRAMES,
            in_channels=64,
            num_layers=1,
            attention_head_dim=8,
            num_attention_heads=2,
            num_key_value_attention_heads=1,
            out_channels=64,
            cross_attention_dim=16,
            time_proj_dim=16,
            global_states_input_dim=2 * cond_dim,  # seconds_start and seconds_end, concatenated
            cross_attention_input_dim=cond_dim,
        )
        vae = AutoencoderOobleck(
            encoder_hidden_size=128,  # the encoder emits mean and scale: 2 * 64 latent channels
            downsampling_ratios=[2, 4, 4, 8, 8],
            channel_multiples=[1, 1, 1, 1, 1],  # real: [1, 2, 4, 8, 16]
            decoder_channels=4,
            decoder_input_channels=64,
            audio_channels=2,
            sampling_rate=44100,
        )
    path.mkdir(parents=True, exist_ok=True)
    transformer.save_pretrained(path / "transformer")
    vae.save_pretrained(path / "vae")
    projection_model.save_pretrained(path / "projection_model")
    text_encoder.save_pretrained(path / "text_encoder")
    tokenizer.save_pretrained(path / "tokenizer")
    # Written by hand as in the real snapshot: instantiating the scheduler class needs torchsde.
    _write_json(path / "scheduler" / "scheduler_config.json", _scheduler_config())
    _write_json(path / "model_index.json", _model_index())
    return path


def _write_json(file: Path, content: dict[str, object]) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")


# -- Stable-Audio-Open-shaped, for perf ------------------------------------------------------------


@dataclass(frozen=True)
class SaoShapedConfig:
    """Widths and depths of the random Stable-Audio-Open-shaped prior (real values in comments).

    The geometry is the real one: 44.1 kHz stereo, VAE strides 2*4*4*8*8 = 2048, 64 latent
    channels; the Oobleck encoder's base width is therefore fixed at 2 * 64 = 128 (it emits the
    posterior mean and scale), as in the real model.
    """

    dit_layers: int = 4  # real 24
    dit_heads: int = 4  # real 24 (x head_dim 64 = 1536 wide)
    dit_kv_heads: int = 2  # real 12
    dit_head_dim: int = 64  # real 64
    cond_dim: int = 128  # text projection / cross-attention input width; real 768
    time_proj_dim: int = 64  # real 256
    max_seconds: float = 32.0  # DiT sample_size in seconds (sets only the longest clip); real 47.55 (1024)
    vae_channel_multiples: tuple[int, ...] = (1, 1, 1, 2, 4)  # real (1, 2, 4, 8, 16)
    vae_decoder_channels: int = 32  # real 128
    t5_layers: int = 2  # real T5-base: 12
    t5_width: int = 128  # real 768
    t5_heads: int = 4  # real 12
    t5_ff: int = 256  # real 3072
    text_tokens: int = 128  # real 128
    seed: int = 0


SAO_SAMPLE_RATE = 44100
SAO_LATENT_CHANNELS = 64
SAO_STRIDES = (2, 4, 4, 8, 8)


def count_parameters(module: torch.nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


def sao_parameter_counts(
    transformer: torch.nn.Module, vae: torch.nn.Module, text_encoder: torch.nn.Module
) -> dict[str, tuple[int, int]]:
    """(real Stable Audio Open 1.0, given) parameter counts per component; the real ones are
    built on the meta device from the diffusers / transformers defaults (T5-base for the text)."""
    from diffusers import AutoencoderOobleck, StableAudioDiTModel
    from transformers import T5Config, T5EncoderModel

    with torch.device("meta"):
        real_t5 = T5EncoderModel(T5Config(d_model=768, d_ff=3072, d_kv=64, num_layers=12, num_heads=12))
        return {
            "transformer (StableAudioDiTModel)": (
                count_parameters(StableAudioDiTModel()),
                count_parameters(transformer),
            ),
            "vae (AutoencoderOobleck)": (count_parameters(AutoencoderOobleck()), count_parameters(vae)),
            "text_encoder (T5 encoder)": (count_parameters(real_t5), count_parameters(text_encoder)),
        }


def _sao_transformer(config: SaoShapedConfig) -> torch.nn.Module:
    from diffusers import StableAudioDiTModel

    hop = math.prod(SAO_STRIDES)
    return StableAudioDiTModel(
        sample_size=math.ceil(config.max_seconds * SAO_SAMPLE_RATE / hop),
        in_channels=SAO_LATENT_CHANNELS,
        num_layers=config.dit_layers,
        attention_head_dim=config.dit_head_dim,
        num_attention_heads=config.dit_heads,
        num_key_value_attention_heads=config.dit_kv_heads,
        out_channels=SAO_LATENT_CHANNELS,
        cross_attention_dim=config.dit_heads * config.dit_head_dim,
        time_proj_dim=config.time_proj_dim,
        global_states_input_dim=2 * config.cond_dim,  # seconds_start and seconds_end, concatenated
        cross_attention_input_dim=config.cond_dim,
    )


def _sao_vae(config: SaoShapedConfig) -> torch.nn.Module:
    from diffusers import AutoencoderOobleck

    return AutoencoderOobleck(
        encoder_hidden_size=2 * SAO_LATENT_CHANNELS,
        downsampling_ratios=list(SAO_STRIDES),
        channel_multiples=list(config.vae_channel_multiples),
        decoder_channels=config.vae_decoder_channels,
        decoder_input_channels=SAO_LATENT_CHANNELS,
        audio_channels=2,
        sampling_rate=SAO_SAMPLE_RATE,
    )


def _sao_text_encoder(config: SaoShapedConfig, vocab_size: int) -> torch.nn.Module:
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(
        T5Config(
            vocab_size=vocab_size,
            d_model=config.t5_width,
            d_kv=config.t5_width // config.t5_heads,
            d_ff=config.t5_ff,
            num_layers=config.t5_layers,
            num_heads=config.t5_heads,
            pad_token_id=0,
            eos_token_id=1,
        )
    )


def build_sao_shaped(path: Path, config: SaoShapedConfig) -> Path:
    """Write a random Stable-Audio-Open-shaped pipeline folder (diffusers layout) at ``path``.

    :func:`build_tiny_stable_audio` lays out the folder (model_index.json, scheduler config, T5 tokenizer);
    its transformer, VAE, projection model and text encoder are then replaced by ones of
    ``config``'s sizes, and the tokenizer's length is set to ``config.text_tokens``.

    Returns:
        ``path``, ready for ``StableAudioConfig(model=str(path))``.
    """
    import diffusers
    import transformers
    from diffusers.pipelines.stable_audio import StableAudioProjectionModel
    from transformers import T5Tokenizer

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    path = build_tiny_stable_audio(Path(path), seed=config.seed)
    tokenizer = T5Tokenizer.from_pretrained(path / "tokenizer", model_max_length=config.text_tokens)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        parts = {
            "transformer": _sao_transformer(config),
            "vae": _sao_vae(config),
            "projection_model": StableAudioProjectionModel(
                text_encoder_dim=config.t5_width, conditioning_dim=config.cond_dim, min_value=0, max_value=512
            ),
            "text_encoder": _sao_text_encoder(config, len(tokenizer)),
        }
    for name, module in parts.items():
        module.save_pretrained(path / name)
    tokenizer.save_pretrained(path / "tokenizer")
    return path
