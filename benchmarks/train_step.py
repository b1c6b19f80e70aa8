"""Seconds per training step of the mel prior's denoiser, by net and precision (issue 26's budget).

The command line of :mod:`audiosds.bench.train_step` (its docstring says what is timed).

    python benchmarks/train_step.py [--nets 16,32,64,128 16,32,96,192:3] [--precisions float32 bfloat16]
        [--batch 16] [--frames 128] [--threads 1] [--warmup 2] [--repeats 5]
"""

from audiosds.bench import run_script
from audiosds.bench.train_step import main

if __name__ == "__main__":
    run_script(main)
