from random import Random

import pytest
import torch

from seqfunc.data import Vocab, pad_or_trim, used_width
from seqfunc.data.formula import (
    FORMULA_VOCAB,
    FormulaConfig,
    FormulaDataset,
    decode,
    encode,
    max_answer_length,
    max_question_length,
    random_formula,
    random_formulas,
)
from seqfunc.tasks import task_for


def test_reproduces_seed_000_formulas():
    assert random_formula(3, rng=Random(123456)) == ("649+864", "1513")
    assert list(random_formulas(3, True, 5, 123456)) == [
        ("649+864", "1513"),
        ("-940-819", "-1759"),
        ("954-2", "952"),
        ("-896-274", "-1170"),
        ("-762-954", "-1716"),
    ]


def test_seed_vocabulary_order():
    assert len(FORMULA_VOCAB) == 16
    assert FORMULA_VOCAB.idx_to_token == [
        "+",
        "-",
        "0",
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
        "7",
        "8",
        "9",
        "<bos>",
        "<eos>",
        "<pad>",
        "<unk>",
    ]
    assert FORMULA_VOCAB["x"] == FORMULA_VOCAB["<unk>"] == 15


def test_encode_pad_decode_as_in_the_seed():
    ids = encode("649+864")
    assert ids == [8, 6, 11, 0, 10, 8, 6, 13]
    assert pad_or_trim(ids, 10, FORMULA_VOCAB["<pad>"]) == [8, 6, 11, 0, 10, 8, 6, 13, 14, 14]
    assert len(pad_or_trim(list(range(20)), 10, 14)) == 10
    assert decode(pad_or_trim(ids, 10, 14)) == "649+864"


def test_used_width_is_one_past_the_last_non_pad_position():
    pad = 14
    tokens = torch.tensor([[1, 2, pad, pad, pad, pad], [3, pad, 4, pad, pad, pad]])
    assert used_width(tokens, pad) == 3
    assert used_width(tokens, pad, multiple=2) == 4
    assert used_width(tokens, pad, multiple=4) == 4
    assert used_width(tokens, pad, multiple=8) == 6  # rounded up, capped at the width
    assert used_width(torch.full((2, 5), pad), pad) == 1  # all padding: one position kept
    assert used_width(torch.tensor([[pad, 7]]), pad) == 2  # only trailing padding goes


def test_trim_padding_cuts_what_every_row_pads():
    dataset = FormulaDataset(FormulaConfig(epoch_size=256, val_size=64))
    task = task_for(dataset)
    batch = next(iter(dataset.batches("train", 64)))
    trimmed = task.trim_padding(batch)
    s, t = trimmed["src"].shape[1], trimmed["tgt_out"].shape[1]
    assert s < batch["src"].shape[1]  # 11 wide; 64 questions need 9 or 10
    assert trimmed["tgt_in"].shape[1] == t
    pad = dataset.pad_id
    assert (batch["src"][:, s:] == pad).all() and (batch["src"][:, s - 1] != pad).any()
    assert (batch["tgt_out"][:, t:] == pad).all() and (batch["tgt_out"][:, t - 1] != pad).any()
    for name, x in trimmed.items():
        assert torch.equal(x, batch[name][:, : x.shape[1]])
    assert task.trim_padding(trimmed)["src"] is trimmed["src"]  # nothing left to cut: no copy


def test_lengths_fit_the_longest_formula():
    longest_q, longest_a = "-1000-1000", "-2000"
    assert len(encode(longest_q)) == max_question_length(3)
    assert len(encode(longest_a)) == max_answer_length(3)


def test_batches_are_deterministic_distinct_and_shifted():
    ds = FormulaDataset(FormulaConfig(train_size=1000, val_size=500))
    first = next(ds.batches("train", 125))
    assert torch.equal(first["src"], next(ds.batches("train", 125))["src"])
    assert first["src"].shape == (125, max_question_length(3))
    assert first["tgt_in"].shape == first["tgt_out"].shape == (125, max_answer_length(3))
    assert torch.equal(first["tgt_in"][:, 0], torch.full((125,), FORMULA_VOCAB["<bos>"]))
    assert torch.equal(first["tgt_in"][:, 1:], first["tgt_out"][:, :-1])
    assert sum(len(b["src"]) for b in ds.batches("train", 125)) == 1000
    val = next(ds.batches("val", 125))
    assert not torch.equal(first["src"], val["src"])


def test_validation_questions_never_trained_on():
    ds = FormulaDataset(FormulaConfig(complexity=1, epoch_size=2000, val_size=100))
    val_questions = {q for q, _ in ds.formulas("val")}
    for epoch in range(3):
        assert not val_questions & {q for q, _ in ds.formulas("train", epoch=epoch)}


def test_fresh_epochs_differ_fixed_epochs_repeat():
    fresh = FormulaDataset(FormulaConfig(epoch_size=50))
    assert fresh.formulas("train", epoch=0) != fresh.formulas("train", epoch=1)
    fixed = FormulaDataset(FormulaConfig(train_size=50))
    assert fixed.formulas("train", epoch=0) == fixed.formulas("train", epoch=1)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("12a+3", "'a'"),
        ("1234567+1234567", "at most 10"),
    ],
)
def test_encode_source_rejects_bad_input(text, message):
    with pytest.raises(ValueError, match=message):
        FormulaDataset().encode_source(text)


def test_vocab_rejects_duplicates_and_roundtrips_json():
    with pytest.raises(ValueError, match="duplicate"):
        Vocab(["a", "a", "<unk>"])
    assert Vocab.from_json(FORMULA_VOCAB.to_json()) == FORMULA_VOCAB
