"""MkDocs hook: the command-line page shows the current ``--help`` of every subcommand.

A page containing the line ``<!-- seqfunc --help -->`` gets, in its place, ``seqfunc --help``
and one section per subcommand with its ``--help``, taken from the parser itself
(:func:`seqfunc.cli.build_parser`), so the page cannot drift from the code.
"""

from __future__ import annotations

import argparse
import os

MARKER = "<!-- seqfunc --help -->"


def help_sections() -> str:
    """``seqfunc --help`` and each subcommand's help, as Markdown."""
    os.environ.setdefault("COLUMNS", "100")  # argparse wraps to the terminal width
    from seqfunc.cli import build_parser

    parser = build_parser()
    sections = ["```text", parser.format_help().rstrip(), "```"]
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        sections += ["", f"## seqfunc {name}", "", "```text", sub.format_help().rstrip(), "```"]
    return "\n".join(sections)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, help_sections())
