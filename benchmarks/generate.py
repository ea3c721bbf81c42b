"""Generation speed: uncached, KV cache eager, KV cache compiled; 512 new tokens each.

A GPT of the nanoGPT CPU shape (4 layers, 4 heads, 128 dims, 65 characters) with a 1024-long
position table, so that neither run crops its context: without the cache every new token
re-runs the whole prefix (O(n) positions), with it one position; compiled, that one-position
step is one ``torch.compile`` graph (compiled in a warm-up run, whose time is reported apart).
Random (untrained) weights: speed does not depend on them. All modes sample greedily and must
produce the same tokens. The modes alternate for ``--rounds`` rounds; each is summarised by its
median round.

    python benchmarks/generate.py [--tokens 512] [--prompt 16] [--threads N] [--rounds 3]

Last line: JSON {uncached_tokens_per_s, cached_tokens_per_s, compiled_tokens_per_s, speedup
(cached / uncached), compiled_speedup (compiled / cached eager), compile_s}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from seqfunc import rng
from seqfunc.inference.generate import generate
from seqfunc.models.gpt import GPT, GPTConfig


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--prompt", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = GPT(GPTConfig(vocab_size=65, context=1024, d_model=128, heads=4, layers=4))
    params = model.init(rng.key(0))
    prompt = rng.random_bits(rng.key(1), (1, args.prompt)) % 65

    def run(mode):
        return generate(
            model,
            params,
            prompt,
            args.tokens,
            key=rng.key(2),
            temperature=0.0,
            use_cache=mode != "uncached",
            compile=mode == "compiled",
        )

    run("cached")  # warm-up (allocator, kernels)
    _, compile_s = timed(lambda: run("compiled"))  # compiles the decoding step
    modes = ("uncached", "cached", "compiled")
    seconds = {mode: [] for mode in modes}
    outputs = {}
    for _ in range(args.rounds):
        for mode in modes:
            outputs[mode], t = timed(lambda mode=mode: run(mode))
            seconds[mode].append(t)
    for mode in modes[1:]:
        if not torch.equal(outputs[mode], outputs["uncached"]):
            raise SystemExit(f"{mode} and uncached generation differ")
    median = {mode: statistics.median(times) for mode, times in seconds.items()}
    rate = {mode: args.tokens / median[mode] for mode in modes}
    result = {
        "uncached_tokens_per_s": round(rate["uncached"], 1),
        "cached_tokens_per_s": round(rate["cached"], 1),
        "compiled_tokens_per_s": round(rate["compiled"], 1),
        "speedup": round(rate["cached"] / rate["uncached"], 2),
        "compiled_speedup": round(rate["compiled"] / rate["cached"], 2),
        "compiled_vs_uncached": round(rate["compiled"] / rate["uncached"], 2),
        "compile_s": round(compile_s, 1),
        "threads": torch.get_num_threads(),
    }
    print(
        f"{args.tokens} new tokens after a {args.prompt}-token prompt, GPT 4x128, "
        f"{torch.get_num_threads()} threads, median of {args.rounds} interleaved rounds"
    )
    print(f"{'mode':<18}{'seconds':>10}{'tokens/s':>12}{'ms/token':>10}")
    for mode, label in zip(modes, ("uncached", "KV cache, eager", "KV cache, compiled")):
        print(f"{label:<18}{median[mode]:>10.2f}{rate[mode]:>12.1f}{1000 / rate[mode]:>10.2f}")
    print(
        f"cached / uncached {result['speedup']}x (goal >= 5x); compiled / cached eager "
        f"{result['compiled_speedup']}x (goal >= 3x); first compiled run (compiling) "
        f"{compile_s:.1f} s; outputs identical"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
