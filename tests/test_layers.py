"""Imports go downward only: a core module never imports the host (seqfunc.runs), the
command line or the experiments, not even inside a function."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "seqfunc"
CORE = [
    "rng.py",
    "tree.py",
    "optim.py",
    "train.py",
    "members_step.py",
    "compiled.py",
    "contracts.py",
    "nn",
    "models",
    "data",
    "tasks",
]
ABOVE = ("seqfunc.runs", "seqfunc.cli", "seqfunc.experiments")


def core_files() -> list[Path]:
    files = []
    for name in CORE:
        path = PACKAGE / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def imported(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_core_module_imports_nothing_above_the_core(path):
    bad = [name for name in imported(path) if name.startswith(ABOVE)]
    assert not bad, f"{path.relative_to(PACKAGE)} imports {', '.join(bad)}"
