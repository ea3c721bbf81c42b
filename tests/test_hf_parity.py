"""Parity with Hugging Face ``transformers``: tiny random GPT-2 and Llama-family models built
offline (config -> model -> ``save_pretrained``), imported, run, exported and generated from.
Logits agree to 1e-4 in fp32; greedy generation gives the same tokens, with and without the
cache."""

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqfunc import rng
from seqfunc.inference.generate import generate
from seqfunc.pretrained import export_run, import_folder
from seqfunc.runs.load import load_run

transformers = pytest.importorskip("transformers", reason="parity needs transformers (seqfunc[hf])")
tokenizers = pytest.importorskip("tokenizers", reason="needs tokenizers (seqfunc[hf])")

VOCAB = 96
TOLERANCE = 1e-4
transformers.logging.set_verbosity_error()


def word_tokenizer(folder, vocab=VOCAB):
    """A tiny ``tokenizer.json``: whitespace words w0 .. w{vocab-1}."""
    tok = tokenizers.Tokenizer(
        tokenizers.models.WordLevel({f"w{i}": i for i in range(vocab)}, unk_token="w0")
    )
    tok.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    tok.decoder = tokenizers.decoders.WordPiece()
    tok.save(str(folder / "tokenizer.json"))


def llama_family(kind, *, kv_heads, tie, bias, rope, head_dim, seed):
    torch.manual_seed(seed)
    common = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=kv_heads,
        max_position_embeddings=128,
        tie_word_embeddings=tie,
        rms_norm_eps=1e-5,
        rope_theta=500.0,
        bos_token_id=1,
        eos_token_id=2,
    )
    if rope is not None:
        common["rope_scaling"] = rope
    if kind == "llama":
        config = transformers.LlamaConfig(
            **common, attention_bias=bias, mlp_bias=bias, head_dim=head_dim
        )
        return transformers.LlamaForCausalLM(config)
    if kind == "mistral":
        config = transformers.MistralConfig(**common, sliding_window=None, head_dim=head_dim)
        return transformers.MistralForCausalLM(config)
    return transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**common))


def gpt2(*, tie, n_inner, activation, seed):
    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        vocab_size=VOCAB,
        n_positions=128,
        n_embd=32,
        n_layer=2,
        n_head=4,
        n_inner=n_inner,
        activation_function=activation,
        tie_word_embeddings=tie,
        bos_token_id=1,
        eos_token_id=2,
    )
    return transformers.GPT2LMHeadModel(config)


def saved(model, folder):
    model.eval()
    model.save_pretrained(folder)
    word_tokenizer(folder)
    return folder


def hf_logits(model, tokens):
    with torch.no_grad():
        return model(tokens).logits


def check_import_and_export(model, tmp_path, tokens):
    """Logits of the import and of the export's ``from_pretrained`` equal the original's."""
    run = load_run(import_folder(saved(model, tmp_path / "hf"), tmp_path / "run", log=print))
    reference = hf_logits(model, tokens)
    with torch.no_grad():
        ours = run.model.apply(run.params, tokens)
    assert (ours - reference).abs().max() <= TOLERANCE
    export_run(tmp_path / "run", tmp_path / "back", log=print)
    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "back").eval()
    assert (hf_logits(back, tokens) - reference).abs().max() <= TOLERANCE
    assert (tmp_path / "back" / "tokenizer.json").is_file()
    return run


ROPE = st.sampled_from(
    [
        None,
        {"rope_type": "linear", "factor": 2.0},
        {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16,
        },
    ]
)


@settings(max_examples=10, deadline=None)
@given(
    kind=st.sampled_from(["llama", "mistral", "qwen2"]),
    kv_heads=st.sampled_from([1, 2, 4]),
    tie=st.booleans(),
    bias=st.booleans(),
    rope=ROPE,
    head_dim=st.sampled_from([None, 16]),
    t=st.integers(1, 24),
    seed=st.integers(0, 999),
)
def test_llama_family_logits_match_transformers(
    tmp_path_factory, kind, kv_heads, tie, bias, rope, head_dim, t, seed
):
    model = llama_family(
        kind, kv_heads=kv_heads, tie=tie, bias=bias, rope=rope, head_dim=head_dim, seed=seed
    )
    tokens = rng.random_bits(rng.key(seed), (2, t)) % VOCAB
    check_import_and_export(model, tmp_path_factory.mktemp("llama"), tokens)


@settings(max_examples=6, deadline=None)
@given(
    tie=st.booleans(),
    n_inner=st.sampled_from([None, 48]),
    activation=st.sampled_from(["gelu_new", "gelu"]),
    t=st.integers(1, 24),
    seed=st.integers(0, 999),
)
def test_gpt2_logits_match_transformers(tmp_path_factory, tie, n_inner, activation, t, seed):
    model = gpt2(tie=tie, n_inner=n_inner, activation=activation, seed=seed)
    tokens = rng.random_bits(rng.key(seed), (2, t)) % VOCAB
    check_import_and_export(model, tmp_path_factory.mktemp("gpt2"), tokens)


def hf_greedy(model, prompt, new_tokens, use_cache):
    with torch.no_grad():
        return model.generate(
            prompt,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            use_cache=use_cache,
            eos_token_id=None,
            pad_token_id=0,
            attention_mask=torch.ones_like(prompt),
        )


@pytest.mark.parametrize(
    "build",
    [
        lambda: llama_family(
            "llama", kv_heads=2, tie=False, bias=False, rope=None, head_dim=None, seed=1
        ),
        lambda: llama_family(
            "qwen2", kv_heads=1, tie=True, bias=True, rope=None, head_dim=None, seed=2
        ),
        lambda: gpt2(tie=True, n_inner=None, activation="gelu_new", seed=3),
    ],
    ids=["llama", "qwen2", "gpt2"],
)
def test_greedy_generation_matches_transformers(tmp_path, build):
    model = build()
    run = load_run(import_folder(saved(model, tmp_path / "hf"), tmp_path / "run", log=print))
    prompt = torch.tensor([[5, 17, 42, 8, 3]])
    for use_cache in (True, False):
        ours = generate(
            run.model, run.params, prompt, 64, key=rng.key(0), temperature=0, use_cache=use_cache
        )
        assert ours.tolist() == hf_greedy(model, prompt, 64, use_cache).tolist(), use_cache


def test_bf16_weights_stay_bf16_unless_asked(tmp_path):
    model = llama_family(
        "llama", kv_heads=2, tie=False, bias=False, rope=None, head_dim=None, seed=4
    )
    model.to(torch.bfloat16)
    saved(model, tmp_path / "hf")
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["architectures"]
    kept = load_run(import_folder(tmp_path / "hf", tmp_path / "kept", log=print))
    assert {p.dtype for p in kept.params["layers"][0]["attn"]["q"].values()} == {torch.bfloat16}
    cast = load_run(import_folder(tmp_path / "hf", tmp_path / "cast", dtype="float32", log=print))
    assert cast.params["embed"]["weight"].dtype == torch.float32
    tokens = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        logits = kept.model.apply(kept.params, tokens)
    assert logits.dtype == torch.bfloat16
    reference = hf_logits(model, tokens).float()
    assert (logits.float() - reference).abs().max() < 0.1  # bf16 rounding, not a wrong model
