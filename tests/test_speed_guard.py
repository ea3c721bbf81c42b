"""The speed guard of benchmarks/run_all.py: ratios compared per CPU kind, a drop past the
tolerance fails, a job that no longer gives its ratio fails, a kind without stored rows passes
and says so."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_all():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _entry(cpu: str, **result) -> dict:
    return {
        "command": "python benchmarks/x.py",
        "date": "d",
        "commit": "c",
        "cpu": cpu,
        "load_before": 2.0,
        "status": "ok",
        "result": result,
        "wall_s": 1.0,
    }


def test_a_drop_past_the_tolerance_fails_and_noise_passes(run_all):
    job = run_all.Job("x", "x", ("python",), 1, str, speed=("ratio_compiled", "ratio_eager"))
    stored = _entry("AMD EPYC, AVX2", ratio_compiled=3.0, ratio_eager=1.3)
    now = _entry("AMD EPYC, AVX2", ratio_compiled=1.06, ratio_eager=1.2)
    compiled, eager = run_all.compare(job, stored, now)
    assert compiled.dropped(0.15) and not eager.dropped(0.15)  # -65 % and -8 %
    assert compiled.change() == pytest.approx(1.06 / 3.0 - 1)


def test_a_job_that_fails_or_lacks_its_ratio_is_a_drop_and_no_stored_row_is_not(run_all):
    job = run_all.Job("x", "x", ("python",), 1, str, speed=("ratio",))
    failed = {**_entry("AMD EPYC, AVX2"), "status": "exit 1: boom", "result": None}
    (gone,) = run_all.compare(job, _entry("AMD EPYC, AVX2", ratio=2.0), failed)
    assert gone.dropped(0.15) and gone.note == "exit 1: boom"
    (new,) = run_all.compare(job, None, _entry("AMD EPYC, AVX2", ratio=2.0))
    assert not new.dropped(0.15) and new.stored is None


def test_the_store_keeps_one_row_per_cpu_kind(run_all, tmp_path, monkeypatch):
    """An entry of the one-row-per-job layout is read under its recorded kind; the page
    shows a row per kind."""
    store = tmp_path / "results.json"
    store.write_text(
        '{"jobs": {"generate": '
        + __import__("json").dumps(_entry("AMD EPYC, AVX-512", speedup=6.0, compiled_speedup=1.1))
        + "}}"
    )
    monkeypatch.setattr(run_all, "STORE", store)
    rows = run_all.load_store()["jobs"]["generate"]
    assert list(rows) == ["AVX-512"]
    rows["AVX2"] = _entry(
        "AMD EPYC, AVX2",
        speedup=5.0,
        compiled_speedup=2.5,
        cached_tokens_per_s=1,
        uncached_tokens_per_s=1,
        compiled_tokens_per_s=1,
    )
    rows["AVX-512"]["result"].update(
        cached_tokens_per_s=1, uncached_tokens_per_s=1, compiled_tokens_per_s=1
    )
    page = run_all.render({"jobs": {"generate": rows}})
    lines = [line for line in page.splitlines() if "KV-cached generation" in line]
    assert len(lines) == 2 and "AVX-512" in lines[0] and "AVX2" in lines[1]


def test_stored_results_name_paths_inside_the_repository_relative_to_it(run_all, tmp_path):
    result = {
        "out": f"{tmp_path}/runs/x",
        "runs": [{"run_dir": f"{tmp_path}/runs/x/a"}],
        "elsewhere": "/data/file.txt",
        "n": 3,
    }
    assert run_all.relative_paths(result, tmp_path) == {
        "out": "runs/x",
        "runs": [{"run_dir": "runs/x/a"}],
        "elsewhere": "/data/file.txt",
        "n": 3,
    }
