"""`seqfunc experiment classify` end to end on tiny synthetic data."""

import json

from seqfunc.cli import main


def test_classify_writes_a_table_and_json(tmp_path, capsys):
    code = main(
        [
            "experiment",
            "classify",
            "--datasets",
            "xor",
            "--models",
            "baseline-select,full-select-pos",
            "--seeds",
            "2",
            "--train-size",
            "640",
            "--val-size",
            "100",
            "--epochs",
            "2",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    cells = json.loads((tmp_path / "classify.json").read_text())["cells"]
    assert [c["model"] for c in cells] == ["baseline-select", "full-select-pos"]
    for cell in cells:
        assert len(cell["val_accuracy"]) == 2 and cell["seeds"] == [0, 1]
        assert 0.0 <= cell["val_mean"] <= 1.0 and cell["val_std"] >= 0.0
    assert cells[0]["val_mean"] < 0.6  # select pool without attention: chance on XOR
    out = capsys.readouterr().out
    assert "| model | xor |" in out and "baseline-select" in out


def test_unknown_names_are_one_line_errors(capsys):
    assert main(["experiment", "classify", "--models", "nope"]) == 2
    assert "unknown nope" in capsys.readouterr().err
