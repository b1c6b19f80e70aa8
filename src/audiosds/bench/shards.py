"""Resumable, sharded benchmark jobs of ``separation`` (``synthesis_curves`` runs as a batch).

A benchmark is a deterministic list of jobs, each with a ``key`` (a hash of every setting that
changes its result). With ``--cache DIR`` each finished job appends one JSON line to a file of its
own process in DIR, and jobs already recorded there are skipped, so a killed run resumes;
``--shard I/N`` runs the distinct keys whose index is I mod N, so one benchmark can use every core
and span sessions; ``--report-only`` builds the report from DIR alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

import torch
from tqdm import tqdm

from ..priors import DEFAULT_PRIOR, MODEL_FIELD
from ..priors.embedded_mel import default_weights_dir

HASH_LIMIT = 64 << 20  # weight files up to 64 MiB are fingerprinted by content, larger ones by size + mtime
SHOW_MISSING = 5  # missing jobs named in a partial report


class Keyed(Protocol):
    """A job: ``key`` hashes every setting that changes its result, ``name`` is for people."""

    @property
    def key(self) -> str: ...

    @property
    def name(self) -> str: ...


J = TypeVar("J", bound=Keyed)


def shard_spec(text: str) -> tuple[int, int]:
    """``--shard I/N`` -> (I, N) with 0 <= I < N (an argparse type: a bad value is a one-line error)."""
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if match is None or not int(match[1]) < int(match[2]):
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N (e.g. 0/2), got {text!r}")
    return int(match[1]), int(match[2])


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


def add_cache_options(parser: argparse.ArgumentParser) -> None:
    """``--cache DIR``, ``--shard I/N`` and ``--report-only``."""
    parser.add_argument(
        "--cache", type=Path, default=None, help="folder of per-job JSON-line results: resume, shard, report"
    )
    parser.add_argument(
        "--shard",
        type=shard_spec,
        default=(0, 1),
        metavar="I/N",
        help="run only the jobs whose index is I mod N (needs --cache)",
    )
    parser.add_argument("--report-only", action="store_true", help="only report the jobs found in --cache")


def check_cache_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--shard`` and ``--report-only`` need ``--cache``."""
    if args.cache is None and (args.report_only or args.shard != (0, 1)):
        parser.error("--shard, --report-only: expected --cache DIR as well")


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


def load_records(folder: Path) -> dict[str, dict]:
    """Every complete record in ``folder/*.jsonl`` by key.

    A torn line (a writer killed mid-line) is skipped. A job recorded twice resolves to its record
    with the smallest canonical JSON, so the result does not depend on file names or line order.
    """
    found: dict[str, list[dict]] = {}
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("key"), str):
                found.setdefault(record["key"], []).append(record)
    return {key: min(group, key=lambda r: json.dumps(r, sort_keys=True)) for key, group in found.items()}


class JobCache:
    """Append-only JSON lines, one file per process: ``results-<I>of<N>-<pid>-<ns>.jsonl`` in ``folder``.

    Args:
        folder: the cache folder (created).
        shard: (I, N) of this process.
    """

    def __init__(self, folder: Path, shard: tuple[int, int]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.path = folder / f"results-{shard[0]}of{shard[1]}-{os.getpid()}-{time.time_ns()}.jsonl"

    def append(self, record: dict) -> None:
        """Write one record as a line, flushed and fsynced (a kill loses at most the job in progress)."""
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())


def run_jobs(
    jobs: Sequence[J],
    run: Callable[[J], dict],
    cache: JobCache | None,
    shard: tuple[int, int],
    desc: str,
) -> dict[str, dict]:
    """Run the shard's jobs that no record covers yet; return every record by key.

    Jobs with equal keys run once; the shard is the index among distinct keys mod N. Each record is
    ``run(job)`` plus ``key``, ``job`` (its name), ``wall_s`` and ``threads``. With a cache, the
    records of every process that wrote to its folder are returned (reread after the run).
    """
    unique = list({job.key: job for job in reversed(jobs)}.values())[::-1]  # first occurrence of each key
    done = load_records(cache.folder) if cache is not None else {}
    todo = [job for n, job in enumerate(unique) if n % shard[1] == shard[0] and job.key not in done]
    records = dict(done)
    for job in tqdm(todo, desc=desc, file=sys.stderr, unit="job", dynamic_ncols=True):
        start = time.perf_counter()
        result = run(job)
        record = {
            **result,
            "key": job.key,
            "job": job.name,
            "wall_s": time.perf_counter() - start,
            "threads": torch.get_num_threads(),
        }
        if cache is not None:
            cache.append(record)
        records[job.key] = record
    return load_records(cache.folder) if cache is not None else records


def missing_lines(jobs: Sequence[Keyed], records: dict[str, dict]) -> list[str]:
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
