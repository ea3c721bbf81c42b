"""The multiplication count of self-attention against torch.utils.flop_counter."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from seqfunc import rng
from seqfunc.flops import multi_head_attention_multiplications, self_attention_multiplications
from seqfunc.nn.attention import init_multi_head_attention, multi_head_attention


def counted_flops(fn) -> int:
    # The math backend: flop_counter has no formula for the CPU flash kernel
    # (aten._scaled_dot_product_flash_attention_for_cpu) and would count it as 0.
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@settings(max_examples=20, deadline=None)
@given(
    st.integers(1, 12), st.integers(1, 12), st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)
)
def test_eq2_matmul_multiplications_match_flop_counter(T, tk, D, M, d):
    X, Xc = torch.randn(T, d), torch.randn(tk, d)
    W_q, W_k, W_v = torch.randn(d, D), torch.randn(d, D), torch.randn(d, M)

    def eq2():
        Q, K, V = X @ W_q, Xc @ W_k, Xc @ W_v
        return torch.softmax(Q @ K.T / math.sqrt(D), dim=-1) @ V

    count = self_attention_multiplications(T, D, M, d=d, tk=tk)
    assert counted_flops(eq2) == 2 * count.matmul  # flop_counter: multiply + add per product
    assert count.total == T * tk * (D + M + 2) + count.projections


def test_eq2_without_projections_is_quadratic_in_length():
    a, b = self_attention_multiplications(100, 8, 8), self_attention_multiplications(200, 8, 8)
    assert b.total == 4 * a.total == 4 * 100 * 100 * (8 + 8 + 2)


@pytest.mark.parametrize("T,D,M", [(16, 8, 8), (33, 4, 12)])
def test_fused_kernel_counts_the_same_matrix_products(T, D, M):
    q, k, v = torch.randn(1, 1, T, D), torch.randn(1, 1, T, D), torch.randn(1, 1, T, M)
    count = self_attention_multiplications(T, D, M)
    flops = counted_flops(lambda: F.scaled_dot_product_attention(q, k, v))
    assert flops == 2 * (count.scores + count.weighted_sum)


@pytest.mark.parametrize("T,d_model,heads", [(9, 8, 2), (5, 12, 3)])
def test_multi_head_layer_matches_flop_counter(T, d_model, heads):
    params = init_multi_head_attention(rng.key(0), d_model)
    x = torch.randn(2, T, d_model)
    flops = counted_flops(lambda: multi_head_attention(params, x, heads=heads))
    assert flops == 2 * 2 * multi_head_attention_multiplications(T, d_model, heads).matmul  # b=2
