"""A vmapped job evaluates its stacked members in one pass: each member's record equals that
member evaluated alone (to float rounding)."""

from __future__ import annotations

import pytest

from seqfunc import rng
from seqfunc.runs import TrainConfig, build
from seqfunc.tree import tree_stack


@pytest.mark.parametrize(
    "dataset_name, model_name, options, data",
    [
        (
            "imdb-synth",
            "transformer-classifier",
            {"d_model": 8, "heads": 2, "blocks": 1},
            {"train_size": 96, "val_size": 40},
        ),
        ("toy_grammar", "gpt", {"d_model": 16, "heads": 2, "layers": 1}, {}),
        ("toy_grammar", "transformer_lm", {"d_model": 16, "heads": 2, "layers": 1}, {}),
    ],
)
def test_members_evaluated_together_equal_each_alone(dataset_name, model_name, options, data):
    dataset, model, task = build(
        TrainConfig(
            dataset=dataset_name, model=model_name, model_options=options, dataset_options=data
        )
    )
    members = [model.init(rng.key(seed)) for seed in (0, 1, 2)]
    batches = lambda: list(dataset.batches("val", 16))[:3]
    together = task.evaluate_members(model, tree_stack(members), batches())
    assert len(together) == 3
    alone = [task.evaluate(model, params, batches()) for params in members]
    for got, want in zip(together, alone):
        assert got.keys() == want.keys()
        for name in want:
            assert got[name] == pytest.approx(want[name], rel=1e-5), name
    assert len({round(r["loss"], 6) for r in together}) == 3  # three different models


def test_a_language_model_of_many_members_evaluates_in_smaller_chunks():
    from seqfunc.tasks.language_model import EVAL_LOGITS_PER_CHUNK, row_chunks

    one, four = row_chunks((64, 32), 1000), row_chunks((64, 32), 1000, members=4)
    assert len(four) > len(one)
    assert all((s.stop - s.start) * 32 * 1000 * 4 <= EVAL_LOGITS_PER_CHUNK for s in four)
