"""The prompt scorer's verdict on a prior's own generations, beside the renderers' initial renders.

The command line of :mod:`audiosds.bench.prior_prompt_scores` (its docstring says what is measured and how).

    python benchmarks/prior_prompt_scores.py --prior embedded-mel --clips 4 --seed 0 [--out FILE.md]
"""

from audiosds.bench import run_script
from audiosds.bench.prior_prompt_scores import main

if __name__ == "__main__":
    run_script(main)
