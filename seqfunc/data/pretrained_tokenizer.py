"""``pretrained``: the tokenizer of an imported pretrained model, and no text.

``seqfunc import`` writes it into the run folder it makes from a Hugging Face folder: the
folder's ``tokenizer.json`` (read with the ``tokenizers`` package, no code from the folder
runs), or, when asked for (``seqfunc import --byte-tokenizer``), UTF-8 bytes as token ids
0..255. ``generate``, ``predict`` and ``check`` read it for prompts and continuations; it has
no batches to train on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import ClassVar

import attrs

from seqfunc.config import one_of, positive, probability
from seqfunc.data.char_lm import CharLMDataset
from seqfunc.data.enwik8 import BYTE_VOCAB
from seqfunc.data.vocab import Vocab
from seqfunc.errors import ConfigError, DataError
from seqfunc.serialization import atomic_write, read_json

TOKENIZER_FILE = "tokenizer.json"
KINDS = ("tokenizer.json", "bytes")


@attrs.frozen
class PretrainedTokenizerConfig:
    #: ``tokenizer.json`` (the Hugging Face tokenizer saved in the run folder) or ``bytes``
    tokenizer: str = attrs.field(default="tokenizer.json", validator=one_of(KINDS))
    #: the model's longest sequence
    context: int = attrs.field(default=2048, validator=positive)
    #: end-of-sequence ids (``eos_token_id`` of the imported config): each ends a generated row
    eos_ids: tuple[int, ...] = attrs.field(default=(), converter=tuple)
    #: a UTF-8 text file (or folder) to fine-tune on, tokenized with the tokenizer: random
    #: windows of ``context`` tokens, the last ``val_fraction`` held out
    path: str | None = None
    val_fraction: float = attrs.field(default=0.1, validator=probability)
    #: fixed validation windows
    eval_slices: int = attrs.field(default=64, validator=positive)
    seed: int = 0


def require_tokenizers():
    """The ``tokenizers`` package, or a one-line error naming the extra that installs it."""
    try:
        import tokenizers
    except ImportError:
        raise ConfigError(
            "reading tokenizer.json needs the tokenizers package: pip install 'seqfunc[hf]'"
        ) from None
    return tokenizers


def read_tokenizer(path: Path):
    """A ``tokenizers.Tokenizer`` from a ``tokenizer.json``; a bad file is one line naming it."""
    tokenizers = require_tokenizers()
    try:
        return tokenizers.Tokenizer.from_file(str(path))
    except Exception as exc:  # the Rust side raises plain Exceptions
        raise DataError(f"{path}: not a readable tokenizer.json ({exc})") from None


def tokenizer_vocab(tokenizer) -> Vocab:
    """The tokenizer's tokens by id (a gap in the ids gets a placeholder token)."""
    by_id = {i: token for token, i in tokenizer.get_vocab(with_added_tokens=True).items()}
    size = max(by_id, default=-1) + 1
    return Vocab([by_id.get(i, f"<unused-{i}>") for i in range(size)], unk=None)


class PretrainedTokenizerDataset:
    """Text <-> ids of an imported model; no splits to train on."""

    name: ClassVar[str] = "pretrained"
    task: ClassVar[str] = "language_model"
    Config: ClassVar[type] = PretrainedTokenizerConfig
    splits: ClassVar[tuple[str, ...]] = ("train", "val")
    unit: ClassVar[str] = "word"

    def __init__(self, config: PretrainedTokenizerConfig | None = None, *, tokenizer=None):
        self.config = config or PretrainedTokenizerConfig()
        self.tokenizer = tokenizer
        if self.config.tokenizer == "bytes":
            self.vocab = BYTE_VOCAB
        elif tokenizer is None:
            raise ConfigError(
                "pretrained: the tokenizer comes from a run folder (seqfunc import makes one)"
            )
        else:
            self.vocab = tokenizer_vocab(tokenizer)
        self.data = self._tokenized_text() if self.config.path else {}

    @classmethod
    def from_artifacts(cls, config: PretrainedTokenizerConfig, folder: Path):
        """The tokenizer of the run folder ``folder``; with no ``eos_ids`` given, the
        folder's (so that a model fine-tuned from an imported one stops where it did)."""
        if not config.eos_ids and (Path(folder) / "config.json").is_file():
            saved = read_json(Path(folder) / "config.json").get("dataset", {}).get("config", {})
            config = attrs.evolve(config, eos_ids=saved.get("eos_ids", ()))
        if config.tokenizer == "bytes":
            return cls(config)
        return cls(config, tokenizer=read_tokenizer(Path(folder) / TOKENIZER_FILE))

    def save_artifacts(self, folder: Path) -> None:
        if self.tokenizer is not None:
            text = self.tokenizer.to_str()
            atomic_write(
                Path(folder) / TOKENIZER_FILE,
                lambda tmp: Path(tmp).write_text(text, encoding="utf-8"),
            )

    def encode(self, text: str) -> list[int]:
        """``text`` -> ids, with the special tokens the tokenizer adds (e.g. Llama's ``<s>``)."""
        if self.tokenizer is None:
            return list(text.encode("utf-8"))
        return self.tokenizer.encode(text).ids

    def decode(self, ids: Iterable[int]) -> str:
        ids = [int(i) for i in ids]
        if self.tokenizer is None:
            return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def summary(self) -> str:
        return f"pretrained tokenizer ({self.config.tokenizer}, {len(self.vocab)} tokens)"

    def _tokenized_text(self) -> dict:
        """The ``path`` text's ids, split into ``train`` and ``val`` (1-D int64 tensors)."""
        import torch

        from seqfunc.data.text import read_text
        from seqfunc.data.text_files import resolve_path

        path = resolve_path(self.config.path, "", option="path", dataset=self.name)
        ids = torch.tensor(self.encode(read_text(path)))
        cut = int(ids.numel() * (1 - self.config.val_fraction))
        data = {"train": ids[:cut], "val": ids[cut:]}
        for split, part in data.items():
            if part.numel() <= self.config.context + 1:
                raise ConfigError(
                    f"pretrained: path {self.config.path}: the {split} split has "
                    f"{part.numel()} tokens, too few for context={self.config.context}"
                )
        return data

    @property
    def eval_slices(self) -> int:
        return self.config.eval_slices

    def num_examples(self, split: str) -> int:
        return CharLMDataset.num_examples(self, split) if self.data else 0

    def batches(
        self, split: str, batch_size: int, *, epoch: int = 0, drop_last: bool | None = None
    ) -> Iterator[dict]:
        """Random windows of the ``path`` text (as the ``text`` dataset's)."""
        if not self.data:
            raise DataError(
                "pretrained: no text to train on; pass -d path=FILE (a UTF-8 text file)"
            )
        yield from CharLMDataset.batches(self, split, batch_size, epoch=epoch, drop_last=drop_last)

    def _check_split(self, split: str) -> None:
        CharLMDataset._check_split(self, split)
