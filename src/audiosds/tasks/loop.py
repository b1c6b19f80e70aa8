"""The optimisation loop every task shares: numeric guard, checkpoints, resume, clean stops.

A task supplies ``step(it) -> (loss, row)`` (render, SDS, any extra losses; not yet
backpropagated). The loop backpropagates, refuses any step whose loss or gradients are not
finite (the parameters are left exactly as they were and the row is marked ``skipped``), stops
after ``max_bad_steps`` consecutive bad steps, checkpoints every ``checkpoint_every``
iterations, and stops cleanly between iterations when ``should_stop()`` turns true (the CLI
sets it from SIGINT / SIGTERM).

Checkpoints hold only tensors, numbers, strings and lists/dicts of them, and are read back
with ``torch.load(weights_only=True)``: loading one never unpickles arbitrary objects. On CPU,
a run resumed from a checkpoint gives bit-identical parameters to an uninterrupted run.
"""

from __future__ import annotations

import io
import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from ..audio import write_bytes

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass(frozen=True)
class LoopConfig:
    """Robustness settings shared by every task."""

    checkpoint_every: int = 50  # iterations between checkpoints (0: only at stops)
    max_bad_steps: int = 10  # consecutive non-finite steps before the run is abandoned

    def __post_init__(self) -> None:
        if not (isinstance(self.checkpoint_every, int) and self.checkpoint_every >= 0):
            raise ValueError(f"checkpoint_every: expected an integer >= 0, got {self.checkpoint_every!r}")
        if not (isinstance(self.max_bad_steps, int) and self.max_bad_steps >= 1):
            raise ValueError(f"max_bad_steps: expected an integer >= 1, got {self.max_bad_steps!r}")


@dataclass
class LoopState:
    """Where a loop stands: what a checkpoint restores."""

    iteration: int = 0  # the next iteration to run
    bad_steps: int = 0  # consecutive skipped steps so far
    history: list[dict[str, float | None]] = field(default_factory=list)


@dataclass
class LoopOutcome:
    """How the loop ended: "completed", "stopped" (should_stop) or "diverged" (too many bad steps)."""

    status: str
    state: LoopState
    message: str = ""


def _finite_grads(params: list[nn.Parameter]) -> bool:
    return all(p.grad is None or bool(torch.isfinite(p.grad).all()) for p in params)


def save_checkpoint(
    path: Path,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    state: LoopState,
) -> None:
    """Write a checkpoint atomically (tensors and plain data only)."""
    payload = {
        "iteration": state.iteration,
        "bad_steps": state.bad_steps,
        "history": state.history,
        "module": module.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    write_bytes(path, buf.getvalue())


def load_checkpoint(
    path: Path, module: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator
) -> LoopState:
    """Restore module, optimiser and RNG states from ``path``; returns the loop state.

    Raises:
        ValueError: the file is missing, unreadable, or does not fit this module.
    """
    if not path.is_file():
        raise ValueError(f"{path}: no checkpoint to resume from")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        module.load_state_dict(payload["module"])
        optimizer.load_state_dict(payload["optimizer"])
        generator.set_state(payload["generator"])
        torch.set_rng_state(payload["torch_rng"])
        return LoopState(int(payload["iteration"]), int(payload["bad_steps"]), list(payload["history"]))
    except (RuntimeError, KeyError, TypeError, EOFError, OSError, pickle.UnpicklingError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: not a usable checkpoint for this run ({first})") from err


def run_loop(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    iters: int,
    step: Callable[[int], tuple[Tensor, dict[str, float | None]]],
    config: LoopConfig | None = None,
    checkpoint: Path | None = None,
    state: LoopState | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[int, dict[str, float | None]], None] | None = None,
    grad_clip: float = 0.0,
) -> LoopOutcome:
    """Run iterations ``state.iteration .. iters-1`` of ``step`` with Adam-style updates.

    Args:
        module: owns every optimised parameter (checkpointed with its buffers).
        optimizer: over ``module``'s parameters.
        generator: the task's noise generator (checkpointed).
        iters: total iterations of the run.
        step: builds the loss of iteration ``it`` and its history row (floats; None for a value
            not computed this iteration).
        config: checkpoint interval and bad-step limit.
        checkpoint: where checkpoints go; None disables them.
        state: where to start (from :func:`load_checkpoint`); None starts afresh.
        should_stop: polled after every iteration; True stops after checkpointing.
        progress: called after each iteration with (iteration, row).
        grad_clip: max global gradient norm over ``module``'s parameters; 0 disables.

    Returns:
        The outcome; its state's history has one row per iteration run, with ``skipped`` 1.0
        where a non-finite loss or gradient was refused.
    """
    config = config or LoopConfig()
    state = state or LoopState()
    params = [p for p in module.parameters() if p.requires_grad]

    def save() -> None:
        if checkpoint is not None:
            save_checkpoint(checkpoint, module, optimizer, generator, state)

    while state.iteration < iters:
        it = state.iteration
        optimizer.zero_grad(set_to_none=True)
        loss, row = step(it)
        ok = bool(torch.isfinite(loss.detach()).all())
        if ok and loss.requires_grad:
            loss.backward()
            ok = _finite_grads(params)
        if ok:
            if grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
            state.bad_steps = 0
        else:
            # a non-finite loss or update never reaches the parameters
            optimizer.zero_grad(set_to_none=True)
            state.bad_steps += 1
        # None: not computed this iteration (kept as such); a non-finite value is recorded as NaN
        row = {k: (v if v is None or math.isfinite(v) else float("nan")) for k, v in row.items()}
        row["skipped"] = 0.0 if ok else 1.0
        state.history.append(row)
        state.iteration = it + 1
        if progress is not None:
            progress(it, row)
        if state.bad_steps >= config.max_bad_steps:
            save()
            return LoopOutcome(
                "diverged", state, f"{state.bad_steps} consecutive non-finite steps up to iteration {it}"
            )
        if should_stop is not None and should_stop():
            save()
            return LoopOutcome("stopped", state, f"stopped after iteration {it + 1} of {iters}")
        if config.checkpoint_every and state.iteration % config.checkpoint_every == 0:
            save()
    save()
    return LoopOutcome("completed", state)
