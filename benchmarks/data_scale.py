"""Corpora larger than memory: ``seqfunc prepare`` throughput and flat memory at any size.

For each size (MB; default 10, 100 and 1000) a corpus is generated in a temporary folder: Tiny
Shakespeare followed by seeded shuffles of its lines (random lines of the built-in fallback
text when the shared copy is absent). Then, each in a child process of its own:

* ``seqfunc prepare text`` with ``unit=byte``, ``char`` and ``subword``: MB/s of input and
  peak resident memory;
* the ``tokenizers`` library's own batch encoding (``encode_batch_fast``, else
  ``encode_batch``) of the same lines with the same trained tokenizer, timed alone (the
  subword goal's yardstick): MB/s;
* 100 steps of the Tiny Shakespeare GPT recipe (``shakespeare``'s: one layer, batch 16,
  context 64, AdamW at 1e-2) on the char shards: peak resident memory, seconds per step, and
  the time to fetch one training batch from the shards as a share of the step.

Peak resident memory is the child's ``ru_maxrss``, as ``resource.getrusage(RUSAGE_CHILDREN)``
reports it, read per child with ``os.wait4``.

    python benchmarks/data_scale.py [--sizes 10 100 1000] [--steps 100] [--subword-up-to MB]
                                    [--seed 0] [--keep DIR]

Goals: the largest corpus trains with peak memory within 100 MB of the smallest's; prepare
>= 50 MB/s for byte and char; subword prepare within 1.5x of ``tokenizers``' batch encoding;
batch fetch <= 2 % of the step. Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
UNITS = ("byte", "char", "subword")
#: The ``shakespeare`` dataset's recipe (seqfunc/data/shakespeare.py), on the ``text`` dataset.
RECIPE = [
    "--model",
    "gpt",
    "-m",
    "layers=1",
    "-m",
    "d_model=128",
    "-m",
    "heads=4",
    "-m",
    "dropout=0",
    "--batch-size",
    "16",
    "--optimizer",
    "adamw",
    "--lr",
    "1e-2",
    "--schedule",
    "warmup_cosine",
    "--warmup-steps",
    "30",
    "-t",
    "lr_end=1e-4",
    "-t",
    "b2=0.99",
    "-t",
    "weight_decay=0.1",
    "--clip-norm",
    "1.0",
    "-d",
    "context=64",
    "--examples",
    "0",
    "--no-compile",
]
FETCH_BATCHES = 200


# -- the corpus -------------------------------------------------------------------------------


def source_lines(seed: int) -> list[str]:
    if SHAKESPEARE.is_file():
        return SHAKESPEARE.read_text(encoding="utf-8").splitlines(keepends=True)
    r = random.Random(seed)
    words = "to be or not that is the question whether tis nobler in mind suffer".split()
    return [" ".join(r.choice(words) for _ in range(r.randint(3, 12))) + "\n" for _ in range(40000)]


def write_corpus(path: Path, megabytes: float, seed: int) -> int:
    """The source, then seeded shuffles of its lines, up to ``megabytes`` MB (whole lines)."""
    lines, r, want, size = source_lines(seed), random.Random(seed), int(megabytes * 2**20), 0
    order = list(range(len(lines)))
    with open(path, "w", encoding="utf-8") as f:
        first = True
        while size < want:
            if not first:
                r.shuffle(order)
            block = "".join(lines[i] for i in order)
            first = False
            data = block[: want - size] if size + len(block) > want else block
            if len(data) < len(block):
                data = data[: data.rfind("\n") + 1] or data
            f.write(data)
            size += len(data.encode("utf-8"))
            if len(data) < len(block):
                break
    return path.stat().st_size


# -- children ---------------------------------------------------------------------------------


def child(mode: str, **kwargs) -> tuple[dict, float]:
    """Run this script as a child in ``mode``; its last line of JSON and its peak RSS (MB)."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", mode, json.dumps(kwargs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"data_scale: child {mode} {kwargs} failed:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024  # KB -> MB


def run_child(mode: str, kwargs: dict) -> dict:
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    if mode == "prepare":
        from seqfunc.data.prepare import PrepareConfig, prepare

        manifest = prepare(PrepareConfig(**kwargs["config"]), kwargs["out"], progress=False)
        return {
            "seconds": manifest["seconds"],
            "input_bytes": manifest["input_bytes"],
            "tokens": sum(manifest["tokens"].values()),
            "dtype": manifest["dtype"],
        }
    if mode == "encode":  # the tokenizers library alone, on the lines prepare encodes
        from seqfunc.data.prepare import chunks, corpus_files
        from seqfunc.data.prepared import PreparedCorpus
        from seqfunc.data.text_tokenizers import tokenizer_from_json

        tokenizer = tokenizer_from_json(
            PreparedCorpus(kwargs["prepared"], verify=False).vocabulary["tokenizer"]
        ).tokenizer
        # the faster of its two batch encoders (same ids): the stricter yardstick
        encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
        seconds, tokens = 0.0, 0
        for data, _, _ in chunks(corpus_files(kwargs["path"])):
            lines = [line for line in data.decode("utf-8").splitlines() if line.strip()]
            start = time.perf_counter()
            tokens += sum(len(e.ids) for e in encode(lines, add_special_tokens=False))
            seconds += time.perf_counter() - start
        return {"seconds": seconds, "tokens": tokens}
    if mode == "train":
        from seqfunc.cli import main
        from seqfunc.data.text import TextConfig, TextDataset

        run = Path(kwargs["run"])
        start = time.perf_counter()
        code = main(
            [
                "train",
                "text",
                "-d",
                f"path={kwargs['prepared']}",
                "--steps",
                str(kwargs["steps"]),
                "--eval-every",
                str(kwargs["steps"]),
                "--eval-batches",
                "4",
                "-t",
                f"log_every={max(kwargs['steps'] // 4, 1)}",
                "--no-progress",
                "--out",
                str(run),
                *RECIPE,
            ]
        )
        if code != 0:
            raise SystemExit(code)
        wall = time.perf_counter() - start
        train = [
            r
            for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
            if r.get("split") == "train"
        ]
        (a, b) = (train[0], train[-2]) if len(train) > 2 else (train[0], train[-1])
        step_s = (b["elapsed_s"] - a["elapsed_s"]) / max(b["step"] - a["step"], 1)
        dataset = TextDataset(TextConfig(path=kwargs["prepared"], context=64))
        batches = dataset.batches("train", 16, epoch=1)
        start = time.perf_counter()
        for _ in range(FETCH_BATCHES):
            next(batches)
        fetch_s = (time.perf_counter() - start) / FETCH_BATCHES
        return {"wall_s": wall, "step_s": step_s, "fetch_s": fetch_s}
    raise SystemExit(f"unknown child mode {mode}")


# -- the table --------------------------------------------------------------------------------


def measure(size: float, folder: Path, seed: int, steps: int, subword: bool) -> dict:
    corpus = folder / f"corpus-{size:g}MB.txt"
    nbytes = write_corpus(corpus, size, seed)
    mb = nbytes / 2**20
    row: dict = {"size_mb": round(mb, 1)}
    for unit in UNITS if subword else ("byte", "char"):
        out = folder / f"prepared-{size:g}-{unit}"
        figures, rss = child("prepare", out=str(out), config={"path": str(corpus), "unit": unit})
        row[f"prepare_{unit}_mb_s"] = round(mb / figures["seconds"], 1)
        row[f"prepare_{unit}_rss_mb"] = round(rss, 1)
        print(
            f"  {size:g} MB {unit}: {mb / figures['seconds']:.1f} MB/s, peak RSS {rss:.0f} MB, "
            f"{figures['tokens']:,} tokens ({figures['dtype']})",
            flush=True,
        )
    if subword:
        figures, _ = child(
            "encode", path=str(corpus), prepared=str(folder / f"prepared-{size:g}-subword")
        )
        row["tokenizers_encode_mb_s"] = round(mb / figures["seconds"], 1)
        row["subword_vs_tokenizers"] = round(
            row["tokenizers_encode_mb_s"] / row["prepare_subword_mb_s"], 2
        )
    figures, rss = child(
        "train",
        prepared=str(folder / f"prepared-{size:g}-char"),
        run=str(folder / f"run-{size:g}"),
        steps=steps,
    )
    row.update(
        train_rss_mb=round(rss, 1),
        step_ms=round(figures["step_s"] * 1e3, 2),
        fetch_ms=round(figures["fetch_s"] * 1e3, 3),
        fetch_share=round(figures["fetch_s"] / figures["step_s"], 4),
    )
    print(
        f"  {size:g} MB train: peak RSS {rss:.0f} MB, step {figures['step_s'] * 1e3:.1f} ms, "
        f"batch fetch {figures['fetch_s'] * 1e3:.2f} ms",
        flush=True,
    )
    for unit in UNITS:  # free the disk before the next size
        for p in (folder / f"prepared-{size:g}-{unit}").glob("*"):
            p.unlink()
    corpus.unlink()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[10, 100, 1000], metavar="MB")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--subword-up-to",
        type=float,
        default=None,
        metavar="MB",
        help="measure the subword unit only on corpora up to MB (it is the slow one)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        metavar="DIR",
        help="work in DIR (default: a temporary folder, removed)",
    )
    parser.add_argument("--child", nargs=2, metavar=("MODE", "JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child[0], json.loads(args.child[1]))))
        return
    with tempfile.TemporaryDirectory(prefix="data_scale-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for size in args.sizes:
            print(f"{size:g} MB:", flush=True)
            subword = args.subword_up_to is None or size <= args.subword_up_to
            rows.append(measure(size, folder, args.seed, args.steps, subword))
    print_table(rows)
    small, large = rows[0], rows[-1]
    goals = {
        "train_rss_growth_mb": round(large["train_rss_mb"] - small["train_rss_mb"], 1),
        "memory_flat": large["train_rss_mb"] - small["train_rss_mb"] <= 100,
        "byte_char_50_mb_s": all(
            r[f"prepare_{u}_mb_s"] >= 50 for r in rows for u in ("byte", "char")
        ),
        "subword_within_1_5x": all(
            r["subword_vs_tokenizers"] <= 1.5 for r in rows if "subword_vs_tokenizers" in r
        ),
        "fetch_within_2_percent": all(r["fetch_share"] <= 0.02 for r in rows),
    }
    print(json.dumps({"rows": rows, "goals": goals, "cpus": os.cpu_count(), "steps": args.steps}))


def print_table(rows: list[dict]) -> None:
    columns = [
        ("size_mb", "MB"),
        ("prepare_byte_mb_s", "byte MB/s"),
        ("prepare_char_mb_s", "char MB/s"),
        ("prepare_subword_mb_s", "subword MB/s"),
        ("tokenizers_encode_mb_s", "tokenizers MB/s"),
        ("prepare_char_rss_mb", "prepare RSS MB"),
        ("prepare_subword_rss_mb", "subword RSS MB"),
        ("train_rss_mb", "train RSS MB"),
        ("step_ms", "step ms"),
        ("fetch_ms", "fetch ms"),
        ("fetch_share", "fetch/step"),
    ]
    widths = [max(len(title), 8) for _, title in columns]
    print()
    print("  ".join(title.rjust(w) for (_, title), w in zip(columns, widths)))
    for row in rows:
        print(
            "  ".join(
                (
                    "-"
                    if key not in row
                    else f"{row[key]:.2%}"
                    if key == "fetch_share"
                    else str(row[key])
                ).rjust(w)
                for (key, _), w in zip(columns, widths)
            )
        )


if __name__ == "__main__":
    main()
