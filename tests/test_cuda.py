"""Checks that need a CUDA device (marker ``cuda``; they skip on the CPU, saying so):
the compiled step, the bf16 step, a one-rank NCCL group, cached decoding.
``python benchmarks/gpu_check.py`` runs them and measures a GPT-2-small step."""

from __future__ import annotations

import datetime
import socket

import attrs
import pytest
import torch

from seqfunc import optim, rng
from seqfunc.inference.generate import generate
from seqfunc.models.gpt import GPT, GPTConfig
from seqfunc.tasks.language_model import LanguageModelTask
from seqfunc.train import init_state, make_step
from seqfunc.tree import tree_map

pytestmark = pytest.mark.cuda
VOCAB = 97


def gpt_on_cuda(**overrides):
    config = GPTConfig(VOCAB, context=64, d_model=64, heads=4, layers=2, dropout=0.1)
    model = GPT(attrs.evolve(config, **overrides))
    params = tree_map(lambda t: t.cuda(), model.init(rng.key(0)))
    tokens = (rng.random_bits(rng.key(1), (8, 65)) % VOCAB).long().cuda()
    return model, params, {"inputs": tokens[:, :-1], "targets": tokens[:, 1:]}


def train(precision="fp32", compile=False, steps=3, all_reduce=None):
    model, params, batch = gpt_on_cuda()
    optimizer = optim.flatten(optim.chain(optim.clip_by_global_norm(1.0), optim.adam(1e-3)))
    step = make_step(
        LanguageModelTask().loss_fn(model),
        optimizer,
        compile=compile,
        device="cuda",
        precision=precision,
        all_reduce=all_reduce,
    )
    state, losses = init_state(params, optimizer), []
    for i in range(steps):
        state, metrics = step(state, batch, rng.fold_in(rng.key(2), i).cuda())
        losses.append(float(metrics["loss"]))
    return state, losses


def test_compiled_step_matches_eager_on_cuda():
    _, eager = train(compile=False)
    _, compiled = train(compile=True)
    torch.testing.assert_close(compiled, eager, rtol=1e-3, atol=1e-4)


def test_compiled_bf16_step_is_finite_and_close_to_fp32_on_cuda():
    state, bf16 = train("bf16", compile=True)
    _, fp32 = train("fp32", compile=False)
    assert all(torch.isfinite(torch.tensor(bf16)))
    torch.testing.assert_close(bf16, fp32, rtol=0.02, atol=0)
    assert all(leaf.dtype == torch.float32 for leaf in optim._leaves(state.params))


def test_one_rank_nccl_group_steps_as_one_process():
    import torch.distributed as dist

    from seqfunc.runs.distributed import all_reduce_sum

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group(
        "nccl",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=0,
        world_size=1,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        _, grouped = train(all_reduce=all_reduce_sum)
    finally:
        dist.destroy_process_group()
    _, alone = train()
    torch.testing.assert_close(grouped, alone, rtol=1e-5, atol=0)


def test_cached_decoding_equals_decoding_without_cache_on_cuda():
    model, params, batch = gpt_on_cuda(dropout=0.0)
    prompt = batch["inputs"][:2, :5]
    cached = generate(model, params, prompt, 20, key=rng.key(3).cuda(), temperature=1.0)
    plain = generate(
        model, params, prompt, 20, key=rng.key(3).cuda(), temperature=1.0, use_cache=False
    )
    assert torch.equal(cached, plain)
