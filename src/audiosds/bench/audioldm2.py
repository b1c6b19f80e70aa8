"""Random AudioLDM 2 pipeline folders in the diffusers layout, built offline.

:func:`build_tiny_audioldm2` saves an ``AudioLDM2Pipeline`` with the layout of the ``cvssp/audioldm2``
snapshot (``model_index.json`` plus ``vae/``, ``unet/``, ``text_encoder/`` (CLAP), ``text_encoder_2/``
(T5), ``projection_model/``, ``language_model/`` (saved as ``GPT2Model``, as there), ``tokenizer/``
(RoBERTa BPE), ``tokenizer_2/`` (T5 unigram), ``feature_extractor/``, ``scheduler/``, ``vocoder/``) and
the real audio geometry (16 kHz mono, 64 mel bins, hop 160, a VAE 4x down with 8 latent channels and
the real scaling factor, the real DDIM schedule), with tiny widths and depths:
:class:`audiosds.priors.audioldm2.AudioLDM2Prior` loads it through exactly the code path used for the
real weights.

diffusers and transformers are imported when a folder is built, not with this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .sa3 import randomise_zero_weights

LDM2_SAMPLE_RATE = 16000
LDM2_MELS = 64
LDM2_UPSAMPLE_RATES = (5, 4, 2, 2, 2)  # the vocoder's, real: hop 160
LDM2_UPSAMPLE_KERNELS = (16, 16, 8, 4, 4)  # real; the odd first rate makes the output 32 samples long
TINY_TEXT_TOKENS = 16

_WORDS = (
    "cars passing by on a busy street traffic road noise saxophone playing melody bongo drum rhythmic "
    "beat waves crashing rocky shore metal pipes glass breaking ticking of an old clock leaves in the wind"
).split()
_LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789,.-'"


@dataclass(frozen=True)
class Ldm2Sizes:
    """Widths and depths of a random AudioLDM 2 (real cvssp/audioldm2 values in comments)."""

    unet_channels: tuple[int, ...] = (16, 32)  # real (320, 640, 1280, 1280)
    unet_layers: int = 1  # layers per block; real 2
    unet_head_dim: int = 4  # attention_head_dim; real 8
    clap_width: int = 16  # real 768 (RoBERTa) with a 512-wide projection
    t5_width: int = 24  # real 1024 (Flan-T5-large)
    lm_width: int = 16  # real 768 (GPT-2)
    vae_channels: tuple[int, int, int] = (8, 16, 16)  # real (128, 256, 512): three levels, 4x down
    vocoder_channels: int = 64  # upsample_initial_channel; real 1024
    max_new_tokens: int = 8  # real 8
    text_tokens: int = TINY_TEXT_TOKENS
    seed: int = 0


def roberta_tokenizer(max_tokens: int) -> object:
    """A byte-level BPE (RoBERTa) tokenizer over letters and whole prompt words."""
    from transformers import RobertaTokenizer

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4, "\u0120": 5}
    for letter in _LETTERS:
        vocab.setdefault(letter, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in dict.fromkeys(_WORDS):
        for piece in ("", "\u0120"):  # the word at the start of the text, and after a space
            for letter in word:
                if piece and piece + letter not in vocab:
                    merges.append((piece, letter))
                    vocab[piece + letter] = len(vocab)
                piece += letter
    return RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=max_tokens)


def t5_tokenizer(max_tokens: int) -> object:
    """A T5 (unigram) tokenizer over whole prompt words and letters."""
    from transformers import T5Tokenizer

    vocab: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [(f"\u2581{w}", -3.0) for w in dict.fromkeys(_WORDS)]
    vocab += [(c, -6.0) for c in _LETTERS]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=max_tokens)


def ddim_scheduler() -> object:
    """The DDIM scheduler of the cvssp/audioldm2 snapshot (scaled-linear betas 0.0015-0.0195, 1000 steps)."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.0015,
        beta_end=0.0195,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type="epsilon",
    )


def build_tiny_audioldm2(path: Path, sizes: Ldm2Sizes | None = None) -> Path:
    """Save a random AudioLDM 2 pipeline folder at ``path`` and return ``path``.

    Args:
        path: target folder (created; files of the same names are overwritten).
        sizes: widths and depths (default: tiny, for tests); ``sizes.seed`` seeds every weight.

    Returns:
        ``path``, ready for ``AudioLDM2Config(model=str(path))``.
    """
    import diffusers
    import transformers
    from diffusers import (
        AudioLDM2Pipeline,
        AudioLDM2ProjectionModel,
        AudioLDM2UNet2DConditionModel,
        AutoencoderKL,
    )
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapTextConfig,
        GPT2Config,
        GPT2Model,
        SpeechT5HifiGan,
        SpeechT5HifiGanConfig,
        T5Config,
        T5EncoderModel,
    )

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    sizes = sizes or Ldm2Sizes()
    tokenizer, tokenizer_2 = roberta_tokenizer(sizes.text_tokens), t5_tokenizer(sizes.text_tokens)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(sizes.seed)
        text = ClapTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=sizes.clap_width,
            intermediate_size=2 * sizes.clap_width,
            num_attention_heads=2,
            num_hidden_layers=1,
            projection_dim=sizes.clap_width,
            max_position_embeddings=sizes.text_tokens + 4,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
        )
        audio = ClapAudioConfig(
            spec_size=64,
            window_size=4,
            num_mel_bins=64,
            intermediate_size=32,
            depths=[1, 1],
            num_attention_heads=[2, 2],
            num_hidden_layers=2,
            hidden_size=16,
            patch_embeds_hidden_size=8,
            projection_dim=sizes.clap_width,
            patch_stride=2,
            patch_embed_input_channels=4,
        )
        clap = ClapModel(
            ClapConfig(
                text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=sizes.clap_width
            )
        )
        t5 = T5EncoderModel(
            T5Config(
                vocab_size=len(tokenizer_2),
                d_model=sizes.t5_width,
                d_ff=2 * sizes.t5_width,
                d_kv=8,
                num_heads=2,
                num_layers=1,
                relative_attention_num_buckets=8,
                relative_attention_max_distance=16,
                pad_token_id=0,
                eos_token_id=1,
            )
        )
        language_model = GPT2Model(
            GPT2Config(
                n_embd=sizes.lm_width, n_head=2, n_layer=1, vocab_size=8, bos_token_id=0, eos_token_id=0
            )
        )
        language_model.config.max_new_tokens = sizes.max_new_tokens
        projection_model = AudioLDM2ProjectionModel(
            text_encoder_dim=sizes.clap_width,
            text_encoder_1_dim=sizes.t5_width,
            langauge_model_dim=sizes.lm_width,
        )
        levels = len(sizes.unet_channels)
        unet = AudioLDM2UNet2DConditionModel(
            sample_size=64,
            in_channels=8,
            out_channels=8,
            block_out_channels=sizes.unet_channels,
            layers_per_block=sizes.unet_layers,
            down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (levels - 1),
            up_block_types=("CrossAttnUpBlock2D",) * (levels - 1) + ("UpBlock2D",),
            # per transformer of a block: self-attention, then GPT-2 states, then T5 states
            cross_attention_dim=([None, sizes.lm_width, sizes.t5_width],) * levels,
            attention_head_dim=sizes.unet_head_dim,
            norm_num_groups=8,
        )
        vae = AutoencoderKL(
            in_channels=1,
            out_channels=1,
            block_out_channels=list(sizes.vae_channels),
            down_block_types=["DownEncoderBlock2D"] * 3,
            up_block_types=["UpDecoderBlock2D"] * 3,
            latent_channels=8,
            layers_per_block=1,
            norm_num_groups=4,
            scaling_factor=0.4342,  # real
        )
        vocoder = SpeechT5HifiGan(
            SpeechT5HifiGanConfig(
                model_in_dim=LDM2_MELS,
                sampling_rate=LDM2_SAMPLE_RATE,
                upsample_initial_channel=sizes.vocoder_channels,
                upsample_rates=list(LDM2_UPSAMPLE_RATES),
                upsample_kernel_sizes=list(LDM2_UPSAMPLE_KERNELS),
                resblock_kernel_sizes=[3],
                resblock_dilation_sizes=[[1, 3]],
                normalize_before=False,
            )
        )
        for module in (unet, vae, projection_model):
            randomise_zero_weights(module)
    pipe = AudioLDM2Pipeline(
        vae=vae,
        text_encoder=clap,
        text_encoder_2=t5,
        projection_model=projection_model,
        language_model=language_model,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        feature_extractor=ClapFeatureExtractor(),
        unet=unet,
        scheduler=ddim_scheduler(),
        vocoder=vocoder,
    )
    path = Path(path)
    pipe.save_pretrained(path, safe_serialization=True)
    return path
