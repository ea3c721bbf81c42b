"""Argument helpers shared by subcommands."""

from __future__ import annotations

import json


def parse_assignment(text: str) -> tuple[str, object]:
    """``"d_model=128"`` -> ``("d_model", 128)``; values are JSON when they parse, else text."""
    from seqfunc.cli import UsageError

    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise UsageError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value
