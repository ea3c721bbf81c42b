"""WikiText-2, word level, the way assignment 002 feeds it to its Transformer LM.

* ``basic_english``: torchtext's tokenizer (lower-case, split punctuation off), re-implemented
  here with its patterns so that torchtext is not needed;
* every non-empty line becomes its tokens + ``<eos>``; ``<unk>`` stays a token;
* the vocabulary is built from the training split, most frequent first (ties alphabetical),
  ``<unk>`` first as assignment 002's ``build_vocab_from_iterator(..., specials=['<unk>'])``;
  unseen words map to ``<unk>``;
* :func:`batchify` and :func:`get_batch` are assignment 002's, time-major; :meth:`batches` turns
  them batch-major (``{"inputs": (b, t), "targets": (b, t)}``, the language-model layout).

Splits: with a full copy (``wiki.train.tokens`` present) the standard train/valid/test split.
The shared copy has no training file: then it **trains on wiki.valid.tokens** and both ``val``
and ``test`` are ``wiki.test.tokens`` (nothing is tuned on it during a run).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import ClassVar

import attrs
import torch

from seqfunc.config import ConfigError, positive
from seqfunc.data.text_files import read_utf8, resolve_path
from seqfunc.data.vocab import Vocab

_PATTERNS = [
    r"\'",
    r"\"",
    r"\.",
    r"<br \/>",
    r",",
    r"\(",
    r"\)",
    r"\!",
    r"\?",
    r"\;",
    r"\:",
    r"\s+",
]
_REPLACEMENTS = [" '  ", "", " . ", " ", " , ", " ( ", " ) ", " ! ", " ? ", " ", " ", " "]
_BASIC_ENGLISH = [(re.compile(p), r) for p, r in zip(_PATTERNS, _REPLACEMENTS)]
EOS, UNK = "<eos>", "<unk>"


def basic_english(line: str) -> list[str]:
    """torchtext's ``get_tokenizer('basic_english')``."""
    line = line.lower()
    for pattern, replacement in _BASIC_ENGLISH:
        line = pattern.sub(replacement, line)
    return line.split()


def _basic_english_lines(text: str) -> list[str]:
    """The lines of ``text`` with ``basic_english``'s substitutions made on the whole text at
    once (none of them matches or inserts a line break; the last, ``\\s+``, is left to
    ``split``): the words of each line are then its ``split()``, as ``basic_english(line)``."""
    text = text.lower()
    for pattern, replacement in _BASIC_ENGLISH[:-1]:
        text = pattern.sub(replacement, text)
    return text.splitlines()


def tokenize_lines(text: str, tokenizer=basic_english) -> list[str]:
    """All tokens of a file, each non-empty line followed by ``<eos>``."""
    tokens: list[str] = []
    if tokenizer is basic_english:
        lines, tokenizer = _basic_english_lines(text), str.split
    else:
        lines = text.splitlines()
    for line in lines:
        words = tokenizer(line)
        if words:
            tokens.extend(words)
            tokens.append(EOS)
    return tokens


def build_vocab(tokens: list[str]) -> Vocab:
    """``<unk>`` then tokens by decreasing count, ties in alphabetical order (torchtext)."""
    counts = Counter(t for t in tokens if t != UNK)
    ordered = sorted(counts.items(), key=lambda kv: kv[0])
    ordered.sort(key=lambda kv: kv[1], reverse=True)
    return Vocab([UNK] + [t for t, _ in ordered], unk=UNK)


def batchify(data: torch.Tensor, bsz: int) -> torch.Tensor:
    """Assignment 002: ``data (N,)`` -> ``(N // bsz, bsz)``, one column per stream, extra dropped."""
    seq_len = data.size(0) // bsz
    data = data[: seq_len * bsz]
    return data.view(bsz, seq_len).t().contiguous()


def get_batch(source: torch.Tensor, i: int, bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Assignment 002: ``source (full_seq_len, bsz)`` -> ``data (seq_len, bsz)`` and the next words
    ``target (seq_len * bsz,)`` (flattened), ``seq_len = min(bptt, len(source) - 1 - i)``."""
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i : i + seq_len]
    target = source[i + 1 : i + 1 + seq_len].reshape(-1)
    return data, target


@attrs.frozen
class WikiText2Config:
    #: folder holding ``wiki.{train,valid,test}.tokens``; default: ``$SEQFUNC_DATA/wikitext-2``.
    path: str | None = None
    bptt: int = attrs.field(default=35, validator=positive)
    tokenizer: str = "basic_english"  # or "whitespace" (the files are already tokenized)

    def __attrs_post_init__(self):
        if self.tokenizer not in ("basic_english", "whitespace"):
            raise ConfigError(
                f"WikiText2Config.tokenizer={self.tokenizer!r}: must be basic_english or whitespace"
            )


class WikiText2Dataset:
    name: ClassVar[str] = "wikitext2"
    task: ClassVar[str] = "language_model"
    unit: ClassVar[str] = "word"
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    Config: ClassVar[type] = WikiText2Config
    #: Named recipes (``seqfunc train wikitext2 --recipe NAME``). "seed": assignment 002's, batch 20,
    #: bptt 35, the tutorial's model (2 layers, d 200, 2 heads, d_ff 200, dropout 0.2), SGD lr
    #: 5.0, StepLR(gamma 0.95) once per epoch (an epoch is 310 full batches of 20 x 35 on
    #: wiki.valid.tokens), clipping at 0.5, 3 epochs (the tutorial's best test perplexity).
    recipes: ClassVar[dict] = {
        "seed": dict(
            model="transformer_lm",
            epochs=3,
            batch_size=20,
            optimizer="sgd",
            lr=5.0,
            schedule="step",
            step_size=310,
            gamma=0.95,
            clip_norm=0.5,
            weight_decay=0.0,
            eval_every=310,
            eval_batch_size=10,
            log_every=50,
            examples=1,
            model_options=dict(d_model=200, heads=2, d_ff=200, layers=2, dropout=0.2),
        ),
    }
    #: The default recipe (``seqfunc train wikitext2``), for the budget of the tutorial model's
    #: 3 epochs on 2 CPU cores: a pre-norm GPT with the output layer tied to the embedding
    #: (12,001 x 160: the largest tensor, trained from both ends), dropout 0.3 on the
    #: embedding, residual branches and feed-forward hidden layer, learned positions (GPT's
    #: N(0, 0.02) token embeddings would drown under unit-amplitude sinusoids: 463 test
    #: perplexity against 266 learned), AdamW with warmup-cosine, the compiled step, 5 epochs
    #: (3 reach 263, 4 reach 252), evaluated once at the end.
    train_defaults: ClassVar[dict] = dict(
        model="gpt",
        epochs=5,
        batch_size=20,
        optimizer="adamw",
        lr=2e-3,
        b2=0.99,
        schedule="warmup_cosine",
        warmup_steps=100,
        lr_end=1e-4,
        weight_decay=0.1,
        clip_norm=1.0,
        compile=True,
        eval_every=1550,
        eval_batch_size=80,
        log_every=50,
        examples=1,
        model_options=dict(
            d_model=160,
            heads=4,
            layers=2,
            d_ff=640,
            dropout=0.3,
            positions="learned",
            norm_first=True,
            tie_weights=True,
        ),
    )

    def __init__(self, config: WikiText2Config | None = None):
        self.config = config or WikiText2Config()
        folder = resolve_path(self.config.path, "wikitext-2", option="path", dataset=self.name)
        files = {s: folder / f"wiki.{s}.tokens" for s in ("train", "valid", "test")}
        for split in ("valid", "test"):
            if not files[split].exists():
                raise ConfigError(f"{self.name}: {files[split]} is missing (option path={folder})")
        self.standard_split = files["train"].exists()
        names = (
            {"train": "train", "val": "valid", "test": "test"}
            if self.standard_split
            else {"train": "valid", "val": "test", "test": "test"}
        )
        self.files = {split: files[name] for split, name in names.items()}
        tokenizer = basic_english if self.config.tokenizer == "basic_english" else str.split
        by_file = {
            path: tokenize_lines(read_utf8(path), tokenizer) for path in set(self.files.values())
        }
        self.vocab = build_vocab(by_file[self.files["train"]])
        ids = {
            path: torch.tensor(self.vocab[tokens], dtype=torch.int64)
            for path, tokens in by_file.items()
        }
        self.data = {split: ids[path] for split, path in self.files.items()}

    #: Assignment 002's loop reads the stream in order every epoch.
    shuffle: ClassVar[bool] = False

    def num_examples(self, split: str) -> int:
        """Full ``bptt`` windows of the stream at batch size 1."""
        return (self.data[split].numel() - 1) // self.config.bptt

    def num_batches(self, split: str, batch_size: int) -> int:
        """Batches :meth:`batches` yields: the stream cut into ``batch_size`` columns, read
        ``bptt`` rows at a time; training drops the last, shorter window."""
        column = self.data[split].numel() // batch_size
        full, rest = divmod(column - 1, self.config.bptt)
        return full + (rest > 0 and split != "train")

    def batches(
        self, split: str, batch_size: int, *, epoch: int = 0, drop_last: bool | None = None
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Assignment 002's loop: ``for i in range(0, len(source) - 1, bptt): get_batch(source, i,
        bptt)``. Training drops the last, shorter chunk (fixed shapes); evaluation keeps it."""
        if split not in self.data:
            raise ValueError(f"unknown split {split!r}; {self.name} has {self.splits}")
        drop_last = split == "train" if drop_last is None else drop_last
        source = batchify(self.data[split], batch_size)
        bptt = self.config.bptt
        for i in range(0, source.size(0) - 1, bptt):
            data, target = get_batch(source, i, bptt)
            if drop_last and data.size(0) != bptt:
                break
            yield {
                "inputs": data.t().contiguous(),
                "targets": target.view(data.shape).t().contiguous(),
            }

    def encode(self, text: str) -> list[int]:
        words = basic_english(text) if self.config.tokenizer == "basic_english" else text.split()
        unknown = self.vocab.unknown(words)
        if unknown:
            raise ValueError(f"word(s) {unknown[:5]} are not in the {self.name} vocabulary")
        return self.vocab[words]

    def decode(self, ids) -> str:
        return " ".join(self.vocab.to_tokens(list(ids)))

    def prompt(self, length: int, index: int = 0) -> str | None:
        """None: word models start from a random token (assignment 002's ``generate``)."""
        return None
