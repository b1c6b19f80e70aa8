"""The embedded prior's benchmarks of issue 3 ("Must show"): autoencoder, generation, attribute words.

The command line of :mod:`audiosds.bench.embedded_prior` (its docstring says what is measured and how).

    python benchmarks/embedded_prior.py [--weights DIR] [--seed 0] [--out FILE.md]
        [--seconds 2] [--clips-per-family 10] [--gen-per-family 10] [--steps 30] [--cfg 4]
        [--attribute-seeds 10] [--judge-clips-per-family 40] [--sections ae gen attr]
"""

from audiosds.bench import run_script
from audiosds.bench.embedded_prior import main

if __name__ == "__main__":
    run_script(main)
