"""``seqfunc attention RUN TEXT``: draw every layer's attention heads for one input.

The run's model decodes the input greedily; the attention weights of each layer (encoder
self-attention, decoder self-attention, decoder cross-attention) are then recomputed for
the input and the decoded answer and drawn as heat-maps, one row per layer, one column per
head, into a PNG.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "attention", help="draw the attention heads of a trained seq2seq run as heat-maps (PNG)"
    )
    p.add_argument("run", help="run folder written by seqfunc train")
    p.add_argument("text", help='the input, e.g. "123+123"')
    p.add_argument(
        "--out", type=Path, default=None, help="PNG to write (default: RUN/attention.png)"
    )
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


def layer_labels(model, records: list[dict]) -> list[str]:
    """A title per recorded attention call: encoder layers first, then each decoder layer's
    self- and cross-attention (the call order of the seq2seq Transformer)."""
    n_enc = getattr(model.config, "encoder_layers", None)
    n_dec = getattr(model.config, "decoder_layers", None)
    if n_enc is not None and n_dec is not None and len(records) == n_enc + 2 * n_dec:
        labels = [f"encoder {i + 1} self" for i in range(n_enc)]
        for i in range(n_dec):
            labels += [f"decoder {i + 1} self", f"decoder {i + 1} cross"]
        return labels
    return [f"attention {i + 1} ({r['kind']})" for i, r in enumerate(records)]


def record_maps(loaded, text: str, device: str):
    """``(source tokens, target-input tokens, answer, records)`` for one input."""
    from seqfunc.cli import UsageError
    from seqfunc.contracts import decode_target, max_target_len, required, token_list
    from seqfunc.inference.decode import greedy_decode
    from seqfunc.nn import record_attention

    dataset, model, params = loaded.dataset, loaded.model, loaded.params
    encode_source = required(dataset, "encode_source", "seqfunc attention")
    try:
        ids = encode_source(text)
    except ValueError as exc:
        raise UsageError(f"input {text!r}: {exc}") from None
    src = torch.tensor([ids], device=device)
    out = greedy_decode(
        model,
        params,
        src,
        bos_id=dataset.bos_id,
        eos_id=dataset.eos_id,
        pad_id=dataset.pad_id,
        max_len=max_target_len(dataset),
    )[0].tolist()
    answer_ids = out[: out.index(dataset.eos_id)] if dataset.eos_id in out else out
    tgt_in = torch.tensor([[dataset.bos_id] + answer_ids], device=device)
    with torch.no_grad(), record_attention() as records:
        model.apply(params, src, tgt_in)
    src_tokens = token_list(dataset.source_vocab, ids)
    tgt_tokens = token_list(dataset.target_vocab, tgt_in[0].tolist())
    return src_tokens, tgt_tokens, decode_target(dataset, out), records


def draw(records, labels, src_tokens, tgt_tokens, title: str, path: Path) -> None:
    from seqfunc.cli import UsageError
    from seqfunc.serialization import atomic_write

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError(
            "drawing attention maps needs matplotlib: pip install 'seqfunc[plot]'"
        ) from None
    heads = max(r["weights"].shape[1] for r in records)
    fig, axes = plt.subplots(
        len(records), heads, figsize=(2.4 * heads + 1, 2.4 * len(records) + 0.6), squeeze=False
    )
    for row, (record, label) in enumerate(zip(records, labels)):
        weights = record["weights"][0].float().cpu()  # (h, tq, tk)
        queries = src_tokens if label.startswith("encoder") else tgt_tokens
        keys = tgt_tokens if "decoder" in label and "self" in label else src_tokens
        if not label.startswith(("encoder", "decoder")):
            queries = keys = None
        for h in range(heads):
            ax = axes[row][h]
            if h >= weights.shape[0]:
                ax.axis("off")
                continue
            ax.imshow(weights[h].numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
            ax.set_title(f"{label}, head {h + 1}", fontsize=8)
            if queries is not None and len(queries) == weights.shape[1]:
                ax.set_yticks(range(len(queries)), queries, fontsize=6)
            if keys is not None and len(keys) == weights.shape[2]:
                ax.set_xticks(range(len(keys)), keys, fontsize=6, rotation=90)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from seqfunc.cli import UsageError
    from seqfunc.runs.load import load_run

    loaded = load_run(args.run, device=args.device, task="seq2seq")
    src_tokens, tgt_tokens, answer, records = record_maps(loaded, args.text, args.device)
    if not records:
        raise UsageError(f"the model of {args.run} made no multi_head_attention call to draw")
    labels = layer_labels(loaded.model, records)
    kernel = loaded.config["model"]["config"].get("attention", "dot")
    path = args.out or Path(args.run) / "attention.png"
    title = f"{args.text} -> {answer}   (attention: {kernel})"
    draw(records, labels, src_tokens, tgt_tokens, title, path)
    print(f"{args.text} -> {answer}")
    print(f"wrote {path}: {len(records)} attention layers x {records[0]['weights'].shape[1]} heads")
    return 0
