"""The tiny Stable Audio Open folder of the tests, under its old import name (it lives in
:mod:`audiosds.bench.sao`, beside the full-shaped folder of ``benchmarks/perf.py``)."""

from audiosds.bench.sao import TINY_MAX_FRAMES, TINY_TEXT_TOKENS, build_tiny_stable_audio

__all__ = ["TINY_MAX_FRAMES", "TINY_TEXT_TOKENS", "build_tiny_stable_audio"]
