"""Score Distillation Sampling updates for audio, as pure functions (Audio-SDS arXiv 2505.04621).

Notation:
    x         rendered audio in the prior's format, (R, C, N); R renders, requires grad
    n         independent noise draws per render (``num_draws``); rows are prompt-major, R*n
    z         clean latent encode(x), (R, D, T); repeated to (R*n, D, T) over the draws
    t         the backend's own time in [t_min, t_max], sigma = prior.sigma_of_t(t)
    sigma     noise level per row, (R*n,)
    eps       standard Gaussian noise, (R*n, D, T)
    z_sigma   z + sigma * eps
    x0_hat    K-step deterministic guided denoise of z_sigma to sigma = 0, (R*n, D, T)
    x_hat     decode(x0_hat) cropped to N samples, (R*n, C, N)
    eps_hat   (z_sigma - x0_hat) / sigma, the implied noise prediction
    w         weight w(sigma) per row
    g         the update: d loss / d y = g for y in the space the residual lives in

Updates (averaged over the n draws of each render, never over renders):
    "latent"    classic SDS, eq. 4:   g = w * (eps_hat - eps) = w * (z - x0_hat) / sigma  on y = z,
                                      backpropagated through the encoder
    "decoder"   Decoder-SDS, eqs. 5-6: g = w * (x - x_hat)                              on y = x
    "spectral"  eq. 7:                g_s = w * (|STFT_s x| - |STFT_s x_hat|) / S        on y = |STFT_s x|
                                      for each of the S window sizes s

Residual reference (decoder and spectral modes): the paper compares x_hat with the render x itself
("render"). With ``reference="reconstruction"`` the residual is taken against decode(z) instead, the
render as the autoencoder reproduces it: g = w * (decode(z) - x_hat), and likewise per STFT scale.
With a perfect autoencoder the two agree; with a real one, "render" also pushes x toward the
autoencoder's own errors (a decoder that loses the top octave makes every render duller), while
"reconstruction" keeps only what the denoiser changed. It costs one extra decode per render.

"decode" is the prior's :meth:`~audiosds.priors.base.Prior.decode_generated`, the decoding it uses for
latents the denoiser produced (its decoder unless the backend overrides it), for x_hat and decode(z)
alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .config import is_int, is_number
from .priors.base import Conditioning, Prior
from .sampling import METHODS, denoise_from
from .spectral import stft_magnitudes

MODES = ("decoder", "spectral", "latent")
REFERENCES = ("render", "reconstruction")
ANNEALS = ("none", "linear", "sqrt")
WEIGHTINGS = ("uniform", "sigma")
MAX_CFG_SCALE = 100.0  # DreamFusion's value; audio already buzzes far below it


@dataclass(frozen=True)
class SDSConfig:
    mode: str = "decoder"  # "decoder" (eqs. 5-6), "spectral" (eq. 7) or "latent" (eq. 4)
    cfg_scale: float = 3.0  # much lower than DreamFusion's 100: high CFG gives buzz and clicks in audio
    t_min: float = 0.02  # in the backend's own time, mapped through prior.sigma_of_t
    t_max: float = 0.98
    anneal: str = "none"  # t_max shrinks toward t_min as progress goes 0 -> 1: "linear" or "sqrt"
    num_steps: int = 1  # K deterministic denoise steps from sigma to 0 (paper: 2-10 helps)
    sampler: str = "ddim"  # method for K > 1, see sampling.METHODS
    num_draws: int = 1  # independent (sigma, eps) draws per render per iteration
    weighting: str = "uniform"  # w = 1, or "sigma": w = sigma^2 / (sigma^2 + sigma_data^2)
    stft_windows: tuple[int, ...] = (256, 512, 1024, 2048)  # spectral mode only
    sigma_floor: float | None = None  # lowest nonzero level of the K-step schedule; None: prior.sigma_min
    reference: str = "render"  # decoder/spectral residual against x ("render") or decode(z), see above

    def __post_init__(self) -> None:
        def bad(name: str, expected: str) -> ValueError:
            return ValueError(f"SDSConfig.{name}: expected {expected}, got {getattr(self, name)!r}")

        if self.mode not in MODES:
            raise bad("mode", f"one of {MODES}")
        if not is_number(self.cfg_scale) or not 0 <= self.cfg_scale <= MAX_CFG_SCALE:
            raise bad("cfg_scale", f"a number in [0, {MAX_CFG_SCALE:g}]")
        if not is_number(self.t_min) or not 0 <= self.t_min <= 1:
            raise bad("t_min", "a number in [0, 1]")
        if not is_number(self.t_max) or not self.t_min <= self.t_max <= 1:
            raise bad("t_max", f"a number in [t_min={self.t_min}, 1]")
        if self.anneal not in ANNEALS:
            raise bad("anneal", f"one of {ANNEALS}")
        if not is_int(self.num_steps) or self.num_steps < 1:
            raise bad("num_steps", "an int >= 1")
        if self.sampler not in METHODS:
            raise bad("sampler", f"one of {METHODS}")
        if not is_int(self.num_draws) or self.num_draws < 1:
            raise bad("num_draws", "an int >= 1")
        if self.weighting not in WEIGHTINGS:
            raise bad("weighting", f"one of {WEIGHTINGS}")
        if isinstance(self.stft_windows, list):
            object.__setattr__(self, "stft_windows", tuple(self.stft_windows))
        windows = self.stft_windows
        if not isinstance(windows, tuple) or not windows or not all(is_int(s) and s >= 2 for s in windows):
            raise bad("stft_windows", "a non-empty tuple of ints >= 2")
        if self.sigma_floor is not None and (not is_number(self.sigma_floor) or self.sigma_floor <= 0):
            raise bad("sigma_floor", "None or a number > 0")
        if self.reference not in REFERENCES:
            raise bad("reference", f"one of {REFERENCES}")


def _check_progress(progress: float) -> None:
    if not is_number(progress) or not 0 <= progress <= 1:
        raise ValueError(f"progress: expected a number in [0, 1], got {progress!r}")


def annealed_t_max(config: SDSConfig, progress: float) -> float:
    """Upper end of the time range at ``progress`` in [0, 1]: t_max for "none", shrinking to
    t_min as t_min + (t_max - t_min) * (1 - progress) ("linear") or * (1 - sqrt(progress))
    ("sqrt": fast early, slow late)."""
    _check_progress(progress)
    shrink = {"none": 1.0, "linear": 1.0 - progress, "sqrt": 1.0 - math.sqrt(progress)}[config.anneal]
    return config.t_min + (config.t_max - config.t_min) * shrink


def sample_sigma(
    prior: Prior, n: int, config: SDSConfig, progress: float, generator: torch.Generator | None
) -> Tensor:
    """t ~ U[t_min, annealed t_max] in the backend's time, mapped through ``prior.sigma_of_t``.

    Draws n uniforms from ``generator`` (on its device; the global RNG when None).

    Shape:
        -> (n,) on ``prior.device``, default dtype
    """
    if not is_int(n) or n < 1:
        raise ValueError(f"n: expected an int >= 1, got {n!r}")
    t_hi = annealed_t_max(config, progress)
    device = generator.device if generator is not None else prior.device
    u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)
    t = config.t_min + u * (t_hi - config.t_min)
    return prior.sigma_of_t(t).to(device=prior.device, dtype=torch.get_default_dtype())


def sds_weight(sigma: Tensor, scheme: str, sigma_data: float) -> Tensor:
    """SDS weight w(sigma) per row.

    "uniform": w = 1. "sigma": w = sigma^2 / (sigma^2 + sigma_data^2), DreamFusion's
    w(t) = 1 - alpha_bar_t = sigma_t^2 (VP) written on the VE axis with data scale
    sigma_data; it rises from 0 to 1 with sigma, damping the low-noise draws whose
    eps-residual is mostly noise.

    Shape:
        sigma (n,) -> (n,)
    """
    if scheme not in WEIGHTINGS:
        raise ValueError(f"scheme: expected one of {WEIGHTINGS}, got {scheme!r}")
    if not sigma_data > 0:
        raise ValueError(f"sigma_data: expected > 0, got {sigma_data}")
    if scheme == "uniform":
        return torch.ones_like(sigma)
    s2 = sigma.square()
    return s2 / (s2 + sigma_data**2)


def surrogate_loss(y: Tensor, g: Tensor) -> Tensor:
    """0.5 * ||y - sg(y - g)||^2, summed (not averaged) over every element.

    Its gradient with respect to y is exactly g: d/dy 0.5 (y - c)^2 = y - c = y - (y - g) = g,
    with c = (y - g).detach() held constant. Its value is 0.5 * ||g||^2.
    """
    if y.shape != g.shape:
        raise ValueError(f"g: expected y's shape {tuple(y.shape)}, got {tuple(g.shape)}")
    return 0.5 * (y - (y - g).detach()).square().sum()


@dataclass
class SDSStep:
    """One SDS iteration's result.

    Attributes:
        loss: scalar surrogate; ``loss.backward()`` applies the update to x's graph.
        update_norm: ||g|| (over all scales in spectral mode), for logs.
        sigma: noise level per row, (R*n,).
        weight: w(sigma) per row, (R*n,).
        x_hat: detached audio estimate per render for logs, (R, C, N): the mean over draws of
            decode(x0_hat) (decoder/spectral); None in latent mode, which never decodes (a decoder
            can cost more than the rest of the iteration: a vocoder for a mel prior).
        x0_hat: detached latent estimates, (R*n, D, T).
        update: the update g: [(R, C, N)] (decoder), [(R, D, T)] (latent, d loss / d z), or one
            (R, C, F_s, T_s) per window (spectral, d loss / d |STFT_s x|).
    """

    loss: Tensor
    update_norm: float
    sigma: Tensor
    weight: Tensor
    x_hat: Tensor | None
    x0_hat: Tensor
    update: list[Tensor]


def _draw_mean(values: Tensor, renders: int) -> Tensor:
    """(R*n, ...) prompt-major rows -> (R, ...) mean over each render's n draws."""
    return values.reshape(renders, -1, *values.shape[1:]).mean(dim=1)


def sds_step(
    prior: Prior,
    x: Tensor,
    cond: Conditioning,
    config: SDSConfig,
    progress: float = 0.0,
    generator: torch.Generator | None = None,
) -> SDSStep:
    """One SDS update on rendered audio: latent SDS (eq. 4), Decoder-SDS (eqs. 5-6) or
    spectral-emphasis SDS (eq. 7), selected by ``config.mode``.

    One encode of the R renders per call (never per draw); the prior's denoiser and decoder
    run under ``torch.no_grad()``; only latent mode differentiates the encoder, and it never
    decodes. Randomness, in this order: sigma (R*n,) via :func:`sample_sigma`, then eps (R*n, D, T),
    both from ``generator`` (the global RNG when None).

    Normalisation: each render's update is the mean over its n draws; renders are not
    averaged (each render gets its own full update); the surrogate is a sum, so
    d loss / d y = g exactly; spectral mode divides each scale's residual by the number of
    scales S. Audio past the decoder's output length gets no update.

    Args:
        prior: a frozen prior (no parameter requires grad).
        x: rendered audio in the prior's format, part of the graph to the renderer.
        cond: P = 1 or P = R prompts (prompt-major: render r uses prompt r).
        config: the update rule.
        progress: optimisation progress in [0, 1], for timestep annealing.
        generator: source of sigma and eps.

    Returns:
        The surrogate loss and logs, see :class:`SDSStep`.

    Shape:
        x (R, C, N) -> SDSStep
    """
    prior.check_audio(x, "x")
    _check_progress(progress)
    renders = x.shape[0]
    if cond.num_prompts not in (1, renders):
        raise ValueError(f"cond: expected 1 or {renders} prompts (one per render), got {cond.num_prompts}")
    if not prior.is_frozen():
        raise ValueError("prior: expected a frozen prior (see Prior.freeze), got parameters requiring grad")
    draws = config.num_draws
    rows = renders * draws

    # 1-2. one encode of the R renders, repeated prompt-major over the draws
    if config.mode == "latent":
        z = prior.encode(x)  # (R, D, T), differentiable through the encoder
    else:
        with torch.no_grad():
            z = prior.encode(x)
    z_rows = z.detach().repeat_interleave(draws, dim=0)  # (R*n, D, T)

    # 3. noise levels and noise
    sigma = sample_sigma(prior, rows, config, progress, generator).to(z.dtype)  # (R*n,)
    eps_device = generator.device if generator is not None else z.device
    eps = torch.randn(z_rows.shape, generator=generator, device=eps_device, dtype=z.dtype).to(z.device)
    weight = sds_weight(sigma, config.weighting, prior.sigma_data)  # (R*n,)

    with torch.no_grad():
        # 4. K-step deterministic guided denoise, no graph through the prior
        z_sigma = z_rows + sigma[:, None, None] * eps
        x0_hat = denoise_from(
            prior,
            z_sigma,
            sigma,
            cond,
            config.cfg_scale,
            config.num_steps,
            config.sampler,
            config.sigma_floor,
        )  # (R*n, D, T)
        # 5. decode only what the update needs (latent mode: nothing)
        if config.mode == "latent":
            x_hat = None
        else:
            x_hat_rows = _fit_length(
                prior.decode_generated(x0_hat), x.detach().repeat_interleave(draws, dim=0)
            )
            x_hat = _draw_mean(x_hat_rows, renders)  # (R, C, N)
            # what the residual is taken against: the render, or its own reconstruction
            # (decoded as x0_hat is, so the two differ only by what the denoiser changed)
            x_ref = (
                x.detach()
                if config.reference == "render"
                else _fit_length(prior.decode_generated(z), x.detach())
            )

    w = weight[:, None, None]
    # 6-7. residual g, and the surrogate whose gradient with respect to y is g
    if config.mode == "latent":
        g = _draw_mean(w * (z_rows - x0_hat) / sigma[:, None, None], renders)  # (R, D, T)
        updates = [g]
        loss = surrogate_loss(z, g)
    elif config.mode == "decoder":
        g = _draw_mean(w * (x_ref.repeat_interleave(draws, dim=0) - x_hat_rows), renders)  # (R, C, N)
        updates = [g]
        loss = surrogate_loss(x, g)
    else:
        mags = stft_magnitudes(x, config.stft_windows)  # [(R, C, F, T)], with grad
        with torch.no_grad():
            mags_hat = stft_magnitudes(x_hat_rows, config.stft_windows)  # [(R*n, C, F, T)]
            mags_ref = (
                [m.detach() for m in mags]
                if config.reference == "render"
                else stft_magnitudes(x_ref, config.stft_windows)
            )  # [(R, C, F, T)]
        scales = len(mags)
        updates = []
        for m_ref, m_hat in zip(mags_ref, mags_hat, strict=True):
            m_rows = m_ref.repeat_interleave(draws, dim=0)
            w4 = weight[:, None, None, None]
            updates.append(_draw_mean(w4 * (m_rows - m_hat), renders) / scales)  # (R, C, F, T)
        loss = sum((surrogate_loss(m, g) for m, g in zip(mags, updates, strict=True)), x.new_zeros(()))
    update_norm = math.sqrt(sum(float(g.square().sum()) for g in updates))
    return SDSStep(loss, update_norm, sigma.detach(), weight.detach(), x_hat, x0_hat, updates)


def _fit_length(decoded: Tensor, reference: Tensor) -> Tensor:
    """Crop decoded audio to the reference length; past the decoder's end, copy the reference
    so that the residual (and the update) is zero there.

    Shape:
        decoded (B, C, M), reference (B, C, N) -> (B, C, N)
    """
    n = reference.shape[-1]
    if decoded.shape[-1] >= n:
        return decoded[..., :n]
    return torch.cat([decoded, reference[..., decoded.shape[-1] :]], dim=-1)
