"""The documentation: the site builds strictly, the README's commands parse, its tour runs,
its figures come from the results page, and nothing reads like a lab diary."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
TEST_COMMAND = "HYPOTHESIS_PROFILE=ci python -m pytest -q -n auto --dist loadfile"


def fenced_blocks(text: str, languages: tuple[str, ...]) -> list[str]:
    """The bodies of the ```LANG blocks of a Markdown text."""
    pattern = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
    return [body for lang, body in pattern.findall(text) if lang in languages]


def seqfunc_commands(text: str) -> list[list[str]]:
    """Every ``seqfunc ...`` command in the shell blocks (``a && seqfunc b`` and
    ``torchrun ... -m seqfunc b`` count too)."""
    commands = []
    for block in fenced_blocks(text, ("bash", "sh")):
        for line in block.replace("\\\n", " ").splitlines():  # continued lines joined
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words and words[0] == "seqfunc":
                    commands.append(words[1:])
                elif words and words[0] == "torchrun" and "seqfunc" in words:  # -m seqfunc ...
                    commands.append(words[words.index("seqfunc") + 1 :])
    return commands


def doc_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_readme_is_short():
    lines = README.read_text().count("\n")
    assert lines <= 300, f"README.md has {lines} lines; the rest belongs in docs/"


def test_ci_runs_the_readme_test_command():
    assert TEST_COMMAND in README.read_text(), f"README.md does not show `{TEST_COMMAND}`"
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert TEST_COMMAND in ci_lines, f".ci/run does not run `{TEST_COMMAND}`"


@pytest.mark.parametrize("page", doc_files(), ids=lambda p: p.name)
def test_every_documented_command_parses(page):
    """Each ``seqfunc`` line of a page names a real subcommand and real options."""
    from seqfunc.cli import build_parser
    from seqfunc.experiments import EXPERIMENTS

    parser = build_parser()
    for words in seqfunc_commands(page.read_text()):
        try:
            args = parser.parse_args(words)
            if args.command == "experiment":
                assert args.name in EXPERIMENTS, f"unknown experiment {args.name!r}"
                sub = argparse.ArgumentParser(prog=f"seqfunc experiment {args.name}")
                importlib.import_module(EXPERIMENTS[args.name]).add_arguments(sub)
                sub.parse_args(args.options)
        except SystemExit:
            pytest.fail(f"{page.name}: `seqfunc {' '.join(words)}` does not parse")


@pytest.mark.parametrize("page", doc_files(), ids=lambda p: p.name)
def test_every_picture_exists(page):
    for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text()):
        assert (page.parent / target).is_file(), f"{page.name} shows {target}, which is missing"


def test_readme_links_exist():
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text()):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README.md links to {target}, which is missing"


def load_run_all():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_page_is_rendered_from_the_stored_results():
    run_all = load_run_all()
    page = (DOCS / "results.md").read_text()
    assert page == run_all.render(run_all.load_store()), (
        "docs/results.md differs from its store: re-render it with "
        "`python benchmarks/run_all.py --render`, never edit it by hand"
    )


def test_readme_figures_are_copied_from_the_results_page():
    """Every bold figure of the README's task table appears on the results page."""
    readme = README.read_text()
    table = readme.split("## What you can train", 1)[1].split("\n## ", 1)[0]
    results = (DOCS / "results.md").read_text()
    figures = re.findall(r"\*\*([^*]+)\*\*", table)
    assert figures, "the README's task table shows no figure"
    missing = [f for f in figures if f"**{f}**" not in results]
    assert not missing, f"README figures not on docs/results.md: {missing}"


def test_the_readme_tour_runs(capsys):
    (tour,) = [b for b in fenced_blocks(README.read_text(), ("python",)) if "make_step" in b]
    exec(compile(tour, "README.md (tour)", "exec"), {})
    assert "loss after 100 steps" in capsys.readouterr().out


#: Diary wording: a numbered working period, or one referred to as this, the last or the next.
DIARY = re.compile(
    r"\bsess" r"ions?\s+\d|\b(this|last|next|previous|earlier|later|that)\s+sess" r"ion\b",
    re.I,
)


def repository_text_files() -> list[Path]:
    """The tracked text files: a virtual environment or run folder inside the checkout is not
    the product."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached"], cwd=ROOT, capture_output=True, text=True
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the tracked files are unknown")
    suffixes = {".py", ".md", ".toml", ".yml", ".yaml", ".txt", ".cfg", ""}
    names = listed.stdout.splitlines()
    return [ROOT / n for n in names if Path(n).suffix in suffixes and (ROOT / n).is_file()]


def test_nothing_reads_like_a_lab_diary():
    hits = []
    for path in repository_text_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if DIARY.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}")
    assert not hits, "diary wording (write what holds now, as facts):\n" + "\n".join(hits)


def test_the_site_builds_strictly(tmp_path):
    missing = [
        m for m in ("mkdocs", "mkdocstrings", "material") if importlib.util.find_spec(m) is None
    ]
    if missing:
        pytest.skip(
            f"the docs extra is not installed (no {', '.join(missing)}): pip install -e '.[docs]'"
        )
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    warnings = [line for line in done.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    assert done.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(
        warnings or [done.stderr[-2000:]]
    )
