"""Batch throughput benchmark (issue 31): the command line of :mod:`audiosds.bench.batch`.

python benchmarks/batch.py --prior embedded-mel --iters 60 --workers 2 --out batch.md
"""

from audiosds.bench import run_script
from audiosds.bench.batch import main

if __name__ == "__main__":
    run_script(main)
