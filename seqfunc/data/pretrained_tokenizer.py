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

from seqfunc.config import one_of, positive
from seqfunc.data.enwik8 import BYTE_VOCAB
from seqfunc.data.vocab import Vocab
from seqfunc.errors import ConfigError, DataError
from seqfunc.serialization import atomic_write

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

    @classmethod
    def from_artifacts(cls, config: PretrainedTokenizerConfig, folder: Path):
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

    def num_examples(self, split: str) -> int:
        return 0

    def batches(
        self, split: str, batch_size: int, *, epoch: int = 0, drop_last: bool | None = None
    ) -> Iterator[dict]:
        raise DataError(
            "pretrained: an imported model's run folder holds its tokenizer, not text to train on"
        )
        yield  # pragma: no cover - a generator, so the error comes on the first batch
