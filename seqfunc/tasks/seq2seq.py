"""The seq2seq task: teacher-forced cross-entropy, token accuracy, greedy exact match."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import attrs
import torch

from seqfunc import metrics
from seqfunc.contracts import decode_source, decode_target
from seqfunc.data.padding import used_width
from seqfunc.inference.decode import greedy_decode

SEQ2SEQ = "seq2seq"


@attrs.frozen
class Seq2SeqTask:
    """Batches ``{"src": (b, s), "tgt_in": (b, t), "tgt_out": (b, t)}``; teacher forcing."""

    kind: ClassVar[str] = SEQ2SEQ
    pad_id: int
    bos_id: int
    eos_id: int
    label_smoothing: float = 0.0
    #: :meth:`trim_padding` keeps widths that are multiples of this (a bucketed dataset's own
    #: ``pad_multiple``, so trimming makes no batch width the dataset would not make itself)
    trim_multiple: int = 1

    @classmethod
    def for_dataset(cls, dataset) -> Seq2SeqTask:
        multiple = getattr(getattr(dataset, "config", None), "pad_multiple", 1)
        return cls(
            pad_id=dataset.pad_id,
            bos_id=dataset.bos_id,
            eos_id=dataset.eos_id,
            trim_multiple=multiple,
        )

    def trim_padding(self, batch: dict) -> dict:
        """The batch without the trailing positions that are padding in every row: the
        source's, and the target's after the last non-pad ``tgt_out`` (the decoder is causal,
        so those positions change no loss term). Widths are rounded up to ``trim_multiple``.

        The loss and gradients are those of the full batch (padding invariance, up to float
        rounding; dropout draws differ since they follow the shape). Every distinct pair of
        widths is a new batch shape: a compiled step compiles once for each it meets (two for
        the formula data: 9 or 10 of the 11 source positions)."""
        s = used_width(batch["src"], self.pad_id, multiple=self.trim_multiple)
        t = used_width(batch["tgt_out"], self.pad_id, multiple=self.trim_multiple)
        cut = {"src": s, "tgt_in": t, "tgt_out": t}
        return {
            name: x[:, : cut[name]].contiguous() if name in cut and cut[name] < x.shape[1] else x
            for name, x in batch.items()
        }

    def target_count(self, batch: dict) -> int:
        """Real (non-pad) target tokens: what the loss averages over."""
        return int((batch["tgt_out"] != self.pad_id).sum())

    def loss_fn(self, model, *, train: bool = True) -> Callable:
        def loss(params, batch, key):
            logits = model.apply(params, batch["src"], batch["tgt_in"], key=key, train=train)
            value = metrics.cross_entropy(
                logits,
                batch["tgt_out"],
                ignore_index=self.pad_id,
                label_smoothing=self.label_smoothing if train else 0.0,
            )
            aux = {
                "token_accuracy": metrics.token_accuracy(
                    logits.detach(), batch["tgt_out"], ignore_index=self.pad_id
                )
            }
            return value, aux

        return loss

    @torch.no_grad()
    def evaluate(self, model, params, batches, *, device=None) -> dict[str, float]:
        """Teacher-forced loss and token accuracy, and greedy exact match, over ``batches``."""
        totals = {"loss": 0.0, "token_accuracy": 0.0, "exact_match": 0.0}
        tokens = examples = 0
        for batch in batches:
            batch = {k: v.to(device) for k, v in batch.items()}
            logits = model.apply(params, batch["src"], batch["tgt_in"])
            n_tok = int((batch["tgt_out"] != self.pad_id).sum())
            n = batch["src"].shape[0]
            totals["loss"] += (
                float(metrics.cross_entropy(logits, batch["tgt_out"], ignore_index=self.pad_id))
                * n_tok
            )
            totals["token_accuracy"] += (
                float(metrics.token_accuracy(logits, batch["tgt_out"], ignore_index=self.pad_id))
                * n_tok
            )
            predicted = greedy_decode(
                model,
                params,
                batch["src"],
                bos_id=self.bos_id,
                eos_id=self.eos_id,
                pad_id=self.pad_id,
                max_len=batch["tgt_out"].shape[1],
            )
            totals["exact_match"] += float(metrics.exact_match(predicted, batch["tgt_out"])) * n
            tokens += n_tok
            examples += n
        return {
            "loss": totals["loss"] / max(tokens, 1),
            "token_accuracy": totals["token_accuracy"] / max(tokens, 1),
            "exact_match": totals["exact_match"] / max(examples, 1),
            "examples": examples,
        }

    @torch.no_grad()
    def examples(self, model, params, dataset, n: int, *, device=None) -> list[str]:
        """``source -> prediction (target) ok/WRONG`` for the first ``n`` validation examples."""
        batch = next(iter(dataset.batches("val", n)))
        batch = {k: v.to(device) for k, v in batch.items()}
        predicted = greedy_decode(
            model,
            params,
            batch["src"],
            bos_id=self.bos_id,
            eos_id=self.eos_id,
            pad_id=self.pad_id,
            max_len=batch["tgt_out"].shape[1],
        )
        lines = []
        for src, pred, tgt in zip(batch["src"], predicted, batch["tgt_out"]):
            source = decode_source(dataset, src.tolist())
            guess, truth = (
                decode_target(dataset, pred.tolist()),
                decode_target(dataset, tgt.tolist()),
            )
            lines.append(
                f"{source} -> {guess}  ({'ok' if guess == truth else 'WRONG, want ' + truth})"
            )
        return lines
