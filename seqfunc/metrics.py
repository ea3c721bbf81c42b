"""Losses and accuracies. Class scores are on the **last** axis: logits ``(..., C)``."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, *, ignore_index: int | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Mean cross-entropy over the non-ignored targets. ``logits (..., C)``, ``targets (...)``."""
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        targets.reshape(-1),
        ignore_index=-100 if ignore_index is None else ignore_index,
        label_smoothing=label_smoothing,
    )


def predictions(logits: torch.Tensor) -> torch.Tensor:
    """Predicted class: argmax over ``C``, or ``logit > 0`` when there is one binary logit."""
    if logits.shape[-1] == 1:
        return (logits[..., 0] > 0).long()
    return logits.argmax(dim=-1)


def token_accuracy(
    logits: torch.Tensor, targets: torch.Tensor, *, ignore_index: int | None = None
) -> torch.Tensor:
    """Fraction of non-ignored positions predicted right (seed 000 5.4a).

    ``logits (..., C)`` (or ``(..., 1)`` for binary), ``targets (...)`` -> 0-d tensor.
    """
    correct = (predictions(logits) == targets).float()
    if ignore_index is None:
        return correct.mean()
    keep = (targets != ignore_index).float()
    return (correct * keep).sum() / keep.sum().clamp(min=1.0)


def sequence_accuracy(
    logits: torch.Tensor, targets: torch.Tensor, *, ignore_index: int | None = None
) -> torch.Tensor:
    """Fraction of sequences whose every non-ignored position is right (teacher forcing).

    ``logits (b, t, C)``, ``targets (b, t)`` -> 0-d tensor.
    """
    right = predictions(logits) == targets
    if ignore_index is not None:
        right = right | (targets == ignore_index)
    return right.all(dim=-1).float().mean()


def exact_match(predicted: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of rows of ``predicted (b, t)`` equal to ``targets (b, t)`` everywhere
    (both padded the same way after ``<eos>``, as the decoders return them)."""
    width = max(predicted.shape[1], targets.shape[1])
    predicted = F.pad(predicted, (0, width - predicted.shape[1]), value=-1)
    targets = F.pad(targets, (0, width - targets.shape[1]), value=-1)
    return (predicted == targets).all(dim=-1).float().mean()
