"""Random Stable Audio 3 pipeline folders in the diffusers layout, built offline.

:func:`build_tiny_stable_audio_3` saves a ``StableAudio3Pipeline`` (``model_index.json`` plus
``transformer/``, ``vae/``, ``duration_embedder/``, ``text_encoder/``, ``tokenizer/``, ``scheduler/``)
with the real audio geometry (44.1 kHz stereo, SAME patch 256 x stride 16 = 4096 samples per latent
frame, 256 latent channels) and tiny widths and depths, a T5Gemma text encoder and a Gemma (BPE)
tokenizer built in code: :class:`audiosds.priors.stable_audio_3.StableAudio3Prior` loads it through
exactly the code path used for the real weights.

diffusers and transformers are imported when a folder is built, not with this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

SA3_SAMPLE_RATE = 44100
SA3_LATENT_CHANNELS = 256
SA3_PATCH = 256  # SAME patch size, real value
SA3_STRIDE = 16  # SAME resampling stride, real value: 256 * 16 = 4096 samples per latent frame
TINY_TEXT_TOKENS = 16  # tokenizer model_max_length (the pipeline caps the real one at 256)

# Words of the paper's prompts get their own BPE pieces; other lowercase text falls back to letters.
_WORDS = (
    "cars passing by on a busy street traffic road noise saxophone playing melody jazzy bongo drum "
    "rhythmic beat waves crashing rocky shore clanging metal pipes dropping concrete glass breaking "
    "shattering ticking of an old grandfather clock gentle rustling leaves in the wind"
).split()


@dataclass(frozen=True)
class Sa3Sizes:
    """Widths and depths of a random Stable Audio 3 (real stable-audio-3-medium values in comments)."""

    dit_width: int = 32  # embed_dim; real 1536
    dit_depth: int = 1  # real 24
    dit_heads: int = 2  # real 24
    memory_tokens: int = 2  # real 64
    text_width: int = 16  # T5Gemma hidden size = cond_token_dim = global_cond_dim; real 768
    text_layers: int = 1  # real 12 (t5gemma-b encoder)
    text_heads: int = 2  # real 12
    vae_channels: int = 16  # SAME encoder_channels; real 256 (SAME-L) or 128 (SAME-S)
    vae_mults: tuple[int, ...] = (2,)  # SAME encoder_c_mults; real (6,)
    vae_depth: int = 1  # SAME transformer depth; real 12 (SAME-L)
    vae_head_dim: int = 8  # real 64
    text_tokens: int = TINY_TEXT_TOKENS
    # The distilled checkpoint's scheduler samples stochastically ("ping-pong"); the base one does not.
    stochastic_sampling: bool = False
    seed: int = 0


def gemma_tokenizer(max_tokens: int) -> object:
    """A Gemma (BPE) tokenizer over letters, digits, a little punctuation and whole prompt words."""
    from transformers import GemmaTokenizer

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4}
    for piece in "\u2581abcdefghijklmnopqrstuvwxyz0123456789,.-'":
        vocab.setdefault(piece, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in dict.fromkeys(_WORDS):
        piece = "\u2581"
        for letter in word:
            if piece + letter not in vocab:
                merges.append((piece, letter))
                vocab[piece + letter] = len(vocab)
            piece += letter
    return GemmaTokenizer(vocab=vocab, merges=merges, model_max_length=max_tokens, padding_side="right")


def randomise_zero_weights(module: torch.nn.Module) -> None:
    """Give random values to the weights a model initialises at zero (output projections of residual
    branches, the DiT's padding embedding, ...): trained weights are not zero, and a zero branch would
    hide its input from the tests (a SAME encoder with zero branches ignores the audio entirely)."""
    with torch.no_grad():
        for name, param in module.named_parameters():
            if not name.endswith("bias") and not param.any():
                fan_in = param[0].numel() if param.ndim > 1 else param.numel()
                param.normal_(std=0.5 / fan_in**0.5)


def build_tiny_stable_audio_3(path: Path, sizes: Sa3Sizes | None = None) -> Path:
    """Save a random Stable Audio 3 pipeline folder at ``path`` and return ``path``.

    Args:
        path: target folder (created; files of the same names are overwritten).
        sizes: widths and depths (default: tiny, for tests); ``sizes.seed`` seeds every weight.

    Returns:
        ``path``, ready for ``StableAudio3Config(model=str(path))``.
    """
    import diffusers
    import transformers
    from diffusers import (
        AutoencoderSAME,
        FlowMatchEulerDiscreteScheduler,
        StableAudio3DiTModel,
        StableAudio3Pipeline,
    )
    from diffusers.pipelines.stable_audio_3.modeling_stable_audio_3 import StableAudio3DurationEmbedder
    from transformers import T5GemmaConfig, T5GemmaEncoderModel
    from transformers.models.t5gemma.configuration_t5gemma import T5GemmaModuleConfig

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    sizes = sizes or Sa3Sizes()
    width = sizes.text_width
    tokenizer = gemma_tokenizer(sizes.text_tokens)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(sizes.seed)
        module = T5GemmaModuleConfig(
            vocab_size=len(tokenizer),
            hidden_size=width,
            intermediate_size=2 * width,
            num_hidden_layers=sizes.text_layers,
            num_attention_heads=sizes.text_heads,
            num_key_value_heads=1,
            head_dim=width // sizes.text_heads,
            max_position_embeddings=max(64, sizes.text_tokens),
            sliding_window=max(64, sizes.text_tokens),
            layer_types=["full_attention"] * sizes.text_layers,
            pad_token_id=tokenizer.pad_token_id,
        )
        text_encoder = T5GemmaEncoderModel(
            T5GemmaConfig(encoder=module.to_dict(), decoder=module.to_dict(), is_encoder_decoder=False)
        )
        transformer = StableAudio3DiTModel(
            io_channels=SA3_LATENT_CHANNELS,
            embed_dim=sizes.dit_width,
            depth=sizes.dit_depth,
            num_heads=sizes.dit_heads,
            cond_token_dim=width,
            global_cond_dim=width,
            timestep_features_dim=16,
            ff_mult=2,
            num_memory_tokens=sizes.memory_tokens,
        )
        vae = AutoencoderSAME(
            audio_channels=2,
            patch_size=SA3_PATCH,
            encoder_channels=sizes.vae_channels,
            encoder_c_mults=sizes.vae_mults,
            encoder_strides=(SA3_STRIDE,),
            encoder_transformer_depths=(sizes.vae_depth,),
            latent_dim=SA3_LATENT_CHANNELS,
            dim_heads=sizes.vae_head_dim,
            ff_mult=2,
            sampling_rate=SA3_SAMPLE_RATE,
        )
        duration_embedder = StableAudio3DurationEmbedder(output_dim=width, fourier_dim=16)
        for module in (transformer, vae):
            randomise_zero_weights(module)
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1, shift=1.0, stochastic_sampling=sizes.stochastic_sampling
    )
    pipe = StableAudio3Pipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        duration_embedder=duration_embedder,
        transformer=transformer,
        scheduler=scheduler,
    )
    path = Path(path)
    pipe.save_pretrained(path, safe_serialization=True)
    return path
