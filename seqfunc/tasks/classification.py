"""The classification task: cross-entropy on ``{"tokens": (b, t), "label": (b,)}``, accuracy."""

from __future__ import annotations

from typing import Callable, ClassVar

import attrs
import torch

from seqfunc import metrics
from seqfunc.contracts import decode_text

CLASSIFICATION = "classification"


@attrs.frozen
class ClassificationTask:
    kind: ClassVar[str] = CLASSIFICATION
    classes: tuple[str, ...]

    @classmethod
    def for_dataset(cls, dataset) -> "ClassificationTask":
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
        loss_sum = correct = examples = 0.0
        for batch in batches:
            tokens, labels = batch["tokens"].to(device), batch["label"].to(device)
            logits = model.apply(params, tokens)
            loss_sum += float(metrics.cross_entropy(logits, labels)) * len(labels)
            correct += float((metrics.predictions(logits) == labels).sum())
            examples += len(labels)
        n = max(examples, 1)
        return {"loss": loss_sum / n, "accuracy": correct / n, "examples": int(examples)}

    @torch.no_grad()
    def examples(self, model, params, dataset, n: int, *, device=None) -> list[str]:
        """``predicted (true) | first words`` for ``n`` validation examples."""
        batch = next(iter(dataset.batches("val", n)))
        logits = model.apply(params, batch["tokens"].to(device))
        lines = []
        for tokens, guess, truth in zip(batch["tokens"], metrics.predictions(logits), batch["label"]):
            pad = getattr(dataset, "pad_id", None)
            words = decode_text(dataset, [t for t in tokens.tolist() if t != pad]).split()
            text = " ".join(words[:12]) + (" ..." if len(words) > 12 else "")
            mark = "ok" if int(guess) == int(truth) else f"WRONG, want {self.classes[int(truth)]}"
            lines.append(f"{self.classes[int(guess)]} ({mark}) | {text}")
        return lines
