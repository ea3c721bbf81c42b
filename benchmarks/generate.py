"""Generation speed with and without the KV cache: 512 new tokens, one run each.

A GPT of the nanoGPT CPU shape (4 layers, 4 heads, 128 dims, 65 characters) with a 1024-long
position table, so that neither run crops its context: without the cache every new token
re-runs the whole prefix (O(n) positions), with it one position. Random (untrained) weights:
speed does not depend on them. Both runs sample greedily and must produce the same tokens.

    python benchmarks/generate.py [--tokens 512] [--prompt 16] [--threads N]

Last line: JSON {uncached_tokens_per_s, cached_tokens_per_s, speedup}.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from seqfunc import rng
from seqfunc.generate import generate
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
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = GPT(GPTConfig(vocab_size=65, context=1024, d_model=128, heads=4, layers=4))
    params = model.init(rng.key(0))
    prompt = rng.random_bits(rng.key(1), (1, args.prompt)) % 65
    run = lambda cache: generate(  # noqa: E731
        model, params, prompt, args.tokens, key=rng.key(2), temperature=0.0, use_cache=cache
    )
    run(True)  # warm-up (allocator, kernels)
    cached, t_cached = timed(lambda: run(True))
    uncached, t_uncached = timed(lambda: run(False))
    if not torch.equal(cached, uncached):
        raise SystemExit("cached and uncached generation differ")

    result = {
        "uncached_tokens_per_s": round(args.tokens / t_uncached, 1),
        "cached_tokens_per_s": round(args.tokens / t_cached, 1),
        "speedup": round(t_uncached / t_cached, 2),
    }
    print(f"{args.tokens} new tokens after a {args.prompt}-token prompt, GPT 4x128, "
          f"{torch.get_num_threads()} threads")
    print(f"{'mode':<10}{'seconds':>10}{'tokens/s':>12}")
    print(f"{'uncached':<10}{t_uncached:>10.2f}{result['uncached_tokens_per_s']:>12.1f}")
    print(f"{'KV cache':<10}{t_cached:>10.2f}{result['cached_tokens_per_s']:>12.1f}")
    print(f"speedup {result['speedup']}x (goal >= 5x); outputs identical")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
