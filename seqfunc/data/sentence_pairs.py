"""Tab-separated sentence pairs (manythings.org / Tatoeba format) and d2l's preprocessing.

A file holds one pair per line, ``source<TAB>target`` (newer manythings files add a third
attribution column, which is ignored)::

    Go.	Va !
    I lost.	J'ai perdu.

:func:`read_pairs` returns the good pairs and a list of the bad lines (no tab, or an empty
side) with their line numbers, so a caller can skip and count them or stop on the first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from random import Random

import attrs

from seqfunc.config import ConfigError
from seqfunc.data.text_files import read_utf8

_SPACE_BEFORE_PUNCT = re.compile(r"(?<=\S)([,.!?])")


def preprocess(text: str) -> str:
    """d2l's ``_preprocess``: non-breaking spaces (U+00A0, U+202F) become spaces, lowercase, and
    a space goes before ``, . ! ?`` that follow a non-space.

    >>> preprocess("I lost.\u202fOK!")
    'i lost . ok !'
    """
    text = text.replace("\u202f", " ").replace("\xa0", " ").lower()
    return " ".join(_SPACE_BEFORE_PUNCT.sub(r" \1", text).split())


@attrs.frozen
class BadLine:
    line: int  # 1-based
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def parse_pairs(text: str) -> tuple[list[tuple[str, str]], list[BadLine]]:
    """``(pairs, bad_lines)`` from the text of a pair file; blank lines are ignored."""
    pairs: list[tuple[str, str]] = []
    bad: list[BadLine] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            bad.append(BadLine(number, "no tab between the two sentences"))
            continue
        source, target = fields[0].strip(), fields[1].strip()
        if not source or not target:
            bad.append(BadLine(number, f"empty {'source' if not source else 'target'} side"))
            continue
        pairs.append((source, target))
    return pairs, bad


def read_pairs(
    path: str | Path, *, bad_lines: str = "skip"
) -> tuple[list[tuple[str, str]], list[BadLine]]:
    """The pairs of a file. ``bad_lines="skip"`` drops bad lines (returned, so they can be
    counted and reported); ``"error"`` raises a :class:`ConfigError` naming the file and line."""
    pairs, bad = parse_pairs(read_utf8(path))
    if bad and bad_lines == "error":
        more = f" (and {len(bad) - 1} more bad lines)" if len(bad) > 1 else ""
        raise ConfigError(f"{path}:{bad[0].line}: {bad[0].reason}{more}")
    if not pairs:
        raise ConfigError(f"{path}: no sentence pairs (expected lines 'source<TAB>target')")
    return pairs, bad


def word_count(text: str) -> int:
    """Words as written (split on whitespace, before any preprocessing)."""
    return len(text.split())


def split_by_source(
    pairs: Sequence[tuple[str, str]], *, sizes: dict[str, int], seed: int
) -> dict[str, list[tuple[str, str]]]:
    """Pairs split so that no source sentence of a held-out split occurs in any other split.

    Held-out splits (every key of ``sizes``) take one pair per distinct source sentence, drawn
    with ``Random(seed)``; the other translations of a held-out source are dropped. Everything
    else is ``"train"``. Deterministic given the pairs, sizes and seed.
    """
    by_source: dict[str, list[tuple[str, str]]] = {}
    for pair in pairs:
        by_source.setdefault(pair[0], []).append(pair)
    sources = list(by_source)
    needed = sum(sizes.values())
    if needed >= len(sources):
        raise ConfigError(
            f"held-out sizes {sizes} need {needed} distinct source sentences but the data has "
            f"only {len(sources)}"
        )
    rng = Random(seed)
    rng.shuffle(sources)
    out: dict[str, list[tuple[str, str]]] = {}
    start = 0
    for split, size in sizes.items():
        out[split] = [
            by_source[s][rng.randrange(len(by_source[s]))] for s in sources[start : start + size]
        ]
        start += size
    out["train"] = [pair for s in sources[start:] for pair in by_source[s]]
    return out
