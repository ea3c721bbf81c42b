"""The command line: a tiny end-to-end run, and bad input reported in one line."""

import json
import subprocess
import sys

import pytest


def seqfunc(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "seqfunc", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = seqfunc(
        "train",
        "--steps",
        "30",
        "--batch-size",
        "32",
        "--d-model",
        "16",
        "--heads",
        "2",
        "--d-ff",
        "32",
        "-d",
        "val_size=64",
        "--eval-every",
        "15",
        "--no-progress",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "exact_match" in result.stdout and "token_accuracy" in result.stdout
    return out


def test_train_then_predict(run_dir):
    last_val = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    assert last_val["split"] == "val" and last_val["step"] == 30
    result = seqfunc("predict", str(run_dir), "123+123")
    assert result.returncode == 0, result.stderr
    answer = result.stdout.strip()
    assert answer == "" or set(answer) <= set("0123456789-+")  # untrained: any well-formed output


@pytest.mark.parametrize(
    "text, message",
    [
        ("12a+3", "not in the vocabulary"),
        ("", "empty"),
        ("123456+123456", "at most 10"),
    ],
)
def test_predict_bad_input_is_one_line_without_traceback(run_dir, text, message):
    result = seqfunc("predict", str(run_dir), text)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["-m", "d_model=30"], "d_model=30 must be divisible by heads=4"),
        (["--d-model", "-8"], "d_model=-8"),
        (["--batch-size", "0"], "batch_size=0"),
        (["--model", "nope"], "no model called 'nope'"),
        (["-d", "complexity=-1"], "complexity=-1"),
        (["-d", "colour=1"], "unknown field(s) colour"),
        (["-t", "b2=1.5"], "b2=1.5"),
        (["-t", "colour=1"], "unknown field(s) colour"),
    ],
)
def test_bad_config_is_one_line_naming_the_field(tmp_path, args, message):
    result = seqfunc("train", "--steps", "1", "--out", str(tmp_path / "r"), *args)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_predict_on_missing_run_folder(tmp_path):
    result = seqfunc("predict", str(tmp_path / "missing"), "1+1")
    assert result.returncode != 0 and "no such run folder" in result.stderr


def test_train_option_sets_any_train_config_field():
    from seqfunc.cli import build_parser
    from seqfunc.cli.train import resolve_config

    args = build_parser().parse_args(
        ["train", "-t", "b2=0.99", "-t", "weight_decay=0.05", "--lr", "0.02"]
    )
    cfg = resolve_config(args)
    assert (cfg.b2, cfg.weight_decay, cfg.lr) == (0.99, 0.05, 0.02)
