"""The architectures ``seqfunc import`` and ``seqfunc export`` know: for each, the Hugging
Face ``architectures`` names it reads, the seqfunc model it becomes, the config translation
both ways and its key table (:mod:`seqfunc.pretrained.tables`).

A config value seqfunc's model cannot express is refused with one line naming the field, so
an imported model computes what the original computes or is not imported at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from seqfunc.errors import ConfigError
from seqfunc.pretrained.key_table import KeyTable
from seqfunc.pretrained.tables import GPT2_TABLE, LLAMA_TABLE

Log = Callable[[str], None]


@attrs.frozen
class Architecture:
    #: the seqfunc model (registry name)
    model: str
    #: Hugging Face ``architectures`` values read as this model
    hf_names: tuple[str, ...]
    #: ``(HF config dict, where, log) -> seqfunc model config dict``
    from_hf: Callable[[dict, str, Log], dict]
    #: ``(seqfunc model config) -> HF config dict`` (with ``architectures``, ``model_type``)
    to_hf: Callable[[Any], dict]
    table: KeyTable


def _field(hf: dict, name: str, where: str, default: Any = ConfigError) -> Any:
    if name in hf and hf[name] is not None:
        return hf[name]
    if default is ConfigError:
        raise ConfigError(f"{where}: no {name!r}, which this architecture needs")
    return default


def _refuse(where: str, field: str, value: Any, why: str) -> ConfigError:
    return ConfigError(f"{where}: {field}={value!r} is not supported ({why})")


# -- GPT-2 -----------------------------------------------------------------------------------
GPT2_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu"}


def gpt2_from_hf(hf: dict, where: str, log: Log) -> dict:
    activation = _field(hf, "activation_function", where, "gelu_new")
    if activation not in GPT2_ACTIVATIONS:
        raise _refuse(where, "activation_function", activation, f"one of {list(GPT2_ACTIVATIONS)}")
    for flag, supported in (
        ("scale_attn_by_inverse_layer_idx", False),
        ("scale_attn_weights", True),
    ):
        if hf.get(flag, supported) != supported:
            raise _refuse(where, flag, hf[flag], f"seqfunc's GPT-2 has {flag}={supported}")
    return {
        "vocab_size": _field(hf, "vocab_size", where),
        "context": _field(hf, "n_positions", where),
        "d_model": _field(hf, "n_embd", where),
        "heads": _field(hf, "n_head", where),
        "layers": _field(hf, "n_layer", where),
        "d_ff": _field(hf, "n_inner", where, None),
        "activation": GPT2_ACTIVATIONS[activation],
        "norm_eps": _field(hf, "layer_norm_epsilon", where, 1e-5),
        "tie_weights": _field(hf, "tie_word_embeddings", where, True),
        "dropout": 0.0,
    }


def gpt2_to_hf(c) -> dict:
    if c.positions != "learned" or not c.norm_first:
        raise ConfigError("export: GPT-2 has learned positions and pre-norm blocks")
    activation = {"gelu_tanh": "gelu_new", "gelu": "gelu"}.get(c.activation)
    if activation is None:
        raise ConfigError(f"export: GPT-2 has no activation {c.activation!r}")
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": c.vocab_size,
        "n_positions": c.context,
        "n_embd": c.d_model,
        "n_head": c.heads,
        "n_layer": c.layers,
        "n_inner": c.d_ff,
        "activation_function": activation,
        "layer_norm_epsilon": c.norm_eps,
        "tie_word_embeddings": c.tie_weights,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
    }


# -- Llama, Mistral, Qwen2 ---------------------------------------------------------------------
ROPE_TYPES = ("default", "linear", "llama3")


def _rope_fields(hf: dict, where: str) -> dict:
    """``rope_theta`` and the scaling, from ``rope_scaling`` (transformers 4) or
    ``rope_parameters`` (transformers 5)."""
    params = dict(hf.get("rope_parameters") or {})
    scaling = dict(hf.get("rope_scaling") or {})
    theta = params.get("rope_theta", hf.get("rope_theta", 10000.0))
    if params.get("rope_type", "default") != "default":
        scaling = params
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind not in ROPE_TYPES:
        raise _refuse(where, "rope_scaling.rope_type", kind, f"supported: {list(ROPE_TYPES)}")
    if hf.get("partial_rotary_factor", 1.0) != 1.0:
        raise _refuse(where, "partial_rotary_factor", hf["partial_rotary_factor"], "needs 1.0")
    fields = {"rope_theta": float(theta), "rope_scaling": "none" if kind == "default" else kind}
    if kind != "default":
        fields["rope_factor"] = float(_field(scaling, "factor", f"{where} rope_scaling"))
    if kind == "llama3":
        fields.update(
            rope_low_freq_factor=float(scaling.get("low_freq_factor", 1.0)),
            rope_high_freq_factor=float(scaling.get("high_freq_factor", 4.0)),
            rope_original_context=int(
                _field(
                    scaling,
                    "original_max_position_embeddings",
                    f"{where} rope_scaling",
                )
            ),
        )
    return fields


def llama_from_hf(hf: dict, where: str, log: Log) -> dict:
    activation = _field(hf, "hidden_act", where, "silu")
    if activation != "silu":
        raise _refuse(where, "hidden_act", activation, "the SwiGLU feed-forward uses silu")
    kind = hf.get("model_type", "llama")
    context = _field(hf, "max_position_embeddings", where)
    window = hf.get("sliding_window")
    if window and (kind != "qwen2" or hf.get("use_sliding_window")) and window < context:
        log(
            f"{where}: sliding_window={window}: the model's context is limited to "
            f"{window} positions, where sliding-window and full attention agree"
        )
        context = window
    if kind == "qwen2":  # Qwen2 puts biases on q, k and v, never on o
        qkv_bias, out_bias = True, False
    else:
        qkv_bias = out_bias = bool(hf.get("attention_bias", False))
    heads = _field(hf, "num_attention_heads", where)
    d_model = _field(hf, "hidden_size", where)
    head_dim = hf.get("head_dim")
    return {
        "vocab_size": _field(hf, "vocab_size", where),
        "context": context,
        "d_model": d_model,
        "heads": heads,
        "kv_heads": _field(hf, "num_key_value_heads", where, heads),
        "head_dim": None if head_dim in (None, d_model // heads) else head_dim,
        "layers": _field(hf, "num_hidden_layers", where),
        "d_ff": _field(hf, "intermediate_size", where),
        "norm_eps": float(_field(hf, "rms_norm_eps", where, 1e-6)),
        "qkv_bias": qkv_bias,
        "out_bias": out_bias,
        "mlp_bias": bool(hf.get("mlp_bias", False)),
        "tie_weights": bool(hf.get("tie_word_embeddings", False)),
        **_rope_fields(hf, where),
    }


def llama_to_hf(c) -> dict:
    if c.mlp_bias and c.qkv_bias != c.out_bias:
        raise ConfigError(
            "export: no Hugging Face decoder has MLP biases with Qwen2's q/k/v biases"
        )
    qwen2 = c.qkv_bias and not c.out_bias
    if c.out_bias and not c.qkv_bias:
        raise ConfigError("export: no Hugging Face decoder has an o_proj bias without q/k/v biases")
    hf = {
        "architectures": ["Qwen2ForCausalLM" if qwen2 else "LlamaForCausalLM"],
        "model_type": "qwen2" if qwen2 else "llama",
        "vocab_size": c.vocab_size,
        "max_position_embeddings": c.context,
        "hidden_size": c.d_model,
        "num_attention_heads": c.heads,
        "num_key_value_heads": c.kv_heads or c.heads,
        "head_dim": c.head_dim or c.d_model // c.heads,
        "num_hidden_layers": c.layers,
        "intermediate_size": c.d_ff or 4 * c.d_model,
        "rms_norm_eps": c.norm_eps,
        "hidden_act": "silu",
        "tie_word_embeddings": c.tie_weights,
        "rope_theta": c.rope_theta,
        "attention_dropout": 0.0,
    }
    if not qwen2:
        hf.update(attention_bias=c.qkv_bias, mlp_bias=c.mlp_bias)
    if c.rope_scaling != "none":
        scaling = {"rope_type": c.rope_scaling, "factor": c.rope_factor}
        if c.rope_scaling == "llama3":
            scaling.update(
                low_freq_factor=c.rope_low_freq_factor,
                high_freq_factor=c.rope_high_freq_factor,
                original_max_position_embeddings=c.rope_original_context,
            )
        hf["rope_scaling"] = scaling
    return hf


ARCHITECTURES: tuple[Architecture, ...] = (
    Architecture("gpt2", ("GPT2LMHeadModel", "GPT2Model"), gpt2_from_hf, gpt2_to_hf, GPT2_TABLE),
    Architecture(
        "llama",
        ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"),
        llama_from_hf,
        llama_to_hf,
        LLAMA_TABLE,
    ),
)


def supported_names() -> list[str]:
    return [name for arch in ARCHITECTURES for name in arch.hf_names]


def architecture_for_hf(hf: dict, where: str) -> Architecture:
    """The architecture of a Hugging Face ``config.json``, or one line naming its
    ``architectures`` value and the supported ones."""
    names = hf.get("architectures")
    if not isinstance(names, list) or not names:
        raise ConfigError(
            f"{where}: no 'architectures' list; supported: {', '.join(supported_names())}"
        )
    for arch in ARCHITECTURES:
        if names[0] in arch.hf_names:
            return arch
    raise ConfigError(
        f"{where}: architectures={names} is not supported; supported: "
        f"{', '.join(supported_names())}"
    )


def architecture_for_model(model_name: str) -> Architecture:
    for arch in ARCHITECTURES:
        if arch.model == model_name:
            return arch
    raise ConfigError(
        f"export --format hf: a {model_name!r} run has no Hugging Face layout; "
        f"models that export: {', '.join(a.model for a in ARCHITECTURES)}"
    )
