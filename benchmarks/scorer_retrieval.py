"""Held-out zero-shot family retrieval of a prompt scorer (issue 3, "Must show": scorer top-1 >= 90%).

The command line of :mod:`audiosds.bench.scorer_retrieval` (its docstring says what is measured and how).

    python benchmarks/scorer_retrieval.py [--scorer embedded] [--clips-per-family 10]
        [--phrasings 4] [--seconds 0.5 2 10] [--seed 1234]
"""

from audiosds.bench import run_script
from audiosds.bench.scorer_retrieval import main

if __name__ == "__main__":
    run_script(main)
