"""Sampling from language models: temperature (0 = argmax), top-k and top-p (nucleus), with or
without a KV cache; batches of prompts of different lengths, end-of-sequence ids and stops.

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
from collections.abc import Callable, Sequence

import torch

from seqfunc import rng
from seqfunc.compiled import compile_fn

#: inductor options of the compiled decoding step: a C++ wrapper calls its ~30 kernels, where
#: the default Python wrapper costs about a quarter of a one-token step of a small GPT
DECODE_COMPILE_OPTIONS = {"cpp_wrapper": True}

#: model -> {sampling setting: compiled decoding step}; entries go with their model
_COMPILED_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def check_sampling(temperature: float, top_k: int | None, top_p: float | None = None) -> None:
    """Raise ``ValueError`` for a negative temperature, a top-k below 1 or a top-p outside
    ``(0, 1]``."""
    if not temperature >= 0:  # also rejects NaN
        raise ValueError(f"temperature must be >= 0 (0 = argmax), got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")


def top_p_mask(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """``logits (b, V)`` -> bool ``(b, V)``: the nucleus of each row, the smallest set of the
    likeliest tokens whose probability reaches ``top_p`` (a token is kept while the mass of
    the tokens likelier than it is below ``top_p``)."""
    probs = torch.softmax(logits.float(), dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs
    keep_sorted = mass_before < top_p
    return torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)


def sample_logits(
    logits: torch.Tensor,
    key: rng.KeyArray,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """``logits (b, V)`` -> ids ``(b,)``: argmax when ``temperature == 0``, otherwise a draw
    from ``softmax(logits / temperature)`` restricted to the ``top_k`` largest logits, then to
    the nucleus of probability ``top_p`` (:func:`top_p_mask`; 1.0 keeps every token)."""
    check_sampling(temperature, top_k, top_p)
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        logits = logits.masked_fill(~top_p_mask(logits, top_p), float("-inf"))
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


def decode_step(model, *, compile: bool = False, **sampling) -> Callable:
    """``step(params, token (b, 1), cache, key) -> (next token (b, 1), cache')``: one cached
    position of ``model`` and the draw from its logits (``sampling``: the keyword arguments of
    :func:`sample_logits`); compiled once per model and sampling setting when ``compile``."""
    if compile:
        steps = _COMPILED_STEPS.setdefault(model, {})
        setting = tuple(sorted(sampling.items()))
        if setting not in steps:
            steps[setting] = compile_fn(
                decode_step(model, **sampling), dynamic=False, options=DECODE_COMPILE_OPTIONS
            )
        return steps[setting]
    extend = donating_extend(model)

    def step(params, token, cache, key):
        logits, cache = extend(params, token, cache)
        return sample_logits(logits[:, -1], key, **sampling)[:, None], cache

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
    top_p: float | None = None,
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
    Prompts of different lengths, end-of-sequence ids and stop conditions:
    :func:`generate_rows`.
    """
    check_sampling(temperature, top_k, top_p)
    if prompt.ndim != 2 or prompt.shape[1] < 1:
        raise ValueError(
            f"prompt must be (batch, length >= 1) ids, got shape {tuple(prompt.shape)}"
        )
    lengths = torch.full((prompt.shape[0],), prompt.shape[1], device=prompt.device)
    sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p)
    return _decode(
        model, params, prompt, lengths, new_tokens, key, sampling, use_cache, window, compile
    )


@torch.no_grad()
def generate_rows(
    model,
    params,
    prompts: Sequence[Sequence[int]],
    new_tokens: int,
    *,
    key: rng.KeyArray,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_ids: Sequence[int] = (),
    stop: Callable[[list[int]], bool] | None = None,
    use_cache: bool = True,
    window: int | None = None,
    compile: bool = False,
    device: torch.device | str | None = None,
) -> list[list[int]]:
    """A batch of prompts of any lengths -> each prompt followed by at most ``new_tokens``
    sampled ids; a row ends after an id in ``eos_ids`` (kept) or once ``stop(its new ids)`` is
    true.

    The rows advance together, one position per step, from the shortest prompt's end: a row
    still inside its prompt takes its prompt's next id instead of the sampled one. So every row
    sees exactly its own tokens at its own positions, with no padding or mask, and greedy
    decoding gives each row what generating its prompt alone gives (while the context fits in
    ``window``). The price: a longer prompt's tail is fed one position per step instead of in
    the prefill. Other arguments: :func:`generate`.
    """
    check_sampling(temperature, top_k, top_p)
    if not prompts or any(len(p) < 1 for p in prompts):
        raise ValueError("prompts must be a non-empty list of non-empty id lists")
    width = max(len(p) for p in prompts)
    padded = torch.zeros(len(prompts), width, dtype=torch.long, device=device)
    for row, ids in enumerate(prompts):
        padded[row, : len(ids)] = torch.as_tensor(list(ids), dtype=torch.long)
    lengths = torch.tensor([len(p) for p in prompts], device=device)
    eos = frozenset(int(i) for i in eos_ids)
    rows = [list(map(int, p)) for p in prompts]
    open_rows = set(range(len(rows)))

    def ended(position: int, token: torch.Tensor) -> bool:
        """Appends the ids chosen at ``position`` to the open rows; True once all have ended."""
        for row, tid in enumerate(token[:, 0].tolist()):
            if row not in open_rows or position < len(prompts[row]):
                continue
            rows[row].append(tid)
            new = rows[row][len(prompts[row]) :]
            if tid in eos or len(new) >= new_tokens or (stop is not None and stop(new)):
                open_rows.discard(row)
        return not open_rows

    sampling = dict(temperature=temperature, top_k=top_k, top_p=top_p)
    _decode(
        model,
        params,
        padded,
        lengths,
        width - int(lengths.min()) + new_tokens,
        key,
        sampling,
        use_cache,
        window,
        compile,
        ended=ended,
    )
    return rows


def _decode(
    model,
    params,
    prompt: torch.Tensor,
    lengths: torch.Tensor,
    steps: int,
    key: rng.KeyArray,
    sampling: dict,
    use_cache: bool,
    window: int | None,
    compile: bool,
    ended: Callable[[int, torch.Tensor], bool] | None = None,
) -> torch.Tensor:
    """The decoding loop: ``prompt (b, w)`` right-padded ids with ``lengths (b,)`` -> ``(b,
    min(lengths) + steps)`` ids, where each position before a row's length is its prompt's id
    and every other one a draw. Step ``s`` draws with ``fold_in(key, s)``. ``ended(position,
    ids (b, 1))`` is told each position's ids and stops the loop by returning True."""
    window = window or max_positions(model)
    start = int(lengths.min())
    keys = rng.fold_in_range(key, steps).unbind(0)

    def choose(s: int, drawn: torch.Tensor) -> torch.Tensor:
        position = start + s
        if position < prompt.shape[1]:
            forced = lengths[:, None] > position
            drawn = torch.where(forced, prompt[:, position : position + 1], drawn)
        return drawn

    def done(s: int, token: torch.Tensor) -> bool:
        return ended is not None and ended(start + s, token)

    pieces = [prompt[:, :start]]
    if steps < 1:
        return pieces[0]
    if not (use_cache and supports_cache(model)):
        for s in range(steps):
            tokens = torch.cat(pieces, 1)
            context = tokens if window is None else tokens[:, -window:]
            logits = model.apply(params, context)[:, -1]
            pieces = [tokens, choose(s, sample_logits(logits, keys[s], **sampling)[:, None])]
            if done(s, pieces[-1]):
                break
        return torch.cat(pieces, 1)

    capacity = start + steps if window is None else min(window, start + steps)
    extend = donating_extend(model)

    def prefill(context):
        cache = model.init_cache(params, context.shape[0], capacity)
        logits, cache = extend(params, context, cache)
        return logits[:, -1], cache

    step = decode_step(model, compile=compile, **sampling)
    context = pieces[0] if window is None else pieces[0][:, -window:]
    logits, cache = prefill(context)
    filled = context.shape[1]
    nxt = choose(0, sample_logits(logits, keys[0], **sampling)[:, None])
    pieces.append(nxt)
    for s in range(1, steps):
        if done(s - 1, nxt):
            break
        if filled == capacity:  # the window is full: restart from its second half
            tokens = torch.cat(pieces, 1)
            pieces = [tokens]
            logits, cache = prefill(tokens[:, -max(capacity // 2, 1) :])
            filled = min(capacity // 2, tokens.shape[1])
            nxt = sample_logits(logits, keys[s], **sampling)[:, None]
        else:
            nxt, cache = step(params, nxt, cache, keys[s])
            filled += 1
        nxt = choose(s, nxt)
        pieces.append(nxt)
    else:
        done(steps - 1, nxt)
    return torch.cat(pieces, 1)
