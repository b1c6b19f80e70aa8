"""Separation (Audio-SDS eq. 13) against the analytic prior: an oracle mixture, formats, windows.

The oracle: each source is the decoded mean of its prompt's Gaussian, broadcast over every
frame, and the mixture is their sum. Why it is meaningful:
* the mixture lies in the decoder's range (the analytic latent space is a projection of each
  64-sample frame), so L_rec can reach zero, and with cfg_scale = 1 the Decoder-SDS fixed point
  of source k is exactly mu_k (AnalyticPrior.cfg_fixed_point): the truth is a fixed point of
  both terms of eq. 13 at once;
* L_rec constrains only the sum: without SDS (gamma = 0) nothing picks the split, which stays
  at the symmetric start encode(mixture / 2) -- each source is then the mixture scaled, exactly
  the baseline "mixture used as each source" under SI-SDR;
* t in [0.5, 0.95] (sigma 0.4 to 47 against data_std 0.5) keeps the SDS pull (1 - a)(z - mu_k)
  strong; L_rec without its log term (rec_log_weight = 0), whose near-silent bins between the
  250 Hz harmonics of these 64-sample-periodic sources would dominate it.

Measured (seed 0, 100 iterations): baseline 5.35 / 5.96 dB SI-SDR; gamma = 0: 5.37 / 5.97;
gamma = 1: 36.5 / 36.9 (39.7 / 39.9 after 150); gamma = 0.1: 9.6 / 10.3 (too weak); gamma = 30:
30.8 / 31.2 (SDS noise distorts); gamma = 1 in three cross-faded windows: 36.2 / 36.7.
"remasked" and "masks" reach 9.1 / 9.6 and 9.5 / 10.1: every oracle source is
periodic with the same 64-sample period, so both share every STFT bin and no mask can split
them fully.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from audiosds.metrics import si_sdr
from audiosds.priors import build
from audiosds.priors.analytic import AnalyticConfig, AnalyticPrior
from audiosds.sds import SDSConfig
from audiosds.tasks.separate import (
    SeparateConfig,
    _conditioning,
    check_member_sds,
    num_windows,
    overlap_add,
    separate,
    separation_sds,
    window_spans,
)

PROMPTS = ["saxophone playing melody", "bongo drum playing a rhythmic beat"]
ORACLE_SDS = SDSConfig(cfg_scale=1.0, t_min=0.5, t_max=0.95, num_draws=2)
DECODER = ("decoder",)  # one member: the oracle numbers below were measured with Decoder-SDS alone


@pytest.fixture(scope="module")
def prior() -> AnalyticPrior:
    return build("analytic")


def _oracle(prior: AnalyticPrior, frames: int = 64) -> tuple[np.ndarray, torch.Tensor]:
    """The mixture (1, N) and its two sources (2, 1, N), N = 64 * frames."""
    sources = torch.cat(
        [prior.decode(prior.prompt_mean(p)[None, :, None].expand(1, -1, frames)) for p in PROMPTS]
    )  # (2, 1, N)
    return sources.sum(0).numpy(), sources


def _oracle_sdr(prior: AnalyticPrior, **cfg: object) -> list[float]:
    mixture, refs = _oracle(prior, int(cfg.pop("frames", 64)))
    config = SeparateConfig(
        **{"parametrization": "latent", "iters": 100, "lr": 0.05, "sds_modes": DECODER, **cfg}
    )
    result = separate(mixture, prior.sample_rate, prior, PROMPTS, config, ORACLE_SDS)
    return si_sdr(torch.from_numpy(result.sources), refs).flatten().tolist()


def _baseline(prior: AnalyticPrior) -> list[float]:
    mixture, refs = _oracle(prior)
    return si_sdr(torch.from_numpy(mixture).expand(2, -1, -1), refs).flatten().tolist()


# -- the oracle -------------------------------------------------------------------------


def test_oracle_sds_recovers_each_source_and_reconstruction_alone_does_not(prior: AnalyticPrior) -> None:
    base = _baseline(prior)
    ours = _oracle_sdr(prior, gamma=1.0)
    rec_only = _oracle_sdr(prior, gamma=0.0)
    for b, o, r in zip(base, ours, rec_only, strict=True):
        assert o > b + 20.0  # measured 36.5 / 36.9 dB against 5.35 / 5.96
        assert abs(r - b) < 1.0  # no semantic guidance: the split stays at the baseline
        assert o > r + 20.0


def test_oracle_gamma_too_small_or_too_large_is_worse(prior: AnalyticPrior) -> None:
    good = _oracle_sdr(prior, gamma=1.0)
    for gamma in (0.1, 30.0):
        for g, other in zip(good, _oracle_sdr(prior, gamma=gamma), strict=True):
            assert other < g - 3.0  # measured 9.6 / 10.3 dB (0.1) and 30.8 / 31.2 dB (30) against 36.5 / 36.9


@pytest.mark.parametrize("parametrization", ["remasked", "masks"])
def test_oracle_mask_parametrizations_sum_to_the_mixture_and_gain(
    prior: AnalyticPrior, parametrization: str
) -> None:
    mixture, refs = _oracle(prior)
    config = SeparateConfig(parametrization=parametrization, iters=100, gamma=1.0, sds_modes=DECODER)
    result = separate(mixture, prior.sample_rate, prior, PROMPTS, config, ORACLE_SDS)
    np.testing.assert_allclose(result.mixture_reconstruction, mixture, atol=1e-5)
    gains = si_sdr(torch.from_numpy(result.sources), refs).flatten() - torch.tensor(_baseline(prior))
    assert (gains > 2.0).all()  # measured +3.7 / +3.7 (remasked), +4.2 / +4.1 (masks) dB
    logged = [row["rec_loss"] for row in result.history if row["rec_loss"] is not None]
    assert len(logged) >= 10 and all(v < 1e-4 for v in logged)  # logged every 10th iteration and the last
    # an iteration that computed no reconstruction loss says so (None), never NaN
    assert all(not math.isnan(v) for row in result.history for v in row.values() if v is not None)


def test_a_long_oracle_is_separated_in_windows_as_well_as_a_short_one(prior: AnalyticPrior) -> None:
    # 128 frames = 0.512 s in 0.25 s windows with at least 0.05 s overlap: 3 windows, cross-faded
    assert num_windows(64 * 128, 16000, prior, SeparateConfig(max_seconds=0.25, overlap_seconds=0.05)) == 3
    base = _baseline(prior)
    long = _oracle_sdr(prior, gamma=1.0, frames=128, max_seconds=0.25, overlap_seconds=0.05)
    assert all(v > b + 20.0 for v, b in zip(long, base, strict=True))


# -- formats ----------------------------------------------------------------------------


@pytest.mark.parametrize("parametrization", ["latent", "remasked", "masks"])
def test_44k_stereo_comes_back_44k_stereo_at_the_exact_length(
    prior: AnalyticPrior, parametrization: str
) -> None:
    n = 4411  # 0.1 s at 44.1 kHz, plus one sample
    mixture = 0.2 * np.random.default_rng(0).standard_normal((2, n)).astype(np.float32)
    mixture[1] *= 0.5
    config = SeparateConfig(parametrization=parametrization, iters=3)
    result = separate(mixture, 44100, prior, PROMPTS, config)
    assert result.sources.shape == (2, 2, n) and result.sources.dtype == np.float32
    assert result.mixture_reconstruction.shape == (2, n)
    # stereo into a mono prior: the downmix is separated and its ratio masks applied per channel,
    # so every channel's sources sum to that channel
    np.testing.assert_allclose(result.sources.sum(0), mixture, atol=1e-5)
    assert result.params["prior_sample_rate"] == 16000 and result.params["sample_rate"] == 44100


def test_mono_input_through_a_stereo_prior_comes_back_mono() -> None:
    stereo = AnalyticPrior(AnalyticConfig(channels=2)).freeze()
    mixture = 0.2 * np.random.default_rng(1).standard_normal((1, 2205)).astype(np.float32)
    for parametrization in ("latent", "remasked"):
        result = separate(
            mixture, 22050, stereo, PROMPTS, SeparateConfig(parametrization=parametrization, iters=2)
        )
        assert result.sources.shape == (2, 1, 2205)
    np.testing.assert_allclose(result.mixture_reconstruction, mixture, atol=1e-5)  # remasked: exact


def test_noise_source_is_an_extra_last_source(prior: AnalyticPrior) -> None:
    mixture = 0.2 * np.random.default_rng(2).standard_normal((1, 1024)).astype(np.float32)
    config = SeparateConfig(parametrization="masks", iters=3, noise_source=True)
    result = separate(mixture, 16000, prior, PROMPTS, config)
    assert result.prompts == [*PROMPTS, "noise"] and result.sources.shape == (3, 1, 1024)
    np.testing.assert_allclose(result.mixture_reconstruction, mixture, atol=1e-5)


# -- windows ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "window", "overlap", "align"),
    [
        (100, 100, 10, 1),
        (101, 100, 10, 1),
        (1000, 100, 10, 1),
        (997, 64, 0, 1),
        (16384, 8000, 1600, 64),
        (5000, 1000, 300, 64),
        (4097, 1000, 0, 1000),
    ],
)
def test_window_spans_cover_evenly_with_the_least_overlap(
    n: int, window: int, overlap: int, align: int
) -> None:
    spans = window_spans(n, window, overlap, align)
    assert spans[0][0] == 0 and spans[-1][1] == n
    assert all(start % align == 0 for start, _ in spans)
    assert all(end - start == min(n, window) for start, end in spans[:-1])
    assert window - align < spans[-1][1] - spans[-1][0] <= window or len(spans) == 1
    assert all(a[1] - b[0] >= overlap for a, b in zip(spans, spans[1:], strict=False))
    hops = [b[0] - a[0] for a, b in zip(spans, spans[1:], strict=False)]
    assert not hops or max(hops) - min(hops) <= align  # evenly spread
    if align == 1:  # the fewest windows
        assert len(spans) == (1 if n <= window else math.ceil((n - overlap) / (window - overlap)))


def test_overlap_add_fades_sum_to_one_and_join_constant_ratios_seamlessly() -> None:
    n = 1000
    signal = torch.randn(1, n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ratios = torch.tensor([[0.7], [0.3]], dtype=torch.float64)  # (K, 1)
    spans = window_spans(n, 300, 60)
    pieces = [ratios[:, :, None] * signal[None, :, s:e] for s, e in spans]  # (K, 1, W)
    torch.testing.assert_close(
        overlap_add(pieces, spans, n), ratios[:, :, None] * signal[None], rtol=0, atol=1e-12
    )
    ones = overlap_add([torch.ones(e - s) for s, e in spans], spans, n)
    torch.testing.assert_close(ones, torch.ones(n, dtype=torch.float64), rtol=0, atol=1e-12)
    # different pieces blend monotonically across an overlap
    steps = overlap_add([torch.full((e - s,), float(i)) for i, (s, e) in enumerate(spans)], spans, n)
    assert (steps.diff() >= -1e-12).all() and steps[0] == 0 and steps[-1] == len(spans) - 1
    with pytest.raises(ValueError, match="pieces"):
        overlap_add(pieces[:-1], spans, n)


def test_a_long_input_is_windowed_full_length_and_seamless(prior: AnalyticPrior) -> None:
    n = 16000  # 1 s in 0.25 s windows with 0.05 s overlap: 5 windows
    mixture = 0.2 * np.random.default_rng(3).standard_normal((1, n)).astype(np.float32)
    config = SeparateConfig(
        parametrization="masks", iters=2, gamma=0.0, init_noise=0.0, max_seconds=0.25, overlap_seconds=0.05
    )
    steps: list[int] = []
    result = separate(mixture, 16000, prior, PROMPTS, config, progress=lambda i, row: steps.append(i))
    windows = num_windows(n, 16000, prior, config)
    assert windows == 5 and len(result.params["spans"]) == 5
    assert steps == list(range(windows * config.iters)) and len(result.history) == windows * config.iters
    # every window is the constant-ratio split mixture / 2: the cross-faded result has no seam
    np.testing.assert_allclose(result.sources, np.broadcast_to(mixture / 2, (2, 1, n)), atol=1e-6)


# -- prompts, determinism, validation ---------------------------------------------------


def test_negative_prompts_replace_only_their_own_unconditional_rows(prior: AnalyticPrior) -> None:
    cond = _conditioning(prior, PROMPTS, ["speech", None])
    torch.testing.assert_close(cond.uncond["mean"][0], prior.prompt_mean("speech"))
    torch.testing.assert_close(cond.uncond["mean"][1], torch.zeros(8))  # the unconditional Gaussian
    assert cond.uncond["std"].tolist() == [prior.config.data_std, prior.config.uncond_std]
    torch.testing.assert_close(cond.cond["mean"], prior.embed(PROMPTS).cond["mean"])


def test_contrast_gives_each_source_the_other_prompts_as_negative(prior: AnalyticPrior) -> None:
    mixture, _ = _oracle(prior, 16)
    prompts = [*PROMPTS, "waves crashing on a rocky shore"]
    config = SeparateConfig(parametrization="latent", iters=2, contrast=True)
    result = separate(mixture, 16000, prior, prompts, config, negative=[None, "speech", None])
    negatives = [s["negative"] for s in result.params["sources"]]
    assert negatives == [f"{prompts[1]}, {prompts[2]}", "speech", f"{prompts[0]}, {prompts[1]}"]
    plain_config = SeparateConfig(parametrization="latent", iters=2, contrast=False)
    plain = separate(mixture, 16000, prior, prompts, plain_config)
    assert [s["negative"] for s in plain.params["sources"]] == [None, None, None]
    assert plain.sources.tobytes() != result.sources.tobytes()  # the negatives reach the SDS update


def test_same_seed_same_bytes_and_the_prior_is_untouched(prior: AnalyticPrior) -> None:
    mixture, _ = _oracle(prior, 16)
    before = prior.encoder.clone()
    config = SeparateConfig(parametrization="latent", iters=5, seed=7)
    runs = [
        separate(mixture, 16000, prior, PROMPTS, config, negative=neg) for neg in (None, None, [None, None])
    ]
    assert runs[0].sources.tobytes() == runs[1].sources.tobytes() == runs[2].sources.tobytes()
    other = separate(
        mixture, 16000, prior, PROMPTS, SeparateConfig(parametrization="latent", iters=5, seed=8)
    )
    assert other.sources.tobytes() != runs[0].sources.tobytes()
    assert torch.equal(prior.encoder, before) and prior.encoder.grad is None


def test_default_sds_is_separation_own_and_overrides_apply() -> None:
    sds = separation_sds()  # docs/experiments.md, "Where the guidance points"
    assert (sds.mode, sds.t_min, sds.t_max, sds.cfg_scale) == ("decoder", 0.3, 0.65, 7.5)
    changed = separation_sds(t_max=0.7, weighting="sigma")
    assert (changed.t_min, changed.t_max, changed.weighting, changed.cfg_scale) == (0.3, 0.7, "sigma", 7.5)


def test_sds_mode_members_are_optimised_side_by_side_and_averaged(prior: AnalyticPrior) -> None:
    # docs/experiments.md, "Two SDS modes averaged"
    assert SeparateConfig().sds_modes == ("decoder", "latent")
    mixture, refs = _oracle(prior)
    gains, results = {}, {}
    for modes in (("decoder",), ("latent",), ("decoder", "latent")):
        config = SeparateConfig(parametrization="masks", iters=100, gamma=1.0, sds_modes=modes)
        results[modes] = separate(mixture, prior.sample_rate, prior, PROMPTS, config, ORACLE_SDS)
        estimates = torch.from_numpy(results[modes].sources)
        gains[modes] = si_sdr(estimates, refs).flatten() - torch.tensor(_baseline(prior))
    both = results[("decoder", "latent")]
    np.testing.assert_allclose(both.mixture_reconstruction, mixture, atol=1e-5)  # the mean still sums
    summary = both.params["windows"][0]
    assert set(summary) == {"decoder", "latent"}  # one summary per member, each moved its own way
    assert summary["decoder"]["mean_mask"] != summary["latent"]["mean_mask"]
    # measured +4.2 / +4.1 (decoder), -1.4 / -1.6 (latent), +1.9 / +1.7 dB (both, averaged)
    low = torch.minimum(gains[("decoder",)], gains[("latent",)])
    high = torch.maximum(gains[("decoder",)], gains[("latent",)])
    assert bool((gains[("decoder", "latent")] > low + 1.0).all())
    assert bool((gains[("decoder", "latent")] < high - 1.0).all())


def test_sds_modes_are_validated_and_sds_mode_is_refused(prior: AnalyticPrior) -> None:
    assert SeparateConfig(sds_modes=["latent"]).sds_modes == ("latent",)  # from YAML
    assert SeparateConfig(sds_modes="latent").sds_modes == ("latent",)
    for bad in ((), ("decoder", "decoder"), ("pixel",), (1,)):
        with pytest.raises(ValueError, match="sds_modes"):
            SeparateConfig(sds_modes=bad)
    check_member_sds(separation_sds())
    mixture = np.zeros((1, 256), dtype=np.float32)
    with pytest.raises(ValueError, match="sds.mode: separation runs one member per"):
        separate(mixture, 16000, prior, PROMPTS, SeparateConfig(iters=1), SDSConfig(mode="latent"))


def test_inputs_are_validated(prior: AnalyticPrior) -> None:
    mixture = np.zeros((1, 256), dtype=np.float32)
    for prompts in (["one"], [f"p{i}" for i in range(9)], "rain", ["rain", "  "]):
        with pytest.raises(ValueError, match="prompts"):
            separate(mixture, 16000, prior, prompts, SeparateConfig(iters=1))
    with pytest.raises(ValueError, match="negative"):
        separate(mixture, 16000, prior, PROMPTS, SeparateConfig(iters=1), negative=["speech"])
    for bad in (np.zeros(256), np.zeros((256, 2)), np.full((1, 256), np.nan)):
        with pytest.raises(ValueError, match="mixture"):
            separate(bad, 16000, prior, PROMPTS, SeparateConfig(iters=1))
    with pytest.raises(ValueError, match="sample_rate"):
        separate(mixture, 0, prior, PROMPTS, SeparateConfig(iters=1))
    with pytest.raises(ValueError, match="overlap_seconds"):
        SeparateConfig(max_seconds=1.0, overlap_seconds=0.6)
    with pytest.raises(ValueError, match="parametrization"):
        SeparateConfig(parametrization="waveform")
    with pytest.raises(ValueError, match="gamma"):
        SeparateConfig(gamma=-1.0)


def test_time_domain_reconstruction_also_separates_the_oracle(prior: AnalyticPrior) -> None:
    # the ablation's time-domain L_rec (latent sources): the SDS term still pulls each source to
    # its prompt, and the sum follows the mixture in the waveform domain
    base = _baseline(prior)
    time_domain = _oracle_sdr(prior, gamma=1.0, rec_domain="time")
    assert all(v > b + 10.0 for v, b in zip(time_domain, base, strict=True))
    with pytest.raises(ValueError, match="rec_domain"):
        SeparateConfig(rec_domain="cepstral")
