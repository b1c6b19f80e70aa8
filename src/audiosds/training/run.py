"""Run-directory plumbing shared by the training scripts: logging, seeds, checkpoints, export.

A run directory holds ``log.txt`` (appended, also echoed to stdout), ``checkpoint.pt``
(model, EMA, optimizer and step; written atomically, read back with
``torch.load(weights_only=True)``) and, at the end, ``export/`` with ``<name>.safetensors``
(the EMA weights) and ``<name>.json`` (the network's Config), which is what the embedded
prior loads.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

CHECKPOINT = "checkpoint.pt"
EXPORT_DIR = "export"


def step_seed(seed: int, step: int, stream: int = 0) -> int:
    """A 63-bit seed for (run seed, step, stream), independent across all three (numpy SeedSequence)."""
    state = np.random.SeedSequence([seed, step, stream]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """A torch CPU generator for one training step: resuming at ``step`` replays the same draws."""
    return torch.Generator().manual_seed(step_seed(seed, step, stream))


class RunLog:
    """Appends timestamped lines to ``DIR/log.txt`` and echoes them to stdout."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / "log.txt"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.start = time.monotonic()

    def __call__(self, message: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{time.monotonic() - self.start:8.1f}s] {message}"
        print(line, flush=True)
        with self.path.open("a") as f:
            f.write(line + "\n")


def cosine_lr(step: int, total: int, peak: float, warmup: int, final_fraction: float) -> float:
    """Linear warmup to ``peak`` over ``warmup`` steps, then cosine decay to ``final_fraction * peak``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


class EMA:
    """Exponential moving average of a module's parameters and buffers (the exported weights).

    Args:
        model: the module being trained.
        decay: per-step decay; the effective decay is min(decay, (1 + step) / (10 + step)) so
            early averages are not dominated by the random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for ema, cur in zip(self.model.state_dict().values(), model.state_dict().values(), strict=True):
            if ema.is_floating_point():
                ema.lerp_(cur, 1 - d)
            else:
                ema.copy_(cur)


def save_checkpoint(directory: Path, state: dict[str, object]) -> None:
    """Write ``DIR/checkpoint.pt`` atomically (temp file + rename)."""
    path = Path(directory) / CHECKPOINT
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(directory: Path) -> dict[str, object] | None:
    """The checkpoint in ``DIR`` (tensors and plain containers only), or None."""
    path = Path(directory) / CHECKPOINT
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


EXPORT_DTYPES = {"float32": torch.float32, "float16": torch.float16}


def export_weights(
    model: nn.Module, config: dict[str, object], directory: Path, name: str, dtype: str = "float32"
) -> Path:
    """Write ``DIR/<name>.safetensors`` (the state dict, parameters stored as ``dtype``) and
    ``DIR/<name>.json`` (its Config). float16 halves the shipped size; loading casts back to float32."""
    from safetensors.torch import save_file

    if dtype not in EXPORT_DTYPES:
        raise ValueError(f"dtype: expected one of {sorted(EXPORT_DTYPES)}, got {dtype!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    params = {name for name, _ in model.named_parameters()}
    tensors = {  # parameters as dtype; buffers (e.g. fixed Fourier frequencies) keep their precision
        k: (v.detach().to(EXPORT_DTYPES[dtype]) if k in params else v.detach()).contiguous().clone()
        for k, v in model.state_dict().items()
    }
    path = directory / f"{name}.safetensors"
    save_file(tensors, str(path), metadata={"format": "pt"})  # one key: safetensors orders metadata at random
    path.chmod(0o644)  # shipped files must be readable by every user of an installed package
    (directory / f"{name}.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return path


class Budget:
    """Wall-clock budget: ``expired()`` after ``minutes`` (None: never)."""

    def __init__(self, minutes: float | None) -> None:
        self.deadline = None if minutes is None else time.monotonic() + 60.0 * minutes

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


def batched(items: list[int], size: int) -> Iterator[list[int]]:
    """Consecutive chunks of ``size`` items (the last may be shorter)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "CHECKPOINT",
    "EXPORT_DIR",
    "EMA",
    "Budget",
    "RunLog",
    "batched",
    "cosine_lr",
    "export_weights",
    "load_checkpoint",
    "parameter_count",
    "save_checkpoint",
    "step_generator",
    "step_seed",
]
