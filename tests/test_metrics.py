import pytest
import torch

from seqfunc import metrics

LOGITS = torch.tensor([[1, 0, 0], [0.4, 0.5, 0.1], [0, 1, 0], [0.4, 0.1, 0.5]])


def test_seed_000_accuracy_asserts():
    """Seed 000, cell 32: the four asserted cases of accuracy with ignore_index."""
    assert float(metrics.token_accuracy(LOGITS, torch.tensor([0, 1, 2, 2]), ignore_index=1)) == pytest.approx(2 / 3)
    assert float(metrics.token_accuracy(LOGITS, torch.tensor([0, 1, 2, 2]), ignore_index=2)) == 1
    assert float(metrics.token_accuracy(LOGITS, torch.tensor([0, 1, 2, 2]), ignore_index=3)) == 3 / 4
    assert float(metrics.token_accuracy(LOGITS, torch.tensor([2, 2, 1, 2]), ignore_index=2)) == 1


def test_binary_single_logit():
    logits = torch.tensor([[2.0], [-1.0], [0.5]])
    assert float(metrics.token_accuracy(logits, torch.tensor([1, 0, 0]))) == pytest.approx(2 / 3)


def test_cross_entropy_ignores_index():
    logits = torch.randn(2, 3, 5)
    targets = torch.tensor([[1, 2, 4], [0, 4, 4]])
    kept = targets != 4
    expected = torch.nn.functional.cross_entropy(logits[kept], targets[kept])
    torch.testing.assert_close(metrics.cross_entropy(logits, targets, ignore_index=4), expected)


def test_sequence_and_exact_match():
    targets = torch.tensor([[1, 2, 0], [3, 0, 0]])
    logits = torch.nn.functional.one_hot(torch.tensor([[1, 2, 3], [2, 1, 0]]), 4).float()
    # pad id 0 is ignored: row 0 is right on its real tokens (pos 2 is pad), row 1 is not
    assert float(metrics.sequence_accuracy(logits, targets, ignore_index=0)) == 0.5
    assert float(metrics.exact_match(torch.tensor([[1, 2, 0], [3, 1, 0]]), targets)) == 0.5
    assert float(metrics.exact_match(torch.tensor([[1, 2], [3, 0]]), targets)) == 0.0
