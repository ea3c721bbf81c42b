"""The dataset half of the conformance suite: what ``seqfunc check --dataset NAME`` runs.

    from seqfunc.testing import check_dataset

    def test_my_dataset_conforms():
        report = check_dataset(MyDataset)   # its default config, or MyDataset.check_options
        assert report.ok, report.summary()

Each check draws cases ``(split, batch_size, epoch)`` with Hypothesis (derandomized) and reads
the first few batches of each; a failure is reported with the shrunk case that shows it.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from itertools import islice
from typing import Any

import attrs
import torch
from hypothesis import strategies as st

from seqfunc.config import from_dict
from seqfunc.contracts import BATCH_LAYOUTS, DATASET_CONTRACT
from seqfunc.testing.runner import Report, Result, falsify

#: Batches read per drawn case (the checks look at the start of an epoch).
BATCHES_PER_CASE = 3


@attrs.frozen
class DatasetCheck:
    name: str
    doc: str
    check: Callable[[Any, dict], None]  # (dataset, case) -> None, AssertionError on failure
    max_examples: int | None = None  # fewer cases for a check that reads a whole split


def _batches(dataset, case: dict, **kwargs) -> list[dict]:
    it = dataset.batches(case["split"], case["batch_size"], epoch=case["epoch"], **kwargs)
    return list(islice(it, BATCHES_PER_CASE))


def _rank(shape: str) -> int:
    return len(re.findall(r"\w+", shape))


def check_layout(dataset, case) -> None:
    """Fields, dtypes (int64) and ranks of the task kind's layout; one batch size per batch."""
    layout = BATCH_LAYOUTS[dataset.task]
    batches = _batches(dataset, case)
    assert batches, f"split {case['split']!r} yields no batch"
    for i, batch in enumerate(batches):
        assert set(batch) >= set(layout), (
            f"batch {i}: fields {sorted(batch)}, expected {sorted(layout)}"
        )
        rows = {name: batch[name].shape[0] for name in layout if batch[name].dim() > 0}
        for name, shape in layout.items():
            x = batch[name]
            assert isinstance(x, torch.Tensor), (
                f"batch {i}: {name} is a {type(x).__name__}, not a tensor"
            )
            assert x.dtype == torch.int64, (
                f"batch {i}: {name} has dtype {x.dtype}, expected torch.int64"
            )
            assert x.dim() == _rank(shape), (
                f"batch {i}: {name} has shape {tuple(x.shape)}, expected {shape}"
            )
        assert len(set(rows.values())) == 1, f"batch {i}: fields disagree on the batch size: {rows}"
        assert 0 < next(iter(rows.values())) <= case["batch_size"], (
            f"batch {i}: {next(iter(rows.values()))} rows for batch_size={case['batch_size']}"
        )
        if dataset.task == "seq2seq":
            assert batch["tgt_in"].shape == batch["tgt_out"].shape, (
                f"batch {i}: tgt_in {tuple(batch['tgt_in'].shape)} != tgt_out {tuple(batch['tgt_out'].shape)}"
            )


def _vocab_sizes(dataset) -> dict[str, int]:
    """field -> the exclusive upper bound of its ids."""
    if dataset.task == "seq2seq":
        return {
            "src": len(dataset.source_vocab),
            "tgt_in": len(dataset.target_vocab),
            "tgt_out": len(dataset.target_vocab),
        }
    if dataset.task == "language_model":
        return {"inputs": len(dataset.vocab), "targets": len(dataset.vocab)}
    return {"tokens": len(dataset.vocab), "label": len(dataset.classes)}


def check_ids_in_vocab(dataset, case) -> None:
    """Every id is in ``[0, vocabulary size)`` (labels: ``[0, len(classes))``)."""
    sizes = _vocab_sizes(dataset)
    for i, batch in enumerate(_batches(dataset, case)):
        for name, size in sizes.items():
            x = batch[name]
            if x.numel() and (int(x.min()) < 0 or int(x.max()) >= size):
                bad = int(x.max()) if int(x.max()) >= size else int(x.min())
                raise AssertionError(f"batch {i}: {name} holds id {bad}, outside [0, {size})")


def check_special_ids(dataset, case) -> None:
    """seq2seq: pad/bos/eos distinct and in the target vocabulary; ``tgt_in`` is ``<bos>`` +
    the target shifted right and ``tgt_out`` the target + ``<eos>`` then padding.
    language_model: ``targets`` are ``inputs`` shifted by one. classification: ``pad_id`` is
    in the vocabulary."""
    if dataset.task == "classification":
        assert 0 <= dataset.pad_id < len(dataset.vocab), (
            f"pad_id={dataset.pad_id} outside the vocabulary"
        )
        return
    batches = _batches(dataset, case)
    if dataset.task == "language_model":
        for i, batch in enumerate(batches):
            same = batch["targets"][:, :-1] == batch["inputs"][:, 1:]
            if not bool(same.all()):
                row, col = (~same).nonzero()[0].tolist()
                raise AssertionError(
                    f"batch {i} row {row}: targets[{col}] != inputs[{col + 1}] "
                    "(targets must be inputs shifted by one)"
                )
        return
    pad, bos, eos = dataset.pad_id, dataset.bos_id, dataset.eos_id
    assert len({pad, bos, eos}) == 3, f"pad_id={pad}, bos_id={bos}, eos_id={eos} must differ"
    for name, value in (("pad_id", pad), ("bos_id", bos), ("eos_id", eos)):
        assert 0 <= value < len(dataset.target_vocab), (
            f"{name}={value} outside the target vocabulary"
        )
    for i, batch in enumerate(batches):
        tgt_in, tgt_out = batch["tgt_in"], batch["tgt_out"]
        for row in range(tgt_in.shape[0]):
            out, inp = tgt_out[row].tolist(), tgt_in[row].tolist()
            where = f"batch {i} row {row}: tgt_in={inp} tgt_out={out}"
            assert inp[0] == bos, f"{where}: tgt_in does not start with bos_id={bos}"
            assert eos in out, f"{where}: tgt_out has no eos_id={eos}"
            end = out.index(eos)
            assert all(t == pad for t in out[end + 1 :]), (
                f"{where}: tgt_out has tokens after <eos> besides padding"
            )
            assert inp[1 : end + 1] == out[:end], (
                f"{where}: tgt_in is not <bos> + tgt_out shifted right"
            )


def check_fixed_shapes(dataset, case) -> None:
    """Training batches have ``batch_size`` rows and one shape per field (a dataset that
    declares ``num_batches`` is bucketed: its widths may vary)."""
    case = {**case, "split": "train"}
    batches = _batches(dataset, case)
    for i, batch in enumerate(batches):
        for name, x in batch.items():
            assert x.shape[0] == case["batch_size"], (
                f"training batch {i}: {name} has {x.shape[0]} rows, expected batch_size={case['batch_size']}"
            )
            if not hasattr(dataset, "num_batches"):
                first = batches[0][name].shape
                assert x.shape == first, (
                    f"training batch {i}: {name} {tuple(x.shape)} != batch 0's {tuple(first)}"
                )


def _same(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x) for x, y in zip(a, b)
    )


def check_deterministic(dataset, case) -> None:
    """The same ``(split, batch_size, epoch)`` gives the same batches, call after call."""
    first, second = _batches(dataset, case), _batches(dataset, case)
    assert _same(first, second), (
        "two calls with the same (split, batch_size, epoch) gave different batches"
    )


def check_epochs_differ(dataset, case) -> None:
    """Training batches are shuffled: epochs ``e`` and ``e + 1`` differ (a dataset that does not
    shuffle declares ``shuffle = False``)."""
    if getattr(dataset, "shuffle", True) is False:
        return
    case = {**case, "split": "train"}
    this, following = (
        _batches(dataset, case),
        _batches(dataset, {**case, "epoch": case["epoch"] + 1}),
    )
    assert not _same(this, following), (
        f"training epochs {case['epoch']} and {case['epoch'] + 1} gave the same "
        "batches (declare shuffle = False if that is meant)"
    )


def check_counts(dataset, case) -> None:
    """``num_examples`` is the rows a held-out split yields, or, for a dataset that declares
    ``num_batches``, every split yields ``num_batches(split, batch_size)`` batches; training
    yields ``num_examples // batch_size`` batches otherwise. Every split is counted at the
    case's batch size, so a miscount in one split is found whichever split the case names."""
    for split in dataset.splits:
        _check_split_counts(dataset, split, case["batch_size"], case["epoch"])


def _check_split_counts(dataset, split: str, size: int, epoch: int) -> None:
    n = dataset.num_examples(split)
    if split != "train" and hasattr(dataset, "num_batches"):
        count = sum(1 for _ in dataset.batches(split, size, drop_last=False))
        expected = dataset.num_batches(split, size)
        assert count == expected, (
            f"split {split!r} yields {count} batches of {size}; num_batches says {expected}"
        )
        return
    if split == "train":
        count = sum(1 for _ in dataset.batches(split, size, epoch=epoch))
        expected = (
            dataset.num_batches(split, size) if hasattr(dataset, "num_batches") else n // size
        )
        assert count == expected, (
            f"train yields {count} batches of {size}; expected {expected} (num_examples={n})"
        )
        return
    rows = sum(
        next(iter(b.values())).shape[0] for b in dataset.batches(split, size, drop_last=False)
    )
    assert rows == n, f"split {split!r} yields {rows} examples, num_examples({split!r}) says {n}"


def check_artifacts(dataset, case) -> None:
    """``save_artifacts`` then ``from_artifacts`` rebuilds a dataset with the same batches."""
    with tempfile.TemporaryDirectory() as folder:
        dataset.save_artifacts(folder)
        rebuilt = type(dataset).from_artifacts(dataset.config, folder)
    held_out = (
        next(s for s in dataset.splits if s != "train") if len(dataset.splits) > 1 else "train"
    )
    case = {**case, "split": held_out}
    assert _same(_batches(dataset, case), _batches(rebuilt, case)), (
        "from_artifacts rebuilt different batches"
    )


DATASET_CHECKS: tuple[DatasetCheck, ...] = (
    DatasetCheck("layout", check_layout.__doc__, check_layout),
    DatasetCheck("ids_in_vocab", check_ids_in_vocab.__doc__, check_ids_in_vocab),
    DatasetCheck("special_ids", check_special_ids.__doc__, check_special_ids),
    DatasetCheck("fixed_shapes", check_fixed_shapes.__doc__, check_fixed_shapes),
    DatasetCheck("deterministic", check_deterministic.__doc__, check_deterministic),
    DatasetCheck("epochs_differ", check_epochs_differ.__doc__, check_epochs_differ),
    DatasetCheck("counts", check_counts.__doc__, check_counts, max_examples=3),
    DatasetCheck("artifacts", check_artifacts.__doc__, check_artifacts, max_examples=1),
)
DATASET_CHECK_NAMES = ("attributes",) + tuple(c.name for c in DATASET_CHECKS)


def missing_attributes(dataset) -> list[str]:
    """The required contract attributes (:data:`seqfunc.contracts.DATASET_CONTRACT`) a dataset
    instance lacks, and the splits training needs that it does not declare."""
    missing = [
        a.name
        for a in DATASET_CONTRACT
        if a.required and dataset.task in a.kinds and getattr(dataset, a.name, None) is None
    ]
    missing += [f"split {s!r}" for s in ("train", "val") if s not in dataset.splits]
    return missing


def cases(dataset) -> st.SearchStrategy:
    return st.fixed_dictionaries(
        {
            "split": st.sampled_from(tuple(dataset.splits)),
            "batch_size": st.integers(1, 64),
            "epoch": st.integers(0, 3),
        }
    )


def check_dataset(
    dataset_cls,
    *,
    options: dict | None = None,
    only=None,
    max_examples: int = 10,
    name: str | None = None,
) -> Report:
    """Every dataset check on ``dataset_cls(Config(**options))``; ``options`` default to the
    class's ``check_options`` (a small config), else its defaults. Building the dataset may
    raise :class:`seqfunc.errors.SeqfuncError` (a bad option, missing data)."""
    name = name or getattr(dataset_cls, "name", dataset_cls.__name__)
    options = (
        dict(getattr(dataset_cls, "check_options", None) or {}) if options is None else options
    )
    dataset = dataset_cls(from_dict(dataset_cls.Config, options, where="dataset options"))
    results = []
    if only is None or "attributes" in only:
        missing = missing_attributes(dataset)
        results.append(
            Result(
                "attributes",
                "fail",
                error="missing: " + ", ".join(missing),
                counterexample="(the dataset instance)",
            )
            if missing
            else Result("attributes", "pass", examples=1)
        )
    for check in DATASET_CHECKS:
        if only is not None and check.name not in only:
            continue
        if check.name == "artifacts" and not hasattr(dataset, "save_artifacts"):
            results.append(Result(check.name, "skip", reason="no save_artifacts"))
            continue
        if check.name == "epochs_differ" and getattr(dataset, "shuffle", True) is False:
            results.append(Result(check.name, "skip", reason="declares shuffle = False"))
            continue
        start = time.perf_counter()
        n = min(max_examples, check.max_examples or max_examples)
        examples, case, error = falsify(cases(dataset), lambda c, f=check.check: f(dataset, c), n)
        seconds = time.perf_counter() - start
        if error is None:
            results.append(Result(check.name, "pass", examples=examples, seconds=seconds))
            continue
        message = (
            str(error) if isinstance(error, AssertionError) else f"{type(error).__name__}: {error}"
        )
        shown = " ".join(f"{k}={v!r}" for k, v in case.items()) if case else "(not recorded)"
        results.append(
            Result(
                check.name,
                "fail",
                examples=examples,
                seconds=seconds,
                counterexample=shown,
                error=message,
            )
        )
    return Report(name, tuple(results))
