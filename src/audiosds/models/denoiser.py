"""The embedded prior's denoiser: a text-conditioned 1-D U-Net over latents in EDM form.

Karras et al. 2022 ("EDM") preconditioning, on the variance-exploding sigma axis every prior
shares (the denoiser D of Audio-SDS arXiv 2505.04621 eqs. 4-6):

    c_skip  = sigma_data^2 / (sigma^2 + sigma_data^2)
    c_out   = sigma * sigma_data / sqrt(sigma^2 + sigma_data^2)
    c_in    = 1 / sqrt(sigma^2 + sigma_data^2)
    c_noise = log(sigma) / 4
    x0_hat  = D(z_sigma, sigma, c) = c_skip z_sigma + c_out F(c_in z_sigma, c_noise, c)

Training (:func:`edm_loss`) draws log sigma ~ N(p_mean, p_std^2) and regresses F on the
effective target (z - c_skip z_sigma) / c_out, which is EDM's loss weight
lambda(sigma) = 1 / c_out^2 folded into the target. The text condition c is a frozen
all-MiniLM-L6-v2 sentence embedding (384-d); with probability ``cond_dropout`` a row's
condition is replaced by the learned null embedding, which is the unconditional branch of
classifier-free guidance at sampling time.

This module imports only torch: the Prior backend loads it at run time.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# c_noise uses log(max(sigma, SIGMA_FLOOR)) so sigma = 0 is allowed: there c_out = 0 and x0_hat = z_sigma.
SIGMA_FLOOR = 1e-6


@dataclass(frozen=True)
class DenoiserConfig:
    latent_channels: int = 16  # D, the latent channels (the mel prior: 80 mel bins)
    # 1: a 1-D U-Net over time with the D channels as features. 2: a 2-D U-Net over (D, T) as an image
    # with one input channel plus a bin-position channel, each level halving both axes (D must then be
    # a multiple of the stride), so a feature at one bin sees its neighbours' bins, and stationary
    # partials are tracked per bin.
    dims: int = 1
    # U-Net width per level; each level halves time: 250, 125, 62.5, 31.25 frames/s. Four narrow levels
    # cost 0.73 s/step (batch 16 x 2 s, 1 CPU thread) vs 1.20 s for three at (64, 128, 256), and see
    # further (rhythms, ticks).
    channels: tuple[int, ...] = (64, 96, 128, 192)
    blocks_per_level: int = 2  # residual blocks per level on the way down (one more on the way up)
    attention_levels: tuple[int, ...] = (3,)  # levels (0 = full rate) with self-attention after each block
    heads: int = 4  # attention heads
    kernel: int = 3  # conv kernel in the residual blocks
    groups: int = 8  # GroupNorm groups
    emb_dim: int = 256  # width of the sigma + text embedding that drives FiLM
    cond_dim: int = 384  # all-MiniLM-L6-v2 sentence embedding size
    cond_dropout: float = 0.1  # probability a training row uses the null embedding (for CFG)
    # Standardise the text embedding per dimension with the training captions' mean and std (buffers
    # set by the training script) before the condition MLP. MiniLM embeddings are unit vectors whose
    # captions share most of their direction: raw, the differences between families reach FiLM ~20x
    # weaker than the noise-level embedding, and the first denoiser ignored the text (held-out loss
    # with and without it within 3.5%).
    cond_standardize: bool = False
    sigma_data: float = 1.0  # std of the training latents; set by the training script and stored here
    sigma_min: float = 0.002  # EDM's sampling range
    sigma_max: float = 80.0
    p_mean: float = -1.2  # training log-sigma ~ N(p_mean, p_std^2)
    p_std: float = 1.2

    def __post_init__(self) -> None:
        for name in (
            "latent_channels",
            "blocks_per_level",
            "heads",
            "kernel",
            "groups",
            "emb_dim",
            "cond_dim",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"DenoiserConfig.{name}: expected a positive int, got {value!r}")
        object.__setattr__(self, "channels", tuple(self.channels))  # JSON gives lists
        object.__setattr__(self, "attention_levels", tuple(self.attention_levels))
        if not self.channels or any(c < 1 or c % self.groups for c in self.channels):
            raise ValueError(
                f"DenoiserConfig.channels: expected positive multiples of groups={self.groups}, "
                f"got {self.channels}"
            )
        if any(not 0 <= lv < len(self.channels) for lv in self.attention_levels):
            raise ValueError(
                f"DenoiserConfig.attention_levels: expected levels in [0, {len(self.channels)}), "
                f"got {self.attention_levels}"
            )
        if any(self.channels[lv] % self.heads for lv in self.attention_levels):
            raise ValueError(
                f"DenoiserConfig.heads: expected a divisor of every attention level's width, got {self.heads}"
            )
        if self.dims not in (1, 2):
            raise ValueError(f"DenoiserConfig.dims: expected 1 or 2, got {self.dims!r}")
        if self.dims == 2 and self.latent_channels % self.stride:
            raise ValueError(
                f"DenoiserConfig.latent_channels: a 2-D U-Net needs a multiple of its stride {self.stride}, "
                f"got {self.latent_channels}"
            )
        if self.kernel % 2 == 0:
            raise ValueError(f"DenoiserConfig.kernel: expected an odd int, got {self.kernel}")
        if not 0.0 <= self.cond_dropout < 1.0:
            raise ValueError(
                f"DenoiserConfig.cond_dropout: expected a value in [0, 1), got {self.cond_dropout}"
            )
        if not (
            self.sigma_data > 0 and self.sigma_min > 0 and self.sigma_max > self.sigma_min and self.p_std > 0
        ):
            raise ValueError(
                "DenoiserConfig: expected sigma_data > 0, 0 < sigma_min < sigma_max and p_std > 0, got "
                f"sigma_data={self.sigma_data}, sigma_min={self.sigma_min}, sigma_max={self.sigma_max}, "
                f"p_std={self.p_std}"
            )

    @property
    def stride(self) -> int:
        """Latent lengths are padded to a multiple of this inside the U-Net."""
        return 2 ** (len(self.channels) - 1)

    def to_dict(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> DenoiserConfig:
        """``DenoiserConfig(**d)`` with a ValueError naming unknown keys."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"DenoiserConfig: unknown keys {unknown}; expected a subset of {sorted(known)}")
        return cls(**d)


def edm_coefficients(sigma: Tensor, sigma_data: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """EDM preconditioning (Karras 2022, Table 1): c_skip, c_out, c_in, c_noise.

    Shape:
        sigma (B,) -> four (B,)
    """
    var = sigma.square() + sigma_data**2
    c_skip = sigma_data**2 / var
    c_out = sigma * sigma_data / var.sqrt()
    c_in = var.rsqrt()
    c_noise = sigma.clamp_min(SIGMA_FLOOR).log() / 4
    return c_skip, c_out, c_in, c_noise


class FourierFeatures(nn.Module):
    """Fixed random Fourier features of a scalar: [cos(2 pi w x), sin(2 pi w x)].

    Shape:
        (B,) -> (B, dim)
    """

    def __init__(self, dim: int, scale: float = 4.0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)  # a fixed basis, also stored in the weights
        self.register_buffer("freqs", torch.randn(dim // 2, generator=g) * scale)

    def forward(self, x: Tensor) -> Tensor:
        angle = 2 * math.pi * x[:, None] * self.freqs[None, :]
        return torch.cat([angle.cos(), angle.sin()], dim=1)


def _conv(dims: int) -> type[nn.Module]:
    return nn.Conv1d if dims == 1 else nn.Conv2d


class ResBlock(nn.Module):
    """GroupNorm -> SiLU -> conv -> FiLM(emb) -> SiLU -> conv, plus a (1x1) skip.

    Shape:
        x (B, C_in, *S), emb (B, E) -> (B, C_out, *S), S = (T,) or (D, T) for ``dims`` 1 or 2
    """

    def __init__(self, c_in: int, c_out: int, emb_dim: int, kernel: int, groups: int, dims: int = 1) -> None:
        super().__init__()
        conv = _conv(dims)
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = conv(c_in, c_out, kernel, padding=kernel // 2)
        self.film = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = conv(c_out, c_out, kernel, padding=kernel // 2)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = conv(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        film = self.film(emb).reshape(*emb.shape[:1], -1, *(1,) * (x.ndim - 2))
        scale, shift = film.chunk(2, dim=1)  # (B, C_out, 1[, 1]) each
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class SelfAttention(nn.Module):
    """Multi-head self-attention over all positions (time, or bins x time) with a residual
    connection (zero-initialised output).

    Shape:
        (B, C, *S) -> (B, C, *S)
    """

    def __init__(self, channels: int, heads: int, groups: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj = nn.Conv1d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        batch, channels = shape[:2]
        flat = x.reshape(batch, channels, -1)  # (B, C, N) with N positions
        qkv = self.qkv(self.norm(flat)).reshape(batch, 3, self.heads, channels // self.heads, -1)
        q, k, v = qkv.transpose(-1, -2).unbind(dim=1)  # (B, H, N, C/H) each
        h = F.scaled_dot_product_attention(q, k, v)  # (B, H, N, C/H)
        return x + self.proj(h.transpose(-1, -2).reshape(batch, channels, -1)).reshape(shape)


class UNet(nn.Module):
    """F(c_in z_sigma, c_noise, c): the raw network inside the EDM wrapper, 1-D over time or 2-D over
    (D, T) (``cfg.dims``).

    Shape:
        x (B, D, T) with T a multiple of ``cfg.stride``, c_noise (B,), cond (B, cond_dim) -> (B, D, T)
    """

    def __init__(self, cfg: DenoiserConfig) -> None:
        super().__init__()
        e, k, g = cfg.emb_dim, cfg.kernel, cfg.groups
        self.noise_features = FourierFeatures(e)
        self.noise_mlp = nn.Sequential(nn.Linear(e, e), nn.SiLU(), nn.Linear(e, e))
        self.cond_mlp = nn.Sequential(nn.Linear(cfg.cond_dim, e), nn.SiLU(), nn.Linear(e, e))
        self.cond_standardize = cfg.cond_standardize
        if cfg.cond_standardize:  # identity until set_cond_statistics; stored with the weights
            self.register_buffer("cond_mean", torch.zeros(cfg.cond_dim))
            self.register_buffer("cond_std", torch.ones(cfg.cond_dim))
        self.dims = dims = cfg.dims
        conv = _conv(dims)
        if dims == 1:
            self.inp = conv(cfg.latent_channels, cfg.channels[0], k, padding=k // 2)
        else:  # the value plus the bin's position in [-1, 1]: a 2-D conv alone cannot tell bass from treble
            self.register_buffer(
                "bin_position", torch.linspace(-1.0, 1.0, cfg.latent_channels), persistent=False
            )
            self.inp = conv(2, cfg.channels[0], k, padding=k // 2)
        levels = len(cfg.channels)
        self.down_blocks = nn.ModuleList()
        self.down_attn = nn.ModuleList()
        self.downsamplers = nn.ModuleList()
        skips = [cfg.channels[0]]
        c_prev = cfg.channels[0]
        for level, c in enumerate(cfg.channels):
            for _ in range(cfg.blocks_per_level):
                self.down_blocks.append(ResBlock(c_prev, c, e, k, g, dims))
                self.down_attn.append(
                    SelfAttention(c, cfg.heads, g) if level in cfg.attention_levels else nn.Identity()
                )
                c_prev = c
                skips.append(c)
            if level < levels - 1:
                self.downsamplers.append(conv(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid1 = ResBlock(c_prev, c_prev, e, k, g, dims)
        self.mid_attn = SelfAttention(c_prev, cfg.heads, g)
        self.mid2 = ResBlock(c_prev, c_prev, e, k, g, dims)
        self.up_blocks = nn.ModuleList()
        self.up_attn = nn.ModuleList()
        self.upsamplers = nn.ModuleList()
        for level in reversed(range(levels)):
            c = cfg.channels[level]
            for _ in range(cfg.blocks_per_level + 1):
                self.up_blocks.append(ResBlock(c_prev + skips.pop(), c, e, k, g, dims))
                self.up_attn.append(
                    SelfAttention(c, cfg.heads, g) if level in cfg.attention_levels else nn.Identity()
                )
                c_prev = c
            if level > 0:
                self.upsamplers.append(conv(c, c, 3, padding=1))
        self.out_norm = nn.GroupNorm(g, c_prev)
        self.out = conv(c_prev, cfg.latent_channels if dims == 1 else 1, k, padding=k // 2)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.blocks_per_level = cfg.blocks_per_level
        self.levels = levels

    def set_cond_statistics(self, embeddings: Tensor) -> None:
        """Store the per-dimension mean and std of ``embeddings`` (the training captions', (U, cond_dim))."""
        if not self.cond_standardize:
            raise ValueError("set_cond_statistics: this denoiser was built with cond_standardize=False")
        self.cond_mean.copy_(embeddings.mean(dim=0))
        self.cond_std.copy_(embeddings.std(dim=0).clamp_min(1e-4))

    def forward(self, x: Tensor, c_noise: Tensor, cond: Tensor) -> Tensor:
        if self.cond_standardize:
            cond = (cond - self.cond_mean) / self.cond_std
        emb = F.silu(self.noise_mlp(self.noise_features(c_noise)) + self.cond_mlp(cond))  # (B, E)
        if self.dims == 2:
            position = self.bin_position.to(x.dtype)[None, None, :, None].expand(
                x.shape[0], 1, -1, x.shape[-1]
            )
            x = torch.cat([x[:, None], position], dim=1)  # (B, 2, D, T)
        h = self.inp(x)
        skips = [h]
        blocks = iter(zip(self.down_blocks, self.down_attn, strict=True))
        for level in range(self.levels):
            for _ in range(self.blocks_per_level):
                block, attn = next(blocks)
                h = attn(block(h, emb))
                skips.append(h)
            if level < self.levels - 1:
                h = self.downsamplers[level](h)
                skips.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        blocks = iter(zip(self.up_blocks, self.up_attn, strict=True))
        for i, level in enumerate(reversed(range(self.levels))):
            for _ in range(self.blocks_per_level + 1):
                block, attn = next(blocks)
                h = attn(block(torch.cat([h, skips.pop()], dim=1), emb))
            if level > 0:
                h = self.upsamplers[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        out = self.out(F.silu(self.out_norm(h)))
        return out if self.dims == 1 else out[:, 0]


class EDMDenoiser(nn.Module):
    """x0_hat = c_skip z_sigma + c_out F(c_in z_sigma, c_noise, c) (EDM preconditioning, see module doc).

    Args:
        config: architecture and EDM constants (``sigma_data`` measured on the training latents).
    """

    def __init__(self, config: DenoiserConfig | None = None) -> None:
        super().__init__()
        self.config = config = DenoiserConfig() if config is None else config
        self.net = UNet(config)
        # The unconditional (CFG) condition: trained on the dropped-out rows.
        self.null_cond = nn.Parameter(torch.zeros(config.cond_dim))

    def null_embedding(self, batch: int = 1) -> Tensor:
        """The null condition, repeated.

        Shape:
            -> (batch, cond_dim)
        """
        return self.null_cond[None, :].expand(batch, -1)

    def raw(self, z_in: Tensor, c_noise: Tensor, cond: Tensor) -> Tensor:
        """F on any length: zero-pads T to a multiple of ``config.stride`` and crops back.

        Shape:
            z_in (B, D, T), c_noise (B,), cond (B, cond_dim) -> (B, D, T)
        """
        frames = z_in.shape[-1]
        pad = -frames % self.config.stride
        return self.net(F.pad(z_in, (0, pad)), c_noise, cond)[..., :frames]

    def forward(self, z_sigma: Tensor, sigma: Tensor, cond: Tensor) -> Tensor:
        """The preconditioned denoiser D(z_sigma, sigma, cond).

        Args:
            z_sigma: noisy latents.
            sigma: noise level per row (>= 0; 0 returns z_sigma exactly).
            cond: sentence embeddings (or the null embedding) per row.

        Shape:
            z_sigma (B, D, T), sigma (B,), cond (B, cond_dim) -> x0_hat (B, D, T)
        """
        cfg = self.config
        if z_sigma.ndim != 3 or z_sigma.shape[1] != cfg.latent_channels:
            raise ValueError(f"z_sigma: expected (B, {cfg.latent_channels}, T), got {tuple(z_sigma.shape)}")
        batch = z_sigma.shape[0]
        if sigma.shape != (batch,):
            raise ValueError(f"sigma: expected shape ({batch},), got {tuple(sigma.shape)}")
        if cond.shape != (batch, cfg.cond_dim):
            raise ValueError(f"cond: expected shape ({batch}, {cfg.cond_dim}), got {tuple(cond.shape)}")
        sigma = sigma.to(z_sigma.dtype)
        c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, cfg.sigma_data)
        f = self.raw(c_in[:, None, None] * z_sigma, c_noise, cond.to(z_sigma.dtype))
        return c_skip[:, None, None] * z_sigma + c_out[:, None, None] * f


def edm_loss(
    model: EDMDenoiser,
    z: Tensor,
    cond: Tensor,
    generator: torch.Generator | None = None,
    compute_dtype: torch.dtype | None = None,
) -> Tensor:
    """EDM training loss, mean over elements of (F - (z - c_skip z_sigma) / c_out)^2.

    Draws log sigma ~ N(p_mean, p_std^2), eps ~ N(0, I) and the condition-dropout mask from
    ``generator`` (in that order), so a seeded generator gives identical losses.

    Args:
        model: the denoiser being trained.
        z: clean latents.
        cond: sentence embeddings; dropped rows are replaced by the null embedding.
        generator: the source of all randomness.
        compute_dtype: ``torch.bfloat16`` runs the network under autocast (mixed precision: the
            weights, the noise, the target and the loss stay float32); None: all float32.

    Shape:
        z (B, D, T), cond (B, cond_dim) -> ()
    """
    cfg = model.config
    batch = z.shape[0]
    opts = {"generator": generator, "device": z.device}
    sigma = (torch.randn(batch, **opts) * cfg.p_std + cfg.p_mean).exp().to(z.dtype)  # (B,)
    eps = torch.randn(z.shape, dtype=z.dtype, **opts)
    drop = torch.rand(batch, **opts) < cfg.cond_dropout  # (B,)
    cond = torch.where(drop[:, None], model.null_embedding(batch).to(cond.dtype), cond)
    z_sigma = z + sigma[:, None, None] * eps
    c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, cfg.sigma_data)
    with torch.autocast(z.device.type, dtype=compute_dtype or z.dtype, enabled=compute_dtype is not None):
        f = model.raw(c_in[:, None, None] * z_sigma, c_noise, cond)
    f = f.to(z.dtype)
    target = (z - c_skip[:, None, None] * z_sigma) / c_out[:, None, None]
    return (f - target).square().mean()


__all__ = [
    "DenoiserConfig",
    "EDMDenoiser",
    "UNet",
    "ResBlock",
    "SelfAttention",
    "FourierFeatures",
    "edm_coefficients",
    "edm_loss",
    "SIGMA_FLOOR",
]
