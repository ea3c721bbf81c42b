"""``seqfunc generate RUN [--prompt TEXT ...] [--tokens N] [--temperature T] [--top-k K]
[--top-p P] [--stop STRING ...]``: sample text from a trained or imported language-model run."""

from __future__ import annotations

import argparse

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
        action="append",
        default=None,
        help="text to continue; repeat for a batch of prompts, printed in order "
        "(default: a random first token, as assignment 002)",
    )
    p.add_argument("--tokens", type=int, default=200, help="new tokens to sample (default 200)")
    p.add_argument("--temperature", type=float, default=1.0, help="0 = argmax (default 1.0)")
    p.add_argument("--top-k", type=int, default=None, help="sample among the k likeliest tokens")
    p.add_argument(
        "--top-p",
        type=float,
        default=None,
        help="sample from the smallest set of likeliest tokens whose probability reaches P",
    )
    p.add_argument(
        "--stop",
        action="append",
        default=[],
        metavar="STRING",
        help="end a row's text before this string (repeatable); an imported model's "
        "end-of-sequence id also ends a row",
    )
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
    from seqfunc.inference.generate import check_sampling, generate_rows
    from seqfunc.runs.load import load_run

    try:
        check_sampling(args.temperature, args.top_k, args.top_p)
    except ValueError as exc:
        flag = str(exc).split(" ", 1)[0]
        raise UsageError(str(exc).replace(flag, "--" + flag.replace("_", "-"), 1)) from None
    if args.tokens < 1:
        raise UsageError(f"--tokens must be >= 1, got {args.tokens}")
    if any(not stop for stop in args.stop):
        raise UsageError("--stop: the stop string is empty")
    loaded = load_run(args.run, device=args.device, task="language_model")
    dataset, model = loaded.dataset, loaded.model
    sep = "" if optional(dataset, "unit", "char") != "word" else " "
    key = rng.key(args.seed)
    if args.prompt:
        encode = required(dataset, "encode", "seqfunc generate --prompt")
        prompts = [_encode_prompt(encode, text, UsageError) for text in args.prompt]
    else:
        prompts = [[int(rng.random_bits(rng.fold_in(key, 10**6), (1,))[0] % len(dataset.vocab))]]

    def text_of(ids: list[int]) -> str:
        return decode_text(dataset, ids, sep=sep)

    stop = None
    if args.stop:

        def stop(new_ids: list[int]) -> bool:
            return any(s in text_of(new_ids) for s in args.stop)

    eos_ids = tuple(getattr(dataset.config, "eos_ids", ()))
    rows = generate_rows(
        model,
        loaded.params,
        prompts,
        args.tokens,
        key=key,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        eos_ids=eos_ids,
        stop=stop,
        use_cache=not args.no_cache,
        compile=args.tokens >= COMPILE_FROM_TOKENS if args.compile is None else args.compile,
        device=args.device,
    )
    texts = []
    for prompt, row in zip(prompts, rows, strict=True):
        if len(row) > len(prompt) and row[-1] in eos_ids:
            row = row[:-1]
        text, head = text_of(row), text_of(prompt)
        if args.stop and text.startswith(head):  # the stop string is cut from the new text only
            text = head + _cut_at(text[len(head) :], args.stop)
        texts.append(text)
    print("\n\n".join(texts))
    return 0


def _encode_prompt(encode, text: str, error: type[Exception]) -> list[int]:
    try:
        ids = encode(text)
    except ValueError as exc:
        raise error(f"--prompt {text!r}: {exc}") from None
    if not ids:
        raise error(f"--prompt {text!r}: no tokens after tokenization")
    return ids


def _cut_at(text: str, stops: list[str]) -> str:
    """``text`` up to the first occurrence of any of ``stops``."""
    return min((text.split(stop, 1)[0] for stop in stops), key=len)
