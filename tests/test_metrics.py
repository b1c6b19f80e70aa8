"""Metrics: SI-SDR closed forms and invariances, BSS-eval SDR, spectral distance, shape checks."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

from audiosds.metrics import multires_spectral_distance, sdr, si_sdr

N = 16000


def _signal(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _noise_at_snr(s: torch.Tensor, snr_db: float, seed: int, zero_mean: bool) -> torch.Tensor:
    """Noise orthogonal to s (after mean removal if zero_mean) with |s|^2 / |n|^2 = 10^(snr/10)."""
    n = _signal(*s.shape, seed=seed)
    if zero_mean:
        s = s - s.mean(dim=-1, keepdim=True)
        n = n - n.mean(dim=-1, keepdim=True)
    n = n - (n * s).sum(-1, keepdim=True) / (s * s).sum(-1, keepdim=True) * s
    return n * s.norm(dim=-1, keepdim=True) / n.norm(dim=-1, keepdim=True) * 10 ** (-snr_db / 20)


def test_si_sdr_of_a_perfect_estimate_is_large_and_scale_invariant() -> None:
    x = _signal(3, N).float()
    perfect = si_sdr(x, x)
    assert perfect.shape == (3,)
    assert (perfect > 80.0).all()
    torch.testing.assert_close(si_sdr(3 * x, x), perfect, rtol=0, atol=1e-4)
    torch.testing.assert_close(si_sdr(x, 0.2 * x), perfect, rtol=0, atol=1e-4)


def test_si_sdr_is_invariant_to_scaling_either_input() -> None:
    x = _signal(2, N)
    estimate = x + 0.3 * _signal(2, N, seed=1)
    base = si_sdr(estimate, x)
    torch.testing.assert_close(si_sdr(5 * estimate, x), base, rtol=0, atol=1e-9)
    torch.testing.assert_close(si_sdr(estimate, 7 * x), base, rtol=0, atol=1e-9)
    torch.testing.assert_close(si_sdr(estimate + 2.5, x - 1.0), base, rtol=0, atol=1e-9)  # zero-mean first


@pytest.mark.parametrize("snr_db", [-5.0, 10.0, 30.0])
def test_si_sdr_of_orthogonal_noise_at_a_known_snr(snr_db: float) -> None:
    s = _signal(4, N, seed=2)
    n = _noise_at_snr(s, snr_db, seed=3, zero_mean=True)
    torch.testing.assert_close(
        si_sdr(s + n, s), torch.full((4,), snr_db, dtype=torch.float64), rtol=0, atol=1e-4
    )


def test_si_sdr_accepts_numpy_and_batches_like_singles() -> None:
    est, ref = _signal(2, 3, 500, seed=4), _signal(2, 3, 500, seed=5)
    batched = si_sdr(est.numpy(), ref.numpy())
    assert batched.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            assert batched[i, j].item() == pytest.approx(si_sdr(est[i, j], ref[i, j]).item(), abs=1e-9)


def test_si_sdr_gradient_is_orthogonal_to_the_estimate() -> None:
    # Scale invariance: d/dc si_sdr(c * e) = <grad, e> = 0.
    est = (_signal(N, seed=6) + 2 * _signal(N, seed=7)).requires_grad_(True)
    si_sdr(est, _signal(N, seed=6)).backward()
    assert est.grad.norm().item() > 1e-6
    assert abs(torch.dot(est.grad, est.detach()).item()) < 1e-8 * est.grad.norm().item() * est.norm().item()


def test_sdr_of_a_perfect_estimate_is_large() -> None:
    s = _signal(2, N, seed=8)
    assert (sdr(s, s) > 60).all()
    assert sdr(s[0], s[0]).shape == ()
    assert sdr(s[0].numpy(), s[0].numpy()).item() > 60


def test_sdr_of_orthogonal_noise_at_a_known_snr() -> None:
    s = _signal(2, N, seed=9)
    n = _noise_at_snr(s, 10.0, seed=10, zero_mean=False)
    # a 1-tap filter: SDR is exactly the SNR of noise orthogonal to the reference
    torch.testing.assert_close(sdr(s + n, s, filter_length=1), torch.full((2,), 10.0, dtype=torch.float64))
    # 512 taps: the filter also explains the noise's projection on 511 more shifts of s,
    # about 511 / N of its energy on average
    expected = 10.0 - 10 * math.log10(1 - 511 / N)
    torch.testing.assert_close(
        sdr(s + n, s), torch.full((2,), expected, dtype=torch.float64), rtol=0, atol=0.05
    )


def test_sdr_pairs_sources_in_order_unless_asked_to_permute() -> None:
    s = _signal(2, N, seed=11)
    swapped = s.flip(0)
    assert (sdr(swapped, s) < 0).all()
    assert (sdr(swapped, s, permutation=True) > 60).all()


def test_spectral_distance_is_zero_for_identical_and_positive_otherwise() -> None:
    x = _signal(2, 3, 4000, seed=12).float()
    same = multires_spectral_distance(x, x.clone())
    assert same.shape == (2, 3)
    assert torch.equal(same, torch.zeros(2, 3))
    noisy = multires_spectral_distance(x + 0.05 * _signal(2, 3, 4000, seed=13).float(), x)
    louder = multires_spectral_distance(1.5 * x, x)
    assert (noisy > 0).all() and (louder > 0).all()
    # more noise, more distance
    assert (multires_spectral_distance(x + 0.5 * _signal(2, 3, 4000, seed=13).float(), x) > noisy).all()
    mono = multires_spectral_distance(x[0, 0].numpy(), (1.5 * x[0, 0]).numpy(), window_sizes=(64, 128))
    assert mono.shape == () and mono.item() > 0


@pytest.mark.parametrize("metric", [si_sdr, sdr, multires_spectral_distance])
def test_mismatched_shapes_raise(metric: Callable[..., torch.Tensor]) -> None:
    x = _signal(2, 2000)
    with pytest.raises(ValueError, match=r"expected the estimate's shape \(2, 2000\), got \(2, 1999\)"):
        metric(x, x[:, :1999])
    with pytest.raises(ValueError, match="expected the estimate's shape"):
        metric(x, x[0])
    with pytest.raises(ValueError, match=r"expected shape \(\.\.\., N\)"):
        metric(torch.tensor(1.0), torch.tensor(1.0))
    with pytest.raises(ValueError, match="numpy.ndarray"):
        metric([0.0, 1.0], [0.0, 1.0])


def test_sdr_needs_more_samples_than_filter_taps() -> None:
    x = _signal(300)
    with pytest.raises(ValueError, match="N >= 513"):
        sdr(x, x)
    assert sdr(x, x, filter_length=16).item() > 60


def test_si_sdr_rejects_a_non_positive_eps() -> None:
    with pytest.raises(ValueError, match="eps"):
        si_sdr(np.ones(10), np.ones(10), eps=0.0)


def test_prompt_score_matches_the_scorer_and_prefers_the_right_prompt():
    from audiosds.metrics import prompt_score
    from audiosds.scorer import default_weights_dir
    from audiosds.world import render_clip

    if not (default_weights_dir() / "scorer.safetensors").exists():
        pytest.skip("no shipped scorer weights")
    clips = [render_clip("bell", seed=3).audio, render_clip("noise", seed=3).audio]
    audio = torch.from_numpy(np.stack(clips))
    own = prompt_score(audio, ["a church bell ringing", "white noise hiss"], 16000)
    swapped = prompt_score(audio, ["white noise hiss", "a church bell ringing"], 16000)
    assert own.shape == (2,) and ((own >= -1) & (own <= 1)).all()
    assert (own > swapped).all()
