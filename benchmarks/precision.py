"""Training throughput of a GPT step in fp32 and in bf16 (``-t precision=bf16``).

The model: 6 layers, d_model 384, 6 heads, context 256, vocabulary 65 (a character GPT of
nanoGPT's Shakespeare size), AdamW with clipping, dropout 0.1, on random tokens. The same
step (:func:`seqfunc.train.make_step`, eager as on the CPU by default, ``--compile`` for the
compiled one) in both precisions, timed interleaved (:mod:`timing`), median round.

bf16 halves the bytes every matrix product reads; the gain needs a CPU with bf16 arithmetic
(AVX512-BF16 or AMX: ``avx512_bf16`` / ``amx_bf16`` in /proc/cpuinfo). On an AVX2-only CPU,
bf16 products are converted to and from fp32 and run slower than fp32.

    python benchmarks/precision.py [--batch 4] [--rounds 3] [--steps 1] [--compile]

Last line: JSON {fp32_tokens_per_s, bf16_tokens_per_s, speedup, avx512_bf16, amx_bf16,
cpu_capability, compiled}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from timing import interleaved_seconds_per_step

from seqfunc import optim, rng
from seqfunc.models.gpt import GPT, GPTConfig
from seqfunc.tasks.language_model import LanguageModelTask
from seqfunc.train import init_state, make_step

SHAPE = dict(vocab_size=65, context=256, d_model=384, heads=6, layers=6, dropout=0.1)


def cpu_flags() -> set[str]:
    """The flags of the first core in /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def stepper(precision: str, batch: int, compile: bool):
    """``run(i) -> loss``: step ``i`` of a GPT in ``precision``, on fixed random batches."""
    model = GPT(GPTConfig(**SHAPE))
    optimizer = optim.flatten(
        optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(3e-4, weight_decay=0.1))
    )
    step = make_step(
        LanguageModelTask().loss_fn(model), optimizer, compile=compile, precision=precision
    )
    tokens = (rng.random_bits(rng.key(1), (4, batch, SHAPE["context"] + 1)) % 65).long()
    batches = [{"inputs": t[:, :-1], "targets": t[:, 1:]} for t in tokens]
    box = {"state": init_state(model.init(rng.key(0)), optimizer)}

    def run(i: int):
        box["state"], metrics = step(box["state"], batches[i % 4], rng.fold_in(rng.key(2), i))
        return metrics["loss"]

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()

    flags = cpu_flags()
    capability = torch.backends.cpu.get_cpu_capability()
    contenders = {p: stepper(p, args.batch, args.compile) for p in ("fp32", "bf16")}
    for run in contenders.values():  # warm-up (and compilation) outside the timing
        float(run(0))
    seconds = interleaved_seconds_per_step(
        contenders, rounds=args.rounds, steps=args.steps, sync=float
    )
    tokens = args.batch * SHAPE["context"]
    rate = {p: tokens / s.median for p, s in seconds.items()}
    speedup = rate["bf16"] / rate["fp32"]

    print(
        f"GPT {SHAPE['layers']}x{SHAPE['d_model']}, context {SHAPE['context']}, batch "
        f"{args.batch}, {'compiled' if args.compile else 'eager'}; CPU capability "
        f"{capability}, avx512_bf16 {'avx512_bf16' in flags}, amx_bf16 {'amx_bf16' in flags}"
    )
    print(f"{'precision':<10}{'s/step (median)':>16}{'s/step (best)':>15}{'tokens/s':>10}")
    for p, s in seconds.items():
        print(f"{p:<10}{s.median:>16.3f}{s.best:>15.3f}{rate[p]:>10.0f}")
    print(f"bf16 / fp32 tokens/s: {speedup:.2f}x (median rounds, interleaved)")
    print(
        json.dumps(
            {
                "fp32_tokens_per_s": round(rate["fp32"], 1),
                "bf16_tokens_per_s": round(rate["bf16"], 1),
                "speedup": round(speedup, 3),
                "avx512_bf16": "avx512_bf16" in flags,
                "amx_bf16": "amx_bf16" in flags,
                "cpu_capability": capability,
                "compiled": args.compile,
            }
        )
    )


if __name__ == "__main__":
    main()
