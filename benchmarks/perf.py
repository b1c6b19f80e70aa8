"""What an SDS iteration costs against what querying the prior costs (issue 6), in one process and one run.

The command line of :mod:`audiosds.bench.perf.main` (its docstring says what is measured and how).

    python benchmarks/perf.py --prior embedded-mel|analytic|sao-shaped [--quick] [--out FILE.md]
        [--plot FILE.png] [--threads N] [--weights DIR] [--sections iter scale stft cli profile]
"""

from audiosds.bench import run_script
from audiosds.bench.perf.main import main

if __name__ == "__main__":
    run_script(main)
