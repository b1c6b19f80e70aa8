"""Reverb benchmarks (issue 30): the command line of :mod:`audiosds.bench.reverb`.

python benchmarks/reverb.py plates --out reverb_plates.md
python benchmarks/reverb.py prompts --seeds 3 --out reverb_prompts.md
"""

from audiosds.bench import run_script
from audiosds.bench.reverb import main

if __name__ == "__main__":
    run_script(main)
