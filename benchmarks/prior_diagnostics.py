"""Why does an embedded prior generate what it generates? Seven diagnostics of its weights.

The command line of :mod:`audiosds.bench.prior_diagnostics` (its docstring says what is measured and how).

    python benchmarks/prior_diagnostics.py [--weights DIR] [--seed 0] [--threads 1]
        [--sections fragility sdedit bands moments halves tones postfilter] [--clips N] [--out FILE.md]
"""

from audiosds.bench import run_script
from audiosds.bench.prior_diagnostics import main

if __name__ == "__main__":
    run_script(main)
