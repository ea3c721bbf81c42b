"""Assignment 004's toy grammar (``load_toy``): English-looking sentences, character level.

Sentences are drawn from a small context-free grammar by expanding the leftmost ``_symbol``
until none is left, and joined with ``' . '`` until a split has ``n`` characters. Training
text comes from ``Random(seed)``, validation text from ``Random(seed + 1)`` (the seed's
scheme). The grammar is the one of the course's data script (dlvu ``data_rnn.py``).
"""

from __future__ import annotations

import re
from random import Random
from typing import ClassVar

import attrs

from seqfunc.config import positive
from seqfunc.data.char_lm import CharLMDataset, char_vocab, encode_text

START = "_s"
GRAMMAR: dict[str, list[str]] = {
    "_s": [
        "_s _adv",
        "_np _vp",
        "_np _vp _prep _np",
        "_np _vp ( _prep _np )",
        "_np _vp _con _s",
        "_np _vp ( _con _s )",
    ],
    "_adv": ["briefly", "quickly", "impatiently"],
    "_np": ["a _noun", "the _noun", "a _adj _noun", "the _adj _noun"],
    "_prep": ["on", "with", "to", "for", "at"],
    "_con": ["while", "but"],
    "_noun": [
        "mouse",
        "bunny",
        "cat",
        "dog",
        "man",
        "woman",
        "person",
        "bear",
        "koala",
        "judge",
        "businessman",
        "businesswoman",
        "lawyer",
        "teacher",
        "engineer",
    ],
    "_vp": ["walked", "walks", "ran", "runs", "goes", "went", "hiked"],
    "_adj": [
        "short",
        "quick",
        "busy",
        "nice",
        "gorgeous",
        "spectacular",
        "reluctant",
        "systematic",
        "willowy",
        "engaged",
        "synthetic",
    ],
}
_SYMBOL = re.compile("_[a-z]*")


def gen_sentence(rng: Random, sentence: str = START, grammar=GRAMMAR) -> str:
    """Expand the leftmost symbol with a random production until only words remain."""
    while True:
        match = _SYMBOL.search(sentence)
        if match is None:
            return sentence
        start, end = match.span()
        sentence = sentence[:start] + rng.choice(grammar[sentence[start:end]]) + sentence[end:]


def toy_text(n: int, seed: int) -> str:
    """Sentences joined by ``' . '`` until the text has at least ``n`` characters."""
    rng, parts, length = Random(seed), [], 0
    while length < n:
        parts.append(gen_sentence(rng) + " . ")
        length += len(parts[-1])
    return "".join(parts)


@attrs.frozen
class ToyGrammarConfig:
    n_train: int = attrs.field(default=150_000, validator=positive)  # seed: load_toy(n=150_000)
    n_val: int = attrs.field(default=20_000, validator=positive)
    context: int = attrs.field(default=64, validator=positive)
    eval_slices: int = attrs.field(default=1000, validator=positive)  # seed q12: 1000 batches
    seed: int = 0


class ToyGrammarDataset(CharLMDataset):
    name: ClassVar[str] = "toy_grammar"
    Config: ClassVar[type] = ToyGrammarConfig
    train_defaults: ClassVar[dict] = dict(
        model="gpt",
        steps=600,
        batch_size=32,
        optimizer="adamw",
        lr=3e-3,
        schedule="warmup_cosine",
        warmup_steps=50,
        lr_end=1e-4,
        weight_decay=0.1,
        clip_norm=1.0,
        eval_every=200,
        eval_batch_size=500,
        examples=1,
        model_options=dict(layers=2, heads=4, d_model=64, dropout=0.0),
    )

    def load(self):
        train = toy_text(self.config.n_train, self.config.seed)
        val = toy_text(self.config.n_val, self.config.seed + 1)
        vocab = char_vocab(train + val)
        return vocab, {"train": encode_text(train, vocab), "val": encode_text(val, vocab)}
