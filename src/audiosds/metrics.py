"""Audio metrics: SI-SDR, BSS-eval SDR, multi-resolution spectral distance, prompt alignment.

Every reference metric takes ``(estimate, reference)`` in that order, as torch tensors or numpy
arrays of the same shape ``(..., N)`` (time last), and returns a torch tensor with one value per
leading index. Torch inputs keep their autograd graph. :func:`prompt_score` compares audio with
text instead, through a CLAP-style scorer (:mod:`audiosds.scorer`).
"""

from __future__ import annotations

from collections.abc import Sequence

import fast_bss_eval
import numpy as np
import torch
from torch import Tensor

from .spectral import DEFAULT_WINDOWS, multiscale_spectral_loss

ArrayLike = Tensor | np.ndarray


def _as_tensor(x: ArrayLike, name: str) -> Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


def _pair(estimate: ArrayLike, reference: ArrayLike, min_samples: int = 1) -> tuple[Tensor, Tensor]:
    """Both inputs as floating tensors of one shape (..., N) with N >= min_samples."""
    est, ref = _as_tensor(estimate, "estimate"), _as_tensor(reference, "reference")
    if est.ndim == 0 or est.shape[-1] < min_samples:
        raise ValueError(f"estimate: expected shape (..., N) with N >= {min_samples}, got {tuple(est.shape)}")
    if ref.shape != est.shape:
        raise ValueError(
            f"reference: expected the estimate's shape {tuple(est.shape)}, got {tuple(ref.shape)}"
        )
    return est, ref


def si_sdr(estimate: ArrayLike, reference: ArrayLike, eps: float = 1e-8) -> Tensor:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019).

    Both signals are made zero-mean; the reference is scaled by the projection
    ``alpha = <e, r> / <r, r>`` and ``SI-SDR = 10 log10(|alpha r|^2 / |e - alpha r|^2)``.
    ``eps`` is a relative floor: ``eps * |e|^2`` is added to both energies, so the value is
    exactly invariant to rescaling either input and lies within +-10 log10((1 + eps) / eps)
    dB (+-80 dB at the default; a perfect estimate scores that maximum).

    Args:
        estimate: estimated signal(s).
        reference: reference signal(s), the same shape.
        eps: relative energy floor (> 0).

    Returns:
        SI-SDR in dB, float64.

    Shape:
        estimate (..., N), reference (..., N) -> (...)
    """
    if eps <= 0:
        raise ValueError(f"eps: expected > 0, got {eps}")
    est, ref = _pair(estimate, reference)
    est = est.to(torch.float64)
    ref = ref.to(torch.float64)
    est = est - est.mean(dim=-1, keepdim=True)
    ref = ref - ref.mean(dim=-1, keepdim=True)
    tiny = torch.finfo(torch.float64).tiny  # keeps 0 / 0 (silent inputs) finite
    alpha = (est * ref).sum(dim=-1, keepdim=True) / (ref.square().sum(dim=-1, keepdim=True) + tiny)
    target = alpha * ref
    floor = eps * est.square().sum(dim=-1) + tiny
    return 10 * torch.log10(
        (target.square().sum(dim=-1) + floor) / ((est - target).square().sum(dim=-1) + floor)
    )


def sdr(
    estimate: ArrayLike,
    reference: ArrayLike,
    filter_length: int = 512,
    permutation: bool = False,
    clamp_db: float = 100.0,
) -> Tensor:
    """BSS-eval SDR in dB (Vincent et al. 2006) through ``fast_bss_eval``.

    The distortion filter lets each reference through a ``filter_length``-tap FIR filter before
    measuring the residual, so SDR forgives short linear filtering that SI-SDR does not.

    Args:
        estimate: K estimated sources, or one signal.
        reference: the K reference sources (or one signal), the same shape.
        filter_length: taps of the allowed distortion filter; N must exceed it.
        permutation: False scores estimate k against reference k (sources named by their
            prompts); True first finds the pairing that maximises the summed SDR and returns
            the SDRs in estimate order.
        clamp_db: results are clamped to [-clamp_db, clamp_db] (a perfect estimate is +inf).

    Returns:
        SDR per source in dB, float64.

    Shape:
        (N,) -> (); (..., K, N) -> (..., K)
    """
    est, ref = _pair(estimate, reference, min_samples=filter_length + 1)
    est = est.to(torch.float64)
    ref = ref.to(torch.float64)
    mono = est.ndim == 1
    if mono:
        est, ref = est.unsqueeze(0), ref.unsqueeze(0)  # (1, N)
    if permutation:
        value = fast_bss_eval.sdr(ref, est, filter_length=filter_length, clamp_db=clamp_db)
    else:
        value = -fast_bss_eval.sdr_loss(est, ref, filter_length=filter_length, clamp_db=clamp_db)
    return value.squeeze(0) if mono else value


def multires_spectral_distance(
    estimate: ArrayLike, reference: ArrayLike, window_sizes: Sequence[int] = DEFAULT_WINDOWS
) -> Tensor:
    """Multi-resolution STFT magnitude distance (phase-blind), averaged over window sizes.

    Per window size: mean |M_e - M_r| + mean |log M_e - log M_r| over the Hann-window
    magnitudes of :func:`audiosds.spectral.stft_magnitudes` (hop = window / 4); see
    :func:`audiosds.spectral.multiscale_spectral_loss`, which this evaluates per signal.
    Zero exactly for identical inputs.

    Args:
        estimate: estimated signal(s).
        reference: reference signal(s), the same shape.
        window_sizes: STFT window lengths in samples.

    Returns:
        The distance per signal, in the input's floating dtype.

    Shape:
        estimate (..., N), reference (..., N) -> (...)
    """
    est, ref = _pair(estimate, reference)
    lead = est.shape[:-1]
    dtype = torch.promote_types(est.dtype, ref.dtype)
    flat_est = est.to(dtype).reshape(-1, 1, est.shape[-1])  # (P, 1, N)
    flat_ref = ref.to(dtype).reshape(-1, 1, ref.shape[-1])
    return multiscale_spectral_loss(flat_est, flat_ref, window_sizes, reduction="none").reshape(lead)


def prompt_score(
    audio: ArrayLike, prompts: Sequence[str], sample_rate: int, scorer: object | None = None
) -> Tensor:
    """Prompt alignment: cosine similarity of clip b with prompt b in a CLAP-style space.

    Args:
        audio: clips, (B, N) or (B, C, N).
        prompts: one per clip.
        sample_rate: of ``audio`` (resampled to the scorer's rate if needed).
        scorer: a :class:`audiosds.scorer.PromptScorer`; None loads the shipped embedded scorer.

    Returns:
        (B,) scores in [-1, 1]; higher means closer to the prompt.
    """
    from .scorer import build_scorer

    scorer = build_scorer("embedded") if scorer is None else scorer
    return scorer.score_pairs(audio, list(prompts), sample_rate=sample_rate)
