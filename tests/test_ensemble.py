"""The vmap ensemble: members equal runs trained one after another with make_step."""

import pytest
import torch

from seqfunc import rng
from seqfunc.members_step import ravel_members
from seqfunc.optim import clip_by_global_norm
from seqfunc.runs import TrainConfig, build, make_optimizer
from seqfunc.runs.ensemble import fit_ensemble
from seqfunc.runs.members import mean_std
from seqfunc.train import init_state, make_step
from seqfunc.tree import tree_stack, tree_unstack

SEEDS = [0, 5, 11]


def sequential(cfg, dataset, model, task, seed, total_steps):
    """What seqfunc.runs.fit does for one seed: same keys, same data order, make_step."""
    optimizer = make_optimizer(cfg, total_steps)
    k_init, k_train = rng.split(rng.key(seed))
    state = init_state(model.init(k_init), optimizer)
    step_fn = make_step(task.loss_fn(model), optimizer)
    step = epoch = 0
    while step < total_steps:
        for batch in dataset.batches("train", cfg.batch_size, epoch=epoch):
            state, _ = step_fn(state, batch, rng.fold_in(k_train, step))
            step += 1
            if step == total_steps:
                break
        epoch += 1
    return state.params


# The transformer runs SGD: under Adam, a parameter whose gradient is 0 in exact arithmetic
# (the key bias: softmax ignores a shift shared by all keys) gets float noise normalised to a
# full-size step, and that noise differs between any two orders of summation.
@pytest.mark.parametrize(
    "model_name, options, optimizer",
    [
        ("transformer-classifier", {"d_model": 8, "heads": 2, "blocks": 1, "dropout": 0.2}, "sgd"),
        ("baseline", {"d_model": 16, "pool": "max"}, "adamw"),
    ],
)
def test_ensemble_members_equal_sequential_runs(
    model_name, options, optimizer, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # without out_dir, nothing is written (not even curves)
    cfg = TrainConfig(
        dataset="imdb-synth",
        model=model_name,
        model_options=options,
        dataset_options={"train_size": 96, "val_size": 32},
        steps=7,
        batch_size=32,
        lr=1e-2,
        warmup_steps=2,
        clip_norm=0.5,
        optimizer=optimizer,
        momentum=0.9,
    )
    dataset, model, task = build(cfg)
    result = fit_ensemble(cfg, SEEDS, dataset=dataset, model=model, task=task)
    assert result.steps == 7 and len(result.members) == 3
    for seed, member in zip(SEEDS, tree_unstack(result.params)):
        alone = sequential(cfg, dataset, model, task, seed, 7)
        for a, b in zip(
            torch.utils._pytree.tree_leaves(member), torch.utils._pytree.tree_leaves(alone)
        ):
            torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)
    again = fit_ensemble(cfg, SEEDS, dataset=dataset, model=model, task=task)
    assert again.members == result.members  # same seeds -> same result
    assert list(tmp_path.iterdir()) == []


def test_row_clipping_matches_clip_by_global_norm_member_by_member():
    trees = [{"a": torch.randn(3, 2) * s, "b": torch.randn(4) * s} for s in (0.1, 5.0, 20.0)]
    flat, unravel = ravel_members(tree_stack(trees))
    assert flat.shape == (3, 10)
    clipped, _ = clip_by_global_norm(1.0, rows=True).update(flat, ())
    transform = clip_by_global_norm(1.0)
    for tree, member in zip(trees, tree_unstack(unravel(clipped))):
        want, _ = transform.update(tree, ())
        torch.testing.assert_close(member, want)
    assert torch.linalg.vector_norm(clipped, dim=1).max() <= 1.0 + 1e-5
    # one norm per member: a (members, 1) column
    limits = torch.tensor([[0.05], [1.0], [100.0]])
    clipped, _ = clip_by_global_norm(limits, rows=True).update(flat, ())
    for tree, member, limit in zip(trees, tree_unstack(unravel(clipped)), limits[:, 0].tolist()):
        want, _ = clip_by_global_norm(limit).update(tree, ())
        torch.testing.assert_close(member, want)


def test_mean_std():
    assert mean_std([1.0]) == (1.0, 0.0)
    mean, std = mean_std([1.0, 2.0, 3.0])
    assert mean == 2.0 and abs(std - 1.0) < 1e-12


def test_an_ensemble_with_a_folder_evaluates_checkpoints_and_leaves_a_run_per_member(tmp_path):
    """The loop of seqfunc train: bounded evaluations every eval_every steps, checkpoints of
    the stacked state, and one loadable run folder per member."""
    import json

    from seqfunc.errors import CheckpointError
    from seqfunc.runs.load import load_run

    cfg = TrainConfig(
        dataset="xor",
        model="attention",
        dataset_options={"train_size": 128, "val_size": 64},
        steps=4,
        batch_size=32,
        eval_every=2,
        eval_batches=1,
    )
    result = fit_ensemble(cfg, [3, 4], out_dir=tmp_path / "ens")
    assert result.steps == 4 and [m["val"]["step"] for m in result.members] == [4, 4]
    assert (tmp_path / "ens" / "checkpoints" / "step-00000004").is_dir()
    folders = sorted((tmp_path / "ens" / "members").iterdir())
    assert [f.name for f in folders] == ["000-seed=3", "001-seed=4"]
    for folder, seed in zip(folders, (3, 4)):
        records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in records if r["split"] == "val"] == [2, 4]
        assert load_run(folder).config["train"]["seed"] == seed
    with pytest.raises(CheckpointError, match="resume"):  # the folder is taken: resume it
        fit_ensemble(cfg, [3, 4], out_dir=tmp_path / "ens")
    again = fit_ensemble(cfg, [3, 4], out_dir=tmp_path / "ens", resume=True)  # finished
    assert again.members == result.members
