"""Every command on dataset plugins that implement only the required contract
(plugins/seqfunc-minimal, registered through a fake distribution: no pip install)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seqfunc.cli import main
from seqfunc.testing import fake_distribution

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "seqfunc-minimal"
SMALL = ["-m", "d_model=16", "-m", "heads=2", "-m", "d_ff=32", "--no-progress", "-t", "examples=2"]


@pytest.fixture
def minimal(tmp_path, monkeypatch):
    entry_points = {
        "seqfunc.datasets": {
            "min-reverse": "seqfunc_minimal:MinimalReverse",
            "min-count": "seqfunc_minimal:MinimalCount",
            "min-order": "seqfunc_minimal:MinimalOrder",
        }
    }
    fake_distribution(tmp_path / "site", "seqfunc-minimal", "0.1.0", entry_points)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.syspath_prepend(str(PLUGIN))
    return tmp_path


def run(capsys, *argv) -> str:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Traceback" not in captured.err
    return captured.out


def test_minimal_plugins_are_listed_ok(minimal, capsys):
    rows = [json.loads(line) for line in run(capsys, "list", "datasets", "--json").splitlines()]
    mine = {r["name"]: r for r in rows if r["dist"] == "seqfunc-minimal"}
    assert {n: r["ok"] for n, r in mine.items()} == {
        "min-count": True,
        "min-order": True,
        "min-reverse": True,
    }


def test_seq2seq_plugin_trains_predicts_translates_and_draws_attention(minimal, capsys):
    out = minimal / "rev"
    log = run(
        capsys,
        "train",
        "min-reverse",
        "--model",
        "transformer",
        "--layers",
        "1",
        "--steps",
        "12",
        "--batch-size",
        "32",
        "--eval-every",
        "6",
        "--out",
        out,
        *SMALL,
    )
    assert "val " in log and " -> " in log  # evaluated, and printed samples (ids: no decode)
    assert (out / "params.safetensors").exists()
    prediction = run(capsys, "predict", out, "1234").strip()
    assert all(part.isdigit() for part in prediction.split())  # target ids, up to <eos>
    beam = run(capsys, "predict", out, "1234", "--beam", "2").strip()  # untrained: may be empty
    assert all(part.isdigit() for part in beam.split())
    assert len(run(capsys, "translate", out, "1234", "98").splitlines()) == 2
    drawn = run(capsys, "attention", out, "1234", "--out", minimal / "a.png")
    assert (minimal / "a.png").stat().st_size > 0 and "wrote" in drawn


def test_language_model_plugin_trains_with_evaluation_and_generates(minimal, capsys):
    out = minimal / "count"
    log = run(
        capsys,
        "train",
        "min-count",
        "--model",
        "gpt",
        "-m",
        "layers=1",
        "--steps",
        "8",
        "--batch-size",
        "32",
        "--eval-every",
        "4",
        "--out",
        out,
        *SMALL,
    )
    assert "bits_per_token" in log and "' -> '" in log  # evaluation, then samples
    text = run(capsys, "generate", out, "--tokens", "5").strip()
    ids = text.split()  # no decode() and a plain-list vocabulary: the ids, by spaces
    assert len(ids) == 6 and set(ids) <= set("01234567")  # the first token + 5 new
    code = main(["generate", str(out), "--prompt", "12"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "needs 'encode'" in err


def test_classification_plugin_trains(minimal, capsys):
    out = minimal / "order"
    log = run(
        capsys,
        "train",
        "min-order",
        "--model",
        "transformer-classifier",
        "-m",
        "blocks=1",
        "--steps",
        "6",
        "--batch-size",
        "32",
        "--out",
        out,
        *SMALL,
    )
    assert "accuracy" in log and (out / "params.safetensors").exists()
