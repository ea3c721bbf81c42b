"""One host loop for a run, an ensemble and a sweep.

The same configuration ends with the same parameters whether ``seqfunc train``, an ensemble
or a sweep trains it: bit for bit where a member is alone (it takes the run's step), to the
ensemble test's tolerance in a vmapped step of two members (its kernels sum in another order).
Each of the three, killed with SIGKILL mid-run (tests/run_driver.py) and resumed, ends with
the parameters and optimizer state of its uninterrupted run, bit for bit.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch
from run_driver import ensemble as driver_ensemble
from safetensors.torch import load_file
from test_resume import drive

from seqfunc import cli
from seqfunc.runs import files

# 12 steps with dropout (the keys matter), checkpoints every 3 steps.
FLAGS = [
    "xor",
    "--model",
    "attention",
    "--steps",
    "12",
    "--batch-size",
    "32",
    "--lr",
    "0.01",
    "--dropout",
    "0.1",
    "--eval-every",
    "4",
    "--checkpoint-every",
    "3",
    "-d",
    "train_size=256",
    "-d",
    "val_size=64",
    "--no-progress",
]
TRAIN = ["train", *FLAGS]
SWEEP_FLAGS = ["--seeds", "1", *FLAGS[1:]]  # seed 0, as the run
#: the tolerance of tests/test_ensemble.py between a vmapped member and its run
TOLERANCE = {"atol": 2e-5, "rtol": 1e-4}


def ensemble(out: Path, seeds: str) -> list[str]:
    """run_driver's ensemble command: fit_ensemble of TRAIN's config into ``out``."""
    return ["ensemble", str(out), seeds, *FLAGS]


def sweep(out: Path, lrs: str) -> list[str]:
    return ["sweep", FLAGS[0], "--grid", f"lr={lrs}", *SWEEP_FLAGS, "--out", str(out)]


def run_ensemble(argv: list[str]) -> None:
    """The driver's ensemble command, in this process."""
    assert driver_ensemble(*argv[1:]) == 0


def member_folders(folder: Path) -> list[Path]:
    return sorted((folder / files.MEMBERS).iterdir())


def params(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / files.PARAMS)


def same_bytes(a: Path, b: Path) -> bool:
    return all(
        (a / name).read_bytes() == (b / name).read_bytes()
        for name in (files.PARAMS, files.OPT_STATE)
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """``seqfunc train`` of TRAIN, uninterrupted, in this process."""
    out = tmp_path_factory.mktemp("run") / "run"
    assert cli.main([*TRAIN, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def vmapped(tmp_path_factory) -> dict[str, Path]:
    """An ensemble of seeds 0 and 1 and a sweep of two learning rates (TRAIN's first), each
    two members in one vmapped step, uninterrupted, in this process."""
    root = tmp_path_factory.mktemp("vmapped")
    run_ensemble(ensemble(root / "ensemble", "0,1"))
    assert cli.main(sweep(root / "sweep", "0.01,0.03")) == 0
    return {"ensemble": root / "ensemble", "sweep": root / "sweep"}


def test_a_run_an_ensemble_member_and_a_sweep_member_end_with_the_same_parameters(
    tmp_path, run, vmapped
):
    run_ensemble(ensemble(tmp_path / "ensemble", "0"))  # one member: the run's step
    assert cli.main(sweep(tmp_path / "sweep", "0.01")) == 0
    for folder in (tmp_path / "ensemble", tmp_path / "sweep"):
        (member,) = member_folders(folder)
        assert same_bytes(member, run), f"{member} differs from the run"
    want = params(run)
    for name, folder in vmapped.items():
        first = member_folders(folder)[0]  # seed 0, lr 0.01: the run's configuration
        got = params(first)
        assert got.keys() == want.keys()
        for key in want:
            torch.testing.assert_close(got[key], want[key], **TOLERANCE, msg=f"{name} {key}")
        assert not torch.equal(params(member_folders(folder)[1])[key], want[key])


@pytest.mark.parametrize("kind", ["train", "ensemble", "sweep"])
def test_killed_with_sigkill_and_resumed_ends_bit_for_bit_as_uninterrupted(
    tmp_path, run, vmapped, kind
):
    out = tmp_path / kind
    start = {
        "train": [*TRAIN, "--out", str(out)],
        "ensemble": ensemble(out, "0,1"),
        "sweep": sweep(out, "0.01,0.03"),
    }[kind]
    again = {
        "train": ["train", "--resume", str(out), "--no-progress"],
        "ensemble": start,
        "sweep": ["sweep", "--resume", str(out)],
    }[kind]
    killed = drive("kill", 8, start)  # after step 8: its step-6 checkpoint is the newest
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    checkpoints = out / files.JOBS / "job-001" if kind == "sweep" else out
    assert (checkpoints / files.CHECKPOINTS / "step-00000006").is_dir()
    assert not (checkpoints / files.CHECKPOINTS / "step-00000009").exists()
    done = drive("none", 0, again)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming" in done.stdout + done.stderr
    if kind == "train":
        assert same_bytes(out, run)
        return
    ref = vmapped[kind]
    pairs = list(zip(member_folders(out), member_folders(ref)))
    assert len(pairs) == 2 and all(a.name == b.name for a, b in pairs)
    for member, want in pairs:
        assert same_bytes(member, want), f"{member.name} differs from the uninterrupted one"
