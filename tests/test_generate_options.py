"""Generation options: top-p (nucleus) sampling, batches of prompts of different lengths,
end-of-sequence ids and stop conditions."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqfunc import rng
from seqfunc.cli import main
from seqfunc.inference.generate import generate, generate_rows, sample_logits, top_p_mask
from seqfunc.models.gpt import GPT, GPTConfig
from seqfunc.models.llama import Llama, LlamaConfig

seeds = st.integers(0, 2**31 - 1)


@settings(max_examples=30, deadline=None)
@given(seed=seeds, temperature=st.floats(0.1, 3.0), top_k=st.none() | st.integers(1, 12))
def test_top_p_one_is_plain_sampling(seed, temperature, top_k):
    logits = rng.normal(rng.key(seed), (5, 12)) * 3
    key = rng.fold_in(rng.key(seed), 1)
    plain = sample_logits(logits, key, temperature=temperature, top_k=top_k)
    nucleus = sample_logits(logits, key, temperature=temperature, top_k=top_k, top_p=1.0)
    assert torch.equal(plain, nucleus)


@settings(max_examples=50, deadline=None)
@given(seed=seeds, top_p=st.floats(0.01, 1.0))
def test_top_p_keeps_the_smallest_set_that_reaches_p(seed, top_p):
    logits = rng.normal(rng.key(seed), (4, 16)) * 2
    keep = top_p_mask(logits, top_p)
    probs = torch.softmax(logits, -1)
    for row in range(logits.shape[0]):
        kept = probs[row][keep[row]]
        dropped = probs[row][~keep[row]]
        # the set reaches p, without its least likely member it does not, and it is the top
        assert kept.sum() >= top_p - 1e-6
        assert kept.sum() - kept.min() < top_p
        if dropped.numel():
            assert kept.min() >= dropped.max()


@settings(max_examples=20, deadline=None)
@given(seed=seeds, top_p=st.floats(0.05, 0.95))
def test_top_p_draws_only_from_the_nucleus(seed, top_p):
    logits = rng.normal(rng.key(seed), (64, 10)) * 2
    draws = sample_logits(logits, rng.key(seed + 1), top_p=top_p)
    assert top_p_mask(logits, top_p).gather(1, draws[:, None]).all()


def test_bad_top_p_is_refused():
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="top_p"):
            sample_logits(torch.zeros(1, 3), rng.key(0), top_p=bad)


MODELS = {
    "gpt": GPT(GPTConfig(vocab_size=17, context=64, d_model=16, heads=2, layers=2)),
    "llama": Llama(
        LlamaConfig(vocab_size=17, context=64, d_model=16, heads=4, kv_heads=2, layers=2)
    ),
}
PROMPTS = [[3], [1, 2, 3, 4, 5, 6], [7, 8, 9], [5, 5]]


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("name", list(MODELS))
def test_each_row_of_a_ragged_batch_is_its_prompt_alone(name, use_cache):
    model = MODELS[name]
    params = model.init(rng.key(0))
    kwargs = dict(key=rng.key(1), temperature=0, use_cache=use_cache)
    rows = generate_rows(model, params, PROMPTS, 9, **kwargs)
    for prompt, row in zip(PROMPTS, rows, strict=True):
        alone = generate(model, params, torch.tensor([prompt]), 9, **kwargs)
        assert row == alone[0].tolist()


def test_equal_prompts_give_what_generate_gives_with_sampling():
    model = MODELS["llama"]
    params = model.init(rng.key(0))
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    kwargs = dict(key=rng.key(5), temperature=0.8, top_p=0.9)
    rows = generate_rows(model, params, prompt.tolist(), 12, **kwargs)
    assert rows == generate(model, params, prompt, 12, **kwargs).tolist()
    assert rows == generate_rows(model, params, prompt.tolist(), 12, **kwargs)


@pytest.mark.parametrize("use_cache", [True, False])
def test_an_eos_id_or_a_stop_ends_its_row_only(use_cache):
    model = MODELS["gpt"]
    params = model.init(rng.key(0))
    kwargs = dict(key=rng.key(2), temperature=1.0, use_cache=use_cache)
    free = generate_rows(model, params, PROMPTS, 20, **kwargs)
    eos = free[1][len(PROMPTS[1]) + 3]  # the fourth new id of row 1
    ended = generate_rows(model, params, PROMPTS, 20, eos_ids=[eos], **kwargs)
    for prompt, full, row in zip(PROMPTS, free, ended, strict=True):
        new = full[len(prompt) :]
        cut = new.index(eos) + 1 if eos in new else len(new)
        assert row == prompt + new[:cut]
    assert len(ended[1]) == len(PROMPTS[1]) + 4
    stopped = generate_rows(model, params, PROMPTS, 20, stop=lambda new: len(new) >= 5, **kwargs)
    assert stopped == [p + f[len(p) : len(p) + 5] for p, f in zip(PROMPTS, free, strict=True)]


def _imported(tmp_path, name, **extra_config):
    from tests.test_pretrained_import import hf_folder

    folder, _ = hf_folder(tmp_path / f"{name}-hf", extra_config=extra_config)
    assert main(["import", str(folder), "--out", str(tmp_path / name)]) == 0
    return str(tmp_path / name)


def test_cli_batch_of_prompts_eos_and_stop(tmp_path, capsys):
    pytest.importorskip("tokenizers", reason="tokenizer.json needs tokenizers")
    greedy = ["--tokens", "8", "--temperature", "0"]
    run = _imported(tmp_path, "plain")
    capsys.readouterr()
    assert main(["generate", run, "--prompt", "w5 w6", "--prompt", "w1", *greedy]) == 0
    first, second = capsys.readouterr().out.strip().split("\n\n")
    assert first.split()[:2] == ["w5", "w6"] and len(first.split()) == 10
    assert second.split()[0] == "w1" and len(second.split()) == 9
    assert main(["generate", run, "--prompt", "w5 w6", *greedy]) == 0
    assert capsys.readouterr().out.strip() == first
    # the model's end-of-sequence id ends the row (and is not printed)
    eos = int(first.split()[4].removeprefix("w"))
    with_eos = _imported(tmp_path, "eos", eos_token_id=[eos])
    capsys.readouterr()
    assert main(["generate", with_eos, "--prompt", "w5 w6", *greedy]) == 0
    assert capsys.readouterr().out.split() == first.split()[:4]
    # a stop string cuts the new text before it
    stop = first.split()[3]
    assert main(["generate", run, "--prompt", "w5 w6", "--stop", stop, *greedy]) == 0
    assert capsys.readouterr().out.split() == first.split()[:3]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--top-p", "0"], "--top-p must be in (0, 1]"),
        (["--top-p", "1.5"], "--top-p must be in (0, 1]"),
        (["--top-k", "0"], "--top-k must be >= 1"),
        (["--stop", ""], "--stop: the stop string is empty"),
    ],
)
def test_cli_bad_sampling_options_are_one_line(argv, message, capsys):
    code = main(["generate", "no-such-run", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
