"""The command line never answers with a traceback: Hypothesis builds ``seqfunc`` command
lines from real option names, awkward values and data files (random bytes, empty, one huge
line, Latin-1 text, a good text) and every one ends with exit code 0, or 2 and one line on
stderr. Each case runs in-process and trains at most two steps, so the test stays bounded."""

from __future__ import annotations

import contextlib
import io
import itertools
import warnings
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from seqfunc.cli import main

VALUES = (
    "",
    "0",
    "1",
    "-1",
    "2",
    "3",
    "0.5",
    "1e-3",
    "1e400",
    "nan",
    "inf",
    "-inf",
    "abc",
    "true",
    "false",
    "maybe",
    "yes",
    "None",
    "[]",
    "{}",
    "cpu",
    "cuda",
    "cuda:3",
    "mps",
    "ü",
    "x" * 300,
    "4=4",
    " 1 ",
    "0x10",
    "1_000",
)
TRAIN_FLAGS = (
    "--lr",
    "--d-model",
    "--heads",
    "--layers",
    "--d-ff",
    "--dropout",
    "--seed",
    "--clip-norm",
    "--warmup-steps",
    "--device",
    "--optimizer",
    "--schedule",
    "--examples",
    "--checkpoint-every",
    "--eval-every",
    "--recipe",
)
FIELDS = {  # -m / -t / -d names: real fields of the configs below, and typos
    "-m": ("d_model", "heads", "layers", "dropout", "norm_first", "attention", "d_ff", "typo"),
    "-t": (
        "lr",
        "weight_decay",
        "b1",
        "clip_norm",
        "max_nonfinite",
        "keep_checkpoints",
        "optimizer",
        "schedule",
        "compile",
        "typo",
    ),
    "-d": ("path", "complexity", "n_train", "length", "seed", "bptt", "typo"),
}
DATASETS = ("xor", "formula", "shakespeare")
# Appended last (argparse: the last one wins), so that any run that starts is two steps long.
BOUNDED = (
    "--steps",
    "2",
    "--eval-every",
    "1",
    "--eval-batches",
    "1",
    "--no-progress",
    "-t",
    "final_eval_batches=1",
)


def data_file(folder: Path, kind: str, counter=itertools.count()) -> Path:
    """A data file of one awkward kind."""
    path = folder / f"data-{next(counter)}.txt"
    content = {
        "empty": b"",
        "bytes": bytes(range(256)) * 3,
        "huge line": b"a" * 200_000,
        "latin-1": ("caf\u00e9 na\u00efve " * 100).encode("latin-1"),
        "text": b"First Citizen:\nBefore we proceed any further, hear me speak.\n" * 40,
    }[kind]
    path.write_bytes(content)
    return path


def assignment(flag: str) -> st.SearchStrategy:
    return st.tuples(st.sampled_from(FIELDS[flag]), st.sampled_from(VALUES)).map("=".join)


option = st.one_of(
    st.tuples(st.sampled_from(TRAIN_FLAGS), st.sampled_from(VALUES)),
    st.sampled_from(tuple(FIELDS)).flatmap(lambda f: st.tuples(st.just(f), assignment(f))),
)
FILE_KINDS = ("empty", "bytes", "huge line", "latin-1", "text")


def run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with (
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
        mock.patch("sys.stdin", io.StringIO("")),
        warnings.catch_warnings(),
    ):  # predict reads stdin
        warnings.simplefilter("ignore")
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own errors
            code = exc.code
    return code, err.getvalue()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    dataset=st.sampled_from(DATASETS),
    options=st.lists(option, max_size=3),
    file_kind=st.one_of(st.none(), st.sampled_from(FILE_KINDS)),
)
@example(dataset="xor", options=[], file_kind=None)  # a good command line: it must train
@example(dataset="shakespeare", options=[], file_kind="text")
def test_train_command_lines_never_give_a_traceback(tmp_path_factory, dataset, options, file_kind):
    folder = tmp_path_factory.mktemp("fuzz")
    argv = ["train", dataset, *itertools.chain.from_iterable(options)]
    if file_kind is not None:
        argv += ["-d", f"path={data_file(folder, file_kind)}"]
    argv += [*BOUNDED, "--out", str(folder / "run")]
    code, err = run(argv)
    if not options and file_kind == ("text" if dataset == "shakespeare" else None):
        assert code == 0 and (folder / "run" / "params.safetensors").exists(), err
    assert "Traceback" not in err, f"seqfunc {' '.join(argv)}\n{err}"
    assert code in (0, 2), f"exit {code}: seqfunc {' '.join(argv)}\n{err}"
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "error" in lines[0], f"seqfunc {' '.join(argv)}\n{err}"


@settings(max_examples=30, deadline=None)
@given(
    command=st.sampled_from(("predict", "generate", "translate", "attention", "check")),
    words=st.lists(
        st.sampled_from(
            VALUES + ("--json", "-m", "--dataset", "--prompt", "gpt", "runs/none", "xor")
        ),
        max_size=4,
    ),
)
def test_other_commands_never_give_a_traceback(command, words):
    argv = [command, *words]
    if command == "check":
        argv += ["--examples", "1", "--no-compile"]
    code, err = run(argv)
    assert "Traceback" not in err, f"seqfunc {' '.join(argv)}\n{err}"
    assert code in (0, 1, 2) if command == "check" else code in (0, 2), (
        f"exit {code}: {argv}\n{err}"
    )
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1, f"seqfunc {' '.join(argv)}\n{err}"
