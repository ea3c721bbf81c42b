"""The recurrent encoder-decoder (assignment 001, part 2): shapes, source padding, teacher forcing,
keys, the seed's init, decoding with greedy/beam search, a short training run, config errors."""

import json
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqfunc import rng
from seqfunc.config import ConfigError
from seqfunc.inference.decode import beam_search, greedy_decode
from seqfunc.models.rnn_seq2seq import CELLS, RNNSeq2Seq, RNNSeq2SeqConfig
from seqfunc.nn import recurrent as recurrent_module
from seqfunc.runs import TrainConfig, fit
from seqfunc.tree import tree_leaves

VOCAB, TGT_VOCAB, PAD, BOS, EOS = 12, 9, 0, 1, 2
ATOL = 1e-5
#: the cells the recurrent layer module offers right now ("rnn" arrives with the Elman RNN)
AVAILABLE_CELLS = [
    c for c in CELLS if c in getattr(recurrent_module, "GATES", {"lstm": 4, "gru": 3})
]


def make(cell="lstm", **fields):
    config = RNNSeq2SeqConfig(
        **{
            "vocab_size": VOCAB,
            "pad_id": PAD,
            "tgt_vocab_size": TGT_VOCAB,
            "embedding": 6,
            "hidden": 8,
            "layers": 2,
            "dropout": 0.0,
            "cell": cell,
            **fields,
        }
    )
    return RNNSeq2Seq(config)


def ragged(gen, b, s, vocab, lengths=None):
    """``(b, s)`` ids in [3, vocab), right-padded to the given (or random >= 1) lengths."""
    x = torch.randint(3, vocab, (b, s), generator=gen)
    lengths = torch.randint(1, s + 1, (b,), generator=gen) if lengths is None else lengths
    x[torch.arange(s)[None, :] >= lengths[:, None]] = PAD
    return x, lengths


@st.composite
def cases(draw):
    model = make(draw(st.sampled_from(AVAILABLE_CELLS)), layers=draw(st.integers(1, 2)))
    params = model.init(rng.key(draw(st.integers(0, 100))))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    b, s, t = draw(st.integers(1, 4)), draw(st.integers(1, 7)), draw(st.integers(1, 5))
    src, lengths = ragged(gen, b, s, VOCAB)
    tgt, _ = ragged(gen, b, t, TGT_VOCAB)
    tgt[:, 0] = BOS
    return model, params, src, lengths, tgt


@settings(max_examples=20, deadline=None)
@given(cases())
def test_output_and_context_shapes(case):
    model, params, src, _, tgt = case
    c = model.config
    assert model.apply(params, src, tgt).shape == (src.shape[0], tgt.shape[1], TGT_VOCAB)
    context = model.encode(params, src)
    assert set(context) == ({"h", "c"} if c.cell == "lstm" else {"h"})
    assert all(v.shape == (src.shape[0], c.layers, c.hidden) for v in context.values())


@settings(max_examples=20, deadline=None)
@given(cases(), st.integers(1, 4))
def test_source_padding_does_not_change_output(case, extra):
    """Appended pad columns change nothing, and each row gives what its unpadded source
    gives alone: the encoder's state is taken at each row's last real token."""
    model, params, src, lengths, tgt = case
    out = model.apply(params, src, tgt)
    longer = torch.cat([src, torch.full((src.shape[0], extra), PAD)], dim=1)
    torch.testing.assert_close(model.apply(params, longer, tgt), out, atol=ATOL, rtol=0)
    for i, n in enumerate(lengths.tolist()):
        alone = model.apply(params, src[i : i + 1, :n], tgt[i : i + 1])
        torch.testing.assert_close(alone, out[i : i + 1], atol=ATOL, rtol=0)


@pytest.mark.parametrize("cell", AVAILABLE_CELLS)
def test_encoder_state_is_torchs_at_the_last_real_token(cell):
    """Oracle: torch.nn.LSTM/GRU/RNN with our weights, run over each unpadded source."""
    model = make(cell, layers=2)
    params = model.init(rng.key(3))
    src, lengths = ragged(
        torch.Generator().manual_seed(0), 5, 7, VOCAB, lengths=torch.tensor([7, 1, 4, 4, 2])
    )
    context = model.encode(params, src)
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell](
        6, 8, num_layers=2, batch_first=True
    )
    with torch.no_grad():
        for i, layer in enumerate(params["encoder"]):
            for name, value in layer.items():
                getattr(module, f"{name}_l{i}").copy_(value)
        for row, n in enumerate(lengths.tolist()):
            x = params["embed"]["weight"][src[row : row + 1, :n]]
            _, state = module(x)
            h, c = state if cell == "lstm" else (state, None)
            torch.testing.assert_close(context["h"][row], h[:, 0], atol=ATOL, rtol=0)
            if c is not None:
                torch.testing.assert_close(context["c"][row], c[:, 0], atol=ATOL, rtol=0)


def test_an_all_pad_source_gives_a_zero_state():
    model = make()
    params = model.init(rng.key(0))
    context = model.encode(params, torch.tensor([[4, 5, PAD], [PAD, PAD, PAD]]))
    assert all(v[1].abs().max() == 0 and v[0].abs().max() > 0 for v in context.values())


# -- teacher forcing -------------------------------------------------------------------------
def _batch(seed=0, b=3, s=5, t=6):
    gen = torch.Generator().manual_seed(seed)
    src, _ = ragged(gen, b, s, VOCAB)
    tgt = torch.randint(3, TGT_VOCAB, (b, t), generator=gen)
    tgt[:, 0] = BOS
    return src, tgt


@pytest.mark.parametrize("cell", AVAILABLE_CELLS)
def test_stepwise_decoder_fully_teacher_forced_equals_the_fused_call(cell):
    """With dropout on: same key -> same embedding dropout in both paths."""
    model = make(cell, dropout=0.4, teacher_forcing=1.0, init_scale=0.5)
    params = model.init(rng.key(1))
    src, tgt = _batch()
    key = rng.key(7)
    context = model.encode(params, src)
    fused = model.decode(params, context, tgt, key=key, train=True)
    k_drop, _ = rng.split(key)
    stepped = model.decode_steps(
        params, context, tgt, torch.ones(tgt.shape[1], dtype=torch.bool), key=k_drop, train=True
    )
    torch.testing.assert_close(stepped, fused, atol=ATOL, rtol=0)
    assert not torch.allclose(fused, model.decode(params, context, tgt), atol=1e-3)  # dropout acted


def test_ratio_zero_feeds_back_the_argmax():
    """Oracle: a manual loop that extends the prefix with the argmax and runs the (fused,
    eval) decoder over it; logits at step i must match the training path's."""
    model = make(teacher_forcing=0.0, init_scale=0.5)
    params = model.init(rng.key(2))
    src, tgt = _batch(t=7)
    out = model.apply(params, src, tgt, key=rng.key(5), train=True)
    context = model.encode(params, src)
    prefix = tgt[:, :1]
    for i in range(tgt.shape[1]):
        expected = model.decode(params, context, prefix)[:, -1]
        torch.testing.assert_close(out[:, i], expected, atol=ATOL, rtol=0)
        prefix = torch.cat([prefix, out[:, i].argmax(-1, keepdim=True)], dim=1)
    # ... and it is not the teacher-forced output (the loop fed back its own tokens)
    assert not torch.allclose(out, model.apply(params, src, tgt), atol=1e-3)


def test_mixed_ratio_follows_the_drawn_steps():
    model = make(teacher_forcing=0.5, init_scale=0.5)
    params = model.init(rng.key(3))
    src, tgt = _batch(t=8)
    key = rng.key(11)
    out = model.apply(params, src, tgt, key=key, train=True)
    _, k_dec = rng.split(key)
    _, k_teacher = rng.split(k_dec)
    flags = model.teacher_flags(k_teacher, tgt.shape[1])
    assert 0 < int(flags[1:].sum()) < tgt.shape[1] - 1  # this key mixes both kinds of step
    context = model.encode(params, src)
    prefix = tgt[:, :1]
    for i in range(tgt.shape[1]):
        torch.testing.assert_close(
            out[:, i], model.decode(params, context, prefix)[:, -1], atol=ATOL, rtol=0
        )
        fed = tgt[:, i + 1] if i + 1 < tgt.shape[1] and flags[i + 1] else out[:, i].argmax(-1)
        prefix = torch.cat([prefix, fed[:, None]], dim=1)


def test_teacher_flags_follow_the_ratio_and_the_key():
    model = make(teacher_forcing=0.3)
    flags = model.teacher_flags(rng.key(0), 20_000)
    assert abs(flags.float().mean().item() - 0.3) < 0.02
    assert torch.equal(flags, model.teacher_flags(rng.key(0), 20_000))
    assert not torch.equal(flags, model.teacher_flags(rng.key(1), 20_000))


def test_gradients_flow_through_the_stepwise_decoder_under_torch_func_grad():
    model = make(teacher_forcing=0.5, dropout=0.2)
    params = model.init(rng.key(4))
    src, tgt = _batch()

    def loss(p):
        logits = model.apply(p, src, tgt, key=rng.key(9), train=True)
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), tgt.roll(-1, 1).flatten())

    grads = torch.func.grad(loss)(params)
    for part in ("embed", "tgt_embed", "encoder", "decoder", "predict"):
        leaves = tree_leaves(grads[part])
        assert all(torch.isfinite(g).all() for g in leaves)
        assert any(g.abs().max() > 0 for g in leaves), part


# -- keys and init ---------------------------------------------------------------------------
def test_same_key_same_output_other_key_other_output():
    model = make(dropout=0.3, teacher_forcing=0.5)
    params = model.init(rng.key(0))
    src, tgt = _batch()
    a = model.apply(params, src, tgt, key=rng.key(1), train=True)
    assert torch.equal(a, model.apply(params, src, tgt, key=rng.key(1), train=True))
    assert not torch.equal(a, model.apply(params, src, tgt, key=rng.key(2), train=True))
    assert torch.equal(model.apply(params, src, tgt), model.apply(params, src, tgt))


def test_training_without_a_key_is_an_error():
    params = make().init(rng.key(0))
    src, tgt = _batch()
    with pytest.raises(ValueError, match="teacher forcing .* no key was given"):
        make(teacher_forcing=0.5).apply(params, src, tgt, train=True)
    with pytest.raises(ValueError, match="no key was given"):
        make(teacher_forcing=1.0, dropout=0.5).apply(params, src, tgt, train=True)
    make(teacher_forcing=1.0).apply(params, src, tgt, train=True)  # nothing random: fine


@pytest.mark.parametrize("scale", [0.08, 0.2])
def test_every_parameter_is_uniform_in_plus_minus_init_scale(scale):
    model = make(init_scale=scale, embedding=16, hidden=32)
    params = model.init(rng.key(0))
    leaves = tree_leaves(params)
    assert len(leaves) == 2 + 2 * 2 * 4 + 2  # tables, 2 x 2 layers x 4 tensors, linear
    for leaf in leaves:
        assert leaf.abs().max() <= scale
    everything = torch.cat([leaf.flatten() for leaf in leaves])
    assert everything.abs().max() > 0.95 * scale and abs(everything.mean()) < 0.05 * scale
    assert torch.equal(params["predict"]["weight"], model.init(rng.key(0))["predict"]["weight"])
    assert not torch.equal(params["predict"]["weight"], model.init(rng.key(1))["predict"]["weight"])


# -- decoding ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", AVAILABLE_CELLS)
def test_greedy_and_beam_search_run_on_it(cell):
    model = make(cell, init_scale=0.5)  # large weights: varied, confident predictions
    params = model.init(rng.key(6))
    src, _ = _batch(b=4)
    options = dict(bos_id=BOS, eos_id=EOS, pad_id=PAD, max_len=6)
    greedy = greedy_decode(model, params, src, **options)
    assert greedy.shape == (4, 6) and greedy.max() < TGT_VOCAB
    assert torch.equal(beam_search(model, params, src, beam=1, **options), greedy)
    # the context's batch axis is 0: beams of a batch equal each row searched alone
    wide = beam_search(model, params, src, beam=3, **options)
    for i in range(src.shape[0]):
        assert torch.equal(
            beam_search(model, params, src[i : i + 1], beam=3, **options), wide[i : i + 1]
        )


# -- training ----------------------------------------------------------------------------------
def test_short_fit_on_formula_lowers_the_loss(tmp_path):
    cfg = TrainConfig(
        dataset="formula",
        model="rnn-seq2seq",
        dataset_options={"complexity": 1, "epoch_size": 2048, "val_size": 200},
        model_options={"embedding": 16, "hidden": 64, "layers": 1, "dropout": 0.0},
        steps=250,
        batch_size=64,
        lr=1e-2,
        warmup_steps=20,
        eval_every=250,
        log_every=25,
        examples=0,
    )
    final = fit(cfg, tmp_path, progress=False, log=lambda _: None)
    train = [
        json.loads(line)
        for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["split"] == "train"
    ]
    assert train[0]["loss"] > 2.0  # ~ln(16) untrained
    assert train[-1]["loss"] < 0.65 * train[0]["loss"]
    assert final["loss"] < 1.3 and final["token_accuracy"] > 0.5


def test_config_for_a_dataset_with_separate_vocabularies():
    dataset = SimpleNamespace(source_vocab=list(range(30)), target_vocab=list(range(20)), pad_id=1)
    config = RNNSeq2Seq.config_for(dataset, hidden=16)
    assert (config.vocab_size, config.tgt_vocab_size, config.pad_id, config.hidden) == (
        30,
        20,
        1,
        16,
    )
    shared = SimpleNamespace(
        source_vocab=dataset.source_vocab, target_vocab=dataset.source_vocab, pad_id=1
    )
    assert RNNSeq2Seq.config_for(shared).tgt_vocab_size is None
    with pytest.raises(ConfigError, match="unknown field.*hiden"):
        RNNSeq2Seq.config_for(dataset, hiden=16)


@pytest.mark.parametrize(
    "fields, named",
    [
        ({"cell": "transformer"}, "cell='transformer'"),
        ({"teacher_forcing": 1.5}, "teacher_forcing=1.5"),
        ({"teacher_forcing": -0.1}, "teacher_forcing=-0.1"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"hidden": 0}, "hidden=0"),
        ({"layers": -1}, "layers=-1"),
        ({"embedding": 2.5 - 3}, "embedding=-0.5"),
        ({"init_scale": 0}, "init_scale=0"),
        ({"pad_id": 12}, "pad_id=12"),
        ({"pad_id": 10, "tgt_vocab_size": 9}, "pad_id=10: must be < tgt_vocab_size=9"),
    ],
)
def test_bad_config_fails_when_built_naming_the_field(fields, named):
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace("[", r"\[")):
        RNNSeq2SeqConfig(**{"vocab_size": VOCAB, "pad_id": PAD, **fields})
