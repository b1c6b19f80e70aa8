"""The mel prior's benchmarks of issue 26: the vocoder's ceiling, generation from held-out phrasings and
attribute words.

The command line of :mod:`audiosds.bench.mel_prior` (its docstring says what is measured and how).

    python benchmarks/mel_prior.py --data SOUNDS_DIR [--weights DIR] [--vocoder CKPT] [--seed 0]
        [--threads 1] [--sections vocoder gen attr] [--out DIR] [--world-per-family 3] [--digits 20]
        [--judge-clips-per-family 40] [--per-class 4] [--cfg 4] [--steps 32] [--classes FAMILY ...]
        [--real-classes CLASS ...] [--save-per-class 2] [--esc-per-class N]
        [--renderings vocoded mel_phase] [--attribute-seeds 10]
"""

from audiosds.bench import run_script
from audiosds.bench.mel_prior import main

if __name__ == "__main__":
    run_script(main)
