"""A run killed at any moment and resumed ends bit-identical to one never interrupted.

Each fault is real: the training process (tests/run_driver.py) SIGKILLs itself after a chosen
step or half-way through writing a checkpoint, or sends itself SIGINT/SIGTERM; the run is then
resumed with ``seqfunc train --resume`` and its final ``params.safetensors``,
``opt_state.safetensors`` and ``metrics.jsonl`` (timings aside) are compared with an
uninterrupted run of the same config (CPU, one thread in every process).
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from seqfunc import cli

DRIVER = Path(__file__).with_name("run_driver.py")
TIMEOUT_S = 240

# Small runs of each task kind, with dropout on so that the step keys matter.
XOR = [
    "train",
    "xor",
    "--model",
    "attention",
    "--steps",
    "40",
    "--batch-size",
    "32",
    "--dropout",
    "0.1",
    "--eval-every",
    "10",
    "--checkpoint-every",
    "6",
    "-t",
    "log_every=4",
    "--examples",
    "1",
    "--no-progress",
]
FORMULA = [
    "train",
    "formula",
    "--steps",
    "24",
    "--batch-size",
    "16",
    "--d-model",
    "16",
    "--heads",
    "2",
    "--layers",
    "1",
    "--d-ff",
    "32",
    "--dropout",
    "0.1",
    "--eval-every",
    "8",
    "--eval-batches",
    "1",
    "-d",
    "val_size=64",
    "-d",
    "epoch_size=160",
    "-t",
    "log_every=4",
    "-t",
    "warmup_steps=5",
    "--examples",
    "1",
    "--no-progress",
]
GRAMMAR = [
    "train",
    "toy_grammar",
    "--steps",
    "24",
    "--batch-size",
    "8",
    "--d-model",
    "16",
    "--heads",
    "2",
    "--layers",
    "1",
    "--dropout",
    "0.1",
    "--eval-every",
    "8",
    "--eval-batches",
    "1",
    "-t",
    "log_every=4",
    "-t",
    "warmup_steps=5",
    "--no-progress",
]


def drive(fault: str, step: int, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(DRIVER), fault, str(step), "--", *argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def resume(run: Path, fault: str = "none", step: int = 0) -> subprocess.CompletedProcess:
    return drive(fault, step, ["train", "--resume", str(run), "--no-progress"])


def reference(argv: list[str], out: Path) -> Path:
    """The uninterrupted run, in this process (one thread, as in the driver)."""
    assert cli.main([*argv, "--out", str(out)]) == 0
    return out


def training_records(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in records]


def assert_same_run(run: Path, ref: Path) -> None:
    for name in ("params.safetensors", "opt_state.safetensors"):
        assert (run / name).read_bytes() == (ref / name).read_bytes(), f"{name} differs"
    assert training_records(run) == training_records(ref)


@pytest.fixture(scope="module")
def xor_reference(tmp_path_factory) -> Path:
    return reference(XOR, tmp_path_factory.mktemp("ref") / "xor")


def test_sigkill_at_seeded_steps_then_resume_is_bit_identical(tmp_path, xor_reference):
    """Killed before its first checkpoint, at seeded random steps, and while a checkpoint is
    written; resumed after each kill (a resume of a resume of ...)."""
    run = tmp_path / "run"
    first = drive("kill", 2, [*XOR, "--out", str(run)])
    assert first.returncode == -signal.SIGKILL, first.stderr
    steps = sorted(random.Random(18).sample(range(7, 30), 2))
    faults = [("kill", steps[0]), ("kill", steps[1]), ("kill-in-checkpoint", 30), ("none", 0)]
    for fault, step in faults:
        done = resume(run, fault, step)
        expected = 0 if fault == "none" else -signal.SIGKILL
        assert done.returncode == expected, f"{fault} {step}: {done.stderr[-2000:]}"
    assert not list((run / "checkpoints").glob(".tmp-*")), "a partial checkpoint was left"
    assert_same_run(run, xor_reference)


@pytest.mark.parametrize(
    "sig, argv, at",
    [
        ("SIGINT", FORMULA, 11),  # seq2seq
        ("SIGTERM", GRAMMAR, 13),  # language model
        ("SIGTERM", XOR, 17),  # classification
    ],
)
def test_signal_writes_checkpoint_prints_resume_line_and_exits(tmp_path, sig, argv, at):
    ref = reference(argv, tmp_path / "ref")
    run = tmp_path / "run"
    stopped = drive(sig, at, [*argv, "--out", str(run)])
    signum = getattr(signal, sig)
    assert stopped.returncode == 128 + signum, stopped.stderr
    last_line = stopped.stderr.strip().splitlines()[-1]
    assert last_line == (
        f"seqfunc train: {sig} at step {at}: checkpoint written to "
        f"{run / 'checkpoints' / f'step-{at:08d}'}. Resume with: "
        f"seqfunc train --resume {run}"
    )
    assert not (run / "params.safetensors").exists()  # not finished
    assert resume(run).returncode == 0
    assert_same_run(run, ref)


def test_second_ctrl_c_exits_at_once_previous_checkpoint_whole(tmp_path, xor_reference):
    run = tmp_path / "run"
    stopped = drive("SIGINT2", 15, [*XOR, "--out", str(run)])
    assert stopped.returncode == 130, stopped.stderr
    assert "stopped at once at step 15" in stopped.stderr
    assert [p.name for p in sorted((run / "checkpoints").iterdir())] == [
        "step-00000006",
        "step-00000012",
    ]  # the one being written is gone, whole ones stay
    assert resume(run).returncode == 0
    assert_same_run(run, xor_reference)


def test_compiled_run_killed_and_resumed_is_bit_identical(tmp_path):
    """The compiled flat step restored from a checkpoint: the same graph on the same inputs,
    so bit-identical too."""
    argv = [*XOR, "--compile", "--steps", "16", "--model", "baseline"]
    ref = reference(argv, tmp_path / "ref")
    run = tmp_path / "run"
    assert drive("kill", 9, [*argv, "--out", str(run)]).returncode == -signal.SIGKILL
    done = resume(run)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_same_run(run, ref)
