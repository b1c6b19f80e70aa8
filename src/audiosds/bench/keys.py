"""What the benchmarks share besides running: job keys, the prior's identity, option helpers.

A benchmark names each job by a key, a hash of every setting that changes its result (the prior's
weights by a fingerprint of their files). The runs themselves go through ``audiosds batch``; the
keys name the files a benchmark keeps beside them (mixtures, generated sources).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from ..priors import DEFAULT_PRIOR, MODEL_FIELD
from ..priors.embedded_mel import default_weights_dir

HASH_LIMIT = 64 << 20  # weight files up to 64 MiB are fingerprinted by content, larger ones by size + mtime
SHOW_MISSING = 5  # missing jobs named in a partial report


def add_prior_scorer_options(parser: argparse.ArgumentParser) -> None:
    """``--prior``, ``--weights``/``--model`` (dest ``model``), ``--scorer`` and ``--scorer-weights``."""
    parser.add_argument("--prior", default=DEFAULT_PRIOR, help="prior registry name")
    parser.add_argument(
        "--weights", "--model", dest="model", default=None, help="the prior's weights / model"
    )
    parser.add_argument("--scorer", default="embedded", help="prompt scorer registry name")
    parser.add_argument(
        "--scorer-weights", default=None, help="the scorer's weights folder (default: shipped)"
    )


def job_key(settings: dict[str, object]) -> str:
    """Stable hash of a job's settings: sha256 of their canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def folder_fingerprint(folder: Path) -> str:
    """Hash of every file under ``folder``: its relative path, size and content (size + mtime if large)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder).as_posix()}\0{stat.st_size}\0".encode())
        digest.update(path.read_bytes() if stat.st_size <= HASH_LIMIT else str(stat.st_mtime_ns).encode())
    return digest.hexdigest()[:24]


def weights_identity(name: str, weights: str | None, default: Path | None) -> dict[str, str | None]:
    """A model's part of a job key: its registry name and its weights (a folder's fingerprint, so the
    same files give the same key wherever they are, or the value as given, e.g. a Hugging Face id)."""
    folder = Path(weights) if weights is not None else default
    if folder is not None and folder.is_dir():
        return {"name": name, "weights": folder_fingerprint(folder)}
    return {"name": name, "weights": weights}


def prior_identity(name: str, model: str | None) -> dict[str, str | None]:
    """:func:`weights_identity` of a prior; ``--weights`` only counts for the priors that take one.
    Without them the embedded prior's installed folder is fingerprinted, so new shipped weights never
    reuse the old weights' cached jobs."""
    model = model if name in MODEL_FIELD else None
    return weights_identity(name, model, default_weights_dir() if name == "embedded-mel" else None)


def prior_options(name: str, model: str | None) -> dict[str, str]:
    """The ``build`` keyword that loads ``--weights`` / ``--model`` into prior ``name`` ({} when none
    was given or the prior takes none, as :func:`prior_identity` counts it)."""
    return {MODEL_FIELD[name]: model} if model is not None and name in MODEL_FIELD else {}


def missing_lines(jobs: Sequence, records: dict[str, dict]) -> list[str]:
    """Markdown naming how many jobs have no record yet and the first few of them; [] if none."""
    missing = list({job.key: job.name for job in jobs if job.key not in records}.items())
    if not missing:
        return []
    total = len({job.key for job in jobs})
    shown = "; ".join(f"{name} [{key}]" for key, name in missing[:SHOW_MISSING])
    more = f"; and {len(missing) - SHOW_MISSING} more" if len(missing) > SHOW_MISSING else ""
    return [f"**Incomplete: {len(missing)} of {total} jobs missing**: {shown}{more}.", ""]


def values_of(records: Sequence[dict], field: str) -> str:
    """The distinct values of a record field, sorted, for a header ("?" when there are no records)."""
    return ", ".join(str(v) for v in sorted({r[field] for r in records})) or "?"


def overrides(items: Sequence[str] | None, cls: type, option: str) -> dict[str, object]:
    """``NAME=VALUE`` strings as keyword arguments of the dataclass ``cls``, each value parsed as its
    field's default type (numbers, strings, booleans; tuples as comma-separated ints or strings)."""
    defaults = {f.name: getattr(cls(), f.name) for f in dataclasses.fields(cls)}
    out: dict[str, object] = {}
    for item in items or ():
        name, sep, text = item.partition("=")
        if not sep or name not in defaults:
            raise ValueError(f"{option} {item!r}: expected NAME=VALUE with NAME among {sorted(defaults)}")
        default = defaults[name]
        try:
            if isinstance(default, bool):
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                value: object = text.lower() in ("true", "1")
            elif isinstance(default, tuple) and all(isinstance(v, str) for v in default):
                value = tuple(text.split(","))
            elif isinstance(default, tuple):
                value = tuple(int(v) for v in text.split(","))
            elif default is None or isinstance(default, float):
                value = float(text)
            else:
                value = type(default)(text)
        except ValueError:
            raise ValueError(f"{option} {item!r}: {text!r} is not a valid {name}") from None
        out[name] = value
    return out
