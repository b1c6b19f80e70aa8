"""The embedded prior (priors/embedded.py) and its networks and training code (training/).

Tiny randomly initialised networks are exported exactly as the training scripts export the
shipped weights and loaded back through :class:`EmbeddedPrior`. Training runs here take a
couple of steps on a few short world clips; nothing is trained for real.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from audiosds.models.denoiser import DenoiserConfig, EDMDenoiser, UNet, edm_coefficients, edm_loss
from audiosds.models.text import EMBED_DIM, TextEncoder
from audiosds.priors.embedded import EmbeddedConfig, EmbeddedPrior, EmbeddedWeightsError, load_autoencoder
from audiosds.training import train_autoencoder, train_diffusion
from audiosds.training.autoencoder import Autoencoder, AutoencoderConfig, band_edges, fold, unfold
from audiosds.training.data import DataConfig, audio_batch, load_or_render_cache
from audiosds.training.run import export_weights
from audiosds.world import FAMILIES
from fake_text import FakeText

SR = 16000
TINY_AE = AutoencoderConfig(
    latent_channels=4, high_channels=8, low_channels=16, high_dilations=(1,), low_dilations=(1, 3), kernel=3
)
TINY_DN = DenoiserConfig(
    latent_channels=4,
    channels=(8, 16),
    blocks_per_level=1,
    attention_levels=(1,),
    heads=2,
    groups=4,
    emb_dim=16,
    sigma_data=0.7,
)


# -- helpers ---------------------------------------------------------------------------------------


# -- fixtures ------------------------------------------------------------------------------------
def randomize(module: torch.nn.Module, seed: int, scale: float = 0.2) -> torch.nn.Module:
    """Overwrite every parameter with seeded noise (the zero-initialised output layers included),
    rounded to float16 values so a float16 export round-trips exactly."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_((torch.randn(p.shape, generator=g) * scale).half().float())
    return module


@pytest.fixture(scope="module")
def networks() -> tuple[Autoencoder, EDMDenoiser]:
    return randomize(Autoencoder(TINY_AE), 1).eval(), randomize(EDMDenoiser(TINY_DN), 2).eval()


@pytest.fixture(scope="module")
def weights_dir(networks: tuple[Autoencoder, EDMDenoiser], tmp_path_factory: pytest.TempPathFactory) -> Path:
    ae, dn = networks
    folder = tmp_path_factory.mktemp("embedded")
    export_weights(ae, ae.config.to_dict(), folder, "autoencoder", dtype="float16")
    export_weights(dn, dn.config.to_dict(), folder, "denoiser", dtype="float16")
    return folder


@pytest.fixture(scope="module")
def prior(weights_dir: Path) -> EmbeddedPrior:
    return EmbeddedPrior(EmbeddedConfig(weights_dir=str(weights_dir))).freeze()


# -- loading -----------------------------------------------------------------------------------------
def test_loaded_prior_reproduces_the_exported_networks(prior: EmbeddedPrior, networks: tuple) -> None:
    ae, dn = networks
    x = torch.randn(2, 1, 3000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        z = prior.encode(x)
        assert torch.equal(z, ae.encode(x))
        assert torch.equal(prior.decode(z), ae.decode(z))
        cond = torch.randn(2, EMBED_DIM, generator=torch.Generator().manual_seed(1))
        sigma = torch.tensor([0.3, 4.0])
        assert torch.equal(prior._denoise_batch(z, sigma, {"text": cond}), dn(z, sigma, cond))
    assert (prior.sample_rate, prior.channels, prior.latent_channels, prior.downsampling) == (SR, 1, 4, 64)
    assert (prior.sigma_min, prior.sigma_max, prior.sigma_data) == (0.002, 80.0, 0.7)
    assert prior.name == "embedded"


@pytest.mark.parametrize(
    "missing", ["autoencoder.json", "autoencoder.safetensors", "denoiser.json", "denoiser.safetensors"]
)
def test_missing_weight_file_is_named(weights_dir: Path, tmp_path: Path, missing: str) -> None:
    for f in weights_dir.iterdir():
        if f.name != missing:
            (tmp_path / f.name).write_bytes(f.read_bytes())
    with pytest.raises(EmbeddedWeightsError, match=missing.replace(".", r"\.")) as err:
        EmbeddedPrior(EmbeddedConfig(weights_dir=str(tmp_path)))
    assert isinstance(err.value, ValueError)


def test_mismatched_config_is_an_error(weights_dir: Path, tmp_path: Path) -> None:
    for f in weights_dir.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((tmp_path / "autoencoder.json").read_text())
    (tmp_path / "autoencoder.json").write_text(json.dumps({**cfg, "low_channels": 24}))
    with pytest.raises(EmbeddedWeightsError, match="does not fit"):
        EmbeddedPrior(EmbeddedConfig(weights_dir=str(tmp_path)))
    (tmp_path / "autoencoder.json").write_text(json.dumps({**cfg, "low_chanels": 16}))
    with pytest.raises(EmbeddedWeightsError, match="low_chanels"):
        EmbeddedPrior(EmbeddedConfig(weights_dir=str(tmp_path)))


def test_import_pulls_in_neither_world_nor_transformers() -> None:
    code = (
        "import sys, audiosds.priors.embedded; "
        "heavy = ('transformers', 'audiosds.world', 'sentence_transformers'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- audio <-> latent ------------------------------------------------------------------------------
@pytest.mark.parametrize("seconds", [0.5, 1.0, 2.37, 10.0])
def test_lengths_and_latent_frames(prior: EmbeddedPrior, seconds: float) -> None:
    n = round(seconds * SR)
    x = torch.randn(1, 1, n, generator=torch.Generator().manual_seed(n))
    with torch.no_grad():
        z = prior.encode(x)
        assert z.shape == (1, 4, prior.latent_frames(n)) == (1, 4, math.ceil(n / 64))
        assert prior.decode(z).shape == (1, 1, z.shape[-1] * 64)
        x0 = prior._denoise_batch(z, torch.tensor([1.5]), {"text": torch.zeros(1, EMBED_DIM)})
        assert x0.shape == z.shape and torch.isfinite(x0).all()


def test_fold_unfold_are_inverse_polyphase() -> None:
    x = torch.arange(2 * 3 * 32, dtype=torch.float32).reshape(2, 3, 32)
    y = fold(x, 4)
    assert y.shape == (2, 12, 8)
    assert torch.equal(y[1, 2 * 4 + 3, 5], x[1, 2, 5 * 4 + 3])
    assert torch.equal(unfold(y, 4), x)


def test_encoder_is_causal_in_nothing_but_local(networks: tuple) -> None:
    """A change at the end of a long clip leaves the latents of its start untouched (finite receptive
    field), so encoding is length-flexible, and gradients reach the audio (classic SDS needs them)."""
    ae, _ = networks
    x = torch.randn(1, 1, 64 * 200, generator=torch.Generator().manual_seed(3), requires_grad=True)
    y = x.detach().clone()
    y[..., -64 * 20 :] = 0
    za, zb = ae.encode(x), ae.encode(y)
    assert torch.equal(za[..., :100], zb[..., :100])
    assert not torch.equal(za[..., -5:], zb[..., -5:])
    za.square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_encode_pads_the_tail_with_zeros(networks: tuple) -> None:
    ae, _ = networks
    x = torch.randn(1, 1, 1000, generator=torch.Generator().manual_seed(4))
    padded = torch.nn.functional.pad(x, (0, 24))
    with torch.no_grad():
        assert torch.equal(ae.encode(x), ae.encode(padded))


# -- the EDM denoiser -----------------------------------------------------------------------------------
def test_edm_coefficient_identities() -> None:
    sd = 0.7
    sigma = torch.tensor([0.0, 1e-3, 0.1, 0.7, 3.0, 80.0], dtype=torch.float64)
    c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, sd)
    assert c_skip[0] == 1 and c_out[0] == 0 and math.isclose(float(c_in[0]), 1 / sd)
    # Unit-variance network input for data of std sd: c_in^2 (sigma^2 + sd^2) = 1.
    torch.testing.assert_close(c_in.square() * (sigma.square() + sd**2), torch.ones_like(sigma))
    # Unit-variance training target (z - c_skip (z + sigma eps)) / c_out for z ~ N(0, sd^2).
    s = sigma[1:]
    target_var = ((1 - c_skip[1:]).square() * sd**2 + c_skip[1:].square() * s.square()) / c_out[1:].square()
    torch.testing.assert_close(target_var, torch.ones_like(s))
    # At sigma = sd: c_skip = 1/2 and c_out = sd / sqrt(2).
    assert math.isclose(float(c_skip[3]), 0.5) and math.isclose(float(c_out[3]), sd / math.sqrt(2))
    torch.testing.assert_close(c_noise[1:], s.log() / 4)


def test_denoiser_returns_the_input_as_sigma_goes_to_zero(prior: EmbeddedPrior) -> None:
    z = torch.randn(2, 4, 37, generator=torch.Generator().manual_seed(5))
    cond = {"text": prior.denoiser.null_embedding(2)}
    with torch.no_grad():
        assert torch.equal(prior._denoise_batch(z, torch.zeros(2), cond), z)  # c_skip = 1, c_out = 0
        previous = math.inf
        for sigma in (1e-1, 1e-2, 1e-3, 1e-4):
            err = float((prior._denoise_batch(z, torch.full((2,), sigma), cond) - z).abs().max())
            assert err < previous  # shrinks with sigma (c_out ~ sigma)
            previous = err
        assert previous < 1e-2


def test_denoiser_batch_equals_singles(prior: EmbeddedPrior) -> None:
    g = torch.Generator().manual_seed(6)
    z = torch.randn(3, 4, 50, generator=g)
    sigma = torch.tensor([0.05, 1.0, 20.0])
    cond = torch.randn(3, EMBED_DIM, generator=g)
    with torch.no_grad():
        batch = prior._denoise_batch(z, sigma, {"text": cond})
        singles = torch.cat(
            [
                prior._denoise_batch(z[i : i + 1], sigma[i : i + 1], {"text": cond[i : i + 1]})
                for i in range(3)
            ]
        )
    torch.testing.assert_close(batch, singles, atol=1e-5, rtol=1e-5)


def test_each_row_is_the_edm_formula_of_the_network_on_its_own_condition(
    prior: EmbeddedPrior, networks: tuple
) -> None:
    # Oracle: x0_hat = c_skip z + c_out F(c_in z, log(sigma) / 4, c), coefficients in closed form
    # (Karras 2022, sigma_data = 0.7) and F the exported raw U-Net, called on each row's own condition.
    _, dn = networks
    g = torch.Generator().manual_seed(7)
    z = torch.randn(4, 4, 40, generator=g)
    z[1] = z[0]
    a = torch.randn(EMBED_DIM, generator=g)
    cond = torch.stack([a, -a, dn.null_cond.detach(), a])  # rows 0 and 1 differ only in the condition
    sigma = torch.tensor([1.0, 1.0, 4.0, 0.3])
    with torch.no_grad():
        got = prior._denoise_batch(z, sigma, {"text": cond})
        sd = 0.7
        s = sigma[:, None, None]
        c_skip, c_out, c_in = sd**2 / (s**2 + sd**2), s * sd / (s**2 + sd**2).sqrt(), (s**2 + sd**2).rsqrt()
        f = dn.net(c_in * z, sigma.log() / 4, cond)  # 40 frames: already a multiple of the U-Net stride
    torch.testing.assert_close(got, c_skip * z + c_out * f, rtol=1e-5, atol=1e-5)
    # The condition reaches F: rows 0 and 1 (same z and sigma, conditions a and -a) differ by c_out F.
    assert (got[0] - got[1]).abs().max() > 0.05 * got[0].abs().max()


def test_standardised_condition_is_scaled_by_the_caption_statistics() -> None:
    net = UNet(replace(TINY_DN, cond_standardize=True))
    randomize(net, 3)
    embeddings = FakeText()([f"caption {i}" for i in range(20)])
    net.set_cond_statistics(embeddings)
    x, c_noise = torch.randn(2, 4, 8), torch.zeros(2)
    standardised = (embeddings[:2] - embeddings.mean(0)) / embeddings.std(0)
    plain = UNet(replace(TINY_DN, cond_standardize=False))
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if k not in ("cond_mean", "cond_std")})
    torch.testing.assert_close(net(x, c_noise, embeddings[:2]), plain(x, c_noise, standardised))
    with pytest.raises(ValueError, match="cond_standardize=False"):
        plain.set_cond_statistics(embeddings)


def test_edm_loss_is_seeded_and_drops_conditions() -> None:
    model = randomize(EDMDenoiser(replace(TINY_DN, cond_dropout=0.5)), 9)
    z = torch.randn(8, 4, 24, generator=torch.Generator().manual_seed(10))
    cond = torch.randn(8, EMBED_DIM, generator=torch.Generator().manual_seed(11))
    a = edm_loss(model, z, cond, torch.Generator().manual_seed(12))
    b = edm_loss(model, z, cond, torch.Generator().manual_seed(12))
    c = edm_loss(model, z, cond, torch.Generator().manual_seed(13))
    assert a.item() == b.item() and a.item() != c.item()
    # Dropout reaches the null embedding: its gradient is non-zero.
    a.backward()
    assert model.null_cond.grad.abs().sum() > 0


# -- text ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def offline_prior(weights_dir: Path) -> EmbeddedPrior:
    old = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    try:
        p = EmbeddedPrior(EmbeddedConfig(weights_dir=str(weights_dir))).freeze()
        p.text_encoder.load()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return p


def test_minilm_embeddings_offline(offline_prior: EmbeddedPrior) -> None:
    prompts = ["a bell ringing", "a ringing bell", "heavy rain falling on a roof"]
    cond = offline_prior.embed(prompts)
    e = cond.cond["text"]
    assert e.shape == (3, EMBED_DIM)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(3))
    sim = e @ e.T
    assert sim[0, 1] > 0.8 > sim[0, 2]  # a real sentence model: paraphrases close, other topics far
    again = offline_prior.embed([prompts[2], prompts[0]])
    assert torch.equal(again.cond["text"], e[[2, 0]])
    # A fresh encoder (no cache) embedding the caption alone agrees: padding is masked out.
    fresh = TextEncoder()(["heavy rain falling on a roof"])
    torch.testing.assert_close(fresh, e[2:], atol=1e-6, rtol=0)


def test_embed_uncond_is_the_null_embedding_or_the_negative(offline_prior: EmbeddedPrior) -> None:
    cond = offline_prior.embed(["glass breaking", "a low bell"])
    null = offline_prior.denoiser.null_cond.detach()
    assert torch.equal(cond.uncond["text"], torch.stack([null, null]))
    neg = offline_prior.embed(["glass breaking", "a low bell"], negative=["noise", "a low bell"])
    assert torch.equal(neg.uncond["text"][1], cond.cond["text"][1])
    assert torch.equal(neg.uncond["text"][0], offline_prior.embed(["noise"]).cond["text"][0])
    with pytest.raises(ValueError, match="expected 2"):
        offline_prior.embed(["a", "b"], negative=["c"])
    with pytest.raises(ValueError, match="non-empty"):
        offline_prior.embed("a bell")


# -- the autoencoder loss -------------------------------------------------------------------------------
def test_reconstruction_loss_sees_phase() -> None:
    """Zero for a perfect reconstruction. A 90-degree phase error keeps the magnitudes, so it barely
    moves the log-magnitude terms but dominates the waveform and complex-STFT terms; a 1.5x amplitude
    error does the opposite."""
    cfg = train_autoencoder.LossConfig(windows=(512, 128))
    t = torch.arange(8192) / SR
    env = torch.hann_window(8192, periodic=False) * 0.1  # no edge transients
    x = (env * torch.sin(2 * math.pi * 440.0 * t)).view(1, 1, -1)
    shifted = (env * torch.cos(2 * math.pi * 440.0 * t)).view(1, 1, -1)
    same = train_autoencoder.reconstruction_loss(x, x, cfg)
    assert all(float(v) == 0.0 for v in same.values())
    phase = train_autoencoder.reconstruction_loss(shifted, x, cfg)
    gain = train_autoencoder.reconstruction_loss(1.5 * x, x, cfg)
    assert phase["wave"] > 2 * gain["wave"] and phase["complex"] > 2 * gain["complex"]
    assert phase["log_magnitude"] < 0.5 * gain["log_magnitude"]
    assert phase["fine_log_magnitude"] < 0.5 * gain["fine_log_magnitude"]
    # Every term is level-invariant: the crop is RMS-normalised.
    loud = train_autoencoder.reconstruction_loss(shifted * 8, x * 8, cfg)
    for k in phase:
        torch.testing.assert_close(loud[k], phase[k], rtol=1e-4, atol=1e-6)
    # phase=False: the same phase error is (nearly) free, the gain error still costs.
    blind_phase = train_autoencoder.reconstruction_loss(shifted, x, cfg, phase=False)
    blind_gain = train_autoencoder.reconstruction_loss(1.5 * x, x, cfg, phase=False)
    assert float(blind_phase["wave"]) == 0.0 and float(blind_gain["wave"]) == 0.0
    assert blind_phase["complex"] < 0.1 * blind_gain["complex"]
    assert blind_phase["complex"] < 0.1 * phase["complex"]


def test_phase_cutoff_makes_a_misplaced_high_partial_cheaper_than_a_missing_one() -> None:
    """A 500 Hz tone plus a 5 kHz partial. With phase seen everywhere (the default), moving the high
    partial's phase costs more than dropping it, so a decoder that cannot place it learns to attenuate;
    with phase_cutoff 0.25 (2 kHz) it costs only what its magnitudes differ, far less than dropping it,
    while the low tone's phase still counts."""
    t = torch.arange(8192) / SR
    env = torch.hann_window(8192, periodic=False) * 0.1

    def tone(high_phase: float | None, low_phase: float = 0.0) -> torch.Tensor:
        y = torch.sin(2 * math.pi * 500.0 * t + low_phase)
        if high_phase is not None:
            y = y + 0.5 * torch.sin(2 * math.pi * 5000.0 * t + high_phase)
        return (env * y).view(1, 1, -1)

    x, moved, dropped, low_moved = tone(0.0), tone(2.0), tone(None), tone(0.0, low_phase=2.0)

    def total(cfg: train_autoencoder.LossConfig, y: torch.Tensor) -> float:
        return float(cfg.weighted(train_autoencoder.reconstruction_loss(y, x, cfg), cfg.fine_log_magnitude))

    full = train_autoencoder.LossConfig(windows=(512, 128))
    cut = replace(full, phase_cutoff=0.25)
    assert total(full, moved) > total(full, dropped)  # why decoders attenuate high partials
    assert total(cut, moved) < 0.5 * total(cut, dropped)
    wave = [float(train_autoencoder.reconstruction_loss(moved, x, c)["wave"]) for c in (cut, full)]
    assert wave[0] < 1e-3 * wave[1]  # above the cutoff the waveform term does not see it
    assert total(cut, low_moved) > 0.5 * total(full, low_moved)  # below it, phase still counts
    torch.testing.assert_close(train_autoencoder.lowpass(x[:, 0], 1.0), x[:, 0], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="phase_cutoff"):
        train_autoencoder.LossConfig(phase_cutoff=0.0)


def test_fine_log_term_ramps_in() -> None:
    cfg = train_autoencoder.LossConfig(fine_log_magnitude=0.5, fine_ramp=(100, 300))
    assert [cfg.fine_weight(s) for s in (0, 100, 200, 300, 10_000)] == [0.0, 0.0, 0.25, 0.5, 0.5]


# -- data and training -----------------------------------------------------------------------------------
DATA = DataConfig(clips=12, seconds=0.5, shard_size=5, captions_per_clip=2)


def test_cache_is_deterministic_and_resumable(tmp_path: Path) -> None:
    a = load_or_render_cache(DATA, tmp_path / "a", lambda m: None)
    (tmp_path / "a" / "cache" / "shard_00001.npz").unlink()  # an interrupted render
    a2 = load_or_render_cache(DATA, tmp_path / "a", lambda m: None)
    b = load_or_render_cache(DATA, tmp_path / "b", lambda m: None)
    assert len(a) == 12 and a.audio.shape == (12, 8000)
    assert np.array_equal(a.audio, a2.audio) and np.array_equal(a.audio, b.audio)
    assert a.captions == b.captions and all(len(c) == 2 for c in a.captions)
    assert set(a.families) <= set(FAMILIES) and len(set(a.families[:5])) == 5  # a shard is balanced
    with pytest.raises(ValueError, match="expected config"):
        load_or_render_cache(replace(DATA, seed=1), tmp_path / "a", lambda m: None)
    x1, x2 = audio_batch(a, 3, 4, 1000, 0), audio_batch(a, 3, 4, 1000, 0)
    assert x1.shape == (4, 1, 1000) and torch.equal(x1, x2)
    assert not torch.equal(x1, audio_batch(a, 4, 4, 1000, 0))


AE_TRAIN = train_autoencoder.AutoencoderTrainConfig(
    steps=3,
    batch=2,
    crop=1024,
    warmup=1,
    checkpoint_every=2,
    log_every=1,
    eval_clips=2,
    loss=train_autoencoder.LossConfig(windows=(256, 64)),
    model=TINY_AE,
    data=DATA,
)


def run_ae(out: Path, cache: Path, **kw: object) -> list[dict[str, float]]:
    return train_autoencoder.train(AE_TRAIN, out, cache=cache, **kw)


def test_autoencoder_training_is_seeded_and_resumes_exactly(tmp_path: Path) -> None:
    full = run_ae(tmp_path / "full", tmp_path)
    again = run_ae(tmp_path / "again", tmp_path)
    assert [h["loss"] for h in full] == [h["loss"] for h in again]
    assert len(full) == 3 and all(math.isfinite(h["loss"]) for h in full)
    exported = [(tmp_path / run / "export/autoencoder.safetensors").read_bytes() for run in ("full", "again")]
    assert exported[0] == exported[1]  # the same seed gives the same bytes
    # Stop after 1 step (checkpoint), resume: the remaining steps match the uninterrupted run.
    part = run_ae(tmp_path / "part", tmp_path, stop_at=1)
    assert [h["loss"] for h in part] == [full[0]["loss"]]
    with pytest.raises(ValueError, match="--resume"):
        run_ae(tmp_path / "part", tmp_path)
    rest = run_ae(tmp_path / "part", tmp_path, resume=True)
    assert [h["loss"] for h in rest] == [h["loss"] for h in full[1:]]
    # The export loads as the shipped weights do and equals the run's EMA.
    ae = load_autoencoder(tmp_path / "full" / "export")
    assert ae.config == TINY_AE
    assert "log.txt" in {p.name for p in (tmp_path / "full").iterdir()}
    # From a pre-rendered cache instead of fresh clips: seeded as well.
    cached = [
        train_autoencoder.train(replace(AE_TRAIN, stream=False, steps=2), tmp_path / name, cache=tmp_path)
        for name in ("c1", "c2")
    ]
    assert [h["loss"] for h in cached[0]] == [h["loss"] for h in cached[1]] != [h["loss"] for h in full[:2]]


def test_diffusion_training_is_seeded_and_exports_a_complete_prior(tmp_path: Path) -> None:
    ae_dir = tmp_path / "ae"
    export_weights(randomize(Autoencoder(TINY_AE), 14), TINY_AE.to_dict(), ae_dir, "autoencoder")
    cfg = train_diffusion.DiffusionTrainConfig(
        steps=2,
        batch=3,
        warmup=1,
        checkpoint_every=2,
        log_every=1,
        eval_clips=2,
        model=replace(TINY_DN, sigma_data=1.0, cond_standardize=True),
        data=DATA,
    )
    runs = [
        train_diffusion.train(
            cfg,
            tmp_path / name,
            ae_dir,
            cache=tmp_path,
            text=FakeText(),
        )
        for name in ("a", "b")
    ]
    assert [h["loss"] for h in runs[0]] == [h["loss"] for h in runs[1]]
    export = tmp_path / "a" / "export"
    weights = [(tmp_path / run / "export/denoiser.safetensors").read_bytes() for run in ("a", "b")]
    assert weights[0] == weights[1]
    provenance = (export / "training.json").read_text()
    assert "latent_mean" in json.loads(provenance)
    assert train_diffusion.export_only(tmp_path / "a", ae_dir).read_bytes() == weights[0]
    assert (export / "training.json").read_text() == provenance  # re-export keeps the measured mean
    stored = json.loads((export / "denoiser.json").read_text())
    (cached,) = (tmp_path / "cache").glob("latents_*.pt")  # one autoencoder, one encoding, shared by a and b
    latents = torch.load(cached, weights_only=True)["latents"]
    assert math.isclose(stored["sigma_data"], float(latents[2:].std()), rel_tol=1e-4)
    prior = EmbeddedPrior(EmbeddedConfig(weights_dir=str(export)))
    assert prior.sigma_data == stored["sigma_data"]
    assert stored["cond_standardize"] is True  # the text statistics ship with the weights
    state = torch.load(cached, weights_only=True)
    training_text = state["text"][state["caption_ids"][2:].unique()]  # captions of the training clips
    assert torch.allclose(prior.denoiser.net.cond_mean, training_text.mean(dim=0), atol=1e-6)
    assert not torch.allclose(prior.denoiser.net.cond_std, torch.ones(EMBED_DIM))
    z = prior.encode(torch.zeros(1, 1, 640))
    assert z.shape == (1, 4, 10)


def test_set_overrides_reach_nested_config_and_reject_unknown_keys() -> None:
    from audiosds.training.run import apply_overrides

    base = train_autoencoder.AutoencoderTrainConfig().to_dict()
    d = apply_overrides(
        base, ["model.patch=32", "model.high_dilations=[1, 2]", "latent_noise=0.1", "export_dtype=float32"]
    )
    cfg = train_autoencoder.AutoencoderTrainConfig.from_dict(d)
    assert cfg.model.patch == 32 and cfg.model.high_dilations == (1, 2)
    assert cfg.latent_noise == 0.1 and cfg.export_dtype == "float32"
    assert base["model"]["patch"] == 16  # the input is not modified
    with pytest.raises(ValueError, match="unknown key 'pach'"):
        apply_overrides(base, ["model.pach=32"])
    with pytest.raises(ValueError, match="no section 'modle'"):
        apply_overrides(base, ["modle.patch=32"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        apply_overrides(base, ["model.patch"])


def test_set_on_the_command_line_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        train_diffusion.main(
            ["--out", str(tmp_path), "--autoencoder", str(tmp_path), "--set", "model.chanels=[8]"]
        )
    assert exc.value.code == 2
    assert "unknown key 'chanels'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing started


def test_preemphasis_weighs_high_frequency_errors_more() -> None:
    """With pre-emphasis, a missing 4 kHz partial costs more than a missing 100 Hz partial of the same
    level; without it the two cost about the same waveform error. 0 is the plain loss, out of range
    is refused."""
    t = torch.arange(8192) / SR
    env = torch.hann_window(8192, periodic=False) * 0.1
    low, high = ((env * torch.sin(2 * math.pi * f * t)).view(1, 1, -1) for f in (100.0, 4000.0))
    x = low + high
    plain = train_autoencoder.LossConfig(windows=(512,))
    emph = replace(plain, preemphasis=0.9)
    plain_ratio = (
        train_autoencoder.reconstruction_loss(low, x, plain)["wave"]
        / (train_autoencoder.reconstruction_loss(high, x, plain)["wave"])
    )
    emph_ratio = (
        train_autoencoder.reconstruction_loss(low, x, emph)["wave"]
        / (train_autoencoder.reconstruction_loss(high, x, emph)["wave"])
    )
    assert 0.7 < float(plain_ratio) < 1.4  # low = x - high: the high partial is the error, and vice versa
    assert float(emph_ratio) > 5 * float(plain_ratio)
    assert all(float(v) == 0.0 for v in train_autoencoder.reconstruction_loss(x, x, emph).values())
    y = train_autoencoder.preemphasize(x, 0.9)
    torch.testing.assert_close(y[..., 1:], x[..., 1:] - 0.9 * x[..., :-1])
    assert float(y[..., 0]) == float(x[..., 0])
    with pytest.raises(ValueError, match="preemphasis"):
        train_autoencoder.LossConfig(preemphasis=1.0)
    # preemphasis_mix blends the two losses term by term
    half = replace(emph, preemphasis_mix=0.25)
    for estimate in (low, high):
        a, b, mixed = (train_autoencoder.reconstruction_loss(estimate, x, c) for c in (plain, emph, half))
        for k in a:
            torch.testing.assert_close(mixed[k], 0.75 * a[k] + 0.25 * b[k])
    with pytest.raises(ValueError, match="preemphasis_mix"):
        train_autoencoder.LossConfig(preemphasis_mix=1.5)


def test_latent_noise_is_seeded_and_changes_only_the_decoded_latent() -> None:
    torch.manual_seed(0)
    model = Autoencoder(TINY_AE)
    x = torch.randn(2, 1, 1024) * 0.1
    loss_cfg = train_autoencoder.LossConfig(windows=(256, 64))
    step = train_autoencoder.step_generator
    plain, _ = train_autoencoder.training_step(model, x, loss_cfg, step(0, 5), 5)
    zero, _ = train_autoencoder.training_step(model, x, loss_cfg, step(0, 5), 5, latent_noise=0.0)
    noisy, parts = train_autoencoder.training_step(model, x, loss_cfg, step(0, 5), 5, latent_noise=0.5)
    again, _ = train_autoencoder.training_step(model, x, loss_cfg, step(0, 5), 5, latent_noise=0.5)
    assert torch.equal(plain, zero)  # off by default: the shipped recipe replays
    assert torch.equal(noisy, again) and not torch.equal(noisy, plain)
    # The KL term sees the posterior only, not the extra noise.
    _, plain_parts = train_autoencoder.training_step(model, x, loss_cfg, step(0, 5), 5)
    assert parts["kl"] == plain_parts["kl"]


# -- envelope channels ---------------------------------------------------------------------------------
ENV_AE = replace(TINY_AE, envelope_bands=6, envelope_window=256, envelope_min_hz=200.0)


def test_envelope_channels_are_standardised_log_band_energies() -> None:
    """The latent is the learned channels, then one computed log band energy per band and frame; the
    decoder reads both. A tone lands in its band."""
    ae = randomize(Autoencoder(ENV_AE), 5).eval()
    assert ae.latent_channels == 4 + 6 and ENV_AE.total_channels == 10
    t = torch.arange(6400) / SR
    x = (0.3 * torch.sin(2 * math.pi * 3000.0 * t)).view(1, 1, -1)
    with torch.no_grad():
        z = ae.encode(x)
        assert z.shape == (1, 10, 100)
        env = z[0, 4:, 10:-10].mean(dim=-1)  # statistics still 0 / 1: scale * raw log energy
        edges = torch.logspace(math.log10(200.0), math.log10(8000.0), 7)
        band = int(((edges[:-1] <= 3000.0) & (3000.0 < edges[1:])).nonzero())
        assert int(env.argmax()) == band
        torch.testing.assert_close(z[:, 4:], ENV_AE.envelope_scale * ae.envelope.log_energies(x[:, 0]))
        assert ae.decode(z).shape == (1, 1, 6400)
        mean, log_std = ae.posterior(x)
        assert torch.all(log_std[:, 4:] == ENV_AE.min_log_std)  # computed: no posterior spread
    # Statistics: the measured clips come out with mean 0 and std envelope_scale per band.
    clips = (
        0.1 * torch.randn(8, 6400, generator=torch.Generator().manual_seed(0)) * torch.linspace(0, 1, 6400)
    )
    ae.envelope.set_statistics(clips)
    with torch.no_grad():
        e = ae.encode(clips[:, None])[:, 4:]
    torch.testing.assert_close(e.mean(dim=(0, 2)), torch.zeros(6), atol=1e-4, rtol=0)
    torch.testing.assert_close(e.std(dim=(0, 2)), torch.full((6,), 0.5), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="hold no STFT bin"):
        Autoencoder(replace(ENV_AE, envelope_bands=40, envelope_min_hz=20.0))
    with pytest.raises(ValueError, match="envelope_bands"):
        AutoencoderConfig(envelope_bands=-1)


def test_envelope_autoencoder_trains_exports_and_loads(tmp_path: Path) -> None:
    """Training sets the envelope statistics from training clips before the EMA copies the model,
    leaves the envelope channels out of the KL, and the export loads with its statistics."""
    cfg = replace(AE_TRAIN, model=ENV_AE, steps=2)
    history = train_autoencoder.train(cfg, tmp_path / "run", cache=tmp_path)
    assert len(history) == 2 and all(math.isfinite(h["loss"]) for h in history)
    ae = load_autoencoder(tmp_path / "run" / "export")
    assert ae.config == ENV_AE
    assert not torch.allclose(ae.envelope.std, torch.ones(6))  # measured, stored, loaded
    # KL: only the learned channels count, whatever the envelope holds.
    model = Autoencoder(ENV_AE)
    x = 0.1 * torch.randn(2, 1, 1024, generator=torch.Generator().manual_seed(1))
    _, parts = train_autoencoder.training_step(model, x, cfg.loss, torch.Generator().manual_seed(0), 0)
    model.envelope.mean.fill_(-100.0)  # envelope values become huge
    _, shifted = train_autoencoder.training_step(model, x, cfg.loss, torch.Generator().manual_seed(0), 0)
    assert parts["kl"] == pytest.approx(shifted["kl"], rel=1e-6)
    # A prior over envelope latents: the denoiser must match learned + envelope channels.
    folder = tmp_path / "prior"
    export_weights(ae, ae.config.to_dict(), folder, "autoencoder", dtype="float32")
    export_weights(randomize(EDMDenoiser(TINY_DN), 3), TINY_DN.to_dict(), folder, "denoiser")
    with pytest.raises(EmbeddedWeightsError, match="envelope_bands 6"):
        EmbeddedPrior(EmbeddedConfig(weights_dir=str(folder)))
    dn = replace(TINY_DN, latent_channels=10)
    export_weights(randomize(EDMDenoiser(dn), 3), dn.to_dict(), folder, "denoiser")
    prior = EmbeddedPrior(EmbeddedConfig(weights_dir=str(folder)))
    assert prior.latent_channels == 10 and prior.encode(torch.zeros(1, 1, 640)).shape == (1, 10, 10)


def test_diffusion_trains_on_envelope_latents(tmp_path: Path) -> None:
    """The denoiser takes its channel count from the latents: learned + envelope."""
    ae_dir = tmp_path / "ae"
    ae = randomize(Autoencoder(ENV_AE), 15)
    ae.envelope.set_statistics(0.1 * torch.randn(4, 6400, generator=torch.Generator().manual_seed(2)))
    export_weights(ae, ENV_AE.to_dict(), ae_dir, "autoencoder")
    cfg = train_diffusion.DiffusionTrainConfig(
        steps=1, batch=2, warmup=1, checkpoint_every=1, log_every=1, eval_clips=2, model=TINY_DN, data=DATA
    )
    history = train_diffusion.train(cfg, tmp_path / "dn", ae_dir, cache=tmp_path, text=FakeText())
    assert len(history) == 1 and math.isfinite(history[0]["loss"])
    prior = EmbeddedPrior(EmbeddedConfig(weights_dir=str(tmp_path / "dn" / "export")))
    assert prior.latent_channels == 10 and prior.denoiser.config.latent_channels == 10
    # the statistics travel with the weights (float16 export: rtol 1e-3)
    torch.testing.assert_close(prior.autoencoder.envelope.std, ae.envelope.std, rtol=1e-3, atol=0)


def test_envelope_decoding_renders_generated_latents_from_the_envelope_alone(tmp_path: Path) -> None:
    """With ``envelope_decoding`` the prior decodes sampled latents with the learned channels zeroed
    (whatever they hold), while ``decode`` stays the full decoder; without it both are the same."""
    ae = randomize(Autoencoder(replace(ENV_AE, envelope_decoding=True)), 16)
    z = torch.randn(2, 10, 5, generator=torch.Generator().manual_seed(4))
    other = z.clone()
    other[:, :4] = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(5))  # learned only
    with torch.no_grad():
        torch.testing.assert_close(ae.decode_envelope(z), ae.decode_envelope(other))
        zeroed = torch.cat([torch.zeros(2, 4, 5), z[:, 4:]], dim=1)
        torch.testing.assert_close(ae.decode_envelope(z), ae.decode(zeroed))
        assert not torch.allclose(ae.decode(z), ae.decode(other))
    folder = tmp_path / "prior"
    export_weights(ae, ae.config.to_dict(), folder, "autoencoder", dtype="float32")
    dn = replace(TINY_DN, latent_channels=10)
    export_weights(randomize(EDMDenoiser(dn), 3), dn.to_dict(), folder, "denoiser")
    prior = EmbeddedPrior(EmbeddedConfig(weights_dir=str(folder)))
    with torch.no_grad():
        torch.testing.assert_close(prior.decode_generated(z), ae.decode_envelope(z))
        torch.testing.assert_close(prior.decode(z), ae.decode(z))
    ae_plain = Autoencoder(ENV_AE)
    ae_plain.load_state_dict(ae.state_dict())
    export_weights(ae_plain, ENV_AE.to_dict(), folder, "autoencoder", dtype="float32")
    plain = EmbeddedPrior(EmbeddedConfig(weights_dir=str(folder)))
    with torch.no_grad():
        torch.testing.assert_close(plain.decode_generated(z), ae.decode(z))
    with pytest.raises(ValueError, match="envelope_decoding: needs envelope_bands"):
        replace(TINY_AE, envelope_decoding=True)
    with pytest.raises(ValueError, match="no envelope channels"):
        Autoencoder(TINY_AE).decode_envelope(torch.zeros(1, 4, 3))


class FixedDecoder(torch.nn.Module):
    """Stands in for a decoder: returns the same audio for every latent row."""

    def __init__(self, audio: torch.Tensor) -> None:
        super().__init__()
        self.audio = audio

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.audio.expand(z.shape[0], 1, -1)


def test_postfilter_gates_what_the_envelope_lacks_and_fills_the_high_band() -> None:
    """A decoder that renders a 300 Hz tone for a 3 kHz one: the gate takes the 300 Hz band down, the
    fill puts the input's energy back in the 3 kHz band (above fill_hz only), bins below the lowest
    band pass unchanged, training never sees the post-filter, rows are independent of their batch,
    and the envelope channels receive gradient."""
    t = torch.arange(6400) / SR
    x = (0.3 * torch.sin(2 * math.pi * 3000.0 * t)).view(1, 1, -1)

    def model(mode: str, audio: torch.Tensor, generated: str | None = None) -> Autoencoder:
        ae = Autoencoder(replace(ENV_AE, postfilter=mode, postfilter_generated=generated)).eval()
        ae.decoder = FixedDecoder(audio.view(1, 1, -1))
        return ae

    wrong = 0.3 * torch.sin(2 * math.pi * 300.0 * t)
    models = {mode: model(mode, wrong) for mode in ("none", "gate", "gate_fill")}
    edges = band_edges(200.0, 8000.0, 6, "log")
    low, high = (int(((edges[:-1] <= f) & (f < edges[1:])).nonzero()) for f in (300.0, 3000.0))
    db = 10 / math.log(10)
    with torch.no_grad():
        z = models["none"].encode(x)

        def level(ae: Autoencoder, audio: torch.Tensor) -> torch.Tensor:  # dB per band, middle frames
            return db * ae.envelope.log_energies(audio[:, 0])[0, :, 20:-20].mean(-1)

        out = {mode: level(ae, ae.decode(z)) for mode, ae in models.items()}
        wanted = level(models["none"], x)
    assert out["none"][low] - wanted[low] > 60  # the wrong tone, far above the input there
    assert out["gate"][low] - out["none"][low] < -40  # gated down
    assert out["gate"][high] - wanted[high] < -40  # the gate adds nothing
    assert abs(out["gate_fill"][high] - wanted[high]) < 1.5  # the fill restores the missing band
    below = model("gate_fill", 0.3 * torch.sin(2 * math.pi * 60.0 * t))  # 60 Hz: under the lowest band
    with torch.no_grad():
        spectrum = torch.fft.rfft(below.decode(z)[0, 0] * torch.hann_window(6400)).abs()
        reference = torch.fft.rfft(0.3 * torch.sin(2 * math.pi * 60.0 * t) * torch.hann_window(6400)).abs()
        assert float(spectrum[24]) == pytest.approx(float(reference[24]), rel=0.05)  # bin 24 = 60 Hz
        assert torch.equal(models["gate_fill"](x)[0], wrong.view(1, 1, -1))  # training: decoder only
        zz = torch.cat([z, torch.randn(z.shape, generator=torch.Generator().manual_seed(3))])
        torch.testing.assert_close(models["gate_fill"].decode(zz)[:1], models["gate_fill"].decode(z))
    z = z.clone().requires_grad_(True)
    models["gate_fill"].decode(z).square().sum().backward()
    assert torch.isfinite(z.grad).all() and z.grad[:, 4:].abs().sum() > 0
    # Generated latents may take another post-filter: here the gate alone, while decode() also fills.
    split = model("gate_fill", wrong, generated="gate")
    with torch.no_grad():
        torch.testing.assert_close(split.decode(z.detach()), models["gate_fill"].decode(z.detach()))
        torch.testing.assert_close(split.decode_generated(z.detach()), models["gate"].decode(z.detach()))
        torch.testing.assert_close(
            models["gate_fill"].decode_generated(z.detach()), models["gate_fill"].decode(z.detach())
        )
    with pytest.raises(ValueError, match="postfilter: needs envelope_bands"):
        replace(TINY_AE, postfilter="gate")
    with pytest.raises(ValueError, match="postfilter: needs envelope_bands"):
        replace(TINY_AE, postfilter_generated="gate")
    with pytest.raises(ValueError, match="postfilter_generated: expected None or one of"):
        replace(ENV_AE, postfilter_generated="all")
    with pytest.raises(ValueError, match="postfilter: expected one of"):
        replace(ENV_AE, postfilter="wiener")


def test_mel_band_edges_and_envelope() -> None:
    """Mel edges are even in mel (HTK) and span min_hz..Nyquist; a tone lands in its mel band; many mel
    bands fit where log-spaced ones would leave low bands without a bin."""
    edges = band_edges(30.0, 8000.0, 64, "mel")
    mel = 2595.0 * torch.log10(1.0 + edges / 700.0)
    assert edges[0] == pytest.approx(30.0) and edges[-1] == pytest.approx(8000.0)
    torch.testing.assert_close(mel.diff(), torch.full((64,), float(mel.diff()[0]), dtype=torch.float64))
    torch.testing.assert_close(
        band_edges(50.0, 8000.0, 16, "log"),
        torch.logspace(math.log10(50.0), 3.90309, 17, dtype=torch.float64),
    )
    cfg = replace(ENV_AE, envelope_bands=24, envelope_spacing="mel", envelope_min_hz=30.0)
    ae = Autoencoder(cfg).eval()  # no empty band
    with pytest.raises(ValueError, match="hold no STFT bin"):
        Autoencoder(replace(cfg, envelope_spacing="log"))
    t = torch.arange(6400) / SR
    x = (0.3 * torch.sin(2 * math.pi * 1000.0 * t)).view(1, 1, -1)
    with torch.no_grad():
        env = ae.encode(x)[0, 4:, 10:-10].mean(dim=-1)
    mel_edges = band_edges(30.0, 8000.0, 24, "mel")
    assert int(env.argmax()) == int(((mel_edges[:-1] <= 1000.0) & (1000.0 < mel_edges[1:])).nonzero())
    with pytest.raises(ValueError, match="envelope_spacing"):
        replace(ENV_AE, envelope_spacing="bark")


def test_dropped_rows_train_the_envelope_only_decoder(tmp_path: Path) -> None:
    """drop_fraction zeroes the learned channels of some rows before decoding (so those rows decode as
    ``decode_envelope`` does) and scores them without phase; the export turns envelope_decoding on."""
    ae = randomize(Autoencoder(ENV_AE), 17)
    x = 0.1 * torch.randn(64, 1, 640, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        x_hat, mean, _, dropped = ae(x, torch.Generator().manual_seed(0), drop_fraction=0.5)
        assert 0.25 < float(dropped.float().mean()) < 0.75
        # the envelope channels carry the posterior's floor noise (std exp(min_log_std)): close, not equal
        reference = ae.decode_envelope(mean[dropped])[..., :640]
        assert float((x_hat[dropped] - reference).norm() / reference.norm()) < 1e-2
        plain, _, _, none = ae(x, torch.Generator().manual_seed(0))
        assert not bool(none.any())
        torch.testing.assert_close(plain[~dropped], x_hat[~dropped])  # the other rows: as without dropping
    _, parts = train_autoencoder.training_step(
        ae, x[:8], AE_TRAIN.loss, torch.Generator().manual_seed(0), 0, drop_fraction=0.5
    )
    assert {"complex", "complex_blind", "wave_blind"} <= set(parts) and parts["wave_blind"] == 0.0
    _, plain_parts = train_autoencoder.training_step(
        ae, x[:8], AE_TRAIN.loss, torch.Generator().manual_seed(0), 0
    )
    assert not any(k.endswith("_blind") for k in plain_parts)
    with pytest.raises(ValueError, match="drop_fraction: needs envelope channels"):
        Autoencoder(TINY_AE)(x[:2], drop_fraction=0.5)
    with pytest.raises(ValueError, match="drop_fraction: needs model.envelope_bands"):
        replace(AE_TRAIN, drop_fraction=0.5)
    cfg = replace(AE_TRAIN, model=ENV_AE, steps=1, drop_fraction=0.5)
    train_autoencoder.train(cfg, tmp_path / "run", cache=tmp_path)
    loaded = load_autoencoder(tmp_path / "run" / "export")
    assert loaded.config == replace(ENV_AE, envelope_decoding=True)


def test_istft_head_lengths_and_a_bin_at_its_own_frequency() -> None:
    """The istft decoder returns T * downsampling samples, and a bin held at a constant phase renders a
    pure tone at the bin's frequency, with nothing at the frame rates' images (the patch head's flaw)."""
    cfg = replace(TINY_AE, decoder_head="istft", istft_dilations=(1,))
    model = Autoencoder(cfg).eval()
    for frames in (1, 3, 20):
        assert model.decode(torch.zeros(2, cfg.latent_channels, frames)).shape == (
            2,
            1,
            frames * cfg.downsampling,
        )
    head, bins = model.decoder.head, model.decoder.n_fft // 2 + 1
    k = bins // 2  # Nyquist / 2
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[:bins] = -30.0  # every bin silent ...
        head.bias[k] = 3.0  # ... but bin k, at the constant direction (u, v) = (1, 0)
        head.bias[bins + k] = 1.0
    frames = 64
    y = model.decode(torch.zeros(1, cfg.latent_channels, frames))[0, 0].detach().numpy()
    hop = cfg.downsampling
    middle = y[8 * hop : (frames - 8) * hop]
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))))
    freqs = np.fft.rfftfreq(len(middle), 1 / cfg.sample_rate)
    target = k * cfg.sample_rate / model.decoder.n_fft
    assert abs(freqs[spectrum.argmax()] - target) < cfg.sample_rate / len(middle) + 1e-9
    elsewhere = np.abs(freqs - target) > 100.0
    assert 20 * np.log10(spectrum[elsewhere].max() / spectrum.max()) < -60
    with pytest.raises(ValueError, match="decoder_head"):
        replace(TINY_AE, decoder_head="transposed")


@pytest.mark.parametrize("bands", [4, 8, 16])
def test_pqmf_reconstructs_and_puts_a_tone_in_its_band(bands: int) -> None:
    from audiosds.training.autoencoder import PQMF

    pqmf = PQMF(bands)
    x = torch.randn(2, 1, 8000, generator=torch.Generator().manual_seed(0))
    sub = pqmf.analysis(x)
    assert sub.shape == (2, bands, 8000 // bands)
    y = pqmf.synthesis(sub)
    middle = slice(500, -500)  # the ends see zero padding
    snr = 10 * math.log10(float(x[..., middle].square().sum() / (y - x)[..., middle].square().sum()))
    assert snr > 40
    width = SR / 2 / bands
    for freq in (0.3 * width, 2.5 * width, (bands - 0.5) * width):
        tone = torch.sin(2 * math.pi * freq * torch.arange(8000) / SR).view(1, 1, -1)
        energy = pqmf.analysis(tone)[..., 100:-100].square().sum(dim=-1)[0]
        assert int(energy.argmax()) == int(freq // width)
        assert float(energy.max() / energy.sum()) > 0.6


def test_pqmf_autoencoder_shapes() -> None:
    cfg = replace(TINY_AE, filterbank="pqmf")
    model = Autoencoder(cfg)
    z = model.encode(torch.randn(2, 1, 1000))
    assert model.decode(z).shape == (2, 1, z.shape[-1] * cfg.downsampling)
    with pytest.raises(ValueError, match="filterbank"):
        replace(TINY_AE, filterbank="mdct")
