"""Run the invariants that apply to a model class and report each with its shrunk counterexample.

    from seqfunc.testing import run_checks

    def test_my_model_invariants():
        report = run_checks(MyModel)          # every task kind it serves
        assert report.ok, report.summary()

Hypothesis draws the cases (derandomized: the same run every time), and when a check fails it
shrinks the case; the last failing case it replays is the minimal one, reported here.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from typing import Any

import attrs
import torch
from hypothesis import HealthCheck, Verbosity, given, settings

from seqfunc import rng
from seqfunc.testing.invariants import INVARIANTS, Invariant
from seqfunc.testing.probe import ProbeDataset, check_config, probe_dataset


@attrs.frozen
class Result:
    name: str  # the invariant, suffixed "[task]" when the model serves several task kinds
    status: str  # "pass" | "fail" | "skip"
    examples: int = 0
    seconds: float = 0.0
    counterexample: str | None = None
    error: str | None = None
    reason: str | None = None  # why skipped

    def line(self) -> str:
        if self.status == "pass":
            return f"PASS  {self.name}  ({self.examples} examples, {self.seconds:.1f}s)"
        if self.status == "skip":
            return f"SKIP  {self.name}: {self.reason}"
        return f"FAIL  {self.name}: {self.error}\n      counterexample: {self.counterexample}"


@attrs.frozen
class Report:
    model: str
    results: tuple[Result, ...]

    @property
    def passed(self) -> list[str]:
        return [r.name for r in self.results if r.status == "pass"]

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.results if r.status == "fail"]

    @property
    def skipped(self) -> list[str]:
        return [r.name for r in self.results if r.status == "skip"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        return "\n".join(r.line() for r in self.results)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "passed": self.passed,
            "failed": self.failed,
            "skipped": self.skipped,
        }

    def __getitem__(self, name: str) -> Result:
        return next(r for r in self.results if r.name == name)


def format_case(case: dict) -> str:
    """``src=[[4, 5, 2]] tgt_in=[[0, 6]] cut=1`` (tensors as nested lists)."""
    parts = []
    for key, value in case.items():
        if key == "inputs":
            parts.extend(f"{k}={v.tolist()}" for k, v in value.items())
        else:
            parts.append(f"{key}={value.tolist() if isinstance(value, torch.Tensor) else value}")
    return " ".join(parts)


def falsify(strategy, check, max_examples: int) -> tuple[int, dict | None, BaseException | None]:
    """Run ``check(case)`` on Hypothesis-drawn cases: (examples run, shrunk case, its error)."""
    seen = {"n": 0}

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        print_blob=False,
        report_multiple_bugs=False,
    )
    @given(strategy)
    def prop(case):
        seen["n"] += 1
        try:
            check(case)
        except Exception as exc:
            seen["case"], seen["error"] = case, exc
            raise

    try:
        prop()
    except Exception as exc:  # noqa: BLE001 - the failure is the result
        return seen["n"], seen.get("case"), seen.get("error", exc)
    return seen["n"], None, None


def _skip_reason(
    model_cls: type, inv: Invariant, probe: ProbeDataset, *, compile: bool, skip: Iterable[str]
) -> str | None:
    exempt = dict(getattr(model_cls, "exempt", None) or {})
    if inv.name in skip:
        return "skipped on request"
    if inv.name in exempt:
        return f"{model_cls.__name__} is exempt: {exempt[inv.name]}"
    if inv.slow and not compile:
        return "compilation skipped (--no-compile)"
    if inv.needs_field and not any(getattr(f, inv.needs_field) for f in probe.fields):
        return f"a {probe.task} model has no {inv.needs_field} input"
    if inv.needs_declared and getattr(model_cls, inv.needs_declared, None) is None:
        return f"{model_cls.__name__} declares no {inv.needs_declared} config"
    missing = [m for m in inv.needs_methods if not callable(getattr(model_cls, m, None))]
    if missing:
        return f"{model_cls.__name__} has no {' or '.join(missing)} method"
    return None


def run_checks(
    model_cls: type,
    *,
    name: str | None = None,
    tasks: Iterable[str] | None = None,
    only: Iterable[str] | None = None,
    skip: Iterable[str] = (),
    compile: bool = True,
    max_examples: int = 15,
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
) -> Report:
    """Check ``model_cls`` on every task kind it serves (or ``tasks``) with a tiny config
    (:func:`seqfunc.testing.probe.check_config`; ``overrides`` on top)."""
    tasks = tuple(tasks or model_cls.task_kinds)
    skip = set(skip)
    results = []
    with one_thread():
        for task in tasks:
            results.extend(
                _run_task(
                    model_cls,
                    task,
                    tasks,
                    only,
                    skip,
                    compile,
                    max_examples,
                    seed,
                    dict(overrides or {}),
                )
            )
    return Report(name or getattr(model_cls, "name", model_cls.__name__), tuple(results))


@contextlib.contextmanager
def one_thread():
    """Run torch on one intra-op thread, then restore. Check models are tiny: there a second
    thread only adds synchronisation, and on a busy machine it makes each call ~100x slower
    (measured: 1.7 ms vs 157 ms per apply of the check transformer at load 8 on 2 cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run_task(model_cls, task, tasks, only, skip, compile, max_examples, seed, overrides):
    """The results of every invariant on one task kind the model serves."""
    probe = probe_dataset(task)
    results = []
    for inv in INVARIANTS:
        if only is not None and inv.name not in only:
            continue
        label = inv.name if len(tasks) == 1 else f"{inv.name}[{task}]"
        reason = _skip_reason(model_cls, inv, probe, compile=compile, skip=skip)
        if reason:
            results.append(Result(label, "skip", reason=reason))
        else:
            results.append(_run_one(model_cls, inv, probe, label, max_examples, seed, overrides))
    return results


def _run_one(
    model_cls,
    inv: Invariant,
    probe: ProbeDataset,
    label: str,
    max_examples: int,
    seed: int,
    overrides: dict,
) -> Result:
    start = time.perf_counter()
    try:
        if inv.needs_declared:
            overrides = {**getattr(model_cls, inv.needs_declared), **overrides}
        model = model_cls(check_config(model_cls, probe.task, **overrides))
        params = model.init(rng.key(seed))
    except Exception as exc:  # noqa: BLE001 - a model that cannot be built fails every check
        return Result(
            label,
            "fail",
            seconds=time.perf_counter() - start,
            counterexample="(none: the model could not be built)",
            error=f"building the check model failed: {type(exc).__name__}: {exc}",
        )
    n = min(max_examples, inv.max_examples or max_examples)
    examples, case, error = falsify(
        inv.cases(probe), lambda c: inv.check(model, params, probe, c), n
    )
    seconds = time.perf_counter() - start
    if error is None:
        return Result(label, "pass", examples=examples, seconds=seconds)
    message = (
        str(error) if isinstance(error, AssertionError) else f"{type(error).__name__}: {error}"
    )
    return Result(
        label,
        "fail",
        examples=examples,
        seconds=seconds,
        counterexample=format_case(case) if case is not None else "(not recorded)",
        error=message,
    )
