"""Translation data (pairs, preprocessing, splits, tokenizers), BLEU and ``seqfunc translate``."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch

from seqfunc.cli import main
from seqfunc.config import ConfigError
from seqfunc.data.sentence_pairs import parse_pairs, preprocess, read_pairs, split_by_source
from seqfunc.data.text_files import data_root
from seqfunc.data.text_tokenizers import BpeTokenizer, WordTokenizer
from seqfunc.data.translation import FraEngDataset, TranslationConfig
from seqfunc.inference.translate import corpus_bleu
from seqfunc.runs import TrainConfig, fit

SUBJECTS = {"i": "je", "you": "tu", "we": "nous"}
VERBS = {"see": "vois", "like": "aime", "want": "veux"}
OBJECTS = {
    "the cat": "le chat",
    "the dog": "le chien",
    "a book": "un livre",
    "the sea": "la mer",
    "bread": "du pain",
}


def toy_pairs() -> list[str]:
    """Generated ``English<TAB>French`` lines (conjugation ignored: a toy, not French)."""
    return [
        f"{s.capitalize()} {v} {o}.\t{fs.capitalize()} {fv} {fo}."
        for (s, fs), (v, fv), (o, fo) in itertools.product(
            SUBJECTS.items(), VERBS.items(), OBJECTS.items()
        )
    ]


@pytest.fixture
def pair_file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join(toy_pairs()) + "\n", encoding="utf-8")
    return path


def toy_config(path: Path, **overrides) -> TranslationConfig:
    return TranslationConfig(
        **{"path": str(path), "val_size": 5, "test_size": 5, "min_freq": 1, **overrides}
    )


def test_preprocess_is_d2l():
    assert preprocess("Va\u202f!") == "va !"
    assert preprocess("J'ai\xa0perdu.") == "j'ai perdu ."
    assert preprocess("Hello,world!Ok?") == "hello ,world !ok ?"  # d2l: a space before only
    assert preprocess("  ") == ""


def test_bad_lines_are_counted_with_line_numbers(tmp_path):
    text = "Go.\tVa !\nno tab here\n\tVide\nHi.\t \n\nRun!\tCours !\tattribution\n"
    pairs, bad = parse_pairs(text)
    assert pairs == [("Go.", "Va !"), ("Run!", "Cours !")]
    assert [(b.line, b.reason) for b in bad] == [
        (2, "no tab between the two sentences"),
        (3, "empty source side"),
        (4, "empty target side"),
    ]
    path = tmp_path / "bad.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"bad\.txt:2: no tab between the two sentences \(and 2 more"
    ):
        read_pairs(path, bad_lines="error")


def test_dataset_skips_and_counts_bad_lines(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join([*toy_pairs(), "oops", "Empty.\t"]) + "\n", encoding="utf-8")
    dataset = FraEngDataset(toy_config(path))
    assert dataset.stats["bad_lines"] == 2
    assert "bad_lines 2" in dataset.summary()
    with pytest.raises(ConfigError, match=r"pairs\.txt:46: no tab"):
        FraEngDataset(toy_config(path, bad_lines="error"))


def test_split_holds_out_source_sentences():
    pairs = [(f"s{i % 40}", f"t{i}") for i in range(100)]  # 40 sources, most with 2-3 targets
    splits = split_by_source(pairs, sizes={"val": 5, "test": 7}, seed=3)
    assert len(splits["val"]) == 5 and len(splits["test"]) == 7
    train_sources = {s for s, _ in splits["train"]}
    held = [s for split in ("val", "test") for s, _ in splits[split]]
    assert len(set(held)) == 12 and not train_sources & set(held)
    assert splits == split_by_source(pairs, sizes={"val": 5, "test": 7}, seed=3)
    assert splits != split_by_source(pairs, sizes={"val": 5, "test": 7}, seed=4)
    with pytest.raises(
        ConfigError, match="need 50 distinct source sentences but the data has only 40"
    ):
        split_by_source(pairs, sizes={"val": 25, "test": 25}, seed=0)


def test_batches_follow_the_seq2seq_layout(pair_file):
    dataset = FraEngDataset(toy_config(pair_file))
    assert dataset.num_examples("train") == len(toy_pairs()) - 10
    seen = 0
    for batch in dataset.batches("train", 8):
        src, tgt_in, tgt_out = batch["src"], batch["tgt_in"], batch["tgt_out"]
        assert src.shape == tgt_in.shape == tgt_out.shape and src.dtype == torch.int64
        assert (tgt_in[:, 0] == dataset.bos_id).all()
        assert torch.equal(
            tgt_in[:, 1:][tgt_out[:, 1:] != dataset.pad_id],
            tgt_out[:, :-1][tgt_out[:, 1:] != dataset.pad_id],
        )
        assert ((src == dataset.eos_id).sum(1) == 1).all() and (
            (tgt_out == dataset.eos_id).sum(1) == 1
        ).all()
        seen += len(src)
    assert seen == dataset.num_examples("train")
    first = [b["src"] for b in dataset.batches("train", 8, epoch=0)]
    again = [b["src"] for b in dataset.batches("train", 8, epoch=0)]
    other = [b["src"] for b in dataset.batches("train", 8, epoch=1)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


def test_max_words_and_reverse(pair_file, tmp_path):
    longer = tmp_path / "longer.txt"
    extra = [f"I see the big cat number {i}.\tJe vois le gros chat {i}." for i in range(7)]
    longer.write_text("\n".join([*toy_pairs(), *extra]), encoding="utf-8")
    short = FraEngDataset(toy_config(longer, max_words=4))
    assert short.stats["too_many_words"] == 7
    assert all(len(s.split()) <= 5 for s, _ in short.texts("train"))  # 4 words + "."
    reverse = FraEngDataset(toy_config(pair_file, reverse=True))
    assert "le" in reverse.source_vocab and "the" in reverse.target_vocab


def test_unknown_words_map_to_unk_and_empty_input_is_refused(pair_file):
    dataset = FraEngDataset(toy_config(pair_file))
    unk = dataset.source_vocab["<unk>"]
    ids = dataset.encode_source("I see the zebra.")
    assert ids[-1] == dataset.eos_id and ids[3] == unk and unk not in ids[:3]
    assert dataset.unknown_words("I see the zebra.") == ["zebra"]
    for empty in ("", "   "):
        with pytest.raises(ValueError, match="the sentence is empty"):
            dataset.encode_source(empty)


def test_word_tokenizer_roundtrip_and_min_freq():
    tok = WordTokenizer.train(["a b a", "c a b"], min_freq=2)
    assert tok.vocab.idx_to_token == ["<pad>", "<bos>", "<eos>", "<unk>", "a", "b"]
    assert tok.decode(tok.encode("a b c")) == "a b <unk>"
    assert WordTokenizer.from_json(json.loads(json.dumps(tok.to_json()))).vocab == tok.vocab


def test_bpe_tokenizer_roundtrip():
    pytest.importorskip("tokenizers")
    texts = [preprocess(line.split("\t")[1]) for line in toy_pairs()]
    tok = BpeTokenizer.train(texts, vocab_size=60)
    assert tok.vocab.idx_to_token[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    for text in texts[:10]:
        assert tok.decode(tok.encode(text)) == text
    again = BpeTokenizer.from_json(json.loads(json.dumps(tok.to_json())))
    assert again.encode(texts[3]) == tok.encode(texts[3])
    assert tok.unknown_words("je vois la zèbre") == ["zèbre"]  # no 'z' or 'è' in training


def test_corpus_bleu_is_sacrebleu_and_never_credits_unk():
    pytest.importorskip("sacrebleu")
    refs = ["the cat sat on the mat .", "there is a dog in the garden ."]
    assert corpus_bleu(refs, refs) == pytest.approx(100.0)
    assert corpus_bleu(["xx yy zz ww vv uu", "qq rr ss tt oo pp"], refs) == pytest.approx(0.0)
    partial = corpus_bleu(["the cat sat on a mat .", "there is a dog in the house ."], refs)
    assert 0 < partial < 100
    # a word-level model writes <unk> where the reference has a rare word: no credit for it
    assert corpus_bleu(["the <unk> sat on the mat ."], ["the ocelot sat on the mat ."]) < 100
    with pytest.raises(ValueError, match="2 hypotheses but 1 references"):
        corpus_bleu(refs, refs[:1])


def test_shared_fra_eng_file():
    if not (data_root() / "fra-eng" / "fra.txt").exists():
        pytest.skip(f"no shared fra-eng data at {data_root() / 'fra-eng'}")
    dataset = FraEngDataset()
    assert [dataset.num_examples(s) for s in ("train", "val", "test")] == [121_531, 2_000, 2_000]
    assert dataset.stats["bad_lines"] == 0
    # words as written: preprocessing split ",.!?" off the word before ("100,000" -> "100 ,000")
    words = lambda text: [w for w in text.split() if w[0] not in ",.!?"]
    assert all(len(words(s)) <= 8 and len(words(t)) <= 8 for s, t in dataset.texts("test"))


def tiny_run(pair_file: Path, run_dir: Path, steps: int) -> Path:
    """A few steps of a tiny Transformer on the toy pairs, saved in ``run_dir``."""
    fit(
        TrainConfig(
            dataset="fra-eng",
            model="transformer",
            dataset_options={"path": str(pair_file), "val_size": 5, "test_size": 5, "min_freq": 1},
            model_options={
                "d_model": 16,
                "heads": 2,
                "encoder_layers": 1,
                "decoder_layers": 1,
                "d_ff": 16,
            },
            steps=steps,
            batch_size=8,
            eval_every=steps,
            examples=0,
        ),
        run_dir,
        progress=False,
        log=lambda _: None,
    )
    return run_dir


def test_train_then_translate_cli(pair_file, tmp_path, capsys):
    pytest.importorskip("sacrebleu")
    run_dir = tiny_run(pair_file, tmp_path / "run", steps=3)
    assert (run_dir / "tokenizers.json").exists()
    pair_file.unlink()  # the run translates from its own tokenizers, without the data file
    capsys.readouterr()
    assert (
        main(["translate", str(run_dir), "I see the cat.", "We like the zebra.", "--beam", "2"])
        == 0
    )
    out = capsys.readouterr()
    assert out.out.count("\n") == 2  # one line per sentence (an untrained model may say "")
    assert "not in the vocabulary, read as <unk>: zebra" in out.err

    assert main(["translate", str(run_dir), ""]) == 2
    assert "'': the sentence is empty" in capsys.readouterr().err
    assert main(["translate", str(run_dir), "--eval", "train"]) == 2
    assert "choose a held-out split: val, test" in capsys.readouterr().err


def test_translate_eval_prints_bleu_json(pair_file, tmp_path, capsys):
    pytest.importorskip("sacrebleu")
    run_dir = tiny_run(pair_file, tmp_path / "run", steps=2)
    capsys.readouterr()
    assert main(["translate", str(run_dir), "--eval", "test", "--beam", "1"]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["pairs"] == 5 and record["beam"] == 1 and 0 <= record["bleu"] <= 100


def test_train_recipe_per_model():
    from seqfunc.cli import build_parser
    from seqfunc.cli.train import resolve_config

    parse = lambda *argv: resolve_config(build_parser().parse_args(["train", "fra-eng", *argv]))
    transformer = parse()
    assert transformer.model == "transformer" and transformer.model_options["d_model"] == 128
    assert transformer.dataset_options == {"tokenizer": "bpe", "vocab_size": 4000}
    lstm = parse("--model", "rnn-seq2seq", "--steps", "7")
    assert lstm.model == "rnn-seq2seq" and lstm.model_options["cell"] == "lstm"
    assert lstm.model_options["teacher_forcing"] == 0.5 and lstm.steps == 7
    assert lstm.dataset_options == transformer.dataset_options  # the same data for both
    assert parse("--model", "rnn-seq2seq", "-m", "cell=gru").model_options["cell"] == "gru"
