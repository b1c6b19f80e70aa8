"""The Stable Audio 3 backend (priors/stable_audio_3.py) against diffusers' own StableAudio3Pipeline.

Every oracle is diffusers code run on the same tiny random folder: the pipeline's ``encode_prompt`` /
``encode_duration`` / ``prepare_cross_attention`` for conditioning, its FlowMatchEulerDiscreteScheduler
(``scale_noise`` to noise a latent, ``step`` to the last level for x0_hat) and DiT for the denoiser,
and the pipeline's whole ``__call__`` (non-stochastic scheduler, classifier-free guidance) for the sampler.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from diffusers import FlowMatchEulerDiscreteScheduler, StableAudio3Pipeline
from diffusers.pipelines.stable_audio_3 import pipeline_stable_audio_3
from safetensors.torch import load_file

from audiosds.bench.sa3 import SA3_LATENT_CHANNELS, build_tiny_stable_audio_3
from audiosds.priors import build
from audiosds.priors.stable_audio import ModelLoadError
from audiosds.priors.stable_audio_3 import StableAudio3Config, StableAudio3Prior
from audiosds.sampling import sample
from audiosds.sds import MODES, SDSConfig, sds_step

HOP = 4096
SR = 44100
PROMPT = "bongo drum playing a rhythmic beat"


pytestmark = pytest.mark.usefixtures("hub_offline")  # conftest: the hub switched off for the module


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_stable_audio_3(tmp_path_factory.mktemp("sa3") / "tiny")


@pytest.fixture(scope="module")
def prior(folder: Path) -> StableAudio3Prior:
    p = build("stable-audio-3", model=str(folder))
    assert isinstance(p, StableAudio3Prior)
    return p


def _pipe(prior: StableAudio3Prior, stochastic: bool) -> StableAudio3Pipeline:
    """diffusers' pipeline over the prior's own modules, with the folder's scheduler (stochastic or not)."""
    pipe = StableAudio3Pipeline(
        vae=prior.vae,
        text_encoder=prior.text_encoder,
        tokenizer=prior.tokenizer,
        duration_embedder=prior.duration_embedder,
        transformer=prior.transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, stochastic_sampling=stochastic),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_loads_offline_with_real_geometry(prior: StableAudio3Prior) -> None:
    assert (prior.name, prior.sample_rate, prior.channels) == ("stable-audio-3", SR, 2)
    assert (prior.downsampling, prior.latent_channels) == (HOP, SA3_LATENT_CHANNELS)
    assert prior.sigma_min == pytest.approx(math.exp(-2.0)) and prior.sigma_max == pytest.approx(
        math.exp(6.2)
    )
    assert not prior.guidance_distilled and prior.timestep_scale == 1.0
    assert not prior.training and all(not p.requires_grad for p in prior.parameters())


def test_time_axis_is_rectified_flow_time_and_the_range_is_the_pipelines(prior: StableAudio3Prior) -> None:
    t = torch.linspace(0.0, 0.99, 12, dtype=torch.float64)
    sigma = prior.sigma_of_t(t)
    torch.testing.assert_close(sigma, t / (1 - t))
    torch.testing.assert_close(prior.t_of_sigma(sigma), t)
    assert prior.sigma_of_t(torch.tensor(1.0)).item() == pytest.approx(1e12)
    # The pipeline's schedule: t = sigmoid(-logsnr) on a log-SNR grid from -6.2 to 2 (its first
    # breakpoint is then forced to 1); the prior's sigma range is the same two ends.
    ts = pipeline_stable_audio_3.logsnr_sigma_schedule(4, -6.2, 2.0)
    assert ts[0] == 1.0
    ends = prior.t_of_sigma(torch.tensor([prior.sigma_max, prior.sigma_min]))
    torch.testing.assert_close(ends, torch.sigmoid(torch.tensor([6.2, -2.0], dtype=torch.float64)))
    assert (
        float(prior.t_of_sigma(prior.sigma_min)) < ts[-1] < ts[1] < float(prior.t_of_sigma(prior.sigma_max))
    )


def test_conditioning_matches_diffusers_pipeline(prior: StableAudio3Prior) -> None:
    pipe = _pipe(prior, stochastic=False)
    prompts, negative = [PROMPT, "waves crashing"], ["glass", "old clock ticking"]
    with torch.no_grad():
        text, mask = pipe.encode_prompt(prompts, "cpu", 1)
        neg_text, neg_mask = pipe.encode_prompt(negative, "cpu", 1)
        null_text, null_mask = pipe.encode_prompt(["", ""], "cpu", 1)
    cond = prior.embed(prompts, negative=negative)
    torch.testing.assert_close(cond.cond["text"], text, rtol=0, atol=0)
    torch.testing.assert_close(cond.uncond["text"], neg_text, rtol=0, atol=0)
    assert torch.equal(cond.cond["mask"], mask) and torch.equal(cond.uncond["mask"], neg_mask)
    null = prior.embed(prompts)
    torch.testing.assert_close(null.uncond["text"], null_text, rtol=0, atol=0)
    assert torch.equal(null.uncond["mask"], null_mask)
    assert 0 < int(mask[0].sum()) < mask.shape[1]  # real padding, replaced by the DiT's padding embedding
    with torch.no_grad():
        duration = pipe.encode_duration(5 * HOP / SR, "cpu", 1, 1)
    torch.testing.assert_close(prior.duration_token(5), duration, rtol=0, atol=0)


def _diffusers_x0(
    prior: StableAudio3Prior,
    pipe: StableAudio3Pipeline,
    z0: torch.Tensor,
    eps: torch.Tensor,
    sigma: float,
    cfg_scale: float,
) -> torch.Tensor:
    """x0_hat as diffusers computes it for one row: the scheduler noises z0 to flow time t, the DiT
    predicts the velocity for the pipeline's conditioning (negative branch first, as the pipeline
    guides), and the scheduler's step to the final level 0 returns x0_hat."""
    frames = z0.shape[-1]
    t = float(prior.t_of_sigma(torch.tensor(sigma)))
    pipe.scheduler.set_timesteps(sigmas=[t])
    timestep = pipe.scheduler.timesteps[0]
    x_t = pipe.scheduler.scale_noise(z0, timestep[None], eps)
    with torch.no_grad():
        text, mask = pipe.encode_prompt([PROMPT], "cpu", 1)
        null_text, null_mask = pipe.encode_prompt([""], "cpu", 1)
        duration = pipe.encode_duration(frames * HOP / SR, "cpu", 1, 1)
        context, context_mask = pipe.prepare_cross_attention(text, mask, duration)
        null_context, null_context_mask = pipe.prepare_cross_attention(null_text, null_mask, duration)
        v = prior.transformer(
            torch.cat([x_t, x_t]),
            timestep.expand(2),
            encoder_hidden_states=torch.cat([null_context, context]),
            global_hidden_states=torch.cat([duration, duration]),
            encoder_attention_mask=torch.cat([null_context_mask, context_mask]),
        ).sample
    v_u, v_c = v.chunk(2)
    guided = v_u + cfg_scale * (v_c - v_u)
    return pipe.scheduler.step(guided, timestep, x_t).prev_sample


@pytest.mark.parametrize("stochastic", [False, True], ids=["euler", "ping-pong"])
def test_x0_hat_equals_the_diffusers_scheduler_and_model(prior: StableAudio3Prior, stochastic: bool) -> None:
    """Both scheduler settings reach x0_hat exactly at the last level (the ping-pong step re-noises with
    weight 0 there), with and without guidance, at sigmas across the pipeline's range."""
    pipe = _pipe(prior, stochastic)
    sigmas = [0.2, 1.0, 7.0, 300.0]
    z0 = _randn(len(sigmas), SA3_LATENT_CHANNELS, 3, seed=0)
    eps = _randn(len(sigmas), SA3_LATENT_CHANNELS, 3, seed=1)
    cond = prior.embed([PROMPT])
    s = torch.tensor(sigmas)
    z_sigma = z0 + s[:, None, None] * eps
    for cfg_scale in (1.0, 0.0, 4.0):
        with torch.no_grad():
            got = prior.denoise(z_sigma, s, cond, cfg_scale=cfg_scale)
        want = torch.cat(
            [
                _diffusers_x0(prior, pipe, z0[i : i + 1], eps[i : i + 1], sigmas[i], cfg_scale)
                for i in range(4)
            ]
        )
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        d_c, d_u = prior.denoise(z_sigma, s, cond, 1.0), prior.denoise(z_sigma, s, cond, 0.0)
    assert (d_c - d_u).abs().max() > 1e-3  # the prompt matters, so guidance is tested for real


def test_deterministic_sampler_reproduces_the_pipeline(
    prior: StableAudio3Prior, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline's own __call__ (Euler scheduler, CFG 3 with a negative prompt) and sample(..., "ddim")
    on the same levels give the same latent and, decoded, the same audio.

    The pipeline starts at flow time 1, sigma = infinity, which no VE sampler can represent; both start
    at t0 = 0.995 instead: the pipeline's own ``logsnr_sigma_schedule(..., sigma_max=t0)`` (the start its
    audio-to-audio variant uses), each level rounded through the prior's sigma axis.
    """
    pipe = _pipe(prior, stochastic=False)
    steps, t0, frames, cfg_scale = 5, 0.995, 3, 3.0
    own_schedule = pipeline_stable_audio_3.logsnr_sigma_schedule
    levels = torch.tensor(own_schedule(steps, -6.2, 2.0, sigma_max=t0), dtype=torch.float64)
    sigmas = prior.sigma_of_t(levels).float()  # (steps,), the sampler's float32 levels
    ts = prior.t_of_sigma(sigmas).float()  # the flow times the prior hands the DiT for them
    monkeypatch.setattr(pipeline_stable_audio_3, "logsnr_sigma_schedule", lambda *a, **k: ts.tolist())
    x_start = _randn(1, SA3_LATENT_CHANNELS, frames, seed=2)  # the pipeline's latent at t0
    duration = frames * HOP / SR
    with torch.no_grad():
        run = {
            "prompt": PROMPT,
            "negative_prompt": "glass",
            "duration": duration,
            "guidance_scale": cfg_scale,
        }
        want = pipe(**run, num_inference_steps=steps, latents=x_start, output_type="latent").audios
        want_audio = pipe(**run, num_inference_steps=steps, latents=x_start).audios
        cond = prior.embed([PROMPT], negative=["glass"])
        z = x_start * (1 + sigmas[0])  # z_sigma = x_t / (1 - t)
        got = sample(prior, z, torch.cat([sigmas, torch.zeros(1)]), cond, cfg_scale, "ddim")
        got_audio = prior.decode(got)[..., : int(duration * SR)].clamp(-1, 1)
    assert pipe.scheduler.sigmas.tolist() == [*ts.tolist(), 0.0]  # the pipeline ran these levels
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_audio, want_audio, rtol=1e-5, atol=1e-5)
    assert (want - x_start).abs().max() > 0.1  # it moved


def test_cfg_is_one_batched_forward_and_a_batch_equals_its_rows(prior: StableAudio3Prior) -> None:
    cond = prior.embed([PROMPT, "glass breaking and shattering"], negative=["noise", "wind"])
    z_sigma = 2.0 * _randn(4, SA3_LATENT_CHANNELS, 2, seed=3)
    sigma = torch.tensor([0.5, 5.0, 1.0, 80.0])
    rows: list[int] = []
    handle = prior.transformer.register_forward_hook(lambda _m, args, _out: rows.append(args[0].shape[0]))
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
    torch.testing.assert_close(batched, singles, rtol=1e-5, atol=1e-5)


def test_encode_pads_to_a_whole_frame_and_decode_inverts_the_shape(prior: StableAudio3Prior) -> None:
    x = 0.1 * _randn(1, 2, 5000, seed=4)
    with torch.no_grad():
        z = prior.encode(x)
        padded = prior.vae.encode(F.pad(x, (0, 2 * HOP - 5000))).latents
        x_hat = prior.decode(z)
    assert z.shape == (1, SA3_LATENT_CHANNELS, 2)
    torch.testing.assert_close(z, padded, rtol=0, atol=0)
    assert x_hat.shape == (1, 2, 2 * HOP)
    with pytest.raises(ValueError, match=r"expected \(B, 2, N\)"):
        prior.encode(torch.zeros(1, 1, HOP))


def test_clips_past_the_duration_embedders_range_are_refused(prior: StableAudio3Prior) -> None:
    longest = math.floor(prior.max_seconds * SR / HOP)  # frames of the longest accepted clip
    assert prior.max_seconds == 384.0  # StableAudio3DurationEmbedder's max_val, as in the real model
    for call in (
        lambda: prior.denoise(torch.zeros(1, SA3_LATENT_CHANNELS, longest + 1), 1.0, prior.embed([PROMPT])),
        lambda: prior.decode(torch.zeros(1, SA3_LATENT_CHANNELS, longest + 1)),
        lambda: prior.encode(torch.zeros(1, 2, longest * HOP + 1)),
    ):
        with pytest.raises(ValueError, match="at most 384 s"):
            call()


@pytest.mark.parametrize("mode", MODES)
def test_every_sds_mode_updates_the_audio_and_not_the_prior(prior: StableAudio3Prior, mode: str) -> None:
    x = (0.1 * _randn(1, 2, 6000, seed=5)).requires_grad_(True)
    cond = prior.embed([PROMPT])
    config = SDSConfig(mode=mode, cfg_scale=3.0, num_draws=2, num_steps=2, stft_windows=(256, 1024))
    step = sds_step(prior, x, cond, config, generator=torch.Generator().manual_seed(6))
    step.loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().max() > 1e-6
    assert all(p.grad is None for p in prior.parameters())


def test_pickled_weights_are_refused_before_loading(folder: Path, tmp_path: Path) -> None:
    pickled = tmp_path / "pickled"
    shutil.copytree(folder, pickled)
    weights = pickled / "transformer" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(weights), weights.with_suffix(".bin"))
    weights.unlink()
    with pytest.raises(ModelLoadError) as info:
        StableAudio3Prior.from_config(StableAudio3Config(model=str(pickled)))
    assert "pickled weights are refused, safetensors only: transformer/diffusion_pytorch_model.bin" in str(
        info.value
    )


@pytest.mark.parametrize(
    "scheduler",
    [
        {
            "_class_name": "FlowMatchEulerDiscreteScheduler",
            "num_train_timesteps": 1,
            "stochastic_sampling": True,
        },
        {"_class_name": "PingPongScheduler", "num_inference_steps": 8},
    ],
)
def test_a_distilled_checkpoints_scheduler_is_recognised(
    folder: Path, tmp_path: Path, scheduler: dict
) -> None:
    distilled = tmp_path / "distilled"
    shutil.copytree(folder, distilled)
    (distilled / "scheduler" / "scheduler_config.json").write_text(json.dumps(scheduler))
    prior = StableAudio3Prior.from_config(StableAudio3Config(model=str(distilled)))
    assert prior.guidance_distilled and prior.timestep_scale == 1.0


def test_missing_parts_are_all_named_in_one_line(folder: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken, ignore=shutil.ignore_patterns("vae"))
    (broken / "duration_embedder" / "config.json").unlink()
    with pytest.raises(ModelLoadError) as info:
        StableAudio3Prior.from_config(StableAudio3Config(model=str(broken)))
    assert str(info.value) == f"model folder {broken} is missing: vae/, duration_embedder/config.json"
