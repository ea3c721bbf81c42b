"""A sweep killed at any moment and resumed ends with the folder an uninterrupted sweep writes.

The faults are real (tests/run_driver.py): the sweep process SIGKILLs itself after a chosen
vmapped step or half-way through writing a job's checkpoint, or sends itself SIGTERM; the
sweep is then continued with ``seqfunc sweep --resume`` and every member's
``params.safetensors`` and ``opt_state.safetensors`` and the sweep's ``sweep.jsonl`` are
compared byte for byte, and its ``metrics.jsonl`` (timings aside) record for record, with a
sweep that was never interrupted.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from test_resume import drive, training_records

from seqfunc import cli

# 2 learning rates x 2 seeds, at most 2 members a step: two vmapped jobs of 12 steps each,
# checkpointed every 3 steps, dropout on so that the member keys matter.
SWEEP = [
    "sweep",
    "xor",
    "--model",
    "attention",
    "--steps",
    "12",
    "--batch-size",
    "32",
    "--dropout",
    "0.1",
    "--grid",
    "lr=1e-3,1e-2",
    "--seeds",
    "2",
    "--max-members",
    "2",
    "--eval-every",
    "4",
    "--checkpoint-every",
    "3",
    "-t",
    "log_every=2",
    "-d",
    "train_size=256",
    "-d",
    "val_size=64",
    "--no-progress",
]
COMPARED = ("params.safetensors", "opt_state.safetensors")


def resume(sweep: Path, fault: str = "none", step: int = 0):
    return drive(fault, step, ["sweep", "--resume", str(sweep)])


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "sweep"
    assert cli.main([*SWEEP, "--out", str(out)]) == 0
    return out


def assert_same_sweep(sweep: Path, ref: Path) -> None:
    names = sorted(p.name for p in (ref / "members").iterdir())
    assert sorted(p.name for p in (sweep / "members").iterdir()) == names
    for name in names:
        for file in COMPARED:
            a, b = sweep / "members" / name / file, ref / "members" / name / file
            assert a.read_bytes() == b.read_bytes(), f"{name}/{file} differs"
        a, b = sweep / "members" / name, ref / "members" / name
        assert training_records(a) == training_records(b), f"{name}/metrics.jsonl differs"
    assert (sweep / "sweep.jsonl").read_bytes() == (ref / "sweep.jsonl").read_bytes()
    assert not (sweep / "jobs").exists() or not any((sweep / "jobs").iterdir())


def test_sweep_killed_in_each_job_and_in_a_checkpoint_resumes_to_the_same_folder(
    tmp_path, reference
):
    sweep = tmp_path / "sweep"
    first = drive("kill", 8, [*SWEEP, "--out", str(sweep)])  # job 1, after its step-6 checkpoint
    assert first.returncode == -signal.SIGKILL, first.stderr[-2000:]
    assert (sweep / "jobs" / "job-001" / "checkpoints" / "step-00000006").is_dir()
    # Resumed from step 6, job 1 is killed half-way through writing its step-9 checkpoint;
    # resumed from step 6 again it finishes, and job 2 is killed after its step 5 (its step-3
    # checkpoint the newest); the last resume reads job 1 back and finishes job 2.
    for fault, step in [("kill-in-checkpoint", 9), ("kill", 5), ("none", 0)]:
        done = resume(sweep, fault, step)
        expected = 0 if fault == "none" else -signal.SIGKILL
        assert done.returncode == expected, f"{fault} {step}: {done.stderr[-2000:]}"
    assert "job 1/2: 2 members, already trained" in done.stdout
    assert_same_sweep(sweep, reference)


def test_sigterm_stops_a_sweep_with_its_resume_line(tmp_path, reference):
    sweep = tmp_path / "sweep"
    stopped = drive("SIGTERM", 4, [*SWEEP, "--out", str(sweep)])
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-2000:]
    checkpoint = sweep / "jobs" / "job-001" / "checkpoints" / "step-00000004"
    assert stopped.stderr.strip().splitlines()[-1] == (
        f"seqfunc sweep: SIGTERM at step 4: checkpoint written to {checkpoint}. "
        f"Resume with: seqfunc sweep --resume {sweep}"
    )
    assert not (sweep / "sweep.jsonl").exists()
    done = resume(sweep)
    assert done.returncode == 0, done.stderr[-2000:]
    assert_same_sweep(sweep, reference)


def test_resume_errors_name_the_folder(tmp_path, capsys):
    assert cli.main(["sweep", "--resume", str(tmp_path)]) == 2
    assert f"{tmp_path}: not a sweep folder (no sweep.json)" in capsys.readouterr().err
    sweep = tmp_path / "s"
    argv = [
        "sweep",
        "xor",
        "--model",
        "baseline",
        "--steps",
        "2",
        "--grid",
        "lr=1e-3,1e-2",
        "--no-progress",
        "--out",
        str(sweep),
    ]
    assert cli.main(argv) == 0
    assert cli.main(argv) != 0
    assert f"resume it with `seqfunc sweep --resume {sweep}`" in capsys.readouterr().err
    assert cli.main(["sweep", "--resume", str(sweep), "--grid", "lr=1"]) == 2
    assert "--grid cannot be combined with --resume" in capsys.readouterr().err
    assert cli.main(["sweep", "--resume", str(sweep)]) == 0  # finished: read back, rewritten
    assert "already trained" in capsys.readouterr().out
