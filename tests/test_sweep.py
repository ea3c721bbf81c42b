"""Sweeps: each member of a vmapped grid x seeds equals the plain run with its values."""

import pytest
import torch
from test_ensemble import sequential

from seqfunc import optim
from seqfunc.errors import ConfigError
from seqfunc.runs import TrainConfig, build
from seqfunc.runs.sweep import grid_members, group_members, train_members
from seqfunc.tree import tree_leaves


@pytest.mark.parametrize(
    "model_name, options, optimizer, grid",
    [
        (
            "transformer-classifier",
            {"d_model": 8, "heads": 2, "blocks": 1, "dropout": 0.2},
            "sgd",
            {"lr": [3e-3, 1e-2, 3e-2], "momentum": [0.0, 0.9]},
        ),
        (
            "baseline",
            {"d_model": 16, "pool": "max"},
            "adamw",
            {"lr": [1e-3, 3e-3, 1e-2], "weight_decay": [0.0, 0.1], "clip_norm": [0.5]},
        ),
    ],
)
def test_sweep_members_equal_single_runs(model_name, options, optimizer, grid):
    base = TrainConfig(
        dataset="imdb-synth",
        model=model_name,
        model_options=options,
        dataset_options={"train_size": 96, "val_size": 32},
        steps=7,
        batch_size=32,
        warmup_steps=2,
        clip_norm=0.5,
        optimizer=optimizer,
        eval_every=7,
    )
    members = grid_members(base, grid, seeds=[0, 5])
    assert len(members) == 3 * 2 * 2 and group_members(members) == [list(range(12))]
    dataset, model, task = build(base)
    result = train_members(members, dataset=dataset, model=model, task=task)
    for cfg, member in zip(members, result.member_params()):
        alone = sequential(cfg, dataset, model, task, cfg.seed, 7)
        for a, b in zip(tree_leaves(member), tree_leaves(alone)):
            torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)
    finals = [r[-1] for r in result.records]
    assert all(r["split"] == "val" and r["step"] == 7 for r in finals)
    assert len({round(r["loss"], 6) for r in finals}) > 1  # the hyperparameters did something


# SGD for the reason test_ensemble gives; the GPT's dropout sits on its embeddings,
# attention output and feed-forward, the classifier's on its embeddings and blocks.
@pytest.mark.parametrize(
    "dataset_name, model_name, options, data",
    [
        (
            "imdb-synth",
            "transformer-classifier",
            {"d_model": 8, "heads": 2, "blocks": 1},
            {"train_size": 96, "val_size": 32},
        ),
        ("toy_grammar", "gpt", {"d_model": 16, "heads": 2, "layers": 1}, {}),
    ],
)
def test_members_with_their_own_dropout_rates_train_in_one_job_as_single_runs(
    dataset_name, model_name, options, data
):
    base = TrainConfig(
        dataset=dataset_name,
        model=model_name,
        model_options=options,
        dataset_options=data,
        steps=6,
        batch_size=16,
        optimizer="sgd",
        lr=0.05,
        warmup_steps=1,
        eval_every=6,
    )
    members = grid_members(
        base, {"model.dropout": [0.0, 0.1, 0.4], "lr": [0.05, 0.1]}, seeds=[0, 5]
    )
    assert group_members(members) == [list(range(12))]
    result = train_members(members)
    for cfg, member in zip(members, result.member_params()):
        dataset, model, task = build(cfg)
        assert model.config.dropout == cfg.model_options["dropout"]
        alone = sequential(cfg, dataset, model, task, cfg.seed, 6)
        for a, b in zip(tree_leaves(member), tree_leaves(alone)):
            torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)
    # the rates did something: same lr and seed, other rate, other parameters
    first = [tree_leaves(p)[0] for p in result.member_params()]
    assert not torch.allclose(first[0], first[4]) and not torch.allclose(first[4], first[8])


def test_members_that_change_shapes_go_to_separate_jobs():
    base = TrainConfig(dataset="imdb-synth", model="baseline")
    members = grid_members(base, {"model.d_model": [8, 16], "lr": [1e-3, 1e-2]}, seeds=[0, 1, 2])
    assert group_members(members) == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]
    assert group_members(members, max_members=4) == [[0, 1, 2, 3], [4, 5], [6, 7, 8, 9], [10, 11]]
    with pytest.raises(ConfigError, match="group_members"):
        train_members(members)
    with pytest.raises(ConfigError, match="--grid widht"):
        grid_members(base, {"widht": [1]}, seeds=[0])


def test_injected_adamw_equals_adamw_and_broadcasts_per_member():
    params = {"w": torch.randn(5, 3), "b": torch.randn(3)}
    grads = [{"w": torch.randn(5, 3), "b": torch.randn(3)} for _ in range(3)]
    plain = optim.adamw(1e-2, b1=0.8, weight_decay=0.1)
    injected = optim.inject_hyperparams(
        lambda lr, b1, wd: optim.adamw(lr, b1=b1, weight_decay=wd), lr=1e-2, b1=0.8, wd=0.1
    )
    s1, s2, p1, p2 = plain.init(params), injected.init(params), params, params
    for g in grads:
        u1, s1 = plain.update(g, s1, p1)
        u2, s2 = injected.update(g, s2, p2)
        p1, p2 = optim.apply_updates(p1, u1), optim.apply_updates(p2, u2)
    for a, b in zip(tree_leaves(p1), tree_leaves(p2)):
        torch.testing.assert_close(a, b)
    # two members as rows, each with its own rate: each row moves as the run with that rate
    rows = torch.randn(2, 4)
    stacked = optim.inject_hyperparams(lambda lr: optim.sgd(lr), lr=[[0.1], [1.0]])
    update, _ = stacked.update(torch.ones(2, 4), stacked.init(rows), rows)
    torch.testing.assert_close(update, torch.tensor([[-0.1] * 4, [-1.0] * 4]))


def test_sweep_command_writes_member_runs_table_and_best(tmp_path, capsys):
    import json

    from seqfunc.cli import main
    from seqfunc.runs.load import load_run

    out = tmp_path / "sweep"
    code = main(
        [
            "sweep",
            "imdb-synth",
            "--model",
            "baseline",
            "-m",
            "d_model=8",
            "--steps",
            "6",
            "--batch-size",
            "32",
            "-d",
            "train_size=96",
            "-d",
            "val_size=32",
            "--optimizer",
            "adamw",
            "--grid",
            "lr=1e-3,3e-2",
            "--grid",
            "weight_decay=0,0.1",
            "--seeds",
            "2",
            "--max-members",
            "3",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "job 3/3" in printed and "<- best" in printed and "best: lr=" in printed
    lines = [json.loads(line) for line in (out / "sweep.jsonl").read_text().splitlines()]
    members, points = lines[:8], lines[8:]
    assert [m["seed"] for m in members] == [0, 1] * 4 and len(points) == 4
    assert points[0]["values"] == {"lr": 0.001, "weight_decay": 0}
    assert points[0]["per_seed"] == [members[0]["accuracy"], members[1]["accuracy"]]
    folders = sorted((out / "members").iterdir())
    assert len(folders) == 8 and folders[5].name == "005-lr=0.03-weight_decay=0-seed=1"
    run = load_run(folders[5])
    assert run.config["train"]["lr"] == 0.03 and run.config["train"]["seed"] == 1
    assert main(["sweep", "imdb-synth", "--grid", "lr"]) == 2
    assert "--grid 'lr': expected NAME=V1,V2" in capsys.readouterr().err


def test_sweep_members_trim_padding_as_seqfunc_train_does():
    from seqfunc import rng
    from seqfunc.runs import make_optimizer
    from seqfunc.train import init_state, make_step

    base = TrainConfig(
        dataset="formula",
        model="transformer",
        steps=3,
        batch_size=16,
        model_options={
            "d_model": 16,
            "heads": 2,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "d_ff": 16,
            "dropout": 0.0,
        },
        dataset_options={"val_size": 16},
        optimizer="sgd",
        schedule="constant",
        trim_padding=True,
        eval_every=3,
    )
    members = grid_members(base, {"lr": [0.05, 0.2]}, seeds=[0])
    dataset, model, task = build(base)
    widths = {b["src"].shape[1] for b, _ in zip(dataset.batches("train", 16), range(3))}
    assert widths == {dataset.max_source_len}  # untrimmed, the batches are full width
    seen = []

    class Recording:  # the task, its loss recording the source widths it trains on
        def __getattr__(self, name):
            return getattr(task, name)

        def loss_fn(self, model):
            inner = task.loss_fn(model)
            return lambda params, batch, key: (
                seen.append(batch["src"].shape[1]) or inner(params, batch, key)
            )

    result = train_members(members, dataset=dataset, model=model, task=Recording())
    assert seen and max(seen) < dataset.max_source_len  # trimmed before the step
    for cfg, member in zip(members, result.member_params()):
        optimizer = make_optimizer(cfg, 3)
        k_init, k_train = rng.split(rng.key(cfg.seed))
        state = init_state(model.init(k_init), optimizer)
        step = make_step(task.loss_fn(model), optimizer, trim=task.trim_padding)
        for i, batch in zip(range(3), dataset.batches("train", 16)):
            state, _ = step(state, batch, rng.fold_in(k_train, i))
        for a, b in zip(tree_leaves(member), tree_leaves(state.params)):
            torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)


def test_a_data_parallel_sweep_is_refused_in_one_line(capsys, tmp_path):
    from seqfunc.cli import main

    assert (
        main(
            ["sweep", "xor", "--grid", "lr=1e-3,1e-2", "--nproc", "2", "--out", str(tmp_path / "s")]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not run data-parallel" in err[0], err
    assert not (tmp_path / "s").exists()


def test_a_model_vmap_cannot_run_is_refused_in_one_line_before_anything_is_written(
    capsys, tmp_path
):
    from seqfunc.cli import main
    from seqfunc.runs.ensemble import fit_ensemble

    argv = ["sweep", "toy_grammar", "--model", "lstm_lm", "--grid", "lr=1e-3,1e-2", "--steps", "2"]
    assert main([*argv, "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'lstm_lm' cannot run under torch.func.vmap" in err[0], err
    assert not (tmp_path / "s").exists()
    with pytest.raises(ConfigError, match="cannot run under torch.func.vmap"):
        fit_ensemble(TrainConfig(dataset="toy_grammar", model="lstm_lm", steps=2), seeds=[0, 1])


def test_sweep_prints_its_base_config_and_refuses_tensorboard(capsys, tmp_path):
    import json

    from seqfunc.cli import main

    assert main(["sweep", "xor", "--grid", "lr=1e-3,1e-2", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["train"]["dataset"] == "xor"
    assert (
        main(["sweep", "xor", "--grid", "lr=1e-3", "--tensorboard", "--out", str(tmp_path / "s")])
        == 2
    )
    assert "--tensorboard" in capsys.readouterr().err and not (tmp_path / "s").exists()
