"""Hypothesis strategies for model inputs of any task kind.

``model_inputs(probe)`` draws a dict of int64 tensors keyed like :data:`seqfunc.contracts.MODEL_INPUTS`
(``{"src": (b, s), "tgt_in": (b, t)}`` for seq2seq, ...): padded fields are right-padded with
``<pad>`` and always hold at least one real token per row. Hypothesis shrinks the drawn lists, so
a failure is reported on the smallest batch, shortest rows and smallest ids it can find.

    from hypothesis import given
    from seqfunc.testing import probe_dataset, strategies

    probe = probe_dataset("seq2seq")

    @given(strategies.model_inputs(probe))
    def test_shapes(inputs):
        logits = model.apply(params, inputs["src"], inputs["tgt_in"])
        assert logits.shape[:2] == inputs["tgt_in"].shape
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from seqfunc.testing.probe import Field, ProbeDataset


def tokens(probe: ProbeDataset, min_len: int = 1, max_len: int = 6) -> st.SearchStrategy[list[int]]:
    """A list of ordinary token ids (never a special token)."""
    return st.lists(st.sampled_from(probe.token_ids), min_size=min_len, max_size=max_len)


def _row(draw, probe: ProbeDataset, field: Field, min_len: int, max_len: int) -> list[int]:
    if field.starts_with_bos:
        return [probe.bos_id] + draw(tokens(probe, max(min_len - 1, 0), max_len - 1))
    return draw(tokens(probe, min_len, max_len))


@st.composite
def field_tensor(
    draw,
    probe: ProbeDataset,
    field: Field,
    batch: int,
    *,
    min_len: int = 1,
    max_len: int = 6,
    width: int | None = None,
) -> torch.Tensor:
    """``(batch, length)`` ids for one input. A padded field has rows of their own lengths,
    padded to the longest (plus up to two extra pad columns unless ``width`` fixes it); an
    unpadded one has rows of one common length."""
    if not field.padded:
        length = width or draw(st.integers(min_len, max_len))
        rows = [_row(draw, probe, field, length, length) for _ in range(batch)]
        return torch.tensor(rows, dtype=torch.long)
    top = width or max_len
    rows = [_row(draw, probe, field, min_len, top) for _ in range(batch)]
    width = width or max(map(len, rows)) + draw(st.integers(0, 2))
    padded = [row + [probe.pad_id] * (width - len(row)) for row in rows]
    return torch.tensor(padded, dtype=torch.long)


@st.composite
def model_inputs(
    draw,
    probe: ProbeDataset,
    *,
    min_batch: int = 1,
    max_batch: int = 3,
    min_len: int = 1,
    max_len: int = 6,
    width: int | None = None,
) -> dict[str, torch.Tensor]:
    """Inputs for a model of ``probe.task``; ``width`` fixes every field's length (a compiled
    function then sees one shape)."""
    b = min_batch if width else draw(st.integers(min_batch, max_batch))
    return {
        f.name: draw(field_tensor(probe, f, b, min_len=min_len, max_len=max_len, width=width))
        for f in probe.fields
    }


def real_length(row: torch.Tensor, probe: ProbeDataset, field: Field) -> int:
    """Number of leading non-pad tokens of one row."""
    if not field.padded:
        return int(row.shape[0])
    return int((row != probe.pad_id).sum())
