"""A Llama-family decoder (Llama, Mistral, Qwen2): the layout their Hugging Face configs express.

    tokens (b, t) -> embedding
                  -> N blocks [RMSNorm -> grouped-query attention with rotary positions,
                               RMSNorm -> SwiGLU feed-forward], each a residual
                  -> RMSNorm -> linear head (optionally tied to the embedding)
                  -> logits (b, t, V)

The variants differ only in config: ``kv_heads`` (grouped-query attention), biases per
projection (Qwen2: ``qkv_bias``), rotary ``rope_theta`` and scaling, a tied head.
:meth:`Llama.extend` runs new tokens against a KV cache of ``kv_heads`` heads
(:mod:`seqfunc.nn.kv_cache`), the protocol :mod:`seqfunc.inference.generate` drives.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

from seqfunc import nn, rng
from seqfunc.config import ConfigError, from_dict, non_negative, positive
from seqfunc.nn import kv_cache
from seqfunc.nn.feedforward import init_swiglu, swiglu
from seqfunc.nn.grouped_attention import (
    grouped_attention_mix,
    init_grouped_query_attention,
    project_grouped,
)
from seqfunc.nn.norm import init_rms_norm, rms_norm
from seqfunc.nn.rotary import SCALINGS, apply_rotary, rotary_angles, rotary_frequencies


@attrs.frozen
class LlamaConfig:
    vocab_size: int = attrs.field(validator=positive)
    #: longest sequence (``max_position_embeddings``); the generator's window
    context: int = attrs.field(default=2048, validator=positive)
    d_model: int = attrs.field(default=128, validator=positive)
    heads: int = attrs.field(default=4, validator=positive)
    #: key/value heads (grouped-query attention); None: ``heads`` (multi-head attention)
    kv_heads: int | None = attrs.field(default=None, validator=positive)
    #: features per head; None: ``d_model / heads``
    head_dim: int | None = attrs.field(default=None, validator=positive)
    layers: int = attrs.field(default=4, validator=non_negative)
    #: SwiGLU hidden width; None: ``4 * d_model``
    d_ff: int | None = attrs.field(default=None, validator=positive)
    norm_eps: float = attrs.field(default=1e-6, validator=positive)
    rope_theta: float = attrs.field(default=10000.0, validator=positive)
    #: rotary frequency scaling: none, linear or llama3 (:mod:`seqfunc.nn.rotary`)
    rope_scaling: str = "none"
    rope_factor: float = attrs.field(default=1.0, validator=positive)
    rope_low_freq_factor: float = attrs.field(default=1.0, validator=positive)
    rope_high_freq_factor: float = attrs.field(default=4.0, validator=positive)
    rope_original_context: int = attrs.field(default=8192, validator=positive)
    #: biases on the query, key and value projections (Qwen2)
    qkv_bias: bool = False
    #: a bias on the attention's output projection
    out_bias: bool = False
    #: biases on the SwiGLU's three projections
    mlp_bias: bool = False
    tie_weights: bool = False

    def __attrs_post_init__(self):
        kv_heads = self.kv_heads or self.heads
        if self.heads % kv_heads:
            raise ConfigError(
                f"LlamaConfig.heads={self.heads} must be a multiple of kv_heads={kv_heads}"
            )
        if self.head_dim is None and self.d_model % self.heads:
            raise ConfigError(
                f"LlamaConfig.d_model={self.d_model} must be a multiple of heads={self.heads} "
                "(or set head_dim)"
            )
        if (self.head_dim or self.d_model // self.heads) % 2:
            raise ConfigError("LlamaConfig: rotary positions need an even head_dim")
        if self.rope_scaling not in SCALINGS:
            raise ConfigError(
                f"LlamaConfig.rope_scaling={self.rope_scaling!r}: must be one of {SCALINGS}"
            )
        if (
            self.rope_scaling == "llama3"
            and self.rope_high_freq_factor <= self.rope_low_freq_factor
        ):
            raise ConfigError("LlamaConfig: rope_high_freq_factor must exceed rope_low_freq_factor")


class Llama:
    """``apply(params, tokens (b, t)) -> logits (b, t, vocab)``; causal everywhere."""

    name: ClassVar[str] = "llama"
    task_kinds: ClassVar[tuple[str, ...]] = ("language_model",)
    Config: ClassVar[type] = LlamaConfig
    #: ``seqfunc check llama``: a tiny grouped-query model with biases and a scaled rotary
    check_options: ClassVar[dict] = dict(
        d_model=16,
        heads=4,
        kv_heads=2,
        layers=2,
        d_ff=24,
        qkv_bias=True,
        context=64,
        rope_scaling="linear",
        rope_factor=2.0,
    )

    def __init__(self, config: LlamaConfig):
        self.config = config
        self.kv_heads = config.kv_heads or config.heads
        self.head_dim = config.head_dim or config.d_model // config.heads
        self.d_ff = config.d_ff or 4 * config.d_model

    @classmethod
    def config_for(cls, dataset, **overrides) -> LlamaConfig:
        fields = dict(vocab_size=len(dataset.vocab))
        context = getattr(dataset.config, "context", None)
        if context:
            fields["context"] = context
        return from_dict(LlamaConfig, {**fields, **overrides}, where="model options")

    # -- parameters ------------------------------------------------------------------------
    def init(self, key: rng.KeyArray) -> dict:
        c = self.config
        k_emb, k_head, k_layers = rng.split(key, 3)
        layers = []
        for k in rng.split(k_layers, c.layers) if c.layers else []:
            k_attn, k_ff = rng.split(k)
            layers.append(
                {
                    "attn_norm": init_rms_norm(c.d_model),
                    "attn": init_grouped_query_attention(
                        k_attn,
                        c.d_model,
                        heads=c.heads,
                        kv_heads=self.kv_heads,
                        head_dim=self.head_dim,
                        qkv_bias=c.qkv_bias,
                        out_bias=c.out_bias,
                    ),
                    "ff_norm": init_rms_norm(c.d_model),
                    "ff": init_swiglu(k_ff, c.d_model, self.d_ff, bias=c.mlp_bias),
                }
            )
        params = {
            "embed": nn.init_embedding(k_emb, c.vocab_size, c.d_model, std=0.02),
            "layers": layers,
            "norm": init_rms_norm(c.d_model),
        }
        if not c.tie_weights:
            params["head"] = {"weight": rng.normal(k_head, (c.vocab_size, c.d_model), std=0.02)}
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
        """``tokens (b, t)`` -> logits ``(b, t, vocab)``. No dropout: ``key`` and ``train``
        change nothing."""
        return self.head(params, self.features(params, tokens))

    def features(
        self,
        params: dict,
        tokens: torch.Tensor,
        *,
        key: rng.KeyArray | None = None,
        train: bool = False,
    ) -> torch.Tensor:
        """``tokens (b, t)`` -> the final norm's outputs ``(b, t, d_model)``."""
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        return self._forward(params, tokens, positions)

    def head(self, params: dict, features: torch.Tensor) -> torch.Tensor:
        """``features (..., d_model)`` -> logits ``(..., vocab)`` (through the token
        embedding when the weights are tied)."""
        return nn.linear(params.get("head") or {"weight": params["embed"]["weight"]}, features)

    def init_cache(self, params: dict, batch: int, max_len: int) -> dict:
        """An empty KV cache of ``kv_heads`` heads for ``batch`` sequences of ``max_len``."""
        weight = params["embed"]["weight"]
        return kv_cache.init_kv_cache(
            layers=self.config.layers,
            batch=batch,
            heads=self.kv_heads,
            max_len=max_len,
            head_dim=self.head_dim,
            dtype=weight.dtype,
            device=weight.device,
        )

    def extend(
        self, params: dict, tokens: torch.Tensor, cache: dict, *, donate: bool = False
    ) -> tuple[torch.Tensor, dict]:
        """``tokens (b, t)`` placed after the ``cache["pos"]`` cached tokens:
        ``(logits (b, t, vocab), cache')``, the last ``t`` rows of :meth:`apply` on the whole
        sequence. ``donate``: write into ``cache``'s buffers (see
        :func:`seqfunc.nn.kv_cache.write`)."""
        step = kv_cache.Extension(cache, tokens.shape[1], donate=donate)
        features = self._forward(params, tokens, step.positions, step)
        return self.head(params, features), step.cache()

    def rotary_frequencies(self, device=None) -> torch.Tensor:
        """The ``(head_dim / 2,)`` rotary frequencies of this config."""
        c = self.config
        return rotary_frequencies(
            self.head_dim,
            theta=c.rope_theta,
            scaling=c.rope_scaling,
            factor=c.rope_factor,
            low_freq_factor=c.rope_low_freq_factor,
            high_freq_factor=c.rope_high_freq_factor,
            original_context=c.rope_original_context,
            device=device,
        )

    def _forward(self, params, tokens, positions, cached=None):
        """``features (b, t, d_model)``. ``cached``: None (causal attention over ``tokens``) or
        the :class:`~seqfunc.nn.kv_cache.Extension` of :meth:`extend`, which each layer
        writes."""
        c = self.config
        x = nn.embedding(params["embed"], tokens)
        cos, sin = rotary_angles(positions, self.rotary_frequencies(x.device), dtype=x.dtype)
        for i, layer in enumerate(params["layers"]):
            h = rms_norm(layer["attn_norm"], x, eps=c.norm_eps)
            q, k, v = project_grouped(layer["attn"], h, heads=c.heads, kv_heads=self.kv_heads)
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
            if cached is None:
                mixed = grouped_attention_mix(q, k, v, causal=True)
            else:
                seen_k, seen_v = cached.layer(i, k, v)
                window = cached.window
                mixed = grouped_attention_mix(q, seen_k, seen_v, window.mask, causal=window.causal)
            x = x + nn.linear(layer["attn"]["out"], mixed)
            x = x + swiglu(layer["ff"], rms_norm(layer["ff_norm"], x, eps=c.norm_eps))
        return rms_norm(params["norm"], x, eps=c.norm_eps)
