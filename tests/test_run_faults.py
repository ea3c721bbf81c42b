"""What survives a damaged checkpoint, a full disk, a NaN, a failing side task and a bad
resume: each fault is made real in the test and the run folder is checked afterwards."""

from __future__ import annotations

import errno
import json
import math

import attrs
import pytest
import torch
from safetensors.torch import load_file

from seqfunc import cli
from seqfunc.errors import CheckpointError, ConfigError, NonFiniteError
from seqfunc.runs import TrainConfig, checkpoint, fit, trainer
from seqfunc.tasks.classification import ClassificationTask

CFG = TrainConfig(
    dataset="xor",
    model="attention",
    steps=24,
    batch_size=32,
    lr=3e-3,
    schedule="constant",
    eval_every=6,
    checkpoint_every=6,
    log_every=3,
    examples=1,
    model_options={"dropout": 0.1},
)


def quiet(*_):
    pass


def train(out, cfg=CFG, **kwargs):
    lines = []
    record = fit(cfg, out, progress=False, log=lines.append, **kwargs)
    return record, lines


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    train(out)
    return out


def final_params(run):
    return (run / "params.safetensors").read_bytes()


def copy_run(src, dst):
    import shutil

    shutil.copytree(src, dst)
    for name in ("params.safetensors", "opt_state.safetensors", "state.json"):
        (dst / name).unlink()  # as if the run had died after its last checkpoint
    return dst


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_bytes(p.read_bytes()[:-100]), "bytes, the manifest says"),
        (
            lambda p: p.write_bytes(bytes([p.read_bytes()[0] ^ 1]) + p.read_bytes()[1:]),
            "checksum differs",
        ),
    ],
)
def test_damaged_checkpoint_is_named_and_resume_falls_back(tmp_path, finished, damage, message):
    run = copy_run(finished, tmp_path / "run")
    newest = run / "checkpoints" / "step-00000024"
    damage(newest / "params.safetensors")
    _, lines = train(run, None, resume=True)
    said = next(line for line in lines if line.startswith("damaged checkpoint"))
    assert str(newest / "params.safetensors") in said and message in said
    assert "resuming" in " ".join(lines) and "step-00000018" in " ".join(lines)
    assert (run / "checkpoints" / "damaged-step-00000024").is_dir()
    assert final_params(run) == final_params(finished)  # redone from step 18, identically


def test_unfinished_checkpoint_without_manifest_is_skipped(tmp_path, finished):
    run = copy_run(finished, tmp_path / "run")
    (run / "checkpoints" / "step-00000024" / "manifest.json").unlink()
    _, lines = train(run, None, resume=True)
    assert any("manifest.json: missing" in line for line in lines)
    assert final_params(run) == final_params(finished)


def test_full_disk_while_checkpointing_stops_cleanly_and_keeps_the_previous(
    tmp_path, finished, monkeypatch
):
    original = checkpoint._write_file

    def disk_fills_at_step_12(path, data):
        if path.parent.name == ".tmp-step-00000012" and path.name == checkpoint.OPT_STATE:
            path.write_bytes(data[: len(data) // 3])
            raise OSError(errno.ENOSPC, "No space left on device")
        original(path, data)

    monkeypatch.setattr(checkpoint, "_write_file", disk_fills_at_step_12)
    run = tmp_path / "run"
    with pytest.raises(
        CheckpointError, match="no space left on device.*earlier checkpoints are intact"
    ):
        train(run)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000006"]
    monkeypatch.setattr(checkpoint, "_write_file", original)
    train(run, None, resume=True)  # the previous checkpoint loads; the run ends as if whole
    assert final_params(run) == final_params(finished)


def poison_from(monkeypatch, steps):
    """Make the loss (and so every gradient) NaN on the given steps, through the batch."""
    original_batches, original_loss = trainer.Trainer.batches, ClassificationTask.loss_fn

    def batches(self, at):
        step = at.step
        for epoch, index, batch in original_batches(self, at):
            yield (
                epoch,
                index,
                {**batch, "poison": torch.tensor(math.nan if step in steps else 0.0)},
            )
            step += 1

    def loss_fn(self, model, *, train=True):
        loss = original_loss(self, model, train=train)

        def poisoned(params, batch, key):
            value, aux = loss(params, batch, key)
            return value * (1 + batch.get("poison", torch.tensor(0.0))), aux

        return poisoned

    monkeypatch.setattr(trainer.Trainer, "batches", batches)
    monkeypatch.setattr(ClassificationTask, "loss_fn", loss_fn)


def test_nan_updates_are_skipped_counted_and_stop_the_run(tmp_path, monkeypatch):
    poison_from(monkeypatch, steps=range(7, 100))  # steps are counted from 0: the 8th on
    run = tmp_path / "run"
    cfg = attrs.evolve(CFG, max_nonfinite=3)
    with pytest.raises(NonFiniteError) as info:
        train(run, cfg)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("step 10: 3 updates in a row had non-finite gradients")
    assert str(run / "checkpoints" / "step-00000006") in message
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["split"] == "train" and last["nonfinite_skipped"] == 3
    for name in ("params.safetensors", "opt_state.safetensors"):
        tensors = load_file(run / "checkpoints" / "step-00000006" / name)
        assert all(torch.isfinite(t.float()).all() for t in tensors.values())


def test_one_nan_step_is_skipped_and_training_goes_on(tmp_path, monkeypatch):
    poison_from(monkeypatch, steps={7})
    run = tmp_path / "run"
    train(run)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    skipped = [r["nonfinite_skipped"] for r in records if r["split"] == "train"]
    assert skipped[:2] == [0, 0] and skipped[2:] == [1] * (len(skipped) - 2)
    params = load_file(run / "params.safetensors")
    assert all(torch.isfinite(t).all() for t in params.values())


def test_failing_sample_printer_and_evaluation_do_not_lose_the_run(tmp_path, monkeypatch):
    def broken_examples(self, *args, **kwargs):
        raise RuntimeError("printer broke\nsecond line")

    calls = {"n": 0}
    original_evaluate = ClassificationTask.evaluate

    def evaluate_fails_once(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise ValueError("evaluation broke")
        return original_evaluate(self, *args, **kwargs)

    monkeypatch.setattr(ClassificationTask, "examples", broken_examples)
    monkeypatch.setattr(ClassificationTask, "evaluate", evaluate_fails_once)
    record, lines = train(tmp_path / "run")
    assert (
        "printing samples at step 6 failed (RuntimeError: printer broke); no more samples" in lines
    )
    assert "evaluation at step 12 failed (ValueError: evaluation broke); training goes on" in lines
    assert sum("printing samples" in line for line in lines) == 1
    assert record["step"] == 24 and (tmp_path / "run" / "params.safetensors").exists()


def test_resume_refuses_a_changed_config_but_extends_steps(tmp_path, finished):

    run = tmp_path / "run"
    copy_run(finished, run)
    with pytest.raises(
        ConfigError, match=r"these fields differ: batch_size 32 -> 16, lr 0.003 -> 0.1"
    ):
        train(run, attrs.evolve(CFG, lr=0.1, batch_size=16), resume=True)
    record, _ = train(run, attrs.evolve(CFG, steps=30), resume=True)
    assert record["step"] == 30
    assert json.loads((run / "state.json").read_text())["step"] == 30


def test_an_existing_run_is_not_overwritten_and_a_bad_config_writes_nothing(tmp_path, finished):
    before = final_params(finished)
    with pytest.raises(CheckpointError, match="already holds a run; resume it with"):
        train(finished)
    assert final_params(finished) == before
    out = tmp_path / "never"
    with pytest.raises(ConfigError, match="dropout=2.0: must be in"):
        train(out, attrs.evolve(CFG, model_options={"dropout": 2.0}))
    assert not out.exists()


def test_cli_resume_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["train", "--resume", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"seqfunc train: error: --resume {tmp_path / 'none'}: not a run folder (no config.json)"
    )
    assert cli.main(["train", "--resume", str(tmp_path), "--out", "x"]) == 2
    assert "--out cannot be combined with --resume" in capsys.readouterr().err
