"""``seqfunc prepare`` and the ``text`` dataset on a prepared folder, on generated files:
prepare, train, resume bit-exactly; the prepared and the in-memory paths agree on tokens and
windows; an interrupted prepare leaves no corpus that looks whole and a re-run succeeds; bad
input is one line naming the file."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path
from random import Random

import numpy as np
import pytest
import torch

from seqfunc import rng
from seqfunc.cli import main
from seqfunc.data import prepare as prepare_module
from seqfunc.data.prepare import PrepareConfig, prepare
from seqfunc.data.prepared import INCOMPLETE_MARKER, MANIFEST, PreparedCorpus
from seqfunc.data.random_slices import random_slices
from seqfunc.data.text import TextConfig, TextDataset
from seqfunc.testing import check_dataset

WORDS = "the cat sat on a mat and dog ran far away while birds sing in trees".split()
TINY_LM = ["-m", "d_model=32", "-m", "layers=1", "-m", "heads=2"]
DRIVER = Path(__file__).with_name("run_driver.py")


def write_text(path: Path, lines: int = 400, seed: int = 0, extra: str = "") -> Path:
    r = Random(seed)
    words = WORDS + extra.split()
    path.write_text(
        "".join(
            " ".join(r.choice(words) for _ in range(r.randint(3, 9))) + "\n" for _ in range(lines)
        ),
        encoding="utf-8",
    )
    return path


def prepared(tmp_path: Path, source: Path, name: str = "corpus", **options) -> Path:
    out = tmp_path / name
    prepare(PrepareConfig(path=str(source), **options), out, progress=False)
    return out


def error_of(capsys, *argv) -> str:
    """The one stderr line of a command that fails with exit code 2."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def shard_tokens(folder: Path) -> np.ndarray:
    """All the tokens of a prepared folder, train then val, as int64."""
    corpus = PreparedCorpus(folder)
    return np.concatenate(
        [corpus.tokens(s)[0 : corpus.tokens(s).numel()].numpy() for s in ("train", "val")]
    )


# -- the prepared and the in-memory paths agree -------------------------------------------------


@pytest.mark.parametrize("chunk_bytes", [None, 61])
@pytest.mark.parametrize("unit", ["byte", "char"])
def test_shards_hold_the_in_memory_tokens(tmp_path, monkeypatch, unit, chunk_bytes):
    """Also read in tiny chunks: ASCII and non-ASCII chunks, lines longer than a chunk and a
    line longer than the longest line read whole (cut between characters)."""
    if chunk_bytes:
        monkeypatch.setattr(prepare_module, "CHUNK_BYTES", chunk_bytes)
    source = write_text(tmp_path / "t.txt", extra="café naïve 東京")
    with open(source, "a", encoding="utf-8") as f:
        f.write("東京" * 200 + "\n" + "x" * 300 + "\nthe end\n")
    folder = prepared(tmp_path, source, unit=unit, shard_tokens=700)
    corpus = PreparedCorpus(folder)
    assert len(corpus.shards("train")) > 3  # several shards, windows across their boundaries
    memory = TextDataset(TextConfig(path=str(source), unit=unit))
    whole = torch.cat([memory.data["train"], memory.data["val"]]).numpy()
    np.testing.assert_array_equal(shard_tokens(folder), whole)
    on_disk = TextDataset(TextConfig(path=str(folder), unit=unit))
    assert on_disk.vocab.idx_to_token == memory.vocab.idx_to_token
    assert corpus.manifest["dtype"] == (
        "uint8" if unit == "byte" or len(memory.vocab) <= 256 else "uint16"
    )


def test_a_folder_of_files_is_the_files_joined_by_newlines(tmp_path):
    (tmp_path / "src").mkdir()
    for i in range(3):
        write_text(tmp_path / "src" / f"part{i}.txt", lines=60, seed=i)
    folder = prepared(tmp_path, tmp_path / "src", shard_tokens=500)
    memory = TextDataset(TextConfig(path=str(tmp_path / "src")))
    np.testing.assert_array_equal(
        shard_tokens(folder), torch.cat([memory.data["train"], memory.data["val"]]).numpy()
    )
    glob_folder = prepared(tmp_path, tmp_path / "src" / "part*.txt", name="by-glob")
    np.testing.assert_array_equal(shard_tokens(glob_folder), shard_tokens(folder))


def test_windows_across_shards_equal_slices_of_the_whole(tmp_path):
    source = write_text(tmp_path / "t.txt")
    folder = prepared(tmp_path, source, unit="byte", shard_tokens=97)
    tokens = PreparedCorpus(folder).tokens("train")
    whole = torch.from_numpy(tokens[0 : tokens.numel()].numpy())
    for i in range(5):
        want = random_slices(whole, rng.key(i), 16, 40)
        got = random_slices(tokens, rng.key(i), 16, 40)
        assert all(torch.equal(want[k], got[k]) for k in want)


def test_subword_shards_end_each_line_in_eos(tmp_path):
    source = write_text(tmp_path / "t.txt")
    folder = prepared(tmp_path, source, unit="subword", vocab_size=80)
    ds = TextDataset(TextConfig(path=str(folder), unit="subword", vocab_size=80, context=16))
    lines = source.read_text().splitlines()
    train_lines = (
        sum(
            1
            for _ in ds.decode(ds.data["train"][0 : ds.data["train"].numel()].tolist()).split("\n")
        )
        - 1
    )
    assert ds.decode(ds.data["train"][0:200].tolist()).split("\n")[:3] == lines[:3]
    assert 0 < train_lines < len(lines)
    assert (
        ds.data["train"].numel() + ds.data["val"].numel() < source.stat().st_size
    )  # pieces, not characters


@pytest.mark.parametrize("unit", ["byte", "subword"])
def test_text_on_a_prepared_folder_conforms(tmp_path, unit):
    folder = prepared(tmp_path, write_text(tmp_path / "t.txt"), unit=unit, shard_tokens=900)
    options = {
        "path": str(folder),
        "unit": unit,
        "context": 16,
        **({"vocab_size": 2000} if unit == "subword" else {}),
    }
    report = check_dataset(TextDataset, options=options, max_examples=4)
    assert report.ok, report.summary()


# -- train, generate, resume ------------------------------------------------------------------


def train_args(folder: Path, *extra: str) -> list[str]:
    return [
        "train",
        "text",
        "-d",
        f"path={folder}",
        "-d",
        "context=24",
        "--steps",
        "16",
        "--batch-size",
        "8",
        "--eval-every",
        "8",
        "--eval-batches",
        "2",
        "--checkpoint-every",
        "4",
        "-t",
        "log_every=4",
        "-t",
        "warmup_steps=2",
        "--examples",
        "1",
        "--no-progress",
        *TINY_LM,
        *extra,
    ]


def test_prepare_train_generate_then_resume_bit_exactly(tmp_path, capsys):
    source = write_text(tmp_path / "t.txt")
    folder = tmp_path / "corpus"
    assert (
        main(
            [
                "prepare",
                "text",
                "-d",
                f"path={source}",
                "--out",
                str(folder),
                "--no-progress",
                "-d",
                "shard_tokens=1000",
            ]
        )
        == 0
    )
    assert "train on it: seqfunc train text -d path=" in capsys.readouterr().out
    ref = tmp_path / "ref"
    assert main([*train_args(folder), "--out", str(ref)]) == 0
    assert json.loads((ref / "text_vocab.json").read_text()) == PreparedCorpus(folder).vocabulary
    assert main(["generate", str(ref), "--prompt", "the ", "--tokens", "10"]) == 0
    capsys.readouterr()

    run = tmp_path / "run"  # killed (SIGKILL) after step 6, then resumed
    killed = subprocess.run(
        [sys.executable, str(DRIVER), "kill", "6", "--", *train_args(folder), "--out", str(run)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert killed.returncode == -9, killed.stderr
    resumed = subprocess.run(
        [
            sys.executable,
            str(DRIVER),
            "none",
            "0",
            "--",
            "train",
            "--resume",
            str(run),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert resumed.returncode == 0, resumed.stderr
    for name in ("params.safetensors", "opt_state.safetensors"):
        assert (run / name).read_bytes() == (ref / name).read_bytes(), f"{name} differs"


def test_resume_on_a_corpus_prepared_again_differently_names_both(tmp_path, capsys):
    source = write_text(tmp_path / "t.txt")
    folder = prepared(tmp_path, source)
    run = tmp_path / "run"
    assert main([*train_args(folder), "--steps", "4", "--out", str(run)]) == 0
    capsys.readouterr()
    import shutil

    shutil.rmtree(folder)
    prepared(tmp_path, write_text(tmp_path / "t.txt", extra="zebra quokka"))
    err = error_of(capsys, "train", "--resume", str(run), "--steps", "8", "--no-progress")
    assert f"{folder / MANIFEST}: the shards were prepared with another vocabulary" in err
    assert "(unit=char, 24 characters" in err and "text_vocab.json (unit=char, 20 characters" in err


# -- interrupted prepares ---------------------------------------------------------------------


def test_interrupted_prepare_leaves_no_corpus_and_a_rerun_succeeds(tmp_path, capsys, monkeypatch):
    source = write_text(tmp_path / "t.txt")
    folder = tmp_path / "corpus"
    calls = []

    def failing_write(file, data):
        calls.append(len(data))
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C half-way through
        file.write(data)

    monkeypatch.setattr(prepare_module, "_write", failing_write)
    with pytest.raises(KeyboardInterrupt):
        prepare(PrepareConfig(path=str(source), shard_tokens=500), folder, progress=False)
    assert not (folder / MANIFEST).exists() and not list(folder.glob("*.bin*"))
    err = error_of(capsys, *train_args(folder), "--out", str(tmp_path / "run"))
    assert f"{folder}: an unfinished prepared corpus (no manifest.json" in err
    monkeypatch.undo()
    assert (
        main(["prepare", "text", "-d", f"path={source}", "--out", str(folder), "--no-progress"])
        == 0
    )
    assert (folder / MANIFEST).exists() and not (folder / INCOMPLETE_MARKER).exists()


def test_a_killed_prepare_leftovers_are_cleared_by_the_rerun(tmp_path, capsys):
    """What SIGKILL leaves (the marker, whole shards, a half-written one) is never read, and
    the next prepare into the folder starts over."""
    source = write_text(tmp_path / "t.txt")
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / INCOMPLETE_MARKER).touch()
    (folder / "train-00000.bin").write_bytes(b"\x00" * 100)
    (folder / "train-00001.bin.tmp").write_bytes(b"\x01" * 7)
    assert "an unfinished prepared corpus" in error_of(
        capsys, *train_args(folder), "--out", str(tmp_path / "r")
    )
    assert (
        main(["prepare", "text", "-d", f"path={source}", "--out", str(folder), "--no-progress"])
        == 0
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        MANIFEST,
        "train-00000.bin",
        "val-00000.bin",
    ]
    np.testing.assert_array_equal(
        shard_tokens(folder), shard_tokens(prepared(tmp_path, source, name="again"))
    )


def test_disk_full_is_one_line_and_leaves_nothing_that_looks_whole(tmp_path, capsys, monkeypatch):
    source = write_text(tmp_path / "t.txt")
    folder = tmp_path / "corpus"
    calls = []

    def full_disk(file, data):
        calls.append(1)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        file.write(data)

    monkeypatch.setattr(prepare_module, "_write", full_disk)
    err = error_of(
        capsys,
        "prepare",
        "text",
        "-d",
        f"path={source}",
        "--out",
        str(folder),
        "-d",
        "shard_tokens=300",
        "--no-progress",
    )
    assert (
        f"{folder}: prepare failed writing {folder / 'train-00002.bin'} (No space left on device)"
        in err
    )
    assert not (folder / MANIFEST).exists() and not list(folder.glob("*.bin*"))


def test_prepare_refuses_a_finished_corpus_or_a_folder_of_other_files(tmp_path, capsys):
    source = write_text(tmp_path / "t.txt")
    folder = prepared(tmp_path, source)
    argv = ["prepare", "text", "-d", f"path={source}", "--no-progress", "--out"]
    assert "holds a prepared corpus already (manifest.json)" in error_of(capsys, *argv, str(folder))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    assert "the folder holds other files (keep.txt)" in error_of(
        capsys, *argv, str(tmp_path / "notes")
    )
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"


# -- bad input --------------------------------------------------------------------------------


def test_invalid_utf8_names_file_and_byte_offset_for_chars_bytes_take_it(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    text = write_text(tmp_path / "t.txt").read_bytes()
    bad.write_bytes(text[:1000] + b"\xff" + text[1000:])
    err = error_of(
        capsys,
        "prepare",
        "text",
        "-d",
        f"path={bad}",
        "--out",
        str(tmp_path / "c"),
        "--no-progress",
    )
    assert f"{bad}: not UTF-8 text: byte 1000 is 0xff" in err
    assert not (tmp_path / "c" / MANIFEST).exists()
    folder = prepared(tmp_path, bad, name="bytes", unit="byte")
    assert shard_tokens(folder)[1000] == 0xFF


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty.txt:1: empty text file"),
        ("  \n\n \n", "empty.txt:1: empty text file"),
        ("just one line of text without an end", "too short to split: "),
    ],
)
def test_empty_or_one_line_corpus_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "empty.txt"
    path.write_text(content, encoding="utf-8")
    err = error_of(
        capsys,
        "prepare",
        "text",
        "-d",
        f"path={path}",
        "--out",
        str(tmp_path / "c"),
        "--no-progress",
    )
    assert message in err
    assert not (tmp_path / "c" / MANIFEST).exists()


def test_a_corpus_shorter_than_the_context_names_the_option(tmp_path, capsys):
    path = tmp_path / "short.txt"
    path.write_text("".join(f"line {i}\n" for i in range(12)), encoding="utf-8")
    folder = prepared(tmp_path, path)
    err = error_of(capsys, *train_args(folder), "--out", str(tmp_path / "r"))
    assert "the prepared val split has" in err and "lower -d context=" in err


def test_shards_that_do_not_match_the_manifest_are_refused(tmp_path, capsys):
    folder = prepared(tmp_path, write_text(tmp_path / "t.txt"), shard_tokens=1000)
    shard = folder / "train-00001.bin"
    data = bytearray(shard.read_bytes())
    data[10] ^= 1
    shard.write_bytes(bytes(data))
    err = error_of(capsys, *train_args(folder), "--out", str(tmp_path / "r1"))
    assert f"{shard}: sha256 differs from manifest.json's" in err
    shard.write_bytes(bytes(data[:-5]))
    err = error_of(capsys, *train_args(folder), "--out", str(tmp_path / "r2"))
    assert f"{shard}: 995 bytes, manifest.json says 1000" in err


def test_another_unit_or_tokenizer_than_the_run_asks_names_both(tmp_path, capsys):
    source = write_text(tmp_path / "t.txt")
    folder = prepared(tmp_path, source, unit="byte")
    err = error_of(capsys, *train_args(folder), "--out", str(tmp_path / "r1"))
    assert "prepared with unit=byte, the run asks for unit=char: train with -d unit=byte" in err
    folder = prepared(tmp_path, source, name="sub", unit="subword", vocab_size=80)
    err = error_of(capsys, *train_args(folder, "-d", "unit=subword"), "--out", str(tmp_path / "r2"))
    assert "a tokenizer of vocab_size=80, the run asks for vocab_size=2000" in err
