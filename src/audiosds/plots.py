"""Figures written by the CLI and the benchmarks (matplotlib, Agg backend, saved atomically)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .audio import write_bytes
from .spectral import spectrogram_db

DYNAMIC_RANGE_DB = 80.0  # colour scale: the loudest bin of all panels down to this many dB below
LOWEST_HZ = 20.0  # bottom of the log-frequency axis (or the first bin above 0 Hz, if higher)
FREQ_TICKS_HZ = (20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)


def _tick_label(hz: float) -> str:
    return f"{hz / 1000:g}k" if hz >= 1000 else f"{hz:g}"


def save_spectrograms(
    path: str | Path, panels: Sequence[tuple[str, np.ndarray]], sample_rate: int, nfft: int = 2048
) -> None:
    """:func:`spectrogram_png` written to ``path`` (atomically)."""
    write_bytes(path, spectrogram_png(panels, sample_rate, nfft))


def spectrogram_png(
    panels: Sequence[tuple[str, np.ndarray]], sample_rate: int, nfft: int = 2048, width_in: float = 4.5
) -> bytes:
    """Spectrograms in dB side by side on one colour scale, frequency on a log axis, as PNG bytes.

    The log axis gives each octave the same height, so a bass note's partials are as visible as
    a whistle's; the 2048-point window (128 ms at 16 kHz) resolves them down to about 20 Hz.

    Args:
        panels: (title, audio) pairs; audio (N,) or (C, N) (channels are averaged).
        sample_rate: of every panel's audio.
        nfft: STFT window size.
        width_in: width of one panel, in inches (at 100 dpi).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def db(audio: np.ndarray | torch.Tensor) -> tuple[np.ndarray, ...]:
        x = audio if isinstance(audio, torch.Tensor) else torch.as_tensor(np.asarray(audio))
        return tuple(t.numpy() for t in spectrogram_db(x, sample_rate, nfft))

    specs = [(title, *db(audio)) for title, audio in panels]
    top = max(float(s[3].max()) for s in specs)
    cols = min(len(specs), 4)
    rows = -(-len(specs) // cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(width_in * cols + 1, 3.4 * width_in / 4.5 * rows),
        squeeze=False,
        layout="constrained",
    )
    for ax in axes.flat[len(specs) :]:
        ax.axis("off")
    image = None
    for ax, (title, freqs, times, db) in zip(axes.flat, specs, strict=False):
        # the 0 Hz row has no place on a log axis
        image = ax.pcolormesh(
            times, freqs[1:], db[1:], shading="auto", cmap="magma", vmin=top - DYNAMIC_RANGE_DB, vmax=top
        )
        ax.set_yscale("log")
        low = max(LOWEST_HZ, float(freqs[1]))
        ax.set_ylim(low, float(freqs[-1]))
        ticks = [f for f in FREQ_TICKS_HZ if low <= f <= freqs[-1]]
        ax.set_yticks(ticks, [_tick_label(f) for f in ticks])
        ax.minorticks_off()
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("frequency (Hz, log scale)")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), label="level (dB)", shrink=0.9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
