"""Sampling: temperature, top-k, keys, cache/no-cache agreement, and the CLI's bad input."""

import contextlib
import io
import subprocess

import pytest
import torch

from seqfunc import rng
from seqfunc.cli import main
from seqfunc.inference.generate import generate, sample_logits
from seqfunc.models.gpt import GPT, GPTConfig
from seqfunc.models.lstm_lm import LSTMLM, LSTMLMConfig
from seqfunc.testing.invariants import no_graph_breaks


def test_temperature_zero_is_argmax_and_top_k_one_too():
    logits = rng.normal(rng.key(0), (4, 10))
    assert torch.equal(sample_logits(logits, rng.key(1), temperature=0), logits.argmax(-1))
    assert torch.equal(
        sample_logits(logits, rng.key(2), temperature=1.0, top_k=1), logits.argmax(-1)
    )


def test_sampling_follows_the_distribution_and_top_k():
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]])).expand(4000, 3)
    draws = sample_logits(logits, rng.key(3))
    freq = torch.bincount(draws, minlength=3).float() / 4000
    torch.testing.assert_close(freq, torch.tensor([0.7, 0.2, 0.1]), atol=0.03, rtol=0)
    assert set(sample_logits(logits, rng.key(4), top_k=2).tolist()) == {0, 1}


def test_negative_temperature_is_refused():
    with pytest.raises(ValueError, match="temperature"):
        sample_logits(torch.zeros(1, 3), rng.key(0), temperature=-0.5)


@pytest.mark.parametrize(
    "model",
    [
        GPT(GPTConfig(vocab_size=13, context=40, d_model=16, heads=2, layers=2)),
        GPT(
            GPTConfig(
                vocab_size=13, context=8, d_model=16, heads=2, layers=1, positions="sinusoidal"
            )
        ),
        LSTMLM(LSTMLMConfig(vocab_size=13, d_embed=8, hidden=8, layers=1)),
    ],
)
def test_cached_and_uncached_generation_agree(model):
    params = model.init(rng.key(0))
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    kwargs = dict(key=rng.key(7), temperature=0.9, top_k=5)
    window = None if isinstance(model, LSTMLM) else 40
    a = generate(model, params, prompt, 20, use_cache=True, window=window, **kwargs)
    b = generate(model, params, prompt, 20, use_cache=False, window=window, **kwargs)
    assert a.shape == (2, 23) and torch.equal(a[:, :3], prompt)
    assert torch.equal(a, b)
    assert torch.equal(
        a, generate(model, params, prompt, 20, use_cache=True, window=window, **kwargs)
    )


def test_learned_positions_generate_past_the_window():
    model = GPT(GPTConfig(vocab_size=7, context=8, d_model=8, heads=2, layers=1))
    out = generate(model, model.init(rng.key(0)), torch.tensor([[1, 2]]), 30, key=rng.key(1))
    assert out.shape == (1, 32)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    from seqfunc.runs import TrainConfig, fit

    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(
        dataset="toy_grammar",
        model="gpt",
        steps=3,
        batch_size=4,
        eval_every=3,
        examples=1,
        dataset_options=dict(n_train=2000, n_val=500, context=16, eval_slices=8),
        model_options=dict(d_model=8, heads=2, layers=1),
    )
    fit(cfg, out, progress=False, log=lambda s: None)
    return out


def _cli(*args):
    """Run ``seqfunc ARGS`` in-process (its own error handling included): (code, out, err)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_cli_generate_and_bad_input(toy_run):
    ok = _cli(
        "generate", str(toy_run), "--prompt", "the cat", "--tokens", "10", "--temperature", "0"
    )
    assert ok.returncode == 0 and ok.stdout.startswith("the cat")
    for args, message in [
        (["--prompt", "the cat€"], "not in the toy_grammar vocabulary"),
        (["--temperature", "-1"], "--temperature must be >= 0"),
        (["--top-k", "0"], "--top-k must be >= 1"),
    ]:
        bad = _cli("generate", str(toy_run), *args)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr


def test_cli_train_on_non_utf8_file(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"To be, or not \xe9 to be\n" * 10)
    result = _cli(
        "train", "shakespeare", "-d", f"path={bad}", "--steps", "1", "--out", str(tmp_path / "r")
    )
    assert result.returncode == 2 and "not UTF-8" in result.stderr and "byte 14" in result.stderr
    assert "Traceback" not in result.stderr


def test_compiled_decoding_gives_the_eager_tokens():
    """The compiled one-token step (fixed cache shapes) samples what the eager step does,
    across a window refill, sampling with temperature and top-k."""
    model = GPT(GPTConfig(vocab_size=11, context=12, d_model=16, heads=2, layers=1))
    params = model.init(rng.key(0))
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    run = lambda compile: generate(  # noqa: E731
        model, params, prompt, 20, key=rng.key(1), temperature=0.9, top_k=5, compile=compile
    )
    with no_graph_breaks("the compiled decoding step"):
        compiled = run(True)
    assert torch.equal(compiled, run(False))
