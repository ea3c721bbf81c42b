"""IMDb readers (folder, .tar.gz, CSV), bad input, tokenising, vocab, synthetic sets, bucketing."""

import io
import tarfile
from collections import Counter

import pytest
from conftest import shared_file
from hypothesis import given, settings
from hypothesis import strategies as st

from seqfunc.config import ConfigError
from seqfunc.data.bucketing import bucket_batches, count_batches, padded_width
from seqfunc.data.classification import SPECIALS, frequency_vocab, tokenize
from seqfunc.data.imdb import DataError, ImdbConfig, ImdbDataset
from seqfunc.data.synthetic import ImdbSynthDataset, SyntheticConfig, XorDataset

REVIEWS = {
    "train/pos/0_9.txt": "A great, GREAT film!<br /><br />Loved it.",
    "train/pos/1_8.txt": "Wonderful acting and a great story",
    "train/neg/0_2.txt": "Terrible. Just terrible; 0/10",
    "train/neg/1_3.txt": "Boring film, bad acting",
    "test/pos/0_10.txt": "great fun",
    "test/neg/0_1.txt": "bad bad bad",
}


def write_folder(root):
    for name, text in REVIEWS.items():
        path = root / "aclImdb" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "aclImdb"


def write_archive(path, reviews=REVIEWS, raw=None):
    with tarfile.open(path, "w:gz") as archive:
        items = {n: t.encode("utf-8") for n, t in reviews.items()} | (raw or {})
        for name, data in items.items():
            info = tarfile.TarInfo(f"aclImdb/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def small(path, **options):
    return ImdbDataset(ImdbConfig(path=str(path), val_size=1, **options))


def all_examples(dataset, split):
    seqs, labels = dataset.splits_data[split]
    return sorted((dataset.decode(s), label) for s, label in zip(seqs, labels))


def test_tokenize_as_the_seed():
    assert tokenize("A great, GREAT film!<br /><br />Loved it. 10/10 café") == [
        "a",
        "great",
        "great",
        "film",
        "loved",
        "it",
        "café",
    ]
    assert tokenize("don't") == ["dont"]


def test_vocab_specials_frequency_order_and_cap():
    vocab = frequency_vocab([["b", "a", "b"], ["c", "b", "a"]])
    assert vocab.idx_to_token == [*SPECIALS, "b", "a", "c"]
    capped = frequency_vocab([["b", "a", "b"], ["c", "b", "a"]], max_size=5)
    assert capped.idx_to_token == [*SPECIALS, "b"] and capped["c"] == capped[".unk"]
    with pytest.raises(ConfigError, match="vocab_size"):
        frequency_vocab([["a"]], max_size=4)


def test_folder_and_archive_give_the_same_data(tmp_path):
    folder = small(write_folder(tmp_path / "f"))
    archive = small(write_archive(tmp_path / "imdb.tar.gz"))
    for split in ("train", "val", "test"):
        assert all_examples(folder, split) == all_examples(archive, split)
    assert folder.num_examples("train") == 3 and folder.num_examples("val") == 1
    # The vocabulary comes from the training reviews only: "fun" is unknown.
    assert all_examples(folder, "test") == [("bad bad bad", 0), ("great .unk", 1)]


def test_final_uses_the_test_split(tmp_path):
    data = small(write_archive(tmp_path / "imdb.tar.gz"), final=True)
    assert data.num_examples("train") == 4
    assert all_examples(data, "val") == all_examples(data, "test")


def test_splits_are_sorted_by_length(tmp_path):
    data = small(write_folder(tmp_path))
    lengths = [len(s) for s in data.splits_data["train"][0]]
    assert lengths == sorted(lengths)


def test_csv_sample_reads_all_1000_reviews():
    data = ImdbDataset(ImdbConfig(path=str(shared_file("imdb/imdb_sample.csv")), val_size=200))
    assert data.num_examples("train") == 800 and data.num_examples("val") == 200
    labels = data.splits_data["train"][1] + data.splits_data["val"][1]
    assert Counter(labels) == {1: 502, 0: 498}
    # Bytes literals decoded: no stray "b" token from b"..." and no escape residue.
    first = data.decode(data.splits_data["train"][0][-1])
    assert "xc3" not in first
    clean = ImdbDataset(
        ImdbConfig(path=str(shared_file("imdb/imdb_sample.clean.csv")), val_size=200)
    )
    assert all_examples(clean, "val") == all_examples(data, "val")


@pytest.mark.parametrize(
    "content, where, message",
    [
        ("text,sentiment\nfine,1\n", ":1:", "no column 'review'"),
        ("review,sentiment\ngood film,1\n,0\n", ":3:", "empty"),
        ("review,sentiment\ngood film,1\nbad film,maybe\n", ":3:", "label 'maybe'"),
        ("review,sentiment\ngood film,1\nbad film\n", ":3:", "fewer fields"),
    ],
)
def test_bad_csv_rows_name_file_and_line(tmp_path, content, where, message):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message) as err:
        small(path)
    assert f"{path}{where}" in str(err.value)


def test_non_utf8_csv_names_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"review,sentiment\ngood film,1\nbad \xff film,0\n")
    with pytest.raises(DataError, match=rf"{path}:3: bytes that are not UTF-8"):
        small(path)


def test_non_utf8_bytes_literal_names_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("review,sentiment\ngood film,1\n\"b'bad \\xff film'\",0\nok film,0\n")
    with pytest.raises(DataError, match=rf"{path}:3: bytes that are not UTF-8"):
        small(path)


def test_bad_archive_member_is_named_or_skipped_with_a_count(tmp_path, capsys):
    raw = {"train/neg/2_1.txt": b"bad \xff", "train/pos/2_9.txt": b"!!! 123"}
    path = write_archive(tmp_path / "imdb.tar.gz", raw=raw)
    with pytest.raises(DataError, match="aclImdb/train/(neg/2_1|pos/2_9).txt"):
        small(path)
    data = small(path, bad_rows="skip")
    assert data.num_examples("train") + data.num_examples("val") == 4
    assert len(data.skipped) == 2
    assert "skipped 2 bad row(s)" in capsys.readouterr().err


def test_missing_path_names_the_option(tmp_path):
    with pytest.raises(DataError, match="path="):
        small(tmp_path / "nowhere.tar.gz")
    with pytest.raises(ConfigError, match="bad_rows"):
        ImdbConfig(bad_rows="ignore")


def test_synthetic_sets_follow_the_seed():
    synth = ImdbSynthDataset(SyntheticConfig(train_size=200, val_size=50))
    for ids, label in zip(*synth.splits_data["train"]):
        words = synth.vocab.to_tokens(ids)
        assert len(words) == 6 and words[0] == "this"
        assert label == int((words[4] == "very") == (words[5] == "great"))
    xor = XorDataset(SyntheticConfig(train_size=200, val_size=50))
    for ids, label in zip(*xor.splits_data["train"]):
        a, b = xor.vocab.to_tokens(ids)
        assert label == int(a != b)
    again = XorDataset(SyntheticConfig(train_size=200, val_size=50))
    assert again.splits_data == xor.splits_data
    assert xor.splits_data["train"] != xor.splits_data["val"]


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 300), min_size=1, max_size=80),
    batch_size=st.integers(1, 16),
    budget=st.one_of(st.none(), st.integers(1, 2000)),
    multiple=st.integers(1, 64),
    epoch=st.integers(0, 3),
)
def test_buckets_cover_every_example_once_with_few_widths(
    lengths, batch_size, budget, multiple, epoch
):
    max_len = 256
    batches = bucket_batches(
        lengths,
        batch_size=batch_size,
        max_len=max_len,
        pad_multiple=multiple,
        token_budget=budget,
        shuffle=True,
        seed=1,
        epoch=epoch,
    )
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert len(batches) == count_batches(
        lengths, batch_size=batch_size, max_len=max_len, pad_multiple=multiple, token_budget=budget
    )
    for batch in batches:
        widths = {padded_width(lengths[i], max_len=max_len, pad_multiple=multiple) for i in batch}
        assert len(widths) == 1  # a batch never mixes widths
        width = widths.pop()
        assert len(batch) <= batch_size
        assert budget is None or len(batch) == 1 or len(batch) * width <= budget
    assert batches == bucket_batches(
        lengths,
        batch_size=batch_size,
        max_len=max_len,
        pad_multiple=multiple,
        token_budget=budget,
        shuffle=True,
        seed=1,
        epoch=epoch,
    )


def test_batches_pad_truncate_and_keep_labels(tmp_path):
    data = small(write_folder(tmp_path), max_len=4, pad_multiple=3)
    seen = Counter()
    for batch in data.batches("train", 2, epoch=1):
        assert (
            batch["tokens"].shape[1] in (3, 4) and batch["tokens"].dtype.is_floating_point is False
        )
        seen.update(batch["label"].tolist())
    assert sum(seen.values()) == 3
