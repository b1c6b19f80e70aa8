"""Prompt coverage: does a prior know sounds like this prompt?

A prior trained on a closed set of sounds (the embedded mel prior) answers any prompt, and for a
prompt far from everything it was trained on ("a cat meowing" for a prior that never heard one) it
gives unrelated audio without a word. A weights folder can carry what its prior was trained on:

    coverage.safetensors   tensor "text": (M, 384) float16, the text embeddings of the training
                           captions (unit norm, the prior's own text encoder; duplicates removed)
    coverage.json          {"labels": [a short class name per row], "threshold": float}

A prompt whose highest cosine similarity to those rows is below ``threshold`` is out of coverage:
:func:`coverage_warning` then gives one line naming the closest classes the prior knows. The
threshold is measured, not guessed (:func:`measure_threshold`): the highest value that still lets at
least 95% of held-out phrasings of the training classes through, reported beside the share of
out-of-coverage prompts it catches.

A training script writes them beside its weights with :func:`build_coverage`,
:func:`measure_threshold` and :func:`save_coverage` on its own captions (``training.train_mel``'s
export does).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

COVERAGE_TENSORS = "coverage.safetensors"
COVERAGE_JSON = "coverage.json"
HELDOUT_PASS = 0.95  # share of held-out phrasings the threshold must let through
OUTSIDE_CATCH = 0.90  # share of out-of-coverage prompts it should catch (reported, not forced)
CLOSEST = 3  # classes named in the warning

TextEncoder = Callable[[Sequence[str]], Tensor]  # prompts -> (P, E) unit-norm embeddings


@dataclass(frozen=True)
class Coverage:
    """What a prior was trained on: caption embeddings, a class label per row, and the threshold."""

    text: Tensor  # (M, E) float32, unit-norm rows
    labels: list[str]
    threshold: float

    def closest(self, prompt_embeddings: Tensor) -> tuple[Tensor, list[list[str]]]:
        """Per prompt: the highest cosine similarity to any row, and the distinct labels of the
        most similar rows, most similar first (up to ``CLOSEST``).

        Shape:
            prompt_embeddings (P, E) -> (P,), P lists
        """
        sims = prompt_embeddings.float() @ self.text.T  # (P, M)
        best = sims.max(dim=1).values
        names = []
        for row in sims:
            seen: list[str] = []
            for index in torch.argsort(row, descending=True).tolist():
                if self.labels[index] not in seen:
                    seen.append(self.labels[index])
                if len(seen) == CLOSEST:
                    break
            names.append(seen)
        return best, names


def build_coverage(captions: list[str], labels: list[str], text_encoder: TextEncoder) -> tuple[Tensor, dict]:
    """The coverage rows of a training set: one per distinct caption.

    Args:
        captions: the training captions (repeats allowed; the first label of a repeated caption is kept).
        labels: one short class name per caption ("dog bark", "metal pipes").
        text_encoder: the prior's text encoder, prompts -> (P, E) unit-norm embeddings.

    Returns:
        (text, meta): text (M, E) float16; meta ``{"labels": [M names], "threshold": None}``
        (set the threshold with :func:`measure_threshold`).
    """
    if len(captions) != len(labels):
        raise ValueError(f"labels: expected one per caption ({len(captions)}), got {len(labels)}")
    if not captions:
        raise ValueError("captions: expected at least one caption, got none")
    first = dict(zip(reversed(captions), reversed(labels), strict=True))  # the first label wins
    distinct = list(dict.fromkeys(captions))
    text = torch.nn.functional.normalize(text_encoder(distinct).float(), dim=1)
    return text.half(), {"labels": [first[c] for c in distinct], "threshold": None}


def measure_threshold(
    text: Tensor,
    inside: Sequence[str],
    outside: Sequence[str],
    text_encoder: TextEncoder,
    heldout_pass: float = HELDOUT_PASS,
) -> tuple[float, dict[str, float]]:
    """The highest threshold that lets at least ``heldout_pass`` of ``inside`` prompts through.

    Args:
        text: coverage rows (M, E), as :func:`build_coverage` gives them.
        inside: prompts that should pass (held-out phrasings of the training classes).
        outside: prompts that should be caught (sounds the prior was not trained on).
        text_encoder: the same encoder the rows came from.
        heldout_pass: the share of ``inside`` that must pass.

    Returns:
        (threshold, report): report has ``inside_passed`` and ``outside_caught`` (shares at that
        threshold) and the median best similarity of each set.
    """
    rows = text.float()
    inside_best = (text_encoder(list(inside)).float() @ rows.T).max(dim=1).values
    outside_best = (text_encoder(list(outside)).float() @ rows.T).max(dim=1).values
    # the k-th smallest inside value with k = the number allowed to fail; thresholds compare with >=
    allowed = int((1.0 - heldout_pass) * len(inside))
    threshold = float(torch.sort(inside_best).values[allowed])
    report = {
        "inside_passed": float((inside_best >= threshold).float().mean()),
        "outside_caught": float((outside_best < threshold).float().mean()),
        "inside_median": float(inside_best.median()),
        "outside_median": float(outside_best.median()),
        "inside": len(inside),
        "outside": len(outside),
    }
    return threshold, report


def save_coverage(folder: str | Path, text: Tensor, meta: dict) -> None:
    """Write ``coverage.safetensors`` and ``coverage.json`` into ``folder`` (atomically)."""
    from safetensors.torch import save

    from .audio import write_bytes, write_text

    if meta.get("threshold") is None:
        raise ValueError("meta: expected a measured threshold, got None (see measure_threshold)")
    folder = Path(folder)
    write_bytes(folder / COVERAGE_TENSORS, save({"text": text.half().contiguous()}))
    write_text(folder / COVERAGE_JSON, json.dumps(meta) + "\n")


_LOADED: dict[Path, Coverage | None] = {}


def load_coverage(folder: str | Path) -> Coverage | None:
    """A weights folder's coverage, or None when it has none (cached per folder).

    Raises:
        ValueError: the files are there but unreadable or inconsistent.
    """
    folder = Path(folder).resolve()
    if folder not in _LOADED:
        if not (folder / COVERAGE_TENSORS).is_file() or not (folder / COVERAGE_JSON).is_file():
            _LOADED[folder] = None
        else:
            from safetensors import SafetensorError
            from safetensors.torch import load_file

            try:
                text = load_file(str(folder / COVERAGE_TENSORS))["text"].float()
                meta = json.loads((folder / COVERAGE_JSON).read_text())
                labels, threshold = list(meta["labels"]), float(meta["threshold"])
            except (OSError, KeyError, TypeError, ValueError, SafetensorError) as err:
                raise ValueError(f"{folder}: unreadable prompt-coverage files ({err})") from err
            if text.ndim != 2 or text.shape[0] != len(labels):
                raise ValueError(
                    f"{folder / COVERAGE_TENSORS}: expected (len(labels) = {len(labels)}, E) rows, "
                    f"got {tuple(text.shape)}"
                )
            _LOADED[folder] = Coverage(text, labels, threshold)
    return _LOADED[folder]


def coverage_warnings(prior: object, prompts: Sequence[str], prior_name: str) -> list[str]:
    """One line per prompt the prior has not learned, e.g. ``the embedded-mel prior has not learned
    sounds like 'a cat meowing'; closest it knows: rooster, dog bark, birds``.

    Works for any prior with a ``weights_dir`` holding coverage files and a ``text_encoder`` (the
    one its rows came from); others give no lines.
    """
    folder = getattr(prior, "weights_dir", None)
    encoder = getattr(prior, "text_encoder", None)
    if folder is None or encoder is None:
        return []
    coverage = load_coverage(folder)
    if coverage is None:
        return []
    best, names = coverage.closest(encoder(list(prompts)))
    return [
        f"the {prior_name} prior has not learned sounds like '{prompt}'; closest it knows: {', '.join(near)}"
        for prompt, value, near in zip(prompts, best.tolist(), names, strict=True)
        if value < coverage.threshold
    ]
