"""``perf`` section ``stft``: peak memory of the multiscale-STFT losses' backward against their forward."""

from __future__ import annotations

import torch

from ...sds import surrogate_loss
from ...spectral import DEFAULT_WINDOWS, multiscale_spectral_loss, stft_magnitudes
from .. import log
from ..report import markdown_table
from .measure import MIB, PeakRSS, mib, release_free_memory, status_kib
from .work import Plan

STFT_RATIO_TARGET = 2.0


def stft_memory(seconds: float, sample_rate: int, rows: int, kind: str) -> tuple[int, int, int]:
    """Peak extra RSS of forward and of backward of a multiscale-STFT loss on ``rows`` clips.

    kinds: "rec" (``multiscale_spectral_loss``, log_weight 0: separation's L_rec), "rec+log"
    (log_weight 1, the default) and "sds" (spectral-emphasis SDS: ``stft_magnitudes`` and the
    surrogate, eq. 7).

    Returns:
        (forward peak above the start, graph held after forward, backward peak above the
        post-forward level), in bytes.
    """
    n = round(seconds * sample_rate)
    g = torch.Generator().manual_seed(0)
    x = (0.1 * torch.randn(rows, 1, n, generator=g)).requires_grad_(True)
    ref = 0.1 * torch.randn(rows, 1, n, generator=g)

    def forward() -> torch.Tensor:
        if kind == "sds":
            mags = stft_magnitudes(x, DEFAULT_WINDOWS)
            with torch.no_grad():
                targets = [m - 0.01 for m in stft_magnitudes(ref, DEFAULT_WINDOWS)]
            return sum((surrogate_loss(m, t) for m, t in zip(mags, targets, strict=True)), x.new_zeros(()))
        return multiscale_spectral_loss(x, ref, DEFAULT_WINDOWS, log_weight=1.0 if kind == "rec+log" else 0.0)

    with PeakRSS() as fwd:
        loss = forward()
    release_free_memory()
    held = max(0, 1024 * (status_kib("VmRSS") or 0) - fwd.start_bytes) if fwd.exact else 0
    with PeakRSS() as bwd:
        loss.backward()
    return fwd.peak_bytes, held, bwd.peak_bytes


def section_stft(plan: Plan) -> str:
    sample_rate = 16000
    stft_memory(1.0, sample_rate, 1, "rec+log")  # warm-up: FFT plans, cached windows
    rows = []
    for kind, what in (
        ("rec", "L_rec: multiscale_spectral_loss, log_weight 0"),
        ("rec+log", "multiscale_spectral_loss, log_weight 1"),
        ("sds", "spectral SDS: stft_magnitudes + surrogate_loss"),
    ):
        for batch in (1, 4):
            log.info(f"stft: {kind} x{batch}")
            fwd, held, bwd = stft_memory(plan.stft_seconds, sample_rate, batch, kind)
            ratio = f"{bwd / fwd:.2f}" if fwd > 0 else "n/a"
            rows.append([what, batch, mib(fwd), mib(held), mib(bwd), ratio])
    headers = ["loss", "rows", "forward peak MiB", "held after forward MiB", "backward peak MiB", "bwd / fwd"]
    n = round(plan.stft_seconds * sample_rate)
    return (
        f"## Multiscale-STFT backward memory\n\n{plan.stft_seconds:g} s at {sample_rate} Hz "
        f"({n} samples, {n * 4 / MIB:.1f} MiB per row), windows {DEFAULT_WINDOWS}, hop = window / 4. "
        f"Backward peak is measured above the level after forward (graph held). "
        f"Target bwd / fwd <= {STFT_RATIO_TARGET:g}.\n\n" + markdown_table(headers, rows) + "\n"
    )
