"""Add2Digits (assignment 001 q1): labels, marker placement, reproducibility, config errors, and the
``seqfunc experiment add2digits`` study run tiny."""

import json

import numpy as np
import pytest

from seqfunc import registry, rng
from seqfunc.cli import main
from seqfunc.config import ConfigError
from seqfunc.data.add2digits import MARKER_ID, Add2DigitsConfig, Add2DigitsDataset


def make(**options):
    return Add2DigitsDataset(Add2DigitsConfig(**{"train_size": 600, "val_size": 50, **options}))


@pytest.mark.parametrize("length", [3, 5, 30])
def test_labels_and_marker_positions(length):
    tokens, labels = make(length=length).arrays("train")
    assert tokens.shape == (600, length)
    is_marker = tokens == MARKER_ID
    assert (is_marker.sum(axis=1) == 1).all()  # exactly one marker
    where = is_marker.argmax(axis=1)
    assert where.min() == 0 and where.max() == length - 3  # uniform on [0, length - 3]
    counts = np.bincount(where, minlength=length - 2)
    assert counts.min() > 600 / (length - 2) / 3  # every allowed position occurs, roughly evenly
    rows = np.arange(len(tokens))
    assert (labels == tokens[rows, where + 1] + tokens[:, -1]).all()
    digits = tokens[~is_marker]
    assert digits.min() >= 0 and digits.max() <= 9
    assert labels.min() >= 0 and labels.max() <= 18


def test_contract_attributes_and_batches():
    dataset_cls = registry.get_dataset("add2digits")
    assert dataset_cls is Add2DigitsDataset and dataset_cls.task == "classification"
    data = make(length=7)
    assert list(data.classes) == [str(i) for i in range(19)]
    assert len(data.vocab) == 12 and data.pad_id == 11 and MARKER_ID == 10
    assert data.vocab.to_tokens([0, 9, 10]) == ["0", "9", "-1"]
    assert data.config.max_len == 7
    batch = next(data.batches("train", 32))
    assert batch["tokens"].shape == (32, 7) and batch["label"].shape == (32,)
    assert not (batch["tokens"] == data.pad_id).any()
    assert data.num_examples("val") == 50
    assert (
        data.encode("1 -1 3 7 8") == [1, 10, 3, 7, 8]
        and data.decode([1, 10, 3, 7, 8]) == "1 -1 3 7 8"
    )
    with pytest.raises(ValueError, match="marker -1"):
        data.encode("1 2 x")
    # the one-hot RNN classifier sees the seed's 11-wide input
    model_cls = registry.get_model("rnn-classifier")
    model = model_cls(model_cls.config_for(data))
    params = model.init(rng.key(0))
    assert params["rnn"][0]["weight_ih"].shape == (128, 11)
    assert model.apply(params, batch["tokens"]).shape == (32, 19)


def test_reproducible_from_the_seed():
    a, b, other = make(length=6), make(length=6), make(length=6, seed=1)
    for split in ("train", "val"):
        assert all(np.array_equal(x, y) for x, y in zip(a.arrays(split), b.arrays(split)))
    assert not np.array_equal(a.arrays("train")[0], other.arrays("train")[0])
    assert not np.array_equal(a.arrays("train")[0][:50], a.arrays("val")[0])  # independent streams


@pytest.mark.parametrize(
    "field, value", [("length", 2), ("train_size", 0), ("val_size", -1), ("length", 4.5)]
)
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ConfigError, match=f"{field}="):
        Add2DigitsConfig(**{field: value})


def test_experiment_runs_tiny(tmp_path, capsys):
    code = main(
        [
            "experiment",
            "add2digits",
            "--lengths",
            "3",
            "5",
            "--steps",
            "4",
            "--train-size",
            "48",
            "--val-size",
            "16",
            "--batch-size",
            "16",
            "--eval-every",
            "2",
            "--log-every",
            "2",
            "--hidden-size",
            "8",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    png = tmp_path / "add2digits.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert summary["figure"] == str(png)
    assert [(r["length"], r["model"]) for r in summary["results"]] == [
        (3, "rnn"),
        (3, "lstm"),
        (5, "rnn"),
        (5, "lstm"),
    ]
    for r in summary["results"]:
        assert 0 <= r["final_val_accuracy"] <= r["best_val_accuracy"] <= 1
        assert 0 <= r["train_accuracy"] <= 1 and r["seconds"] >= 0
    assert any(line.startswith("| 5 | LSTM |") for line in out)
    saved = json.loads((tmp_path / "add2digits.json").read_text())
    assert saved["results"] == summary["results"]
    assert saved["curves"][0]["val_step"] == [2, 4]


def test_experiment_bad_lengths_is_a_usage_error(tmp_path, capsys):
    assert main(["experiment", "add2digits", "--lengths", "2", "--out", str(tmp_path)]) == 2
    assert "--lengths must all be >= 3" in capsys.readouterr().err
