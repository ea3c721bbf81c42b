"""Translating text with a trained seq2seq run, and corpus BLEU on a held-out split.

BLEU is sacrebleu's corpus BLEU (``pip install seqfunc[translate]``) with its default ``13a``
tokenisation, computed on the lowercased, d2l-preprocessed sentences against the dataset's
references as written (words a word-level vocabulary lacks stay in the references, so a model
is never credited for an ``<unk>``). Not d2l's simplified per-sentence formula.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from seqfunc.config import ConfigError
from seqfunc.contracts import decode_target, max_target_len
from seqfunc.inference.decode import beam_search


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (0-100) of ``hypotheses`` against one reference each."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    try:
        import sacrebleu
    except ImportError:
        raise ConfigError("BLEU needs sacrebleu: pip install 'seqfunc[translate]'") from None
    # force: the text is tokenised on purpose (d2l preprocessing), sacrebleu need not warn
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)], force=True).score)


@torch.no_grad()
def translate_ids(
    model,
    params,
    dataset,
    sources: Sequence[list[int]],
    *,
    beam: int = 1,
    batch_size: int = 256,
    max_len: int | None = None,
    device="cpu",
) -> list[str]:
    """Source id lists (each ending in ``<eos>``) -> target sentences, in input order.

    Sentences are decoded in batches of similar length (beam 1 = greedy)."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    out: list[str] = [""] * len(sources)
    max_len = max_len or max_target_len(dataset)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        width = max(len(sources[i]) for i in index)
        src = torch.full((len(index), width), dataset.pad_id, dtype=torch.long)
        for row, i in enumerate(index):
            src[row, : len(sources[i])] = torch.tensor(sources[i])
        predicted = beam_search(
            model,
            params,
            src.to(device),
            bos_id=dataset.bos_id,
            eos_id=dataset.eos_id,
            pad_id=dataset.pad_id,
            max_len=max_len,
            beam=beam,
        )
        for row, i in enumerate(index):
            out[i] = decode_target(dataset, predicted[row].tolist())
    return out


def translate(model, params, dataset, sentences: Sequence[str], **kwargs) -> list[str]:
    """Raw sentences -> translations (``ValueError`` for an empty or too long sentence)."""
    return translate_ids(
        model, params, dataset, [dataset.encode_source(s) for s in sentences], **kwargs
    )


def evaluate_bleu(
    model,
    params,
    dataset,
    split: str = "test",
    *,
    beam: int = 1,
    limit: int | None = None,
    **kwargs,
) -> dict:
    """``{"bleu", "pairs", "beam", "examples": [(source, hypothesis, reference), ...]}`` on the
    dataset's ``split`` (its ``texts(split)``: preprocessed source and reference)."""
    pairs = dataset.texts(split)[:limit]
    sources = [dataset.encode_source(s) for s, _ in pairs]
    hypotheses = translate_ids(model, params, dataset, sources, beam=beam, **kwargs)
    references = [t for _, t in pairs]
    return {
        "bleu": corpus_bleu(hypotheses, references),
        "pairs": len(pairs),
        "beam": beam,
        "examples": [(s, h, r) for (s, r), h in zip(pairs, hypotheses)],
    }
