"""Properties of the multiscale STFT (spectral.py)."""

from __future__ import annotations

import math

import pytest
import torch

from audiosds.spectral import multiscale_spectral_loss, stft_magnitudes

WINDOWS = (64, 128, 256)


def test_shapes_one_per_window() -> None:
    x = torch.randn(2, 3, 1000)
    mags = stft_magnitudes(x, WINDOWS, hop_ratio=0.25)
    assert [tuple(m.shape) for m in mags] == [(2, 3, s // 2 + 1, 1 + 1000 // (s // 4)) for s in WINDOWS]


def test_gradients_finite_for_silence() -> None:
    ref = torch.randn(1, 1, 512, generator=torch.Generator().manual_seed(0))
    x = torch.zeros(1, 1, 512, requires_grad=True)
    multiscale_spectral_loss(x, ref, WINDOWS).backward()
    assert torch.isfinite(x.grad).all()
    # Barely above silence the gradient is finite and already informative.
    x = (1e-9 * ref).requires_grad_(True)
    multiscale_spectral_loss(x, ref, WINDOWS).backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().max() > 0


@pytest.mark.parametrize("size", WINDOWS)
def test_sine_peaks_at_its_bin(size: int) -> None:
    sr, n = 16000, 2048
    k = size // 8  # an exact bin
    freq_hz = k * sr / size
    t = torch.arange(n, dtype=torch.float64) / sr
    x = torch.sin(2 * math.pi * freq_hz * t).view(1, 1, n)
    (mag,) = stft_magnitudes(x, (size,))
    interior = mag[0, 0, :, 2:-2]  # frames away from the padded edges, (F, T)
    assert (interior.argmax(dim=0) == k).all()
    # Hann window, normalised STFT: peak |X| = sum(w) / 2 / sqrt(size) = sqrt(size) / 4.
    expected = torch.full_like(interior[k], math.sqrt(size) / 4)
    torch.testing.assert_close(interior[k], expected, rtol=1e-6, atol=0)


def test_loss_zero_on_identity_positive_otherwise() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 1, 700, generator=g)
    assert multiscale_spectral_loss(x, x.clone(), WINDOWS).item() == 0.0
    y = x + 0.01 * torch.randn(2, 1, 700, generator=g)
    assert multiscale_spectral_loss(y, x, WINDOWS).item() > 0.0
    per_row = multiscale_spectral_loss(y, x, WINDOWS, reduction="none")
    assert per_row.shape == (2,)
    torch.testing.assert_close(per_row.mean(), multiscale_spectral_loss(y, x, WINDOWS))


def test_batch_equals_singles() -> None:
    x = torch.randn(3, 2, 600, generator=torch.Generator().manual_seed(2))
    batched = stft_magnitudes(x, WINDOWS)
    for i in range(3):
        single = stft_magnitudes(x[i : i + 1], WINDOWS)
        for mb, ms in zip(batched, single, strict=True):
            torch.testing.assert_close(mb[i : i + 1], ms)


@pytest.mark.parametrize("n", [1, 20, 40, 300])
def test_short_inputs_are_padded_not_crashing(n: int) -> None:
    x = torch.randn(1, 1, n, generator=torch.Generator().manual_seed(n), requires_grad=True)
    mags = stft_magnitudes(x, (256,))
    assert mags[0].shape == (1, 1, 129, 1 + n // 64)
    mags[0].sum().backward()
    assert torch.isfinite(x.grad).all()


def test_window_cached_under_inference_mode_still_differentiable() -> None:
    with torch.inference_mode():
        stft_magnitudes(torch.randn(1, 1, 300), (96,))
    x = torch.randn(1, 1, 300, requires_grad=True)
    stft_magnitudes(x, (96,))[0].sum().backward()
    assert torch.isfinite(x.grad).all()


def test_gradcheck_float64() -> None:
    x = torch.randn(1, 1, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    x.requires_grad_(True)
    ref = torch.randn(1, 1, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    assert torch.autograd.gradcheck(lambda a: stft_magnitudes(a, (16, 32))[1], (x,))

    def loss(a: torch.Tensor) -> torch.Tensor:
        return multiscale_spectral_loss(a, ref, (16, 32), log_weight=0.5)

    assert torch.autograd.gradcheck(loss, (x,))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"x": torch.zeros(4, 100)}, r"x: expected a tensor \(B, C, N\)"),
        ({"x": torch.zeros(1, 1, 100), "window_sizes": ()}, "window_sizes"),
        ({"x": torch.zeros(1, 1, 100), "window_sizes": (1,)}, "window_sizes"),
        ({"x": torch.zeros(1, 1, 100), "hop_ratio": 0.0}, "hop_ratio"),
        ({"x": torch.zeros(1, 1, 100, dtype=torch.int64)}, "floating-point"),
    ],
)
def test_stft_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        stft_magnitudes(**kwargs)


def test_loss_validation() -> None:
    with pytest.raises(ValueError, match="reference: expected"):
        multiscale_spectral_loss(torch.zeros(1, 1, 100), torch.zeros(1, 1, 101), WINDOWS)
    with pytest.raises(ValueError, match="reduction"):
        multiscale_spectral_loss(torch.zeros(1, 1, 100), torch.zeros(1, 1, 100), WINDOWS, reduction="sum")
