"""An independent AudioSet judge for the benchmarks: YAMNet (521 AudioSet classes), quantised ONNX.

The command line of :mod:`audiosds.bench.yamnet` (its docstring says what is measured and how).

    python benchmarks/yamnet.py --data SOUNDS_DIR [--folds 5] [--seconds 5]
    python benchmarks/yamnet.py --wav FILE [FILE ...] [--top 5]
"""

from audiosds.bench import run_script
from audiosds.bench.yamnet import main

if __name__ == "__main__":
    run_script(main)
