"""Diffusers pipeline folders on disk: which pipeline a folder holds, whether it is complete, where it is.

Shared by the backends that load a diffusers-format snapshot (``stable_audio_3``, ``audioldm2``) and by
the ``auto`` prior, which reads ``model_index.json``'s ``_class_name`` to pick a backend. Weights are
read from safetensors files only: a folder whose weights are pickled (``*.bin``, ``*.ckpt``) is
refused before anything is unpickled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import torch


class ModelLoadError(ValueError):
    """A diffusers model could not be found or loaded; the message says what to fix."""


_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_PICKLES = ("*.bin", "*.ckpt", "*.pt", "*.pth", "*.pkl")

# Weight files a component may hold, safetensors only (one file or a sharded index).
DIFFUSERS_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json")
TRANSFORMERS_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLED_WEIGHTS = ("diffusion_pytorch_model.bin", "pytorch_model.bin")


def first_line(err: BaseException) -> str:
    """``Type: first line of the message``, for one-line errors that wrap another library's."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def _download(model: str, allow_patterns: list[str] | None) -> Path:
    """The Hugging Face snapshot of ``model`` (from the cache when offline), pickles excluded."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model, allow_patterns=allow_patterns, ignore_patterns=list(_PICKLES)))
    except (OSError, ValueError) as err:  # hub errors are OSError / ValueError subclasses
        raise ModelLoadError(
            f"model {model!r} is not a local folder and could not be fetched from Hugging Face "
            f"(offline, gated or unknown id?): {first_line(err)}"
        ) from None


def locate(model: str, allow_patterns: list[str] | None = None) -> Path:
    """The local folder of ``model``: the folder itself, or the Hugging Face snapshot of an id.

    Args:
        model: a folder, or a Hugging Face id (``owner/name``).
        allow_patterns: files to fetch for an id (default: every file but pickled weights).

    Raises:
        ModelLoadError: neither a folder nor a reachable id.
    """
    folder = Path(model).expanduser()
    if folder.is_dir():
        return folder
    if not _HF_ID.match(model):
        raise ModelLoadError(f"model {model!r} is neither an existing folder nor a Hugging Face id")
    return _download(model, allow_patterns)


def pipeline_class(model: str) -> tuple[Path, str]:
    """The folder of ``model`` and the pipeline class its ``model_index.json`` names.

    Raises:
        ModelLoadError: no folder, no ``model_index.json``, or one without ``_class_name``.
    """
    folder = locate(model, ["model_index.json"])
    index_file = folder / "model_index.json"
    if not index_file.is_file():
        raise ModelLoadError(f"model folder {folder} has no model_index.json (not a diffusers pipeline)")
    index = read_json(index_file)
    name = index.get("_class_name")
    if not isinstance(name, str):
        raise ModelLoadError(f"model folder {folder}: model_index.json names no _class_name")
    return folder, name


def check_parts(folder: Path, parts: dict[str, tuple[tuple[str, ...], ...]]) -> None:
    """ModelLoadError unless ``folder`` holds every part, naming all that are missing at once.

    Args:
        folder: a pipeline folder.
        parts: subfolder -> files it must hold, each entry a tuple of alternatives of which one is
            enough (the first is named in the message). ``""`` is the folder itself.

    Raises:
        ModelLoadError: missing files (a whole subfolder as ``name/``), or weights present only in
            pickled form (refused: safetensors only).
    """
    missing, pickled = [], []
    for sub, files in parts.items():
        where = folder / sub if sub else folder
        if sub and not where.is_dir():
            missing.append(f"{sub}/")
            continue
        for alternatives in files:
            if any((where / name).is_file() for name in alternatives):
                continue
            stored = [name for name in PICKLED_WEIGHTS if (where / name).is_file()]
            if stored and alternatives[0].endswith(".safetensors"):
                pickled.append(f"{sub}/{stored[0]}")
            else:
                missing.append(f"{sub}/{alternatives[0]}" if sub else alternatives[0])
    if pickled:
        raise ModelLoadError(
            f"model folder {folder}: pickled weights are refused, safetensors only: {', '.join(pickled)}"
        )
    if missing:
        raise ModelLoadError(f"model folder {folder} is missing: {', '.join(missing)}")


def expect_pipeline(folder: Path, expected: str) -> None:
    """ModelLoadError unless ``folder``'s model_index.json names the ``expected`` pipeline class."""
    _, name = pipeline_class(str(folder))
    if name != expected:
        raise ModelLoadError(
            f"model folder {folder}: expected a {expected} snapshot, "
            f"got model_index.json _class_name {name!r}"
        )


def read_json(file: Path) -> dict[str, object]:
    """A JSON object from ``file``; ModelLoadError naming the file otherwise."""
    try:
        content = json.loads(file.read_text())
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"cannot read {file}: {first_line(err)}") from None
    if not isinstance(content, dict):
        raise ModelLoadError(f"{file}: expected a JSON object")
    return content


def fold_weight_norm(module: torch.nn.Module) -> None:
    """Weight-normalised convolutions recompute their weight on every forward; a frozen model gets
    the same weight once (about 12 ms per SDS iteration on a small Oobleck autoencoder)."""
    for m in module.modules():
        if hasattr(m, "weight_g") and hasattr(m, "weight_v"):
            torch.nn.utils.remove_weight_norm(m)


def load_parts(folder: Path, loaders: dict[str, Callable[[Path], object]]) -> dict[str, object]:
    """Run each ``loaders[part](folder / part)``; a failure is one ModelLoadError line naming the part."""
    parts = {}
    for part, load in loaders.items():
        try:
            parts[part] = load(folder / part)
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as err:
            raise ModelLoadError(f"model folder {folder}: cannot load {part}/: {first_line(err)}") from None
    return parts


def lean_loading() -> bool:
    """Whether diffusers can load on the meta device (``low_cpu_mem_usage``): only with accelerate
    installed; without it diffusers would warn once per component and fall back."""
    from diffusers.utils import is_accelerate_available

    return bool(is_accelerate_available())
