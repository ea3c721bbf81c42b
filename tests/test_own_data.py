"""A user's own data: the generic ``text``, ``csv`` and ``pairs`` datasets on generated files,
``seqfunc predict`` for every task kind, ``--config`` files, ``--version``, ``--tensorboard``."""

from __future__ import annotations

import csv
import json
import sys
from random import Random

import pytest

from seqfunc.cli import main
from seqfunc.data.csv_data import CsvConfig, CsvDataset
from seqfunc.data.pairs import PairsConfig, PairsDataset
from seqfunc.data.text import TextConfig, TextDataset
from seqfunc.errors import SeqfuncError
from seqfunc.runs.load import load_run
from seqfunc.testing import check_dataset

WORDS = "the cat sat on a mat and dog ran far away while birds sing in trees".split()
COLOURS = {
    "red": "apple cherry blood fire rose",
    "green": "grass leaf frog lime pea",
    "blue": "sky sea ocean berry jeans",
}
TINY_LM = ["-m", "d_model=32", "-m", "layers=1", "-m", "heads=2"]


def write_text(path, lines=300, seed=0):
    rng = Random(seed)
    path.write_text(
        "".join(
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) + "\n"
            for _ in range(lines)
        ),
        encoding="utf-8",
    )
    return path


def write_csv(path, rows=240, seed=0):
    rng = Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for _ in range(rows):
            label = rng.choice(sorted(COLOURS))
            writer.writerow(
                [
                    " ".join(rng.choice(COLOURS[label].split()) for _ in range(rng.randint(2, 6))),
                    label,
                ]
            )
    return path


def write_pairs(path, lines=300, seed=0):
    rng = Random(seed)
    rows = []
    for _ in range(lines):
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 4))]
        rows.append(" ".join(words) + "\t" + " ".join(reversed(words)) + "\n")
    path.write_text("".join(rows), encoding="utf-8")
    return path


def train(capsys, *args) -> str:
    code = main(["train", *args, "--no-progress"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def error_of(capsys, *argv) -> str:
    """The one stderr line of a command that fails with exit code 2."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


# -- the datasets pass the conformance suite ----------------------------------------------------


@pytest.mark.parametrize(
    "make, cls, options",
    [
        (write_text, TextDataset, {}),
        (write_text, TextDataset, {"unit": "byte"}),
        (write_text, TextDataset, {"unit": "subword", "vocab_size": 60}),
        (write_csv, CsvDataset, {}),
        (write_pairs, PairsDataset, {}),
    ],
)
def test_generic_datasets_conform(tmp_path, make, cls, options):
    path = make(tmp_path / "data.txt")
    report = check_dataset(cls, options={"path": str(path), **options}, max_examples=4)
    assert report.ok, report.summary()
    assert "artifacts" in report.passed  # the run folder rebuilds it without the data


# -- text: trains, generates, predicts ------------------------------------------------------------


def test_text_trains_then_generates_and_predicts(tmp_path, capsys):
    data, run = write_text(tmp_path / "notes.txt"), tmp_path / "run"
    out = train(
        capsys,
        "text",
        "-d",
        f"path={data}",
        "-d",
        "context=32",
        "--steps",
        "40",
        *TINY_LM,
        "--eval-batches",
        "2",
        "--eval-every",
        "20",
        "--examples",
        "0",
        "--out",
        str(run),
    )
    assert "bits_per_token" in out
    data.unlink()  # the run folder holds the vocabulary: no data needed from here on
    assert (
        main(["generate", str(run), "--prompt", "the ", "--tokens", "30", "--temperature", "0"])
        == 0
    )
    text = capsys.readouterr().out.rstrip("\n")
    assert text.startswith("the ") and len(text) == 34
    assert set(text) <= set(" \n" + "".join(WORDS))
    [prediction] = load_run(run).predict(["the cat "], tokens=12)
    assert prediction["input"] == "the cat " and len(prediction["continuation"]) == 12
    assert main(["predict", str(run), "--json", "--tokens", "5", "the", "a cat"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["input"] for p in lines] == ["the", "a cat"] and all(
        len(p["continuation"]) == 5 for p in lines
    )


def test_text_subword_and_byte_units_encode_and_decode(tmp_path):
    path = write_text(tmp_path / "t.txt")
    sub = TextDataset(TextConfig(path=str(path), unit="subword", vocab_size=60))
    assert (
        sub.unit == "word"
        and sub.decode(sub.encode("the cat sat\non a mat")) == "the cat sat\non a mat"
    )
    byte = TextDataset(TextConfig(path=str(path), unit="byte"))
    assert len(byte.vocab) == 256 and byte.decode(byte.encode("café ✓")) == "café ✓"


def test_text_small_file_scales_or_names_the_option(tmp_path):
    small = tmp_path / "small.txt"
    small.write_text("the cat sat on the mat. " * 20, encoding="utf-8")  # 480 characters
    ds = TextDataset(TextConfig(path=str(small), context=16))
    assert ds.eval_slices < 48 and ds.num_examples("val") == ds.eval_slices  # scaled down
    assert sum(1 for _ in ds.batches("train", 64)) >= 1  # still fills a batch of 64
    with pytest.raises(
        SeqfuncError, match=r"small.txt: .*val split .*context=64: lower -d context="
    ):
        TextDataset(TextConfig(path=str(small)))


def test_text_empty_file_is_one_line_naming_it(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    err = error_of(
        capsys, "train", "text", "-d", f"path={empty}", "--steps", "1", "--out", str(tmp_path / "r")
    )
    assert f"{empty}:1: empty text file" in err
    assert "set the dataset option path" in error_of(capsys, "train", "text", "--steps", "1")


# -- csv: any labels, names kept, predict answers with them ---------------------------------------


def test_csv_with_three_string_labels_trains_and_predicts_their_names(tmp_path, capsys):
    data, run = write_csv(tmp_path / "colours.csv"), tmp_path / "run"
    out = train(capsys, "csv", "-d", f"path={data}", "--epochs", "8", "--out", str(run))
    assert "accuracy" in out
    data.unlink()
    assert main(["predict", str(run), "sky sea ocean", "grass leaf frog", "fire rose apple"]) == 0
    labels = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert labels == ["blue", "green", "red"]
    [p] = load_run(run).predict("jeans berry sky")
    assert p["label"] == "blue" and set(p["probabilities"]) == {"blue", "green", "red"}
    assert abs(sum(p["probabilities"].values()) - 1) < 1e-4


def test_csv_predict_reads_a_file_and_stdin(tmp_path, capsys, monkeypatch):
    data, run = write_csv(tmp_path / "c.tsv"), tmp_path / "run"
    data.write_text(data.read_text().replace(",", "\t"), encoding="utf-8")  # the same as TSV
    train(capsys, "csv", "-d", f"path={data}", "--steps", "3", "--out", str(run))
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("sky\n\nfrog lime\n", encoding="utf-8")
    assert main(["predict", str(run), "--file", str(inputs), "--json"]) == 0
    assert [json.loads(line)["input"] for line in capsys.readouterr().out.splitlines()] == [
        "sky",
        "frog lime",
    ]
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("sea\nrose\npea\n"))
    assert main(["predict", str(run), "--batch-size", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert "no words" in error_of(capsys, "predict", str(run), "1234")


def test_csv_small_file_scales_or_names_the_option(tmp_path):
    path = tmp_path / "five.csv"
    path.write_text("text,label\na b,x\nc d,y\ne f,x\ng h,y\ni j,x\n", encoding="utf-8")
    ds = CsvDataset(CsvConfig(path=str(path)))
    assert (ds.num_examples("train"), ds.num_examples("val")) == (4, 1)  # 10% of 5 -> at least 1
    with pytest.raises(
        SeqfuncError,
        match=r"val_size=5\) leaves none to train on: lower -d val_size= or give "
        r"a validation file with -d val_path=FILE",
    ):
        CsvDataset(CsvConfig(path=str(path), val_size=5))
    one = tmp_path / "one.csv"
    one.write_text("text,label\nhello there,x\n", encoding="utf-8")
    with pytest.raises(
        SeqfuncError, match=r"one.csv: 1 usable row.*val_fraction=0.1.*-d val_path=FILE"
    ):
        CsvDataset(CsvConfig(path=str(one)))
    # a given validation file: all of path trains
    val = tmp_path / "val.jsonl"
    val.write_text(
        '{"text": "k l", "label": "x"}\n{"text": "m n", "label": "y"}\n', encoding="utf-8"
    )
    ds = CsvDataset(CsvConfig(path=str(path), val_path=str(val)))
    assert (ds.num_examples("train"), ds.num_examples("val"), ds.classes) == (5, 2, ("x", "y"))


def test_csv_bad_rows_name_file_and_line_or_are_skipped(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text(
        "text,label\ngood words,a\nno label here\n,b\nmore words,b\nfine,a\n", encoding="utf-8"
    )
    err = error_of(
        capsys, "train", "csv", "-d", f"path={path}", "--steps", "1", "--out", str(tmp_path / "r")
    )
    assert f"{path}:3: the row has no 'label' value (pass -d bad_rows=skip" in err
    ds = CsvDataset(CsvConfig(path=str(path), bad_rows="skip"))
    assert [p.where for p in ds.skipped] == [f"{path}:3", f"{path}:4"]
    assert "csv: skipped 2 bad row(s)" in capsys.readouterr().err
    with pytest.raises(
        SeqfuncError,
        match=r"bad.csv:1: the header has no column 'review'.*text_column/label_column",
    ):
        CsvDataset(CsvConfig(path=str(path), text_column="review"))


def test_csv_labels_sort_numbers_numerically(tmp_path):
    path = tmp_path / "n.jsonl"
    path.write_text(
        "".join(json.dumps({"text": f"w{i} x", "label": i % 3 * 5}) + "\n" for i in range(12))
    )
    assert CsvDataset(CsvConfig(path=str(path))).classes == ("0", "5", "10")


# -- pairs: trains and predicts -------------------------------------------------------------------


def test_pairs_trains_and_predicts(tmp_path, capsys):
    data, run = write_pairs(tmp_path / "rev.tsv"), tmp_path / "run"
    out = train(
        capsys,
        "pairs",
        "-d",
        f"path={data}",
        "--steps",
        "20",
        "--d-model",
        "32",
        "--d-ff",
        "64",
        "--layers",
        "1",
        "--heads",
        "2",
        "--out",
        str(run),
    )
    assert "exact_match" in out
    data.unlink()
    assert main(["predict", str(run), "--json", "the cat sat", "dog ran"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["input"] for p in lines] == ["the cat sat", "dog ran"]
    assert all(set(p["output"].split()) <= set(WORDS) for p in lines)
    assert main(["predict", str(run), "the cat sat", "--beam", "2"]) == 0
    assert "is empty" in error_of(capsys, "predict", str(run), " ")


def test_pairs_small_file_scales_or_names_the_option(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("a\tb\nc\td\ne\tf\n", encoding="utf-8")
    ds = PairsDataset(PairsConfig(path=str(path)))
    assert (ds.num_examples("train"), ds.num_examples("val")) == (2, 1)
    path.write_text("a\tb\n", encoding="utf-8")
    with pytest.raises(
        SeqfuncError, match=r"p.tsv: 1 distinct source.*val_fraction=0.1.*lower -d val_fraction="
    ):
        PairsDataset(PairsConfig(path=str(path)))


def test_pairs_bad_lines_name_file_and_line(tmp_path, capsys):
    path = tmp_path / "p.tsv"
    path.write_text("a b\tb a\nno tab here\nc d\td c\n", encoding="utf-8")
    err = error_of(
        capsys, "train", "pairs", "-d", f"path={path}", "--steps", "1", "--out", str(tmp_path / "r")
    )
    assert f"{path}:2: no tab between the two sentences (pass -d bad_rows=skip" in err
    ds = PairsDataset(PairsConfig(path=str(path), bad_rows="skip", val_size=1))
    assert ds.num_examples("train") + ds.num_examples("val") == 2 and len(ds.bad_lines) == 1
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text(
        '{"source": "Hi There", "target": "salut"}\n{"source": "x"}\n'
        '{"source": "y", "target": "z"}\n'
    )
    with pytest.raises(SeqfuncError, match=r"p.jsonl:2: no 'target' field"):
        PairsDataset(PairsConfig(path=str(jsonl)))
    ds = PairsDataset(PairsConfig(path=str(jsonl), bad_rows="skip", preprocess=False))
    assert ("Hi There", "salut") in ds.texts("train") + ds.texts("val")


# -- conveniences --------------------------------------------------------------------------------


def test_version(capsys):
    from seqfunc import __version__

    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0 and capsys.readouterr().out.strip() == f"seqfunc {__version__}"


def test_config_file_toml_and_json_then_print_config(tmp_path, capsys):
    toml = tmp_path / "run.toml"
    toml.write_text(
        'steps = 7\nlr = 0.01\n[dataset]\nname = "csv"\npath = "x.csv"\nval_fraction = 0.25\n'
        "[model]\nd_model = 24\n",
        encoding="utf-8",
    )
    assert main(["train", "--config", str(toml), "--print-config", "--lr", "0.02"]) == 0
    printed = json.loads(capsys.readouterr().out)
    cfg = printed["train"]
    assert (cfg["dataset"], cfg["model"], cfg["steps"], cfg["lr"]) == ("csv", "baseline", 7, 0.02)
    assert cfg["batch_size"] == 32 and cfg["epochs"] is None  # the recipe's, and --steps wins
    assert cfg["model_options"] == {"pool": "mean", "d_model": 24}  # over the recipe's
    assert (
        printed["dataset"]["config"]["val_fraction"] == 0.25
        and printed["dataset"]["config"]["max_len"] == 256
    )
    again = tmp_path / "printed.json"
    again.write_text(json.dumps(printed), encoding="utf-8")  # what it prints reads back the same
    assert main(["train", "--config", str(again), "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out) == printed
    bad = tmp_path / "bad.json"
    bad.write_text('{"stepz": 3}', encoding="utf-8")
    assert "bad.json: unknown field(s) stepz" in error_of(
        capsys, "train", "--config", str(bad), "--print-config"
    )
    bad.write_text('{"steps": "many"}', encoding="utf-8")
    assert "TrainConfig.steps='many': must be an int" in error_of(
        capsys, "train", "--config", str(bad), "--print-config"
    )


def test_tensorboard_events_hold_the_metrics(tmp_path, capsys):
    pytest.importorskip(
        "tensorboard",
        reason="the tensorboard extra is not installed (pip install 'seqfunc[tensorboard]')",
    )
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data, run = write_csv(tmp_path / "c.csv"), tmp_path / "run"
    train(
        capsys,
        "csv",
        "-d",
        f"path={data}",
        "--steps",
        "6",
        "-t",
        "log_every=2",
        "--eval-every",
        "3",
        "--tensorboard",
        "--out",
        str(run),
    )
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for split in ("train", "val"):
        logged = [r for r in records if r["split"] == split]
        read = events.Scalars(f"{split}/loss")
        assert [e.step for e in read] == [r["step"] for r in logged]
        assert [e.value for e in read] == pytest.approx([r["loss"] for r in logged], rel=1e-6)
    assert "val/accuracy" in events.Tags()["scalars"]


def test_tensorboard_missing_is_one_line_before_any_run_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard -> ImportError
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    data = write_csv(tmp_path / "c.csv", rows=40)
    err = error_of(
        capsys,
        "train",
        "csv",
        "-d",
        f"path={data}",
        "--steps",
        "2",
        "--tensorboard",
        "--out",
        str(tmp_path / "run"),
    )
    assert "needs the tensorboard package: pip install 'seqfunc[tensorboard]'" in err
    assert not (tmp_path / "run" / "config.json").exists()


@pytest.mark.parametrize(
    "flags, compiled",
    [
        (["--steps", "5"], None),
        (["--steps", "500"], True),
        (["--steps", "5", "--compile"], True),
        ([], True),
    ],
)
def test_a_smoke_run_skips_the_recipes_compilation(flags, compiled):
    from seqfunc.cli import build_parser
    from seqfunc.cli.train import resolve_config

    assert (
        resolve_config(build_parser().parse_args(["train", "wikitext2", *flags])).compile
        is compiled
    )


def test_text_reads_a_folder_in_path_order(tmp_path):
    folder = tmp_path / "books"
    (folder / "b").mkdir(parents=True)
    write_text(folder / "a.txt", lines=100, seed=1)
    write_text(folder / "b" / "c.txt", lines=100, seed=2)
    (folder / "empty.txt").write_text("", encoding="utf-8")
    ds = TextDataset(TextConfig(path=str(folder), context=16))
    whole = (folder / "a.txt").read_text() + "\n" + (folder / "b" / "c.txt").read_text()
    assert ds.decode(ds.data["train"].tolist() + ds.data["val"].tolist()) == whole
    (tmp_path / "none").mkdir()
    with pytest.raises(SeqfuncError, match="the folder holds no files"):
        TextDataset(TextConfig(path=str(tmp_path / "none")))
