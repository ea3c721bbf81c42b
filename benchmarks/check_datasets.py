"""The dataset contract's conformance suite on every built-in dataset: what
``seqfunc check --dataset NAME`` prints, for each dataset seqfunc itself registers, with the
time each takes (building the dataset included).

    python benchmarks/check_datasets.py [--examples 10]

A dataset whose data files are not on this machine is listed as not checked, with the reason.
Last line: JSON {NAME: {passed, failed, skipped, wall_s} or {error}, ...}.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

from seqfunc import registry
from seqfunc.errors import SeqfuncError
from seqfunc.testing.datasets import check_dataset


def check(name: str, examples: int) -> dict:
    start = time.perf_counter()
    try:
        report = check_dataset(
            registry.get_dataset(f"{registry.OWN_DIST}:{name}"), max_examples=examples, name=name
        )
    except SeqfuncError as exc:
        return {"error": str(exc)}
    summary = report.to_dict()
    return {
        "passed": summary["passed"],
        "failed": summary["failed"],
        "skipped": summary["skipped"],
        "wall_s": round(time.perf_counter() - start, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=10, help="Hypothesis examples per check")
    args = parser.parse_args()
    names = [e.name for e in registry.entries("datasets") if e.dist == registry.OWN_DIST]
    results = {}
    print(f"{'dataset':>14} {'pass':>5} {'fail':>5} {'skip':>5} {'seconds':>8}")
    for name in names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            results[name] = r = check(name, args.examples)
        if "error" in r:
            print(f"{name:>14}  not checked: {r['error']}")
        else:
            failed = "  FAILED: " + ", ".join(r["failed"]) if r["failed"] else ""
            print(
                f"{name:>14} {len(r['passed']):>5} {len(r['failed']):>5} {len(r['skipped']):>5} "
                f"{r['wall_s']:>8.1f}{failed}"
            )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
