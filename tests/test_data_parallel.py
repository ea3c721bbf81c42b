"""Data parallelism on torch.distributed (gloo, 2 ranks on the CPU, launched by torchrun):
N ranks compute what one process computes on the same global batches; a killed rank makes
torchrun restart the group, which resumes; two "nodes" on 127.0.0.1 rendezvous and train.

Every launch runs with a time-out and an environment tag; afterwards every process carrying
the tag is killed (torchrun detaches its workers into process groups of their own), so no process
outlives its test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seqfunc import cli

DRIVER = Path(__file__).with_name("run_driver.py")
TIMEOUT_S = 240
COMMON = [
    "--steps",
    "5",
    "-t",
    "log_every=1",
    "--eval-every",
    "5",
    "--examples",
    "0",
    "--no-progress",
]
#: One small run of each task kind, dropout on; imdb-synth's batches are bucketed.
DROPOUT = ["-m", "dropout=0.2"]
KINDS = {
    "seq2seq": [
        "train",
        "formula",
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
        "-d",
        "val_size=64",
        "-d",
        "epoch_size=160",
        "--eval-batches",
        "1",
        *DROPOUT,
    ],
    "language_model": [
        "train",
        "toy_grammar",
        "--batch-size",
        "8",
        "--d-model",
        "16",
        "--heads",
        "2",
        "--layers",
        "1",
        "--eval-batches",
        "1",
        *DROPOUT,
    ],
    "classification": ["train", "imdb-synth", "--batch-size", "32", *DROPOUT],
}
#: The compiled step (its all-reduce a traced functional collective) on one kind.
KINDS["language_model-compiled"] = [*KINDS["language_model"], "--compile"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TAG = "SEQFUNC_TEST_LAUNCH"


def kill_tagged(tag: str) -> None:
    """SIGKILL every process whose environment carries ``TAG=tag``."""
    marker = f"{TAG}={tag}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                os.kill(int(entry.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


def launch(commands: list[list[str]], env: dict | None = None) -> list[tuple[int, str, str]]:
    """Run the commands side by side, wait (bounded), kill all they started, whatever happened."""
    tag = uuid.uuid4().hex
    procs = [
        subprocess.Popen(
            c,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {}), TAG: tag},
        )
        for c in commands
    ]
    try:
        outputs = [p.communicate(timeout=TIMEOUT_S) for p in procs]
    finally:
        kill_tagged(tag)
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]


def torchrun(launcher_args: list[str], script: list[str], env: dict | None = None):
    return launch([[sys.executable, "-m", "torch.distributed.run", *launcher_args, *script]], env)[
        0
    ]


def standalone(nproc: int, argv: list[str], *, driver: list[str] | None = None, **kwargs):
    launcher = ["--standalone", "--nproc-per-node", str(nproc), *kwargs.pop("extra", [])]
    script = [str(DRIVER), *driver, "--", *argv] if driver else ["-m", "seqfunc", *argv]
    return torchrun(launcher, script, **kwargs)


def train_losses(run: Path) -> list[float]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r["loss"] for r in map(json.loads, lines) if r["split"] == "train"]


def params(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "params.safetensors")


def key_bias_slice(name: str, value: torch.Tensor) -> slice | None:
    """The key projection's part of a packed attention bias (``qkv``: q|k|v, ``kv``: k|v)."""
    d = value.shape[0] // (3 if name.endswith("qkv.bias") else 2)
    if name.endswith("qkv.bias"):
        return slice(d, 2 * d)
    if name.endswith(".kv.bias"):
        return slice(0, d)
    return None


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_two_ranks_compute_what_one_process_computes(tmp_path, kind):
    """Losses of every step and parameters after 5 steps, to float rounding (the sums over
    ranks add in another order): rtol 1e-5 on losses, atol 1e-5 on parameters. Dropout on:
    each rank draws the masks one process draws for its rows.

    One exception: the key projection's bias. Softmax is shift-invariant, so its exact
    gradient is zero and what either run computes is rounding noise, which Adam normalises
    into steps of up to lr: it is held to lr x steps (and the query and value parts of the
    same vector to 1e-5)."""
    argv = [*KINDS[kind], *COMMON]
    assert cli.main([*argv, "--out", str(tmp_path / "one")]) == 0
    code, _, err = standalone(2, [*argv, "--out", str(tmp_path / "two")])
    assert code == 0, err[-3000:]
    one, two = tmp_path / "one", tmp_path / "two"
    assert len(train_losses(two)) == 5
    torch.testing.assert_close(train_losses(two), train_losses(one), rtol=1e-5, atol=0)
    expected, lr = params(one), json.loads((one / "config.json").read_text())["train"]["lr"]
    for name, value in params(two).items():
        keys = key_bias_slice(name, value)
        if keys is not None:
            assert (value[keys] - expected[name][keys]).abs().max() <= lr * 5
            value, expected[name] = value.clone(), expected[name].clone()
            value[keys] = expected[name][keys] = 0
        torch.testing.assert_close(value, expected[name], rtol=0, atol=1e-5, msg=name)


XOR = [
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
]


@pytest.fixture(scope="module")
def two_rank_reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dp") / "ref"
    code, _, err = standalone(2, [*XOR, "--out", str(out)])
    assert code == 0, err[-3000:]
    return out


def test_killed_rank_restarts_the_group_which_resumes_to_the_same_end(tmp_path, two_rank_reference):
    run = tmp_path / "run"
    code, out, err = standalone(
        2,
        [*XOR, "--out", str(run)],
        driver=["kill", "10"],
        extra=["--max-restarts", "1"],
        env={"SEQFUNC_FAULT_RANK": "1"},
    )
    assert code == 0, err[-3000:]
    assert "failed (exitcode: -9) local_rank: 1" in err  # the kill, seen by the agent
    assert f"resuming {run} from step-00000008" in out  # the restarted group resumed
    assert (run / "params.safetensors").read_bytes() == (
        two_rank_reference / "params.safetensors"
    ).read_bytes()


def test_two_nodes_on_loopback_train_as_one_group(tmp_path, two_rank_reference):
    port, run = free_port(), tmp_path / "run"
    launcher = [
        "--nnodes",
        "2",
        "--nproc-per-node",
        "1",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"127.0.0.1:{port}",
        "--rdzv-id",
        "loopback",
    ]
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *launcher,
        "-m",
        "seqfunc",
        *XOR,
        "--out",
        str(run),
    ]
    results = launch([command, command])
    assert [code for code, _, _ in results] == [0, 0], [err[-2000:] for _, _, err in results]
    assert (run / "params.safetensors").read_bytes() == (
        two_rank_reference / "params.safetensors"
    ).read_bytes()


def test_a_config_error_is_printed_once_and_every_rank_exits(tmp_path):
    code, out, err = standalone(2, [*XOR, "--out", str(tmp_path / "r"), "-m", "dropout=2.0"])
    assert code != 0
    assert (out + err).count("dropout=2.0: must be in") == 1, err[-3000:]
