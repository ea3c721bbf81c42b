"""Sharded optimizer state (ZeRO-1) under data parallelism: gloo, 2 ranks on the CPU.

Sharded, each rank holds half the optimizer state and the run ends where plain data
parallelism ends, clipping by the global norm included; a checkpoint written by 2 sharded
ranks holds the whole state, and moves between 1 process and 2 ranks either way.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from sharded_worker import CONFIG, STEPS
from test_data_parallel import DRIVER, key_bias_slice, launch, params, standalone, torchrun

from seqfunc import cli
from seqfunc.runs.config import TrainConfig
from seqfunc.runs.trainer import Trainer
from seqfunc.sharding import Sharding, gather_state, slice_state

WORKER = Path(__file__).with_name("sharded_worker.py")
XOR_FIELDS = {"dataset": "xor", "model": "attention", "model_options": {"positions": True}}


def assert_same_params(got: dict, expected: dict, noise: float, atol: float) -> None:
    """Equal to ``atol``, but for the key projection's bias, held to ``noise`` (lr x steps):
    its exact gradient is zero, and Adam scales the rounding noise either run computes into
    steps of up to lr (see test_data_parallel)."""
    for name, value in got.items():
        want = expected[name]
        keys = key_bias_slice(name, value)
        if keys is not None:
            assert (value[keys] - want[keys]).abs().max() <= noise, name
            value, want = value.clone(), want.clone()
            value[keys] = want[keys] = 0
        torch.testing.assert_close(value, want, rtol=0, atol=atol, msg=name)


def simulated(count: int, parts: list) -> list[Sharding]:
    """``count`` shardings in one process: ``all_gather`` concatenates ``parts``, where each
    simulated process has put its slice at its index."""
    return [Sharding(i, count, lambda v: v, lambda part: torch.cat(parts)) for i in range(count)]


@given(n=st.integers(1, 40), count=st.integers(1, 5))
def test_slices_padded_to_equal_lengths_gather_back_to_the_vector(n, count):
    vector = torch.arange(n, dtype=torch.float32) + 1
    state = (torch.tensor(7), vector, vector * 2)  # a count and two moments
    parts: list = [None] * count
    shardings = simulated(count, parts)
    sliced = [slice_state(state, n, s) for s in shardings]
    for i, s in enumerate(sliced):
        assert s[1].numel() == -(-n // count)
        assert s[0] is state[0]
        parts[i] = s[1]
    assert torch.equal(torch.cat(parts)[n:], torch.zeros(count * parts[0].numel() - n))
    assert torch.equal(gather_state(sliced[0], n, shardings[0])[1], vector)


def test_one_process_ignores_shard_optimizer():
    trainer = Trainer(TrainConfig(**XOR_FIELDS, steps=2, shard_optimizer=True))
    assert trainer.sharding is None
    members = [TrainConfig(**XOR_FIELDS, steps=2, seed=s, shard_optimizer=True) for s in (0, 1)]
    assert Trainer(members).sharding is None  # members train in one process


def test_sharded_state_matches_plain_data_parallelism_with_half_the_bytes(tmp_path):
    """Two ranks, clip_norm on (every step clips): the parameters after 4 steps and the whole
    optimizer state equal plain data parallelism's to float rounding (the global norm sums
    the ranks' squared norms: another order of addition), the key projection's bias aside as
    in test_data_parallel (its exact gradient is zero: Adam scales rounding noise); each rank holds half the
    optimizer state's bytes (its 0-d counters aside, and the padding of an odd length)."""
    code, _, err = torchrun(["--standalone", "--nproc-per-node", "2"], [str(WORKER), str(tmp_path)])
    assert code == 0, err[-3000:]
    ranks = [torch.load(tmp_path / f"rank-{r}.pt") for r in range(2)]
    for got in ranks:
        plain, sharded = got["plain"], got["sharded"]
        assert_same_params(sharded["params"], plain["params"], CONFIG.lr * STEPS, atol=1e-6)
        for moment, expected in zip(sharded["moments"], plain["moments"], strict=True):
            torch.testing.assert_close(moment, expected, rtol=1e-5, atol=1e-8)
        assert sharded["grad_norm"] == pytest.approx(plain["grad_norm"], rel=1e-5)
        n = plain["n"]
        moments = plain["opt_bytes"] // (4 * n)  # float32 vectors of n entries (Adam: 2)
        counters = plain["opt_bytes"] - moments * 4 * n
        assert moments >= 2
        assert sharded["opt_bytes"] == moments * 4 * -(-n // 2) + counters
    for name, value in ranks[0]["sharded"]["params"].items():  # every rank: the same vector
        assert torch.equal(value, ranks[1]["sharded"]["params"][name])


def test_fp16_sharded_ranks_scale_skip_and_end_as_plain_data_parallelism(tmp_path):
    """fp16 with the dynamic loss scale, 2 ranks: sharded, the parameters after 4 steps equal
    plain data parallelism's as in fp32 (above); every rank, sharded or not, holds the same
    scale after every step, and the last step, forced to overflow, is skipped and halves the
    scale on both ranks alike (the finite check sums the ranks' slices)."""
    from sharded_worker import OVERFLOWING_SCALE

    code, _, err = torchrun(
        ["--standalone", "--nproc-per-node", "2"], [str(WORKER), str(tmp_path), "fp16"]
    )
    assert code == 0, err[-3000:]
    ranks = [torch.load(tmp_path / f"rank-{r}.pt") for r in range(2)]
    expected = ranks[0]["plain"]
    assert expected["scales"][-1] == OVERFLOWING_SCALE / 2 and expected["overflows"][-1] == 1
    assert expected["overflows"][-2] == 0  # the steps before trained
    for got in ranks:
        for run in (got["plain"], got["sharded"]):
            assert run["scales"] == expected["scales"]
            assert run["overflows"] == expected["overflows"]
        assert_same_params(
            got["sharded"]["params"], got["plain"]["params"], CONFIG.lr * STEPS, atol=1e-6
        )
    for name, value in ranks[0]["sharded"]["params"].items():
        assert torch.equal(value, ranks[1]["sharded"]["params"][name])


XOR = [
    "train",
    "xor",
    "--steps",
    "6",
    "--batch-size",
    "32",
    "--checkpoint-every",
    "3",
    "--eval-every",
    "6",
    "--examples",
    "0",
    "-t",
    "clip_norm=0.05",
    "--no-progress",
]


def test_checkpoints_move_between_one_process_and_two_sharded_ranks(tmp_path):
    """One process stops at step 2 (SIGTERM), 2 sharded ranks resume its checkpoint (re-sliced
    on load) and stop after step 4 or 5, one process resumes theirs (gathered whole) to step
    6: the parameters of the uninterrupted one-process run, to float rounding."""
    torch.set_num_threads(1)
    assert cli.main([*XOR, "--out", str(tmp_path / "one")]) == 0
    run, resume = (
        tmp_path / "moved",
        ["train", "--resume", str(tmp_path / "moved"), "--no-progress"],
    )
    argv = [*XOR, "-t", "shard_optimizer=true", "--out", str(run)]
    [(code, out, err)] = launch([[sys.executable, str(DRIVER), "SIGTERM", "2", "--", *argv]])
    assert code != 0 and "SIGTERM at step 2" in out + err, err[-3000:]
    code, out, err = standalone(2, resume, driver=["SIGTERM", "4"], env={"SEQFUNC_FAULT_RANK": "1"})
    assert code != 0 and f"resuming {run} from step-00000002" in out, err[-3000:]
    assert "SIGTERM at step" in out + err, err[-3000:]
    assert cli.main(resume) == 0
    lr = json.loads((run / "config.json").read_text())["train"]["lr"]
    assert_same_params(params(run), params(tmp_path / "one"), lr * 6, atol=1e-5)


if sys.platform != "linux":  # the launch helpers read /proc
    pytestmark = pytest.mark.skip(reason="torchrun tests need /proc (Linux)")
