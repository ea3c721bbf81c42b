"""A decoder-only causal Transformer language model (GPT; assignment 004 q11, assignment 003 q3).

    tokens (b, t) -> embedding + positions (learned table or sinusoidal)
                  -> N blocks [causal self-attention, feed-forward], pre- or post-norm
                  -> (final norm if pre-norm) -> linear head (optionally tied to the embedding)
                  -> logits (b, t, V)

Initialisation as GPT-2 / nanoGPT: N(0, 0.02) weights, residual output projections scaled by
1/sqrt(2 N), zero biases. :meth:`GPT.extend` runs new tokens against a KV cache
(:mod:`seqfunc.nn.kv_cache`) so that generation costs one model step per new token.
"""

from __future__ import annotations

import math
from typing import ClassVar

import attrs
import torch
from einops import rearrange

from seqfunc import nn, rng
from seqfunc.config import (
    ConfigError,
    check_divisible,
    dropout_field,
    from_dict,
    non_negative,
    positive,
)
from seqfunc.nn import kv_cache
from seqfunc.nn.attention import project_heads
from seqfunc.nn.attention_kernels import attention_kernel

#: torch's fused kernel eagerly; written out (and fused by inductor) when compiled for the CPU
_DOT = attention_kernel("dot")

POSITIONS = ("learned", "sinusoidal")


@attrs.frozen
class GPTConfig:
    vocab_size: int = attrs.field(validator=positive)
    #: longest sequence: the size of the learned position table (sinusoidal: no limit,
    #: but still the training window the generator keeps without a cache)
    context: int = attrs.field(default=256, validator=positive)
    d_model: int = attrs.field(default=128, validator=positive)
    heads: int = attrs.field(default=4, validator=positive)
    layers: int = attrs.field(default=4, validator=non_negative)
    d_ff: int | None = attrs.field(default=None, validator=positive)  # None: 4 * d_model
    dropout: float = dropout_field(0.0)
    positions: str = "learned"
    norm_first: bool = True
    tie_weights: bool = False
    activation: str = "gelu"
    #: recompute each block's activations in the backward instead of keeping them (less
    #: memory, one more forward of each block; the gradients are the same)
    remat: bool = False

    def __attrs_post_init__(self):
        check_divisible(self, "d_model", "heads")
        if self.positions not in POSITIONS:
            raise ConfigError(f"GPTConfig.positions={self.positions!r}: must be one of {POSITIONS}")
        if self.activation not in nn.feedforward.ACTIVATIONS:
            raise ConfigError(
                f"GPTConfig.activation={self.activation!r}: must be one of "
                f"{sorted(nn.feedforward.ACTIVATIONS)}"
            )


def _normal_linear(key, d_in, d_out, std):
    return {"weight": rng.normal(key, (d_out, d_in), std=std), "bias": torch.zeros(d_out)}


class GPT:
    """``apply(params, tokens (b, t)) -> logits (b, t, vocab)``; causal everywhere."""

    name: ClassVar[str] = "gpt"
    task_kinds: ClassVar[tuple[str, ...]] = ("language_model",)
    Config: ClassVar[type] = GPTConfig
    #: the layer norms' epsilon (a config field of subclasses that import weights: GPT-2)
    norm_eps: float = 1e-5

    def __init__(self, config: GPTConfig):
        self.config = config
        self.d_ff = config.d_ff or 4 * config.d_model
        self.head_dim = config.d_model // config.heads

    @classmethod
    def config_for(cls, dataset, **overrides) -> GPTConfig:
        fields = dict(vocab_size=len(dataset.vocab))
        context = getattr(dataset.config, "context", None) or getattr(dataset.config, "bptt", None)
        if context:
            fields["context"] = context
        return from_dict(GPTConfig, {**fields, **overrides}, where="model options")

    # -- parameters ------------------------------------------------------------------------
    def init(self, key: rng.KeyArray) -> dict:
        c = self.config
        std, resid_std = 0.02, 0.02 / math.sqrt(2 * max(c.layers, 1))
        k_emb, k_pos, k_head, k_layers = rng.split(key, 4)
        layers = []
        for k in rng.split(k_layers, c.layers) if c.layers else []:
            k_qkv, k_out, k_up, k_down = rng.split(k, 4)
            layers.append(
                {
                    "attn": {
                        "qkv": _normal_linear(k_qkv, c.d_model, 3 * c.d_model, std),
                        "out": _normal_linear(k_out, c.d_model, c.d_model, resid_std),
                    },
                    "attn_norm": nn.init_layer_norm(c.d_model),
                    "ff": {
                        "up": _normal_linear(k_up, c.d_model, self.d_ff, std),
                        "down": _normal_linear(k_down, self.d_ff, c.d_model, resid_std),
                    },
                    "ff_norm": nn.init_layer_norm(c.d_model),
                }
            )
        params = {
            "embed": nn.init_embedding(k_emb, c.vocab_size, c.d_model, std=std),
            "layers": layers,
        }
        if c.positions == "learned":
            params["pos"] = nn.init_embedding(k_pos, c.context, c.d_model, std=std)
        if c.norm_first:
            params["norm"] = nn.init_layer_norm(c.d_model)
        if not c.tie_weights:
            params["head"] = _normal_linear(k_head, c.d_model, c.vocab_size, std)
        return params

    # -- forward ---------------------------------------------------------------------------
    def apply(
        self,
        params: dict,
        tokens: torch.Tensor,
        *,
        key: rng.KeyArray | None = None,
        train: bool = False,
    ) -> torch.Tensor:
        """``tokens (b, t)`` -> logits ``(b, t, vocab)``, ``t <= context`` for learned positions."""
        return self.head(params, self.features(params, tokens, key=key, train=train))

    def features(
        self,
        params: dict,
        tokens: torch.Tensor,
        *,
        key: rng.KeyArray | None = None,
        train: bool = False,
    ) -> torch.Tensor:
        """``tokens (b, t)`` -> the last block's outputs ``(b, t, d_model)``, before
        :meth:`head`."""
        t = tokens.shape[1]
        if self.config.positions == "learned" and t > self.config.context:
            raise ValueError(
                f"GPT: {t} tokens exceed the learned position table ({self.config.context})"
            )
        positions = torch.arange(t, device=tokens.device)
        return self._forward(params, tokens, positions, key, train)

    def head(self, params: dict, features: torch.Tensor) -> torch.Tensor:
        """The output layer: ``features (..., d_model)`` -> logits ``(..., vocab)`` (through the
        token embedding when the weights are tied)."""
        return nn.linear(params.get("head") or {"weight": params["embed"]["weight"]}, features)

    def init_cache(self, params: dict, batch: int, max_len: int) -> dict:
        """An empty KV cache for ``batch`` sequences of up to ``max_len`` tokens."""
        if self.config.positions == "learned" and max_len > self.config.context:
            raise ValueError(
                f"GPT: a cache of {max_len} exceeds the learned position table "
                f"({self.config.context})"
            )
        weight = params["embed"]["weight"]
        return kv_cache.init_kv_cache(
            layers=self.config.layers,
            batch=batch,
            heads=self.config.heads,
            max_len=max_len,
            head_dim=self.head_dim,
            dtype=weight.dtype,
            device=weight.device,
        )

    def extend(
        self, params: dict, tokens: torch.Tensor, cache: dict, *, donate: bool = False
    ) -> tuple[torch.Tensor, dict]:
        """Run ``tokens (b, t)`` placed after the ``cache["pos"]`` tokens already cached:
        ``(logits (b, t, vocab), cache')``. Equal to the last ``t`` rows of :meth:`apply` on
        the whole sequence. ``donate``: write into ``cache``'s buffers (which ``cache'``
        shares) instead of copies; ``cache`` must not be used again
        (:func:`seqfunc.nn.kv_cache.write`)."""
        step = kv_cache.Extension(cache, tokens.shape[1], donate=donate)
        features = self._forward(params, tokens, step.positions, None, False, cached=step)
        return self.head(params, features), step.cache()

    def _forward(self, params, tokens, positions, key, train, cached=None):
        """``features (b, t, d_model)``. ``cached``: None (plain causal attention over
        ``tokens``) or the :class:`~seqfunc.nn.kv_cache.Extension` of :meth:`extend`, which
        each layer writes."""
        c = self.config
        x = nn.embedding(params["embed"], tokens)
        if c.positions == "learned":
            x = x + nn.embedding(params["pos"], positions)
        else:
            x = x + nn.sinusoidal_encoding(
                tokens.shape[1], c.d_model, offset=positions[0], dtype=x.dtype, device=x.device
            )
        drop = c.dropout if train else 0.0
        n_keys = 3 * c.layers + 1
        keyed = key is not None and nn.dropout_active(drop, train)
        keys = list(rng.split(key, n_keys)) if keyed else [None] * n_keys
        x = nn.dropout(x, drop, key=keys[-1], train=train)
        # recompute each block's activations in the backward (training without a cache only)
        recompute = c.remat and train and cached is None
        for i, layer in enumerate(params["layers"]):

            def block(x, layer, k_attn, k_ff_inner, k_ff, i=i):
                def attend(h):
                    q, k, v = project_heads(layer["attn"], h, None, c.heads)
                    if cached is None:
                        out = _DOT.apply({}, q, k, v, causal=True)
                    else:
                        seen_k, seen_v = cached.layer(i, k, v)
                        window = cached.window
                        out = _DOT.apply({}, q, seen_k, seen_v, window.mask, causal=window.causal)
                    return nn.linear(layer["attn"]["out"], rearrange(out, "b h t d -> b t (h d)"))

                def ff(h):
                    return nn.feed_forward(
                        layer["ff"],
                        h,
                        activation=c.activation,
                        dropout_rate=drop,
                        key=k_ff_inner,
                        train=train,
                    )

                x = self._residual(x, layer["attn_norm"], attend, drop, k_attn, train)
                return self._residual(x, layer["ff_norm"], ff, drop, k_ff, train)

            x = nn.remat(block, recompute)(x, layer, *keys[3 * i : 3 * i + 3])
        if c.norm_first:
            x = nn.layer_norm(params["norm"], x, eps=self.norm_eps)
        return x

    def _residual(self, x, norm, sublayer, rate, key, train):
        eps = self.norm_eps
        if self.config.norm_first:
            normed = nn.layer_norm(norm, x, eps=eps)
            return x + nn.dropout(sublayer(normed), rate, key=key, train=train)
        return nn.layer_norm(norm, x + nn.dropout(sublayer(x), rate, key=key, train=train), eps=eps)
