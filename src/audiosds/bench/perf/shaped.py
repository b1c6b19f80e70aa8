"""``perf`` priors shaped like Stable Audio 3 and AudioLDM 2 (issue 29): the real diffusers architectures
and audio geometry, scaled-down widths and depths, random weights.

* ``sa3-shaped``: ``StableAudio3DiTModel`` + ``AutoencoderSAME`` (patch 256 x stride 16, 256 latent
  channels, 44.1 kHz stereo) + a T5Gemma encoder, with the widths of :data:`SA3_SHAPED`.
* ``audioldm2-shaped``: ``AudioLDM2UNet2DConditionModel`` + the mel ``AutoencoderKL`` + CLAP, T5 and
  GPT-2 + the SpeechT5 HiFi-GAN (16 kHz mono, 64 mels, hop 160), with the widths of :data:`LDM2_SHAPED`.

Each is written to a folder in the diffusers layout and loaded through ``--prior auto``'s code path
(:mod:`audiosds.priors.stable_audio_3`, :mod:`audiosds.priors.audioldm2`) exactly as real weights are.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from ...priors import build
from ..audioldm2 import Ldm2Sizes, build_tiny_audioldm2
from ..report import markdown_table
from ..sa3 import Sa3Sizes, build_tiny_stable_audio_3
from ..sao import count_parameters

SHAPED = ("sa3-shaped", "audioldm2-shaped")

# Real values in the Sa3Sizes / Ldm2Sizes comments; these keep each network's kind and the real geometry.
SA3_SHAPED = Sa3Sizes(
    dit_width=256,
    dit_depth=4,
    dit_heads=4,
    memory_tokens=64,
    text_width=128,
    text_layers=2,
    text_heads=4,
    vae_channels=64,
    vae_mults=(6,),
    vae_depth=2,
    vae_head_dim=64,
    text_tokens=128,
)
LDM2_SHAPED = Ldm2Sizes(
    unet_channels=(64, 128, 256),
    unet_layers=1,
    unet_head_dim=8,
    clap_width=128,
    t5_width=128,
    lm_width=128,
    vae_channels=(32, 64, 128),
    vocoder_channels=128,
    text_tokens=64,
)


def load_shaped(name: str, workdir: Path) -> tuple[object, list[str], list[str]]:
    """Build the ``name`` folder in ``workdir`` and load it with ``--prior auto``.

    Returns:
        (the frozen prior, the CLI arguments that select the same prior, notes for the report)
    """
    if name == "sa3-shaped":
        folder, sizes = build_tiny_stable_audio_3(workdir / name, SA3_SHAPED), SA3_SHAPED
    elif name == "audioldm2-shaped":
        folder, sizes = build_tiny_audioldm2(workdir / name, LDM2_SHAPED), LDM2_SHAPED
    else:
        raise ValueError(f"name: expected one of {SHAPED}, got {name!r}")
    prior = build("auto", model=str(folder))
    parts = [
        [part, f"{count_parameters(getattr(prior, part)) / 1e6:.2f} M"]
        for part in (
            "transformer",
            "unet",
            "vae",
            "text_encoder",
            "text_encoder_2",
            "language_model",
            "vocoder",
        )
        if hasattr(prior, part)
    ]
    notes = [
        "\nRandom weights; sizes: " + ", ".join(f"{k}={v}" for k, v in asdict(sizes).items()) + ".\n",
        markdown_table(["component", "parameters here"], parts),
    ]
    return prior, ["--prior", "auto", "--model", str(folder)], notes
