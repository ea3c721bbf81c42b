"""Training throughput of seqfunc's GPT against a module-style reference of the same shape.

Both train the nanoGPT CPU shape (4 layers, 4 heads, 128 dims, context 64, GELU MLP 4x,
vocab 65, learned positions, pre-norm, untied head) with AdamW (lr 1e-3, weight decay 0.1) and
global-norm clipping at 1.0 on the *same* Tiny Shakespeare batches (random tokens if the
shared file is absent):

* reference: ``torch.nn`` modules, ``F.scaled_dot_product_attention(is_causal=True)``,
  ``torch.optim.AdamW``, ``loss.backward()`` (nanoGPT's ``model.py`` structure);
* seqfunc: ``seqfunc.models.gpt.GPT`` + ``seqfunc.train.make_step`` (``torch.func``
  ``grad_and_value`` + ``seqfunc.optim``), eager or ``--compile`` (compile time reported
  separately, not in tokens/s).

Achieved GFLOP/s use nanoGPT's estimate (6 N + 12 L T d per token, N = non-embedding
parameters) against a measured fp32 matmul peak (best of 1024^3 products) on this machine.

    python benchmarks/char_lm_throughput.py [--batch 12] [--steps 30] [--compile]

Last line: JSON {ref_tokens_per_s, tokens_per_s, ratio, gflops, peak_gflops}.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
import torch.nn as tnn
import torch.nn.functional as F

from seqfunc import optim, rng
from seqfunc.models.gpt import GPT, GPTConfig
from seqfunc.tasks.language_model import LanguageModelTask
from seqfunc.train import init_state, make_step

LAYERS, HEADS, D, CONTEXT, VOCAB = 4, 4, 128, 64, 65


# -- the reference: nanoGPT-style modules -------------------------------------------------
class Attention(tnn.Module):
    def __init__(self):
        super().__init__()
        self.c_attn, self.c_proj = tnn.Linear(D, 3 * D), tnn.Linear(D, D)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.c_attn(x).split(D, dim=2)
        q, k, v = (z.view(b, t, HEADS, d // HEADS).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, d))


class Block(tnn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.attn, self.ln_2 = tnn.LayerNorm(D), Attention(), tnn.LayerNorm(D)
        self.mlp = tnn.Sequential(tnn.Linear(D, 4 * D), tnn.GELU(), tnn.Linear(4 * D, D))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class ReferenceGPT(tnn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = tnn.Embedding(VOCAB, D), tnn.Embedding(CONTEXT, D)
        self.blocks = tnn.ModuleList(Block() for _ in range(LAYERS))
        self.ln_f, self.lm_head = tnn.LayerNorm(D), tnn.Linear(D, VOCAB)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, VOCAB), targets.reshape(-1))


# -- measurement ---------------------------------------------------------------------------
def batches(n: int, batch: int) -> list[dict]:
    try:
        from seqfunc.data.shakespeare import ShakespeareDataset

        it = ShakespeareDataset().batches("train", batch)
        return [next(it) for _ in range(n)]
    except Exception:  # no shared data: random tokens have the same cost
        return [
            {"inputs": rng.random_bits(rng.key(i), (batch, CONTEXT)) % VOCAB,
             "targets": rng.random_bits(rng.key(i + n), (batch, CONTEXT)) % VOCAB}
            for i in range(n)
        ]


def run_reference(data, warmup):
    torch.manual_seed(0)
    model = ReferenceGPT()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)

    def step(b):
        loss = model(b["inputs"], b["targets"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.detach()

    for b in data[:warmup]:
        step(b)
    start = time.perf_counter()
    for b in data[warmup:]:
        loss = step(b)
    loss = loss.item()
    return time.perf_counter() - start, loss


def run_seqfunc(data, warmup, compile):
    model = GPT(GPTConfig(vocab_size=VOCAB, context=CONTEXT, d_model=D, heads=HEADS, layers=LAYERS))
    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(1e-3, weight_decay=0.1))
    step = make_step(LanguageModelTask().loss_fn(model), opt, compile=compile)
    state = init_state(model.init(rng.key(0)), opt)
    key = rng.key(1)
    start = time.perf_counter()
    for b in data[:warmup]:
        state, metrics = step(state, b, key)
    float(metrics["loss"])
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for b in data[warmup:]:
        state, metrics = step(state, b, key)
    float(metrics["loss"])
    return time.perf_counter() - start, float(metrics["loss"]), warm


def matmul_peak(n: int = 1024, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def flops_per_token() -> float:
    n = LAYERS * (12 * D * D + 13 * D) + D * VOCAB + VOCAB  # non-embedding parameters (+ head)
    return 6 * n + 12 * LAYERS * CONTEXT * D


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--steps", type=int, default=30, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="torch.compile seqfunc's step")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = batches(args.warmup + args.steps, args.batch)
    tokens = args.steps * args.batch * CONTEXT
    t_ref, loss_ref = run_reference(data, args.warmup)
    t_ours, loss_ours, warm = run_seqfunc(data, args.warmup, args.compile)
    peak = matmul_peak()
    ref_tps, tps = tokens / t_ref, tokens / t_ours
    gflops = tps * flops_per_token() / 1e9
    result = {
        "ref_tokens_per_s": round(ref_tps, 1), "tokens_per_s": round(tps, 1),
        "ratio": round(tps / ref_tps, 3), "gflops": round(gflops, 2),
        "peak_gflops": round(peak, 2),
    }
    mode = "compiled" if args.compile else "eager"
    print(f"GPT {LAYERS}x{D}, {HEADS} heads, context {CONTEXT}, batch {args.batch}, "
          f"{args.steps} timed steps, {torch.get_num_threads()} threads")
    print(f"{'':<22}{'ms/step':>10}{'tokens/s':>12}{'last loss':>11}")
    print(f"{'reference (nn.Module)':<22}{1000 * t_ref / args.steps:>10.1f}{ref_tps:>12.0f}{loss_ref:>11.3f}")
    print(f"{'seqfunc (' + mode + ')':<22}{1000 * t_ours / args.steps:>10.1f}{tps:>12.0f}{loss_ours:>11.3f}")
    print(f"seqfunc warm-up ({args.warmup} steps{', compile' if args.compile else ''}): {warm:.1f} s")
    print(f"ratio {result['ratio']} (goal >= 1.3); seqfunc {gflops:.1f} GFLOP/s = "
          f"{100 * gflops / peak:.0f}% of the measured matmul peak {peak:.1f} GFLOP/s (goal >= 75%)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
