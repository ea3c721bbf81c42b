"""Losses and accuracies. Class scores are on the **last** axis: logits ``(..., C)``."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Mean cross-entropy over the non-ignored targets. ``logits (..., C)``, ``targets (...)``.

    Always in float32: logits of a lower precision (bf16, fp16) are upcast first, so the loss
    and its reductions do not lose precision. Eagerly torch's fused kernel; under
    ``torch.compile`` written out (:func:`written_out_cross_entropy`), whose gradient inductor
    fuses into one pass."""
    logits, targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    ignore = -100 if ignore_index is None else ignore_index
    if torch.compiler.is_compiling():
        return written_out_cross_entropy(logits, targets, ignore, label_smoothing)
    return F.cross_entropy(logits, targets, ignore_index=ignore, label_smoothing=label_smoothing)


def written_out_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, ignore_index: int, label_smoothing: float
) -> torch.Tensor:
    """``F.cross_entropy`` of ``logits (n, C)`` and ``targets (n,)`` as ``logsumexp`` minus the
    target's logit picked by a one-hot product: its gradient, ``softmax - one-hot``, is one
    elementwise expression, where inductor builds ``log_softmax``'s backward from a dense sum
    over the classes (a large vocabulary's loss and gradient: 21 -> 12 ms a step)."""
    classes = torch.arange(logits.shape[-1], device=logits.device)
    picked = (logits * (classes == targets[:, None])).sum(-1)
    if label_smoothing:
        picked = (1.0 - label_smoothing) * picked + label_smoothing * logits.mean(-1)
    keep = (targets != ignore_index).to(logits.dtype)
    return ((torch.logsumexp(logits, -1) - picked) * keep).sum() / keep.sum()


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of each target: ``logits (..., *t, V)``, ``targets (*t)``
    (broadcast over the extra leading axes of ``logits``, e.g. ensemble members) ->
    ``(..., *t)``. One ``cross_entropy`` over the flattened rows, so a row of logits stays
    contiguous for its log-softmax."""
    rows = logits.reshape(-1, logits.shape[-1])
    return F.cross_entropy(
        rows, targets.expand(logits.shape[:-1]).reshape(-1), reduction="none"
    ).view(logits.shape[:-1])


def predictions(logits: torch.Tensor) -> torch.Tensor:
    """Predicted class: argmax over ``C``, or ``logit > 0`` when there is one binary logit."""
    if logits.shape[-1] == 1:
        return (logits[..., 0] > 0).long()
    return logits.argmax(dim=-1)


def token_accuracy(
    logits: torch.Tensor, targets: torch.Tensor, *, ignore_index: int | None = None
) -> torch.Tensor:
    """Fraction of non-ignored positions predicted right (assignment 000 5.4a).

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
