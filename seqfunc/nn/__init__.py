"""Pure layers as init/apply pairs: ``init_x(key, ...) -> params``, ``x(params, ...)``."""

from seqfunc.nn.attention import (
    attention_weights,
    dot_product_attention,
    init_multi_head_attention,
    multi_head_attention,
    record_attention,
)
from seqfunc.nn.attention_kernels import KERNELS, attention_kernel, validate_attention
from seqfunc.nn.dropout import active as dropout_active
from seqfunc.nn.dropout import dropout
from seqfunc.nn.embedding import embedding, init_embedding
from seqfunc.nn.feedforward import feed_forward, init_feed_forward, init_swiglu, swiglu
from seqfunc.nn.grouped_attention import (
    expand_kv,
    grouped_query_attention,
    init_grouped_query_attention,
)
from seqfunc.nn.linear import init_linear, linear
from seqfunc.nn.masks import causal_mask, combine_masks, padding_mask
from seqfunc.nn.norm import init_layer_norm, init_rms_norm, layer_norm, rms_norm
from seqfunc.nn.positional import add_sinusoidal, sinusoidal_encoding
from seqfunc.nn.recurrent import (
    gru,
    init_gru,
    init_lstm,
    init_recurrent,
    init_rnn,
    lstm,
    rnn,
)
from seqfunc.nn.remat import remat
from seqfunc.nn.rotary import apply_rotary, rotary_angles, rotary_frequencies
from seqfunc.nn.transformer import (
    BlockOptions,
    decoder,
    decoder_layer,
    encoder,
    encoder_layer,
    encoder_layers,
    init_decoder,
    init_decoder_layer,
    init_encoder,
    init_encoder_layer,
)

__all__ = [
    "attention_weights",
    "dot_product_attention",
    "init_multi_head_attention",
    "multi_head_attention",
    "record_attention",
    "KERNELS",
    "attention_kernel",
    "validate_attention",
    "dropout",
    "dropout_active",
    "embedding",
    "init_embedding",
    "feed_forward",
    "init_feed_forward",
    "init_swiglu",
    "swiglu",
    "expand_kv",
    "grouped_query_attention",
    "init_grouped_query_attention",
    "init_linear",
    "linear",
    "causal_mask",
    "combine_masks",
    "padding_mask",
    "init_layer_norm",
    "layer_norm",
    "init_rms_norm",
    "rms_norm",
    "add_sinusoidal",
    "sinusoidal_encoding",
    "apply_rotary",
    "rotary_angles",
    "rotary_frequencies",
    "remat",
    "gru",
    "init_gru",
    "init_lstm",
    "init_recurrent",
    "init_rnn",
    "lstm",
    "rnn",
    "BlockOptions",
    "decoder",
    "decoder_layer",
    "encoder",
    "encoder_layer",
    "encoder_layers",
    "init_decoder",
    "init_decoder_layer",
    "init_encoder",
    "init_encoder_layer",
]
