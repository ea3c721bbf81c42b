"""`seqfunc attention` and the attention studies, on tiny runs."""

import json

import pytest

from seqfunc.cli import main
from seqfunc.runs import TrainConfig, fit
from seqfunc.runs.load import load_run

pytest.importorskip("matplotlib")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tiny_run(path, attention="dot"):
    cfg = TrainConfig(
        dataset="formula",
        dataset_options={"complexity": 1, "val_size": 8, "epoch_size": 32},
        model_options={
            "d_model": 8,
            "heads": 2,
            "d_ff": 8,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "attention": attention,
        },
        steps=2,
        batch_size=8,
        eval_every=2,
        examples=0,
        warmup_steps=0,
    )
    fit(cfg, path, progress=False, log=lambda line: None)
    return path


@pytest.mark.parametrize(
    "attention", ["dot", "additive", "simple", {"kind": "window", "window": 2}]
)
def test_attention_maps_png_for_each_kernel(tmp_path, attention, capsys):
    run = tiny_run(tmp_path / "run", attention)
    loaded = load_run(run)  # kernel params (additive) and no params (simple) round-trip
    assert loaded.model.config.attention == attention
    png = tmp_path / "maps.png"
    assert main(["attention", str(run), "5+3", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert "3 attention layers x 2 heads" in capsys.readouterr().out


def test_attention_bad_input_is_one_line(tmp_path, capsys):
    run = tiny_run(tmp_path / "run")
    assert main(["attention", str(run), "5*3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "'*'" in err and len(err.splitlines()) == 1
    assert main(["attention", str(tmp_path / "missing"), "1+1"]) == 2
    assert "no such run folder" in capsys.readouterr().err


def test_unknown_kernel_in_a_run_config_is_one_line(tmp_path, capsys):
    run = tiny_run(tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    config["model"]["config"]["attention"] = "flashy"
    (run / "config.json").write_text(json.dumps(config))
    assert main(["attention", str(run), "1+1"]) == 2
    err = capsys.readouterr().err
    assert "known kinds: dot, full, additive" in err


@pytest.mark.parametrize(
    "argv,key",
    [
        (["experiment", "depth", "--depths", "1", "2"], "depth"),
        (["experiment", "attention-kind", "--kinds", "dot", "linear"], "attention kind"),
    ],
)
def test_studies_print_a_table_and_write_json_and_png(tmp_path, argv, key, capsys):
    small = [
        "--steps",
        "2",
        "--batch-size",
        "8",
        "--val-size",
        "8",
        "--d-model",
        "8",
        "--heads",
        "2",
        "--complexity",
        "1",
        "--out",
        str(tmp_path),
    ]
    assert main(argv + small) == 0
    out = capsys.readouterr().out
    assert out.count("\n") >= 4 and "val loss" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["study"].startswith(key) and len(results["results"]) == 2
    assert all(r["train_s"] > 0 and r["val_loss"] > 0 for r in results["results"])
    assert (tmp_path / "results.png").read_bytes()[:8] == PNG_MAGIC


def test_studies_reject_bad_options(capsys):
    assert main(["experiment", "depth", "--steps", "0"]) == 2
    assert main(["experiment", "attention-kind", "--kinds", "nope"]) == 2
    assert "unknown nope" in capsys.readouterr().err
