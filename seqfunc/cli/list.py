"""``seqfunc list``: every registered dataset and model, its origin package, version and status."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "list",
        help="list registered datasets and models (built-in and plugins)",
        description="List the datasets and models registered through the seqfunc.datasets and "
        "seqfunc.models entry points, with the package and version each comes from and whether "
        "it loads. A plugin that fails to import is shown with its error; the others still load. "
        "Set SEQFUNC_DISABLE_PLUGIN_AUTOLOAD=1 to see only seqfunc's own entries.",
    )
    p.add_argument(
        "group", nargs="?", choices=("datasets", "models"), default=None, help="only this group"
    )
    p.add_argument(
        "--no-load",
        action="store_true",
        help="read package metadata only; import no plugin code (status unknown)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from seqfunc import registry

    groups = [args.group] if args.group else list(registry.GROUPS)
    for group in groups:
        rows = registry.status(group, load=not args.no_load)
        if args.json:
            for row in rows:
                print(json.dumps(row.to_dict()))
            continue
        print(f"{group}:")
        if not rows:
            print("  (none)")
        width = max((len(_name(r)) for r in rows), default=0)
        for row in rows:
            e = row.entry
            origin = f"{e.dist} {e.version}"
            if args.no_load:
                state = "not loaded"
            elif row.ok:
                state = "ok  " + ", ".join(row.task_kinds)
            else:
                state = f"ERROR  {row.error}"
            print(f"  {_name(row):<{width}}  {origin:<22} {state}")
    return 0


def _name(row) -> str:
    """The name to ask for: ``dist:name`` when another distribution registers it too."""
    return row.entry.qualified_name if row.ambiguous else row.entry.name
