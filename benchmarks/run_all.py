"""Run every benchmark and quality command that fits a time budget; write the results page.

    python benchmarks/run_all.py [--budget 900] [--only NAME ...] [--list]
    python benchmarks/run_all.py --check [--only NAME ...] [--tree CHECKOUT] [--tolerance 0.15]

Each job is a command a user can type (a benchmark of this folder, or a ``seqfunc`` command
whose run folder holds the result). The jobs run one after another, cheapest first, while the
budget lasts: a job whose expected time no longer fits is skipped, and one that outlives the
budget is stopped. The figure of a benchmark is its last line (one JSON object); the figure of
a training run is the last validation record of its ``metrics.jsonl`` and the command's wall
time.

Every result is stored in ``docs/results.json`` with its own date, commit, machine load and
CPU kind (its widest vector unit: AVX2 or AVX-512, about 2x apart in speed, and compiled code
differs between them), one entry per job and CPU kind; a later run (``--only
formula-throughput``) replaces only the jobs it ran, on its own CPU kind. ``docs/results.md`` is
then rendered from that store: one row per job and CPU kind, the goal beside each figure, the
jobs not measured yet listed with their command. Nothing on the page is typed by hand.

``--check`` is the speed guard: it re-runs the jobs that have speed ratios (:attr:`Job.speed`),
compares each ratio with the stored row of the same CPU kind, prints every ratio with its
change, and exits 1 when one dropped by more than ``--tolerance`` (its noise). It writes
nothing. ``--tree CHECKOUT`` runs the jobs on another checkout of seqfunc (say a
``git worktree`` of an older commit) against this checkout's stored rows: would the guard
have caught that commit?
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "docs" / "results.json"
PAGE = ROOT / "docs" / "results.md"
RUNS = ROOT / "runs" / "run_all"


@attrs.frozen
class Job:
    """One command and how to read its figure.

    ``argv`` may contain ``{out}``: the job's run folder. ``reads`` says where the result is:
    ``"stdout"``, the last line printed (one JSON object); ``"run"``, the last validation record
    of the folder's ``metrics.jsonl``; any other name, that JSON file of the folder.
    ``seconds`` is the expected wall time on the idle 2-core CPU, for the budget only.
    ``speed`` names the result's speed ratios (higher is faster; each side of a ratio is
    measured in the same run), which ``--check`` compares with the stored row.
    """

    name: str
    what: str
    argv: tuple[str, ...]
    seconds: int
    figure: Callable[[dict], str]
    goal: str = ""
    reads: str = "stdout"
    speed: tuple[str, ...] = ()

    @property
    def command(self) -> str:
        """The command as a user types it (``python`` for this interpreter)."""
        words = ["python" if word == "{python}" else word for word in self.argv]
        return " ".join(
            w for i, w in enumerate(words) if w != "{out}" and words[i + 1 : i + 2] != ["{out}"]
        )


def _fmt_check(r: dict) -> str:
    failed = f", **failed: {', '.join(r['failed'])}**" if r["failed"] else ""
    return f"{len(r['passed'])} pass, {len(r['skipped'])} skip{failed} ({r['wall_s']:.0f} s)"


def _fmt_add2digits(r: dict) -> str:
    longest = max(row["length"] for row in r["results"])
    acc = {
        row["model"]: row["final_val_accuracy"] for row in r["results"] if row["length"] == longest
    }
    return (
        f"val accuracy at length {longest}: "
        + ", ".join(f"{m.upper()} **{a:.3f}**" for m, a in acc.items())
        + f" (chance 0.10; {r['wall_s'] / 60:.1f} min)"
    )


def _fmt_classify(r: dict) -> str:
    cells = {(c["dataset"], c["model"]): c for c in r["cells"]}
    best = max(cells.values(), key=lambda c: c["val_mean"])
    return (
        f"{len(cells)} cells; e.g. {best['model']} on {best['dataset']} "
        f"{best['val_mean']:.3f} ± {best['val_std']:.3f} ({r['wall_s']:.0f} s); "
        "every cell in `classify.json`"
    )


def _fmt_scaling(r: dict) -> str:
    parts = [f"{k} {v['time']:.2f} / {v['memory']:.2f}" for k, v in r["exponents"].items()]
    return "time / memory exponents: " + "; ".join(parts)


def _fmt_checkpoint(r: dict) -> str:
    parts = [
        f"{name}: {v['checkpoint_s'] * 1e3:.0f} ms a checkpoint, "
        f"{v['overhead_fraction']:.2%} of the run"
        for name, v in r.items()
        if name != "wall_s"
    ]
    return "; ".join(parts)


def _fmt_check_datasets(r: dict) -> str:
    checked = {name: v for name, v in r.items() if isinstance(v, dict) and "wall_s" in v}
    failed = [name for name, v in checked.items() if v["failed"]]
    head = f"**{len(checked) - len(failed)} of {len(r) - 1}** datasets pass" + (
        f", **failed: {', '.join(failed)}**" if failed else ""
    )
    return head + "; " + ", ".join(f"{name} {v['wall_s']:.0f} s" for name, v in checked.items())


def _fmt_data_parallel(r: dict) -> str:
    return (
        f"efficiency **{r['efficiency']:.2f}** ({r['examples_per_s_2x1']:.0f} examples/s on 2x1 vs "
        f"{r['examples_per_s_1x1']:.0f} on 1x1, {r['examples_per_s_1x2']:.0f} on 1x2); "
        f"all-reduce {r['allreduce_fraction']:.1%} of the step; efficiency = half-batch step "
        f"{r['efficiency_factors']['half_batch_step']:.2f} x sharing the machine "
        f"{r['efficiency_factors']['sharing_the_machine']:.2f} x the group (all-reduce, "
        f"lockstep) {r['efficiency_factors']['all_reduce_and_shard']:.2f}"
    )


PY = "{python}"


def _mean_sd(record: dict, name: str) -> str:
    """``"429 +- 12, 259 +- 3"``: a per-epoch list and its ``_sd`` list (plain without one)."""
    sds = record.get(f"{name}_sd") or [None] * len(record[name])
    return ", ".join(
        f"{m:.0f}" + (f" +- {sd:.0f}" if sd is not None else "") for m, sd in zip(record[name], sds)
    )


JOBS: tuple[Job, ...] = (
    Job(
        "generate",
        "KV-cached generation, 512 tokens, GPT 4x128",
        (PY, "benchmarks/generate.py"),
        30,
        lambda r: (
            f"cached **{r['speedup']:.2f}x** uncached ({r['cached_tokens_per_s']:.0f} vs "
            f"{r['uncached_tokens_per_s']:.0f} tokens/s); compiled **{r['compiled_speedup']:.2f}x** "
            f"cached eager ({r['compiled_tokens_per_s']:.0f} tokens/s); same tokens"
        ),
        goal="cached >= 5x uncached, compiled >= 1x cached",
        speed=("speedup", "compiled_speedup"),
    ),
    Job(
        "ensemble",
        "vmapped ensemble of 8 seeds vs 8 runs one after another",
        (PY, "benchmarks/ensemble.py"),
        40,
        lambda r: f"**{r['speedup']:.2f}x** ({r['vmapped_s']:.1f} vs {r['sequential_s']:.1f} s)",
        goal=">= 3x",
        speed=("speedup",),
    ),
    Job(
        "sweep",
        "sweep of 12 members (4 lr x 3 seeds) in one vmapped step vs one after another, "
        "both compiled",
        (PY, "benchmarks/sweep.py"),
        180,
        lambda r: (
            f"formula Transformer **{r['speedup_formula']:.2f}x**, IMDb-synth classifier "
            f"**{r['speedup_classifier']:.2f}x**"
        ),
        goal=">= 3x",
        speed=("speedup_formula", "speedup_classifier"),
    ),
    Job(
        "checkpoint-cost",
        "a checkpoint against the steps between two",
        (PY, "benchmarks/checkpoint_cost.py"),
        60,
        _fmt_checkpoint,
        goal="<= 2 % of the run",
    ),
    Job(
        "data-parallel",
        "formula step: 2 processes x 1 thread vs 1 process x 1 and x 2 threads",
        (PY, "benchmarks/data_parallel.py"),
        120,
        _fmt_data_parallel,
        goal="efficiency >= 0.85",
    ),
    Job(
        "data-parallel-512",
        "the same at a global batch of 512 (the recipe's: 128)",
        (PY, "benchmarks/data_parallel.py", "--rounds", "5", "--", "--batch-size", "512"),
        420,
        _fmt_data_parallel,
        goal="efficiency >= 0.85",
    ),
    Job(
        "check-datasets",
        "`seqfunc check --dataset` on every built-in dataset",
        (PY, "benchmarks/check_datasets.py"),
        120,
        _fmt_check_datasets,
        goal="every dataset passes",
    ),
    Job(
        "check-transformer",
        "`seqfunc check` on the seq2seq Transformer",
        ("seqfunc", "check", "transformer"),
        40,
        _fmt_check,
        goal="every invariant passes",
    ),
    Job(
        "formula-throughput",
        "formula training step vs assignment 000's `torch.nn.Transformer`",
        (PY, "benchmarks/formula_throughput.py"),
        150,
        lambda r: (
            f"compiled **{r['ratio_compiled']:.2f}x** (untrimmed "
            f"{r['ratio_compiled_untrimmed']:.2f}x), eager **{r['ratio_eager']:.2f}x**"
        ),
        goal=">= 2.5x compiled, >= 1.2x eager",
        speed=("ratio_compiled", "ratio_eager"),
    ),
    Job(
        "char-lm-throughput",
        "character GPT training step vs a `torch.nn` GPT",
        (PY, "benchmarks/char_lm_throughput.py"),
        150,
        lambda r: (
            f"{r['mode']} **{r['ratio']:.2f}x**, {100 * r['gflops'] / r['peak_gflops']:.0f} % "
            f"of the matmul peak (the step's matmuls alone: "
            f"{100 * r['matmul_ceiling_gflops'] / r['peak_gflops']:.0f} %); eager "
            f"{r['eager_ratio']:.2f}x"
        ),
        goal=">= 1.3x, >= 75 % of peak",
        speed=("ratio", "eager_ratio"),
    ),
    Job(
        "attention-scaling",
        "attention kernels: growth of time and memory with length",
        (PY, "benchmarks/attention_scaling.py", "--lengths", "512", "1024", "2048", "4096"),
        150,
        _fmt_scaling,
        goal="chunked, linear, window: memory exponent <= 1",
    ),
    Job(
        "precision",
        "GPT step (6 x 384, context 256) in bf16 vs fp32",
        (PY, "benchmarks/precision.py"),
        120,
        lambda r: (
            f"bf16 **{r['speedup']:.2f}x** fp32 ({r['bf16_tokens_per_s']:.0f} vs "
            f"{r['fp32_tokens_per_s']:.0f} tokens/s), avx512_bf16 {str(r['avx512_bf16']).lower()}"
        ),
        goal=">= 1.8x on AVX512-BF16",
    ),
    Job(
        "memory",
        "peak memory of a GPT step (8 x 256, context 1024): recomputation, accumulation",
        (PY, "benchmarks/memory.py"),
        240,
        lambda r: (
            f"remat keeps **{r['remat_activation_fraction']:.2f}** of the activations at "
            f"**{r['remat_time_ratio']:.2f}x** the time; accumulate=8 peak "
            f"**{r['accumulate_peak_ratio']:.2f}x** the B/8 step's"
        ),
        goal="remat <= 0.33 at <= 1.4x; accumulation <= 1.1x",
    ),
    Job(
        "memory-live",
        "live tensor bytes of a GPT step (8 x 256, context 1024) before the optimizer",
        (PY, "benchmarks/memory_breakdown.py", "--top", "3"),
        60,
        lambda r: (
            f"remat keeps **{r['remat_live_activation_fraction']:.2f}** of the activations' "
            f"live bytes (floor {r['floor']['before_optimizer_mib']:.0f}, plain "
            f"{r['plain']['before_optimizer_mib']:.0f}, remat "
            f"{r['remat']['before_optimizer_mib']:.0f} MiB)"
        ),
        goal="remat <= 0.33",
    ),
    Job(
        "precision-recipe",
        "Tiny Shakespeare's recipe in bf16 vs fp32, 3 seeds a side",
        (PY, "benchmarks/precision_recipe.py", "--threads", "1"),
        1800,
        lambda r: (
            f"bf16 **{r['bf16_mean']:.4f}** vs fp32 **{r['fp32_mean']:.4f}** nats/char "
            f"(t = {r['t']:+.2f}: {'within' if r['within_noise'] else 'outside'} the noise)"
        ),
        goal="bf16 within the seeds' noise of fp32",
    ),
    Job(
        "shakespeare",
        "Tiny Shakespeare, character model",
        ("seqfunc", "train", "shakespeare", "--no-progress", "--out", "{out}"),
        130,
        lambda r: f"**{r['loss']:.4f}** nats/char in **{r['wall_s']:.0f} s**",
        goal="<= 1.70 nats/char in 110 s",
        reads="run",
    ),
    Job(
        "formula",
        "formula calculator, the default run",
        ("seqfunc", "train", "--no-progress", "--out", "{out}"),
        480,
        lambda r: (
            f"**{100 * r['exact_match']:.2f} %** exact match in **{r['wall_s'] / 60:.1f} min**"
        ),
        goal=">= 99 % exact match in 10 min",
        reads="run",
    ),
    Job(
        "classify-synthetic",
        "attention course's models on IMDb-synth and XOR, 3 seeds a cell",
        ("seqfunc", "experiment", "classify", "--datasets", "imdb-synth,xor", "--out", "{out}"),
        150,
        _fmt_classify,
        reads="classify.json",
    ),
    Job(
        "imdb",
        "IMDb sentiment, mean-pool baseline",
        ("seqfunc", "train", "imdb", "--no-progress", "--out", "{out}"),
        150,
        lambda r: f"**{r['accuracy']:.4f}** validation accuracy in **{r['wall_s']:.0f} s**",
        goal=">= 0.89 validation",
        reads="run",
    ),
    Job(
        "wikitext2-smoke",
        "WikiText-2: 5 steps, the whole validation split evaluated at the end",
        (
            "seqfunc",
            "train",
            "wikitext2",
            "--steps",
            "5",
            "--eval-batches",
            "2",
            "--no-progress",
            "--out",
            "{out}",
        ),
        20,
        lambda r: f"**{r['wall_s']:.1f} s** ({r['tokens']:,} validation tokens)",
        goal="< 15 s",
        reads="run",
    ),
    Job(
        "lm-evaluation",
        "language-model evaluation: output layer on chunks of positions vs apply on chunks of rows",
        (PY, "benchmarks/lm_evaluation.py"),
        60,
        lambda r: (
            f"**{r['speedup']:.2f}x** ({r['tokens_per_s_positions']:,} vs "
            f"{r['tokens_per_s_rows']:,} tokens/s); same loss: {'yes' if r['same_loss'] else '**no**'}"
        ),
        speed=("speedup",),
    ),
    Job(
        "wikitext2",
        "WikiText-2 word-level Transformer LM",
        ("seqfunc", "train", "wikitext2", "--no-progress", "--out", "{out}"),
        480,
        lambda r: f"perplexity **{r['perplexity']:.0f}** in **{r['wall_s'] / 60:.1f} min**",
        reads="run",
    ),
    Job(
        "wikitext-reference",
        "WikiText-2: assignment 002's recipe, PyTorch's module model vs seqfunc's, "
        "then seqfunc's default recipe in the module's 3-epoch time",
        (PY, "benchmarks/wikitext_reference.py"),
        2700,
        lambda r: (
            f"test perplexity by epoch, mean +- sd of {r.get('seeds', 1)} seeds: "
            f"module {_mean_sd(r, 'ref_ppl')}; seqfunc {_mean_sd(r, 'seed_recipe_ppl')}; "
            + (
                f"within noise: {', '.join('yes' if w else 'no' for w in r['within_noise'])}; "
                if "within_noise" in r
                else ""
            )
            + f"tokens/s **{r['tokens_per_s_ratio']:.2f}x**; default recipe **{r['default_ppl']:.0f}** "
            f"in {r['default_wall_s']:.0f} s (module's 3 epochs: {r['ref_wall_3_epochs_s']:.0f} s)"
        ),
        goal="seed recipe within the seeds' noise of the module; default <= 250 in the module's "
        "3-epoch time; >= 1.5x tokens/s",
    ),
    Job(
        "enwik8",
        "enwik8 (4 MB prefix), byte-level GPT, the default recipe",
        ("seqfunc", "train", "enwik8", "--no-progress", "--out", "{out}"),
        600,
        lambda r: (
            f"**{r['bits_per_token']:.3f}** bits per byte (last position "
            f"{r['last_bits_per_token']:.3f}) in **{r['wall_s'] / 60:.1f} min**"
        ),
        goal="<= 2.2 bits per byte in 10 min",
        reads="run",
    ),
    Job(
        "add2digits",
        "RNN vs LSTM on Add2Digits",
        ("seqfunc", "experiment", "add2digits", "--out", "{out}"),
        420,
        _fmt_add2digits,
        goal="LSTM clearly ahead at length 30",
    ),
    Job(
        "translation",
        "English -> French, Transformer and LSTM seq2seq, BLEU on 2,000 test pairs",
        (PY, "benchmarks/translation.py"),
        2400,
        lambda r: "; ".join(
            f"{m}: **{v['bleu_greedy']:.2f}** greedy / **{v['bleu_beam4']:.2f}** "
            f"beam 4 in {v['train_s'] / 60:.1f} min"
            for m, v in r.items()
            if m != "wall_s"
        ),
        goal="Transformer >= 30 BLEU in 15 min",
    ),
)


def last_json_line(stdout: str) -> dict:
    """The last non-empty line of a command's output, as a JSON object."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise ValueError("printed nothing")
    return json.loads(lines[-1])


def last_validation(folder: Path) -> dict:
    """The last ``"split": "val"`` record of a run folder's ``metrics.jsonl``."""
    records = [
        json.loads(line)
        for line in (folder / "metrics.jsonl").read_text().splitlines()
        if line.strip()
    ]
    val = [r for r in records if r.get("split") == "val"]
    if not val:
        raise ValueError(f"{folder}/metrics.jsonl has no validation record")
    return val[-1]


def run_job(job: Job, timeout: float, tree: Path = ROOT, out: Path | None = None) -> dict:
    """Run one job on the checkout ``tree``; its entry (result or the reason it has none) with
    date, load and CPU.

    A job's run folder is ``runs/run_all/NAME`` (made afresh), so the figures script can draw
    from it afterwards.
    """
    out = out or RUNS / job.name
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable if w == PY else str(out) if w == "{out}" else w for w in job.argv]
    if argv[0] == "seqfunc":  # this interpreter's seqfunc, whatever PATH holds
        argv[:1] = [sys.executable, "-m", "seqfunc"]
    # the checkout's own package first, whatever this interpreter has installed
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")])),
    }
    entry = {
        "command": job.command,
        "date": now(),
        "commit": commit(tree),
        "cpu": cpu(),
        "load_before": round(os.getloadavg()[0], 2),
    }
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        cwd=tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate()
        entry["status"] = f"stopped after {timeout:.0f} s (budget)"
        return entry
    entry["wall_s"] = round(time.perf_counter() - start, 1)
    entry["load_after"] = round(os.getloadavg()[0], 2)
    if proc.returncode != 0:
        tail = (stderr.strip().splitlines() or ["(no output)"])[-1]
        entry["status"] = f"exit {proc.returncode}: {tail}"
        return entry
    try:
        result = (
            last_json_line(stdout)
            if job.reads == "stdout"
            else last_validation(out)
            if job.reads == "run"
            else json.loads((out / job.reads).read_text())
        )
    except (ValueError, OSError) as err:
        entry["status"] = f"no result: {err}"
        return entry
    entry["status"] = "ok"
    entry["result"] = relative_paths(result, tree)
    return entry


def relative_paths(value, tree: Path):
    """``value`` with every string that names a path inside ``tree`` made relative to it: the
    store speaks of the repository, not of the machine it was measured on."""
    if isinstance(value, dict):
        return {k: relative_paths(v, tree) for k, v in value.items()}
    if isinstance(value, list):
        return [relative_paths(v, tree) for v in value]
    prefix = f"{tree}{os.sep}"
    return value[len(prefix) :] if isinstance(value, str) and value.startswith(prefix) else value


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def commit(tree: Path = ROOT) -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown"


def machine() -> str:
    import torch

    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )


def _cpuinfo() -> dict[str, str]:
    """The first core's fields of ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in info.splitlines():  # "key<tabs>: value", one block per core: the first wins
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_kind() -> str:
    """The CPU's widest vector unit: ``AVX-512``, ``AVX2``, ``AVX``, ``no AVX`` (or the
    processor's name off x86). Rows are stored and compared per kind."""
    fields = _cpuinfo()
    if not fields:
        return platform.processor() or platform.machine() or "unknown"
    flags = set(fields.get("flags", "").split())
    return next(
        (
            v
            for flag, v in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"))
            if flag in flags
        ),
        "no AVX",
    )


def cpu() -> str:
    """The CPU's model name and kind (e.g. ``AMD EPYC, AVX2``): the same 2-core machine kind
    comes with AVX-512 or without it, about 2x apart in matmul speed."""
    return f"{_cpuinfo().get('model name') or platform.processor() or 'unknown'}, {cpu_kind()}"


def kind_of(entry: dict) -> str:
    """The CPU kind an entry was measured on (the part after the last comma of its ``cpu``)."""
    return entry["cpu"].rpartition(", ")[2] if entry.get("cpu") else "unrecorded"


def figure_cell(job: Job, entry: dict) -> str:
    if entry.get("status") != "ok":
        return f"not measured: {entry['status']}"
    try:
        return job.figure({**entry["result"], "wall_s": entry["wall_s"]})
    except (KeyError, TypeError) as err:
        return f"result without the expected field {err}"


def render(store: dict) -> str:
    """The results page: one table over every job and CPU kind, measured or not yet."""
    lines = [
        "# Results",
        "",
        "Every figure below was measured by `python benchmarks/run_all.py` on the command",
        "beside it, and written into this page from that command's output, with the date, the",
        "commit and the machine's 1-minute load average before and after the job (2.0 is the",
        "two cores busy with the job alone; more means other work shared the machine, and",
        "times are then upper bounds). Re-run one row with",
        "`python benchmarks/run_all.py --only NAME`. Machines of the same kind come with and",
        "without AVX-512, and times differ by about 2x between them: each job has a row per",
        'CPU kind it was measured on ("unrecorded": a row from before the CPU was recorded).',
        "`python benchmarks/run_all.py --check` re-runs the speed rows and compares them with",
        "the rows of its own CPU kind.",
        "",
        f"Machine: {store.get('machine', 'unknown')}.",
        "",
        "| what | command | CPU | measured | goal | load before / after | date, commit |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for job in JOBS:
        rows = store.get("jobs", {}).get(job.name, {})
        if not rows:
            lines.append(f"| {job.what} | `{job.command}` | | not measured yet | {job.goal} | | |")
        for kind in sorted(rows, key=_kind_order):
            entry = rows[kind]
            load = f"{entry['load_before']} / {entry.get('load_after', '?')}"
            lines.append(
                f"| {job.what} | `{job.command}` | {entry.get('cpu') or kind} "
                f"| {figure_cell(job, entry)} | {job.goal} | {load} "
                f"| {entry['date']}, `{entry['commit']}` |"
            )
    lines += ["", "Names for `--only`: " + ", ".join(f"`{job.name}`" for job in JOBS) + ".", ""]
    return "\n".join(lines)


def _kind_order(kind: str) -> tuple[int, str]:
    return ({"AVX-512": 0, "AVX2": 1}.get(kind, 2), kind)


def load_store() -> dict:
    """``{"machine": ..., "jobs": {name: {cpu kind: entry}}}``; a store of one entry per job
    (the layout before CPU kinds) is read as that entry under its recorded kind."""
    store = json.loads(STORE.read_text()) if STORE.exists() else {"jobs": {}}
    for name, rows in store["jobs"].items():
        if "command" in rows:  # one entry, not a table of kinds
            store["jobs"][name] = {kind_of(rows): rows}
    return store


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@attrs.frozen
class Comparison:
    """One speed ratio now against its stored value on the same CPU kind."""

    job: str
    ratio: str
    stored: float | None  # None: no stored row of this CPU kind (or without this ratio)
    now: float | None  # None: the job did not give it (see ``note``)
    note: str = ""

    def change(self) -> float | None:
        if self.stored is None or self.now is None:
            return None
        return self.now / self.stored - 1.0

    def dropped(self, tolerance: float) -> bool:
        change = self.change()
        return (
            self.now is None
            and self.stored is not None
            or (change is not None and change < -tolerance)
        )


def compare(job: Job, stored: dict | None, entry: dict) -> list[Comparison]:
    """Each of ``job.speed`` in the new ``entry`` against the ``stored`` entry."""
    old = (stored or {}).get("result") or {}
    new = entry.get("result") or {}
    note = "" if entry.get("status") == "ok" else entry["status"]
    return [Comparison(job.name, name, old.get(name), new.get(name), note) for name in job.speed]


def check(jobs: list[Job], tree: Path, tolerance: float) -> int:
    """Re-run ``jobs`` on ``tree``, compare their speed ratios with the stored rows of this
    CPU kind, print the table; 1 if a ratio dropped by more than ``tolerance``, else 0."""
    kind = cpu_kind()
    stored = load_store()["jobs"]
    print(f"speed guard on {cpu()} (commit {commit(tree)}), tolerance {tolerance:.0%}", flush=True)
    comparisons = []
    for job in jobs:
        print(f"run  {job.name}: {job.command}", flush=True)
        entry = run_job(
            job, timeout=max(4 * job.seconds, 300), tree=tree, out=RUNS / "check" / job.name
        )
        comparisons += compare(job, stored.get(job.name, {}).get(kind), entry)
    print(f"\n{'job':<20}{'ratio':<20}{'stored':>8}{'now':>8}{'change':>9}  verdict")
    for c in comparisons:
        change = c.change()
        verdict = (
            "DROPPED"
            if c.dropped(tolerance)
            else f"no stored {kind} row"
            if c.stored is None
            else "ok"
        )
        cells = [f"{v:.2f}" if v is not None else "-" for v in (c.stored, c.now)]
        print(
            f"{c.job:<20}{c.ratio:<20}{cells[0]:>8}{cells[1]:>8}"
            f"{f'{change:+.0%}' if change is not None else '-':>9}  {verdict}"
            + (f" ({c.note})" if c.note else "")
        )
    dropped = [f"{c.job}.{c.ratio}" for c in comparisons if c.dropped(tolerance)]
    print("dropped: " + (", ".join(dropped) if dropped else "none"))
    print(
        json.dumps(
            {
                "cpu": cpu(),
                "commit": commit(tree),
                "tolerance": tolerance,
                "dropped": dropped,
                "ratios": {
                    f"{c.job}.{c.ratio}": {"stored": c.stored, "now": c.now} for c in comparisons
                },
            }
        )
    )
    return 1 if dropped else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=900, help="seconds for all jobs")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[job.name for job in JOBS],
        help="run these jobs only (the others keep their stored results)",
    )
    parser.add_argument("--list", action="store_true", help="print the jobs and exit")
    parser.add_argument(
        "--render", action="store_true", help="only re-write docs/results.md from docs/results.json"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="the speed guard: re-run the speed rows, compare with the stored "
        "rows of this CPU kind, exit 1 on a drop; writes nothing",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.15,
        help="--check: the drop of a ratio taken as noise (default 0.15)",
    )
    parser.add_argument(
        "--tree",
        type=Path,
        default=ROOT,
        help="--check: the seqfunc checkout to measure (default: this one)",
    )
    args = parser.parse_args()
    if args.list:
        for job in JOBS:
            print(f"{job.name:<20}{job.seconds:>6} s  {job.command}")
        return 0
    if args.check:
        jobs = [job for job in JOBS if job.speed and (not args.only or job.name in args.only)]
        if not (args.tree / "seqfunc" / "__init__.py").is_file():
            parser.error(f"--tree {args.tree}: not a seqfunc checkout (no seqfunc/__init__.py)")
        return check(jobs, args.tree.resolve(), args.tolerance)
    if not args.render:
        jobs = [job for job in JOBS if not args.only or job.name in args.only]
        deadline = time.perf_counter() + args.budget
        for job in sorted(jobs, key=lambda job: job.seconds):
            left = deadline - time.perf_counter()
            if job.seconds > left:
                print(f"skip {job.name}: needs ~{job.seconds} s, {left:.0f} s left", flush=True)
                continue
            print(f"run  {job.name}: {job.command}", flush=True)
            entry = run_job(job, timeout=left)
            print(f"     {figure_cell(job, entry)}", flush=True)
            store = load_store()  # re-read: keep what another run stored meanwhile
            store["jobs"].setdefault(job.name, {})[kind_of(entry)] = entry
            store["machine"] = machine()
            write_atomic(STORE, json.dumps(store, indent=1) + "\n")
    write_atomic(PAGE, render(load_store()))
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
