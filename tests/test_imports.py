"""The package's layering: which subpackages may import which (STYLE.md, "a folder or file per concept").

Every ``import`` statement of every module is read from source (function-level imports included), so
a lazy import cannot hide a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "audiosds"


def _unit(module: str) -> str:
    """``audiosds.priors.base`` -> "priors"; ``audiosds.cli`` -> "cli"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _imports(path: Path, package: list[str] | None = None) -> set[str]:
    """The audiosds modules ``path`` imports (absolute names, relative imports resolved against
    ``package``, by default the file's own)."""
    if package is None:
        package = list(path.relative_to(SRC.parent).parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("audiosds")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("audiosds"):
                found.add(name)
                found |= {f"{name}.{a.name}" for a in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    """file (relative to the package) -> the units it imports, itself excluded."""
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        own = rel.split("/")[0].removesuffix(".py")
        units = {_unit(m) for m in _imports(path) if m.count(".") >= 1} - {own}
        out[rel] = {u for u in units if (SRC / u).is_dir() or (SRC / f"{u}.py").is_file()}
    return out


FORBIDDEN = {
    "priors": {"renderers", "tasks", "training", "cli", "options"},
    "renderers": {"priors", "tasks", "training", "cli", "options"},
    "models": {"priors", "renderers", "tasks", "training", "cli", "options", "scorer"},
    "tasks": {"training", "cli", "options"},
    "scorer": {"training", "tasks", "cli", "options"},
    "sds": {"training", "tasks", "renderers", "cli", "options"},
    "sampling": {"training", "tasks", "renderers", "cli", "options"},
    "world": {"priors", "renderers", "tasks", "training", "cli", "options", "models"},
    # training scripts import the networks from models/, never the priors that load them
    "training": {"priors", "renderers", "tasks", "cli", "options"},
}


@pytest.mark.parametrize("unit", sorted(FORBIDDEN))
def test_no_forbidden_import(unit: str) -> None:
    bad = [
        f"{file} imports {target}"
        for file, targets in _graph().items()
        if file.split("/")[0].removesuffix(".py") == unit
        for target in sorted(targets & FORBIDDEN[unit])
    ]
    assert not bad, bad


def test_nothing_outside_training_imports_training() -> None:
    """Except bench/: the benchmarks measure trained weights with the training code's own pieces."""
    bad = [
        f"{file} imports training"
        for file, targets in _graph().items()
        if not file.startswith(("training/", "bench/")) and "training" in targets
    ]
    assert not bad, bad


def test_nothing_outside_bench_imports_bench() -> None:
    """bench/ (the benchmarks) may import any part of the package; no part of it imports bench."""
    bad = [
        f"{file} imports bench"
        for file, targets in _graph().items()
        if not file.startswith("bench/") and "bench" in targets
    ]
    assert not bad, bad


def test_subpackages_form_no_cycle() -> None:
    edges: dict[str, set[str]] = {}
    for file, targets in _graph().items():
        unit = file.split("/")[0].removesuffix(".py")
        edges.setdefault(unit, set()).update(targets)
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [node])):
                return cycle
        state[node] = 2
        return None

    for unit in sorted(edges):
        if unit not in state:
            cycle = visit(unit, [])
            assert cycle is None, " -> ".join(cycle)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    path = tmp_path / "probe.py"
    path.write_text(
        "from .base import Prior\nfrom ..world import real\ndef f():\n    import audiosds.training.run\n"
    )
    found = _imports(path, ["audiosds", "priors"])
    assert {"audiosds.priors.base", "audiosds.world.real", "audiosds.training.run"} <= found
    assert {_unit(m) for m in found} >= {"priors", "world", "training"}
