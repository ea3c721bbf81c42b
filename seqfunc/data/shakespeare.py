"""Tiny Shakespeare (char-rnn), character level: first 90% train, last 10% validation (as
nanoGPT's ``shakespeare_char``), 65 distinct characters."""

from __future__ import annotations

import math
from typing import ClassVar

import attrs

from seqfunc.config import positive
from seqfunc.data.char_lm import CharLMDataset, char_vocab, encode_text
from seqfunc.data.text_files import read_utf8, resolve_path
from seqfunc.errors import DataError


@attrs.frozen
class ShakespeareConfig:
    #: the text file; default: ``$SEQFUNC_DATA/tinyshakespeare/input.txt``.
    path: str | None = None
    context: int = attrs.field(default=64, validator=positive)
    val_fraction: float = attrs.field(default=0.1, validator=positive)
    eval_slices: int = attrs.field(default=2000, validator=positive)
    seed: int = 0


class ShakespeareDataset(CharLMDataset):
    """Random-slice batches ``{"inputs": (b, context), "targets": (b, context)}``."""

    name: ClassVar[str] = "shakespeare"
    Config: ClassVar[type] = ShakespeareConfig
    #: The README's 110-second recipe (`seqfunc train shakespeare`): nanoGPT's CPU shape cut
    #: to ONE layer (4 heads, 128 dims, context 64), which at this budget beats deeper models
    #: (measured at ~95 s: 4 layers 1.87, 2 layers 1.73, 1 layer 1.66 nats/char); batch 16,
    #: a high peak rate with a short warmup and cosine decay, Adam's beta2 0.99, dropout 0.
    train_defaults: ClassVar[dict] = dict(
        model="gpt",
        model_options={"layers": 1},
        steps=3600,
        batch_size=16,
        optimizer="adamw",
        lr=1e-2,
        schedule="warmup_cosine",
        warmup_steps=30,
        lr_end=1e-4,
        b2=0.99,
        weight_decay=0.1,
        clip_norm=1.0,
        eval_every=1800,
        eval_batch_size=500,
        log_every=100,
        examples=1,
    )

    def load(self):
        path = resolve_path(
            self.config.path, "tinyshakespeare/input.txt", option="path", dataset=self.name
        )
        text = read_utf8(path)
        minimum = math.ceil(
            (self.config.context + 2) / min(self.config.val_fraction, 1 - self.config.val_fraction)
        )
        if len(text) < minimum:
            raise DataError(
                f"{path}: {len(text)} characters; {self.name} with context="
                f"{self.config.context} needs at least {minimum}"
            )
        vocab = char_vocab(text)
        ids = encode_text(text, vocab)
        cut = int(len(ids) * (1 - self.config.val_fraction))
        return vocab, {"train": ids[:cut], "val": ids[cut:]}
