"""End to end, as a third party sees it: a fresh virtual environment, `pip install` of seqfunc and
of the example plugins (plugins/seqfunc-reverse: datasets `reverse` and `sort`; plugins/seqfunc-gru:
model `gru`), then the venv's own `seqfunc` executable lists, trains and checks them. Then a
deliberately broken plugin (plugins/seqfunc-broken, raises on import) is installed: it is
reported with its error while the others still list and train.

Slow (about 2-4 minutes: most of it is pip installing torch from the local wheel) but part of
the default run; `-m "not slow"` leaves it out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PLUGINS = REPO / "plugins"
TORCH = "torch==2.13.0"  # pinned: never an unpinned torch


def _env() -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "SEQFUNC_DISABLE_PLUGIN_AUTOLOAD")
    }
    env["OMP_NUM_THREADS"] = "1"  # tiny models on a shared 2-core machine
    return env


def run(*cmd, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, env=_env(), cwd=cwd, timeout=timeout
    )


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (
        f"{' '.join(result.args)} exited {result.returncode}\n{result.stdout[-3000:]}\n"
        f"{result.stderr[-3000:]}"
    )
    return result


@pytest.fixture(scope="module")
def bin_dir(tmp_path_factory) -> Path:
    """A fresh venv with torch, seqfunc (from this checkout) and the two example plugins."""
    root = tmp_path_factory.mktemp("plugin-venv")
    venv.EnvBuilder(with_pip=True, clear=True).create(root / "venv")
    bin_dir = root / "venv" / ("Scripts" if sys.platform == "win32" else "bin")
    pip = [bin_dir / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    ok(run(*pip, TORCH))
    ok(run(*pip, REPO, PLUGINS / "seqfunc-reverse", PLUGINS / "seqfunc-gru"))
    return bin_dir


def list_json(bin_dir: Path) -> dict[str, dict]:
    out = ok(run(bin_dir / "seqfunc", "list", "--json")).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    return {row["name"]: row for row in rows}


def train(bin_dir: Path, out: Path, dataset: str, *options: str) -> subprocess.CompletedProcess:
    return run(
        bin_dir / "seqfunc",
        "train",
        dataset,
        *options,
        "--steps",
        "3",
        "--batch-size",
        "16",
        "--eval-every",
        "3",
        "--no-progress",
        "-d",
        "val_size=16",
        "--out",
        out,
    )


def assert_trained(out: Path) -> None:
    records = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert any(r["split"] == "val" and r["step"] == 3 for r in records)
    assert (out / "params.safetensors").exists()


def test_example_plugins_list_train_and_pass_check(bin_dir, tmp_path):
    rows = list_json(bin_dir)
    for name, dist in (
        ("reverse", "seqfunc-reverse"),
        ("sort", "seqfunc-reverse"),
        ("gru", "seqfunc-gru"),
    ):
        assert rows[name]["ok"], rows[name]
        assert (rows[name]["dist"], rows[name]["version"]) == (dist, "0.1.0")
        assert rows[name]["task_kinds"] == ["seq2seq"]
    assert rows["transformer"]["dist"] == "seqfunc" and rows["transformer"]["ok"]

    # plugin dataset x plugin model, plugin dataset x built-in model, built-in dataset x plugin model
    ok(train(bin_dir, tmp_path / "reverse-gru", "reverse", "--model", "gru", "-d", "train_size=64"))
    assert_trained(tmp_path / "reverse-gru")
    ok(train(bin_dir, tmp_path / "sort-transformer", "sort", "-d", "train_size=64"))
    assert_trained(tmp_path / "sort-transformer")
    ok(train(bin_dir, tmp_path / "formula-gru", "formula", "--model", "gru", "-d", "epoch_size=64"))
    assert_trained(tmp_path / "formula-gru")

    check = run(bin_dir / "seqfunc", "check", "gru", "--no-compile", "--examples", "5")
    ok(check)
    lines = check.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["model"] == "gru" and summary["failed"] == []
    assert {
        "causal",
        "padding_invariance",
        "batch_invariance",
        "vmap_equals_loop",
        "determinism",
    } <= set(summary["passed"])
    assert any(l.startswith("PASS  causal") for l in lines)


def test_a_broken_plugin_is_reported_and_the_others_still_work(bin_dir, tmp_path):
    pip = [bin_dir / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    ok(run(*pip, PLUGINS / "seqfunc-broken"))
    try:
        rows = list_json(bin_dir)
        for name in ("broken-model", "broken-dataset"):
            row = rows[name]
            assert not row["ok"] and (row["dist"], row["version"]) == ("seqfunc-broken", "0.0.1")
            assert "RuntimeError: seqfunc-broken fails on import on purpose" in row["error"]
        assert all(rows[n]["ok"] for n in ("reverse", "sort", "gru", "transformer", "formula"))

        table = ok(run(bin_dir / "seqfunc", "list")).stdout
        line = next(l for l in table.splitlines() if l.strip().startswith("broken-model"))
        assert "seqfunc-broken 0.0.1" in line and "ERROR" in line

        ok(
            train(
                bin_dir,
                tmp_path / "still-trains",
                "reverse",
                "--model",
                "gru",
                "-d",
                "train_size=64",
            )
        )
        assert_trained(tmp_path / "still-trains")

        refused = train(bin_dir, tmp_path / "no", "reverse", "--model", "broken-model")
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert "seqfunc-broken 0.0.1" in refused.stderr and "RuntimeError" in refused.stderr
    finally:
        run(*pip[:3], "uninstall", "-y", "-q", "seqfunc-broken")
