"""Training throughput of seqfunc's GPT against a module-style reference of the same shape.

Both train the nanoGPT CPU shape (4 layers, 4 heads, 128 dims, context 64, GELU MLP 4x,
vocab 65, learned positions, pre-norm, untied head) with AdamW (lr 1e-3, weight decay 0.1) and
global-norm clipping at 1.0 on the *same* Tiny Shakespeare batches (random tokens if the
shared file is absent):

* reference: ``torch.nn`` modules, ``F.scaled_dot_product_attention(is_causal=True)``,
  ``torch.optim.AdamW``, ``loss.backward()`` (nanoGPT's ``model.py`` structure);
* seqfunc: ``seqfunc.models.gpt.GPT`` + ``seqfunc.train.make_step`` (plain autograd eagerly,
  ``torch.func.grad_and_value`` compiled; ``optim.flatten``-ed ``seqfunc.optim``), eager and
  compiled (compile time reported separately, not in tokens/s).

All three run interleaved (:mod:`timing`), each summarised by its median round. Achieved
GFLOP/s use nanoGPT's estimate (6 N + 12 L T d per token, N = non-embedding parameters)
against a measured fp32 matmul peak (best square product of 512-2048) on this machine.

    python benchmarks/char_lm_throughput.py [--batch 12] [--rounds 10] [--steps 10] [--no-compile]

It also times the step's matrix products alone at the step's shapes
(``matmul_ceiling_gflops``): what a step with every other op free would reach.

Last line: JSON {ref_tokens_per_s, tokens_per_s, ratio, ratio_best, gflops, peak_gflops,
matmul_ceiling_gflops, mode, eager_tokens_per_s, eager_ratio}; ``tokens_per_s``/``ratio``/
``gflops`` are the compiled step's (the eager one's with ``--no-compile``) in the median
round, ``ratio_best`` compares the fastest rounds.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn as tnn
import torch.nn.functional as F
from timing import interleaved_seconds_per_step

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
            {
                "inputs": rng.random_bits(rng.key(i), (batch, CONTEXT)) % VOCAB,
                "targets": rng.random_bits(rng.key(i + n), (batch, CONTEXT)) % VOCAB,
            }
            for i in range(n)
        ]


def reference_step():
    """nanoGPT's training step: ``step(batch) -> loss``."""
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

    return step


def seqfunc_step(compile):
    """seqfunc's step of the same shape, holding its own state: ``step(batch) -> loss``."""
    model = GPT(GPTConfig(vocab_size=VOCAB, context=CONTEXT, d_model=D, heads=HEADS, layers=LAYERS))
    opt = optim.flatten(
        optim.chain(optim.clip_by_global_norm(1.0), optim.adamw(1e-3, weight_decay=0.1))
    )
    train_step = make_step(LanguageModelTask().loss_fn(model), opt, compile=compile)
    state = init_state(model.init(rng.key(0)), opt)
    key = rng.key(1)

    def step(b):
        nonlocal state
        state, metrics = train_step(state, b, key)
        return metrics["loss"]

    return step


def matmul_peak(sizes=(512, 1024, 2048), repeats: int = 5) -> float:
    """The best fp32 GFLOP/s of square products over a few sizes (best of ``repeats``)."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best


def step_matmul_seconds(batch: int, repeats: int = 5) -> float:
    """Seconds a training step spends in its matrix products alone, timed on their own: every
    linear layer's forward ``x W^T``, ``dX = dY W`` and ``dW = dY^T X``, and the attention's
    six batched products per layer (``q k^T``, ``p v`` and their four gradients), each at the
    step's shapes (best of ``repeats`` runs of the whole list). No step, however fused its
    other ops, can be faster."""
    m, hd, bh = batch * CONTEXT, D // HEADS, batch * HEADS
    linears = [(D, 3 * D), (D, D), (D, 4 * D), (4 * D, D)] * LAYERS + [(D, VOCAB)]
    products = []
    for d_in, d_out in linears:
        x, w, dy = torch.randn(m, d_in), torch.randn(d_out, d_in), torch.randn(m, d_out)
        products += [(torch.mm, x, w.t()), (torch.mm, dy, w), (torch.mm, dy.t(), x)]
    q, p = torch.randn(bh, CONTEXT, hd), torch.randn(bh, CONTEXT, CONTEXT)
    for _ in range(LAYERS):  # q k^T and dP = dO v^T; p v, dV = p^T dO, dQ = dS k, dK = dS^T q
        products += [(torch.bmm, q, q.transpose(1, 2))] * 2 + [(torch.bmm, p, q)] * 4
    best = float("inf")
    for _ in range(repeats + 1):  # the first run warms up
        start = time.perf_counter()
        for op, a, b in products:
            op(a, b)
        best = min(best, time.perf_counter() - start)
    return best


def flops_per_token() -> float:
    n = LAYERS * (12 * D * D + 13 * D) + D * VOCAB + VOCAB  # non-embedding parameters (+ head)
    return 6 * n + 12 * LAYERS * CONTEXT * D


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=10, help="timing rounds (median taken)")
    parser.add_argument("--steps", type=int, default=10, help="steps per contender per round")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true", help="time the eager step only")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = batches(args.rounds * args.steps, args.batch)
    contenders = {"reference": reference_step(), "eager": seqfunc_step(False)}
    compile_seconds = None
    if not args.no_compile:
        contenders["compiled"] = seqfunc_step(True)
        start = time.perf_counter()
        float(contenders["compiled"](data[0]))
        compile_seconds = time.perf_counter() - start
    for run in contenders.values():
        for b in data[: args.warmup]:
            run(b)
    seconds = interleaved_seconds_per_step(
        {name: (lambda i, run=run: run(data[i])) for name, run in contenders.items()},
        rounds=args.rounds,
        steps=args.steps,
        sync=float,
    )
    tokens = args.batch * CONTEXT
    tps = {name: tokens / s.median for name, s in seconds.items()}
    ours = "eager" if args.no_compile else "compiled"
    peak = matmul_peak()
    gflops = {name: tps[name] * flops_per_token() / 1e9 for name in tps}
    ceiling = tokens * flops_per_token() / step_matmul_seconds(args.batch) / 1e9

    print(
        f"GPT {LAYERS}x{D}, {HEADS} heads, context {CONTEXT}, batch {args.batch}, "
        f"{torch.get_num_threads()} threads: median of {args.rounds} interleaved rounds of "
        f"{args.steps} steps"
    )
    print(f"{'':<22}{'ms/step':>9}{'tokens/s':>10}{'ratio':>7}{'GFLOP/s':>9}{'% peak':>8}")
    for name in contenders:
        print(
            f"{name:<22}{1000 * seconds[name].median:>9.1f}{tps[name]:>10.0f}"
            f"{tps[name] / tps['reference']:>7.2f}{gflops[name]:>9.1f}{100 * gflops[name] / peak:>8.0f}"
        )
    best_ratio = seconds["reference"].best / seconds[ours].best
    print(f"fastest rounds only: {ours} {best_ratio:.2f}x")
    if compile_seconds is not None:
        print(f"compile (first compiled call): {compile_seconds:.1f} s")
    print(
        f"measured matmul peak {peak:.1f} GFLOP/s; the step's matrix products alone, timed "
        f"on their own: {ceiling:.1f} GFLOP/s = {100 * ceiling / peak:.0f}% of the peak (the "
        f"ceiling of any step built on torch's matmuls)"
    )
    print(f"goals: seqfunc ({ours}) >= 1.3x the reference and >= 75% of the peak")
    result = {
        "ref_tokens_per_s": round(tps["reference"], 1),
        "tokens_per_s": round(tps[ours], 1),
        "ratio": round(tps[ours] / tps["reference"], 3),
        "ratio_best": round(best_ratio, 3),
        "gflops": round(gflops[ours], 2),
        "peak_gflops": round(peak, 2),
        "matmul_ceiling_gflops": round(ceiling, 2),
        "mode": ours,
        "eager_tokens_per_s": round(tps["eager"], 1),
        "eager_ratio": round(tps["eager"] / tps["reference"], 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
