"""Batch throughput (issue 31): a 16-job grid one after another vs on a local Ray with 2 workers.

Both runs use the same jobs file (fm and impact x 2 prompts x 4 seeds on the chosen prior, one
thread per job) into fresh folders; the table gives each wall time, the speed-up and whether every
run folder's audio is byte-identical between the two (it must be: the same command lines).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from ..batch import BatchConfig, read_jobs, run_batch
from ..priors import DEFAULT_PRIOR


def grid(prior: str, iters: int) -> dict:
    return {
        "defaults": {"prior": prior, "iters": iters, "threads": 1},
        "grid": {
            "command": ["fm", "impact"],
            "prompt": ["a warm bass note", "a glass bell"],
            "seed": [0, 1, 2, 3],
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prior", default=DEFAULT_PRIOR)
    parser.add_argument("--iters", type=int, default=60, help="iterations per job")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="markdown table here too")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="audiosds-batch-bench-") as tmp:
        root = Path(tmp)
        jobs_path = root / "jobs.yaml"
        jobs_path.write_text(yaml.safe_dump(grid(args.prior, args.iters), sort_keys=False))
        jobs = read_jobs(jobs_path)
        walls, folders = {}, {}
        for name, workers in (("one after another", 1), (f"Ray, {args.workers} workers", args.workers)):
            out = root / f"out-{workers}"
            started = time.perf_counter()
            outcomes = run_batch(BatchConfig(out, workers=workers, threads=1), jobs)
            walls[name] = time.perf_counter() - started
            folders[name] = out
            failed = [o for o in outcomes if o.status != "completed"]
            if failed:
                raise SystemExit(f"{name}: {len(failed)} jobs did not complete: {failed[0].error}")
        first, second = folders.values()
        same = all(
            (first / job.id / wav.name).read_bytes() == wav.read_bytes()
            for job in jobs
            for wav in (second / job.id).glob("*.wav")
        )
    (seq_name, seq), (par_name, par) = walls.items()
    lines = [
        f"| {len(jobs)} jobs ({args.prior}, {args.iters} iterations, 1 thread each) | wall (s) | speed-up |",
        "|---|---|---|",
        f"| {seq_name} | {seq:.1f} | 1.00x |",
        f"| {par_name} | {par:.1f} | {seq / par:.2f}x |",
        "",
        f"audio byte-identical between the two: {'yes' if same else 'NO'}",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return 0
