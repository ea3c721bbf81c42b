"""Predictions of a trained run for a list of texts, for every task kind.

    >>> from seqfunc.runs.load import load_run
    >>> run = load_run("runs/csv-baseline-...")
    >>> run.predict(["a great film", "dull"])
    [{'input': 'a great film', 'label': 'positive', 'probabilities': {...}}, ...]

One dict per input, in order (what ``seqfunc predict --json`` prints, one a line):

* classification: ``label`` (a class name) and ``probabilities`` (class name -> softmax);
* seq2seq: ``output``, the decoded target (greedy, or beam search with ``beam > 1``);
* language_model: ``continuation``, ``tokens`` new tokens after the input (greedy with
  ``temperature=0``, the default; sampled otherwise, from ``seed``).

Inputs go through the model ``batch_size`` at a time: classification and seq2seq inputs are
padded to the longest of their batch (models are padding invariant), language-model prompts are
grouped by length. An input the dataset cannot encode raises :class:`UsageError` naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from seqfunc.errors import UsageError
from seqfunc.tree import tree_leaves


def _encode(encode, texts: Sequence[str]) -> list[list[int]]:
    ids = []
    for text in texts:
        try:
            encoded = encode(text)
        except ValueError as exc:
            raise UsageError(f"input {text!r}: {exc}") from None
        if not encoded:
            raise UsageError(f"input {text!r}: no tokens after tokenization")
        ids.append(list(encoded))
    return ids


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _pad(rows: list[list[int]], pad_id: int, device) -> torch.Tensor:
    """``(b, longest)`` int64 ids, right-padded with ``pad_id``."""
    out = torch.full((len(rows), max(map(len, rows))), pad_id, dtype=torch.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.int64)
    return out.to(device)


@torch.no_grad()
def classify(
    run, texts: Sequence[str], *, batch_size: int = 64, device=None
) -> list[dict[str, Any]]:
    from seqfunc.contracts import required

    dataset, model = run.dataset, run.model
    encode = required(dataset, "encode", "seqfunc predict")
    classes = list(required(dataset, "classes", "seqfunc predict"))
    max_len = getattr(dataset.config, "max_len", None)
    ids = [row[:max_len] if max_len else row for row in _encode(encode, texts)]
    out = []
    for rows, chunk in zip(_chunks(ids, batch_size), _chunks(list(texts), batch_size)):
        probs = torch.softmax(
            model.apply(run.params, _pad(rows, dataset.pad_id, device)).float(), -1
        )  # (b, C)
        for text, p in zip(chunk, probs.cpu()):
            out.append(
                {
                    "input": text,
                    "label": classes[int(p.argmax())],
                    "probabilities": {name: round(float(v), 6) for name, v in zip(classes, p)},
                }
            )
    return out


@torch.no_grad()
def transduce(
    run, texts: Sequence[str], *, beam: int = 1, batch_size: int = 64, device=None
) -> list[dict[str, Any]]:
    from seqfunc.contracts import decode_target, max_target_len, required
    from seqfunc.inference.decode import beam_search

    if beam < 1:
        raise UsageError(f"--beam must be >= 1, got {beam}")
    dataset = run.dataset
    ids = _encode(required(dataset, "encode_source", "seqfunc predict"), texts)
    longest, out = max_target_len(dataset), []
    for rows, chunk in zip(_chunks(ids, batch_size), _chunks(list(texts), batch_size)):
        best = beam_search(
            run.model,
            run.params,
            _pad(rows, dataset.pad_id, device),
            bos_id=dataset.bos_id,
            eos_id=dataset.eos_id,
            pad_id=dataset.pad_id,
            max_len=longest,
            beam=beam,
        )  # (b, T)
        out.extend(
            {"input": text, "output": decode_target(dataset, row.tolist())}
            for text, row in zip(chunk, best.cpu())
        )
    return out


@torch.no_grad()
def continue_text(
    run,
    texts: Sequence[str],
    *,
    tokens: int = 100,
    temperature: float = 0.0,
    top_k: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
    device=None,
) -> list[dict[str, Any]]:
    from seqfunc import rng
    from seqfunc.contracts import decode_text, optional, required
    from seqfunc.inference.generate import check_sampling, generate

    if tokens < 1:
        raise UsageError(f"--tokens must be >= 1, got {tokens}")
    try:
        check_sampling(temperature, top_k)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    dataset = run.dataset
    ids = _encode(required(dataset, "encode", "seqfunc predict"), texts)
    sep = " " if optional(dataset, "unit", "char") == "word" else ""
    by_length: dict[int, list[int]] = {}
    for i, row in enumerate(ids):
        by_length.setdefault(len(row), []).append(i)
    out: list[dict | None] = [None] * len(texts)
    for length, members in sorted(by_length.items()):
        for part, group in enumerate(_chunks(members, batch_size)):
            prompt = torch.tensor([ids[i] for i in group], device=device)  # (b, length)
            key = rng.fold_in(rng.fold_in(rng.key(seed), length), part)
            new = generate(
                run.model, run.params, prompt, tokens, key=key, temperature=temperature, top_k=top_k
            )[:, length:]  # (b, tokens)
            for i, row in zip(group, new.cpu()):
                out[i] = {
                    "input": texts[i],
                    "continuation": decode_text(dataset, row.tolist(), sep=sep),
                }
    return out


def predict(
    run,
    texts: Sequence[str],
    *,
    beam: int = 1,
    tokens: int = 100,
    temperature: float = 0.0,
    top_k: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
) -> list[dict[str, Any]]:
    """One prediction dict per text, by the run's task kind (see the module docstring).
    Options that do not apply to the task kind are ignored."""
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        return []
    if batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {batch_size}")
    leaves = tree_leaves(run.params)
    device = leaves[0].device if leaves else None
    task = run.dataset.task
    if task == "classification":
        return classify(run, texts, batch_size=batch_size, device=device)
    if task == "seq2seq":
        return transduce(run, texts, beam=beam, batch_size=batch_size, device=device)
    return continue_text(
        run,
        texts,
        tokens=tokens,
        temperature=temperature,
        top_k=top_k,
        seed=seed,
        batch_size=batch_size,
        device=device,
    )


def plain_text(prediction: dict[str, Any]) -> str:
    """A prediction as ``seqfunc predict`` prints it without ``--json``: the output, the
    continuation, or ``label<TAB>probability``."""
    if "label" in prediction:
        return f"{prediction['label']}\t{prediction['probabilities'][prediction['label']]:.4f}"
    return prediction.get("output", prediction.get("continuation", ""))
