"""``seqfunc generate RUN [--prompt TEXT] [--tokens N] [--temperature T] [--top-k K]``: sample
text from a trained language-model run."""

from __future__ import annotations

import argparse

import torch

#: From this many new tokens on, compiling the decoding step costs less than it saves:
#: benchmarks/generate.py measured 19 s of compilation against 0.8 ms saved per token (4-layer,
#: 128-wide GPT, 2 cores), so about 25,000 tokens.
COMPILE_FROM_TOKENS = 25_000


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "generate",
        help="sample text from a trained language model",
        description="Continue a prompt (or a random first token) with a trained language-model "
        "run. Temperature 0 is greedy (argmax); a KV cache makes each new token one model step.",
    )
    p.add_argument("run", help="run folder written by seqfunc train")
    p.add_argument(
        "--prompt",
        default=None,
        help="text to continue (default: a random first token, as assignment 002)",
    )
    p.add_argument("--tokens", type=int, default=200, help="new tokens to sample (default 200)")
    p.add_argument("--temperature", type=float, default=1.0, help="0 = argmax (default 1.0)")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k likeliest tokens")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-cache", action="store_true", help="recompute the prefix every step")
    p.add_argument(
        "--compile",
        dest="compile",
        action="store_true",
        default=None,
        help="compile the cached decoding step (default: when --tokens >= "
        f"{COMPILE_FROM_TOKENS}, where the compilation pays for itself)",
    )
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from seqfunc import rng
    from seqfunc.cli import UsageError
    from seqfunc.contracts import decode_text, optional, required
    from seqfunc.inference.generate import check_sampling, generate
    from seqfunc.runs.load import load_run

    try:
        check_sampling(args.temperature, args.top_k)
    except ValueError as exc:
        raise UsageError(
            str(exc).replace("temperature", "--temperature", 1).replace("top_k", "--top-k", 1)
        ) from None
    if args.tokens < 1:
        raise UsageError(f"--tokens must be >= 1, got {args.tokens}")
    loaded = load_run(args.run, device=args.device, task="language_model")
    dataset, model = loaded.dataset, loaded.model
    key = rng.key(args.seed)
    if args.prompt:
        encode = required(dataset, "encode", "seqfunc generate --prompt")
        try:
            ids = encode(args.prompt)
        except ValueError as exc:
            raise UsageError(f"--prompt {args.prompt!r}: {exc}") from None
        if not ids:
            raise UsageError(f"--prompt {args.prompt!r}: no tokens after tokenization")
    else:
        ids = [int(rng.random_bits(rng.fold_in(key, 10**6), (1,))[0] % len(dataset.vocab))]
    prompt = torch.tensor([ids], device=args.device)
    out = generate(
        model,
        loaded.params,
        prompt,
        args.tokens,
        key=key,
        temperature=args.temperature,
        top_k=args.top_k,
        use_cache=not args.no_cache,
        compile=args.tokens >= COMPILE_FROM_TOKENS if args.compile is None else args.compile,
    )
    print(
        decode_text(
            dataset, out[0].tolist(), sep="" if optional(dataset, "unit", "char") != "word" else " "
        )
    )
    return 0
