"""The classification task: cross-entropy on ``{"tokens": (b, t), "label": (b,)}``, accuracy."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import attrs
import torch

from seqfunc import metrics
from seqfunc.contracts import decode_text
from seqfunc.tasks.members import member_count, members_apply, sums

CLASSIFICATION = "classification"


@attrs.frozen
class ClassificationTask:
    kind: ClassVar[str] = CLASSIFICATION
    classes: tuple[str, ...]

    @classmethod
    def for_dataset(cls, dataset) -> ClassificationTask:
        return cls(classes=tuple(dataset.classes))

    def target_count(self, batch: dict) -> int:
        """Labelled examples: what the loss averages over."""
        return int(batch["label"].numel())

    def loss_fn(self, model, *, train: bool = True) -> Callable:
        """``loss(params, batch, key) -> (mean cross-entropy, {"accuracy": ...})``."""

        def loss(params, batch, key):
            logits = model.apply(params, batch["tokens"], key=key, train=train)
            value = metrics.cross_entropy(logits, batch["label"])
            return value, {"accuracy": metrics.token_accuracy(logits.detach(), batch["label"])}

        return loss

    @torch.no_grad()
    def evaluate(self, model, params, batches, *, device=None) -> dict[str, float]:
        """Mean loss and accuracy over every example of ``batches``."""
        return self._evaluate(model.apply, params, batches, device, None)[0]

    @torch.no_grad()
    def evaluate_members(self, model, params, batches, *, device=None) -> list[dict[str, float]]:
        """:meth:`evaluate` of each member of stacked ``params``, one vmapped forward a batch."""
        return self._evaluate(members_apply(model), params, batches, device, member_count(params))

    def _evaluate(
        self, apply, params, batches, device, members: int | None
    ) -> list[dict[str, float]]:
        loss_sum, correct, examples = sums(members, device), sums(members, device), 0
        for batch in batches:
            tokens, labels = batch["tokens"].to(device), batch["label"].to(device)
            logits = apply(params, tokens)  # (b, C), or (members, b, C)
            loss_sum += metrics.token_nll(logits, labels).sum(-1).double()
            correct += (metrics.predictions(logits) == labels).sum(-1).double()
            examples += len(labels)
        n = max(examples, 1)
        return [
            {"loss": float(lo) / n, "accuracy": float(c) / n, "examples": examples}
            for lo, c in zip(loss_sum.reshape(-1), correct.reshape(-1))
        ]

    @torch.no_grad()
    def examples(self, model, params, dataset, n: int, *, device=None) -> list[str]:
        """``predicted (true) | first words`` for ``n`` validation examples."""
        batch = next(iter(dataset.batches("val", n)))
        logits = model.apply(params, batch["tokens"].to(device))
        lines = []
        for tokens, guess, truth in zip(
            batch["tokens"], metrics.predictions(logits), batch["label"]
        ):
            pad = getattr(dataset, "pad_id", None)
            words = decode_text(dataset, [t for t in tokens.tolist() if t != pad]).split()
            text = " ".join(words[:12]) + (" ..." if len(words) > 12 else "")
            mark = "ok" if int(guess) == int(truth) else f"WRONG, want {self.classes[int(truth)]}"
            lines.append(f"{self.classes[int(guess)]} ({mark}) | {text}")
        return lines
