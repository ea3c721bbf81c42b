"""The language-model task: next-token cross-entropy per token, bits per character, perplexity.

Batches ``{"inputs": (b, t), "targets": (b, t)}`` (targets = inputs shifted by one).
Validation metrics (assignment 004 q12, assignment 002):

* ``loss``: mean negative log-likelihood per token (nats) over all positions of all sequences;
* ``bits_per_token``: the same in bits (bits per character / byte for char / byte datasets);
* ``last_bits_per_token``: bits at the **last position only**, where the model sees the
  whole window (assignment 004's estimate over N random slices);
* ``perplexity``: ``exp(loss)`` (reported for word-level datasets).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import attrs
import torch

from seqfunc import metrics, rng
from seqfunc.contracts import decode_text, optional
from seqfunc.tasks.members import member_count, over_members, sums

LANGUAGE_MODEL = "language_model"

#: Evaluation makes at most this many logits at a time (8 MB of float32), so that a large
#: vocabulary's logits stay in the CPU's cache between the output layer and the loss.
EVAL_LOGITS_PER_CHUNK = 2**21


def vocab_size(model, params, inputs: torch.Tensor, apply=None) -> int:
    """The model's output width: its config's ``vocab_size``, else that of one position
    (through ``apply``, default ``model.apply``)."""
    size = getattr(getattr(model, "config", None), "vocab_size", None)
    return size if size else (apply or model.apply)(params, inputs[:1, :1]).shape[-1]


def row_chunks(shape: tuple[int, int], vocab: int, members: int = 1) -> list[slice]:
    """Row slices of a ``(b, t)`` batch whose logits (of every member) hold at most
    :data:`EVAL_LOGITS_PER_CHUNK` values (at least one row each)."""
    b, t = shape
    rows = max(1, EVAL_LOGITS_PER_CHUNK // max(t * vocab * members, 1))
    return [slice(start, start + rows) for start in range(0, b, rows)]


def splits_output_layer(model) -> bool:
    """Whether the model offers ``features`` and ``head`` (``apply = head(features)``)."""
    return callable(getattr(model, "features", None)) and callable(getattr(model, "head", None))


def nll_by_rows(model, params, inputs, targets, vocab: int, members: int | None) -> torch.Tensor:
    """Each target's negative log-likelihood ``(..., b, t)``, ``apply`` run on chunks of rows."""
    apply = over_members(model.apply, members)
    return torch.cat(
        [
            metrics.token_nll(apply(params, inputs[rows]), targets[rows])
            for rows in row_chunks(inputs.shape, vocab, members or 1)
        ],
        -2,
    )


def nll_by_positions(
    model, params, inputs, targets, vocab: int, members: int | None
) -> torch.Tensor:
    """Each target's negative log-likelihood ``(..., b, t)``: ``features`` of the whole batch
    at once, then ``head`` and the loss on chunks of positions. The body runs on large
    matrices; only the ``(positions, vocab)`` logits are cut to fit the cache."""
    features = over_members(model.features, members)(params, inputs).flatten(
        -3, -2
    )  # (..., b*t, d)
    head, flat_targets = over_members(model.head, members, shared=False), targets.reshape(-1)
    step = max(1, EVAL_LOGITS_PER_CHUNK // (vocab * (members or 1)))
    nll = [
        metrics.token_nll(
            head(params, features[..., start : start + step, :]), flat_targets[start : start + step]
        )
        for start in range(0, flat_targets.numel(), step)
    ]
    return torch.cat(nll, -1).unflatten(-1, targets.shape)


@attrs.frozen
class LanguageModelTask:
    kind: ClassVar[str] = LANGUAGE_MODEL
    unit: str = "char"  # "char" | "byte" | "word"
    sample_tokens: int = 200
    temperature: float = 0.8

    @classmethod
    def for_dataset(cls, dataset) -> LanguageModelTask:
        unit = optional(dataset, "unit", "char")
        return cls(unit=unit, sample_tokens=30 if unit == "word" else 200)

    def target_count(self, batch: dict) -> int:
        """Target tokens: what the loss averages over."""
        return int(batch["targets"].numel())

    def loss_fn(self, model, *, train: bool = True) -> Callable:
        def loss(params, batch, key):
            logits = model.apply(params, batch["inputs"], key=key, train=train)
            value = metrics.cross_entropy(logits, batch["targets"])
            return value, {}

        return loss

    @torch.no_grad()
    def evaluate(self, model, params, batches, *, device=None) -> dict[str, float]:
        return self._evaluate(model, params, batches, device, None)[0]

    @torch.no_grad()
    def evaluate_members(self, model, params, batches, *, device=None) -> list[dict[str, float]]:
        """:meth:`evaluate` of each member of stacked ``params``, one vmapped forward a chunk."""
        return self._evaluate(model, params, batches, device, member_count(params))

    def _evaluate(self, model, params, batches, device, members: int | None) -> list[dict]:
        total, last = sums(members, device), sums(members, device)
        tokens = sequences = 0
        vocab = None
        nll_of = nll_by_positions if splits_output_layer(model) else nll_by_rows
        for batch in batches:
            inputs, targets = batch["inputs"].to(device), batch["targets"].to(device)
            vocab = vocab or vocab_size(model, params, inputs, over_members(model.apply, members))
            nll = nll_of(model, params, inputs, targets, vocab, members)  # (..., b, t)
            total += nll.sum((-2, -1)).double()
            last += nll[..., -1].sum(-1).double()
            tokens += targets.numel()
            sequences += targets.shape[0]
        return [
            self._record(float(t) / max(tokens, 1), float(la) / max(sequences, 1), tokens)
            for t, la in zip(total.reshape(-1), last.reshape(-1))
        ]

    def _record(self, loss: float, last: float, tokens: int) -> dict[str, float]:
        """The metrics from the mean loss per token and at the last position."""
        record = {
            "loss": loss,
            "bits_per_token": loss / math.log(2),
            "last_bits_per_token": last / math.log(2),
            "tokens": tokens,
        }
        if self.unit == "word":
            record["perplexity"] = math.exp(min(loss, 700.0))
        return record

    @torch.no_grad()
    def examples(self, model, params, dataset, n: int, *, device=None) -> list[str]:
        """``n`` samples: 16 characters of validation text and what the model writes after
        them (assignment 004), or words from a random first token (assignment 002)."""
        from seqfunc.inference.generate import generate

        lines = []
        for i in range(n):
            key = rng.fold_in(rng.key(1234), i)
            prompt_text = dataset.prompt(16, i) if hasattr(dataset, "prompt") else None
            if prompt_text and hasattr(dataset, "encode"):
                prompt = torch.tensor([dataset.encode(prompt_text)], device=device)
            else:
                first = int(rng.random_bits(key, (1,))[0] % len(dataset.vocab))
                prompt = torch.tensor([[first]], device=device)
            out = generate(
                model, params, prompt, self.sample_tokens, key=key, temperature=self.temperature
            )
            sep = " " if self.unit == "word" else ""
            text = decode_text(dataset, out[0, prompt.shape[1] :].tolist(), sep=sep)
            head = decode_text(dataset, prompt[0].tolist(), sep=sep)
            lines.append(repr(head) + " -> " + repr(text))
        return lines
