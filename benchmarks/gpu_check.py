"""The GPU check: the tests marked ``cuda``, then a GPT-2-small step's speed (under 8 minutes).

1. ``pytest -m cuda``: the compiled step, the bf16 step, a one-rank NCCL group, cached
   decoding (tests/test_cuda.py) and any other test marked so; they skip on a machine
   without CUDA, saying so.
2. A GPT-2-small-shaped model (12 layers, d_model 768, 12 heads, context 1024, vocabulary
   50257, tied head: 124M parameters), bf16, compiled, AdamW with clipping, random tokens:
   tokens/s over the steady steps, model FLOPs utilisation (6 N + 12 L T d FLOPs a token,
   nanoGPT's estimate, against the GPU's dense bf16 peak from :data:`BF16_PEAK_TFLOPS`), and
   the compile time cold (a fresh inductor cache) and warm (a second process, the cache
   filled): the first step's seconds less a steady step's. Each measurement runs in a
   subprocess of its own.

Without a CUDA device it says so and exits 0; ``--cpu-smoke`` runs the same code on the CPU
with a tiny shape instead (the figures then mean nothing, the run shows the script works).

    python benchmarks/gpu_check.py [--batch 8] [--steps 10] [--cpu-smoke] [--skip-tests]

Last line: JSON {device, tests, tokens_per_s, mfu, peak_tflops, compile_cold_s,
compile_warm_s, params, batch, context}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
#: bounds that keep the whole check under 8 minutes: tests, cold compile run, warm run
TEST_TIMEOUT_S, COLD_TIMEOUT_S, WARM_TIMEOUT_S = 150, 180, 120

#: Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) by a part of the device's name;
#: the first that the name contains wins
BF16_PEAK_TFLOPS = {
    "H200": 989.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,  # SXM
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10G": 70.0,
    "RTX 4090": 165.0,
    "RTX 3090": 71.0,
}

GPT2_SMALL = dict(vocab_size=50257, context=1024, d_model=768, heads=12, layers=12)
TINY = dict(vocab_size=256, context=64, d_model=64, heads=4, layers=2)


def peak_tflops(name: str) -> float | None:
    return next((peak for part, peak in BF16_PEAK_TFLOPS.items() if part in name), None)


def flops_per_token(shape: dict, params: int) -> float:
    """6 N + 12 L T d, N the parameters without the position table (nanoGPT's estimate)."""
    n = params - shape["context"] * shape["d_model"]
    return 6 * n + 12 * shape["layers"] * shape["context"] * shape["d_model"]


def run_tests(device_ok: bool) -> dict:
    """``pytest -m cuda`` in a subprocess: the counts from its summary line."""
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-m", "cuda", "tests"]
    try:
        out = subprocess.run(
            command, cwd=REPO, capture_output=True, text=True, timeout=TEST_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {TEST_TIMEOUT_S} s"}
    summary = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-300:]
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error)", summary)}
    print(f"pytest -m cuda: {summary}")
    if counts.get("failed") or counts.get("error"):
        print(out.stdout[-4000:])
    return counts


def measure(shape: dict, batch: int, steps: int, device: str) -> dict:
    """In a subprocess: first-step and steady-step seconds of the compiled bf16 step."""
    from seqfunc import optim, rng
    from seqfunc.models.gpt import GPT, GPTConfig
    from seqfunc.tasks.language_model import LanguageModelTask
    from seqfunc.train import init_state, make_step
    from seqfunc.tree import tree_count, tree_map

    torch.backends.cuda.matmul.allow_tf32 = True
    model = GPT(GPTConfig(**shape, tie_weights=True))
    optimizer = optim.flatten(
        optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(6e-4, weight_decay=0.1))
    )
    step = make_step(
        LanguageModelTask().loss_fn(model), optimizer, compile=True, device=device, precision="bf16"
    )
    params = tree_map(lambda t: t.to(device), model.init(rng.key(0)))
    state = init_state(params, optimizer)
    tokens = rng.random_bits(rng.key(1), (batch, shape["context"] + 1)).to(device)
    tokens = (tokens % shape["vocab_size"]).long()
    data = {"inputs": tokens[:, :-1], "targets": tokens[:, 1:]}
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def one(i):
        nonlocal state
        state, metrics = step(state, data, rng.fold_in(rng.key(2), i).to(device))
        return metrics["loss"]

    start = time.perf_counter()
    float(one(0))
    first = time.perf_counter() - start
    float(one(1))  # a second warm-up: allocator and autotuning settle
    sync()
    start = time.perf_counter()
    for i in range(steps):
        loss = one(2 + i)
    float(loss)
    sync()
    steady = (time.perf_counter() - start) / steps
    return {"first_s": first, "step_s": steady, "params": tree_count(params)}


def measure_in_subprocess(args, cache_dir: str, timeout: float) -> dict:
    command = [sys.executable, __file__, "--measure", "--batch", str(args.batch)]
    command += ["--steps", str(args.steps)] + (["--cpu-smoke"] if args.cpu_smoke else [])
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache_dir}
    try:
        out = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise SystemExit(f"gpu_check: the measurement ran past {timeout:.0f} s") from None
    if out.returncode != 0:
        raise SystemExit(f"gpu_check: the measurement failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--cpu-smoke", action="store_true", help="a tiny shape on the CPU")
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    shape = TINY if args.cpu_smoke else GPT2_SMALL
    device = "cuda" if cuda and not args.cpu_smoke else "cpu"
    if args.measure:
        print(json.dumps(measure(shape, args.batch, args.steps, device)))
        return 0
    if not cuda and not args.cpu_smoke:
        print("no CUDA device: nothing to check here (--cpu-smoke runs a tiny shape on the CPU)")
        print(json.dumps({"device": None, "cuda": False}))
        return 0

    name = torch.cuda.get_device_name() if device == "cuda" else "cpu (smoke run)"
    tests = {} if args.skip_tests else run_tests(cuda)
    with tempfile.TemporaryDirectory() as cache:
        cold = measure_in_subprocess(args, cache, COLD_TIMEOUT_S)
        warm = measure_in_subprocess(args, cache, WARM_TIMEOUT_S)
    tokens_per_step = args.batch * shape["context"]
    rate = tokens_per_step / cold["step_s"]
    peak = peak_tflops(name) if device == "cuda" else None
    achieved = rate * flops_per_token(shape, cold["params"]) / 1e12
    mfu = achieved / peak if peak else None
    compile_cold = cold["first_s"] - cold["step_s"]
    compile_warm = warm["first_s"] - warm["step_s"]

    print(
        f"{name}: GPT {shape['layers']}x{shape['d_model']}, context {shape['context']}, "
        f"{cold['params'] / 1e6:.1f}M parameters, batch {args.batch}, bf16, compiled"
    )
    rows = [
        ("tokens/s", f"{rate:,.0f}"),
        ("step (s)", f"{cold['step_s']:.4f}"),
        ("model TFLOP/s", f"{achieved:.1f}"),
        ("bf16 peak TFLOP/s", f"{peak:.0f}" if peak else "unknown"),
        ("MFU", f"{mfu:.1%}" if mfu else "n/a"),
        ("compile, cold cache (s)", f"{compile_cold:.1f}"),
        ("compile, warm cache (s)", f"{compile_warm:.1f}"),
    ]
    for label, value in rows:
        print(f"{label:<26}{value:>14}")
    print(
        json.dumps(
            {
                "device": name,
                "tests": tests,
                "tokens_per_s": round(rate, 1),
                "mfu": round(mfu, 4) if mfu else None,
                "peak_tflops": peak,
                "compile_cold_s": round(compile_cold, 2),
                "compile_warm_s": round(compile_warm, 2),
                "params": cold["params"],
                "batch": args.batch,
                "context": shape["context"],
            }
        )
    )
    return 1 if tests.get("failed") or tests.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
