"""A tiny, randomly initialised Stable Audio Open folder in diffusers format, built offline.

The folder has the layout of the ``stabilityai/stable-audio-open-1.0`` snapshot
(``model_index.json`` plus ``transformer/``, ``vae/``, ``projection_model/``, ``text_encoder/``,
``tokenizer/``, ``scheduler/``) and the real audio geometry (44.1 kHz stereo, VAE
downsampling ratios 2*4*4*8*8 = 2048, 64 latent channels), with tiny widths and depths and a
T5 tokenizer built in code. :class:`audiosds.priors.stable_audio.StableAudioPrior` loads it
through exactly the code path used for the real weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import diffusers
import torch
from diffusers import AutoencoderOobleck, StableAudioDiTModel
from diffusers.pipelines.stable_audio import StableAudioProjectionModel
from transformers import T5Config, T5EncoderModel, T5Tokenizer

TINY_MAX_FRAMES = 16  # DiT sample_size: 16 latent frames = 16 * 2048 samples, about 0.74 s
TINY_TEXT_TOKENS = 32  # tokenizer model_max_length (the real snapshot uses 128)

# Words of the paper's prompts get their own pieces; any other lowercase text falls back to letters.
_WORDS = (
    "cars passing by on a busy street traffic road noise saxophone playing melody jazzy bongo drum "
    "rhythmic beat waves crashing rocky shore clanging metal pipes dropping concrete glass breaking "
    "shattering ticking of an old grandfather clock gentle rustling leaves in the wind"
).split()


# The scheduler config of the real snapshot (CosineDPMSolverMultistepScheduler, v-objective, sigma_data 1).
_SCHEDULER_CONFIG: dict[str, object] = {
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
    _write_json(path / "scheduler" / "scheduler_config.json", _SCHEDULER_CONFIG)
    _write_json(path / "model_index.json", _model_index())
    return path


def _write_json(file: Path, content: dict[str, object]) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
