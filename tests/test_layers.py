"""The layers of docs/architecture.md: a module's path tells its layer, and no module imports a
layer above its own (imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import seqfunc

PACKAGE = Path(seqfunc.__file__).parent

#: Layer ranks: a module may import its own layer and those below.
RANKS = {"core": 0, "testing": 1, "inference": 1, "host": 2, "application": 3}

#: The first path component under seqfunc/ that is not core; everything else is core.
LAYER_OF_PACKAGE = {
    "inference": "inference",
    "testing": "testing",
    "runs": "host",
    "pretrained": "host",
    "cli": "application",
    "experiments": "application",
    "__main__.py": "application",
}


#: Edges across layers that docs/architecture.md allows: a task's evaluation decodes (greedy
#: decoding scores a seq2seq model; a language model's examples are sampled).
ALLOWED = {
    ("seqfunc.tasks.seq2seq", "seqfunc.inference.decode"),
    ("seqfunc.tasks.language_model", "seqfunc.inference.generate"),
}


def layer(module: str) -> str:
    """The layer of ``seqfunc.a.b`` (a dotted module name)."""
    parts = module.split(".")[1:]
    if not parts:
        return "core"
    first = parts[0] if parts[0] in LAYER_OF_PACKAGE else f"{parts[0]}.py"
    return LAYER_OF_PACKAGE.get(first, "core")


def imported_modules(path: Path) -> set[str]:
    """Every ``seqfunc...`` module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name == "seqfunc" or name.startswith("seqfunc.")}


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def existing(name: str) -> bool:
    """``from seqfunc.x import y`` names a module only when ``seqfunc/x/y(.py)`` exists."""
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or path.is_dir()


def test_layer_names_follow_the_paths():
    assert layer("seqfunc.runs.loop") == "host"
    assert layer("seqfunc.cli.train") == "application"
    assert layer("seqfunc.inference.generate") == "inference"
    assert layer("seqfunc.models.gpt") == "core" and layer("seqfunc.train") == "core"
    assert layer("seqfunc.pretrained.importer") == "host"


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        own = layer(name)
        for target in sorted(imported_modules(path)):
            if not existing(target):
                continue
            theirs = layer(target)
            above = RANKS[theirs] > RANKS[own]
            sideways = RANKS[theirs] == RANKS[own] and theirs != own  # inference vs testing
            if (above or sideways) and (name, target) not in ALLOWED:
                upward.append(f"{name} ({own}) imports {target} ({theirs})")
    assert not upward, "imports against the layers:\n" + "\n".join(upward)
