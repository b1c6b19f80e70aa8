"""Prompt-suggestion benchmark (issue 30): the command line of :mod:`audiosds.bench.suggest`.

python benchmarks/suggest.py --world 30 --esc 30 --seed 0 --separate 3 --out suggest.md
"""

from audiosds.bench import run_script
from audiosds.bench.suggest import main

if __name__ == "__main__":
    run_script(main)
