"""The spectrogram figure's STFT (``spectral.spectrogram_db``) against scipy.signal.stft, and the PNG it
writes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import stft

from audiosds.plots import save_spectrograms
from audiosds.spectral import spectrogram_db


def _log_spectrogram(audio: np.ndarray, sample_rate: int, nfft: int) -> tuple[np.ndarray, ...]:
    return tuple(t.numpy() for t in spectrogram_db(torch.from_numpy(audio), sample_rate, nfft))


@pytest.mark.parametrize("samples", [100, 1000, 16000, 44101])
def test_log_spectrogram_matches_scipy_stft(samples: int) -> None:
    audio = np.random.default_rng(samples).standard_normal((2, samples))
    freqs, times, db = _log_spectrogram(audio, 16000, 1024)
    nfft = min(1024, max(16, 1 << int(np.log2(max(samples, 16)))))
    ref_f, ref_t, spec = stft(audio.mean(axis=0), fs=16000, nperseg=nfft, noverlap=nfft * 3 // 4)
    np.testing.assert_allclose(freqs, ref_f)
    np.testing.assert_allclose(times, ref_t)
    np.testing.assert_allclose(db, 20 * np.log10(np.abs(spec) + 1e-10), atol=1e-6)


def test_a_clip_shorter_than_the_window_still_has_a_spectrogram() -> None:
    freqs, times, db = _log_spectrogram(np.ones(5), 16000, 1024)  # scipy's stft refuses this one
    assert db.shape == (freqs.size, times.size) == (9, 3) and np.isfinite(db).all()


def test_save_spectrograms_writes_a_png(tmp_path) -> None:
    tone = np.sin(2 * np.pi * 440 * np.arange(8000) / 16000)
    save_spectrograms(tmp_path / "s.png", [("tone", tone), ("silence", np.zeros(8000))], 16000)
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
