"""Reading a weights folder: ``<name>.json`` (a network's Config) + ``<name>.safetensors``."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .denoiser import DenoiserConfig, EDMDenoiser

HINT = "(scripts/train_embedded_mel.sh trains and installs them)"


class EmbeddedWeightsError(ValueError):
    """The embedded prior's weights are missing or do not fit the networks; the message names the file."""


def read_config(folder: Path, name: str) -> dict:
    """The JSON ``folder/<name>.json``."""
    path = Path(folder) / f"{name}.json"
    if not path.is_file():
        raise EmbeddedWeightsError(f"embedded prior weights: missing {path} {HINT}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise EmbeddedWeightsError(f"embedded prior weights: {path} is not valid JSON ({err})") from err


def load_state(module: torch.nn.Module, folder: Path, name: str) -> None:
    """Load ``folder/<name>.safetensors`` into ``module`` (strict; parameters cast to the module's dtype)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(folder) / f"{name}.safetensors"
    if not path.is_file():
        raise EmbeddedWeightsError(f"embedded prior weights: missing {path} {HINT}")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise EmbeddedWeightsError(f"embedded prior weights: cannot read {path} ({err})") from err
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise EmbeddedWeightsError(
            f"embedded prior weights: {path} does not fit {name}.json ({first})"
        ) from err


def load_denoiser(folder: str | Path, name: str = "denoiser") -> EDMDenoiser:
    """The EDM denoiser in ``folder`` (``denoiser.json`` + ``denoiser.safetensors``), eval mode."""
    folder = Path(folder)
    try:
        cfg = DenoiserConfig.from_dict(read_config(folder, name))
    except (TypeError, ValueError) as err:
        if isinstance(err, EmbeddedWeightsError):
            raise
        raise EmbeddedWeightsError(f"embedded prior weights: bad {folder / f'{name}.json'}: {err}") from err
    model = EDMDenoiser(cfg)
    load_state(model, folder, name)
    return model.eval()
