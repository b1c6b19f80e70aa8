"""``--prior auto``: model_index.json's ``_class_name`` picks the backend, and every command runs on it.

Tiny random folders of each supported pipeline are built here; the commands run offline (the Hugging
Face hub is switched off) from the ``audiosds`` command line.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import soundfile as sf
import yaml

from audiosds.bench.audioldm2 import build_tiny_audioldm2
from audiosds.bench.sa3 import build_tiny_stable_audio_3
from audiosds.bench.sao import build_tiny_stable_audio
from audiosds.cli import main
from audiosds.priors import MODEL_FIELD, PIPELINE_PRIORS, PRIORS, build
from audiosds.priors.audioldm2 import AudioLDM2Prior
from audiosds.priors.stable_audio import ModelLoadError, StableAudioPrior
from audiosds.priors.stable_audio_3 import StableAudio3Prior

SECONDS = 0.25
# each tiny folder's audio format: (sample rate, channels)
FORMATS = {
    "StableAudioPipeline": (44100, 2),
    "StableAudio3Pipeline": (44100, 2),
    "AudioLDM2Pipeline": (16000, 1),
}
# the new backends run every command; Stable Audio Open (older, covered elsewhere) the synthesis ones here,
# its tiny separation alone taking ~5 s
NEW = ("StableAudio3Pipeline", "AudioLDM2Pipeline")


@pytest.fixture(scope="module", autouse=True)
def offline() -> Iterator[None]:
    """The hub switched off, and the network cut: any socket connection in this module fails."""

    def cut(*_args: object, **_kwargs: object) -> None:
        raise OSError("network cut by the test")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        mp.setattr(socket.socket, "connect", cut)
        mp.setattr(socket.socket, "connect_ex", cut)
        yield


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny folder per supported pipeline class."""
    root = tmp_path_factory.mktemp("pipelines")
    return {
        "StableAudioPipeline": build_tiny_stable_audio(root / "sao"),
        "StableAudio3Pipeline": build_tiny_stable_audio_3(root / "sa3"),
        "AudioLDM2Pipeline": build_tiny_audioldm2(root / "ldm2"),
    }


def _one_line(message: str) -> None:
    assert "\n" not in message and message.strip() == message


def test_every_pipeline_backend_is_registered_with_a_model_option() -> None:
    assert {"auto", *PIPELINE_PRIORS.values()} <= set(PRIORS)
    assert all(MODEL_FIELD[name] == "model" for name in ("auto", *PIPELINE_PRIORS.values()))


@pytest.mark.parametrize(
    ("pipeline", "prior_class"),
    [
        ("StableAudioPipeline", StableAudioPrior),
        ("StableAudio3Pipeline", StableAudio3Prior),
        ("AudioLDM2Pipeline", AudioLDM2Prior),
    ],
)
def test_auto_picks_the_backend_named_by_model_index(
    folders: dict[str, Path], pipeline: str, prior_class: type
) -> None:
    prior = build("auto", model=str(folders[pipeline]))
    assert type(prior) is prior_class
    assert prior.name == PIPELINE_PRIORS[pipeline]
    assert prior.is_frozen()


def test_an_id_in_the_hugging_face_cache_loads_offline(
    folders: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--model owner/name`` with the hub off: the snapshot in the user's cache is found and used."""
    repo, commit = tmp_path / "hub" / "models--someone--tiny-ldm2", "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(folders["AudioLDM2Pipeline"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    prior = build("auto", model="someone/tiny-ldm2")
    assert isinstance(prior, AudioLDM2Prior)
    with pytest.raises(ModelLoadError, match="'someone/other' is not a local folder"):
        build("auto", model="someone/other")


def test_an_unsupported_pipeline_is_one_line_naming_the_supported_ones(tmp_path: Path) -> None:
    folder = tmp_path / "musicldm"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "MusicLDMPipeline"}))
    with pytest.raises(ModelLoadError) as info:
        build("auto", model=str(folder))
    message = str(info.value)
    _one_line(message)
    assert "MusicLDMPipeline is not supported" in message
    for cls, name in PIPELINE_PRIORS.items():
        assert f"{cls} (--prior {name})" in message


def test_a_folder_that_is_no_pipeline_and_a_missing_model_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="has no model_index.json"):
        build("auto", model=str(tmp_path))
    with pytest.raises(ValueError, match="needs a model folder"):
        build("auto")
    with pytest.raises(ModelLoadError, match="is not a local folder") as info:
        build("auto", model="no-such-owner/no-such-model")
    _one_line(str(info.value))


def test_forcing_a_backend_on_another_pipelines_folder_says_which_it_is(folders: dict[str, Path]) -> None:
    with pytest.raises(ModelLoadError) as info:
        build("stable-audio-3", model=str(folders["StableAudioPipeline"]))
    _one_line(str(info.value))
    assert (
        "expected a StableAudio3Pipeline snapshot, got model_index.json _class_name 'StableAudioPipeline'"
        in str(info.value)
    )


def _cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("pipeline", FORMATS)
@pytest.mark.parametrize("command", ["fm", "impact"])
def test_synthesis_runs_on_auto(
    folders: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, pipeline: str
) -> None:
    model, (rate, _) = folders[pipeline], FORMATS[pipeline]
    out = tmp_path / "run"
    code, err = _cli(
        capsys, command, "--prior", "auto", "--model", model, "--prompt", "a bell", "--iters", "2",
        "--seconds", SECONDS, "--steps", "2", "--quiet", "-o", out,
    )  # fmt: skip
    assert code == 0, err
    info = sf.info(str(out / "audio.wav"))
    # the renderers are mono (duplicated to stereo for a stereo prior), at the prior's rate
    assert (info.samplerate, info.channels, info.frames) == (rate, 1, round(SECONDS * rate))
    audio, _ = sf.read(str(out / "audio.wav"))
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0
    assert yaml.safe_load((out / "config.yaml").read_text())["prior"] == {"name": "auto", "model": str(model)}


@pytest.mark.parametrize("pipeline", NEW)
def test_separate_runs_on_auto(
    folders: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], pipeline: str
) -> None:
    rate, channels = FORMATS[pipeline]
    t = np.arange(round(rate * SECONDS)) / rate
    tones = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 90 * t)
    mixture = np.stack([tones] * channels, axis=1)
    sf.write(str(tmp_path / "mix.wav"), mixture, rate)
    out = tmp_path / "sep"
    code, err = _cli(
        capsys, "separate", tmp_path / "mix.wav", "--prompt", "a bell", "--prompt", "rain", "--iters", "2",
        "--prior", "auto", "--model", folders[pipeline], "--quiet", "-o", out,
    )  # fmt: skip
    assert code == 0, err
    s1, _ = sf.read(str(out / "source_1.wav"))
    s2, _ = sf.read(str(out / "source_2.wav"))
    assert s1.shape == s2.shape and s1.size == mixture.size
    # the default (remasked) sources add up to the mixture
    np.testing.assert_allclose((s1 + s2).reshape(mixture.shape), mixture, atol=2e-3)


@pytest.mark.parametrize("pipeline", NEW)
def test_generate_runs_on_auto_and_repeats_itself(
    folders: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], pipeline: str
) -> None:
    paths = [tmp_path / "a.wav", tmp_path / "b.wav"]
    for path in paths:
        code, err = _cli(
            capsys, "generate", "--prior", "auto", "--model", folders[pipeline], "--prompt",
            "a bell", "--seconds", SECONDS, "--steps", "3", "--seed", "1", "--quiet", "-o", path,
        )  # fmt: skip
        assert code == 0, err
    info = sf.info(str(paths[0]))
    rate, channels = FORMATS[pipeline]
    assert (info.samplerate, info.channels, info.frames) == (rate, channels, round(SECONDS * rate))
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_an_unsupported_folder_on_the_command_line_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "flux"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    code, err = _cli(
        capsys, "fm", "--prior", "auto", "--model", folder, "--prompt", "a bell", "-o", tmp_path / "r"
    )
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1 and lines[0].startswith("audiosds: error:"), err
    assert "FluxPipeline is not supported" in lines[0] and "StableAudio3Pipeline" in lines[0]
