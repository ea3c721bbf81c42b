"""Every bad input of issue 20 gives one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import re
import subprocess
import sys

import attrs
import pytest

from seqfunc.cli import main
from seqfunc.config import ConfigError, from_dict, typed_fields


def one_error_line(capsys, argv) -> str:
    """Run ``seqfunc ARGV`` in-process; assert exit code 2 and one line on stderr; return it."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (
            ["train", "-m", "nosuch=3"],
            "unknown field(s) nosuch for Seq2SeqTransformerConfig; known fields: ",
        ),
        (["train", "-m", "d_model=abc"], "Seq2SeqTransformerConfig.d_model='abc': must be an int"),
        (["train", "-t", "lr=abc"], "TrainConfig.lr='abc': must be a number"),
        (["train", "-t", "nosuch=1"], "unknown field(s) nosuch for TrainConfig"),
        (["train", "-d", "nosuch=1"], "unknown field(s) nosuch for FormulaConfig"),
        (
            ["train", "-m", "norm_first=maybe"],
            "norm_first='maybe': must be a boolean (true/false/1/0/yes/no)",
        ),
        (["train", "--device", "cuda:7", "--steps", "1"], "device='cuda:7': no such device"),
        (["train", "--device", "nodevice", "--steps", "1"], "device='nodevice': not a device name"),
        (["check", "gpt", "-m", "typo=8"], "unknown field(s) typo for GPTConfig"),
        (["train", "--steps", "x"], "argument --steps: invalid int value: 'x'"),
        (["train", "-m", "novalue"], "expected KEY=VALUE, got 'novalue'"),
    ],
)
def test_bad_option_is_one_line(capsys, tmp_path, argv, expected):
    out = tmp_path / "run"
    line = one_error_line(capsys, [*argv, "--out", str(out)] if argv[0] == "train" else argv)
    assert expected in line
    assert not out.exists()  # a refused run leaves no folder behind


@pytest.mark.parametrize("text", ["", "abc"])
def test_too_short_text_file_names_the_file_and_the_minimum(capsys, tmp_path, text):
    path = tmp_path / "tiny.txt"
    path.write_text(text)
    line = one_error_line(
        capsys, ["train", "shakespeare", "-d", f"path={path}", "--out", str(tmp_path / "run")]
    )
    assert f"{path}: {len(text)} characters" in line and "needs at least 660" in line
    assert not (tmp_path / "run").exists()


def test_list_no_load_claims_no_status(capsys):
    import json

    assert main(["list", "--json", "--no-load"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows and all(r["ok"] is None and r["loaded"] is False for r in rows)


def test_list_into_a_closed_pipe_is_quiet():
    proc = subprocess.run(
        f"{sys.executable} -m seqfunc list | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout == "datasets:\n" and proc.stderr == "", proc.stderr


# -- typed fields, for every config alike ----------------------------------------------------


@attrs.frozen
class Example:
    n: int = 1
    x: float = 1.0
    flag: bool = False
    name: str = "a"
    limit: int | None = None
    sizes: tuple[int, ...] = (1,)


@pytest.mark.parametrize(
    "field, text, value",
    [
        ("n", "12", 12),
        ("x", "1e-3", 1e-3),
        ("x", "2", 2.0),
        ("flag", "yes", True),
        ("flag", "0", False),
        ("flag", "TRUE", True),
        ("name", "123", "123"),
        ("limit", "none", None),
        ("limit", "7", 7),
        ("sizes", "[2, 3]", (2, 3)),
    ],
)
def test_text_is_parsed_by_the_field_type(field, text, value):
    assert getattr(from_dict(Example, {field: text}), field) == value


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("n", "abc", "must be an int"),
        ("n", True, "must be an int"),
        ("x", "fast", "must be a number"),
        ("flag", "maybe", "must be a boolean (true/false/1/0/yes/no)"),
        ("flag", 2, "must be a boolean"),
        ("name", 5, "must be a string"),
        ("limit", "lots", "must be an int or none"),
        ("sizes", "3", "must be a JSON list"),
    ],
)
def test_wrong_type_names_field_and_type(field, value, expected):
    with pytest.raises(ConfigError, match=rf"where: Example\.{field}=.*: {re.escape(expected)}"):
        typed_fields(Example, {field: value}, where="where")


def test_json_configs_round_trip_unchanged():
    example = Example(n=3, x=0.5, flag=True, name="b", limit=4, sizes=(1, 2))
    assert from_dict(Example, attrs.asdict(example)) == example


def test_a_path_the_system_refuses_is_one_line(capsys, tmp_path):
    """Too long a name, or a folder where a file is wanted: the OS's reason, in one line."""
    assert "File name too long" in one_error_line(capsys, ["predict", "x" * 300, "1+1"])
    line = one_error_line(
        capsys, ["train", "shakespeare", "-d", f"path={tmp_path}", "--out", str(tmp_path / "run")]
    )
    assert str(tmp_path) in line
