"""The key tables: Hugging Face tensor names <-> seqfunc parameter paths, per architecture."""

from __future__ import annotations

from seqfunc.pretrained.key_table import KeyTable, Rule

#: GPT-2 (``GPT2LMHeadModel``): ``Conv1D`` layers store their weights ``(d_in, d_out)``.
GPT2_TABLE = KeyTable(
    rules=(
        Rule("transformer.wte", "embed"),
        Rule("transformer.wpe", "pos"),
        Rule("transformer.h.{i}.ln_1", "layers.{i}.attn_norm"),
        Rule("transformer.h.{i}.attn.c_attn", "layers.{i}.attn.qkv", transpose=True),
        Rule("transformer.h.{i}.attn.c_proj", "layers.{i}.attn.out", transpose=True),
        Rule("transformer.h.{i}.ln_2", "layers.{i}.ff_norm"),
        Rule("transformer.h.{i}.mlp.c_fc", "layers.{i}.ff.up", transpose=True),
        Rule("transformer.h.{i}.mlp.c_proj", "layers.{i}.ff.down", transpose=True),
        Rule("transformer.ln_f", "norm"),
        Rule("lm_head", "head"),
    ),
    ignored=(r"\.attn\.(masked_)?bias$",),  # the causal-mask buffers of older checkpoints
    base_prefix="transformer.",
)

#: Llama, Mistral, Qwen2 (``...ForCausalLM``): separate q/k/v/o projections and a SwiGLU.
LLAMA_TABLE = KeyTable(
    rules=(
        Rule("model.embed_tokens", "embed"),
        Rule("model.layers.{i}.input_layernorm", "layers.{i}.attn_norm"),
        Rule("model.layers.{i}.self_attn.q_proj", "layers.{i}.attn.q"),
        Rule("model.layers.{i}.self_attn.k_proj", "layers.{i}.attn.k"),
        Rule("model.layers.{i}.self_attn.v_proj", "layers.{i}.attn.v"),
        Rule("model.layers.{i}.self_attn.o_proj", "layers.{i}.attn.out"),
        Rule("model.layers.{i}.post_attention_layernorm", "layers.{i}.ff_norm"),
        Rule("model.layers.{i}.mlp.gate_proj", "layers.{i}.ff.gate"),
        Rule("model.layers.{i}.mlp.up_proj", "layers.{i}.ff.up"),
        Rule("model.layers.{i}.mlp.down_proj", "layers.{i}.ff.down"),
        Rule("model.norm", "norm"),
        Rule("lm_head", "head"),
    ),
    ignored=(r"\.rotary_emb\.inv_freq$",),  # a buffer older checkpoints saved
    base_prefix="model.",
)
