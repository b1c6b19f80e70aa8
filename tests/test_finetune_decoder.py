"""The decoder fine-tune stage: seeded, resumable, the encoder (hence the latent space) untouched."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from audiosds.priors.embedded import load_autoencoder
from audiosds.training.autoencoder import Autoencoder, AutoencoderConfig
from audiosds.training.data import DataConfig
from audiosds.training.discriminator import DiscriminatorConfig
from audiosds.training.finetune_decoder import (
    DecoderFinetuneConfig,
    drop_learned,
    export_only,
    finetune,
    noisy_latents,
)
from audiosds.training.run import export_weights
from audiosds.training.train_autoencoder import LossConfig

TINY_AE = AutoencoderConfig(
    latent_channels=4, high_channels=8, low_channels=16, high_dilations=(1,), low_dilations=(1, 3), kernel=3
)
CFG = DecoderFinetuneConfig(
    steps=3,
    batch=2,
    crop=1024,
    warmup=1,
    checkpoint_every=2,
    log_every=1,
    eval_clips=2,
    loss=LossConfig(windows=(256, 64)),
    data=DataConfig(clips=8, seconds=0.5, shard_size=4, families=("bell", "noise", "kick")),
)


@pytest.fixture(scope="module")
def stage1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 'stage-1' export with float16-exact weights."""
    model = Autoencoder(TINY_AE)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_((torch.randn(p.shape, generator=g) * 0.2).half().float())
    folder = tmp_path_factory.mktemp("stage1")
    export_weights(model, TINY_AE.to_dict(), folder, "autoencoder", dtype="float16")
    return folder


def test_noisy_latents_levels() -> None:
    mean = torch.zeros(400, 2, 50)
    cfg = replace(CFG, max_noise=0.3, clean_fraction=0.25)
    z, level = noisy_latents(mean, 2.0, cfg, torch.Generator().manual_seed(0))
    row_std = z.std(dim=(1, 2))
    clean = (row_std == 0).float().mean()
    assert 0.15 < clean < 0.35  # about clean_fraction of the rows are exact
    assert row_std.max() <= 0.3 * 2.0 * 1.2 and row_std.max() > 0.3 * 2.0 * 0.8  # up to max_noise x std
    assert torch.allclose(row_std, level * 2.0, rtol=0.25, atol=1e-6)  # the level is relative to the std
    again, _ = noisy_latents(mean, 2.0, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(z, again)


def test_noisy_latents_envelope_channels_get_their_own_level() -> None:
    mean = torch.zeros(300, 6, 200)
    cfg = replace(CFG, max_noise=1.0, clean_fraction=0.0, envelope_noise=0.1)
    z, level = noisy_latents(mean, 2.0, cfg, torch.Generator().manual_seed(1), learned=4, envelope_std=0.5)
    learned_std, envelope_std = z[:, :4].std(dim=(1, 2)), z[:, 4:].std(dim=(1, 2))
    assert torch.allclose(learned_std, level * 2.0, rtol=0.2, atol=1e-6)
    assert torch.allclose(envelope_std, level * 0.1 * 0.5, rtol=0.2, atol=1e-6)  # same fraction, own scale
    quiet, _ = noisy_latents(mean, 2.0, replace(cfg, envelope_noise=0.0), torch.Generator(), 4, 0.5)
    assert torch.equal(quiet[:, 4:], mean[:, 4:])  # envelope_noise 0: the computed channels stay exact


def test_drop_learned_zeroes_the_learned_channels_of_some_rows() -> None:
    z = torch.randn(400, 6, 10, generator=torch.Generator().manual_seed(2)) + 3.0
    out, dropped = drop_learned(z, 4, 0.5, torch.Generator().manual_seed(0))
    assert 0.4 < float(dropped.float().mean()) < 0.6
    assert torch.all(out[dropped, :4] == 0) and torch.equal(out[dropped, 4:], z[dropped, 4:])
    assert torch.equal(out[~dropped], z[~dropped])  # other rows untouched
    none, kept = drop_learned(z, 4, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(none, z) and not bool(kept.any())


def test_drop_fraction_trains_an_envelope_only_mode(stage1: Path, tmp_path: Path) -> None:
    """Every row dropped: only the phase-blind terms are logged; without envelope channels it is refused."""
    env_cfg = replace(TINY_AE, envelope_bands=3, envelope_window=256, envelope_min_hz=200.0)
    model = Autoencoder(env_cfg)
    folder = tmp_path / "stage1_env"
    export_weights(model, env_cfg.to_dict(), folder, "autoencoder", dtype="float32")
    cfg = replace(CFG, steps=1, max_noise=0.0, drop_fraction=1.0, eval_clips=0)
    history = finetune(cfg, folder, tmp_path / "drop")
    assert "complex_blind" in history[0] and "complex" not in history[0]
    assert load_autoencoder(tmp_path / "drop" / "export").config.envelope_decoding  # generation uses it
    with pytest.raises(ValueError, match="drop_fraction: needs an autoencoder with envelope channels"):
        finetune(cfg, stage1, tmp_path / "plain")
    with pytest.raises(ValueError, match="drop_fraction"):
        replace(CFG, drop_fraction=1.5)


def test_phase_free_rows_are_scored_without_phase(stage1: Path, tmp_path: Path) -> None:
    """With phase_free_above below every noisy row's level, the loss splits into the two groups (both
    logged) and the run stays seeded."""
    cfg = replace(CFG, steps=2, max_noise=1.0, clean_fraction=0.5, phase_free_above=0.0)
    history = finetune(cfg, stage1, tmp_path / "blind")
    assert any("complex_blind" in h for h in history) and all(math.isfinite(h["loss"]) for h in history)
    assert all(h.get("wave_blind", 0.0) == 0.0 for h in history)  # no waveform term without phase
    again = finetune(cfg, stage1, tmp_path / "blind2")
    assert [h["loss"] for h in history] == [h["loss"] for h in again]


def test_finetune_is_seeded_resumes_and_keeps_the_encoder(stage1: Path, tmp_path: Path) -> None:
    full = finetune(CFG, stage1, tmp_path / "full")
    again = finetune(CFG, stage1, tmp_path / "again")
    assert len(full) == 3 and all(math.isfinite(h["loss"]) for h in full)
    assert [h["loss"] for h in full] == [h["loss"] for h in again]
    export = tmp_path / "full" / "export" / "autoencoder.safetensors"
    assert export.read_bytes() == (tmp_path / "again" / "export" / "autoencoder.safetensors").read_bytes()
    before, after = load_file(str(stage1 / "autoencoder.safetensors")), load_file(str(export))
    assert before.keys() == after.keys()
    encoder = [k for k in before if k.startswith("encoder.")]
    decoder = [k for k in before if k.startswith("decoder.")]
    assert encoder and decoder
    assert all(torch.equal(before[k], after[k]) for k in encoder)  # the latent space is unchanged
    assert any(not torch.equal(before[k], after[k]) for k in decoder)  # the decoder trained
    # Stop after one step, resume: the remaining steps match the uninterrupted run.
    part = finetune(CFG, stage1, tmp_path / "part", stop_at=1)
    assert [h["loss"] for h in part] == [full[0]["loss"]]
    rest = finetune(CFG, stage1, tmp_path / "part", resume=True)
    assert [h["loss"] for h in rest] == [h["loss"] for h in full[1:]]
    # The record names the stage-1 weights; --export-only rewrites the same bytes.
    record = json.loads((tmp_path / "full" / "export" / "finetune.json").read_text())
    assert record["steps_done"] == 3 and len(record["stage1_autoencoder"]) == 16
    exported = export.read_bytes()
    assert export_only(tmp_path / "full") == export and export.read_bytes() == exported


def test_adversarial_finetune_is_seeded_resumes_and_exports_the_autoencoder(
    stage1: Path, tmp_path: Path
) -> None:
    """With a discriminator: its loss and gradient norm are logged, the generator terms join from
    adversarial_start, runs repeat bit for bit (resume included) and only the autoencoder is exported."""
    critic = DiscriminatorConfig(windows=(256, 64), channels=4, strided_layers=2)
    cfg = replace(CFG, adversarial=1.0, feature_matching=2.0, adversarial_start=1, discriminator=critic)
    full = finetune(cfg, stage1, tmp_path / "gan")
    assert all(
        {"discriminator", "generator", "feature_matching", "grad_norm_critic"} <= h.keys() for h in full
    )
    again = finetune(cfg, stage1, tmp_path / "gan2")
    assert [h["loss"] for h in full] == [h["loss"] for h in again]
    part = finetune(cfg, stage1, tmp_path / "part", stop_at=2)
    rest = finetune(cfg, stage1, tmp_path / "part", resume=True)
    assert [h["loss"] for h in part + rest] == [h["loss"] for h in full]
    # step 0 trains the critic alone: its loss is the reconstruction loss plus the critic's hinge
    recon_only = finetune(replace(CFG, steps=1), stage1, tmp_path / "plain")
    assert full[0]["loss"] == pytest.approx(recon_only[0]["loss"] + full[0]["discriminator"], rel=1e-5)
    export = tmp_path / "gan" / "export" / "autoencoder.safetensors"
    assert load_file(str(export)).keys() == load_file(str(stage1 / "autoencoder.safetensors")).keys()
    exported = export.read_bytes()
    assert export_only(tmp_path / "gan") == export and export.read_bytes() == exported
    assert json.loads((tmp_path / "gan" / "export" / "finetune.json").read_text())["adversarial"] == 1.0
    with pytest.raises(ValueError, match="adversarial"):
        replace(CFG, adversarial=-1.0)


def test_fresh_istft_decoder_keeps_the_encoder_and_exports_its_head(stage1: Path, tmp_path: Path) -> None:
    cfg = replace(CFG, steps=2, decoder={"decoder_head": "istft", "istft_dilations": [1]})
    history = finetune(cfg, stage1, tmp_path / "istft")
    assert len(history) == 2 and all(math.isfinite(h["loss"]) for h in history)
    export = tmp_path / "istft" / "export"
    model = load_autoencoder(export)
    assert model.config.decoder_head == "istft" and model.config.istft_dilations == (1,)
    before, after = (
        load_file(str(stage1 / "autoencoder.safetensors")),
        load_file(str(export / "autoencoder.safetensors")),
    )
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("encoder."))
    assert any(k.startswith("decoder.head") for k in after)
    again = finetune(cfg, stage1, tmp_path / "istft2")  # the fresh decoder's initialisation is seeded
    assert [h["loss"] for h in history] == [h["loss"] for h in again]
    exported = (export / "autoencoder.safetensors").read_bytes()
    assert export_only(tmp_path / "istft").read_bytes() == exported
    with pytest.raises(ValueError, match="decoder: expected keys among"):
        replace(CFG, decoder={"latent_channels": 8})
