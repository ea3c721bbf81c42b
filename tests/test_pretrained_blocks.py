"""The blocks of Llama-family models: rotary positions, RMSNorm, grouped-query attention, and
the Llama model's KV cache. Properties, no reference implementation needed."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqfunc import nn, rng
from seqfunc.models.llama import Llama, LlamaConfig
from seqfunc.nn.grouped_attention import grouped_query_attention, init_grouped_query_attention
from seqfunc.nn.norm import init_rms_norm, rms_norm
from seqfunc.nn.rotary import apply_rotary, rotary_angles, rotary_frequencies

SCALINGS = st.sampled_from(
    [
        {"scaling": "none"},
        {"scaling": "linear", "factor": 4.0},
        {"scaling": "llama3", "factor": 8.0, "original_context": 32},
    ]
)


@settings(max_examples=20, deadline=None)
@given(
    d=st.sampled_from([2, 8, 16]),
    t=st.integers(1, 12),
    offset=st.integers(0, 10_000),
    theta=st.sampled_from([10.0, 10000.0, 1e6]),
    scaling=SCALINGS,
    seed=st.integers(0, 999),
)
def test_rotary_scores_depend_only_on_relative_positions(d, t, offset, theta, scaling, seed):
    q = rng.normal(rng.key(seed), (1, 2, t, d)).double()
    k = rng.normal(rng.key(seed + 1), (1, 2, t, d)).double()
    inv_freq = rotary_frequencies(d, theta=theta, **scaling).double()

    def scores(start):
        positions = torch.arange(start, start + t, dtype=torch.float64)
        angles = positions[:, None] * inv_freq[None, :]
        angles = torch.cat([angles, angles], -1)
        cos, sin = angles.cos(), angles.sin()
        return apply_rotary(q, cos, sin) @ apply_rotary(k, cos, sin).transpose(-1, -2)

    torch.testing.assert_close(scores(offset), scores(0), atol=1e-9, rtol=1e-9)


def test_rotary_position_zero_is_the_identity():
    x = rng.normal(rng.key(0), (2, 3, 1, 8))
    cos, sin = rotary_angles(torch.zeros(1, dtype=torch.int64), rotary_frequencies(8))
    assert torch.equal(apply_rotary(x, cos, sin), x)


def test_rotary_scalings():
    plain = rotary_frequencies(64, theta=500000.0)
    assert torch.allclose(plain, 500000.0 ** (-torch.arange(0, 64, 2) / 64))
    linear = rotary_frequencies(64, theta=500000.0, scaling="linear", factor=8.0)
    assert torch.allclose(linear, plain / 8)
    llama3 = rotary_frequencies(
        64, theta=500000.0, scaling="llama3", factor=8.0, original_context=8192
    )
    wavelength = 2 * torch.pi / plain
    high, low = wavelength < 8192 / 4, wavelength > 8192 / 1
    assert torch.equal(llama3[high], plain[high])  # short wavelengths kept
    assert torch.allclose(llama3[low], plain[low] / 8)  # long ones divided by the factor
    middle = ~high & ~low
    assert middle.any()
    assert ((llama3[middle] <= plain[middle]) & (llama3[middle] >= plain[middle] / 8)).all()
    with pytest.raises(ValueError, match="rotary scaling"):
        rotary_frequencies(8, scaling="yarn")


@settings(max_examples=15, deadline=None)
@given(scale=st.floats(0.01, 100.0), d=st.integers(1, 32), seed=st.integers(0, 999))
def test_rms_norm_is_scale_invariant_with_unit_root_mean_square(scale, d, seed):
    x = rng.normal(rng.key(seed), (3, d)).double() + 0.1
    params = {"weight": init_rms_norm(d)["weight"].double()}
    out = rms_norm(params, x, eps=0.0)
    torch.testing.assert_close(rms_norm(params, scale * x, eps=0.0), out)
    torch.testing.assert_close(out.pow(2).mean(-1), torch.ones(3, dtype=torch.float64))


@settings(max_examples=10, deadline=None)
@given(
    heads=st.sampled_from([1, 2, 4]),
    head_dim=st.sampled_from([2, 4]),
    t=st.integers(1, 9),
    bias=st.booleans(),
    seed=st.integers(0, 999),
)
def test_grouped_query_attention_with_kv_heads_equal_heads_is_multi_head(
    heads, head_dim, t, bias, seed
):
    d = heads * head_dim
    params = init_grouped_query_attention(
        rng.key(seed),
        d,
        heads=heads,
        kv_heads=heads,
        head_dim=head_dim,
        qkv_bias=bias,
        out_bias=bias,
        std=0.5,
    )
    if bias:
        for name in ("q", "k", "v", "out"):
            params[name]["bias"] = rng.normal(
                rng.fold_in(rng.key(seed), 7), (params[name]["weight"].shape[0],)
            )
    packed = {
        "qkv": {
            "weight": torch.cat([params[n]["weight"] for n in "qkv"]),
            "bias": torch.cat([params[n]["bias"] for n in "qkv"]) if bias else torch.zeros(3 * d),
        },
        "out": {
            "weight": params["out"]["weight"],
            "bias": params["out"].get("bias", torch.zeros(d)),
        },
    }
    x = rng.normal(rng.fold_in(rng.key(seed), 1), (2, t, d))
    torch.testing.assert_close(
        grouped_query_attention(params, x, heads=heads, kv_heads=heads, causal=True),
        nn.multi_head_attention(packed, x, heads=heads, causal=True),
        atol=1e-5,
        rtol=1e-5,
    )


@settings(max_examples=10, deadline=None)
@given(
    kv_heads=st.sampled_from([1, 2]),
    groups=st.sampled_from([1, 2, 3]),
    t=st.integers(1, 9),
    seed=st.integers(0, 999),
)
def test_grouped_query_attention_is_multi_head_with_shared_key_value_heads(
    kv_heads, groups, t, seed
):
    heads, head_dim = kv_heads * groups, 4
    d = heads * head_dim
    params = init_grouped_query_attention(
        rng.key(seed), d, heads=heads, kv_heads=kv_heads, head_dim=head_dim, std=0.5
    )

    def spread(w):  # (kv_heads * hd, d) -> (heads * hd, d): each group's head repeated
        return (
            w.reshape(kv_heads, 1, head_dim, d).expand(kv_heads, groups, head_dim, d).reshape(-1, d)
        )

    full = dict(
        params,
        k={"weight": spread(params["k"]["weight"])},
        v={"weight": spread(params["v"]["weight"])},
    )
    x = rng.normal(rng.fold_in(rng.key(seed), 1), (2, t, d))
    torch.testing.assert_close(
        grouped_query_attention(params, x, heads=heads, kv_heads=kv_heads, causal=True),
        grouped_query_attention(full, x, heads=heads, kv_heads=heads, causal=True),
    )


@settings(max_examples=8, deadline=None)
@given(
    kv_heads=st.sampled_from([1, 2, 4]),
    tie=st.booleans(),
    qkv_bias=st.booleans(),
    t=st.integers(2, 12),
    split=st.integers(1, 11),
    seed=st.integers(0, 999),
)
def test_llama_cached_extension_equals_the_whole_sequence(kv_heads, tie, qkv_bias, t, split, seed):
    model = Llama(
        LlamaConfig(
            vocab_size=31,
            d_model=16,
            heads=4,
            kv_heads=kv_heads,
            layers=2,
            d_ff=24,
            tie_weights=tie,
            qkv_bias=qkv_bias,
            rope_scaling="linear",
            rope_factor=2.0,
        )
    )
    params = model.init(rng.key(seed))
    tokens = rng.random_bits(rng.key(seed + 1), (2, t)) % 31
    split = min(split, t - 1)
    whole = model.apply(params, tokens)
    cache = model.init_cache(params, 2, t)
    first, cache = model.extend(params, tokens[:, :split], cache)
    rest, cache = model.extend(params, tokens[:, split:], cache)
    torch.testing.assert_close(torch.cat([first, rest], 1), whole, atol=1e-5, rtol=1e-5)
    assert cache["k"][0].shape == (2, kv_heads, t, 4) and int(cache["pos"]) == t
