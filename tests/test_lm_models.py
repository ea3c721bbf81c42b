"""Language models: KV-cached decoding equals recomputing the prefix; causality; recurrent layers."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqfunc import rng
from seqfunc.models.gpt import GPT, GPTConfig
from seqfunc.models.lstm_lm import LSTMLM, LSTMLMConfig
from seqfunc.models.transformer_lm import TransformerLM, TransformerLMConfig
from seqfunc.nn import recurrent


@settings(max_examples=25, deadline=None)
@given(
    prompt_len=st.integers(1, 12),
    new=st.integers(1, 10),
    heads=st.sampled_from([1, 2, 4]),
    head_dim=st.sampled_from([2, 8]),
    layers=st.integers(0, 3),
    vocab=st.integers(2, 40),
    positions=st.sampled_from(["learned", "sinusoidal"]),
    norm_first=st.booleans(),
    tie=st.booleans(),
    batch=st.integers(1, 3),
    seed=st.integers(0, 1000),
)
def test_kv_cache_logits_equal_full_recompute(
    prompt_len, new, heads, head_dim, layers, vocab, positions, norm_first, tie, batch, seed
):
    total = prompt_len + new
    model = GPT(
        GPTConfig(
            vocab_size=vocab,
            context=total + 3,
            d_model=heads * head_dim,
            heads=heads,
            layers=layers,
            positions=positions,
            norm_first=norm_first,
            tie_weights=tie,
        )
    )
    params = model.init(rng.key(seed))
    tokens = rng.random_bits(rng.key(seed + 1), (batch, total)) % vocab
    full = model.apply(params, tokens)
    cache = model.init_cache(params, batch, total + 3)
    logits, cache = model.extend(params, tokens[:, :prompt_len], cache)
    steps = [logits]
    for i in range(prompt_len, total):
        logits, cache = model.extend(params, tokens[:, i : i + 1], cache)
        steps.append(logits)
    assert int(cache["pos"]) == total
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=2e-5, rtol=1e-4)


def test_donated_extend_writes_in_place_and_equals_the_pure_one():
    model = GPT(GPTConfig(vocab_size=11, context=16, d_model=8, heads=2, layers=2))
    params = model.init(rng.key(0))
    tokens = rng.random_bits(rng.key(1), (2, 7)) % 11
    _, cache = model.extend(params, tokens[:, :5], model.init_cache(params, 2, 16))
    before = [b.clone() for b in cache["k"] + cache["v"]]
    pure_logits, pure = model.extend(params, tokens[:, 5:], cache)
    assert all(torch.equal(b, a) for b, a in zip(cache["k"] + cache["v"], before))  # untouched
    logits, donated = model.extend(params, tokens[:, 5:], cache, donate=True)
    torch.testing.assert_close(logits, pure_logits)
    for mine, theirs, written in zip(
        cache["k"] + cache["v"], donated["k"] + donated["v"], pure["k"] + pure["v"]
    ):
        assert mine.data_ptr() == theirs.data_ptr()  # the same buffer, written in place
        torch.testing.assert_close(theirs, written)
    assert int(donated["pos"]) == 7


@pytest.mark.parametrize(
    "make",
    [
        lambda: GPT(GPTConfig(vocab_size=9, context=12, d_model=8, heads=2, layers=2)),
        lambda: TransformerLM(
            TransformerLMConfig(vocab_size=9, d_model=8, heads=2, d_ff=8, layers=2)
        ),
        lambda: LSTMLM(LSTMLMConfig(vocab_size=9, d_embed=6, hidden=8, layers=2)),
    ],
)
def test_language_models_are_causal(make):
    model = make()
    params = model.init(rng.key(0))
    a = rng.random_bits(rng.key(1), (2, 10)) % 9
    b = a.clone()
    b[:, 6:] = (b[:, 6:] + 1) % 9
    la, lb = model.apply(params, a), model.apply(params, b)
    assert la.shape == (2, 10, 9)
    torch.testing.assert_close(la[:, :6], lb[:, :6])
    assert not torch.allclose(la[:, 6:], lb[:, 6:])


def test_lstm_matches_torch_module_and_carries_state():
    params = recurrent.init_lstm(rng.key(0), 5, 7, layers=2)
    module = torch.nn.LSTM(5, 7, num_layers=2, batch_first=True)
    with torch.no_grad():
        for i, layer in enumerate(params):
            for name, value in layer.items():
                getattr(module, f"{name}_l{i}").copy_(value)
    x = rng.normal(rng.key(1), (3, 6, 5))
    ours, _ = recurrent.lstm(params, x)
    theirs, _ = module(x)
    torch.testing.assert_close(ours, theirs)
    first, state = recurrent.lstm(params, x[:, :4])
    rest, _ = recurrent.lstm(params, x[:, 4:], state)
    torch.testing.assert_close(torch.cat([first, rest], 1), ours)


def test_lstm_gradients_flow_through_functional_call():
    model = LSTMLM(LSTMLMConfig(vocab_size=5, d_embed=4, hidden=4, layers=1, tie_weights=True))
    params = model.init(rng.key(0))
    tokens = torch.tensor([[1, 2, 3, 4]])
    grads = torch.func.grad(lambda p: model.apply(p, tokens).logsumexp(-1).sum())(params)
    assert (
        grads["lstm"][0]["weight_hh"].abs().sum() > 0 and grads["embed"]["weight"].abs().sum() > 0
    )


def test_transformer_lm_init_is_seed_002s():
    model = TransformerLM(TransformerLMConfig(vocab_size=50))
    params = model.init(rng.key(0))
    assert params["encoder"]["weight"].abs().max() <= 0.1
    assert params["decoder"]["weight"].abs().max() <= 0.1
    assert torch.all(params["decoder"]["bias"] == 0)


class ApplyOnly:
    """A language model that offers ``apply`` alone (no ``features``/``head``)."""

    def __init__(self, model):
        self.config, self.apply = model.config, model.apply


@pytest.mark.parametrize("split", [True, False], ids=["features-then-head", "apply-only"])
def test_evaluation_in_chunks_equals_whole_batches(monkeypatch, split):
    from seqfunc.tasks import language_model

    gpt = GPT(GPTConfig(vocab_size=13, context=6, d_model=8, heads=2, layers=1))
    model = gpt if split else ApplyOnly(gpt)
    assert language_model.splits_output_layer(model) == split
    params = gpt.init(rng.key(0))
    tokens = rng.random_bits(rng.key(1), (2, 5, 7)) % 13
    batches = [{"inputs": t[:, :-1], "targets": t[:, 1:]} for t in tokens]
    task = language_model.LanguageModelTask()
    monkeypatch.setattr(language_model, "EVAL_LOGITS_PER_CHUNK", 10**9)  # one chunk a batch
    whole = task.evaluate(model, params, batches)
    monkeypatch.setattr(language_model, "EVAL_LOGITS_PER_CHUNK", 2 * 6 * 13)  # 2 rows, 12 positions
    assert language_model.row_chunks((5, 6), 13) == [slice(0, 2), slice(2, 4), slice(4, 6)]
    chunked = task.evaluate(model, params, batches)
    assert chunked.keys() == whole.keys() and chunked["tokens"] == 2 * 5 * 6
    for name in whole:
        assert chunked[name] == pytest.approx(whole[name], rel=1e-6)
    logits = gpt.apply(params, torch.cat([b["inputs"] for b in batches]))
    targets = torch.cat([b["targets"] for b in batches])
    direct = torch.nn.functional.cross_entropy(logits.reshape(-1, 13), targets.reshape(-1))
    assert chunked["loss"] == pytest.approx(float(direct), rel=1e-5)
