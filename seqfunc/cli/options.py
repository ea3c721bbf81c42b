"""Argument helpers shared by subcommands."""

from __future__ import annotations

from seqfunc.errors import UsageError


def parse_assignment(text: str) -> tuple[str, str]:
    """``"d_model=128"`` -> ``("d_model", "128")``. The value stays text: the config it goes
    to parses it by the field's type (:func:`seqfunc.config.typed_fields`)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), raw
