"""The band-energy check of ``audiosds.bench.prior_diagnostics``: closed-form tones and a stand-in
prior whose autoencoder is the identity or a gain."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from audiosds.bench import embedded_prior, prior_prompt_scores
from audiosds.bench import prior_diagnostics as diagnostics

SR = 16000


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


def test_prior_prompt_scores_reports_generated_and_initial_scores(tmp_path: Path) -> None:
    out = tmp_path / "scores.md"
    prior_prompt_scores.main(
        ["--prior", "analytic", "--prompts", "a bell", "glass breaking", "--clips", "2", "--renders", "1"]
        + ["--steps", "2", "--seconds", "0.5", "--out", str(out)]
    )
    rows = [
        line for line in out.read_text().splitlines() if line.startswith(("| a bell", "| glass breaking"))
    ]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        mean, lo, hi = (
            float(v) for v in re.fullmatch(r"(-?[\d.]+) \((-?[\d.]+)-(-?[\d.]+)\)", cells[1]).groups()
        )
        assert -1.0 <= lo <= mean <= hi <= 1.0  # two generated clips: their mean lies between them
        assert len(cells) == 4 and all(-1.0 <= float(v) <= 1.0 for v in cells[2:])  # FM and impact inits


def test_between_share_is_anova_between_over_total() -> None:
    rng = np.random.default_rng(0)
    labels = [f"f{i % 4}" for i in range(400)]
    noise = rng.standard_normal((400, 3, 5))
    share = diagnostics.between_share(noise, labels)
    assert abs(share - 3 / 399) < 0.01  # no family effect: about (F - 1) / (n - 1)
    offsets = np.array([[0.0], [3.0], [-3.0], [6.0]])[[i % 4 for i in range(400)]][:, :, None]  # (400, 1, 1)
    assert diagnostics.between_share(noise + offsets, labels) > 0.9
    two = np.array([[0.0], [0.0], [2.0], [2.0]])
    assert diagnostics.between_share(two, ["a", "a", "b", "b"]) == pytest.approx(1.0)


def test_generation_prompts_follow_the_caption_split() -> None:
    module = embedded_prior
    held = module._generation_prompts(0, 2, "heldout")
    train = module._generation_prompts(0, 2, "train")
    assert held == module._generation_prompts(0, 2)  # held-out phrasings stay the default
    assert [(f, s) for f, _, s in held] == [(f, s) for f, _, s in train]  # same families and sampler seeds
    assert len(held) == 2 * len(module.FAMILIES)
    assert sum(a != b for (_, a, _), (_, b, _) in zip(held, train, strict=True)) > len(held) // 2
    assert module.parse_args(["--caption-split", "train"]).caption_split == "train"
    with pytest.raises(SystemExit):
        module.parse_args(["--caption-split", "test"])


def test_generation_prompts_of_some_families_are_those_of_the_full_run() -> None:
    module = embedded_prior
    full = module._generation_prompts(0, 3)
    some = module._generation_prompts(0, 3, families=["wind", "kick"])
    assert some == [job for job in full if job[0] in ("wind", "kick")]
    assert len(some) == 6
    assert module.parse_args(["--families", "wind", "kick"]).families == ["wind", "kick"]
    with pytest.raises(SystemExit):
        module.parse_args(["--families", "wind", "kazoo"])
    lines = module._confusion_block(["wind", "wind", "kick"], ["wind", "traffic", "kick"], ["wind", "kick"])
    assert len(lines) == 2 + 2 + 1  # fences, header, one row per prompted family
    wind = lines[2].split()
    assert int(wind[0]) == list(module.FAMILIES).index("wind")
    assert wind[2:].count(".") == len(module.FAMILIES) - 2  # two assigned columns: wind and traffic


def test_log_band_energies_put_a_tone_in_one_band() -> None:
    x = torch.stack([_tone(1000.0), _tone(6000.0)])
    e = diagnostics.log_band_energies(x, SR, hop=64)
    assert e.shape == (2, 16, 16000 // 64 + 1)
    loudest = e[:, :, 10:-10].mean(axis=-1).argmax(axis=1)  # away from the padded edges
    edges = np.geomspace(50.0, SR / 2, 17)
    assert edges[loudest[0]] <= 1000.0 < edges[loudest[0] + 1]
    assert edges[loudest[1]] <= 6000.0 < edges[loudest[1] + 1]


def test_halves_table_tells_which_half_the_decoder_follows() -> None:
    """Latents of one learned and one envelope channel, constant in time; a family is a value. The
    stand-in decoder renders only the envelope channel, so the envelope decides every row: generated
    envelopes that are right and learned channels that are wrong must show as such."""
    families = ["a", "b", "c", "a", "b", "c"]
    value = {"a": 0.0, "b": 1.0, "c": 2.0}
    real = torch.tensor([[value[f], value[f]] for f in families])[:, :, None].repeat(1, 1, 8)
    generated = real.clone()
    generated[:, 0] = (generated[:, 0] + 1.0) % 3.0  # learned half another family's, envelope half right

    def decode(z: torch.Tensor) -> list[np.ndarray]:
        return [row[1].numpy() for row in z]  # follows the envelope channel only

    def classify(audio: list[np.ndarray]) -> list[str]:
        return [min(value, key=lambda f: abs(value[f] - float(a.mean()))) for a in audio]

    lines = diagnostics.halves_table(decode, classify, generated, real, families, learned=1)
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in lines if line.startswith("| ")}
    assert rows["generated latent"] == "100.0%"
    assert rows["the clip's learned channels + generated envelope"] == "100.0%"
    assert (
        rows["another family's learned channels + the clip's envelope: judged as the envelope's"] == "100.0%"
    )
    assert rows["... judged as the learned channels' family"] == "0.0%"
    assert rows["learned channels zeroed + generated envelope (envelope-only decoding)"] == "100.0%"
    assert rows["learned channels zeroed + the clip's envelope"] == "100.0%"
    # A decoder that follows the learned channel instead: the generated latent fails, the crossed one too.
    lines = diagnostics.halves_table(
        lambda z: [row[0].numpy() for row in z], classify, generated, real, families, learned=1
    )
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in lines if line.startswith("| ")}
    assert rows["generated latent"] == "0.0%"
    assert rows["generated learned channels + the clip's envelope"] == "0.0%"
    assert rows["... judged as the learned channels' family"] == "100.0%"
    assert rows["learned channels zeroed + the clip's envelope"] == "33.3%"  # all zero: family "a" only
    learned_std = next(line for line in lines if line.startswith("| learned |")).split("|")[2:4]
    expected = [float(real[:, 0].std()), float(generated[:, 0].std())]
    assert [float(v) for v in learned_std] == pytest.approx(expected, abs=1e-3)  # printed to 3 decimals


class _ImagePrior:
    """encode = identity; decode adds ``image`` x the input shifted to ``shift_hz`` lower (a leak)."""

    sample_rate = SR

    def __init__(self, image: float) -> None:
        self.image = image

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        t = torch.arange(z.shape[-1]) / SR
        return z + self.image * z.abs().amax(dim=-1, keepdim=True) * torch.sin(2 * math.pi * 37.0 * t)


def test_tones_report_a_clean_tone_and_a_leaky_one() -> None:
    clean = diagnostics.tones(_ImagePrior(0.0))
    leaky = diagnostics.tones(_ImagePrior(1.0))

    def column(lines: list[str], i: int) -> list[float]:
        rows = [line for line in lines if re.match(r"\| \d", line)]
        assert len(rows) == len(diagnostics.TONE_HZ)
        return [float(r.strip("|").split("|")[i]) for r in rows]

    assert all(v > 40 for v in column(clean, 2))  # the identity keeps every tone pure
    assert column(clean, 3) == pytest.approx(list(diagnostics.TONE_HZ), abs=1.0)
    assert all(abs(v) < 1.5 for v in column(leaky, 2))  # as much leak as tone: ~0 dB
    assert all(abs(v) < 0.01 for v in column(clean, 1))  # identity "latents": equal RMS
    ratio, peak = diagnostics.tone_purity(np.sin(2 * np.pi * 1000 * np.arange(SR) / SR), SR, 1000.0)
    assert ratio > 40 and abs(peak - 1000) < 1.0


def test_postfilter_table_scores_every_decoding_of_every_latent_set() -> None:
    """Two latent sets decoded two ways; the stand-in decoders make the judge right on known rows."""
    families = ["a", "b", "a", "b"]
    latents = {"real": torch.tensor([0.0, 1.0, 0.0, 1.0]), "generated": torch.tensor([0.0, 0.0, 0.0, 0.0])}

    def classify(audio: list[np.ndarray]) -> list[str]:
        return ["a" if float(a) < 0.5 else "b" for a in audio]

    decoders = {
        "plain": lambda z: [np.array(float(v)) for v in z],
        "flipped": lambda z: [np.array(1.0 - float(v)) for v in z],
    }
    lines = diagnostics.postfilter_table(decoders, classify, latents, families)
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:4]] for line in lines[3:]}
    assert lines[1] == "| latents | plain | flipped |"
    assert rows == {"real": ["100.0%", "0.0%"], "generated": ["50.0%", "50.0%"]}
