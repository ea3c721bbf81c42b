"""Sampling from language models: temperature (0 = argmax) and top-k, with or without a KV cache.

Any language model works: one with ``init_cache(params, batch, max_len)`` and
``extend(params, tokens, cache) -> (logits, cache)`` is run one position per new token;
otherwise the whole (cropped) prefix is recomputed at every step. Randomness comes from an
explicit key (Gumbel-max sampling), so the same key gives the same text.

A model whose ``extend`` takes ``donate`` has its cache written in place (a cache is never
reused once extended). The cache is preallocated with fixed shapes, so the one-token decoding
step (extend + sample) has the same shapes at every position: ``compile=True`` compiles it
once per model and sampling setting (as a static cache with ``torch.compile`` does for
Hugging Face's ``generate``); the prompt's prefill stays eager.
"""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import Callable

import torch

from seqfunc import rng
from seqfunc.compiled import compile_fn

#: inductor options of the compiled decoding step: a C++ wrapper calls its ~30 kernels, where
#: the default Python wrapper costs about a quarter of a one-token step of a small GPT
DECODE_COMPILE_OPTIONS = {"cpp_wrapper": True}

#: model -> {(temperature, top_k): compiled decoding step}; entries go with their model
_COMPILED_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def check_sampling(temperature: float, top_k: int | None) -> None:
    """Raise ``ValueError`` for a negative temperature or a top-k below 1."""
    if not temperature >= 0:  # also rejects NaN
        raise ValueError(f"temperature must be >= 0 (0 = argmax), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")


def sample_logits(
    logits: torch.Tensor, key: rng.KeyArray, *, temperature: float = 1.0, top_k: int | None = None
) -> torch.Tensor:
    """``logits (b, V)`` -> ids ``(b,)``: argmax when ``temperature == 0``, otherwise a draw
    from ``softmax(logits / temperature)`` restricted to the ``top_k`` largest logits."""
    check_sampling(temperature, top_k)
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    u = rng.uniform(key, logits.shape).clamp(min=1e-12)
    gumbel = -torch.log(-torch.log(u))  # argmax(logits + Gumbel) ~ softmax(logits)
    return (logits + gumbel).argmax(dim=-1)


def max_positions(model) -> int | None:
    """The longest sequence the model accepts (a learned position table), None if unbounded."""
    config = model.config
    if getattr(config, "positions", "learned") == "learned" and hasattr(config, "context"):
        return config.context
    return None


def supports_cache(model) -> bool:
    return hasattr(model, "init_cache") and hasattr(model, "extend")


def donating_extend(model) -> Callable:
    """``extend(params, tokens, cache) -> (logits, cache')`` that writes into the cache's own
    buffers when ``model.extend`` takes ``donate`` (generation never reuses a cache it has
    extended), otherwise ``model.extend`` as it is."""
    if "donate" in inspect.signature(model.extend).parameters:
        return functools.partial(model.extend, donate=True)
    return model.extend


def decode_step(model, *, temperature: float, top_k: int | None, compile: bool = False) -> Callable:
    """``step(params, token (b, 1), cache, key) -> (next token (b, 1), cache')``: one cached
    position of ``model`` and the draw from its logits; compiled once per model and sampling
    setting when ``compile``."""
    if compile:
        steps = _COMPILED_STEPS.setdefault(model, {})
        if (temperature, top_k) not in steps:
            steps[(temperature, top_k)] = compile_fn(
                decode_step(model, temperature=temperature, top_k=top_k),
                dynamic=False,
                options=DECODE_COMPILE_OPTIONS,
            )
        return steps[(temperature, top_k)]
    extend = donating_extend(model)

    def step(params, token, cache, key):
        logits, cache = extend(params, token, cache)
        return sample_logits(logits[:, -1], key, temperature=temperature, top_k=top_k)[
            :, None
        ], cache

    return step


@torch.no_grad()
def generate(
    model,
    params,
    prompt: torch.Tensor,
    new_tokens: int,
    *,
    key: rng.KeyArray,
    temperature: float = 1.0,
    top_k: int | None = None,
    use_cache: bool = True,
    window: int | None = None,
    compile: bool = False,
) -> torch.Tensor:
    """``prompt (b, t)`` ids -> ``(b, t + new_tokens)``: the prompt and the sampled tokens.

    ``window``: at most this many tokens of context are fed to the model (default: the
    model's position table, unbounded for sinusoidal positions and recurrent models). When a
    cache fills its window, it is refilled with the last half window of tokens.
    ``compile``: compile the cached decoding step (:func:`decode_step`; ignored without a
    cache). Compiling takes seconds, so it pays for long or repeated generation.
    """
    check_sampling(temperature, top_k)
    if prompt.ndim != 2 or prompt.shape[1] < 1:
        raise ValueError(
            f"prompt must be (batch, length >= 1) ids, got shape {tuple(prompt.shape)}"
        )
    window = window or max_positions(model)
    tokens = prompt
    keys = rng.fold_in_range(key, new_tokens).unbind(0)
    if not (use_cache and supports_cache(model)):
        for i in range(new_tokens):
            context = tokens if window is None else tokens[:, -window:]
            logits = model.apply(params, context)[:, -1]
            tokens = torch.cat(
                [
                    tokens,
                    sample_logits(logits, keys[i], temperature=temperature, top_k=top_k)[:, None],
                ],
                1,
            )
        return tokens

    capacity = (
        prompt.shape[1] + new_tokens
        if window is None
        else min(window, prompt.shape[1] + new_tokens)
    )

    extend = donating_extend(model)

    def prefill(context):
        cache = model.init_cache(params, context.shape[0], capacity)
        logits, cache = extend(params, context, cache)
        return logits[:, -1], cache

    step = decode_step(model, temperature=temperature, top_k=top_k, compile=compile)
    context = tokens if window is None else tokens[:, -window:]
    logits, cache = prefill(context)
    filled = context.shape[1]
    nxt = sample_logits(logits, keys[0], temperature=temperature, top_k=top_k)[:, None]
    pieces = [tokens, nxt]
    for i in range(1, new_tokens):
        if filled == capacity:  # the window is full: restart from its second half
            tokens = torch.cat(pieces, 1)
            pieces = [tokens]
            logits, cache = prefill(tokens[:, -max(capacity // 2, 1) :])
            filled = min(capacity // 2, tokens.shape[1])
            nxt = sample_logits(logits, keys[i], temperature=temperature, top_k=top_k)[:, None]
        else:
            nxt, cache = step(params, nxt, cache, keys[i])
            filled += 1
        pieces.append(nxt)
    return torch.cat(pieces, 1)
