"""Run-directory plumbing shared by the training scripts: logging, seeds, checkpoints, export.

A run directory holds ``log.txt`` (appended, also echoed to stdout), ``checkpoint.pt``
(model, EMA, optimizer and step; written atomically, read back with
``torch.load(weights_only=True)``) and, at the end, ``export/`` with ``<name>.safetensors``
(the EMA weights) and ``<name>.json`` (the network's Config), which is what the embedded
prior loads.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

CHECKPOINT = "checkpoint.pt"
EXPORT_DIR = "export"


def step_seed(seed: int, step: int, stream: int = 0) -> int:
    """A 63-bit seed for (run seed, step, stream), independent across all three (numpy SeedSequence)."""
    state = np.random.SeedSequence([seed, step, stream]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """A torch CPU generator for one training step: resuming at ``step`` replays the same draws."""
    return torch.Generator().manual_seed(step_seed(seed, step, stream))


class _Elapsed(logging.Formatter):
    """``YYYY-MM-DD HH:MM:SS [   seconds since the run log opened] message``."""

    def __init__(self, start: float) -> None:
        super().__init__()
        self.start = start

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        return f"{stamp} [{time.monotonic() - self.start:8.1f}s] {record.getMessage()}"


class RunLog:
    """A training run's log: ``logging.getLogger("audiosds.training")`` writing timestamped lines to
    ``DIR/log.txt`` (appended) and to stdout. Calling it logs one line at INFO; the training code
    passes it around as a plain ``log(message)`` callable."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / "log.txt"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.logger = logging.getLogger("audiosds.training")
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False
        for handler in list(self.logger.handlers):  # one run log at a time in a process
            self.logger.removeHandler(handler)
            handler.close()
        formatter = _Elapsed(time.monotonic())
        for handler in (logging.FileHandler(self.path), logging.StreamHandler(sys.stdout)):
            handler.setFormatter(formatter)
            self.logger.addHandler(handler)

    def __call__(self, message: str) -> None:
        self.logger.info(message)
        for handler in self.logger.handlers:
            handler.flush()


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


def open_run(out: Path, resume: bool) -> tuple[RunLog, dict[str, object] | None]:
    """Create the run directory and its log; return the log and the checkpoint to resume, if any.

    Raises:
        ValueError: ``out`` holds a checkpoint and ``resume`` is False.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log = RunLog(out)
    state = load_checkpoint(out)
    if state is not None and not resume:
        raise ValueError(f"{out} already holds a checkpoint: pass --resume or choose another --out")
    return log, state


def write_config(out: Path, config: dict[str, object], resume: bool) -> None:
    """Write ``train_config.json``; resuming, first check that it equals the stored one.

    Raises:
        ValueError: resuming with a config that differs from the stored one.
    """
    config_path = Path(out) / "train_config.json"
    if config_path.is_file() and resume:
        stored = json.loads(config_path.read_text())
        if stored != config:
            raise ValueError(f"{config_path}: expected the stored config to match this run's, got {stored}")
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


@dataclass(frozen=True)
class Schedule:
    """The optimisation loop's settings (the fields of both training configs)."""

    steps: int  # fixes the LR schedule, so a resumed run matches an uninterrupted one
    lr: float
    warmup: int
    final_lr_fraction: float
    grad_clip: float
    log_every: int
    checkpoint_every: int
    # Steps of a first, shorter cosine cycle (0: none). From this step on the LR follows the cosine
    # over ``steps`` from where it stands there: a warm restart, so a run trained to ``first_cycle``
    # and then extended is the same run as one that was planned this way from the start.
    first_cycle: int = 0

    @classmethod
    def of(cls, cfg: object) -> Schedule:
        """The schedule fields of a training config (``first_cycle`` is optional)."""
        return cls(**{name: getattr(cfg, name) for name in cls.__dataclass_fields__ if hasattr(cfg, name)})

    def rate(self, step: int) -> float:
        """The learning rate of ``step``."""
        in_first = 0 < self.first_cycle < self.steps and step < self.first_cycle
        cycle = self.first_cycle if in_first else self.steps
        return cosine_lr(step, cycle, self.lr, self.warmup, self.final_lr_fraction)


class Trainer:
    """A model, its EMA and optimizer in a run directory: checkpoint, resume, and the step loop.

    Args:
        out: the run directory.
        log: its log.
        model: the module trained.
        ema: the EMA of ``model`` (exported at the end).
        optimizer: over ``model``'s parameters.
        state: a checkpoint to resume from (:func:`load_checkpoint`), or None.
    """

    def __init__(
        self,
        out: Path,
        log: RunLog,
        model: nn.Module,
        ema: EMA,
        optimizer: torch.optim.Optimizer,
        state: dict[str, object] | None,
    ) -> None:
        self.out, self.log, self.model, self.ema, self.optimizer = Path(out), log, model, ema, optimizer
        self.step = 0
        if state is not None:
            model.load_state_dict(state["model"])
            ema.model.load_state_dict(state["ema"])
            optimizer.load_state_dict(state["optimizer"])
            self.step = int(state["step"])
            log(f"resumed at step {self.step}")

    def checkpoint(self) -> None:
        save_checkpoint(
            self.out,
            {
                "model": self.model.state_dict(),
                "ema": self.ema.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "step": self.step,
            },
        )

    def run(
        self,
        schedule: Schedule,
        loss_of_step: Callable[[int], tuple[Tensor, dict[str, float]]],
        evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
        stop_at: int | None = None,
        budget: Budget | None = None,
        eval_digits: int = 4,
    ) -> list[dict[str, float]]:
        """Optimise up to ``schedule.steps`` (or ``stop_at``, or until ``budget`` expires).

        Each step: train mode, the cosine LR of the step (times a parameter group's ``lr_scale``),
        ``loss_of_step(step)`` -> (loss, parts to log), backward, gradient clipping per parameter
        group (a non-finite norm raises FloatingPointError; groups after the first log theirs as
        ``grad_norm_<name>``), the optimizer and the EMA. Every ``log_every`` steps the mean parts
        are logged; every ``checkpoint_every`` steps (and at the end) a checkpoint is written and
        the EMA model evaluated. Returns the parts (with ``grad_norm`` and ``loss``) of the steps run here.
        """
        budget = budget or Budget(None)
        history: list[dict[str, float]] = []
        t0, since = time.monotonic(), self.step
        last = schedule.steps if stop_at is None else min(schedule.steps, stop_at)
        groups = [list(group["params"]) for group in self.optimizer.param_groups]
        while self.step < last and not budget.expired():
            step = self.step
            self.model.train()
            lr = schedule.rate(step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            loss, parts = loss_of_step(step)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for i, (group, params) in enumerate(zip(self.optimizer.param_groups, groups, strict=True)):
                key = "grad_norm" if i == 0 else f"grad_norm_{group.get('name', i)}"
                parts[key] = float(torch.nn.utils.clip_grad_norm_(params, schedule.grad_clip))
                if not math.isfinite(parts[key]):
                    raise FloatingPointError(f"step {step}: non-finite gradient norm ({key})")
            self.optimizer.step()
            self.ema.update(self.model, step)
            parts["loss"] = float(loss.detach())
            history.append(parts)
            self.step = step = step + 1
            if step % schedule.log_every == 0:
                rate = (step - since) / (time.monotonic() - t0)
                recent = history[-schedule.log_every :]
                keys = dict.fromkeys(k for h in recent for k in h)  # a part may be absent from some steps
                mean = {k: sum(vs) / len(vs) for k in keys if (vs := [h[k] for h in recent if k in h])}
                parts_text = " ".join(f"{k} {v:.4f}" for k, v in mean.items())
                self.log(f"step {step} lr {lr:.2e} {rate:.2f} steps/s {parts_text}")
            if step % schedule.checkpoint_every == 0 or step == schedule.steps:
                self.checkpoint()
                if evaluate is not None:
                    scores = " ".join(f"{k} {v:.{eval_digits}f}" for k, v in evaluate(self.ema.model).items())
                    self.log(f"eval step {step} {scores}")
        if self.step % schedule.checkpoint_every != 0 and self.step != schedule.steps:
            self.checkpoint()
        return history


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def apply_overrides(config: dict[str, object], items: list[str] | None) -> dict[str, object]:
    """A copy of a training config dict with ``KEY=VALUE`` overrides applied (``--set`` on the
    command line). KEY is dotted into nested sections (``model.emb_dim=128``); VALUE is JSON
    (``64``, ``0.1``, ``[1, 3]``, ``true``), or a bare string when it is not valid JSON.

    Raises:
        ValueError: an item without ``=`` or a KEY that is not in ``config``.
    """
    out = json.loads(json.dumps(config))
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE, e.g. model.emb_dim=128")
        *path, last = key.split(".")
        node = out
        for part in path:
            if not isinstance(node.get(part), dict):
                raise ValueError(f"--set {item!r}: no section {part!r}; sections: {_sections(node)}")
            node = node[part]
        if last not in node:
            raise ValueError(f"--set {item!r}: unknown key {last!r}; expected one of {sorted(node)}")
        try:
            node[last] = json.loads(raw)
        except json.JSONDecodeError:
            node[last] = raw
    return out


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every step-scheduled training script takes: ``--out --data --resume --seed --minutes
    --steps --stop-at --threads --export-only`` and ``--set`` (:func:`add_override_argument`)."""
    parser.add_argument("--out", type=Path, required=True, help="run directory (log, checkpoint, export)")
    parser.add_argument("--data", type=Path, default=None, help="real-sound folder with manifest.csv")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=None, help="stop early after this wall time")
    parser.add_argument("--steps", type=int, default=None, help="total steps (default: the config's)")
    parser.add_argument(
        "--stop-at", type=int, default=None, help="stop at this step (the LR schedule still follows --steps)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (results depend on it)")
    parser.add_argument("--export-only", action="store_true", help="re-export OUT's checkpoint and exit")
    add_override_argument(parser)


def add_override_argument(parser: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable) on a training script's parser; see :func:`apply_overrides`."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        metavar="KEY=VALUE",
        help="override a config entry (repeatable; dotted keys, JSON values), e.g. --set model.emb_dim=128",
    )


def add_export_argument(parser: argparse.ArgumentParser) -> None:
    """``--export PKG_DIR`` on a training script's parser: write a run's weights and exit."""
    parser.add_argument(
        "--export",
        type=Path,
        default=None,
        metavar="PKG_DIR",
        help="write the checkpoint's weights to PKG_DIR and exit (no training)",
    )


def export_checkpoint(
    out: Path, directory: Path, export: Callable[[dict[str, object], Path], Path], script: str
) -> None:
    """``--export``: write the weights of ``out``'s checkpoint into ``directory`` with ``export``.

    Raises:
        SystemExit: ``out`` holds no checkpoint (one line, naming ``script``).
    """
    state = load_checkpoint(out)
    if state is None:
        raise SystemExit(f"{script}: no checkpoint in {out}")
    path = export(state, directory)
    print(f"exported {path} ({path.stat().st_size / 1e6:.2f} MB)")


def finish_run(
    out: Path, state: dict[str, object], export: Callable[[dict[str, object], Path], Path], log: RunLog
) -> Path:
    """The end of a run: its last checkpoint, its export in ``out/export``, one log line."""
    save_checkpoint(out, state)
    path = export(state, Path(out) / EXPORT_DIR)
    log(f"exported {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return path


def _sections(node: dict[str, object]) -> list[str]:
    return sorted(k for k, v in node.items() if isinstance(v, dict))


__all__ = [
    "add_export_argument",
    "add_run_arguments",
    "add_override_argument",
    "apply_overrides",
    "CHECKPOINT",
    "EXPORT_DIR",
    "EMA",
    "Budget",
    "RunLog",
    "Schedule",
    "Trainer",
    "batched",
    "cosine_lr",
    "export_checkpoint",
    "export_weights",
    "finish_run",
    "load_checkpoint",
    "open_run",
    "write_config",
    "parameter_count",
    "save_checkpoint",
    "step_generator",
    "step_seed",
]
