"""The Stable Audio Open backend (priors/stable_audio.py) on a tiny random diffusers folder, offline.

The oracle for conditioning is diffusers' own ``StableAudioPipeline`` (its ``encode_prompt`` and
``encode_duration``); the oracle for the denoiser is a direct DiT call with the documented
v-objective scaling (module docstring of stable_audio.py).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from diffusers import StableAudioPipeline
from diffusers.models.embeddings import get_1d_rotary_pos_embed

from audiosds.bench.sao import TINY_MAX_FRAMES, build_tiny_stable_audio
from audiosds.priors import build
from audiosds.priors.stable_audio import ModelLoadError, StableAudioConfig, StableAudioPrior
from audiosds.sampling import denoise_from
from audiosds.sds import SDSConfig, sds_step

HOP = 2048
SR = 44100


pytestmark = pytest.mark.usefixtures("hub_offline")  # conftest: the hub switched off for the module


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_stable_audio(tmp_path_factory.mktemp("sao") / "tiny", seed=0)


@pytest.fixture(scope="module")
def prior(folder: Path) -> StableAudioPrior:
    p = build("stable-audio-open", model=str(folder))
    assert isinstance(p, StableAudioPrior)
    return p


@pytest.fixture(scope="module")
def pipe(prior: StableAudioPrior) -> StableAudioPipeline:
    """diffusers' pipeline over the same modules, for its conditioning code (no scheduler needed)."""
    return StableAudioPipeline(
        vae=prior.vae,
        text_encoder=prior.text_encoder,
        projection_model=prior.projection_model,
        tokenizer=prior.tokenizer,
        transformer=prior.transformer,
        scheduler=None,
    )


def _noisy(prior: StableAudioPrior, batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, prior.latent_channels, frames, generator=g)


def test_loads_offline_with_real_geometry(prior: StableAudioPrior) -> None:
    assert (prior.name, prior.sample_rate, prior.channels) == ("stable-audio-open", SR, 2)
    assert (prior.downsampling, prior.latent_channels) == (HOP, 64)
    assert (prior.sigma_min, prior.sigma_max, prior.sigma_data) == (0.3, 500.0, 1.0)
    assert prior.max_seconds == pytest.approx(TINY_MAX_FRAMES * HOP / SR)
    assert not prior.training
    assert all(not p.requires_grad for p in prior.parameters())
    n_params = {m: sum(p.numel() for p in getattr(prior, m).parameters()) for m in ("transformer", "vae")}
    assert all(n > 0 for n in n_params.values())


def test_time_axis_is_the_v_objective_angle(prior: StableAudioPrior) -> None:
    t = torch.linspace(0.01, 0.99, 17, dtype=torch.float64)
    sigma = prior.sigma_of_t(t)
    torch.testing.assert_close(sigma, torch.tan(t * math.pi / 2))
    torch.testing.assert_close(prior.t_of_sigma(sigma), t)
    assert prior.sigma_of_t(torch.tensor(0.5)).item() == pytest.approx(1.0)
    assert prior.t_of_sigma(torch.tensor(500.0)).item() == pytest.approx(math.atan(500) * 2 / math.pi)


def test_conditioning_matches_diffusers_pipeline(prior: StableAudioPrior, pipe: StableAudioPipeline) -> None:
    prompts, negative = ["bongo drum playing a rhythmic beat", "waves crashing"], ["glass", "old clock"]
    with torch.no_grad():
        ref = pipe.encode_prompt(prompts, "cpu", True, negative_prompt=negative)  # (2P, L, D): neg, pos
    cond = prior.embed(prompts, negative=negative)
    torch.testing.assert_close(cond.cond["text"], ref[2:], rtol=0, atol=0)
    torch.testing.assert_close(cond.uncond["text"], ref[:2], rtol=0, atol=0)
    assert cond.uncond["cross_seconds"].tolist() == [1.0, 1.0]
    null = prior.embed(prompts)
    torch.testing.assert_close(null.cond["text"], ref[2:], rtol=0, atol=0)
    assert not null.uncond["text"].any() and null.uncond["cross_seconds"].tolist() == [0.0, 0.0]


def _reference_x0(
    prior: StableAudioPrior,
    pipe: StableAudioPipeline,
    z_sigma: torch.Tensor,
    sigma: torch.Tensor,
    prompt: str,
    null: bool,
) -> torch.Tensor:
    """x0_hat by calling the DiT directly, conditioning built the way diffusers' pipeline builds it."""
    batch, _, frames = z_sigma.shape
    with torch.no_grad():
        text = pipe.encode_prompt([prompt] * batch, "cpu", False)
        start, end = pipe.encode_duration(0.0, frames * HOP / SR, "cpu", False, batch)
        cross = torch.cat([text, start, end], dim=1)
        if null:
            cross = torch.zeros_like(cross)
        head_dim = prior.transformer.config.attention_head_dim
        rotary = get_1d_rotary_pos_embed(
            head_dim // 2, frames + 1, use_real=True, repeat_interleave_real=False
        )
        s = sigma[:, None, None]
        v = prior.transformer(
            z_sigma / torch.sqrt(1 + s**2),
            torch.atan(sigma) * 2 / math.pi,
            encoder_hidden_states=cross,
            global_hidden_states=torch.cat([start, end], dim=2),
            rotary_embedding=rotary,
        ).sample
    return z_sigma / (1 + s**2) - s * v / torch.sqrt(1 + s**2)


@pytest.mark.parametrize("frames", [1, 3, TINY_MAX_FRAMES])
def test_x0_hat_formula_against_direct_transformer_call(
    prior: StableAudioPrior, pipe: StableAudioPipeline, frames: int
) -> None:
    z = _noisy(prior, 3, frames)
    sigma = torch.tensor([0.3, 2.0, 40.0])
    z_sigma = z + sigma[:, None, None] * _noisy(prior, 3, frames, seed=1)
    cond = prior.embed(["rhythmic ticking of an old grandfather clock"])
    with torch.no_grad():
        got_c = prior.denoise(z_sigma, sigma, cond, cfg_scale=1.0)
        got_u = prior.denoise(z_sigma, sigma, cond, cfg_scale=0.0)
    want_c = _reference_x0(prior, pipe, z_sigma, sigma, cond.prompts[0], null=False)
    want_u = _reference_x0(prior, pipe, z_sigma, sigma, cond.prompts[0], null=True)
    torch.testing.assert_close(got_c, want_c, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_u, want_u, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(got_c, got_u, atol=1e-4)  # the text conditioning matters


def test_cfg_is_one_batched_forward_equal_to_separate_branches(prior: StableAudioPrior) -> None:
    z_sigma = 3.0 * _noisy(prior, 2, 4)
    sigma = torch.tensor([3.0, 0.7])
    cond = prior.embed(["saxophone playing melody"])
    rows: list[int] = []
    handle = prior.transformer.register_forward_hook(lambda _m, args, _out: rows.append(args[0].shape[0]))
    try:
        with torch.no_grad():
            guided = prior.denoise(z_sigma, sigma, cond, cfg_scale=4.0)
    finally:
        handle.remove()
    assert rows == [4]  # conditional and unconditional rows in a single forward
    with torch.no_grad():
        d_c = prior.denoise(z_sigma, sigma, cond, cfg_scale=1.0)
        d_u = prior.denoise(z_sigma, sigma, cond, cfg_scale=0.0)
    torch.testing.assert_close(guided, d_u + 4.0 * (d_c - d_u), rtol=1e-5, atol=1e-5)


def test_batch_equals_singles(prior: StableAudioPrior) -> None:
    cond = prior.embed(["bongo drum", "glass breaking and shattering"], negative=["noise", "wind"])
    z_sigma = 2.0 * _noisy(prior, 4, 3)
    sigma = torch.tensor([0.5, 5.0, 1.0, 80.0])
    with torch.no_grad():
        batched = prior.denoise(z_sigma, sigma, cond, cfg_scale=2.5)
        singles = torch.cat(
            [
                prior.denoise(z_sigma[i : i + 1], sigma[i : i + 1], cond.select([i // 2]), 2.5)
                for i in range(4)
            ]
        )
    torch.testing.assert_close(batched, singles, rtol=1e-5, atol=1e-5)


def test_negative_prompt_replaces_the_unconditional_branch(prior: StableAudioPrior) -> None:
    z_sigma = 2.0 * _noisy(prior, 1, 3)
    with torch.no_grad():
        plain = prior.embed(["waves crashing on a rocky shore"])
        neg = prior.embed(["waves crashing on a rocky shore"], negative=["traffic road noise"])
        as_prompt = prior.embed(["traffic road noise"])
        u_null = prior.denoise(z_sigma, 1.5, plain, cfg_scale=0.0)
        u_neg = prior.denoise(z_sigma, 1.5, neg, cfg_scale=0.0)
        c_neg = prior.denoise(z_sigma, 1.5, neg, cfg_scale=1.0)
        c_plain = prior.denoise(z_sigma, 1.5, plain, cfg_scale=1.0)
        c_of_negative_text = prior.denoise(z_sigma, 1.5, as_prompt, cfg_scale=1.0)
    assert (u_null - u_neg).abs().max() > 1e-4
    torch.testing.assert_close(c_neg, c_plain, rtol=0, atol=0)
    # The negative branch is the conditional denoiser of the negative text.
    torch.testing.assert_close(u_neg, c_of_negative_text, rtol=1e-6, atol=1e-6)


def test_encode_noise_k_step_denoise_decode(prior: StableAudioPrior) -> None:
    g = torch.Generator().manual_seed(3)
    x = 0.1 * torch.randn(2, 2, 3000, generator=g)
    cond = prior.embed(["cars passing by on a busy street"])
    with torch.no_grad():
        z = prior.encode(x)
    eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(4))
    sigma = torch.tensor([2.0, 8.0])

    def run() -> torch.Tensor:
        with torch.no_grad():
            z0 = denoise_from(prior, z + sigma[:, None, None] * eps, sigma, cond, cfg_scale=3.0, num_steps=3)
            return prior.decode(z0)

    x_hat = run()
    assert x_hat.shape == (2, 2, 2 * HOP)
    assert torch.isfinite(x_hat).all()
    assert torch.equal(x_hat, run())  # deterministic sampler, no hidden randomness


def test_lengths_not_a_multiple_of_the_hop(prior: StableAudioPrior) -> None:
    x = torch.randn(1, 2, 3000, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        z = prior.encode(x)
        z_padded = prior.encode(F.pad(x, (0, 2 * HOP - 3000)))
        x_hat = prior.decode(z)
    assert z.shape == (1, 64, prior.latent_frames(3000)) == (1, 64, 2)
    torch.testing.assert_close(z, z_padded, rtol=0, atol=0)
    assert x_hat.shape == (1, 2, 2 * HOP)


def test_longer_than_the_model_raises(prior: StableAudioPrior) -> None:
    too_long = TINY_MAX_FRAMES + 1
    limit = f"{TINY_MAX_FRAMES * HOP / SR:.2f} s"
    with pytest.raises(ValueError, match=limit):
        prior.encode(torch.zeros(1, 2, TINY_MAX_FRAMES * HOP + 1))
    with pytest.raises(ValueError, match=limit):
        prior.decode(torch.zeros(1, 64, too_long))
    with pytest.raises(ValueError, match=limit):
        prior.denoise(torch.zeros(1, 64, too_long), 1.0, prior.embed(["wind"]))
    with pytest.raises(ValueError, match=r"expected \(B, 2, N\)"):
        prior.encode(torch.zeros(1, 1, HOP))


def test_missing_parts_are_all_named(folder: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken, ignore=shutil.ignore_patterns("vae"))
    (broken / "transformer" / "config.json").unlink()
    with pytest.raises(ModelLoadError) as info:
        StableAudioPrior.from_config(StableAudioConfig(model=str(broken)))
    assert str(info.value) == f"model folder {broken} is missing: transformer/config.json, vae/"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("part", "weights", "pickle_name"),
    [
        ("transformer", "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"),
        ("text_encoder", "model.safetensors", "pytorch_model.bin"),
    ],
)
def test_pickled_weights_are_refused_before_loading(
    folder: Path, tmp_path: Path, part: str, weights: str, pickle_name: str
) -> None:
    pickled = tmp_path / "pickled"
    shutil.copytree(folder, pickled)
    (pickled / part / weights).rename(pickled / part / pickle_name)  # the bytes are never read
    with pytest.raises(ModelLoadError) as info:
        StableAudioPrior.from_config(StableAudioConfig(model=str(pickled)))
    assert str(info.value) == (
        f"model folder {pickled}: pickled weights are refused, safetensors only: {part}/{pickle_name}"
    )


def test_unknown_hub_id_offline_is_one_clear_line() -> None:
    with pytest.raises(ModelLoadError) as info:
        StableAudioPrior.from_config(StableAudioConfig(model="no-such-owner/no-such-audio-model"))
    message = str(info.value)
    assert "'no-such-owner/no-such-audio-model' is not a local folder" in message
    assert "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_decoder_sds_step_sends_the_mean_residual_to_the_audio_and_no_graph_through_the_prior(
    prior: StableAudioPrior,
) -> None:
    x = (0.1 * torch.randn(1, 2, 4000, generator=torch.Generator().manual_seed(6))).requires_grad_(True)
    cond = prior.embed(["gentle rustling of leaves in the wind"])
    config = SDSConfig(mode="decoder", cfg_scale=3.0, num_draws=2)
    graph: list[tuple[str, bool]] = []  # (module, grad mode) for every call into the prior's networks
    modules = {"transformer": prior.transformer, "encoder": prior.vae.encoder, "decoder": prior.vae.decoder}
    handles = [
        m.register_forward_hook(lambda _m, _a, _o, name=name: graph.append((name, torch.is_grad_enabled())))
        for name, m in modules.items()
    ]
    try:
        step = sds_step(prior, x, cond, config, generator=torch.Generator().manual_seed(7))
    finally:
        for handle in handles:
            handle.remove()
    step.loss.backward()

    # Oracle, drawn by hand in sds_step's order: t ~ U[t_min, t_max] on the v-objective angle,
    # sigma = tan(pi t / 2), then eps; one guided denoise per draw, decoded and cropped to x.
    g = torch.Generator().manual_seed(7)
    t = config.t_min + torch.rand(2, generator=g, dtype=torch.float64) * (config.t_max - config.t_min)
    sigma = torch.tan(t * math.pi / 2).float()
    with torch.no_grad():
        z = prior.encode(x).repeat(2, 1, 1)
        eps = torch.randn(z.shape, generator=g)
        x_hat = prior.decode(prior.denoise(z + sigma[:, None, None] * eps, sigma, cond, cfg_scale=3.0))
    residual = (x.detach() - x_hat[..., : x.shape[-1]]).mean(dim=0, keepdim=True)  # Decoder-SDS, eqs. 5-6
    torch.testing.assert_close(step.sigma, sigma)
    torch.testing.assert_close(x.grad, residual, rtol=1e-4, atol=1e-5)
    assert x.grad.abs().max() > 1e-3  # a real update, not two zeros agreeing
    # The prior ran without building a graph: one encode, one batched CFG forward, one decode of both draws.
    assert graph == [("encoder", False), ("transformer", False), ("decoder", False)]


def test_builder_is_seeded(folder: Path, tmp_path: Path) -> None:
    weights = "transformer/diffusion_pytorch_model.safetensors"  # ``folder`` was built with seed 0
    same = build_tiny_stable_audio(tmp_path / "same", seed=0) / weights
    other = build_tiny_stable_audio(tmp_path / "other", seed=1) / weights
    assert (folder / weights).read_bytes() == same.read_bytes() != other.read_bytes()
