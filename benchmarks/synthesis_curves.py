"""Synthesis curves: prompt score over SDS iterations (Audio-SDS arXiv 2505.04621 sec. 4.1, eqs. 5-6).

The command line of :mod:`audiosds.bench.synthesis_curves` (its docstring says what is measured and how).

    python benchmarks/synthesis_curves.py --prior embedded-mel --seeds 5 --out synthesis.md
        --plot synthesis.png
    python benchmarks/synthesis_curves.py --cache runs/syn --shard 0/2 &
    python benchmarks/synthesis_curves.py --cache runs/syn --shard 1/2 &
    wait; python benchmarks/synthesis_curves.py --cache runs/syn --report-only --out synthesis.md
"""

from audiosds.bench import run_script
from audiosds.bench.synthesis_curves import main

if __name__ == "__main__":
    run_script(main)
