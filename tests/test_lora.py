"""LoRA adapters: a fresh adapter leaves the model unchanged, merged weights give the logits of
the unmerged low-rank path, targets are checked, and gradients reach the adapters only."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqfunc import rng
from seqfunc.errors import ConfigError
from seqfunc.models.gpt import GPT, GPTConfig
from seqfunc.models.llama import Llama, LlamaConfig
from seqfunc.models.lora import LoRAModel
from seqfunc.nn import lora
from seqfunc.tree import flatten_dict, tree_map

MODELS = {
    "llama": (
        Llama(LlamaConfig(vocab_size=23, context=32, d_model=16, heads=4, kv_heads=2, layers=2)),
        ("q", "v"),
    ),
    "gpt": (GPT(GPTConfig(vocab_size=23, context=32, d_model=16, heads=2, layers=2)), ("qkv",)),
}


def trained_like(adapters, seed=9):
    """Adapters with a nonzero B, as after some training."""
    return tree_map(lambda t: t + 0.1 * rng.normal(rng.key(seed), t.shape), adapters)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    d_in=st.integers(1, 12),
    d_out=st.integers(1, 12),
    rank=st.integers(1, 4),
    alpha=st.floats(0.5, 32),
)
def test_merged_weight_equals_the_low_rank_path(seed, d_in, d_out, rank, alpha):
    base = {"proj": {"weight": rng.normal(rng.key(seed), (d_out, d_in))}}
    adapters = trained_like(lora.init_adapters(rng.key(seed + 1), base, ["proj"], rank), seed)
    x = rng.normal(rng.key(seed + 2), (5, d_in))
    a, b, w = adapters["proj"]["a"], adapters["proj"]["b"], base["proj"]["weight"]
    unmerged = x @ w.T + (alpha / rank) * (x @ a.T) @ b.T
    merged = x @ lora.merge(base, adapters, alpha / rank)["proj"]["weight"].T
    torch.testing.assert_close(merged, unmerged, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(MODELS))
def test_fresh_adapters_change_nothing_and_trained_ones_merge_exactly(name):
    model, targets = MODELS[name]
    base = model.init(rng.key(0))
    wrapped = LoRAModel(model, base, rank=4, alpha=8, targets=targets)
    tokens = torch.randint(0, 23, (3, 10), generator=torch.Generator().manual_seed(0))
    fresh = wrapped.init(rng.key(1))
    assert torch.equal(wrapped.apply(fresh, tokens), model.apply(base, tokens))
    adapters = trained_like(fresh)
    merged = {k: v.clone() for k, v in flatten_dict(wrapped.merged(adapters)).items()}
    changed = {k for k in merged if not torch.equal(merged[k], flatten_dict(base)[k])}
    assert changed == {f"{m}.weight" for m in wrapped.modules}
    assert len(wrapped.modules) == len(targets) * 2  # each target in each of the two layers
    torch.testing.assert_close(
        wrapped.apply(adapters, tokens),
        model.apply(wrapped.merged(adapters), tokens),
        atol=1e-5,
        rtol=1e-5,
    )


def test_gradients_reach_the_adapters_and_leave_the_base():
    model, targets = MODELS["llama"]
    base = model.init(rng.key(0))
    before = {k: v.clone() for k, v in flatten_dict(base).items()}
    wrapped = LoRAModel(model, base, rank=2, alpha=4, targets=targets)
    tokens = torch.randint(0, 23, (2, 8), generator=torch.Generator().manual_seed(1))

    def loss(adapters):
        return wrapped.apply(adapters, tokens).logsumexp(-1).mean()

    grads = torch.func.grad(loss)(trained_like(wrapped.init(rng.key(2))))
    assert set(flatten_dict(grads)) == {f"{m}.{p}" for m in wrapped.modules for p in "ab"}
    assert all(g.abs().sum() > 0 for g in flatten_dict(grads).values())
    assert all(torch.equal(before[k], v) for k, v in flatten_dict(base).items())


def test_a_target_that_names_nothing_is_one_clear_error():
    model, _ = MODELS["llama"]
    with pytest.raises(ConfigError, match=r"lora_targets: 'qkv' names no 2-D weight.*q, "):
        LoRAModel(model, model.init(rng.key(0)), rank=2, alpha=4, targets=["qkv"])
