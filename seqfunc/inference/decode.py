"""Batched decoding for seq2seq models: greedy and beam search.

Works with any seq2seq model: one that exposes ``encode(params, src) -> context`` (a pytree of
tensors whose leading axis is the batch) and ``decode(params, context, tgt_in) -> logits (b, t, V)``
encodes once; any other is decoded through ``apply(params, src, tgt_in)``.
Outputs are ``(b, max_len)``: the tokens up to and including ``<eos>``, then ``<pad>`` — the
layout of the datasets' ``tgt_out``, so ``exact_match`` compares them directly.
"""

from __future__ import annotations

import torch

from seqfunc.contracts import encoder_decoder
from seqfunc.tree import tree_map


@torch.no_grad()
def greedy_decode(
    model, params, src: torch.Tensor, *, bos_id: int, eos_id: int, pad_id: int, max_len: int
) -> torch.Tensor:
    """``src (b, s)`` -> ``(b, max_len)``: the argmax token at each step until ``<eos>``."""
    b = src.shape[0]
    encode, decode = encoder_decoder(model)
    context = encode(params, src)
    prefix = torch.full((b, 1), bos_id, dtype=torch.long, device=src.device)
    out = torch.full((b, max_len), pad_id, dtype=torch.long, device=src.device)
    done = torch.zeros(b, dtype=torch.bool, device=src.device)
    for i in range(max_len):
        next_token = decode(params, context, prefix)[:, -1].argmax(dim=-1)
        next_token = torch.where(done, pad_id, next_token)
        out[:, i] = next_token
        done = done | (next_token == eos_id)
        if bool(done.all()):
            break
        prefix = torch.cat([prefix, next_token[:, None]], dim=1)
    return out


@torch.no_grad()
def beam_search(
    model,
    params,
    src: torch.Tensor,
    *,
    bos_id: int,
    eos_id: int,
    pad_id: int,
    max_len: int,
    beam: int = 4,
    length_penalty: float = 1.0,
    return_scores: bool = False,
):
    """Batched beam search of width ``beam``; hypotheses are ranked by
    ``log p(y) / len(y) ** length_penalty`` (``len`` counts the ``<eos>``).

    ``src (b, s)`` -> best sequences ``(b, max_len)`` (and their normalised scores ``(b,)``).
    With ``beam=1`` it is greedy decoding.
    """
    b, k = src.shape[0], beam
    device = src.device
    encode, decode = encoder_decoder(model)
    context = tree_map(lambda t: t.repeat_interleave(k, dim=0), encode(params, src))
    scores = torch.full((b, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: keep one alive so the first step fans out
    prefix = torch.full((b * k, 1), bos_id, dtype=torch.long, device=device)
    lengths = torch.zeros(b, k, device=device)
    finished = torch.zeros(b, k, dtype=torch.bool, device=device)
    for _ in range(max_len):
        logp = torch.log_softmax(decode(params, context, prefix)[:, -1].float(), dim=-1)
        vocab = logp.shape[-1]
        logp = logp.view(b, k, vocab)
        # A finished hypothesis may only be extended by <pad>, at no cost.
        pad_only = torch.full_like(logp, float("-inf"))
        pad_only[..., pad_id] = 0.0
        logp = torch.where(finished[..., None], pad_only, logp)
        candidates = (scores[..., None] + logp).view(b, k * vocab)
        scores, flat = candidates.topk(k, dim=-1)
        parent, token = flat // vocab, flat % vocab
        finished = finished.gather(1, parent)
        lengths = lengths.gather(1, parent) + (~finished).float()
        finished = finished | (token == eos_id)
        rows = (parent + torch.arange(b, device=device)[:, None] * k).view(-1)
        prefix = torch.cat([prefix[rows], token.view(-1, 1)], dim=1)
        if bool(finished.all()):
            break
    normalised = scores / lengths.clamp(min=1.0) ** length_penalty
    best = normalised.argmax(dim=-1)
    rows = best + torch.arange(b, device=device) * k
    sequences = prefix[rows, 1:]
    out = torch.full((b, max_len), pad_id, dtype=torch.long, device=device)
    out[:, : sequences.shape[1]] = sequences
    if return_scores:
        return out, normalised.gather(1, best[:, None])[:, 0]
    return out
