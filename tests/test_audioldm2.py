"""The AudioLDM 2 backend (priors/audioldm2.py) against diffusers' own AudioLDM2Pipeline.

Every oracle is diffusers (or librosa) code run on the same tiny random folder: the pipeline's
``encode_prompt`` for conditioning, its DDIMScheduler (``add_noise`` to noise a latent, ``step``'s
``pred_original_sample`` for x0_hat) and UNet for the denoiser, the pipeline's whole ``__call__``
(DDIM with eta 0, classifier-free guidance) for the sampler and its VAE + vocoder post-processing for
``decode``, and librosa's Slaney mel filters for the front end of ``encode``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import AudioLDM2Pipeline, DDIMScheduler
from safetensors.torch import load_file
from transformers import GPT2LMHeadModel, GPT2Model

from audiosds.bench.audioldm2 import build_tiny_audioldm2
from audiosds.priors import build
from audiosds.priors.audioldm2 import AudioLDM2Config, AudioLDM2Prior
from audiosds.priors.stable_audio import ModelLoadError
from audiosds.sampling import sample
from audiosds.sds import MODES, SDSConfig, sds_step

SR = 16000
HOP = 640  # audio samples per latent frame: mel hop 160 x VAE 4
PROMPT = "bongo drum playing a rhythmic beat"


pytestmark = pytest.mark.usefixtures("hub_offline")  # conftest: the hub switched off for the module


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_audioldm2(tmp_path_factory.mktemp("ldm2") / "tiny")


@pytest.fixture(scope="module")
def prior(folder: Path) -> AudioLDM2Prior:
    p = build("audioldm2", model=str(folder))
    assert isinstance(p, AudioLDM2Prior)
    return p


@pytest.fixture(scope="module")
def pipe(prior: AudioLDM2Prior, folder: Path) -> AudioLDM2Pipeline:
    """diffusers' pipeline over the prior's own modules and the folder's DDIM scheduler."""
    pipe = AudioLDM2Pipeline(
        vae=prior.vae,
        text_encoder=prior.text_encoder,
        text_encoder_2=prior.text_encoder_2,
        projection_model=prior.projection_model,
        language_model=prior.language_model,
        tokenizer=prior._pipe.tokenizer,
        tokenizer_2=prior._pipe.tokenizer_2,
        feature_extractor=None,
        unet=prior.unet,
        scheduler=DDIMScheduler.from_pretrained(folder / "scheduler"),
        vocoder=prior.vocoder,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _assert_close_per_sigma(got: torch.Tensor, want: torch.Tensor, sigma: torch.Tensor) -> None:
    """Equal to float32 round-off: x0_hat = z_sigma - sigma * eps_hat magnifies the UNet's round-off by
    sigma (and diffusers' (x_t - sqrt(1 - abar) eps_hat) / sqrt(abar) by the same factor)."""
    tolerance = 1e-5 * (1 + sigma.double())[:, None, None]
    excess = ((got - want).abs().double() - tolerance).max()
    assert excess <= 0, f"exceeds the tolerance by {float(excess):.3g}"


def _sigma(pipe: AudioLDM2Pipeline, timestep: int) -> float:
    abar = float(pipe.scheduler.alphas_cumprod[timestep])
    return ((1 - abar) / abar) ** 0.5


def test_loads_offline_with_real_geometry(prior: AudioLDM2Prior, pipe: AudioLDM2Pipeline) -> None:
    assert (prior.name, prior.sample_rate, prior.channels) == ("audioldm2", SR, 1)
    assert (prior.downsampling, prior.vae_channels, prior.mel_rows) == (HOP, 8, 16)
    assert prior.latent_channels == 8 * 16  # (B, 8, T, 16) latents folded to (B, 128, T)
    assert (prior.sigma_min, prior.sigma_max) == pytest.approx((_sigma(pipe, 0), _sigma(pipe, 999)))
    assert not prior.training and all(not p.requires_grad for p in prior.parameters())


def test_the_gpt2_snapshot_loads_as_a_language_model_head_with_the_same_weights(
    prior: AudioLDM2Prior, folder: Path
) -> None:
    index = json.loads((folder / "model_index.json").read_text())
    assert index["language_model"] == ["transformers", "GPT2Model"]  # as in cvssp/audioldm2
    assert isinstance(prior.language_model, GPT2LMHeadModel)
    saved = GPT2Model.from_pretrained(folder / "language_model")
    for name, tensor in saved.state_dict().items():
        assert torch.equal(prior.language_model.transformer.state_dict()[name], tensor), name


def test_time_axis_is_the_ddpm_schedule(prior: AudioLDM2Prior, pipe: AudioLDM2Pipeline) -> None:
    steps = torch.tensor([0, 1, 250, 601, 998, 999])
    table = torch.tensor([_sigma(pipe, int(n)) for n in steps], dtype=torch.float64)
    torch.testing.assert_close(prior.sigma_of_t(steps / 999), table)
    torch.testing.assert_close(prior.t_of_sigma(table), steps.double() / 999, rtol=0, atol=1e-9)
    # the sampler hands sigmas over in float32: the UNet still gets the integer timesteps
    assert torch.equal(prior.timestep(table.float()), steps.double())
    between = prior.timestep(torch.tensor([(table[2] * table[3]).sqrt().item()]))
    assert 250 < float(between) < 601 and float(between) != round(float(between))


def test_conditioning_is_the_pipelines_with_the_empty_prompt_as_unconditional(
    prior: AudioLDM2Prior, pipe: AudioLDM2Pipeline
) -> None:
    prompts, negative = [PROMPT, "waves crashing"], ["glass", "old clock ticking"]
    with torch.no_grad():
        t5, mask, generated = pipe.encode_prompt(prompts, "cpu", 1, True, negative_prompt=negative)
        null_t5, null_mask, null_generated = pipe.encode_prompt(prompts, "cpu", 1, True)
    cond = prior.embed(prompts, negative=negative)
    for key, value in {"t5": t5, "t5_mask": mask, "generated": generated}.items():
        torch.testing.assert_close(cond.cond[key], value[2:], rtol=0, atol=0)
        torch.testing.assert_close(cond.uncond[key], value[:2], rtol=0, atol=0)
    null = prior.embed(prompts)
    torch.testing.assert_close(null.uncond["generated"], null_generated[:2], rtol=0, atol=0)
    torch.testing.assert_close(null.uncond["t5"], null_t5[:2], rtol=0, atol=0)
    assert torch.equal(null.uncond["t5_mask"], null_mask[:2])
    assert generated.shape[1] == prior.language_model.config.max_new_tokens  # GPT-2 generated its states
    assert (null.uncond["generated"] - null.cond["generated"]).abs().max() > 1e-3


def _diffusers_x0(
    prior: AudioLDM2Prior,
    pipe: AudioLDM2Pipeline,
    z0: torch.Tensor,
    eps: torch.Tensor,
    timestep: int,
    cfg: float,
) -> torch.Tensor:
    """x0_hat as diffusers computes it for one row: DDIM's add_noise at ``timestep``, the UNet on the
    pipeline's conditioning (negative branch first, as the pipeline guides), DDIM's pred_original_sample."""
    t = torch.tensor([timestep])
    x_t = pipe.scheduler.add_noise(prior._unfold(z0), prior._unfold(eps), t)
    with torch.no_grad():
        t5, mask, generated = pipe.encode_prompt([PROMPT], "cpu", 1, True)
        eps_hat = prior.unet(
            torch.cat([x_t, x_t]),
            t[0],
            encoder_hidden_states=generated,
            encoder_hidden_states_1=t5,
            encoder_attention_mask_1=mask,
        ).sample
    e_u, e_c = eps_hat.chunk(2)
    pipe.scheduler.set_timesteps(10)
    x0 = pipe.scheduler.step(e_u + cfg * (e_c - e_u), t[0], x_t).pred_original_sample
    return prior._fold(x0)


def test_x0_hat_equals_the_diffusers_scheduler_and_model(
    prior: AudioLDM2Prior, pipe: AudioLDM2Pipeline
) -> None:
    timesteps = [1, 150, 601, 999]
    z0 = _randn(4, prior.latent_channels, 3, seed=0)
    eps = _randn(4, prior.latent_channels, 3, seed=1)
    sigma = torch.tensor([_sigma(pipe, n) for n in timesteps])
    z_sigma = z0 + sigma[:, None, None] * eps
    cond = prior.embed([PROMPT])
    for cfg in (1.0, 0.0, 4.0):
        with torch.no_grad():
            got = prior.denoise(z_sigma, sigma, cond, cfg_scale=cfg)
        want = torch.cat(
            [
                _diffusers_x0(prior, pipe, z0[i : i + 1], eps[i : i + 1], n, cfg)
                for i, n in enumerate(timesteps)
            ]
        )
        _assert_close_per_sigma(got, want, sigma)
    with torch.no_grad():
        d_c, d_u = prior.denoise(z_sigma, sigma, cond, 1.0), prior.denoise(z_sigma, sigma, cond, 0.0)
    assert (d_c - d_u).abs().max() > 1e-3  # the prompt matters, so guidance is tested for real


def test_deterministic_sampler_reproduces_the_pipeline(
    prior: AudioLDM2Prior, pipe: AudioLDM2Pipeline
) -> None:
    """The pipeline's own __call__ (DDIM, eta 0, CFG 3 with a negative prompt) and sample(..., "ddim") on
    the same levels give the same latent and the same audio. DDIM's last step lands on alpha_bar(0)
    (set_alpha_to_one is False in the snapshot), so both end at sigma_min, not 0."""
    steps, frames, cfg = 4, 3, 3.0
    x_start = _randn(1, prior.vae_channels, frames, prior.mel_rows, seed=2)  # the pipeline's x_T
    seconds = frames * HOP / SR
    reference = DDIMScheduler.from_config(pipe.scheduler.config)
    reference.set_timesteps(steps)
    levels = [_sigma(pipe, int(n)) for n in reference.timesteps] + [_sigma(pipe, 0)]
    sigmas = torch.tensor(levels)
    with torch.no_grad():
        run = {"prompt": PROMPT, "negative_prompt": "glass", "audio_length_in_s": seconds, "latents": x_start}
        want = pipe(**run, num_inference_steps=steps, guidance_scale=cfg, output_type="latent").audios
        want_audio = pipe(**run, num_inference_steps=steps, guidance_scale=cfg, output_type="pt").audios
        cond = prior.embed([PROMPT], negative=["glass"])
        z = prior._fold(x_start) * (1 + sigmas[0] ** 2) ** 0.5  # z_sigma = x_T / sqrt(alpha_bar)
        got = sample(prior, z, sigmas, cond, cfg, "ddim") / (1 + sigmas[-1] ** 2) ** 0.5
        got_audio = prior.decode(got)[:, 0]
    assert reference.timesteps.tolist() == [751, 501, 251, 1]
    torch.testing.assert_close(got, prior._fold(want), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_audio, want_audio, rtol=1e-5, atol=1e-5)
    assert (want - x_start).abs().max() > 0.1  # it moved


def test_encode_is_audioldms_log_mel_and_the_vae_encoder(prior: AudioLDM2Prior) -> None:
    librosa = pytest.importorskip("librosa")
    x = 0.1 * _randn(1, 1, 3000, seed=3)
    padded = torch.nn.functional.pad(x[0, 0], (0, 5 * HOP - 3000))  # a whole number of latent frames
    edge = (1024 - 160) // 2  # AudioLDM's reflect padding, (n_fft - hop) / 2 on each side
    framed = torch.nn.functional.pad(padded[None, None], (edge, edge), mode="reflect")[0, 0]
    stft = torch.stft(framed, 1024, 160, 1024, torch.hann_window(1024), center=False, return_complex=True)
    basis = torch.from_numpy(librosa.filters.mel(sr=SR, n_fft=1024, n_mels=64, fmin=0, fmax=8000))
    log_mel = torch.log(torch.clamp(basis @ stft.abs(), min=1e-5)).T  # (T', 64)
    torch.testing.assert_close(prior.log_mel(x)[0], log_mel, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        want = prior.vae.encode(log_mel[None, None]).latent_dist.mean * prior.vae.config.scaling_factor
        got = prior.encode(x)
    assert got.shape == (1, prior.latent_channels, 5)
    torch.testing.assert_close(got, prior._fold(want), rtol=1e-4, atol=1e-4)


def test_cfg_is_one_batched_forward_and_a_batch_equals_its_rows(prior: AudioLDM2Prior) -> None:
    cond = prior.embed([PROMPT, "glass breaking"], negative=["noise", "wind"])
    z_sigma = 2.0 * _randn(4, prior.latent_channels, 2, seed=4)
    sigma = torch.tensor([0.5, 5.0, 1.0, 60.0])
    rows: list[int] = []
    handle = prior.unet.register_forward_hook(lambda _m, args, _out: rows.append(args[0].shape[0]))
    try:
        with torch.no_grad():
            batched = prior.denoise(z_sigma, sigma, cond, cfg_scale=2.5)
    finally:
        handle.remove()
    assert rows == [8]  # conditional and negative rows in a single forward
    with torch.no_grad():
        singles = torch.cat(
            [
                prior.denoise(z_sigma[i : i + 1], sigma[i : i + 1], cond.select([i // 2]), 2.5)
                for i in range(4)
            ]
        )
    _assert_close_per_sigma(batched, singles, sigma)


@pytest.mark.parametrize("mode", MODES)
def test_every_sds_mode_updates_the_audio_and_not_the_prior(prior: AudioLDM2Prior, mode: str) -> None:
    x = (0.1 * _randn(1, 1, 2000, seed=5)).requires_grad_(True)
    cond = prior.embed([PROMPT])
    config = SDSConfig(mode=mode, cfg_scale=3.0, num_draws=2, num_steps=2, stft_windows=(256, 1024))
    step = sds_step(prior, x, cond, config, generator=torch.Generator().manual_seed(6))
    step.loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().max() > 1e-6
    assert all(p.grad is None for p in prior.parameters())


def test_pickled_weights_are_refused_before_loading(folder: Path, tmp_path: Path) -> None:
    pickled = tmp_path / "pickled"
    shutil.copytree(folder, pickled)
    weights = pickled / "vocoder" / "model.safetensors"
    torch.save(load_file(weights), weights.with_name("pytorch_model.bin"))
    weights.unlink()
    refused = "pickled weights are refused, safetensors only: vocoder/pytorch_model.bin"
    with pytest.raises(ModelLoadError, match=refused):
        AudioLDM2Prior.from_config(AudioLDM2Config(model=str(pickled)))


def test_the_text_to_speech_variant_is_refused_in_one_line(folder: Path, tmp_path: Path) -> None:
    speech = tmp_path / "speech"
    shutil.copytree(folder, speech)
    index = json.loads((speech / "model_index.json").read_text())
    index["text_encoder_2"] = ["transformers", "VitsModel"]
    (speech / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ModelLoadError) as info:
        AudioLDM2Prior.from_config(AudioLDM2Config(model=str(speech)))
    assert "expected a T5EncoderModel text_encoder_2" in str(info.value) and "\n" not in str(info.value)


def test_generated_audio_is_finite_and_repeats(prior: AudioLDM2Prior) -> None:
    from audiosds.sampling import generate_latent

    cond = prior.embed([PROMPT])
    with torch.no_grad():
        a, b = (
            prior.decode(generate_latent(prior, cond, 3, 3, 3.0, "ddim", torch.Generator().manual_seed(7)))
            for _ in range(2)
        )
    assert a.shape == (1, 1, 3 * HOP) and torch.isfinite(a).all() and np.isfinite(a.numpy()).all()
    assert torch.equal(a, b)
