"""A resume never destroys a run, and a run folder has one writer.

A resume whose data file or config.json changed is refused in one line and leaves every file
of the run as it was; a second training on a live run folder (``--resume`` or the same
``--out``) is refused naming the holder of the folder's lock, and the lock dies with its
holder (SIGKILL); a resume shorter than the run so far, and names in ``checkpoints/`` that are
not checkpoints, are handled by every command.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seqfunc import cli
from seqfunc.runs.lock import LOCK_FILE

TIMEOUT_S = 120

#: A small run of a language model on a text file (the data file's vocabulary is saved).
TEXT = [
    "train",
    "text",
    "-d",
    "context=16",
    "--steps",
    "6",
    "--batch-size",
    "4",
    "--d-model",
    "16",
    "--heads",
    "2",
    "--layers",
    "1",
    "--eval-every",
    "3",
    "--checkpoint-every",
    "2",
    "--eval-batches",
    "1",
    "-t",
    "eval_batch_size=8",
    "--examples",
    "0",
    "--no-progress",
]
#: A small classification run, for runs started as processes.
XOR = [
    "train",
    "xor",
    "--model",
    "attention",
    "--steps",
    "12",
    "--batch-size",
    "16",
    "--eval-every",
    "6",
    "--checkpoint-every",
    "2",
    "-t",
    "log_every=2",
    "--examples",
    "0",
    "--no-progress",
]

#: ``python -c HOLD N FLAG -- ARGV``: ``seqfunc ARGV`` that, after its step N, creates
#: FLAG.held and waits until FLAG exists: a run that is surely live while the test acts.
HOLD = """
import os, sys, time
from seqfunc import cli
from seqfunc.runs import trainer
n, flag, argv = int(sys.argv[1]), sys.argv[2], sys.argv[4:]
original = trainer.Trainer.step
def step(self, state, batch, at, *args):
    out = original(self, state, batch, at, *args)
    if at + 1 == n:
        open(flag + ".held", "w").close()
        while not os.path.exists(flag):
            time.sleep(0.02)
    return out
trainer.Trainer.step = step
sys.exit(cli.main(argv))
"""


def text_file(folder: Path) -> Path:
    words = ["alpha", "beta", "gamma", "delta", "the", "cat", "sat", "on", "mat"]
    lines = [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(8)) for i in range(200)]
    path = folder / "notes.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    """A finished run on ``notes.txt``, named relative to the folder that holds both."""
    folder = tmp_path_factory.mktemp("text")
    text_file(folder)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        assert cli.main([*TEXT, "-d", "path=notes.txt", "--out", "run"]) == 0
    finally:
        os.chdir(cwd)
    return folder / "run"


@pytest.fixture
def run(tmp_path, text_run, monkeypatch) -> Path:
    """A copy of the finished text run and its data file, in the working directory."""
    shutil.copy(text_run.parent / "notes.txt", tmp_path / "notes.txt")
    shutil.copytree(text_run, tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "run"


def snapshot(folder: Path) -> dict[str, str | None]:
    """Every name under the run folder with its content's hash (None for a folder); the lock
    file is not part of the run."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        if p.is_file()
        else None
        for p in sorted(folder.rglob("*"))
        if p.name != LOCK_FILE
    }


def one_line_error(capsys, command: str = "train") -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"seqfunc {command}: error: ") and "\n" not in err, err
    assert "Traceback" not in err
    return err


def resume(run: Path, *flags: str) -> int:
    return cli.main(["train", "--resume", str(run), "--no-progress", *flags])


# -- a resume that does not fit is refused, and changes nothing ------------------------------


def test_changed_data_file_is_refused_and_the_run_is_untouched(run, capsys):
    before = snapshot(run)
    with open(run.parent / "notes.txt", "a", encoding="utf-8") as f:
        f.write("a café\n")  # characters the saved vocabulary does not have
    assert resume(run, "--steps", "10") == 2
    err = one_line_error(capsys)
    assert "text_vocab.json" in err and "'é'" in err and "restore it, or start a new run" in err
    assert snapshot(run) == before  # checkpoints, vocabulary, metrics, config: as they were
    assert not list((run / "checkpoints").glob("damaged-*"))


def test_resume_reads_the_saved_vocabulary_not_the_data_file(run, capsys):
    """A data file whose text the saved vocabulary still encodes: the resume continues with
    the saved vocabulary (the file's own would be smaller: it lost a character)."""
    vocab = (run / "text_vocab.json").read_bytes()
    data = run.parent / "notes.txt"
    data.write_text(data.read_text().replace("g", "a"), encoding="utf-8")
    assert resume(run, "--steps", "8") == 0
    assert (run / "text_vocab.json").read_bytes() == vocab
    assert json.loads((run / "state.json").read_text())["step"] == 8


def test_new_class_in_a_csv_file_is_refused_and_the_classes_kept(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    words = ["good", "bad", "fine", "dull"]
    rows = [
        f"{words[i % 4]} {words[(i * 3) % 4]} {words[(i + 1) % 4]},{('pos', 'neg')[i % 2]}"
        for i in range(60)
    ]
    Path("d.csv").write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert (
        cli.main(
            [
                "train",
                "csv",
                "-d",
                "path=d.csv",
                "--steps",
                "4",
                "--batch-size",
                "8",
                "--eval-every",
                "2",
                "--examples",
                "0",
                "--no-progress",
                "--out",
                "run",
            ]
        )
        == 0
    )
    capsys.readouterr()
    before = snapshot(tmp_path / "run")
    with open("d.csv", "a", encoding="utf-8") as f:
        f.write("good good,neutral\n")
    assert resume(tmp_path / "run", "--steps", "6") == 2
    err = one_line_error(capsys)
    assert "'neutral' is not among the classes saved with the run (classes.json: neg, pos)" in err
    assert snapshot(tmp_path / "run") == before


def edit_config(run: Path, **train_fields) -> None:
    config = json.loads((run / "config.json").read_text())
    for name, value in train_fields.items():
        if name in config["model"]["config"]:
            config["train"]["model_options"][name] = value
            config["model"]["config"][name] = value
        else:
            config["train"][name] = value
    (run / "config.json").write_text(json.dumps(config))


def test_edited_config_is_refused_naming_the_field(run, capsys):
    edit_config(run, d_model=8)
    before = snapshot(run)
    assert resume(run, "--steps", "10") == 2
    err = one_line_error(capsys)
    assert "d_model 16 -> 8" in err and "restore config.json" in err
    assert snapshot(run) == before
    assert not list((run / "checkpoints").glob("damaged-*"))


def test_edited_config_that_keeps_the_shapes_is_refused_too(run, capsys):
    edit_config(run, lr=0.5)
    before = snapshot(run)
    assert resume(run, "--steps", "10") == 2
    assert "train.lr 0.003 -> 0.5" in one_line_error(capsys)
    assert snapshot(run) == before


def drop_recorded_config(checkpoint: Path) -> None:
    """The checkpoint as one written without its config (the tensors still say what differs)."""
    state = json.loads((checkpoint / "state.json").read_text())
    state.pop("config", None)
    data = json.dumps(state).encode()
    (checkpoint / "state.json").write_bytes(data)
    manifest = json.loads((checkpoint / "manifest.json").read_text())
    manifest["files"]["state.json"] = {
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    (checkpoint / "manifest.json").write_text(json.dumps(manifest))


def test_checkpoint_whose_tensors_do_not_fit_is_refused_naming_the_tensor(run, capsys):
    drop_recorded_config(run / "checkpoints" / "step-00000006")
    edit_config(run, d_model=8)
    before = snapshot(run)
    assert resume(run, "--steps", "10") == 2
    err = one_line_error(capsys)
    assert "has shape (16, 16), the model expects (16, 8)" in err and "step-00000006" in err
    assert snapshot(run) == before


# -- resume edge cases -----------------------------------------------------------------------


def test_resume_with_fewer_steps_than_reached_is_refused(run, capsys):
    before = snapshot(run)
    assert resume(run, "--steps", "4") == 2
    err = one_line_error(capsys)
    assert "reached step 6" in err and "--steps 6 or more" in err
    assert snapshot(run) == before
    config = json.loads((run / "config.json").read_text())["train"]
    assert config["steps"] == json.loads((run / "state.json").read_text())["step"] == 6


def test_names_in_checkpoints_that_are_not_checkpoints_are_ignored(run, capsys):
    (run / "checkpoints" / "step-000000099").mkdir()  # step 99 spelt another way, empty
    (run / "checkpoints" / "step-99999999").write_text("not a checkpoint")
    (run / "params.safetensors").unlink()  # predict and generate read the newest checkpoint
    assert cli.main(["predict", str(run), "the cat", "--tokens", "3"]) == 0
    assert cli.main(["generate", str(run), "--tokens", "3"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert resume(run, "--steps", "8") == 0
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == sorted(["step-000000099", "step-00000006", "step-00000008", "step-99999999"])


# -- one writer per run folder -----------------------------------------------------------------


class Held:
    """``seqfunc ARGV`` as a process that holds still after step ``at`` until released."""

    def __init__(self, argv: list[str], flag: Path, at: int = 3):
        self.flag = flag
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(at), str(flag), "--", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_held(self) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not Path(f"{self.flag}.held").exists():
            assert self.proc.poll() is None, self.proc.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the run never reached its held step"
            time.sleep(0.05)

    def release(self) -> tuple[int, str]:
        self.flag.touch()
        _, err = self.proc.communicate(timeout=TIMEOUT_S)
        return self.proc.returncode, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT_S)


def run_cli(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "seqfunc", *argv], capture_output=True, text=True, timeout=TIMEOUT_S
    )


def assert_no_duplicate_records(run: Path) -> None:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    keys = [(r["step"], r["split"]) for r in records]
    assert len(keys) == len(set(keys)), keys


def test_resume_of_a_live_run_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "run"
    first = Held([*XOR, "--out", str(out)], tmp_path / "go")
    try:
        first.wait_held()
        second = run_cli(["train", "--resume", str(out), "--no-progress"])
        assert second.returncode == 2, second.stderr
        err = second.stderr.strip()
        assert "\n" not in err and "Traceback" not in err
        assert f"pid {first.proc.pid} on {socket.gethostname()}, started " in err
        code, stderr = first.release()
        assert code == 0, stderr[-2000:]
    finally:
        first.kill()
    assert_no_duplicate_records(out)
    assert json.loads((out / "state.json").read_text())["step"] == 12


def test_two_trainings_into_one_folder_one_is_refused(tmp_path):
    out = tmp_path / "run"
    runs = [Held([*XOR, "--out", str(out)], tmp_path / "go") for _ in range(2)]
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while all(r.proc.poll() is None for r in runs):  # the one refused ends first
            assert time.monotonic() < deadline, "neither training was refused"
            time.sleep(0.05)
        refused = next(r for r in runs if r.proc.poll() is not None)
        holder = next(r for r in runs if r is not refused)
        err = refused.proc.communicate()[1].strip()
        assert refused.proc.returncode == 2 and "\n" not in err, err
        assert f"pid {holder.proc.pid} on {socket.gethostname()}" in err
        holder.wait_held()
        code, stderr = holder.release()
        assert code == 0, stderr[-2000:]
    finally:
        for r in runs:
            r.kill()
    assert_no_duplicate_records(out)


def test_the_lock_dies_with_its_holder(tmp_path, capsys):
    out = tmp_path / "run"
    holder = Held([*XOR, "--out", str(out)], tmp_path / "go", at=5)
    try:
        holder.wait_held()
        os.kill(holder.proc.pid, signal.SIGKILL)
        holder.proc.wait(timeout=TIMEOUT_S)
    finally:
        holder.kill()
    assert (out / LOCK_FILE).exists()  # the file stays; the lock on it went with the process
    assert resume(out) == 0, capsys.readouterr().err
    assert "resuming" in capsys.readouterr().out
    assert_no_duplicate_records(out)
    assert json.loads((out / "state.json").read_text())["step"] == 12
