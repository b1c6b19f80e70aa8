"""The band-energy check of ``benchmarks/prior_diagnostics.py``: closed-form tones and a stand-in
prior whose autoencoder is the identity or a gain."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

SR = 16000
_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(_DIR))  # the script imports its sibling judge.py
_spec = importlib.util.spec_from_file_location("benchmarks_prior_diagnostics", _DIR / "prior_diagnostics.py")
diagnostics = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = diagnostics
_spec.loader.exec_module(diagnostics)


def _tone(freq_hz: float, n: int = 16000) -> torch.Tensor:
    return torch.sin(2 * math.pi * freq_hz * torch.arange(n) / SR)


def test_band_energies_put_a_tone_in_its_band() -> None:
    x = torch.stack([_tone(3500.0), _tone(250.0), _tone(8000.0 - 4.0)])
    e = diagnostics.band_energies(x, SR, diagnostics.BAND_EDGES_HZ)
    assert e.shape == (3, len(diagnostics.BAND_EDGES_HZ) - 1)
    share = e / e.sum(dim=1, keepdim=True)
    assert share[0, 4] > 0.99  # 3-4 kHz
    assert share[1, 0] > 0.99  # 0-0.5 kHz
    assert share[2, -1] > 0.99  # the last band includes the top bins


class _LowPassPrior:
    """encode = identity; decode keeps ``low`` and scales the rest by ``high_gain`` (a crude low-pass)."""

    sample_rate = SR

    def __init__(self, low: torch.Tensor, high_gain: float) -> None:
        self.low, self.high_gain = low, high_gain

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.low + self.high_gain * (z - self.low)


@pytest.mark.parametrize("high_gain, expected_db", [(1.0, 0.0), (0.5, -6.02), (0.1, -20.0)])
def test_bands_report_what_the_autoencoder_keeps(high_gain: float, expected_db: float) -> None:
    low, high = 0.5 * _tone(300.0).view(1, 1, -1), 0.5 * _tone(5000.0).view(1, 1, -1)
    lines = diagnostics.bands(_LowPassPrior(low, high_gain), low + high, ["whistle"])
    row = next(line for line in lines if line.startswith("| whistle |"))
    cells = [c.strip() for c in row.strip("|").split("|")][1:]
    assert abs(float(cells[0])) < 0.05  # 0-0.5 kHz: kept
    assert abs(float(cells[5]) - expected_db) < 0.1  # 4-6 kHz
    assert cells[1] == cells[2] == ""  # bands with no energy stay blank
