"""N-operator FM/PM synthesizer (Audio-SDS arXiv 2505.04621 eq. 8).

Eq. 8 is ``y_i[n] = env_i[n] * sin(2 pi f_i n / sr + sum_j M_ij y_j[n-1])`` and the output is
``sum_i out_i * y_i[n]``. A full matrix M makes every sample depend on the previous one, a
per-sample recursion that is far too slow in PyTorch. This renderer restricts M to be strictly
upper triangular: operator i is phase-modulated only by operators j > i (a DX7-style stack with
every downward connection present, operator 0 the carrier). Then operator N-1 has no modulator,
and each operator i is one vectorised pass over time once every y_j, j > i, is known; the
one-sample delay ``y_j[n-1]`` is a shift by one sample (``y_j[-1] = 0``). Self-feedback
(the diagonal M_ii) and upward connections (j < i) are omitted: both would reintroduce the
sequential recursion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import ParamRange, Renderer, fade_out

LN_1000 = math.log(1000.0)  # a T60 decay: exp(-LN_1000 * t / T60) is -60 dB at t = T60
ATTACK_RATE = 3.0  # attack factor 1 - exp(-3 t / attack_s) reaches 95 % at t = attack_s
GAIN_DB = ParamRange(-80.0, 0.0, "dB")
CARRIER_GAIN_DB = -10.0  # initial gain of operator 0; the output is peak-normalised anyway
MODULATOR_GAIN_DB = -60.0  # initial gain of every other operator: 50 dB under the carrier
PEAK_EPS = 1e-6  # floor of the peak in the normaliser: a near-silent render stays near silent


@dataclass(frozen=True)
class FMConfig:
    """Configuration of :class:`FMSynth`.

    Frequencies are ``f_i = f0_hz * ratio_i``, clamped to ``max_freq_fraction * sample_rate``.
    """

    sample_rate: int = 16000
    seconds: float = 1.0
    batch_size: int = 1  # B independent parameter sets rendered at once
    seed: int = 0  # the initial raw parameters are drawn from torch.Generator(seed)
    num_operators: int = 4
    f0_min_hz: float = 30.0
    f0_max_hz: float = 2000.0
    ratio_min: float = 0.25  # must be < 1 < ratio_max: the carrier starts at ratio 1 (at f0)
    ratio_max: float = 16.0
    mod_index_min: float = 1e-3  # modulation indices M_ij in radians, on a log curve
    mod_index_max: float = 8.0
    attack_min_s: float = 1e-3
    attack_max_s: float = 0.5
    decay_min_s: float = 0.01  # decays are T60 times (seconds to fall by 60 dB)
    decay_max_s: float = 4.0
    max_freq_fraction: float = 0.45  # operators are clamped below Nyquist (fraction 0.5 of sr)
    peak: float = 0.5  # the output is divided by its peak (differentiably) and scaled to this
    fade_out_s: float = 0.01  # half-cosine fade at the clip's end (no click where a tone is cut); 0: none

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"FMConfig.sample_rate: expected > 0, got {self.sample_rate}")
        if self.seconds <= 0 or round(self.sample_rate * self.seconds) < 2:
            raise ValueError(f"FMConfig.seconds: expected at least 2 samples, got {self.seconds} s")
        if self.batch_size < 1:
            raise ValueError(f"FMConfig.batch_size: expected >= 1, got {self.batch_size}")
        if self.num_operators < 1:
            raise ValueError(f"FMConfig.num_operators: expected >= 1, got {self.num_operators}")
        if not self.ratio_min < 1.0 < self.ratio_max:
            raise ValueError(
                "FMConfig ratio range: expected ratio_min < 1 < ratio_max, "
                f"got {self.ratio_min}..{self.ratio_max}"
            )
        if not 0.0 < self.max_freq_fraction < 0.5:
            raise ValueError(
                f"FMConfig.max_freq_fraction: expected in (0, 0.5), got {self.max_freq_fraction}"
            )
        if self.peak <= 0:
            raise ValueError(f"FMConfig.peak: expected > 0, got {self.peak}")
        if not 0 <= self.fade_out_s <= self.seconds:
            raise ValueError(f"FMConfig.fade_out_s: expected in [0, seconds], got {self.fade_out_s}")

    @property
    def num_samples(self) -> int:
        return round(self.sample_rate * self.seconds)


def uniform_raw(gen: torch.Generator, shape: tuple[int, ...], lo: float, hi: float) -> Tensor:
    """Raw values whose sigmoid is uniform in (lo, hi): a draw in a sub-interval of a range."""
    return torch.logit(lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=torch.float64)).float()


def phase_of(freq_hz: Tensor, t64: Tensor) -> Tensor:
    """Phase ``2 pi f t`` wrapped to [0, 2 pi), computed in float64.

    ``f * t`` reaches 10^4 cycles in a 1 s clip: in float32 the phase would lose about a
    milliradian per sample there, so the cycle count is formed in float64 and only its
    fractional part is returned, in ``freq_hz``'s dtype. Differentiable in ``freq_hz``.

    Shape:
        freq_hz (...,), t64 (N,) float64 -> (..., N)
    """
    cycles = freq_hz.to(torch.float64).unsqueeze(-1) * t64
    return (2 * math.pi * (cycles - torch.floor(cycles.detach()))).to(freq_hz.dtype)


def peak_normalise(y: Tensor, peak: float, eps: float = PEAK_EPS) -> Tensor:
    """``y * peak / (max |y| + eps)`` along the last axis; differentiable (through the argmax).

    Shape:
        y (..., N) -> (..., N)
    """
    return y * (peak / (y.abs().amax(dim=-1, keepdim=True) + eps))


class FMSynth(Renderer):
    """FM/PM synthesizer of Audio-SDS eq. 8 with a strictly upper-triangular modulation matrix.

    Parameters (raw tensors with leading dim B, each through a ParamRange; P = num_operators):
        ``f0_hz`` (B,): note frequency, log curve.
        ``ratio`` (B, P): frequency ratio of each operator, log curve; ``f_i = f0 * ratio_i``, clamped
            to ``max_freq_fraction * sample_rate`` (a clamped operator passes no gradient to f0/ratio).
        ``mod_index`` (B, P(P-1)/2): the nonzero entries M_ij (radians), log curve: the raw value
            is a log-index mapped into [min, max] and exponentiated. Entry p is the connection
            ``(i, j) = (torch.triu_indices(P, P, 1)[0][p], torch.triu_indices(P, P, 1)[1][p])``,
            operator j modulating operator i.
        ``attack_s`` (B, P): attack time; envelope factor ``1 - exp(-3 t / attack_s)`` (95 % at attack_s).
        ``decay_t60_s`` (B, P): T60 of the exponential decay ``exp(-ln(1000) t / decay_t60_s)``.
        ``gain_db`` (B, P): output row ``out_i`` in dB; initialised with operator 0 (the carrier)
            at -10 dB and the others at -60 dB, so only the carrier is audible.

    Level: the mix is divided by its own peak (plus 1e-6) and scaled to ``config.peak``, per
    batch row: the rendered peak is ``config.peak`` whatever the gains, and gains act as a mix.
    The last ``config.fade_out_s`` fade to silence (no click where a sustained tone is cut).

    Shape:
        forward() -> (B, 1, sample_rate * seconds), dtype of the parameters
    """

    def __init__(self, config: FMConfig) -> None:
        super().__init__()
        self.config = config
        self.sample_rate = config.sample_rate
        self.num_samples = config.num_samples
        n_ops, batch = config.num_operators, config.batch_size
        gen = torch.Generator().manual_seed(config.seed)

        ratio = ParamRange(config.ratio_min, config.ratio_max, "ratio", "log")
        gain_raw = torch.full((batch, n_ops), float(GAIN_DB.to_raw(MODULATOR_GAIN_DB)))
        gain_raw[:, 0] = GAIN_DB.to_raw(CARRIER_GAIN_DB)
        ratio_raw = uniform_raw(gen, (batch, n_ops), 0.3, 0.7)
        ratio_raw[:, 0] = ratio.to_raw(1.0)
        num_pairs = n_ops * (n_ops - 1) // 2
        self.add_param(
            "f0_hz",
            ParamRange(config.f0_min_hz, config.f0_max_hz, "Hz", "log"),
            uniform_raw(gen, (batch,), 0.3, 0.7),
        )
        self.add_param("ratio", ratio, ratio_raw)
        self.add_param(
            "mod_index",
            ParamRange(config.mod_index_min, config.mod_index_max, "rad", "log"),
            uniform_raw(gen, (batch, num_pairs), 0.2, 0.5),
        )
        self.add_param(
            "attack_s",
            ParamRange(config.attack_min_s, config.attack_max_s, "s", "log"),
            uniform_raw(gen, (batch, n_ops), 0.05, 0.3),
        )
        self.add_param(
            "decay_t60_s",
            ParamRange(config.decay_min_s, config.decay_max_s, "s", "log"),
            uniform_raw(gen, (batch, n_ops), 0.5, 0.9),
        )
        self.add_param("gain_db", GAIN_DB, gain_raw)

        pairs = torch.triu_indices(n_ops, n_ops, 1)
        # For operator i: indices p into mod_index and the modulating operators j of row i.
        self._rows = [
            ((pairs[0] == i).nonzero().flatten().tolist(), pairs[1][pairs[0] == i].tolist())
            for i in range(n_ops)
        ]

    def render(self, params: dict[str, Tensor]) -> Tensor:
        """Parameters in human units -> audio (B, 1, N); eq. 8 with operators from last to first."""
        cfg = self.config
        f0, ratio, mod = params["f0_hz"], params["ratio"], params["mod_index"]
        t64 = torch.arange(self.num_samples, dtype=torch.float64, device=f0.device) / cfg.sample_rate  # (N,)
        t = t64.to(f0.dtype)

        # 1. operator frequencies, clamped below Nyquist, and their carrier phases
        freq = torch.clamp(f0.unsqueeze(-1) * ratio, max=cfg.max_freq_fraction * cfg.sample_rate)  # (B, P)
        phase = phase_of(freq, t64)  # (B, P, N)

        # 2. envelopes: attack factor times T60 decay
        attack = 1 - torch.exp(-ATTACK_RATE * t / params["attack_s"].unsqueeze(-1))
        env = attack * torch.exp(-LN_1000 * t / params["decay_t60_s"].unsqueeze(-1))  # (B, P, N)

        # 3. the stack, last operator first; delayed[j] holds y_j[n-1]
        n_ops = cfg.num_operators
        ys: dict[int, Tensor] = {}
        delayed: dict[int, Tensor] = {}
        for i in range(n_ops - 1, -1, -1):
            arg = phase[:, i]  # (B, N)
            pair_idx, mods = self._rows[i]
            if mods:
                prev = torch.stack([delayed[j] for j in mods], dim=1)  # (B, J, N)
                arg = arg + (mod[:, pair_idx].unsqueeze(-1) * prev).sum(dim=1)
            ys[i] = env[:, i] * torch.sin(arg)
            delayed[i] = F.pad(ys[i][:, :-1], (1, 0))

        # 4. output row and peak normalisation
        out_gain = 10.0 ** (params["gain_db"] / 20.0)  # (B, P)
        y = (out_gain.unsqueeze(-1) * torch.stack([ys[i] for i in range(n_ops)], dim=1)).sum(dim=1)  # (B, N)
        return fade_out(peak_normalise(y, cfg.peak), cfg.sample_rate, cfg.fade_out_s).unsqueeze(1)
