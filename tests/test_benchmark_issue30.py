"""The issue-30 benchmarks (audiosds.bench.suggest, reverb, enhance) at tiny scale: their pieces
compute what they claim, with oracles where there is one; data-dependent parts skip without
../shared/data."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest

from audiosds.bench import enhance as enhance_bench
from audiosds.bench import reverb as reverb_bench
from audiosds.bench import suggest as suggest_bench
from audiosds.metrics import si_sdr
from audiosds.tasks.suggest import Suggester

DATA = enhance_bench.DATA_DIR
needs_data = pytest.mark.skipif(
    not (DATA / "sounds" / "manifest.csv").is_file() or not (DATA / "real").is_dir(),
    reason="../shared/data is absent",
)


def test_fit_plate_recovers_the_rt60_of_a_synthetic_response():
    """Plain multiscale-STFT matching, as the plates benchmark fits a real plate, finds the RT60 of
    an exponentially decaying noise response (the renderer's own model, another noise draw)."""
    rate = reverb_bench.FIT_RATE
    t = np.arange(round(1.0 * rate)) / rate
    ir = np.random.default_rng(3).standard_normal(t.size) * np.exp(-math.log(1000) * t / 0.6)
    dry = np.zeros(round(0.1 * rate), dtype=np.float32)
    dry[:40] = np.hanning(40)
    truth, fitted, measured = reverb_bench.fit_plate(ir, dry, argparse.Namespace(seed=0, iters=60, lr=0.1))
    assert truth == pytest.approx(0.6, rel=0.1)
    assert fitted == pytest.approx(truth, rel=0.2) and measured == pytest.approx(truth, rel=0.2)


def test_reverb_report_rules_read_the_trace_as_named():
    """Each way of choosing a run's room (``RULES``) on a known (iterations, particles) trace of mid
    RT60s: the last row, its geometric mean, and geometric means over the last third."""
    trace = np.array([[1.0, 1.0]] * 6 + [[0.5, 2.0], [0.5, 2.0], [0.25, 4.0]])
    got = {name: rule(trace, 0.7) for name, rule in reverb_bench.RULES.items()}
    assert got["reported"] == 0.7
    assert got["last, particle 0"] == 0.25
    assert got["last, mean of particles"] == pytest.approx(1.0)
    assert got["tail mean, particle 0"] == pytest.approx((0.5 * 0.5 * 0.25) ** (1 / 3))
    assert got["tail mean of particles"] == pytest.approx(1.0)


def test_suggest_ranking_counts_a_pair_only_when_both_classes_are_in_the_top_3():
    suggester = Suggester()
    mixtures = suggest_bench.world_mixtures(2, 0, suggest_bench.RATE)
    lines, rows = suggest_bench.rank_section(suggester, "world", mixtures)
    assert len(rows) == 2 and all(len(r["ranks"]) == 2 for r in rows)
    for row in rows:
        assert row["both"] == all(rank <= 3 for rank in row["ranks"])
        assert row["either"] == any(rank <= 3 for rank in row["ranks"])
    assert lines[0] == "### world" and f"{sum(r['both'] for r in rows)} of 2" in lines[-2]


def test_the_oracle_mask_beats_the_noisy_input():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    speech = (0.1 * np.sin(2 * np.pi * 300 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)
    noise = (0.05 * rng.standard_normal(t.size)).astype(np.float32)
    mix = enhance_bench.Mixture("tone + noise", "noise", speech, noise)
    assert float(si_sdr(enhance_bench.oracle(mix), speech)) > float(si_sdr(mix.noisy, speech)) + 5


@needs_data
def test_enhance_mixtures_have_the_stated_snr_and_sources():
    args = argparse.Namespace(seconds=1.0, data=DATA, seed=0)
    for index, snr in ((0, 0.0), (5, 5.0)):
        mix = enhance_bench.make_mixture(index, args, 16000)
        measured = 10 * np.log10(np.mean(mix.speech**2) / np.mean(mix.noise**2))
        assert measured == pytest.approx(snr, abs=1e-3)
        assert mix.noise_class == enhance_bench.NOISES[index % 4]
    assert enhance_bench.make_mixture(1, args, 16000).name.startswith("digits(")
