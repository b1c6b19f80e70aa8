"""Separation sources as renderers: exact mixture consistency, STFT round trips, gradients."""

from __future__ import annotations

import json

import pytest
import torch

from audiosds.priors import build
from audiosds.priors.analytic import AnalyticConfig, AnalyticPrior
from audiosds.renderers.sources import (
    LatentSources,
    LatentSourcesConfig,
    MaskSources,
    MaskSourcesConfig,
    RemaskedSources,
    RemaskedSourcesConfig,
    ratio_masks,
    rms_db,
)
from audiosds.sds import SDSConfig, sds_step
from audiosds.spectral import istft, magnitude, multiscale_spectral_loss, stft

N = 1000  # not a multiple of the analytic prior's 64-sample frame, nor of the hop
FFT, HOP = 256, 64


@pytest.fixture(scope="module")
def prior() -> AnalyticPrior:
    return build("analytic")


@pytest.fixture(scope="module")
def stereo_prior() -> AnalyticPrior:
    return AnalyticPrior(AnalyticConfig(channels=2)).freeze()


def _mixture(channels: int = 1, n: int = N, seed: int = 0) -> torch.Tensor:
    return 0.3 * torch.randn(channels, n, generator=torch.Generator().manual_seed(seed))


def _latent(prior: AnalyticPrior, mixture: torch.Tensor, k: int) -> torch.Tensor:
    return prior.encode(mixture[None] / k)  # (1, D, T)


@pytest.mark.parametrize("n", [20, 100, 1000])  # 20 < n_fft / 2: the zero-padded branch
def test_istft_inverts_stft(n: int) -> None:
    x = _mixture(2, n)
    spec = stft(x, FFT, HOP)
    assert spec.shape == (2, FFT // 2 + 1, 1 + n // HOP)
    torch.testing.assert_close(istft(spec, FFT, HOP, n), x, atol=1e-5, rtol=0)


def test_ratio_masks_are_the_closed_form_and_sum_to_one() -> None:
    mags = magnitude(
        stft(_mixture(1).expand(3, -1, -1) * torch.tensor([1.0, 0.5, 0.1])[:, None, None], FFT, HOP)
    )
    mags = mags * torch.rand(mags.shape, generator=torch.Generator().manual_seed(1))  # break proportionality
    for p in (1.0, 2.0):
        masks = ratio_masks(mags, p)
        torch.testing.assert_close(masks, mags**p / (mags**p).sum(0, keepdim=True), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(masks.sum(0), torch.ones_like(masks[0]), atol=1e-6, rtol=0)
    assert (ratio_masks(mags, 2.0).amax(0) >= ratio_masks(mags, 1.0).amax(0) - 1e-6).all()  # p=2 is sharper
    with pytest.raises(ValueError, match="power"):
        ratio_masks(mags, 0.0)


@pytest.mark.parametrize("channels", [1, 2])
def test_mask_sources_sum_to_the_mixture(channels: int) -> None:
    mix = _mixture(channels)
    renderer = MaskSources(mix, 16000, MaskSourcesConfig(num_sources=3, init_noise=3.0, n_fft=FFT, hop=HOP))
    x = renderer()
    assert x.shape == (3, channels, N)
    assert (x[0] - x[1]).abs().max() > 1e-2  # strong init noise: the sources really differ
    torch.testing.assert_close(x.sum(0), mix, atol=1e-5, rtol=0)


def test_mask_sources_start_at_mixture_over_k_without_noise() -> None:
    mix = _mixture(2)
    x = MaskSources(mix, 16000, MaskSourcesConfig(num_sources=4, init_noise=0.0, n_fft=FFT, hop=HOP))()
    torch.testing.assert_close(x, (mix / 4).expand(4, -1, -1), atol=1e-6, rtol=0)


def test_mask_sources_gradcheck() -> None:
    mix = _mixture(1, 64).double()
    renderer = MaskSources(mix, 16000, MaskSourcesConfig(num_sources=2, init_noise=0.5, n_fft=16, hop=4))
    logits = renderer.raw["logits"].detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda raw: renderer.render({"logits": raw}), (logits,))


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_remasked_sources_sum_to_the_mixture(stereo_prior: AnalyticPrior, power: float) -> None:
    mix = _mixture(2)
    cfg = RemaskedSourcesConfig(num_sources=3, init_noise=2.0, n_fft=FFT, hop=HOP, power=power)
    renderer = RemaskedSources(stereo_prior.decode, _latent(stereo_prior, mix, 3), mix, 16000, cfg)
    x = renderer()
    assert x.shape == (3, 2, N) and renderer.channels == 2
    assert (x[0] - x[1]).abs().max() > 1e-2
    torch.testing.assert_close(x.sum(0), mix, atol=1e-5, rtol=0)
    # and its masks are the ratio masks of the decoded latents
    decoded = stereo_prior.decode(renderer.raw["z"])[..., :N]
    expected = ratio_masks(magnitude(stft(decoded, FFT, HOP)), power)
    torch.testing.assert_close(renderer.masks(renderer.raw["z"]), expected, atol=1e-6, rtol=1e-5)


def test_remasked_sources_take_a_priors_magnitudes_without_decoding(prior: AnalyticPrior) -> None:
    mix = _mixture(1)
    cfg = RemaskedSourcesConfig(num_sources=2, init_noise=2.0, n_fft=FFT, hop=HOP, power=2.0)
    latent = _latent(prior, mix, 2)
    via_stft = RemaskedSources(prior.decode, latent, mix, 16000, cfg)
    calls = []

    def magnitudes(z: torch.Tensor) -> torch.Tensor:  # the same magnitudes, two frames short
        calls.append(z.shape[0])
        return stft(prior.decode(z)[..., :N], FFT, HOP).abs()[..., :-2]

    direct = RemaskedSources(prior.decode, latent, mix, 16000, cfg, magnitudes)
    z = via_stft.raw["z"]
    m_stft, m_direct = via_stft.masks(z), direct.masks(z)
    assert calls == [2] and m_direct.shape == m_stft.shape
    torch.testing.assert_close(m_direct[..., :-2], m_stft[..., :-2], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(m_direct[..., -2:], m_direct[..., -3:-2].expand_as(m_direct[..., -2:]))
    torch.testing.assert_close(direct().sum(0), mix, atol=1e-5, rtol=0)  # still the mixture's sum
    with pytest.raises(ValueError, match="magnitudes"):
        RemaskedSources(prior.decode, latent, mix, 16000, cfg, magnitudes=3)


def test_remasked_equal_latents_give_mixture_over_k(prior: AnalyticPrior) -> None:
    mix = _mixture(1)
    cfg = RemaskedSourcesConfig(num_sources=2, init_noise=0.0, n_fft=FFT, hop=HOP)
    x = RemaskedSources(prior.decode, _latent(prior, mix, 2), mix, 16000, cfg)()
    torch.testing.assert_close(x, (mix / 2).expand(2, -1, -1), atol=1e-6, rtol=0)


def test_latent_sources_decode_their_latents(prior: AnalyticPrior) -> None:
    mix = _mixture(1)
    latent = _latent(prior, mix, 2)
    exact = LatentSources(prior.decode, latent, N, 16000, LatentSourcesConfig(num_sources=2, init_noise=0.0))
    # the analytic decoder is a projection: decode(encode(mix / 2)) is mix / 2 projected, per source
    torch.testing.assert_close(exact(), prior.decode(latent)[..., :N].expand(2, -1, -1), atol=1e-6, rtol=0)
    noisy = [
        LatentSources(prior.decode, latent, N, 16000, LatentSourcesConfig(2, 0.1, seed)) for seed in (3, 3, 4)
    ]
    assert torch.equal(noisy[0].raw["z"], noisy[1].raw["z"])  # same seed, same bytes
    assert not torch.equal(noisy[0].raw["z"], noisy[2].raw["z"])
    relative = (noisy[0].raw["z"].detach() - latent).square().mean().sqrt() / latent.square().mean().sqrt()
    assert 0.08 < float(relative) < 0.12  # init_noise is relative to the latent's RMS
    per_source = LatentSources(
        prior.decode, torch.cat([latent, 2 * latent]), N, 16000, LatentSourcesConfig(2, 0.0)
    )
    torch.testing.assert_close(per_source()[1], 2 * per_source()[0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", ["latent", "remasked", "masks"])
def test_gradients_reach_the_sources_and_not_the_prior(prior: AnalyticPrior, kind: str) -> None:
    mix = _mixture(1, 512)
    latent = _latent(prior, mix, 2)
    if kind == "latent":
        renderer = LatentSources(prior.decode, latent, 512, 16000, LatentSourcesConfig(2))
    elif kind == "remasked":
        renderer = RemaskedSources(
            prior.decode, latent, mix, 16000, RemaskedSourcesConfig(2, n_fft=FFT, hop=HOP)
        )
    else:
        renderer = MaskSources(mix, 16000, MaskSourcesConfig(2, n_fft=FFT, hop=HOP))
    before = prior.encoder.clone()
    x = renderer()
    cond = prior.embed(["a dog barking", "rain on a roof"])
    step = sds_step(prior, x, cond, SDSConfig(), generator=torch.Generator().manual_seed(0))
    loss = step.loss + multiscale_spectral_loss(x.sum(0, keepdim=True), mix[None], (64, 128))
    loss.backward()
    (raw,) = list(renderer.parameters())  # the source parameters and nothing else
    assert raw.grad is not None and torch.isfinite(raw.grad).all() and raw.grad.abs().max() > 0
    assert not prior.encoder.requires_grad and prior.encoder.grad is None
    assert torch.equal(prior.encoder, before)


def test_a_module_decoder_is_not_registered_as_a_submodule() -> None:
    decoder = torch.nn.ConvTranspose1d(4, 1, kernel_size=8, stride=8)
    renderer = LatentSources(decoder, torch.zeros(4, 10), 80, 16000, LatentSourcesConfig(3, seed=1))
    assert [name for name, _ in renderer.named_parameters()] == ["raw.z"]
    assert renderer().shape == (3, 1, 80)


def test_to_dict_is_a_small_summary(prior: AnalyticPrior) -> None:
    mix = _mixture(1)
    latent = LatentSources(prior.decode, _latent(prior, mix, 2), N, 16000, LatentSourcesConfig(2))
    masks = MaskSources(mix, 16000, MaskSourcesConfig(3, n_fft=FFT, hop=HOP))
    d_latent, d_masks = latent.to_dict(), masks.to_dict()
    assert d_latent["latent_shape"] == [2, 8, 16] and d_latent["parametrization"] == "latent"
    assert d_latent["rms_db"] == rms_db(latent())
    assert d_masks["mask_shape"] == [3, FFT // 2 + 1, 1 + N // HOP]
    assert sum(d_masks["mean_mask"]) == pytest.approx(1.0, abs=1e-3)
    assert len(json.dumps(d_latent)) < 200 and len(json.dumps(d_masks)) < 300


def test_rms_db_of_a_full_scale_square_wave_is_zero() -> None:
    x = torch.tensor([[1.0, -1.0] * 50, [0.1, -0.1] * 50])
    assert rms_db(x) == [0.0, -20.0]


def test_inputs_are_validated(prior: AnalyticPrior, stereo_prior: AnalyticPrior) -> None:
    mix = _mixture(1)
    with pytest.raises(ValueError, match="num_sources"):
        LatentSourcesConfig(num_sources=0)
    with pytest.raises(ValueError, match="hop"):
        MaskSourcesConfig(n_fft=256, hop=200)
    with pytest.raises(ValueError, match="power"):
        RemaskedSourcesConfig(power=-1.0)
    with pytest.raises(ValueError, match="latent"):
        LatentSources(prior.decode, torch.zeros(3, 8, 4), 256, 16000, LatentSourcesConfig(2))
    with pytest.raises(ValueError, match="channel"):
        RemaskedSources(stereo_prior.decode, torch.zeros(1, 8, 16), mix, 16000, RemaskedSourcesConfig(2))
    with pytest.raises(ValueError, match="mixture"):
        MaskSources(mix[0], 16000)
    with pytest.raises(ValueError, match="mixture"):
        MaskSources(torch.full((1, 100), float("nan")), 16000)
