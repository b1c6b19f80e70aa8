"""What an SDS iteration costs against what querying the prior costs (issue 6): ``benchmarks/perf.py``.

One module per part: ``measure`` (timers, peak RSS, the machine), ``work`` (the priors, the real
task loops, the floor and the plan), one per section (``iteration``: iter and scale, ``stft``,
``commands``: cli, ``profiling``: profile) and ``main`` (the command line; its docstring says what
each section measures and how).
"""
