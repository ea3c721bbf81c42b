"""Parameter counts of assignment 001 q3.1 from registered seqfunc models, ``param_table``, and the
invariants of the two classifiers it compares."""

import attrs
import pytest
import torch

from seqfunc import registry, rng
from seqfunc.config import ConfigError
from seqfunc.data.vocab import Vocab
from seqfunc.testing import run_checks
from seqfunc.testing.probe import ProbeConfig
from seqfunc.tree import param_table, tree_count

VOCAB = Vocab(["<pad>", *(f"w{i}" for i in range(9_999))], unk=None)  # 10,000 tokens


@attrs.frozen
class Q31Dataset:
    """What ``config_for`` may read of a classification dataset: the seed's setting."""

    vocab: Vocab = VOCAB
    pad_id: int = 0
    classes: tuple = ("negative", "positive")
    config: ProbeConfig = ProbeConfig(max_len=10)


def build(name: str, max_len: int = 10, **options):
    model_cls = registry.get_model(name)
    model = model_cls(
        model_cls.config_for(Q31Dataset(config=ProbeConfig(max_len=max_len)), **options)
    )
    return model, model.init(rng.key(0))


def without_embedding(params) -> int:
    table = param_table(params)
    assert table["embed"] == 10_000 * 100
    return tree_count(params) - table["embed"]


@pytest.mark.parametrize("max_len, expected", [(10, 322_562), (40, 1_090_562)])
def test_mlp_count_grows_with_length(max_len, expected):
    model, params = build("mlp-classifier", max_len=max_len, d_embed=100, hidden=[256, 256])
    assert without_embedding(params) == expected
    assert param_table(params, depth=2) == {
        "embed.weight": 1_000_000,
        "hidden.0": max_len * 100 * 256 + 256,
        "hidden.1": 256 * 256 + 256,
        "out.weight": 512,
        "out.bias": 2,
    }
    tokens = torch.randint(1, 10_000, (3, max_len))
    assert model.apply(params, tokens).shape == (3, 2)


def test_rnn_count_one_bias_per_layer_is_independent_of_length():
    rnn_options = dict(inputs="embedding", d_embed=100, hidden_size=256, layers=2, kind="rnn")
    counts = {}
    for max_len in (10, 40):
        model, params = build("rnn-classifier", max_len=max_len, single_bias=True, **rnn_options)
        counts[max_len] = without_embedding(params)
        tokens = torch.randint(1, 10_000, (2, max_len))
        assert model.apply(params, tokens).shape == (2, 2)
    assert counts == {10: 223_234, 40: 223_234}
    assert param_table(params, depth=2) == {
        "rnn.0": 256 * 100 + 256 * 256 + 256,
        "rnn.1": 2 * 256 * 256 + 256,
        "out.weight": 512,
        "out.bias": 2,
        "embed.weight": 1_000_000,
    }


def test_rnn_count_torch_style_equals_torch_modules():
    _, params = build("rnn-classifier", inputs="embedding", d_embed=100, hidden_size=256, layers=2)
    torch_count = sum(
        p.numel()
        for m in (torch.nn.RNN(100, 256, num_layers=2), torch.nn.Linear(256, 2))
        for p in m.parameters()
    )
    assert without_embedding(params) == torch_count == 223_746


def test_one_hot_input_has_no_pad_column():
    model, params = build("rnn-classifier", hidden_size=4, layers=1)
    assert params["rnn"][0]["weight_ih"].shape == (4, 9_999)
    assert "embed" not in params


def test_param_table_sums_and_rejects_bad_depth():
    tree = {
        "a": {"w": torch.zeros(2, 3), "b": torch.zeros(3)},
        "layers": [{"w": torch.zeros(4)}] * 2,
    }
    assert param_table(tree) == {"a": 9, "layers": 8}
    assert param_table(tree, depth=2) == {"a.w": 6, "a.b": 3, "layers.0": 4, "layers.1": 4}
    assert sum(param_table(tree, depth=5).values()) == tree_count(tree) == 17
    with pytest.raises(ValueError, match="depth=0"):
        param_table(tree, depth=0)


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="hidden="):
        build("mlp-classifier", hidden=[256, 0])
    with pytest.raises(ConfigError, match="kind='elman'"):
        build("rnn-classifier", kind="elman")
    with pytest.raises(ConfigError, match="inputs="):
        build("rnn-classifier", inputs="bag")
    with pytest.raises(ConfigError, match="unknown field"):
        build("rnn-classifier", hidden=3)
    model, params = build("mlp-classifier", max_len=4, d_embed=2, hidden=[3])
    with pytest.raises(ValueError, match="max_len=4"):
        model.apply(params, torch.ones(1, 5, dtype=torch.long))


@pytest.mark.parametrize(
    "name, options",
    [
        ("rnn-classifier", {}),
        ("rnn-classifier", {"kind": "lstm", "inputs": "embedding", "single_bias": True}),
        ("mlp-classifier", {}),
    ],
)
def test_classifiers_pass_the_invariants(name, options):
    report = run_checks(registry.get_model(name), compile=False, max_examples=8, overrides=options)
    assert report.ok, report.summary()
    assert "padding_invariance" in report.passed and "determinism" in report.passed
