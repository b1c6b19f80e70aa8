"""Speech enhancement benchmark (issue 30): the command line of :mod:`audiosds.bench.enhance`.

python benchmarks/enhance.py --mixtures 24 --seed 0 --dnsmos --out enhance.md
"""

from audiosds.bench import run_script
from audiosds.bench.enhance import main

if __name__ == "__main__":
    run_script(main)
