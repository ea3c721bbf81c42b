"""Strict JSON lines: the records of ``metrics.jsonl`` as every JSON reader parses them.

Python's ``json`` writes a NaN or an infinite float as the bare words ``NaN`` / ``Infinity``,
which strict readers (jq, JavaScript's ``JSON.parse``) reject. A record's non-finite numbers
(a NaN loss) are written as ``null`` instead, and read back as ``None``.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite_or_null(value: Any) -> Any:
    """``value`` with every non-finite float, at any depth of dicts and lists, as None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return value


def strict_line(record: dict) -> str:
    """One line of strict JSON (no newline) for ``record``."""
    return json.dumps(finite_or_null(record), allow_nan=False)
