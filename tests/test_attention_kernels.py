"""Properties of the attention kernels (assignment 002 q1, assignment 003 q2/4/5, assignment 004)."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqfunc import rng
from seqfunc.config import ConfigError, from_dict, to_dict
from seqfunc.models.seq2seq_transformer import Seq2SeqTransformer, Seq2SeqTransformerConfig
from seqfunc.nn import BlockOptions, causal_mask, multi_head_attention, record_attention
from seqfunc.nn.attention import dot_product_attention, init_multi_head_attention
from seqfunc.nn.attention_kernels import (
    KERNELS,
    attention_kernel,
    chunked_attention,
    exp_similarity,
    similarity_attention,
)
from seqfunc.nn.attention_kernels.linear import elu_feature_map

FAST = settings(max_examples=25, deadline=None)


def qkv(seed, b, h, tq, tk, d, dv, grad=False):
    g = torch.Generator().manual_seed(seed)
    make = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64).requires_grad_(grad)
    return make(b, h, tq, d), make(b, h, tk, d), make(b, h, tk, dv)


def random_mask(seed, shape):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g) < 0.7


def reference(q, k, v, mask=None, causal=False):
    """Softmax attention written out (float64), zeros for rows with no allowed key."""
    tq, tk = q.shape[2], k.shape[2]
    if causal:
        c = causal_mask(tq, tk)
        mask = c if mask is None else mask & c
    scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / q.shape[-1] ** 0.5
    if mask is None:
        return torch.softmax(scores, -1) @ v
    mask = mask.expand_as(scores)
    live = mask.any(-1, keepdim=True)
    w = torch.softmax(scores.masked_fill(~mask, float("-inf")).masked_fill(~live, 0), -1) * live
    return w @ v


shapes = st.fixed_dictionaries(
    {
        "b": st.integers(1, 2),
        "h": st.integers(1, 2),
        "tq": st.integers(1, 9),
        "tk": st.integers(1, 9),
        "d": st.integers(1, 5),
        "dv": st.integers(1, 4),
        "seed": st.integers(0, 10_000),
    }
)
#: Which axes of (b, h, tq, tk) a drawn mask has (the others broadcast).
mask_forms = st.sampled_from([None, "padding", "full", "query_key"])


def draw_mask(form, s):
    if form is None:
        return None
    shape = {
        "padding": (s["b"], 1, 1, s["tk"]),
        "full": (s["b"], s["h"], s["tq"], s["tk"]),
        "query_key": (s["tq"], s["tk"]),
    }[form]
    return random_mask(s["seed"] + 1, shape)


# -- eq. 3 ---------------------------------------------------------------------------------
@FAST
@given(shapes, mask_forms, st.booleans())
def test_similarity_form_with_exp_equals_softmax_attention(s, form, causal):
    if causal and s["tq"] > s["tk"]:
        s = {**s, "tq": s["tk"]}
    q, k, v = qkv(s["seed"], s["b"], s["h"], s["tq"], s["tk"], s["d"], s["dv"])
    mask = draw_mask(form, s)
    got = similarity_attention(q, k, v, exp_similarity, mask, causal=causal)
    torch.testing.assert_close(got, reference(q, k, v, mask, causal))


# -- chunked == full, values and gradients ---------------------------------------------------
@FAST
@given(shapes, mask_forms, st.booleans(), st.integers(1, 6))
def test_chunked_equals_full_attention_in_values_and_gradients(s, form, causal, chunk):
    q, k, v = qkv(s["seed"], s["b"], s["h"], s["tq"], s["tk"], s["d"], s["dv"], grad=True)
    mask = draw_mask(form, s)
    got = chunked_attention(q, k, v, mask, causal=causal, chunk=chunk)
    want = reference(q, k, v, mask, causal)
    torch.testing.assert_close(got, want)
    cotangent = torch.randn_like(want)
    g_got = torch.autograd.grad((got * cotangent).sum(), (q, k, v))
    g_want = torch.autograd.grad((want * cotangent).sum(), (q, k, v))
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b)


def test_chunked_works_under_torch_func_grad():
    q, k, v = qkv(0, 1, 2, 7, 7, 3, 3)
    grad = torch.func.grad(lambda q: chunked_attention(q, k, v, causal=True, chunk=3).sum())(q)
    want = torch.func.grad(lambda q: reference(q, k, v, causal=True).sum())(q)
    torch.testing.assert_close(grad, want)


def test_chunked_gradients_under_vmap_match_a_loop():
    q, k, v = (torch.randn(3, 1, 2, 7, 4, dtype=torch.float64) for _ in range(3))
    f = lambda q, k, v: chunked_attention(q, k, v, causal=True, chunk=3).sum()
    batched = torch.func.vmap(torch.func.grad(f))(q, k, v)
    looped = torch.stack([torch.func.grad(f)(q[i], k[i], v[i]) for i in range(3)])
    torch.testing.assert_close(batched, looped)


# -- sliding window --------------------------------------------------------------------------
@FAST
@given(shapes, st.integers(0, 5), st.booleans())
def test_window_at_least_the_length_equals_full_causal(s, extra, causal_as_flag):
    t = s["tq"]
    q, k, v = qkv(s["seed"], s["b"], s["h"], t, t, s["d"], s["dv"])
    kernel = attention_kernel({"kind": "window", "window": t + extra})
    if causal_as_flag:
        got = kernel.apply({}, q, k, v, causal=True)
    else:
        got = kernel.apply({}, q, k, v, causal_mask(t))
    torch.testing.assert_close(got, reference(q, k, v, causal=True))


@FAST
@given(shapes, st.integers(1, 4), mask_forms)
def test_window_equals_softmax_attention_under_the_band_mask(s, window, form):
    q, k, v = qkv(s["seed"], s["b"], s["h"], s["tq"], s["tk"], s["d"], s["dv"])
    mask = draw_mask(form, s)
    offset = s["tk"] - s["tq"]
    i = torch.arange(s["tq"])[:, None] + offset
    band = (torch.arange(s["tk"])[None, :] - i).abs() < window
    want = reference(q, k, v, band if mask is None else mask & band)
    got = attention_kernel({"kind": "window", "window": window}).apply({}, q, k, v, mask)
    torch.testing.assert_close(got, want)


# -- linear attention ------------------------------------------------------------------------
@FAST
@given(shapes, st.booleans(), st.booleans(), st.integers(1, 5))
def test_linear_regrouping_equals_its_similarity_form(s, padded, causal, chunk):
    s = {**s, "tq": min(s["tq"], s["tk"])}
    q, k, v = qkv(s["seed"], s["b"], s["h"], s["tq"], s["tk"], s["d"], s["dv"])
    mask = draw_mask("padding", s) if padded else None
    sim = lambda a, b: torch.einsum("bhqd,bhkd->bhqk", elu_feature_map(a), elu_feature_map(b))
    kernel = attention_kernel({"kind": "linear", "chunk": chunk})
    got = kernel.apply({}, q, k, v, mask, causal=causal)
    torch.testing.assert_close(got, similarity_attention(q, k, v, sim, mask, causal=causal))


def test_linear_accepts_a_decoder_mask_and_rejects_others():
    q, k, v = qkv(0, 2, 1, 5, 5, 3, 3)
    padding = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)[:, None, None]
    kernel = attention_kernel("linear")
    torch.testing.assert_close(
        kernel.apply({}, q, k, v, causal_mask(5) & padding),
        kernel.apply({}, q, k, v, padding, causal=True),
    )
    with pytest.raises(ValueError, match="linear attention cannot honour"):
        kernel.apply({}, q, k, v, random_mask(3, (5, 5)) & ~torch.eye(5, dtype=torch.bool))


# -- every kernel honours padding and causal masks ---------------------------------------------
ALL_KERNELS = [
    "dot",
    "full",
    "simple",
    "linear",
    {"kind": "window", "window": 3},
    {"kind": "chunked", "chunk": 2},
    "additive",
]


def kernel_and_params(spec, h, d):
    kernel = attention_kernel(spec)
    return kernel, {n: p.double() for n, p in kernel.init(rng.key(1), h, d).items()}


@pytest.mark.parametrize("spec", ALL_KERNELS, ids=lambda s: s if isinstance(s, str) else s["kind"])
@settings(max_examples=10, deadline=None)
@given(shapes, st.booleans())
def test_kernel_ignores_masked_keys(spec, s, as_flag):
    """Changing a padded key/value, or a future one under the causal mask, changes nothing;
    the rows of the kernel's weights put no mass on masked keys and mix v into the output."""
    t = max(s["tq"], 2)
    kernel, params = kernel_and_params(spec, s["h"], s["d"])
    q, k, v = qkv(s["seed"], s["b"], s["h"], t, t, s["d"], s["d"])
    if not kernel.projects:  # simple attention attends over the inputs: q = k = v
        k = v = q
    n_real = max(1, t - 1 - s["seed"] % (t - 1))
    padding = (torch.arange(t) < n_real)[None, None, None, :].expand(s["b"], 1, 1, t)
    causal = causal_mask(t)
    kwargs = {"causal": True} if as_flag else {}
    mask = padding if as_flag else padding & causal
    out = kernel.apply(params, q, k, v, mask, **kwargs)
    weights = kernel.weights(params, q, k, mask, **kwargs)
    allowed = (padding & causal).expand_as(weights)
    assert bool((weights[~allowed] == 0).all())
    torch.testing.assert_close(weights @ v, out)

    # Perturb the last position: padded (n_real < t) and in the future of every other query.
    k2, v2 = k.clone(), v.clone()
    k2[:, :, -1] += 3.0
    v2[:, :, -1] -= 5.0
    if not kernel.projects:
        v2 = k2
    if kernel.projects:
        torch.testing.assert_close(kernel.apply(params, q, k2, v2, mask, **kwargs), out)
    else:  # q = k = v: the last query changes too, every other row must not
        out2 = kernel.apply(params, k2, k2, k2, mask, **kwargs)
        torch.testing.assert_close(out2[:, :, :-1], out[:, :, :-1])


# -- one interface, selectable from configs -----------------------------------------------------
def test_unknown_kernel_lists_the_known_ones():
    with pytest.raises(ConfigError) as info:
        Seq2SeqTransformerConfig(vocab_size=16, pad_id=14, attention="flash")
    for name in KERNELS:
        assert name in str(info.value)
    assert "Seq2SeqTransformerConfig.attention" in str(info.value)


@pytest.mark.parametrize(
    "spec", [{"kind": "window", "window": 0}, {"kind": "chunked", "chunk": -3}]
)
def test_non_positive_window_or_chunk_fails_when_the_config_is_built(spec):
    with pytest.raises(ConfigError, match="must be > 0"):
        Seq2SeqTransformerConfig(vocab_size=16, pad_id=14, attention=spec)
    with pytest.raises(ConfigError, match="must be > 0"):
        BlockOptions(heads=2, attention=spec)


def test_unknown_option_is_named():
    with pytest.raises(ConfigError, match="unknown option.*size.*its options: window"):
        attention_kernel({"kind": "window", "size": 4})


def test_default_is_dot_with_the_same_params_and_outputs_as_before():
    x = torch.randn(2, 5, 8)
    params = init_multi_head_attention(rng.key(0), 8)
    assert sorted(params) == ["out", "qkv"]
    mask = causal_mask(5)
    got = multi_head_attention(params, x, heads=2, mask=mask)
    from einops import rearrange

    from seqfunc.nn.attention import project_heads
    from seqfunc.nn.linear import linear

    q, k, v = project_heads(params, x, None, 2)
    want = linear(
        params["out"], rearrange(dot_product_attention(q, k, v, mask), "b h t d -> b t (h d)")
    )
    torch.testing.assert_close(got, want)


def test_param_trees_per_kernel():
    assert init_multi_head_attention(rng.key(0), 8, kernel="simple") == {}
    additive = init_multi_head_attention(
        rng.key(0), 8, kernel={"kind": "additive", "hidden": 5}, heads=2
    )
    assert additive["kernel"]["w_q"].shape == (2, 4, 5)
    assert additive["kernel"]["w_v"].shape == (2, 5)


@pytest.mark.parametrize("spec", ALL_KERNELS, ids=lambda s: s if isinstance(s, str) else s["kind"])
def test_every_kernel_trains_in_the_seq2seq_model_and_round_trips_its_config(spec):
    config = Seq2SeqTransformerConfig(
        vocab_size=16,
        pad_id=14,
        d_model=8,
        heads=2,
        d_ff=8,
        encoder_layers=1,
        decoder_layers=1,
        attention=spec,
    )
    assert from_dict(Seq2SeqTransformerConfig, to_dict(config)) == config
    model = Seq2SeqTransformer(config)
    params = model.init(rng.key(0))
    src = torch.tensor([[1, 2, 3, 14], [4, 5, 14, 14]])
    tgt = torch.tensor([[15, 1, 2], [15, 3, 14]])
    grads = torch.func.grad(lambda p: model.apply(p, src, tgt).logsumexp(-1).sum())(params)
    assert all(bool(torch.isfinite(g).all()) for g in torch.utils._pytree.tree_leaves(grads))
    with record_attention() as maps:
        model.apply(params, src, tgt)
    assert [m["kind"] for m in maps] == ["self", "self", "cross"]
    for m in maps:
        sums = m["weights"].sum(-1)
        assert bool(((sums - 1).abs() < 1e-5).all())


@pytest.mark.parametrize("broadcast", [False, True])
def test_written_out_dot_attention_equals_the_fused_kernel_with_empty_rows(broadcast):
    """The forms the dot kernel takes under torch.compile on the CPU (matmuls, or
    broadcast-and-sum for tiny heads): same values and gradients as torch's fused kernel,
    zeros (and finite gradients) for a query whose keys are all masked."""
    from seqfunc.nn.attention_kernels.dot import softmax_attention

    q, k, v = qkv(5, 2, 2, 4, 6, 3, 5, grad=True)
    mask = random_mask(6, (2, 1, 4, 6))
    mask[1, 0, 2] = False  # a query with no key
    mask[0, 0, 1] = True
    written_out = lambda q, k, v, mask: softmax_attention(q, k, v, mask, broadcast=broadcast)
    for fn in (written_out, torch.nn.functional.scaled_dot_product_attention):
        out = fn(q, k, v, mask)
        grads = torch.autograd.grad((out * out).sum(), (q, k, v))
        if fn is written_out:
            want_out, want_grads = out, grads
    torch.testing.assert_close(want_out, out)
    assert bool((want_out[1, :, 2] == 0).all())
    for g, w in zip(grads, want_grads):
        assert bool(torch.isfinite(w).all())
        torch.testing.assert_close(w, g)


@pytest.mark.parametrize("name", ["dot", "simple"])
@pytest.mark.parametrize("d", [4, 16])  # 16: tiny heads take the broadcast form
def test_compiled_dot_kernel_equals_eager(name, d):
    kernel = attention_kernel(name)
    q, k, v = (t.float() for t in qkv(7, 2, 2, 5, 5, d, d))
    mask = random_mask(8, (2, 1, 1, 5)) | (torch.arange(5) == 0)
    for causal in (False, True):
        fn = lambda q, k, v, causal=causal: kernel.apply({}, q, k, v, mask, causal=causal)
        torch.testing.assert_close(torch.compile(fn, dynamic=False)(q, k, v), fn(q, k, v))


@pytest.mark.parametrize("tq, tk", [(5, 5), (3, 5), (5, 3)])  # (5, 3): early queries see no key
def test_compiled_dot_kernel_equals_eager_when_only_causal(tq, tk):
    """Causal attention with no mask tensor skips the empty-row clean-up when compiled unless
    a query can have no key (``tq > tk``); the values and gradients stay those of eager."""
    kernel = attention_kernel("dot")
    q, k, v = qkv(9, 2, 2, tq, tk, 4, 4, grad=True)
    fn = lambda q, k, v: kernel.apply({}, q, k, v, causal=True)
    results = []
    for f in (torch.compile(fn, dynamic=False), fn):
        out = f(q, k, v)
        results.append((out, torch.autograd.grad((out * out).sum(), (q, k, v))))
    (got, got_grads), (want, want_grads) = results
    torch.testing.assert_close(got, want)
    if tq > tk:
        assert bool((got[:, :, : tq - tk] == 0).all())
    for g, w in zip(got_grads, want_grads):
        assert bool(torch.isfinite(g).all())
        torch.testing.assert_close(g, w)
