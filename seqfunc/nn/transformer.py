"""Transformer encoder and decoder layers and stacks (post-norm by default, as
``torch.nn.Transformer``; ``norm_first=True`` gives pre-norm)."""

from __future__ import annotations

import attrs
import torch

from seqfunc import rng
from seqfunc.nn.attention import init_multi_head_attention, multi_head_attention
from seqfunc.nn.attention_kernels import AttentionKernel, attention_kernel
from seqfunc.nn.dropout import dropout
from seqfunc.nn.feedforward import feed_forward, init_feed_forward
from seqfunc.nn.norm import init_layer_norm, layer_norm
from seqfunc.nn.remat import remat


@attrs.frozen
class BlockOptions:
    """Hyper-parameters every layer of a stack shares (static: not part of the params)."""

    heads: int
    dropout: float = 0.0
    #: dropout on the attention weights (``torch.nn.TransformerEncoderLayer`` uses ``dropout``)
    attention_dropout: float = 0.0
    norm_first: bool = False
    activation: str = "relu"
    #: attention kernel: a name, a ``{"kind": ...}`` dict or a kernel (see attention_kernels)
    attention: AttentionKernel = attrs.field(default="dot", converter=attention_kernel)
    #: recompute each layer's activations in the backward while training (:mod:`seqfunc.nn.remat`)
    remat: bool = False


def init_encoder_layer(
    key: rng.KeyArray,
    d_model: int,
    d_ff: int,
    *,
    attention="dot",
    heads: int | None = None,
    init: str = "xavier",
) -> dict:
    """``attention``/``heads``: the kernel (and head count, for kernels with parameters).
    ``init="torch"``: ``torch.nn.TransformerEncoderLayer``'s initialisation (see
    :func:`~seqfunc.nn.attention.init_multi_head_attention` and
    :func:`~seqfunc.nn.linear.init_linear`); ``"xavier"``: xavier-uniform weights, zero biases."""
    k1, k2 = rng.split(key)
    return {
        "attn": init_multi_head_attention(k1, d_model, kernel=attention, heads=heads, init=init),
        "attn_norm": init_layer_norm(d_model),
        "ff": init_feed_forward(k2, d_model, d_ff, init=init),
        "ff_norm": init_layer_norm(d_model),
    }


def init_decoder_layer(
    key: rng.KeyArray, d_model: int, d_ff: int, *, attention="dot", heads: int | None = None
) -> dict:
    k1, k2, k3 = rng.split(key, 3)
    return {
        "self_attn": init_multi_head_attention(k1, d_model, kernel=attention, heads=heads),
        "self_attn_norm": init_layer_norm(d_model),
        "cross_attn": init_multi_head_attention(
            k2, d_model, cross=True, kernel=attention, heads=heads
        ),
        "cross_attn_norm": init_layer_norm(d_model),
        "ff": init_feed_forward(k3, d_model, d_ff),
        "ff_norm": init_layer_norm(d_model),
    }


def _residual(x, norm_params, sublayer, opts: BlockOptions, key, train):
    """``x + dropout(sublayer(x))`` with the norm before (pre-norm) or after (post-norm)."""
    if opts.norm_first:
        return x + dropout(sublayer(layer_norm(norm_params, x)), opts.dropout, key=key, train=train)
    return layer_norm(norm_params, x + dropout(sublayer(x), opts.dropout, key=key, train=train))


def _layer_keys(key, n):
    return [None] * n if key is None else list(rng.split(key, n))


def encoder_layer(
    params: dict,
    x: torch.Tensor,
    *,
    opts: BlockOptions,
    mask: torch.Tensor | None = None,
    key: rng.KeyArray | None = None,
    train: bool = False,
) -> torch.Tensor:
    """``x``: ``(b, t, d)``; ``mask`` broadcastable to ``(b, h, t, t)`` -> ``(b, t, d)``."""
    k_attn, k_ff_inner, k_ff = _layer_keys(key, 3)
    k_weights = None if k_attn is None else rng.fold_in(k_attn, 1)
    attend = lambda h: multi_head_attention(
        params["attn"],
        h,
        heads=opts.heads,
        mask=mask,
        kernel=opts.attention,
        dropout_rate=opts.attention_dropout,
        key=k_weights,
        train=train,
    )
    x = _residual(x, params["attn_norm"], attend, opts, k_attn, train)
    ff = lambda h: feed_forward(
        params["ff"],
        h,
        activation=opts.activation,
        dropout_rate=opts.dropout,
        key=k_ff_inner,
        train=train,
    )
    return _residual(x, params["ff_norm"], ff, opts, k_ff, train)


def decoder_layer(
    params: dict,
    x: torch.Tensor,
    memory: torch.Tensor,
    *,
    opts: BlockOptions,
    self_mask: torch.Tensor | None = None,
    memory_mask: torch.Tensor | None = None,
    key: rng.KeyArray | None = None,
    train: bool = False,
) -> torch.Tensor:
    """``x``: ``(b, t, d)`` targets; ``memory``: ``(b, s, d)`` encoder output -> ``(b, t, d)``."""
    k_self, k_cross, k_ff_inner, k_ff = _layer_keys(key, 4)
    self_attend = lambda h: multi_head_attention(
        params["self_attn"], h, heads=opts.heads, mask=self_mask, kernel=opts.attention
    )
    x = _residual(x, params["self_attn_norm"], self_attend, opts, k_self, train)
    cross_attend = lambda h: multi_head_attention(
        params["cross_attn"],
        h,
        memory,
        heads=opts.heads,
        mask=memory_mask,
        kernel=opts.attention,
    )
    x = _residual(x, params["cross_attn_norm"], cross_attend, opts, k_cross, train)
    ff = lambda h: feed_forward(
        params["ff"],
        h,
        activation=opts.activation,
        dropout_rate=opts.dropout,
        key=k_ff_inner,
        train=train,
    )
    return _residual(x, params["ff_norm"], ff, opts, k_ff, train)


def init_encoder(
    key: rng.KeyArray,
    num_layers: int,
    d_model: int,
    d_ff: int,
    *,
    attention="dot",
    heads: int | None = None,
) -> dict:
    """``{"layers": [layer, ...], "norm": final layer norm}`` (as ``torch.nn.Transformer``)."""
    keys = rng.split(key, num_layers) if num_layers else []
    return {
        "layers": [
            init_encoder_layer(k, d_model, d_ff, attention=attention, heads=heads) for k in keys
        ],
        "norm": init_layer_norm(d_model),
    }


def init_decoder(
    key: rng.KeyArray,
    num_layers: int,
    d_model: int,
    d_ff: int,
    *,
    attention="dot",
    heads: int | None = None,
) -> dict:
    keys = rng.split(key, num_layers) if num_layers else []
    return {
        "layers": [
            init_decoder_layer(k, d_model, d_ff, attention=attention, heads=heads) for k in keys
        ],
        "norm": init_layer_norm(d_model),
    }


def encoder_layers(
    layers: list, x, *, opts: BlockOptions, mask=None, keys=None, train=False
) -> torch.Tensor:
    """``x (b, t, d)`` through each of ``layers`` (encoder layers' params), one key each
    (None: no dropout); with ``opts.remat`` while training, each layer's activations are
    recomputed in the backward."""
    keys = [None] * len(layers) if keys is None else keys
    layer = remat(
        lambda x, p, mask, key: encoder_layer(p, x, opts=opts, mask=mask, key=key, train=train),
        opts.remat and train,
    )
    for layer_params, layer_key in zip(layers, keys):
        x = layer(x, layer_params, mask, layer_key)
    return x


def encoder(params, x, *, opts: BlockOptions, mask=None, key=None, train=False) -> torch.Tensor:
    """A stack of encoder layers and the final norm: ``(b, t, d) -> (b, t, d)``."""
    keys = _layer_keys(key, len(params["layers"]))
    x = encoder_layers(params["layers"], x, opts=opts, mask=mask, keys=keys, train=train)
    return layer_norm(params["norm"], x)


def decoder(
    params,
    x,
    memory,
    *,
    opts: BlockOptions,
    self_mask=None,
    memory_mask=None,
    key=None,
    train=False,
) -> torch.Tensor:
    """A stack of decoder layers and the final norm: ``(b, t, d) -> (b, t, d)``."""
    keys = _layer_keys(key, len(params["layers"]))
    layer = remat(
        lambda x, p, memory, self_mask, memory_mask, key: decoder_layer(
            p,
            x,
            memory,
            opts=opts,
            self_mask=self_mask,
            memory_mask=memory_mask,
            key=key,
            train=train,
        ),
        opts.remat and train,
    )
    for layer_params, layer_key in zip(params["layers"], keys):
        x = layer(x, layer_params, memory, self_mask, memory_mask, layer_key)
    return layer_norm(params["norm"], x)
