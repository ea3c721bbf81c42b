import torch
from hypothesis import given, settings, strategies as st

from seqfunc import rng
from seqfunc.decode import beam_search, greedy_decode
from seqfunc.models import Seq2SeqTransformer, Seq2SeqTransformerConfig

VOCAB, PAD, BOS, EOS = 12, 0, 1, 2


def _model(seed):
    model = Seq2SeqTransformer(Seq2SeqTransformerConfig(
        vocab_size=VOCAB, pad_id=PAD, d_model=16, heads=2, encoder_layers=1, decoder_layers=1,
        d_ff=16, dropout=0.0,
    ))
    return model, model.init(rng.key(seed))


def _reference_greedy(model, params, src, max_len):
    """One example at a time, re-running the whole model each step (seed 000 5.6b)."""
    prefix = [BOS]
    out = []
    for _ in range(max_len):
        token = int(model.apply(params, src[None], torch.tensor([prefix]))[0, -1].argmax())
        out.append(token)
        if token == EOS:
            break
        prefix.append(token)
    return out + [PAD] * (max_len - len(out))


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 100), st.integers(1, 4), st.integers(1, 7))
def test_batched_greedy_equals_one_by_one(seed, batch, max_len):
    model, params = _model(seed)
    src = torch.randint(3, VOCAB, (batch, 5), generator=torch.Generator().manual_seed(seed))
    out = greedy_decode(model, params, src, bos_id=BOS, eos_id=EOS, pad_id=PAD, max_len=max_len)
    assert out.tolist() == [_reference_greedy(model, params, s, max_len) for s in src]


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 100))
def test_beam_of_one_is_greedy_and_wider_beams_score_at_least_as_well(seed):
    model, params = _model(seed)
    src = torch.randint(3, VOCAB, (3, 4), generator=torch.Generator().manual_seed(seed))
    kwargs = dict(bos_id=BOS, eos_id=EOS, pad_id=PAD, max_len=5)
    greedy = greedy_decode(model, params, src, **kwargs)
    assert torch.equal(beam_search(model, params, src, beam=1, **kwargs), greedy)
    _, score1 = beam_search(model, params, src, beam=1, return_scores=True, length_penalty=0.0, **kwargs)
    _, score4 = beam_search(model, params, src, beam=4, return_scores=True, length_penalty=0.0, **kwargs)
    assert bool((score4 >= score1 - 1e-5).all())
