"""Table-1 separation benchmark (Audio-SDS arXiv 2505.04621 sec. 4.3, eq. 13, Table 1).

The command line of :mod:`audiosds.bench.separation` (its docstring says what is measured and how).

    python benchmarks/separation.py --prior embedded-mel --mixtures 3 --seed 0 --out separation.md
    python benchmarks/separation.py --cache runs/sep --shard 0/2 &
    python benchmarks/separation.py --cache runs/sep --shard 1/2 &
    wait; python benchmarks/separation.py --cache runs/sep --report-only --out separation.md
"""

from audiosds.bench import run_script
from audiosds.bench.separation import main

if __name__ == "__main__":
    run_script(main)
