import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from seqfunc import metrics

LOGITS = torch.tensor([[1, 0, 0], [0.4, 0.5, 0.1], [0, 1, 0], [0.4, 0.1, 0.5]])


def test_seed_000_accuracy_asserts():
    """Assignment 000, cell 32: the four asserted cases of accuracy with ignore_index."""
    assert float(
        metrics.token_accuracy(LOGITS, torch.tensor([0, 1, 2, 2]), ignore_index=1)
    ) == pytest.approx(2 / 3)
    assert float(metrics.token_accuracy(LOGITS, torch.tensor([0, 1, 2, 2]), ignore_index=2)) == 1
    assert (
        float(metrics.token_accuracy(LOGITS, torch.tensor([0, 1, 2, 2]), ignore_index=3)) == 3 / 4
    )
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


@settings(max_examples=30, deadline=None)
@given(
    rows=st.integers(1, 20),
    classes=st.integers(1, 30),
    ignore=st.sampled_from([None, 0, 3]),
    smoothing=st.sampled_from([0.0, 0.1]),
    seed=st.integers(0, 10**6),
)
def test_written_out_cross_entropy_equals_torch_with_its_gradient(
    rows, classes, ignore, smoothing, seed
):
    """The form ``cross_entropy`` takes under torch.compile: value and gradient of F's."""
    g = torch.Generator().manual_seed(seed)
    logits = (3 * torch.randn(rows, classes, generator=g)).requires_grad_()
    targets = torch.randint(0, classes, (rows,), generator=g)
    if ignore is not None and ignore < classes:  # some targets ignored
        targets = torch.where(targets % 3 == 0, ignore, targets)
    want = F.cross_entropy(
        logits, targets, ignore_index=-100 if ignore is None else ignore, label_smoothing=smoothing
    )
    got = metrics.written_out_cross_entropy(
        logits, targets, -100 if ignore is None else ignore, smoothing
    )
    if torch.isnan(want):  # every target ignored: both are 0 / 0
        assert torch.isnan(got)
        return
    torch.testing.assert_close(got, want)
    for a, b in zip(torch.autograd.grad(got, logits), torch.autograd.grad(want, logits)):
        torch.testing.assert_close(a, b)


def test_compiled_cross_entropy_equals_eager():
    logits, targets = torch.randn(4, 6, 50), torch.randint(0, 50, (4, 6))
    fn = lambda x, t: metrics.cross_entropy(x, t, ignore_index=7, label_smoothing=0.1)  # noqa: E731
    torch.testing.assert_close(
        torch.compile(fn, dynamic=False)(logits, targets), fn(logits, targets)
    )
