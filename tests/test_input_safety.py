"""What a user or an adversary can feed a run that must not break it: learning rates and
updates that are not finite, stops of a multi-process run, and input files that are odd
(a byte-order mark, a huge CSV cell, a device or a FIFO), Ctrl-C at start-up, and a NaN in
``metrics.jsonl``. Each case is made real and the outcome checked from the outside."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.func import vmap

from seqfunc import cli, interrupts, optim
from seqfunc.data.csv_data import CsvConfig, CsvDataset
from seqfunc.data.text import TextConfig, TextDataset
from seqfunc.errors import RunInterrupted
from seqfunc.runs.folder import MetricsLog
from seqfunc.runs.plots import plot_metrics
from seqfunc.runs.signals import StopSignals
from seqfunc.train import init_state, make_step

XOR = [
    "train",
    "xor",
    "--steps",
    "4",
    "--batch-size",
    "32",
    "--eval-every",
    "4",
    "--examples",
    "0",
    "--no-progress",
]


# -- non-finite learning rates and updates ----------------------------------------------------


@pytest.mark.parametrize("flag", [["--lr", "inf"], ["-t", "lr=inf"], ["-t", "lr=Infinity"]])
def test_a_non_finite_learning_rate_is_refused_in_one_line(tmp_path, capsys, flag):
    out = tmp_path / "run"
    assert cli.main([*XOR, *flag, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "TrainConfig.lr=" in err and "must be" in err, err
    assert not out.exists()


def inf_at(step_to_break: int, lr: float = 0.1):
    """A schedule that is ``lr`` except at one step, where it is Inf (gradients stay finite)."""
    return lambda step: torch.where(step == step_to_break, torch.tensor(math.inf), torch.tensor(lr))


def test_a_finite_gradient_times_an_infinite_rate_is_skipped():
    opt = optim.apply_if_finite(optim.sgd(inf_at(1)))
    params = {"w": torch.ones(3), "b": torch.zeros(2)}
    state = opt.init(params)
    grads = {"w": torch.full((3,), 0.5), "b": torch.ones(2)}
    history = []
    for _ in range(3):
        updates, state = opt.update(grads, state, params)
        params = optim.apply_updates(params, updates)
        history.append((params["w"].clone(), int(state.skipped), int(state.streak)))
    (w1, s1, _), (w2, s2, streak2), (w3, s3, streak3) = history
    torch.testing.assert_close(w1, torch.full((3,), 1 - 0.1 * 0.5))
    # a skipped step does not advance the schedule, so the rate stays Inf: skipped again
    assert torch.equal(w2, w1) and torch.equal(w3, w1)
    assert (s1, s2, s3) == (0, 1, 2) and (streak2, streak3) == (1, 2)
    assert all(bool(torch.isfinite(p).all()) for p in params.values())


def test_an_update_that_overflows_a_parameter_is_skipped():
    """Gradient and update finite, their sum is not: 3e38 + 3e38 overflows float32."""
    opt = optim.apply_if_finite(optim.sgd(1e20))
    params = {"w": torch.tensor([3e38, 1.0])}
    state = opt.init(params)
    updates, state = opt.update({"w": torch.tensor([-3e18, 0.0])}, state, params)
    assert torch.equal(updates["w"], torch.zeros(2)) and int(state.skipped) == 1


def quadratic(params, batch, key):
    return ((params["w"] - batch["target"]) ** 2).sum(), {}


def test_the_train_step_skips_a_non_finite_update_and_keeps_the_parameters_finite():
    """The flattened step (the one ``seqfunc train`` runs), with the rate Inf at step 2."""
    opt = optim.flatten(optim.apply_if_finite(optim.adam(inf_at(2))))
    step = make_step(quadratic, opt)
    state = init_state({"w": torch.zeros(4)}, opt)
    batch = {"target": torch.arange(4.0)}
    seen = []
    for _ in range(4):
        state, metrics = step(state, batch, torch.zeros(2, dtype=torch.int64))
        assert bool(torch.isfinite(metrics["grad_norm"]))  # the gradient is finite throughout
        seen.append(state.params["w"].clone())
    assert not torch.equal(seen[1], seen[0])
    assert torch.equal(seen[2], seen[1]) and torch.equal(seen[3], seen[1])
    assert int(optim.finite_guard_state(state.opt_state).skipped) == 2
    assert bool(torch.isfinite(state.params["w"]).all())


def test_under_vmap_each_member_is_skipped_on_its_own():
    """Member 0's update overflows, member 1's does not: only member 0 keeps its parameters."""
    opt = optim.apply_if_finite(optim.sgd(lambda step: torch.tensor(1e10)))
    params = {"w": torch.ones(2, 3)}
    grads = {"w": torch.stack([torch.full((3,), 1e30), torch.ones(3)])}
    state = vmap(opt.init)(params)
    updates, state = vmap(opt.update)(grads, state, params)
    new = optim.apply_updates(params, updates)["w"]
    assert torch.equal(new[0], torch.ones(3)) and torch.equal(new[1], torch.full((3,), 1 - 1e10))
    assert state.skipped.tolist() == [1, 0]


# -- input files ------------------------------------------------------------------------------

BOM = "\ufeff"


def one_line_error(capsys, argv) -> str:
    """Run ``seqfunc argv``; it must fail with exit 2 and one line, no traceback."""
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def csv_rows(n=60):
    colours = {"red": "apple cherry rose", "green": "grass leaf frog", "blue": "sky sea ocean"}
    names = sorted(colours)
    return [(f"{colours[names[i % 3]]} {i}", names[i % 3]) for i in range(n)]


def test_a_csv_with_a_byte_order_mark_reads_its_header(tmp_path):
    path = tmp_path / "excel.csv"
    body = "text,label\r\n" + "".join(f"{t},{label}\r\n" for t, label in csv_rows())
    path.write_bytes((BOM + body).encode("utf-8"))  # Excel's "CSV UTF-8"
    data = CsvDataset(CsvConfig(path=str(path), val_size=6))
    assert data.classes == ("blue", "green", "red")


def test_a_tsv_and_a_jsonl_with_a_byte_order_mark_read(tmp_path):
    tsv = tmp_path / "data.tsv"
    tsv.write_text(
        BOM + "text\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in csv_rows()),
        encoding="utf-8",
    )
    jsonl = tmp_path / "data.jsonl"
    jsonl.write_text(
        BOM + "".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in csv_rows()),
        encoding="utf-8",
    )
    for path in (tsv, jsonl):
        assert CsvDataset(CsvConfig(path=str(path), val_size=6)).classes == ("blue", "green", "red")


def test_a_text_file_with_a_byte_order_mark_has_no_such_character(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text(BOM + "the cat sat on the mat\n" * 400, encoding="utf-8")
    data = TextDataset(TextConfig(path=str(path), unit="char"))
    assert BOM not in data.vocab and len(data.vocab) == len(set("the cat sat on the mat\n"))


def test_a_csv_cell_over_the_csv_modules_limit_is_read(tmp_path):
    huge = "word " * 40_000  # 200,000 characters, over the csv module's 131,072
    path = tmp_path / "huge.csv"
    rows = csv_rows()
    path.write_text(
        "text,label\n" + f'"{huge}",red\n' + "".join(f"{t},{label}\n" for t, label in rows),
        encoding="utf-8",
    )
    data = CsvDataset(CsvConfig(path=str(path), val_size=6))
    assert data.num_examples("train") + data.num_examples("val") == len(rows) + 1


def make_fifo(tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    return fifo


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
@pytest.mark.parametrize(
    "dataset", ["text", "csv", "pairs", "imdb", "shakespeare", "enwik8", "wikitext2", "fra-eng"]
)
def test_a_path_that_is_not_a_regular_file_is_refused_in_one_line(
    tmp_path, capsys, dataset, special
):
    path = make_fifo(tmp_path) if special == "fifo" else Path(special)
    err = one_line_error(
        capsys,
        [
            "train",
            dataset,
            "-d",
            f"path={path}",
            "--steps",
            "1",
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
        ],
    )
    assert str(path) in err and "not a regular file" in err, err


def test_a_val_path_that_is_a_fifo_is_refused(tmp_path, capsys):
    good = tmp_path / "train.csv"
    good.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in csv_rows()))
    fifo = make_fifo(tmp_path)
    err = one_line_error(
        capsys,
        [
            "train",
            "csv",
            "-d",
            f"path={good}",
            "-d",
            f"val_path={fifo}",
            "--steps",
            "1",
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
        ],
    )
    assert f"val_path={str(fifo)!r}" in err and "FIFO" in err, err


# -- metrics.jsonl ----------------------------------------------------------------------------


def strict(line: str):
    def refuse(word):
        raise ValueError(f"not strict JSON: {word}")

    return json.loads(line, parse_constant=refuse)


def test_metrics_jsonl_is_strict_json_with_a_nan_loss(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.write({"step": 1, "split": "train", "loss": math.nan, "grad_norm": math.inf, "lr": 0.1})
    log.write({"step": 2, "split": "val", "loss": 0.5, "accuracy": -math.inf})
    records = [strict(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records[0] == {"step": 1, "split": "train", "loss": None, "grad_norm": None, "lr": 0.1}
    assert records[1]["accuracy"] is None and records[1]["loss"] == 0.5
    reopened = MetricsLog(tmp_path / "metrics.jsonl", keep_lines=2)  # a resume reads them back
    assert reopened.records == records
    assert plot_metrics(reopened.records, tmp_path / "curves.png") in (
        None,
        tmp_path / "curves.png",
    )


# -- Ctrl-C at start-up -----------------------------------------------------------------------


def wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def sigint_as_in_a_terminal() -> None:
    """In the child before it runs: SIGINT at its default, as a command started in a terminal
    has it. A test run started in the background (``pytest &``) ignores SIGINT, its children
    inherit that, and seqfunc leaves an ignored SIGINT ignored while it starts."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def loading_torch(pid: int) -> bool:
    """Has the process started loading torch's libraries (so it runs seqfunc's imports)?"""
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.parametrize("delay_s", [0.0, 0.5, 1.5])
def test_ctrl_c_while_the_command_starts_exits_130_without_a_traceback(tmp_path, delay_s):
    """SIGINT as soon as torch starts loading, or later: inside torch's imports (where a
    KeyboardInterrupt could be swallowed, or abort from C++), building the run, or training;
    whichever, exit 130 and no traceback."""
    command = [
        sys.executable,
        "-m",
        "seqfunc",
        "train",
        "xor",
        "--steps",
        "100000",
        "--out",
        str(tmp_path / "run"),
        "--no-progress",
    ]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=sigint_as_in_a_terminal,
    )
    try:
        wait_for(lambda: loading_torch(proc.pid) or proc.poll() is not None, 60, "torch to load")
        time.sleep(delay_s)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert len(err.strip().splitlines()) <= 1, err


# -- stopping a multi-process run -------------------------------------------------------------

NPROC_XOR = [
    "train",
    "xor",
    "--steps",
    "24",
    "--batch-size",
    "32",
    "--checkpoint-every",
    "4",
    "--eval-every",
    "8",
    "--examples",
    "0",
    "-t",
    "log_every=2",
    "--no-progress",
    "--nproc",
    "2",
]
TAG = "SEQFUNC_TEST_INPUT_SAFETY"
#: Loaded by every Python process of the launched group (PYTHONPATH): rank 0 of the first
#: attempt signals its parent, the launcher, right after a chosen step, so the stop comes
#: mid-run whatever the machine's speed.
SIGNAL_PARENT = """
import os, signal
at, name = os.environ.get("SEQFUNC_TEST_SIGNAL_AT"), os.environ.get("SEQFUNC_TEST_SIGNAL")
restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
if at and os.environ.get("RANK") == "0" and restart == "0":
    from seqfunc.runs import trainer
    original = trainer.Trainer.step
    def step(self, state, batch, step, *args):
        out = original(self, state, batch, step, *args)
        if step + 1 == int(at):
            os.kill(os.getppid(), getattr(signal, name))
        return out
    trainer.Trainer.step = step
"""


def kill_tagged(tag: str) -> None:
    """SIGKILL every process left whose environment carries ``TAG=tag``."""
    marker = f"{TAG}={tag}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    os.kill(int(entry.name), signal.SIGKILL)
            except OSError:
                pass


def seqfunc_launch(argv: list[str], env: dict | None = None) -> tuple[int, str, str]:
    """``python -m seqfunc ARGV`` with a timeout; every process it started is killed after."""
    tag = os.urandom(8).hex()
    proc = subprocess.Popen(
        [sys.executable, "-m", "seqfunc", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {}), TAG: tag},
    )
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        kill_tagged(tag)
    return proc.returncode, out, err


@pytest.fixture(scope="module")
def nproc_reference(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("nproc") / "ref"
    code, _, err = seqfunc_launch([*NPROC_XOR, "--out", str(run)])
    assert code == 0, err[-3000:]
    return run


@pytest.mark.parametrize("name, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_to_the_launcher_is_one_clean_stop_and_resumes_bit_exact(
    tmp_path, nproc_reference, name, code
):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SIGNAL_PARENT)
    path = os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))
    run = tmp_path / "run"
    got, out, err = seqfunc_launch(
        [*NPROC_XOR, "--out", str(run)],
        {"PYTHONPATH": path, "SEQFUNC_TEST_SIGNAL_AT": "10", "SEQFUNC_TEST_SIGNAL": name},
    )
    assert got == code, err[-3000:]
    assert "Traceback" not in err and "SignalException" not in err, err[-3000:]
    assert err.count(f"Resume with: seqfunc train --resume {run}") == 1, err[-3000:]
    assert not (run / "params.safetensors").exists()  # stopped before the end
    got, _, err = seqfunc_launch(["train", "--resume", str(run), "--no-progress", "--nproc", "2"])
    assert got == 0, err[-3000:]
    assert (run / "params.safetensors").read_bytes() == (
        nproc_reference / "params.safetensors"
    ).read_bytes()


def test_a_user_error_under_nproc_is_reported_once_as_itself(nproc_reference):
    got, out, err = seqfunc_launch([*NPROC_XOR, "--out", str(nproc_reference)])
    assert got == 2
    assert (out + err).count("already holds a run") == 1, err[-3000:]
    assert "process group failed" not in err and "failed (exitcode" not in err, err[-3000:]


def test_a_ctrl_c_a_library_swallowed_at_start_up_stops_before_the_first_step():
    try:  # what the command's handler does, under a library's broad except
        interrupts._interrupt(signal.SIGINT, None)
    except KeyboardInterrupt:
        pass
    with pytest.raises(RunInterrupted) as info:
        with StopSignals():
            pass
    assert info.value.exit_code == 130 and "before the first step" in str(info.value)
    assert interrupts.take_pending() is None
