"""Training throughput: assignment 000's torch.nn Transformer vs seqfunc's functional model.

Both networks have assignment 000's reference shape (d_model 64, 4 heads, 2 + 2 layers,
feed-forward 64, dropout 0.01, sinusoidal positions), train with Adam (lr 1e-3) on the same
formula batches of 125, in one process, interleaved (:mod:`timing`). Prints examples/s for the
reference, seqfunc eager and seqfunc compiled (median rounds), and the ratios, also of the
fastest rounds; the last line is one JSON object.

seqfunc's steps trim the padding as ``seqfunc train`` does (``Seq2SeqTask.trim_padding``: the
batches are 11 source positions wide, the longest question of a batch usually needs 9); one more
contender, compiled without trimming, shows what that is worth. Every batch width is compiled
before timing.

    python benchmarks/formula_throughput.py [--rounds 10] [--steps 20] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from timing import interleaved_seconds_per_step
from torch import nn

from seqfunc import optim, rng
from seqfunc.data.formula import FormulaDataset
from seqfunc.models import Seq2SeqTransformer
from seqfunc.tasks import task_for
from seqfunc.train import init_state, make_step

D_MODEL, HEADS, LAYERS, D_FF, DROPOUT, BATCH = 64, 4, 2, 64, 0.01, 125


class PositionalEncoding(nn.Module):
    """Assignment 000 5.5 (d2l's), verbatim in behaviour."""

    def __init__(self, num_hiddens, max_len=1000):
        super().__init__()
        self.P = torch.zeros((1, max_len, num_hiddens))
        X = torch.arange(max_len, dtype=torch.float32).reshape(-1, 1) / torch.pow(
            10000, torch.arange(0, num_hiddens, 2, dtype=torch.float32) / num_hiddens
        )
        self.P[:, :, 0::2] = torch.sin(X)
        self.P[:, :, 1::2] = torch.cos(X)

    def forward(self, X):
        return X + self.P[:, : X.shape[1], :].to(X.device)


class ReferenceTransformer(nn.Module):
    """Assignment 000's ``TransformerNetwork`` (5.3d), with positional encoding."""

    def __init__(self, dim_vocab, padding_token):
        super().__init__()
        self.padding_token = padding_token
        self.embedding = nn.Embedding(dim_vocab, D_MODEL)
        self.dropout = nn.Dropout(DROPOUT)
        self.transformer = nn.Transformer(
            D_MODEL, HEADS, LAYERS, LAYERS, D_FF, DROPOUT, batch_first=True
        )
        self.predict = nn.Linear(D_MODEL, dim_vocab)
        self.pos_encoding = PositionalEncoding(D_MODEL)

    def forward(self, src, tgt):
        pad_src = src == self.padding_token
        pad_tgt = tgt == self.padding_token
        causal = torch.tril(torch.ones(tgt.shape[1], tgt.shape[1])) == 0
        x = self.dropout(self.pos_encoding(self.embedding(src)))
        y = self.pos_encoding(self.embedding(tgt))
        out = self.transformer(
            x,
            y,
            tgt_mask=causal,
            src_key_padding_mask=pad_src,
            tgt_key_padding_mask=pad_tgt,
            memory_key_padding_mask=pad_src,
        )
        return self.predict(out)


def reference_step(dataset):
    """Assignment 000's training step: ``step(batch) -> loss``."""
    torch.manual_seed(0)
    net = ReferenceTransformer(len(dataset.target_vocab), dataset.pad_id)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss(ignore_index=dataset.pad_id)
    net.train()

    def step(b):
        logits = net(b["src"], b["tgt_in"])
        loss = loss_fn(logits.transpose(1, 2), b["tgt_out"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def seqfunc_step(dataset, compile, trim=True):
    """seqfunc's step of the same shape, holding its own state: ``step(batch, i) -> loss``."""
    model = Seq2SeqTransformer(
        Seq2SeqTransformer.config_for(
            dataset,
            d_model=D_MODEL,
            heads=HEADS,
            encoder_layers=LAYERS,
            decoder_layers=LAYERS,
            d_ff=D_FF,
            dropout=DROPOUT,
        )
    )
    optimizer = optim.flatten(optim.adam(1e-3))
    state = init_state(model.init(rng.key(0)), optimizer)
    task = task_for(dataset)
    train_step = make_step(
        task.loss_fn(model), optimizer, compile=compile, trim=task.trim_padding if trim else None
    )
    key = rng.key(1)

    def step(b, i):
        nonlocal state
        state, metrics = train_step(state, b, rng.fold_in(key, i))
        return metrics["loss"]

    return step


def _widths(batch: dict) -> str:
    return ", ".join(f"{name} {x.shape[1]}" for name, x in batch.items())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="timing rounds (median taken)")
    parser.add_argument("--steps", type=int, default=20, help="steps per contender per round")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    dataset = FormulaDataset()
    need = args.rounds * args.steps
    batches, epoch = [], 0
    while len(batches) < need:
        batches += list(dataset.batches("train", BATCH, epoch=epoch))
        epoch += 1
    batches = batches[:need]

    ref, eager, compiled = (
        reference_step(dataset),
        seqfunc_step(dataset, False),
        seqfunc_step(dataset, True),
    )
    untrimmed = seqfunc_step(dataset, True, trim=False)
    start = time.perf_counter()
    float(compiled(batches[0], 0))
    compile_seconds = time.perf_counter() - start
    trim = task_for(dataset).trim_padding
    first_of_width: dict[str, int] = {}
    for i, b in enumerate(batches):
        first_of_width.setdefault(_widths(trim(b)), i)
    for i in first_of_width.values():  # compile every trimmed width now
        float(compiled(batches[i], i))
    for i in range(args.warmup):
        ref(batches[i]), eager(batches[i], i), compiled(batches[i], i), untrimmed(batches[i], i)
    seconds = interleaved_seconds_per_step(
        {
            "ref": lambda i: ref(batches[i]),
            "eager": lambda i: eager(batches[i], i),
            "compiled": lambda i: compiled(batches[i], i),
            "untrimmed": lambda i: untrimmed(batches[i], i),
        },
        rounds=args.rounds,
        steps=args.steps,
        sync=float,
    )
    per_s = {name: BATCH / s.median for name, s in seconds.items()}
    best_ratio = {name: seconds["ref"].best / s.best for name, s in seconds.items()}

    rows = [
        ("torch.nn.Transformer (assignment 000)", "ref"),
        ("seqfunc eager", "eager"),
        ("seqfunc compiled", "compiled"),
        ("seqfunc compiled, padding untrimmed", "untrimmed"),
    ]
    print(
        f"threads={torch.get_num_threads()} batch={BATCH}: median of {args.rounds} interleaved "
        f"rounds of {args.steps} steps each"
    )
    print(f"{'contender':<38}{'ms/step':>9}{'examples/s':>12}{'ratio':>8}")
    for label, name in rows:
        print(
            f"{label:<38}{1000 * seconds[name].median:>9.1f}{per_s[name]:>12.0f}"
            f"{per_s[name] / per_s['ref']:>8.2f}"
        )
    print(
        f"fastest rounds only: eager {best_ratio['eager']:.2f}x, compiled "
        f"{best_ratio['compiled']:.2f}x"
    )
    print(
        f"compile (first compiled call): {compile_seconds:.1f} s; batch widths after trimming, "
        f"each compiled before timing: {'; '.join(first_of_width)}"
    )
    print(
        json.dumps(
            {
                "ref_examples_per_s": round(per_s["ref"], 1),
                "eager_examples_per_s": round(per_s["eager"], 1),
                "compiled_examples_per_s": round(per_s["compiled"], 1),
                "ratio_eager": round(per_s["eager"] / per_s["ref"], 3),
                "ratio_compiled": round(per_s["compiled"] / per_s["ref"], 3),
                "ratio_eager_best": round(best_ratio["eager"], 3),
                "ratio_compiled_best": round(best_ratio["compiled"], 3),
                "ratio_compiled_untrimmed": round(per_s["untrimmed"] / per_s["ref"], 3),
                "compile_seconds": round(compile_seconds, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
