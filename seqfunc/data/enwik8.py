"""enwik8 (Hutter prize Wikipedia dump) as raw bytes: 256 tokens, split 90/5/5 in order
(assignment 004's ``load_wp``). Any prefix of the file works; the shared copy is a 4 MB prefix."""

from __future__ import annotations

from typing import ClassVar

import attrs
import numpy as np
import torch

from seqfunc.config import positive
from seqfunc.data.char_lm import CharLMDataset
from seqfunc.data.text_files import read_bytes, resolve_path
from seqfunc.data.vocab import Vocab


def byte_token(b: int) -> str:
    """A printable stand-in for byte ``b`` (its character if printable ASCII/whitespace)."""
    c = chr(b)
    return c if (c.isprintable() or c in "\n\t") and b < 128 else f"<{b:02x}>"


BYTE_VOCAB = Vocab([byte_token(b) for b in range(256)], unk=None)


@attrs.frozen
class Enwik8Config:
    #: the byte file; default: ``$SEQFUNC_DATA/enwik8/enwik8_head``.
    path: str | None = None
    #: use only the first ``max_bytes`` bytes (None: the whole file)
    max_bytes: int | None = attrs.field(default=None, validator=positive)
    context: int = attrs.field(default=128, validator=positive)
    eval_slices: int = attrs.field(default=1000, validator=positive)
    seed: int = 0


class Enwik8Dataset(CharLMDataset):
    name: ClassVar[str] = "enwik8"
    unit: ClassVar[str] = "byte"
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    Config: ClassVar[type] = Enwik8Config
    #: ``seqfunc train enwik8``: sized for 10 minutes on 2 CPU cores (the compiled step):
    #: 2 layers x 128 (0.48 M parameters) trained on ~10 M bytes (2,500 steps of 32 x 128,
    #: about 2.7 passes over the 3.7 MB training split), AdamW lr 6e-3 warmup-cosine.
    train_defaults: ClassVar[dict] = dict(
        model="gpt",
        steps=2500,
        batch_size=32,
        optimizer="adamw",
        lr=6e-3,
        b2=0.99,
        schedule="warmup_cosine",
        warmup_steps=100,
        lr_end=1e-4,
        weight_decay=0.1,
        clip_norm=1.0,
        compile=True,
        eval_every=500,
        eval_batch_size=500,
        log_every=100,
        examples=1,
        model_options=dict(layers=2, heads=4, d_model=128, dropout=0.0),
    )

    def load(self):
        path = resolve_path(
            self.config.path, "enwik8/enwik8_head", option="path", dataset=self.name
        )
        raw = read_bytes(path)[: self.config.max_bytes]
        ids = torch.from_numpy(np.frombuffer(raw, dtype=np.uint8).astype(np.int64))
        n_train, n_val = int(0.9 * len(ids)), int(0.05 * len(ids))
        return BYTE_VOCAB, {
            "train": ids[:n_train],
            "val": ids[n_train : n_train + n_val],
            "test": ids[n_train + n_val :],
        }

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids) -> str:
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")
