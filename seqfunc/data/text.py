"""``text``: a language model over any UTF-8 text file, or a folder of them.

``seqfunc train text -d path=notes.txt`` (then ``seqfunc generate RUN``). The text is read
whole (a folder: its files in path order, joined by a newline), the last ``val_fraction`` of it
is the validation split, and batches are random slices of ``context`` tokens
(:class:`seqfunc.data.char_lm.CharLMDataset`). What a token is (``unit``):

* ``char``: one Unicode character; the vocabulary is the file's set of characters;
* ``byte``: one byte of the UTF-8 encoding; 256 tokens, so any text can be a prompt;
* ``subword``: byte-pair pieces of a tokenizer trained on the training split
  (:class:`seqfunc.data.text_tokenizers.BpeTokenizer`, ``vocab_size`` entries, needs
  ``pip install 'seqfunc[translate]'``); each line ends in ``<eos>``, which decodes as a newline.

The vocabulary (or tokenizer) is saved in the run folder, so ``seqfunc generate`` and
``seqfunc predict`` work without the text file.

``path`` may also be a folder ``seqfunc prepare text`` wrote (it holds a ``manifest.json``;
:mod:`seqfunc.data.prepared`): the vocabulary and the split are the prepared ones, and batches
read their windows from the token shards on disk, so memory stays flat at any corpus size.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import attrs
import numpy as np
import torch

from seqfunc.config import one_of, positive, probability
from seqfunc.data import prepared
from seqfunc.data.char_lm import CharLMDataset, char_vocab, encode_text
from seqfunc.data.enwik8 import BYTE_VOCAB
from seqfunc.data.text_files import read_utf8, resolve_path
from seqfunc.data.text_tokenizers import EOS, TOKENIZERS, tokenizer_from_json
from seqfunc.data.vocab import Vocab
from seqfunc.errors import ConfigError, DataError
from seqfunc.serialization import read_json, write_json

UNITS = prepared.UNITS
VOCAB_FILE = "text_vocab.json"
#: The fewest training windows an epoch has (see :meth:`TextDataset.num_examples`).
MIN_EPOCH_WINDOWS = 1024


@attrs.frozen
class TextConfig:
    #: a UTF-8 text file, a folder of them (read in path order) or a folder seqfunc prepare
    #: wrote; required
    path: str | None = None
    #: what a token is: char, byte or subword (a BPE tokenizer trained on the file)
    unit: str = attrs.field(default="char", validator=one_of(UNITS))
    #: subword: entries of the trained tokenizer's vocabulary
    vocab_size: int = attrs.field(default=2000, validator=positive)
    #: tokens per training window (the model's context)
    context: int = attrs.field(default=64, validator=positive)
    #: the last fraction of the text held out for validation
    val_fraction: float = attrs.field(default=0.1, validator=[positive, probability])
    #: validation windows (fixed); None: one per token of the validation split, at most 2,000
    eval_slices: int | None = attrs.field(default=None, validator=positive)
    seed: int = 0


def read_text(path: Path) -> str:
    """A file's text, or a folder's files (recursively, sorted by path) joined by newlines.
    Empty files and empty folders raise a :class:`DataError` naming them."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise DataError(f"{path}: the folder holds no files (text expects UTF-8 text files)")
        texts = [read_utf8(f) for f in files]
        empty = [f for f, t in zip(files, texts) if not t.strip()]
        if len(empty) == len(files):
            raise DataError(f"{empty[0]}: empty text file (and so are the folder's other files)")
        return "\n".join(t for t in texts if t.strip())
    text = read_utf8(path)
    if not text.strip():
        raise DataError(f"{path}:1: empty text file (nothing to train on)")
    return text


class TextDataset(CharLMDataset):
    """Random-slice batches ``{"inputs": (b, context), "targets": (b, context)}`` of a text."""

    name: ClassVar[str] = "text"
    Config: ClassVar[type] = TextConfig
    #: ``seqfunc train text -d path=FILE``: a small GPT (2 layers, 128 wide) that learns a
    #: few hundred KB of text in minutes on a CPU
    train_defaults: ClassVar[dict] = dict(
        model="gpt",
        model_options={"layers": 2, "d_model": 128, "heads": 4, "dropout": 0.1},
        steps=2000,
        batch_size=32,
        optimizer="adamw",
        lr=3e-3,
        schedule="warmup_cosine",
        warmup_steps=50,
        lr_end=1e-4,
        b2=0.99,
        weight_decay=0.1,
        clip_norm=1.0,
        eval_batch_size=200,
        log_every=100,
        examples=1,
    )

    def __init__(self, config: TextConfig | None = None, *, vocab: dict | None = None):
        """``vocab`` (what :meth:`save_artifacts` wrote) skips building the vocabulary; the
        text is then read only when batches are asked for."""
        self.config = config or TextConfig()
        self.unit = "word" if self.config.unit == "subword" else self.config.unit
        self._data: dict[str, torch.Tensor] | None = None
        self.tokenizer = None
        self._is_prepared = False
        if vocab is None:
            corpus = self._prepared_corpus()
            if corpus is not None:
                self._set_vocab(corpus.vocabulary)
                self._data = self._prepared_splits(corpus)
            else:
                texts = self._texts()
                self._set_vocab(self._build_vocab(texts))
                self._data = self._encode_splits(texts)
        else:
            self._set_vocab(vocab)

    # -- building ---------------------------------------------------------------------------
    def _path(self) -> Path:
        if not self.config.path:
            raise ConfigError(
                "text: no file given; set the dataset option path "
                "(seqfunc train text -d path=FILE_OR_FOLDER)"
            )
        return resolve_path(self.config.path, "", option="path", dataset=self.name)

    def _prepared_corpus(self) -> prepared.PreparedCorpus | None:
        """The prepared corpus ``path`` names (checked against its shards and the config's
        unit), or None when ``path`` is text."""
        path = self._path()
        prepared.check_not_incomplete(path)
        if not prepared.is_prepared(path):
            return None
        corpus, c = prepared.PreparedCorpus(path), self.config
        where = path / prepared.MANIFEST
        if corpus.unit != c.unit:
            raise DataError(
                f"{where}: the shards were prepared with unit={corpus.unit}, the run asks "
                f"for unit={c.unit}: train with -d unit={corpus.unit}, or prepare the text "
                f"again with -d unit={c.unit}"
            )
        if c.unit == "subword" and corpus.manifest.get("vocab_size") != c.vocab_size:
            raise DataError(
                f"{where}: the shards were prepared with a tokenizer of vocab_size="
                f"{corpus.manifest.get('vocab_size')}, the run asks for vocab_size="
                f"{c.vocab_size}: train with -d vocab_size={corpus.manifest.get('vocab_size')}, "
                "or prepare the text again"
            )
        return corpus

    def _prepared_splits(self, corpus: prepared.PreparedCorpus) -> dict:
        """The splits as :class:`seqfunc.data.prepared.ShardedTokens` (read on demand)."""
        if corpus.vocabulary != self._vocab_data:
            raise DataError(
                f"{corpus.folder / prepared.MANIFEST}: the shards were prepared with another "
                f"vocabulary ({prepared.describe_vocabulary(corpus.vocabulary)}) than the run's "
                f"{VOCAB_FILE} ({prepared.describe_vocabulary(self._vocab_data)}); train on the "
                "corpus the run started with, or start a new run with another --out"
            )
        self._is_prepared = True
        data = {split: corpus.tokens(split) for split in prepared.SPLITS}
        self._check_sizes(data)
        return data

    def _texts(self) -> dict[str, str]:
        """The text cut in two: ``{"train": first part, "val": the last val_fraction}``."""
        text = read_text(self._path())
        cut = int(len(text) * (1 - self.config.val_fraction))
        return {"train": text[:cut], "val": text[cut:]}

    def _build_vocab(self, texts: dict[str, str]) -> dict:
        if self.config.unit == "char":
            return {"unit": "char", "vocab": char_vocab(texts["train"] + texts["val"]).to_json()}
        if self.config.unit == "byte":
            return {"unit": "byte"}
        lines = [line for line in texts["train"].splitlines() if line.strip()]
        tokenizer = TOKENIZERS["bpe"].train(lines, vocab_size=self.config.vocab_size)
        return {"unit": "subword", "tokenizer": tokenizer.to_json()}

    def _set_vocab(self, data: dict) -> None:
        self._vocab_data = data
        if data["unit"] != self.config.unit:
            raise ConfigError(
                f"text: the saved vocabulary is for unit={data['unit']}, "
                f"the config says unit={self.config.unit}"
            )
        if data["unit"] == "char":
            self.vocab = Vocab.from_json(data["vocab"])
        elif data["unit"] == "byte":
            self.vocab = BYTE_VOCAB
        else:
            self.tokenizer = tokenizer_from_json(data["tokenizer"])
            self.vocab = self.tokenizer.vocab

    def _encode_splits(self, texts: dict[str, str]) -> dict[str, torch.Tensor]:
        data = {
            split: torch.tensor(self.encode_all(text), dtype=torch.int64)
            if self.tokenizer
            else self._encode_fast(text)
            for split, text in texts.items()
        }
        self._check_sizes(data)
        return data

    def _encode_fast(self, text: str) -> torch.Tensor:
        if self.config.unit == "byte":
            return torch.from_numpy(
                np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)
            )
        if not text:
            return torch.zeros(0, dtype=torch.int64)
        try:
            return encode_text(text, self.vocab)
        except ValueError:  # only a vocabulary saved with a run can lack a character of it
            new = [c for c in dict.fromkeys(text) if c not in self.vocab]
            shown = ", ".join(repr(c) for c in new[:10]) + (" ..." if len(new) > 10 else "")
            raise DataError(
                f"{self._path()}: {len(new)} character(s) not in the vocabulary saved "
                f"with the run ({VOCAB_FILE}): {shown}; the file changed since the "
                "run started: restore it, or start a new run with another --out"
            ) from None

    def _check_sizes(self, data: dict[str, torch.Tensor]) -> None:
        """Each split needs a window of ``context + 1`` tokens; the message names the options."""
        c = self.config
        for split, ids in data.items():
            if ids.numel() <= c.context + 1 and self._is_prepared:
                raise DataError(
                    f"{self._path()}: the prepared {split} split has {ids.numel()} {c.unit} tokens, "
                    f"too few for context={c.context}: lower -d context= (below "
                    f"{max(ids.numel() - 1, 1)}) or prepare more text"
                )
            if ids.numel() <= c.context + 1:
                total = sum(int(t.numel()) for t in data.values())
                raise DataError(
                    f"{self._path()}: {total} {c.unit} tokens; the {split} split "
                    f"(val_fraction={c.val_fraction}) has {ids.numel()}, too few for "
                    f"context={c.context}: lower -d context= (below {max(ids.numel() - 1, 1)}) "
                    + (
                        "or raise -d val_fraction="
                        if split == "val"
                        else "or lower -d val_fraction="
                    )
                    + " or give more text"
                )

    @property
    def data(self) -> dict[str, torch.Tensor]:
        if self._data is None:
            corpus = self._prepared_corpus()
            self._data = (
                self._prepared_splits(corpus)
                if corpus is not None
                else self._encode_splits(self._texts())
            )
        return self._data

    def load(self):  # CharLMDataset's hook; this class builds in __init__
        return self.vocab, self.data

    def num_examples(self, split: str) -> int:
        """Training: one window per ``context`` tokens, but at least :data:`MIN_EPOCH_WINDOWS`
        (random windows overlap, so a small file still fills batches of any size)."""
        if split == "train":
            return max(self.data["train"].numel() // self.config.context, MIN_EPOCH_WINDOWS)
        return super().num_examples(split)

    @property
    def eval_slices(self) -> int:
        """``config.eval_slices``, or by default one window per validation token (at most
        2,000): a small file gets a small validation set."""
        if self.config.eval_slices is not None:
            return self.config.eval_slices
        return max(1, min(2000, self.data["val"].numel() - self.config.context - 1))

    # -- run folders ------------------------------------------------------------------------
    def save_artifacts(self, folder: str | Path) -> None:
        """Write the vocabulary (or the trained tokenizer) into a run folder."""
        write_json(Path(folder) / VOCAB_FILE, self._vocab_data)

    @classmethod
    def from_artifacts(cls, config: TextConfig, folder: str | Path) -> TextDataset:
        return cls(config, vocab=read_json(Path(folder) / VOCAB_FILE, error=DataError))

    # -- text in and out --------------------------------------------------------------------
    def encode_all(self, text: str) -> list[int]:
        """Subword: every line's pieces followed by ``<eos>``."""
        eos = self.vocab[EOS]
        ids: list[int] = []
        for line in text.splitlines():
            if line.strip():
                ids.extend(self.tokenizer.encode(line))
            ids.append(eos)
        return ids

    def encode(self, text: str) -> list[int]:
        """Text to ids (a prompt: no ``<eos>`` after its last line). A character outside a
        char vocabulary raises ``ValueError``."""
        if self.config.unit == "byte":
            return list(text.encode("utf-8"))
        if self.tokenizer is not None:
            ids = self.encode_all(text)
            return ids[:-1] if ids and not text.endswith("\n") else ids
        return super().encode(text)

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids]
        if self.config.unit == "byte":
            return bytes(ids).decode("utf-8", errors="replace")
        if self.tokenizer is not None:
            eos, lines, line = self.vocab[EOS], [], []
            for i in ids + [None]:
                if i is None or i == eos:
                    lines.append(self.tokenizer.decode(line))
                    line = []
                else:
                    line.append(i)
            return "\n".join(lines)
        return super().decode(ids)

    def summary(self) -> str:
        sizes = ", ".join(f"{s} {t.numel():,}" for s, t in self.data.items())
        return (
            f"text: {self.config.path}: {sizes} {self.config.unit} tokens; vocabulary "
            f"{len(self.vocab):,}; context {self.config.context}"
        )
