"""The benchmarks' code: each experiment of ``benchmarks/`` as an importable module.

``benchmarks/<name>.py`` is the command-line entry of ``audiosds.bench.<name>`` (``perf``: the
``perf`` subpackage); the tests import these modules directly. Shared pieces:

- ``report``: markdown reports (printed as they grow, written to ``--out``) and tables;
- ``keys``: job keys and the prior's identity (``separation`` and ``synthesis_curves`` run their jobs
  with ``audiosds batch``: run folders, resume, ``--workers`` on Ray);
- ``judge`` (world families from spectral features) and ``yamnet`` (AudioSet): judges that are
  not the prior;
- ``sao``: random Stable Audio Open folders in the diffusers layout (tiny for tests, full-shaped
  for ``perf``).

Layering (``tests/test_imports.py``): bench may import any part of audiosds, training included;
nothing else in audiosds imports bench.

Progress and notes go through one logger, ``audiosds.bench``; :func:`run_script` shows its INFO
records on stderr, bare, when a benchmark runs from the command line. Reports go to stdout.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import NoReturn

log = logging.getLogger("audiosds.bench")


def run_script(main: Callable[[], int | None]) -> NoReturn:
    """Run a benchmark's ``main`` as a command: its progress records on stderr, its return value
    the exit status (None: 0)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    sys.exit(main())
