"""``seqfunc check --dataset``: the minimal plugins pass; fixtures that break one rule each fail
that rule (and only it) with a shrunk counterexample."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from seqfunc.cli import main
from seqfunc.testing import check_dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "seqfunc-minimal"))
from seqfunc_minimal import MinimalCount, MinimalOrder, MinimalReverse  # noqa: E402


@pytest.mark.parametrize("dataset_cls", [MinimalReverse, MinimalCount, MinimalOrder])
def test_minimal_datasets_pass(dataset_cls):
    report = check_dataset(dataset_cls, max_examples=5)
    assert report.ok, report.summary()
    assert report.skipped == ["artifacts"]


class WrongDtype(MinimalReverse):
    def examples(self, gen, n):
        return {k: v.int() if k == "src" else v for k, v in super().examples(gen, n).items()}


class IdOutsideVocab(MinimalOrder):
    def examples(self, gen, n):
        batch = super().examples(gen, n)
        batch["tokens"][:, 1] = len(self.vocab)
        return batch


class NotShifted(MinimalReverse):
    def examples(self, gen, n):
        batch = super().examples(gen, n)
        batch["tgt_in"] = torch.cat([batch["tgt_in"][:, :1], batch["tgt_out"][:, 1:]], 1)
        return batch


class Unstable(MinimalCount):
    calls = 0

    def batches(self, split, batch_size, *, epoch=0, drop_last=None):
        Unstable.calls += 1
        return super().batches(split, batch_size, epoch=epoch + Unstable.calls, drop_last=drop_last)


class Miscounted(MinimalOrder):
    def num_examples(self, split):
        return super().num_examples(split) + 1


class NotShuffled(MinimalCount):
    def batches(self, split, batch_size, *, epoch=0, drop_last=None):
        return super().batches(split, batch_size, epoch=0, drop_last=drop_last)


@pytest.mark.parametrize(
    "dataset_cls, rule, message",
    [
        (WrongDtype, "layout", "src has dtype torch.int32, expected torch.int64"),
        (IdOutsideVocab, "ids_in_vocab", "tokens holds id 10, outside [0, 10)"),
        (NotShifted, "special_ids", "tgt_in is not <bos> + tgt_out shifted right"),
        (
            Unstable,
            "deterministic",
            "two calls with the same (split, batch_size, epoch) gave different batches",
        ),
        (Miscounted, "counts", "num_examples"),
        (NotShuffled, "epochs_differ", "gave the same batches"),
    ],
)
def test_a_broken_rule_fails_with_a_shrunk_counterexample(dataset_cls, rule, message):
    report = check_dataset(dataset_cls, max_examples=10)
    assert report.failed == [rule], report.summary()
    result = report[rule]
    assert message in result.error
    case = dict(part.split("=") for part in result.counterexample.split())
    assert int(case["batch_size"]) <= 2 and case["epoch"] == "0", result.counterexample  # shrunk


def test_cli_check_dataset(tmp_path, monkeypatch, capsys):
    from seqfunc.testing import fake_distribution

    fake_distribution(
        tmp_path,
        "fixtures",
        "0.1",
        {
            "seqfunc.datasets": {
                "min-reverse": "seqfunc_minimal:MinimalReverse",
                "miscounted": "test_dataset_checks:Miscounted",
            }
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    assert main(["check", "--dataset", "min-reverse", "--examples", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[-1])["failed"] == [] and out[0].startswith("PASS  attributes")
    assert main(["check", "--dataset", "miscounted", "--examples", "3"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  counts: train yields 512 batches of 1; expected 513 (num_examples=513)" in out
    assert "counterexample: split='train' batch_size=1 epoch=0" in out
    assert main(["check", "--dataset", "min-reverse", "-d", "digits=x"]) == 2
    assert "ReverseConfig.digits='x': must be an int" in capsys.readouterr().err


class BatchesMiscounted(MinimalOrder):
    """Declares ``num_batches`` (as a token stream does) one too high on held-out splits."""

    def num_batches(self, split, batch_size):
        n = self.num_examples(split)
        return n // batch_size + (split != "train")  # held out: one more than the ceiling can be


def test_num_batches_is_checked_on_held_out_splits():
    report = check_dataset(BatchesMiscounted, max_examples=10)
    assert "counts" in report.failed, report.summary()
    assert "num_batches says" in report["counts"].error


@pytest.mark.parametrize(
    "name, relative",
    [("formula", None), ("xor", None), ("wikitext2", "wikitext-2/wiki.test.tokens")],
)
def test_builtin_datasets_pass(name, relative):
    """A built-in dataset passes its own contract (the stream dataset wikitext2 declares
    ``num_batches`` and ``shuffle = False``); every one is run by benchmarks/check_datasets.py."""
    from seqfunc import registry

    if relative is not None:
        from conftest import shared_file

        shared_file(relative)  # skips, naming the file, without the shared data
    report = check_dataset(registry.get_dataset(name), max_examples=3, name=name)
    assert report.ok, report.summary()
