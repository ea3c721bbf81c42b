"""Datasets and models from entry points: seqfunc's own and third parties' alike.

Groups: ``seqfunc.datasets`` and ``seqfunc.models``. An entry's value is ``module:attribute``
naming a class that follows :mod:`seqfunc.contracts`. Listing reads package metadata only and
imports no plugin code; an entry is imported when it is first asked for, and an entry that fails
to import is reported with its distribution, version and error without affecting the others.

A name that two distributions register is ambiguous: ask for ``dist:name``. Set
``SEQFUNC_DISABLE_PLUGIN_AUTOLOAD=1`` to see only seqfunc's own entries.

:func:`status` is the view ``seqfunc list`` prints: every entry with its origin and whether it
imports and follows its contract, one broken plugin never hiding the others.
"""

from __future__ import annotations

import importlib
import os
from importlib import metadata
from typing import Any

import attrs

from seqfunc.errors import RegistryError  # re-exported from here too

GROUPS = {"datasets": "seqfunc.datasets", "models": "seqfunc.models"}
DISABLE_ENV = "SEQFUNC_DISABLE_PLUGIN_AUTOLOAD"
OWN_DIST = "seqfunc"


@attrs.frozen
class Entry:
    group: str  # "datasets" | "models"
    name: str
    value: str  # "module:attribute"
    dist: str
    version: str

    @property
    def qualified_name(self) -> str:
        return f"{self.dist}:{self.name}"

    def load(self) -> Any:
        try:
            module_name, _, attr = self.value.partition(":")
            obj = importlib.import_module(module_name)
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
            return obj
        except Exception as exc:  # a plugin may fail in any way: report, don't crash
            raise RegistryError(
                f"{self.group[:-1]} {self.name!r} from {self.dist} {self.version} "
                f"({self.value}) failed to load: {type(exc).__name__}: {exc}"
            ) from exc


def _autoload_disabled() -> bool:
    return os.environ.get(DISABLE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def entries(group: str) -> list[Entry]:
    """Every entry of a group (``"datasets"`` or ``"models"``), without importing any."""
    if group not in GROUPS:
        raise RegistryError(f"unknown registry group {group!r}; groups: {', '.join(GROUPS)}")
    found = []
    seen = set()
    for ep in metadata.entry_points(group=GROUPS[group]):
        dist = ep.dist.metadata["Name"] if ep.dist is not None else "unknown"
        version = ep.dist.version if ep.dist is not None else "?"
        if _autoload_disabled() and dist != OWN_DIST:
            continue
        if (dist, ep.name) in seen:  # the same distribution seen twice on sys.path
            continue
        seen.add((dist, ep.name))
        found.append(Entry(group, ep.name, ep.value, dist, version))
    return sorted(found, key=lambda e: (e.name, e.dist))


def find(group: str, name: str) -> Entry:
    """The entry called ``name`` (or ``dist:name``), or a RegistryError saying why not."""
    all_entries = entries(group)
    dist, _, short = name.rpartition(":")
    matches = [e for e in all_entries if e.name == short and (not dist or e.dist == dist)]
    if not matches:
        known = ", ".join(sorted({e.name for e in all_entries})) or "none"
        raise RegistryError(f"no {group[:-1]} called {name!r}; known {group}: {known}")
    if len(matches) > 1:
        options = ", ".join(f"{e.qualified_name} ({e.dist} {e.version})" for e in matches)
        raise RegistryError(
            f"{group[:-1]} name {name!r} is registered by {len(matches)} distributions: "
            f"{options}; ask for one by its qualified name"
        )
    return matches[0]


def get(group: str, name: str) -> Any:
    """The loaded class of an entry, checked against its contract (:mod:`seqfunc.contracts`)."""
    from seqfunc.contracts import contract_problems

    entry = find(group, name)
    obj = entry.load()
    problems = contract_problems(group, obj)
    if problems:
        raise RegistryError(
            f"{group[:-1]} {entry.name!r} from {entry.dist} {entry.version} ({entry.value}) "
            f"does not follow the {group[:-1]} contract: {'; '.join(problems)}"
        )
    return obj


@attrs.frozen
class Status:
    """One entry as ``seqfunc list`` shows it: where it comes from and whether it loads.

    ``error`` is None when the entry imports and follows its contract; ``ambiguous`` is True
    when another distribution registers the same name (then only ``dist:name`` reaches it).
    """

    entry: Entry
    error: str | None
    task_kinds: tuple[str, ...] = ()
    ambiguous: bool = False
    loaded: bool = True

    @property
    def ok(self) -> bool | None:
        """True when it loads and follows its contract; None when it was not loaded."""
        return None if not self.loaded else self.error is None

    def to_dict(self) -> dict:
        e = self.entry
        return {
            "group": e.group,
            "name": e.name,
            "qualified_name": e.qualified_name,
            "dist": e.dist,
            "version": e.version,
            "value": e.value,
            "ok": self.ok,
            "loaded": self.loaded,
            "error": self.error,
            "task_kinds": list(self.task_kinds),
            "ambiguous": self.ambiguous,
        }


def status(group: str, *, load: bool = True) -> list[Status]:
    """Every entry of a group with its load status; never raises for a broken plugin.

    ``load=False`` imports nothing (status unknown: ``loaded`` False, ``ok`` None, no task kinds).
    """
    from seqfunc.contracts import contract_problems, task_kinds_of

    all_entries = entries(group)
    counts: dict[str, int] = {}
    for e in all_entries:
        counts[e.name] = counts.get(e.name, 0) + 1
    out = []
    for e in all_entries:
        error, kinds = None, ()
        if load:
            try:
                obj = e.load()
                problems = contract_problems(group, obj)
                if problems:
                    error = f"does not follow the {group[:-1]} contract: {'; '.join(problems)}"
                else:
                    kinds = task_kinds_of(obj)
            except RegistryError as exc:
                cause = exc.__cause__
                error = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
            except Exception as exc:  # contract inspection of a hostile object
                error = f"{type(exc).__name__}: {exc}"
        out.append(Status(e, error, kinds, counts[e.name] > 1, loaded=load))
    return out


def get_dataset(name: str) -> type:
    return get("datasets", name)


def get_model(name: str) -> type:
    return get("models", name)
