"""MkDocs hook: pages that show what the code says, so they cannot drift from it.

A page containing the line ``<!-- seqfunc --help -->`` gets, in its place, ``seqfunc --help``
and one section per subcommand with its ``--help``, taken from the parser itself
(:func:`seqfunc.cli.build_parser`); ``<!-- dataset contract -->`` and
``<!-- model contract -->`` become the tables of :mod:`seqfunc.contracts`.
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


def contract_tables() -> dict[str, str]:
    from seqfunc.contracts import DATASET_CONTRACT, MODEL_CONTRACT, contract_table

    return {
        "<!-- dataset contract -->": contract_table(DATASET_CONTRACT),
        "<!-- model contract -->": contract_table(MODEL_CONTRACT),
    }


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, help_sections())
    for marker, table in contract_tables().items():
        markdown = markdown.replace(marker, table)
    return markdown
