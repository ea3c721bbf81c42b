"""Language-model datasets: random slices, the toy grammar, assignment 002's WikiText helpers."""

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqfunc import rng
from seqfunc.config import ConfigError
from seqfunc.data import wikitext
from seqfunc.data.random_slices import random_slices
from seqfunc.data.text_files import read_utf8
from seqfunc.data.toy_grammar import GRAMMAR, ToyGrammarConfig, ToyGrammarDataset, toy_text

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(10, 200), b=st.integers(1, 6), length=st.integers(1, 8), seed=st.integers(0, 99)
)
def test_random_slices_are_windows_shifted_by_one(n, b, length, seed):
    if n <= length + 1:
        return
    data = torch.arange(n) * 7
    batch = random_slices(data, rng.key(seed), b, length)
    assert batch["inputs"].shape == batch["targets"].shape == (b, length)
    assert torch.equal(batch["inputs"][:, 1:], batch["targets"][:, :-1])
    # consecutive values of data: each row is a contiguous window
    assert torch.all(batch["targets"] - batch["inputs"] == 7)
    assert not batch["inputs"].requires_grad
    assert torch.equal(random_slices(data, rng.key(seed), b, length)["inputs"], batch["inputs"])


def test_toy_grammar_sentences_use_only_grammar_words():
    words = {
        w
        for options in GRAMMAR.values()
        for o in options
        for w in o.split()
        if not w.startswith("_")
    }
    text = toy_text(2000, seed=0)
    assert len(text) >= 2000 and text.endswith(" . ")
    for sentence in text.split(" . ")[:-1]:
        assert set(sentence.split()) <= words, sentence
    assert toy_text(500, 0) == toy_text(500, 0) and toy_text(500, 0) != toy_text(500, 1)


def test_toy_dataset_batches_and_eval_slices_are_fixed():
    ds = ToyGrammarDataset(ToyGrammarConfig(n_train=3000, n_val=1000, context=16, eval_slices=10))
    train = next(iter(ds.batches("train", 4)))
    assert train["inputs"].shape == (4, 16)
    val1 = [b["inputs"] for b in ds.batches("val", 4)]
    val2 = [b["inputs"] for b in ds.batches("val", 4)]
    assert sum(v.shape[0] for v in val1) == 10 and all(
        torch.equal(a, b) for a, b in zip(val1, val2)
    )
    assert ds.decode(ds.encode("the cat")) == "the cat"
    with pytest.raises(ValueError, match="not in the"):
        ds.encode("the cat!")


def test_batchify_and_get_batch_as_seed_002():
    data = torch.arange(26)
    source = wikitext.batchify(data, 4)  # 6 rows x 4 streams, the last 2 ids dropped
    assert source.shape == (6, 4) and source[:, 1].tolist() == list(range(6, 12))
    x, y = wikitext.get_batch(source, 0, 2)
    assert x.shape == (2, 4) and y.shape == (8,)
    assert y.tolist() == source[1:3].reshape(-1).tolist()
    x, y = wikitext.get_batch(source, 4, 35)  # the last chunk is shorter
    assert x.shape == (1, 4)


def test_basic_english_matches_torchtext():
    assert wikitext.basic_english("Hello, World! It's (1.5) <unk>") == [
        "hello",
        ",",
        "world",
        "!",
        "it",
        "'",
        "s",
        "(",
        "1",
        ".",
        "5",
        ")",
        "<unk>",
    ]


FRAGMENTS = [
    "<br />",
    "<br \n/>",
    "It's",
    '"',
    ".",
    ",",
    "(",
    ")",
    "!",
    "?",
    ";",
    ":",
    " ",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "\x0b",
    "\x0c",
    "\x1c",
    "\u2028",
    "\u0130",
    "\u03a3",
    "Word",
]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS) | st.characters(), max_size=30).map("".join))
def test_tokenizing_a_whole_file_equals_basic_english_line_by_line(text):
    reference = []
    for line in text.splitlines():
        words = wikitext.basic_english(line)
        reference += words + [wikitext.EOS] if words else []
    assert wikitext.tokenize_lines(text) == reference


def test_wikitext_from_a_small_folder(tmp_path):
    (tmp_path / "wiki.valid.tokens").write_text(" = A = \n\n the cat sat . \n the dog sat . \n")
    (tmp_path / "wiki.test.tokens").write_text(" the bird sat . \n")
    ds = wikitext.WikiText2Dataset(wikitext.WikiText2Config(path=str(tmp_path), bptt=2))
    assert not ds.standard_split and ds.vocab.idx_to_token[0] == "<unk>"
    assert ds.decode(ds.data["val"].tolist()) == "the <unk> sat . <eos>"
    batches = list(ds.batches("train", 2))
    assert all(b["inputs"].shape == (2, 2) for b in batches)


def test_non_utf8_file_names_file_and_byte(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nline two \xff here\n")
    with pytest.raises(ConfigError, match=r"bad.txt: not UTF-8 text: byte 14 \(line 2\)"):
        read_utf8(bad)


def test_missing_path_names_the_option(tmp_path):
    from seqfunc.data.shakespeare import ShakespeareConfig, ShakespeareDataset

    with pytest.raises(ConfigError, match="path="):
        ShakespeareDataset(ShakespeareConfig(path=str(tmp_path / "nope.txt")))


@pytest.mark.skipif(
    not (DATA / "tinyshakespeare" / "input.txt").exists(), reason="shared data absent"
)
def test_shakespeare_shared_copy():
    from seqfunc.data.shakespeare import ShakespeareDataset

    ds = ShakespeareDataset()
    assert len(ds.vocab) == 65
    assert ds.data["train"].numel() + ds.data["val"].numel() == 1_115_394


def test_recipe_flag_selects_the_seed_recipe_and_rejects_unknown_names():
    from seqfunc.cli import UsageError, build_parser
    from seqfunc.cli.train import resolve_config

    parser = build_parser()
    seed = resolve_config(
        parser.parse_args(["train", "wikitext2", "--recipe", "seed", "--epochs", "2"])
    )
    assert (seed.model, seed.optimizer, seed.lr, seed.schedule, seed.step_size, seed.clip_norm) == (
        "transformer_lm",
        "sgd",
        5.0,
        "step",
        310,
        0.5,
    )
    assert seed.epochs == 2 and seed.model_options["d_model"] == 200
    default = resolve_config(parser.parse_args(["train", "wikitext2"]))
    assert default.model == "gpt" and default.optimizer == "adamw"
    with pytest.raises(UsageError, match="--recipe fast: dataset 'wikitext2' has no such recipe"):
        resolve_config(parser.parse_args(["train", "wikitext2", "--recipe", "fast"]))
